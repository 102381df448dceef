"""Home-registration processing: a decoded Binding Update in, a verdict out.

Pure: no sockets, no switch, no clock. :meth:`SignallingHandler.handle` takes the
decoded packet and the time and returns a :class:`Verdict`: the Binding
Acknowledgement (or Binding Error) to send, the binding-cache change to make (old and
new entry of one mobile router), and a log record. It never changes the cache itself:
the caller installs the new forwarding state, waits for the switch to confirm it,
commits the entry and only then sends the BA.

Order of checks (RFC 6275 section 10.3.1, RFC 3963, RFC 5648, RFC 4285): checksum
(silent drop) -> home registration (129) -> home prefix / known MR (132, 133) ->
authentication (144, 146) -> replay protection (145) -> NEMO permission (140) ->
registration type (139) -> then either de-registration (lifetime 0, or CoA = HoA):
sequence window (135), unknown bindings (133), BID 0 (164); or registration: existing
binding without BID (165), sequence window (135), prefixes (141, 142, 143), per-BID
checks (164, 169, capacity 130; partial success gives 4, MCOA NOTCOMPLETE).
Replies sent before the router authenticated are unsigned; all others are signed.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

import mip6
from mip6.constants import BaStatus, BeStatus, BuFlag
from mip6.packet import SignallingPacket, UdpIPv4

from .bindings import PRIMARY_BID, BindingCache, CareOf, CareOfBinding, RouterBinding
from .config import HomeAgentConfig, MobileRouterConfig
from .flowmodel import address_text

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address
IPv6Network = ipaddress.IPv6Network

#: Refresh advice as a share of the granted lifetime.
REFRESH_SHARE = 0.8
#: Binding Errors sent at most per second (RFC 6275 asks to rate-limit them).
BINDING_ERRORS_PER_SECOND = 10


@dataclass
class Verdict:
    """What to do about one received signalling packet."""

    action: str  # "reply", "drop"
    reason: str  # status name, or why it was dropped
    status: Optional[int] = None
    reply: Optional[SignallingPacket] = None
    reply_key: Optional[mip6.MnHaKey] = None  # sign the reply with this
    router: Optional[str] = None
    old: Optional[RouterBinding] = None
    new: Optional[RouterBinding] = None
    changes_cache: bool = False
    log: Dict[str, object] = field(default_factory=dict)

    def encoded_reply(self) -> bytes:
        assert self.reply is not None
        return self.reply.encode(auth=self.reply_key)


class _Reject(Exception):
    def __init__(self, status: int, detail: str, sequence: Optional[int] = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.sequence = sequence


@functools.lru_cache(maxsize=1 << 16)  # the same few CoAs over and over; ipaddress is slow
def _routable_unicast(address: CareOf) -> bool:
    return not (address.is_multicast or address.is_unspecified or address.is_loopback
                or address.is_link_local or address.is_reserved)


class SignallingHandler:
    """Checks Binding Updates against the configuration and the binding cache."""

    def __init__(self, config: HomeAgentConfig, cache: BindingCache) -> None:
        self.config = config
        self.cache = cache
        self.last_timestamps: Dict[str, int] = {}
        self._error_times: List[float] = []

    # -- entry point -----------------------------------------------------------
    def handle(self, packet: SignallingPacket, now: float, wall_time: float) -> Verdict:
        """Process one decoded signalling packet addressed to this home agent."""
        message = packet.message
        if not packet.checksum_ok():
            return Verdict("drop", "bad checksum")
        if isinstance(message, mip6.GenericMessage):
            return self._binding_error(packet, now)
        if not isinstance(message, mip6.BindingUpdate):
            return Verdict("drop", f"unexpected {type(message).__name__}")
        return self._binding_update(packet, message, now, wall_time)

    def commit(self, verdict: Verdict) -> None:
        """Make an accepted verdict's cache change (after the switch confirmed it)."""
        if verdict.changes_cache:
            self.cache.put(verdict.old.home_address if verdict.old else
                           verdict.new.home_address, verdict.new)

    # -- Binding Update --------------------------------------------------------
    def _binding_update(self, packet: SignallingPacket, bu: mip6.BindingUpdate, now: float,
                        wall_time: float) -> Verdict:
        home = packet.mobile_home_address
        log: Dict[str, object] = {"hoa": address_text(home), "seq": bu.sequence,
                                  "lifetime": bu.lifetime_seconds,
                                  "source": address_text(packet.care_of_address)}
        router: Optional[MobileRouterConfig] = None
        key: Optional[mip6.MnHaKey] = None
        authenticated = False
        timestamp: Optional[int] = None
        try:
            if not bu.flags & BuFlag.H:
                raise _Reject(BaStatus.ADMINISTRATIVELY_PROHIBITED,
                              "not a home registration (route optimisation unsupported)")
            router = self._router_for(home)
            log["mr"] = router.name
            key = packet.auth_key(router.key)
            self._authenticate(packet, bu, router)
            authenticated = True
            timestamp = self._check_replay(bu, router, wall_time)
            old = self.cache.get(home)
            self._check_registration_type(bu, router, old)
            at_home = (not bu.binding_ids
                       and self._packet_care_of(packet, bu) == packet.mobile_home_address)
            if bu.lifetime == 0 or at_home:  # RFC 6275 9.5.1: CoA == HoA also deletes
                return self._deregister(packet, bu, router, old, key, timestamp, now, log)
            return self._register(packet, bu, router, old, key, timestamp, now, log)
        except _Reject as rejection:
            log.update(status=rejection.status, reason=rejection.detail)
            if rejection.status == BaStatus.MIPV6_MESG_ID_REQD:
                timestamp = mip6.ntp_from_unix(wall_time)
            # Answers before the router proved itself are not signed (no shared key yet).
            signed = key if authenticated else None
            echoes = [mip6.BindingIdentifier(o.bid, rejection.status, o.priority)
                      for o in bu.binding_ids] if authenticated else []
            reply = self._ba(packet, bu, rejection.status,
                             rejection.sequence if rejection.sequence is not None
                             else bu.sequence, 0, echoes, router, signed, timestamp)
            return Verdict("reply", rejection.detail, rejection.status, reply, signed,
                           router.name if router else None, log=log)

    def _router_for(self, home: IPv6Address) -> MobileRouterConfig:
        if self.config.home_prefixes and not any(home in p for p in self.config.home_prefixes):
            raise _Reject(BaStatus.NOT_HOME_SUBNET, f"{home} is not on a home prefix")
        router = self.config.router_by_home_address(home)
        if router is None:
            raise _Reject(BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE,
                          f"no mobile router with home address {home}")
        return router

    def _authenticate(self, packet: SignallingPacket, bu: mip6.BindingUpdate,
                      router: MobileRouterConfig) -> None:
        auth = bu.options[-1] if bu.options else None
        if not isinstance(auth, mip6.Authentication):
            raise _Reject(BaStatus.MIPV6_AUTH_FAIL, "no MN-HA authentication option")
        if auth.spi != router.spi:
            raise _Reject(BaStatus.MIPV6_ID_MISMATCH,
                          f"SPI {auth.spi} is not the SPI of {router.name}")
        nai = bu.find(mip6.MobileNodeIdentifier)
        if nai is not None and router.nai is not None and nai.text != router.nai:
            raise _Reject(BaStatus.MIPV6_ID_MISMATCH, f"NAI {nai.text!r} is not {router.nai!r}")
        if not packet.authenticator_ok(packet.auth_key(router.key)):
            raise _Reject(BaStatus.MIPV6_AUTH_FAIL, "authenticator does not verify")

    def _check_replay(self, bu: mip6.BindingUpdate, router: MobileRouterConfig,
                      wall_time: float) -> int:
        option = bu.find(mip6.ReplayProtection)
        if option is None:
            raise _Reject(BaStatus.MIPV6_MESG_ID_REQD, "no replay protection timestamp")
        skew = mip6.unix_from_ntp(option.timestamp) - wall_time
        if abs(skew) > self.config.limits.replay_window:
            raise _Reject(BaStatus.MIPV6_MESG_ID_REQD,
                          f"timestamp is {skew:+.1f} s off this home agent's clock")
        last = self.last_timestamps.get(router.name)
        if last is not None and option.timestamp <= last:
            raise _Reject(BaStatus.MIPV6_MESG_ID_REQD, "timestamp not newer than the last "
                                                       "accepted one (replay)")
        return option.timestamp

    def _check_registration_type(self, bu: mip6.BindingUpdate, router: MobileRouterConfig,
                                 old: Optional[RouterBinding]) -> None:
        wants_router = bool(bu.flags & BuFlag.R)
        if wants_router and not router.mobile_router:
            raise _Reject(BaStatus.MOBILE_ROUTER_OPERATION_NOT_PERMITTED,
                          f"{router.name} may not register as a mobile router")
        if old is not None and old.mobile_router != wants_router:
            raise _Reject(BaStatus.REGISTRATION_TYPE_CHANGE_DISALLOWED,
                          "R flag differs from the existing registration")

    def _check_fresh(self, bu: mip6.BindingUpdate, old: Optional[RouterBinding],
                     bids: List[int]) -> None:
        """Stale for any binding it touches -> 135 (``bids`` empty: it touches them all).

        The BA then carries the newest sequence ever accepted for this router, so the
        router's next number (that + 1) is fresh for every one of its bindings.
        """
        if old is None:
            return
        existing = old.by_bid()
        touched = [existing[b] for b in bids if b in existing] if bids else list(old.care_of)
        if not touched and not mip6.seq_is_newer(bu.sequence, old.last_sequence):
            # A new BID: only its own freshness counts, but a replayed sequence is stale.
            if bu.sequence == old.last_sequence:
                raise _Reject(BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
                              f"sequence {bu.sequence} already used", old.last_sequence)
        for binding in touched:
            if not mip6.seq_is_newer(bu.sequence, binding.sequence):
                raise _Reject(BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
                              f"sequence {bu.sequence} not newer than {binding.sequence} "
                              f"(BID {binding.bid})", old.last_sequence)

    # -- de-registration ---------------------------------------------------------
    def _deregister(self, packet: SignallingPacket, bu: mip6.BindingUpdate,
                    router: MobileRouterConfig, old: Optional[RouterBinding],
                    key: mip6.MnHaKey, timestamp: int, now: float,
                    log: Dict[str, object]) -> Verdict:
        options = bu.binding_ids
        bids = [o.bid for o in options]
        if old is None:
            raise _Reject(BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE,
                          "de-registration without a binding")
        self._check_fresh(bu, old, bids)
        existing = old.by_bid()
        echoes: List[mip6.BindingIdentifier] = []
        if options:
            for option in options:
                if option.bid == PRIMARY_BID:
                    status = BaStatus.MCOA_MALFORMED  # BID 0 is reserved
                else:
                    found = existing.pop(option.bid, None)
                    status = 0 if found else BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE
                echoes.append(mip6.BindingIdentifier(option.bid, status, option.priority))
            removed = [e.bid for e in echoes if e.status == 0]
            if not removed:
                raise _Reject(echoes[0].status, f"no binding for BID(s) {bids}")
            status = BaStatus.ACCEPTED if len(removed) == len(echoes) else \
                BaStatus.MCOA_NOTCOMPLETE
            new = old.with_care_of(existing) if existing else None
        else:
            removed = sorted(existing)
            status, new = BaStatus.ACCEPTED, None
        if new is not None:
            new = replace(new, last_sequence=_newest(old.last_sequence, bu.sequence))
        self.last_timestamps[router.name] = timestamp
        log.update(status=status, bids=removed, action="deregister",
                   remaining=[b.bid for b in new.care_of] if new else [])
        reply = self._ba(packet, bu, status, bu.sequence, 0, echoes, router, key, timestamp)
        return Verdict("reply", "de-registered", status, reply, key, router.name, old, new,
                       True, log)

    # -- registration --------------------------------------------------------------
    def _register(self, packet: SignallingPacket, bu: mip6.BindingUpdate,
                  router: MobileRouterConfig, old: Optional[RouterBinding],
                  key: mip6.MnHaKey, timestamp: int, now: float,
                  log: Dict[str, object]) -> Verdict:
        limits = self.config.limits
        options = bu.binding_ids
        if options and old is not None and PRIMARY_BID in old.by_bid():
            raise _Reject(BaStatus.MCOA_NON_MCOA_BINDING_EXISTS,
                          "a binding without BID exists; de-register it first")
        self._check_fresh(bu, old, [o.bid for o in options])
        prefixes, explicit = self._prefixes(bu, router)
        granted = max(1, min(bu.lifetime, limits.max_lifetime // 4))
        expires = now + granted * 4
        existing = {} if not options else (old.by_bid() if old else {})
        statuses: List[Tuple[mip6.BindingIdentifier, int]] = []
        default_coa = self._packet_care_of(packet, bu)
        if not options:
            if not _routable_unicast(default_coa) or default_coa == packet.mobile_home_address:
                raise _Reject(BaStatus.INVALID_CARE_OF_ADDRESS,
                              f"care-of address {default_coa} is not usable")
            existing = {PRIMARY_BID: CareOfBinding(PRIMARY_BID, default_coa, 0, bu.sequence,
                                                   now, expires)}
        seen = set()
        for option in options:
            status = self._bid_status(option, seen)
            coa = option.care_of_address if option.care_of_address is not None else default_coa
            if status == 0 and not _routable_unicast(coa):
                status = BaStatus.MCOA_MALFORMED
            if status == 0 and option.bid not in existing \
                    and len(existing) >= limits.max_care_of_addresses:
                status = BaStatus.INSUFFICIENT_RESOURCES
            if status == 0:
                previous = existing.get(option.bid)
                existing[option.bid] = CareOfBinding(
                    option.bid, coa, option.priority, bu.sequence,
                    previous.registered_at if previous and previous.care_of == coa else now,
                    expires)
            seen.add(option.bid)
            statuses.append((option, status))
        failures = [s for _, s in statuses if s]
        if options and len(failures) == len(statuses):
            raise _Reject(failures[0], f"every Binding Identifier failed: {failures}")
        status = BaStatus.MCOA_NOTCOMPLETE if failures else BaStatus.ACCEPTED
        gre = bu.find(mip6.GreKey)
        downlink_key = gre.key if gre is not None and gre.key else (
            old.downlink_key if old else router.gre_key)
        base = old if old is not None else RouterBinding(
            router.name, packet.mobile_home_address, (), explicit,
            bool(bu.flags & BuFlag.R), downlink_key, bu.sequence)
        newest = bu.sequence if old is None else _newest(old.last_sequence, bu.sequence)
        new = RouterBinding(router.name, base.home_address, prefixes, explicit,
                            bool(bu.flags & BuFlag.R), downlink_key, newest,
                            ).with_care_of(existing)
        self.last_timestamps[router.name] = timestamp
        echoes = [mip6.BindingIdentifier(o.bid, s, o.priority) for o, s in statuses]
        log.update(status=status, action="register", granted=granted * 4,
                   bids=[o.bid for o, s in statuses if s == 0] or [PRIMARY_BID],
                   coas=[address_text(existing[o.bid].care_of) for o, s in statuses if s == 0]
                   or [address_text(default_coa)],
                   failed={o.bid: s for o, s in statuses if s})
        reply = self._ba(packet, bu, status, bu.sequence, granted, echoes, router, key,
                         timestamp, gre_reply=gre is not None)
        return Verdict("reply", "registered", status, reply, key, router.name, old, new, True,
                       log)

    def _prefixes(self, bu: mip6.BindingUpdate, router: MobileRouterConfig
                  ) -> Tuple[Tuple[IPv6Network, ...], bool]:
        if not bu.flags & BuFlag.R:
            return (), False
        options = bu.prefixes
        if not options:
            if not router.prefixes:
                raise _Reject(BaStatus.FORWARDING_SETUP_FAILED,
                              f"implicit mode but no prefixes configured for {router.name}")
            return router.prefixes, False
        found = []
        for option in options:
            net = option.network
            if option.host_bits_set or net.prefixlen == 0 or net.is_link_local \
                    or net.is_multicast or net.is_loopback or net.is_unspecified:
                raise _Reject(BaStatus.INVALID_PREFIX, f"invalid prefix {option.prefix}/"
                                                       f"{option.prefix_length}")
            if not any(net.subnet_of(owned) for owned in router.prefixes):
                raise _Reject(BaStatus.NOT_AUTHORIZED_FOR_PREFIX,
                              f"{net} is not a prefix of {router.name}")
            if net not in found:
                found.append(net)
        return tuple(found), True

    @staticmethod
    def _bid_status(option: mip6.BindingIdentifier, seen: set) -> int:
        if option.bid == PRIMARY_BID or option.bid in seen:
            return BaStatus.MCOA_MALFORMED
        if option.simultaneous_home:
            return BaStatus.MCOA_SIMULTANEOUS_HOME_AND_FOREIGN_PROHIBITED
        return 0

    @staticmethod
    def _packet_care_of(packet: SignallingPacket, bu: mip6.BindingUpdate) -> CareOf:
        alternate = bu.find(mip6.AlternateCareOfAddress)
        if alternate is not None:
            return alternate.address
        if packet.udp is not None:
            option = bu.find(mip6.IPv4CareOfAddress)
            return option.address if option is not None else packet.udp.src
        return packet.care_of_address

    # -- replies -------------------------------------------------------------------
    def _ba(self, packet: SignallingPacket, bu: mip6.BindingUpdate, status: int,
            sequence: int, lifetime: int, echoes: List[mip6.BindingIdentifier],
            router: Optional[MobileRouterConfig], key: Optional[mip6.MnHaKey],
            timestamp: Optional[int], gre_reply: bool = False) -> SignallingPacket:
        options: List[mip6.MobilityOption] = []
        refresh = int(lifetime * REFRESH_SHARE)
        if status < 128 and 0 < refresh < lifetime:  # RFC 6275 6.2.4: shorter than lifetime
            options.append(mip6.BindingRefreshAdvice(refresh))
        options.extend(echoes)
        if gre_reply and router is not None and status < 128:
            options.append(mip6.GreKey(router.gre_key))
        if key is not None:
            if timestamp is not None:
                options.append(mip6.ReplayProtection(timestamp))
            options.append(mip6.Authentication(router.spi))
        flags = mip6.BaFlag.R if (bu.flags & BuFlag.R and status < 128) else 0
        ba = mip6.BindingAcknowledgement(status, int(flags), sequence, lifetime, options)
        return _reply_packet(packet, ba, self.config)

    def _binding_error(self, packet: SignallingPacket, now: float) -> Verdict:
        self._error_times = [t for t in self._error_times if now - t < 1.0]
        if len(self._error_times) >= BINDING_ERRORS_PER_SECOND:
            return Verdict("drop", "binding error rate limit")
        self._error_times.append(now)
        be = mip6.BindingError(BeStatus.UNRECOGNIZED_MH_TYPE,
                               packet.home_address or IPv6Address(0))
        reply = SignallingPacket(packet.dst, packet.src, be,
                                 udp=_reverse_udp(packet.udp))
        return Verdict("reply", f"unknown MH type {packet.message.mh_type}",
                       BeStatus.UNRECOGNIZED_MH_TYPE, reply,
                       log={"mh_type": packet.message.mh_type, "source": str(packet.src)})


def _newest(last: int, sequence: int) -> int:
    return sequence if mip6.seq_is_newer(sequence, last) else last


def _reverse_udp(udp: Optional[UdpIPv4]) -> Optional[UdpIPv4]:
    if udp is None:
        return None
    return UdpIPv4(udp.dst, udp.src, udp.dport, udp.sport)


def _reply_packet(packet: SignallingPacket, message: mip6.MobilityMessage,
                  config: HomeAgentConfig) -> SignallingPacket:
    """The BA goes back the way the BU came: to the CoA with a Type 2 Routing Header, or
    over IPv4/UDP for DSMIPv6 (then the inner IPv6 header runs HA -> HoA)."""
    home = packet.mobile_home_address
    if packet.udp is not None:
        return SignallingPacket(packet.dst, home, message, udp=_reverse_udp(packet.udp))
    if packet.home_address is not None:
        return SignallingPacket(packet.dst, packet.src, message, routing_home_address=home)
    return SignallingPacket(packet.dst, packet.src, message)
