"""Binding Updates through the Home Agent's pure decision logic (``SignallingHandler``).

Every Binding Update is built with ``mip6``, signed with RFC 4285 MN-HA authentication,
encoded to bytes and decoded again with ``decode_packet``, exactly as the switch would
deliver it. The clock is fake: ``now`` (monotonic) and ``wall_time`` (Unix) are passed
explicitly and advance by one second per packet.

For every verdict the tests check the Binding Acknowledgement (status, per-BID statuses
in the echoed Binding Identifier options, sequence, lifetime, R flag, Binding Refresh
Advice), that it is signed exactly when it should be (authenticator and checksum
verified on the re-decoded reply), that it goes back the way the BU came (Type 2
Routing Header = HoA and destination = CoA; or IPv4/UDP to the source port with the
inner IPv6 header HA -> HoA for DSMIPv6), and the binding cache: the committed entry
of an accepted BU, and for every rejected BU a cache exactly as before.

Tests marked ``xfail(strict=True)`` document behaviour that disagrees with the RFCs
or with the module's own docstring; the reason names the disagreement.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

import mip6
from mip6.constants import BaStatus, BeStatus, BuFlag
from mip6.packet import SignallingPacket, bu_packet, decode_packet, dsmip_packet
from ryu_apps.bindings import PRIMARY_BID, BindingCache, RouterBinding
from ryu_apps.config import HomeAgentConfig, default_gre_key, parse_config
from ryu_apps.signalling import BINDING_ERRORS_PER_SECOND, SignallingHandler, Verdict
from tests.vectors import COA1, COA2, COA4, HA, HA4, HOA, MNP

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address
IPv6Network = ipaddress.IPv6Network

# -- the home agent's configuration ---------------------------------------------------
HOME_PREFIX = "2001:db8:ffff::/64"
KEY = bytes(range(20))  # mr1: a NEMO mobile router with one configured prefix
SPI = 0x100
NAI = "mr1@example.com"
GRE = 0x1001
HOST_HOA = "2001:db8:ffff::200"  # host1: mobile_router false (no NEMO service)
HOST_KEY = bytes(range(100, 120))
HOST_SPI = 0x200
BARE_HOA = "2001:db8:ffff::300"  # mr3: NEMO allowed, but no prefixes configured
BARE_KEY = bytes(range(200, 220))
BARE_SPI = 0x300
KEYS = {HOA: KEY, HOST_HOA: HOST_KEY, BARE_HOA: BARE_KEY}
SPIS = {HOA: SPI, HOST_HOA: HOST_SPI, BARE_HOA: BARE_SPI}

UNKNOWN_HOA = "2001:db8:ffff::999"  # on the home prefix, no mobile router
FOREIGN_HOA = "2001:db8:eeee::100"  # off the home prefixes
COA3 = "2001:db8:c::100"
COA4_B = "198.51.100.20"
OWNED = IPv6Network(MNP)  # 2001:db8:1000::/48
SUBNET = "2001:db8:1000:1::/64"

MAX_LIFETIME = 600  # seconds: 150 units of 4 s
LIFETIME = 75  # units of 4 s requested by default (300 s)
AHR = int(BuFlag.A | BuFlag.H | BuFlag.R)
AH = int(BuFlag.A | BuFlag.H)
WALL0 = 1_700_000_000.0
NOW0 = 1000.0


def config_tree(**limits: Any) -> Dict[str, Any]:
    """A valid configuration tree (as YAML would give it) for the handler tests."""
    return {
        "home_agent": {"addresses": [HA], "ipv4_address": HA4,
                       "home_prefixes": [HOME_PREFIX]},
        "datapath": {"uplink_port": "uplink", "tunnel_port": "gre0"},
        "upstream": {"next_hop": "2001:db8:fffe::1"},
        "limits": {"max_lifetime": MAX_LIFETIME, "max_care_of_addresses": 4,
                   "replay_window": 7, **limits},
        "mobile_routers": [
            {"name": "mr1", "home_address": HOA, "prefixes": [MNP], "spi": SPI,
             "key": KEY.hex(), "gre_key": GRE, "nai": NAI},
            {"name": "host1", "home_address": HOST_HOA, "spi": HOST_SPI,
             "key": HOST_KEY.hex(), "mobile_router": False},
            {"name": "mr3", "home_address": BARE_HOA, "spi": BARE_SPI,
             "key": BARE_KEY.hex()},
        ],
    }


def make_config(**limits: Any) -> HomeAgentConfig:
    return parse_config(config_tree(**limits), "test-ha.yaml")


# -- building and sending Binding Updates -----------------------------------------------
def bid(number: int, coa: Optional[str] = None, priority: int = 1, h: bool = False
        ) -> mip6.BindingIdentifier:
    address = ipaddress.ip_address(coa) if coa is not None else None
    return mip6.BindingIdentifier(number, 0, priority, h, address)


def mnp(prefix: str, length: int) -> mip6.MobileNetworkPrefix:
    return mip6.MobileNetworkPrefix(IPv6Address(prefix), length)


@dataclass(frozen=True)
class Bu:
    """One Binding Update as a mobile router would send it.

    ``coa`` is the IPv6 source, or with ``dsmip`` the IPv4 care-of address (outer
    source, IPv4 CoA option). ``ts_shift`` offsets the replay timestamp from the
    sender's clock (None: no timestamp option); ``auth`` False leaves out the
    Authentication option; ``sign_coa`` signs for another care-of address.
    """

    seq: int
    flags: int = AHR
    lifetime: int = LIFETIME
    options: Tuple[mip6.MobilityOption, ...] = ()
    coa: str = COA1
    hoa: str = HOA
    key: bytes = KEY
    spi: int = SPI
    ts_shift: Optional[float] = 0.0
    auth: bool = True
    sign_coa: Optional[str] = None
    dsmip: bool = False
    sport: int = mip6.DSMIP_UDP_PORT


def host(seq: int, **kw: Any) -> Bu:
    """A BU of host1 (no NEMO service)."""
    return Bu(seq, **{"flags": AH, "hoa": HOST_HOA, "key": HOST_KEY, "spi": HOST_SPI, **kw})


def dsmip(seq: int, coa4: str = COA4, **kw: Any) -> Bu:
    """A DSMIPv6 BU over IPv4/UDP carrying an IPv4 Care-of Address option."""
    options = (mip6.IPv4CareOfAddress(IPv4Address(coa4)),) + tuple(kw.pop("options", ()))
    return Bu(seq, coa=coa4, dsmip=True, options=options, **kw)


Snapshot = Dict[IPv6Address, RouterBinding]


def snapshot(cache: BindingCache) -> Snapshot:
    return {entry.home_address: entry for entry in cache}


@dataclass
class Sent:
    """One BU delivered to the handler: the request, the verdict and the decoded reply."""

    request: SignallingPacket
    verdict: Verdict
    reply: Optional[SignallingPacket]
    timestamp: Optional[int]  # the BU's replay timestamp
    wall: float  # the home agent's clock when it was handled

    @property
    def ba(self) -> mip6.BindingAcknowledgement:
        assert self.reply is not None, f"no reply: {self.verdict.reason}"
        assert isinstance(self.reply.message, mip6.BindingAcknowledgement)
        return self.reply.message

    def per_bid(self) -> List[Tuple[int, int]]:
        return [(o.bid, o.status) for o in self.ba.binding_ids]


class Harness:
    """A handler, its cache and a fake clock that advances one second per packet."""

    def __init__(self, **limits: Any) -> None:
        self.config = make_config(**limits)
        self.cache = BindingCache()
        self.handler = SignallingHandler(self.config, self.cache)
        self.now = NOW0
        self.wall = WALL0

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds
        self.wall += seconds

    def encode(self, bu: Bu) -> Tuple[bytes, Optional[int]]:
        options = list(bu.options)
        timestamp = None
        if bu.ts_shift is not None:
            timestamp = mip6.ntp_from_unix(self.wall + bu.ts_shift)
            options.append(mip6.ReplayProtection(timestamp))
        if bu.auth:
            options.append(mip6.Authentication(bu.spi))
        message = mip6.BindingUpdate(bu.seq, bu.flags, bu.lifetime, options)
        signer = mip6.MnHaKey(bu.key, bu.sign_coa or bu.coa, bu.hoa) if bu.auth else None
        if bu.dsmip:
            packet = dsmip_packet(message, src=bu.hoa, dst=HA, src4=bu.coa, dst4=HA4,
                                  sport=bu.sport)
        else:
            packet = bu_packet(message, bu.coa, bu.hoa, HA)
        return packet.encode(auth=signer), timestamp

    def send(self, bu: Bu) -> Sent:
        self.tick()
        raw, timestamp = self.encode(bu)
        return self.deliver(raw, timestamp)

    def deliver(self, raw: bytes, timestamp: Optional[int] = None) -> Sent:
        request = decode_packet(raw)
        before = snapshot(self.cache)
        verdict = self.handler.handle(request, self.now, self.wall)
        assert snapshot(self.cache) == before, "handle() must not change the cache"
        reply = decode_packet(verdict.encoded_reply()) if verdict.reply is not None else None
        return Sent(request, verdict, reply, timestamp, self.wall)

    def accept(self, bu: Bu) -> Sent:
        """Send a BU that must be accepted, and commit it."""
        sent = self.send(bu)
        assert sent.verdict.status is not None and sent.verdict.status < 128, \
            (sent.verdict.status, sent.verdict.reason)
        assert sent.verdict.changes_cache
        self.handler.commit(sent.verdict)
        return sent

    def entry(self, hoa: str = HOA) -> Optional[RouterBinding]:
        return self.cache.get(IPv6Address(hoa))


# -- checking replies ---------------------------------------------------------------------
def assert_route(sent: Sent) -> None:
    """The reply goes back the way the BU came."""
    request, reply = sent.request, sent.reply
    assert reply is not None
    assert reply.src == request.dst == IPv6Address(HA)
    assert reply.home_address is None
    if request.udp is not None:
        # DSMIPv6: IPv4/UDP back to the sender's port, inner IPv6 HA -> HoA, no RH2.
        assert reply.udp is not None
        assert (reply.udp.src, reply.udp.dst) == (request.udp.dst, request.udp.src)
        assert (reply.udp.sport, reply.udp.dport) == (request.udp.dport, request.udp.sport)
        assert reply.dst == request.src == request.mobile_home_address
        assert reply.routing_home_address is None
    else:
        assert reply.udp is None
        assert reply.dst == request.src  # the care-of address
        assert reply.routing_home_address == request.home_address  # RH2 = HoA


def assert_ba(sent: Sent, status: int, sequence: int, *, lifetime: int = 0, r: bool = False,
              signed: Optional[bool] = True, hoa: Optional[str] = None
              ) -> mip6.BindingAcknowledgement:
    """Status, sequence, lifetime, R flag, signature (None: not checked) and route."""
    hoa = hoa or str(sent.request.mobile_home_address)
    reply = sent.reply
    assert reply is not None
    ba = sent.ba
    assert sent.verdict.action == "reply" and sent.verdict.status == status
    assert (ba.status, ba.sequence, ba.lifetime) == (status, sequence, lifetime), \
        (ba.status, ba.sequence, ba.lifetime, sent.verdict.reason)
    assert bool(ba.flags & mip6.BaFlag.R) == r
    assert reply.checksum_ok()
    assert_route(sent)
    auth = ba.find(mip6.Authentication)
    if signed is None:
        pass
    elif signed:
        assert auth is not None, f"BA {status} is not signed"
        assert ba.options[-1] == auth and auth.spi == SPIS[hoa]
        assert reply.authenticator_ok(reply.auth_key(KEYS[hoa]))
        assert ba.find(mip6.ReplayProtection) is not None
    else:
        assert auth is None and sent.verdict.reply_key is None
        assert ba.find(mip6.ReplayProtection) is None
    refresh = ba.find(mip6.BindingRefreshAdvice)
    if status < 128 and lifetime:
        assert refresh is not None and refresh.interval < lifetime
    else:
        assert refresh is None
    return ba


def assert_rejected(sent: Sent, before: Snapshot, harness: Harness) -> None:
    """A rejected BU changes nothing, not even once committed."""
    assert not sent.verdict.changes_cache
    assert sent.verdict.new is None
    assert snapshot(harness.cache) == before
    harness.handler.commit(sent.verdict)
    assert snapshot(harness.cache) == before


# -- rejected Binding Updates: a table ----------------------------------------------------
@dataclass(frozen=True)
class Reject:
    """A BU (after some accepted and committed ones) that the home agent must reject."""

    id: str
    bu: Bu
    status: int
    setup: Tuple[Bu, ...] = ()
    sequence: Optional[int] = None  # the BA's sequence; default the BU's
    signed: bool = True
    limits: Dict[str, Any] = field(default_factory=dict)
    xfail: Optional[str] = None  # a known disagreement: why this case fails today


UNSIGNED_133 = ("the mobile router authenticated correctly, so RFC 4285 lets it verify the "
                "answer; the comment on _UNSIGNED says it is for statuses answered 'before the "
                "mobile router is known or authenticated', but 133 is also raised after "
                "authentication (de-registration of what is not bound) and goes out unsigned")

REGISTERED = (Bu(100, options=(bid(1),)),)  # mr1 with BID 1 at CoA1, sequence 100
PRIMARY = (Bu(100),)  # mr1 without a BID (primary binding), sequence 100
BULK_2 = (Bu(100, options=(bid(1, COA1), bid(2, COA2))),)

REJECTS = [
    # home registration, home prefix, known mobile router: unsigned replies
    Reject("no-h-flag", Bu(7, flags=int(BuFlag.A | BuFlag.R)),
           BaStatus.ADMINISTRATIVELY_PROHIBITED, signed=False),
    Reject("non-home-registration-plain", Bu(7, flags=0), BaStatus.ADMINISTRATIVELY_PROHIBITED,
           signed=False),
    Reject("hoa-outside-home-prefixes", Bu(7, hoa=FOREIGN_HOA), BaStatus.NOT_HOME_SUBNET,
           signed=False),
    Reject("unknown-hoa-on-home-prefix", Bu(7, hoa=UNKNOWN_HOA),
           BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE, signed=False),
    # RFC 4285 authentication: unsigned replies
    Reject("no-auth-option", Bu(7, auth=False), BaStatus.MIPV6_AUTH_FAIL, signed=False),
    Reject("wrong-key", Bu(7, key=b"\x55" * 20), BaStatus.MIPV6_AUTH_FAIL, signed=False),
    Reject("signed-for-another-coa", Bu(7, sign_coa=COA2), BaStatus.MIPV6_AUTH_FAIL,
           signed=False),
    Reject("signed-for-another-ipv4-coa", dsmip(7, sign_coa=COA4_B), BaStatus.MIPV6_AUTH_FAIL,
           signed=False),
    Reject("spi-mismatch", Bu(7, spi=0x999), BaStatus.MIPV6_ID_MISMATCH, signed=False),
    Reject("another-routers-spi-and-key", Bu(7, spi=HOST_SPI, key=HOST_KEY),
           BaStatus.MIPV6_ID_MISMATCH, signed=False),
    Reject("nai-mismatch", Bu(7, options=(mip6.MobileNodeIdentifier.nai("mr2@example.com"),)),
           BaStatus.MIPV6_ID_MISMATCH, signed=False),
    # replay protection: signed, with the home agent's own time
    Reject("no-timestamp", Bu(7, ts_shift=None), BaStatus.MIPV6_MESG_ID_REQD),
    Reject("timestamp-too-old", Bu(7, ts_shift=-7.5), BaStatus.MIPV6_MESG_ID_REQD),
    Reject("timestamp-too-new", Bu(7, ts_shift=+7.5), BaStatus.MIPV6_MESG_ID_REQD),
    Reject("timestamp-replayed-same", Bu(101, options=(bid(1),), ts_shift=-1.0),
           BaStatus.MIPV6_MESG_ID_REQD, setup=REGISTERED),
    Reject("timestamp-replayed-older", Bu(101, options=(bid(1),), ts_shift=-1.5),
           BaStatus.MIPV6_MESG_ID_REQD, setup=REGISTERED),
    Reject("dsmip-no-timestamp", dsmip(7, ts_shift=None), BaStatus.MIPV6_MESG_ID_REQD),
    # NEMO permission and registration type
    Reject("r-flag-not-permitted", host(7, flags=AHR),
           BaStatus.MOBILE_ROUTER_OPERATION_NOT_PERMITTED),
    Reject("r-flag-dropped", Bu(101, flags=AH), BaStatus.REGISTRATION_TYPE_CHANGE_DISALLOWED,
           setup=PRIMARY),
    Reject("r-flag-added", Bu(101), BaStatus.REGISTRATION_TYPE_CHANGE_DISALLOWED,
           setup=(Bu(100, flags=AH),)),
    Reject("r-flag-dropped-in-deregistration", Bu(101, flags=AH, lifetime=0),
           BaStatus.REGISTRATION_TYPE_CHANGE_DISALLOWED, setup=PRIMARY),
    # sequence window: the BA carries the last accepted sequence number
    Reject("seq-equal", Bu(100, options=(bid(1),)), BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
           setup=REGISTERED, sequence=100),
    Reject("seq-older", Bu(99, options=(bid(1),)), BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
           setup=REGISTERED, sequence=100),
    Reject("seq-just-beyond-half-window", Bu(100 + 32769, options=(bid(1),)),
           BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW, setup=REGISTERED, sequence=100),
    Reject("seq-older-across-wrap", Bu(65530, options=(bid(1),)),
           BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
           setup=(Bu(5, options=(bid(1),)),), sequence=5),
    Reject("seq-older-near-top", Bu(65000, options=(bid(1),)),
           BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
           setup=(Bu(65530, options=(bid(1),)),), sequence=65530),
    Reject("seq-stale-primary", Bu(100), BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
           setup=PRIMARY, sequence=100),
    Reject("seq-stale-one-of-bulk", Bu(101, options=(bid(1, COA1), bid(2, COA2))),
           BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
           setup=BULK_2 + (Bu(105, options=(bid(2, COA3),)),), sequence=105),
    Reject("seq-replayed-for-new-bid", Bu(100, options=(bid(2, COA2),)),
           BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW, setup=REGISTERED, sequence=100),
    Reject("seq-stale-deregistration", Bu(100, lifetime=0), BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
           setup=REGISTERED, sequence=100),
    Reject("seq-stale-bid-deregistration", Bu(90, lifetime=0, options=(bid(1),)),
           BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW, setup=REGISTERED, sequence=100),
    Reject("dsmip-seq-stale", dsmip(100), BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
           setup=(dsmip(100),), sequence=100),
    # mobile network prefixes (RFC 3963)
    Reject("implicit-no-configured-prefixes", Bu(7, hoa=BARE_HOA, key=BARE_KEY, spi=BARE_SPI),
           BaStatus.FORWARDING_SETUP_FAILED),
    Reject("mnp-host-bits", Bu(7, options=(mnp("2001:db8:1000::1", 48),)),
           BaStatus.INVALID_PREFIX),
    Reject("mnp-link-local", Bu(7, options=(mnp("fe80::", 64),)), BaStatus.INVALID_PREFIX),
    Reject("mnp-multicast", Bu(7, options=(mnp("ff0e::", 16),)), BaStatus.INVALID_PREFIX),
    Reject("mnp-zero-length", Bu(7, options=(mnp("::", 0),)), BaStatus.INVALID_PREFIX),
    Reject("mnp-one-good-one-host-bits",
           Bu(7, options=(mnp("2001:db8:1000::", 48), mnp("2001:db8:1000:1::1", 64))),
           BaStatus.INVALID_PREFIX),
    Reject("mnp-not-owned", Bu(7, options=(mnp("2001:db8:2000::", 48),)),
           BaStatus.NOT_AUTHORIZED_FOR_PREFIX),
    Reject("mnp-supernet-of-owned", Bu(7, options=(mnp("2001:db8::", 32),)),
           BaStatus.NOT_AUTHORIZED_FOR_PREFIX),
    Reject("mnp-one-owned-one-not",
           Bu(7, options=(mnp("2001:db8:1000::", 48), mnp("2001:db8:2000::", 48))),
           BaStatus.NOT_AUTHORIZED_FOR_PREFIX),
    Reject("mnp-for-router-without-prefixes",
           Bu(7, hoa=BARE_HOA, key=BARE_KEY, spi=BARE_SPI,
              options=(mnp("2001:db8:3000::", 48),)),
           BaStatus.NOT_AUTHORIZED_FOR_PREFIX),
    # Binding Identifiers (RFC 5648): the whole BU fails when every BID fails
    Reject("bid-while-primary-binding-exists", Bu(101, options=(bid(1),)),
           BaStatus.MCOA_NON_MCOA_BINDING_EXISTS, setup=PRIMARY),
    Reject("only-bid-zero", Bu(7, options=(bid(0),)), BaStatus.MCOA_MALFORMED),
    Reject("every-bid-malformed", Bu(7, options=(bid(0, COA1), bid(2, "ff02::1"))),
           BaStatus.MCOA_MALFORMED),
    Reject("only-bid-with-h-flag", Bu(7, options=(bid(1, h=True),)),
           BaStatus.MCOA_SIMULTANEOUS_HOME_AND_FOREIGN_PROHIBITED),
    Reject("only-new-bid-beyond-capacity", Bu(101, options=(bid(3, COA3),)),
           BaStatus.INSUFFICIENT_RESOURCES, setup=BULK_2,
           limits={"max_care_of_addresses": 2}),
    Reject("unusable-primary-coa", Bu(7, options=(mip6.AlternateCareOfAddress(
        IPv6Address("ff02::1")),)), BaStatus.INVALID_CARE_OF_ADDRESS),
    Reject("link-local-primary-coa", Bu(7, coa="fe80::1"), BaStatus.INVALID_CARE_OF_ADDRESS),
    # de-registration of what is not there
    Reject("deregister-without-binding", Bu(7, lifetime=0),
           BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE),
    Reject("deregister-bid-without-binding", Bu(7, lifetime=0, options=(bid(1),)),
           BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE),
    Reject("deregister-unknown-bid", Bu(101, lifetime=0, options=(bid(7),)),
           BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE, setup=REGISTERED),
]


def _params(cases: Sequence[Reject]) -> List[Any]:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)]
                         if c.xfail else []) for c in cases]


@pytest.mark.parametrize("case", _params(REJECTS))
def test_rejected_binding_update(case: Reject) -> None:
    harness = Harness(**case.limits)
    for earlier in case.setup:
        harness.accept(earlier)
    before = snapshot(harness.cache)
    sent = harness.send(case.bu)
    sequence = case.bu.seq if case.sequence is None else case.sequence
    ba = assert_ba(sent, case.status, sequence, signed=case.signed,
                   hoa=case.bu.hoa if case.signed else None)
    assert ba.find(mip6.GreKey) is None
    if case.signed:
        echoed = ba.find(mip6.ReplayProtection).timestamp
        if case.status == BaStatus.MIPV6_MESG_ID_REQD:
            assert echoed == mip6.ntp_from_unix(sent.wall)  # the HA's clock, to resync
        else:
            assert echoed == sent.timestamp
    assert_rejected(sent, before, harness)


DEREGISTER_133 = [c for c in REJECTS if c.id.startswith("deregister-")]


@pytest.mark.parametrize("case", DEREGISTER_133, ids=[c.id for c in DEREGISTER_133])
def test_deregistration_of_what_is_not_bound_is_133(case: Reject) -> None:
    """After authentication even a 133 is signed (the router proved its key)."""
    harness = Harness()
    for earlier in case.setup:
        harness.accept(earlier)
    before = snapshot(harness.cache)
    sent = harness.send(case.bu)
    assert_ba(sent, BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE, case.bu.seq, signed=True,
              hoa=case.bu.hoa)
    assert_rejected(sent, before, harness)


def test_rejected_binding_update_table_covers_every_status() -> None:
    covered = {case.status for case in REJECTS}
    assert covered >= {129, 130, 132, 133, 135, 139, 140, 141, 142, 143, 144, 145, 146, 164,
                       165, 169, 174}


def test_replay_window_edges_are_accepted() -> None:
    harness = Harness()
    harness.accept(Bu(1, options=(bid(1),), ts_shift=-6.9))
    harness.accept(Bu(2, options=(bid(1),), ts_shift=+6.9))


def test_rejection_does_not_consume_the_timestamp_or_sequence() -> None:
    """A rejected BU leaves no trace: the corrected BU may reuse both."""
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1),)))
    harness.send(Bu(101, options=(bid(1), mnp("2001:db8:2000::", 48))))  # 142
    harness.accept(Bu(101, options=(bid(1),)))


# -- accepted Binding Updates -------------------------------------------------------------
def assert_accepted(sent: Sent, sequence: int, *, status: int = BaStatus.ACCEPTED,
                    lifetime: int = LIFETIME, r: bool = True,
                    hoa: str = HOA) -> mip6.BindingAcknowledgement:
    ba = assert_ba(sent, status, sequence, lifetime=lifetime, r=r, hoa=hoa)
    assert ba.find(mip6.ReplayProtection).timestamp == sent.timestamp
    assert sent.verdict.changes_cache and sent.verdict.new is not None
    return ba


def coas(entry: Optional[RouterBinding]) -> Dict[int, Any]:
    assert entry is not None
    return {b.bid: b.care_of for b in entry.care_of}


def test_first_registration_individual_bid() -> None:
    harness = Harness()
    sent = harness.send(Bu(100, options=(bid(1, priority=3),)))
    ba = assert_accepted(sent, 100)
    assert [(o.bid, o.status, o.priority, o.care_of_address) for o in ba.binding_ids] == \
        [(1, 0, 3, None)]
    assert ba.find(mip6.BindingRefreshAdvice).interval == int(LIFETIME * 0.8)
    assert sent.verdict.old is None
    assert harness.entry() is None  # not before commit
    harness.handler.commit(sent.verdict)
    entry = harness.entry()
    assert entry == sent.verdict.new
    assert (entry.router, entry.home_address, entry.prefixes, entry.explicit,
            entry.mobile_router, entry.downlink_key, entry.last_sequence) == \
        ("mr1", IPv6Address(HOA), (OWNED,), False, True, GRE, 100)
    (binding,) = entry.care_of
    assert (binding.bid, binding.care_of, binding.priority, binding.sequence,
            binding.registered_at, binding.expires_at) == \
        (1, IPv6Address(COA1), 3, 100, harness.now, harness.now + LIFETIME * 4)
    assert len(harness.cache) == 1 and harness.cache.binding_count() == 1


def test_first_registration_without_bid_is_a_primary_binding() -> None:
    harness = Harness()
    sent = harness.accept(Bu(100))
    assert assert_accepted(sent, 100).binding_ids == []
    assert coas(harness.entry()) == {PRIMARY_BID: IPv6Address(COA1)}


def test_alternate_care_of_address_is_bound() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(mip6.AlternateCareOfAddress(IPv6Address(COA2)),)))
    assert coas(harness.entry()) == {PRIMARY_BID: IPv6Address(COA2)}


BULK_4 = (bid(1, COA1, 1), bid(2, COA2, 2), bid(3, COA4, 3), bid(4, COA4_B, 4))


def test_bulk_registration_of_four_ipv6_and_ipv4_care_of_addresses() -> None:
    harness = Harness()
    sent = harness.send(Bu(200, options=BULK_4, coa=COA3))
    ba = assert_accepted(sent, 200)
    assert sent.per_bid() == [(1, 0), (2, 0), (3, 0), (4, 0)]
    assert [o.priority for o in ba.binding_ids] == [1, 2, 3, 4]
    assert all(o.care_of_address is None for o in ba.binding_ids)  # no CoA in a BA
    assert sent.reply.dst == IPv6Address(COA3)  # the BA goes to the BU's source
    harness.handler.commit(sent.verdict)
    assert coas(harness.entry()) == {1: IPv6Address(COA1), 2: IPv6Address(COA2),
                                     3: IPv4Address(COA4), 4: IPv4Address(COA4_B)}
    assert {b.sequence for b in harness.entry().care_of} == {200}


def test_refresh_with_same_care_of_address_moves_only_the_expiry() -> None:
    harness = Harness()
    first = harness.accept(Bu(100, options=(bid(1), )))
    harness.tick(100)
    sent = harness.accept(Bu(101, options=(bid(1),), lifetime=50))
    assert_accepted(sent, 101, lifetime=50)
    assert sent.verdict.old == first.verdict.new
    (binding,) = harness.entry().care_of
    assert binding.care_of == IPv6Address(COA1)
    assert binding.registered_at == NOW0 + 1  # unchanged
    assert binding.expires_at == harness.now + 200
    assert binding.sequence == 101 and harness.entry().last_sequence == 101


def test_reregistration_from_a_moved_care_of_address_keeps_other_bids() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1, COA1), bid(2, COA2))))
    (_, two) = harness.entry().care_of
    harness.tick(30)
    sent = harness.accept(Bu(101, options=(bid(1),), coa=COA3))
    assert sent.per_bid() == [(1, 0)]
    one, kept = harness.entry().care_of
    assert (one.care_of, one.registered_at, one.sequence) == (IPv6Address(COA3), harness.now,
                                                              101)
    assert kept == two


def test_new_bid_added_next_to_existing_ones() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1),)))
    harness.accept(Bu(101, options=(bid(2),), coa=COA2))
    assert coas(harness.entry()) == {1: IPv6Address(COA1), 2: IPv6Address(COA2)}


def test_registration_without_bid_replaces_mcoa_bindings() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1, COA1), bid(2, COA2))))
    harness.accept(Bu(101, coa=COA3))
    assert coas(harness.entry()) == {PRIMARY_BID: IPv6Address(COA3)}


@pytest.mark.parametrize("last,fresh", [
    (65535, 0), (65535, 1), (65530, 4), (65000, 100), (100, 100 + 32768), (0, 32768),
], ids=["wrap-to-0", "wrap-to-1", "wrap-by-10", "wrap-far", "half-window", "half-from-0"])
def test_fresh_sequence_after_wraparound_is_accepted(last: int, fresh: int) -> None:
    harness = Harness()
    harness.accept(Bu(last, options=(bid(1),)))
    sent = harness.accept(Bu(fresh, options=(bid(1),)))
    assert_accepted(sent, fresh)
    assert harness.entry().last_sequence == fresh


def test_any_sequence_accepted_without_a_binding() -> None:
    harness = Harness()
    assert_accepted(harness.accept(Bu(0)), 0)


@pytest.mark.parametrize("requested,granted", [
    (0xFFFF, MAX_LIFETIME // 4), (151, 150), (150, 150), (10, 10), (2, 2),
], ids=["max-field", "just-over", "at-limit", "short", "two-units"])
def test_lifetime_capped_at_max_lifetime(requested: int, granted: int) -> None:
    harness = Harness()
    sent = harness.accept(Bu(1, options=(bid(1),), lifetime=requested))
    ba = assert_accepted(sent, 1, lifetime=granted)  # checks BRA < lifetime
    assert ba.find(mip6.BindingRefreshAdvice).interval >= 1
    assert harness.entry().care_of[0].expires_at == harness.now + granted * 4


def test_refresh_advice_shorter_than_a_one_unit_lifetime() -> None:
    harness = Harness()
    sent = harness.accept(Bu(1, lifetime=1))
    refresh = sent.ba.find(mip6.BindingRefreshAdvice)
    assert refresh is None or refresh.interval < sent.ba.lifetime


def test_implicit_mode_uses_configured_prefixes() -> None:
    harness = Harness()
    harness.accept(Bu(1))
    entry = harness.entry()
    assert (entry.prefixes, entry.explicit, entry.mobile_router) == ((OWNED,), False, True)


@pytest.mark.parametrize("prefixes,expected", [
    ([mnp("2001:db8:1000::", 48)], [MNP]),
    ([mnp("2001:db8:1000:1::", 64)], [SUBNET]),
    ([mnp("2001:db8:1000:1::", 64), mnp("2001:db8:1000:2::", 64)],
     [SUBNET, "2001:db8:1000:2::/64"]),
    ([mnp("2001:db8:1000:1::", 64), mnp("2001:db8:1000:1::", 64)], [SUBNET]),
], ids=["whole-prefix", "subnet", "two-subnets", "duplicate"])
def test_explicit_mode_accepts_owned_prefixes(prefixes: List[mip6.MobileNetworkPrefix],
                                              expected: List[str]) -> None:
    harness = Harness()
    assert_accepted(harness.accept(Bu(1, options=tuple(prefixes))), 1)
    entry = harness.entry()
    assert entry.explicit
    assert entry.prefixes == tuple(IPv6Network(p) for p in expected)


def test_mobile_node_without_r_flag_gets_no_prefixes_and_no_r_in_ba() -> None:
    harness = Harness()
    sent = harness.accept(host(1))
    assert_accepted(sent, 1, r=False, hoa=HOST_HOA)
    entry = harness.entry(HOST_HOA)
    assert (entry.router, entry.prefixes, entry.mobile_router) == ("host1", (), False)
    assert entry.downlink_key == default_gre_key("host1")


def test_mobile_router_registering_without_r_flag_is_a_plain_mobile_node() -> None:
    harness = Harness()
    sent = harness.accept(Bu(1, flags=AH, options=(mnp("2001:db8:1000::", 48),)))
    assert_accepted(sent, 1, r=False)
    assert harness.entry().prefixes == () and not harness.entry().mobile_router


def test_matching_nai_is_accepted() -> None:
    harness = Harness()
    harness.accept(Bu(1, options=(mip6.MobileNodeIdentifier.nai(NAI),)))


# -- bulk registrations with some bad BIDs: status 4 ----------------------------------------
PARTIAL = [
    ("bid-zero", bid(0, COA3), BaStatus.MCOA_MALFORMED),
    ("duplicate-bid", bid(1, COA3), BaStatus.MCOA_MALFORMED),
    ("h-flag", bid(3, COA3, h=True), BaStatus.MCOA_SIMULTANEOUS_HOME_AND_FOREIGN_PROHIBITED),
    ("multicast-ipv6-coa", bid(3, "ff02::1"), BaStatus.MCOA_MALFORMED),
    ("link-local-coa", bid(3, "fe80::1"), BaStatus.MCOA_MALFORMED),
    ("unspecified-coa", bid(3, "::"), BaStatus.MCOA_MALFORMED),
    ("loopback-coa", bid(3, "::1"), BaStatus.MCOA_MALFORMED),
    ("multicast-ipv4-coa", bid(3, "224.0.0.1"), BaStatus.MCOA_MALFORMED),
    ("broadcast-ipv4-coa", bid(3, "255.255.255.255"), BaStatus.MCOA_MALFORMED),
]


@pytest.mark.parametrize("bad,per_bid_status", [(b, s) for _, b, s in PARTIAL],
                         ids=[i for i, _, _ in PARTIAL])
def test_bulk_with_one_bad_bid_is_mcoa_notcomplete(bad: mip6.BindingIdentifier,
                                                   per_bid_status: int) -> None:
    harness = Harness()
    sent = harness.send(Bu(100, options=(bid(1, COA1), bad, bid(2, COA2))))
    assert_accepted(sent, 100, status=BaStatus.MCOA_NOTCOMPLETE)
    assert sent.per_bid() == [(1, 0), (bad.bid, per_bid_status), (2, 0)]
    harness.handler.commit(sent.verdict)
    assert coas(harness.entry()) == {1: IPv6Address(COA1), 2: IPv6Address(COA2)}


def test_bad_bid_for_an_existing_binding_keeps_that_binding() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1, COA1), bid(2, COA2))))
    before = harness.entry().by_bid()[2]
    sent = harness.accept(Bu(101, options=(bid(1, COA3), bid(2, "ff02::1"))))
    assert sent.per_bid() == [(1, 0), (2, BaStatus.MCOA_MALFORMED)]
    assert harness.entry().by_bid()[2] == before
    assert harness.entry().by_bid()[1].care_of == IPv6Address(COA3)


def test_more_care_of_addresses_than_allowed_get_130() -> None:
    harness = Harness(max_care_of_addresses=2)
    sent = harness.send(Bu(100, options=BULK_4))
    assert_accepted(sent, 100, status=BaStatus.MCOA_NOTCOMPLETE)
    assert sent.per_bid() == [(1, 0), (2, 0), (3, BaStatus.INSUFFICIENT_RESOURCES),
                              (4, BaStatus.INSUFFICIENT_RESOURCES)]
    harness.handler.commit(sent.verdict)
    assert set(coas(harness.entry())) == {1, 2}
    # Existing BIDs can still be refreshed when the table is full; new ones cannot.
    sent = harness.accept(Bu(101, options=(bid(2, COA3), bid(5, COA1))))
    assert sent.per_bid() == [(2, 0), (5, BaStatus.INSUFFICIENT_RESOURCES)]
    assert coas(harness.entry()) == {1: IPv6Address(COA1), 2: IPv6Address(COA3)}


# -- de-registration --------------------------------------------------------------------------
def test_deregister_one_bid_keeps_the_others() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1, COA1), bid(2, COA2), bid(3, COA3))))
    kept = {b for b in harness.entry().care_of if b.bid != 2}
    sent = harness.send(Bu(101, lifetime=0, options=(bid(2),)))
    assert_ba(sent, BaStatus.ACCEPTED, 101, r=True)
    assert sent.per_bid() == [(2, 0)]
    harness.handler.commit(sent.verdict)
    entry = harness.entry()
    assert set(entry.care_of) == kept and entry.last_sequence == 101


def test_deregister_all_without_bid_removes_the_entry() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1, COA1), bid(2, COA2))))
    harness.accept(host(5))
    sent = harness.send(Bu(101, lifetime=0))
    ba = assert_ba(sent, BaStatus.ACCEPTED, 101, r=True)
    assert ba.binding_ids == []
    assert sent.verdict.changes_cache and sent.verdict.new is None
    harness.handler.commit(sent.verdict)
    assert harness.entry() is None
    assert harness.entry(HOST_HOA) is not None  # other routers untouched


def test_deregister_every_bid_one_by_one_removes_the_entry() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1, COA1), bid(2, COA2))))
    harness.accept(Bu(101, lifetime=0, options=(bid(1),)))
    sent = harness.accept(Bu(102, lifetime=0, options=(bid(2),)))
    assert sent.verdict.new is None and harness.entry() is None


def test_deregister_known_and_unknown_bid_is_mcoa_notcomplete() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1, COA1), bid(2, COA2))))
    sent = harness.send(Bu(101, lifetime=0, options=(bid(1), bid(9))))
    assert_ba(sent, BaStatus.MCOA_NOTCOMPLETE, 101, r=True)
    assert sent.per_bid() == [(1, 0), (9, BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE)]
    harness.handler.commit(sent.verdict)
    assert set(coas(harness.entry())) == {2}


def test_deregister_primary_binding() -> None:
    harness = Harness()
    harness.accept(Bu(100))
    sent = harness.accept(Bu(101, lifetime=0))
    assert_ba(sent, BaStatus.ACCEPTED, 101, r=True)
    assert harness.entry() is None


def test_dsmip_deregistration() -> None:
    harness = Harness()
    harness.accept(dsmip(100, options=(bid(1),)))
    sent = harness.accept(dsmip(101, lifetime=0, options=(bid(1),)))
    assert_ba(sent, BaStatus.ACCEPTED, 101, r=True)
    assert harness.entry() is None


# -- GRE key (RFC 5845) -----------------------------------------------------------------------
def test_gre_key_option_stores_downlink_key_and_ba_carries_ours() -> None:
    harness = Harness()
    sent = harness.accept(Bu(1, options=(bid(1), mip6.GreKey(0xABCD))))
    assert sent.ba.find(mip6.GreKey) == mip6.GreKey(GRE)
    assert harness.entry().downlink_key == 0xABCD
    # A refresh without the option keeps the negotiated key and gets no GRE Key back.
    sent = harness.accept(Bu(2, options=(bid(1),)))
    assert sent.ba.find(mip6.GreKey) is None
    assert harness.entry().downlink_key == 0xABCD


def test_without_gre_key_option_the_configured_key_is_used() -> None:
    harness = Harness()
    sent = harness.accept(Bu(1, options=(bid(1),)))
    assert sent.ba.find(mip6.GreKey) is None
    assert harness.entry().downlink_key == GRE


def test_rejected_bu_with_gre_key_gets_no_gre_key() -> None:
    harness = Harness()
    sent = harness.send(Bu(1, options=(mip6.GreKey(0xABCD), mnp("2001:db8:2000::", 48))))
    assert sent.ba.status == BaStatus.NOT_AUTHORIZED_FOR_PREFIX
    assert sent.ba.find(mip6.GreKey) is None


# -- DSMIPv6 (RFC 5555) -----------------------------------------------------------------------
def test_dsmip_registration_with_ipv4_care_of_address() -> None:
    harness = Harness()
    sent = harness.send(dsmip(100, options=(bid(1),), sport=50000))
    assert sent.request.udp is not None
    assert_accepted(sent, 100)
    assert sent.reply.udp.dport == 50000 and sent.reply.udp.dst == IPv4Address(COA4)
    assert sent.reply.udp.src == IPv4Address(HA4)
    assert (sent.reply.src, sent.reply.dst) == (IPv6Address(HA), IPv6Address(HOA))
    # signed with the IPv4 CoA in the RFC 4285 authenticator
    assert sent.reply.authenticator_ok(mip6.MnHaKey(KEY, COA4, HOA))
    harness.handler.commit(sent.verdict)
    assert coas(harness.entry()) == {1: IPv4Address(COA4)}


def test_dsmip_primary_registration_and_refresh() -> None:
    harness = Harness()
    harness.accept(dsmip(100))
    assert coas(harness.entry()) == {PRIMARY_BID: IPv4Address(COA4)}
    harness.accept(dsmip(101, coa4=COA4_B))
    assert coas(harness.entry()) == {PRIMARY_BID: IPv4Address(COA4_B)}


def test_dsmip_bulk_registration() -> None:
    harness = Harness()
    sent = harness.accept(dsmip(100, options=BULK_4))
    assert sent.per_bid() == [(1, 0), (2, 0), (3, 0), (4, 0)]
    assert coas(harness.entry())[4] == IPv4Address(COA4_B)


# -- other messages ---------------------------------------------------------------------------
def unknown_message(harness: Harness, mh_type: int = 50, corrupt: bool = False,
                    udp: bool = False) -> Sent:
    message = mip6.GenericMessage(mh_type, bytes(10))
    if udp:
        packet = dsmip_packet(message, src=HOA, dst=HA, src4=COA4, dst4=HA4, sport=40000)
    else:
        packet = bu_packet(message, COA1, HOA, HA)
    raw = bytearray(packet.encode())
    if corrupt:
        start = len(raw) - len(packet.message.encode())
        raw[start + 4] ^= 0xFF  # the MH checksum
    return harness.deliver(bytes(raw))


def test_unknown_mh_type_gets_binding_error_status_2() -> None:
    harness = Harness()
    harness.tick()
    sent = unknown_message(harness)
    assert (sent.verdict.action, sent.verdict.status) == ("reply", BeStatus.UNRECOGNIZED_MH_TYPE)
    error = sent.reply.message
    assert isinstance(error, mip6.BindingError)
    assert (error.status, error.home_address) == (2, IPv6Address(HOA))
    assert (sent.reply.src, sent.reply.dst) == (IPv6Address(HA), IPv6Address(COA1))
    assert sent.reply.checksum_ok()
    assert not sent.verdict.changes_cache and len(harness.cache) == 0


def test_unknown_mh_type_over_dsmip_gets_binding_error_over_udp() -> None:
    harness = Harness()
    sent = unknown_message(harness, udp=True)
    assert sent.reply.udp.dst == IPv4Address(COA4) and sent.reply.udp.dport == 40000
    assert sent.reply.message.home_address == IPv6Address(0)  # no HAO in DSMIPv6
    assert sent.reply.checksum_ok()


def test_binding_errors_are_rate_limited_to_10_per_second() -> None:
    harness = Harness()
    actions = []
    for _ in range(BINDING_ERRORS_PER_SECOND + 3):
        harness.now += 0.05
        actions.append(unknown_message(harness).verdict.action)
    assert BINDING_ERRORS_PER_SECOND == 10
    assert actions == ["reply"] * 10 + ["drop"] * 3
    harness.now += 1.0
    assert unknown_message(harness).verdict.action == "reply"


def test_unknown_mh_type_with_bad_checksum_is_dropped() -> None:
    harness = Harness()
    sent = unknown_message(harness, corrupt=True)
    assert not sent.request.checksum_ok()
    assert sent.verdict.action == "drop" and sent.reply is None


@pytest.mark.parametrize("message", [
    mip6.BindingAcknowledgement(0, 0, 1, 10, []),
    mip6.BindingRefreshRequest(),
    mip6.BindingError(1, IPv6Address(HOA)),
], ids=["binding-ack", "binding-refresh-request", "binding-error"])
def test_messages_a_home_agent_does_not_take_are_dropped(message: mip6.MobilityMessage) -> None:
    harness = Harness()
    harness.accept(Bu(1))
    before = snapshot(harness.cache)
    sent = harness.deliver(bu_packet(message, COA1, HOA, HA).encode())
    assert sent.verdict.action == "drop" and sent.reply is None
    assert not sent.verdict.changes_cache and snapshot(harness.cache) == before


def test_bad_checksum_is_dropped_silently_and_leaves_no_trace() -> None:
    harness = Harness()
    harness.accept(Bu(1, options=(bid(1),)))
    before = snapshot(harness.cache)
    harness.tick()
    good, _ = harness.encode(Bu(2, options=(bid(1),), coa=COA2))
    bad = bytearray(good)
    bad[40 + 24 + 4] ^= 0x01  # MH checksum after IPv6 + Destination Options
    sent = harness.deliver(bytes(bad))
    assert sent.verdict.action == "drop" and sent.reply is None
    assert not sent.verdict.changes_cache and snapshot(harness.cache) == before
    # Neither the sequence number nor the timestamp was consumed.
    sent = harness.deliver(good)
    assert sent.verdict.status == BaStatus.ACCEPTED


# -- disagreements with the RFCs / the module docstring ----------------------------------------
def test_stale_bu_with_invalid_prefix_is_135() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1),)))
    sent = harness.send(Bu(100, options=(bid(1), mnp("2001:db8:1000::1", 48))))
    assert sent.ba.status == BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW
    assert sent.ba.sequence == 100


def test_135_sequence_lets_the_router_resync() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1),)))
    harness.accept(Bu(50, options=(bid(2, COA2),)))
    stale = harness.send(Bu(60, options=(bid(1),)))
    assert stale.ba.status == BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW
    resync = harness.send(Bu(mip6.seq_add(stale.ba.sequence), options=(bid(1),)))
    assert resync.ba.status == BaStatus.ACCEPTED


def test_stale_bu_without_bid_does_not_replace_mcoa_bindings() -> None:
    harness = Harness()
    harness.accept(Bu(100, options=(bid(1, COA1), bid(2, COA2))))
    before = snapshot(harness.cache)
    sent = harness.send(Bu(40, coa=COA3))
    assert (sent.ba.status, sent.ba.sequence) == (BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW, 100)
    assert_rejected(sent, before, harness)


def test_deregistration_with_bid_zero_is_malformed() -> None:
    harness = Harness()
    harness.accept(Bu(100))
    before = snapshot(harness.cache)
    sent = harness.send(Bu(101, lifetime=0, options=(bid(0),)))
    assert sent.ba.status == BaStatus.MCOA_MALFORMED or \
        sent.per_bid() == [(0, BaStatus.MCOA_MALFORMED)]
    assert snapshot(harness.cache) == before


def test_care_of_equal_to_home_address_deregisters() -> None:
    harness = Harness()
    harness.accept(Bu(100))
    sent = harness.send(Bu(101, options=(mip6.AlternateCareOfAddress(IPv6Address(HOA)),)))
    assert (sent.ba.status, sent.ba.lifetime) == (BaStatus.ACCEPTED, 0)
    harness.handler.commit(sent.verdict)
    assert harness.entry() is None
