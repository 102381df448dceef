"""The home agent's core: everything the OpenFlow app decides, with no framework.

The app (``home_agent.py``) feeds it events with the time passed in (switch
connected, what the switch holds, a packet-in frame, a timer tick, a batch confirmed
or failed) and carries out what comes back: :class:`Work` items, each a set of switch
changes to send behind a barrier plus the frames to send once the barrier confirms
them (or, if the switch refuses them, instead). State changes reach the switch before
the Binding Acknowledgement leaves, and one mobile router has at most one change in
flight (later packets for it wait), so the cache only ever holds what the switch has.
"""

from __future__ import annotations

import collections
import ipaddress
import itertools
import logging
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, List, Optional, Tuple

import mip6
from mip6.constants import BaStatus
from mip6.packet import SignallingPacket, decode_frame

from . import neighbor, pipeline
from .background import paced
from .bindings import BindingCache, RouterBinding
from .config import HomeAgentConfig
from .flowmodel import (Changes, Flow, SwitchState, address_text, apply_changes, diff,
                        diff_partial)
from .signalling import SignallingHandler, Verdict

LOG = logging.getLogger("nemo.ha")
STATUS_PAUSE_EVERY = 64  # status file entries built between two pauses of a background write
_ETH_IPV6, _ETH_IPV4 = b"\x86\xdd", b"\x08\x00"


@dataclass
class Frame:
    """An Ethernet frame to send out of ``port``."""

    port: int
    data: bytes


@dataclass
class Work:
    """Switch changes of one mobile router (or of the base pipeline) and what follows."""

    work_id: int
    changes: Changes
    router: Optional[str] = None
    verdict: Optional[Verdict] = None
    new_entry: Optional[RouterBinding] = None
    old_entry: Optional[RouterBinding] = None
    on_success: List[Frame] = field(default_factory=list)
    received: float = 0.0
    reply_to: Optional[Tuple[int, bytes, bytes]] = None  # port, peer MAC, our MAC
    startup: bool = False  # the first reconcile after a connection
    xids: List[int] = field(default_factory=list)  # of the messages carrying it


@dataclass
class Counters:
    """What happened, counted: ready for the metrics endpoint."""

    packet_ins: collections.Counter = field(default_factory=collections.Counter)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    drops: Dict[str, int] = field(default_factory=dict)  # switch drop flows, by reason
    switch_errors: int = 0

    def as_dict(self) -> Dict[str, object]:
        return {"packet_ins": dict(self.packet_ins), "statuses": dict(self.statuses),
                "drops": dict(self.drops), "switch_errors": self.switch_errors}


class HomeAgentCore:
    """Binding signalling, binding cache and switch state of one home agent."""

    def __init__(self, config: HomeAgentConfig) -> None:
        self.config = config
        self.cache = BindingCache()
        self.handler = SignallingHandler(config, self.cache)
        self.group_ids = pipeline.allocate_group_ids(r.name for r in config.mobile_routers)
        self.routers = {r.name: r for r in config.mobile_routers}
        self.counters = Counters()
        self.ports: Optional[pipeline.Ports] = None
        self.next_hop_mac: Optional[str] = config.next_hop_mac
        # The base pipeline as the switch holds it. Routers' flows are not mirrored: they
        # follow from each cache entry when it changes (the mirror was ~70 MB at 10,000 MRs).
        self.installed = SwitchState()
        self.ready = False
        self._ids = itertools.count(1)
        self._busy: Dict[str, Work] = {}
        self._waiting: Dict[str, Deque[Tuple[SignallingPacket, bytes, int, float, float]]] = \
            collections.defaultdict(collections.deque)
        self.dirty = False  # the state file is behind the cache
        self.status_changed = False  # bindings changed beyond lifetimes (status file)

    # -- switch life cycle ---------------------------------------------------------
    def restore(self, entries: List[RouterBinding], timestamps: Dict[str, int],
                next_hop_mac: Optional[str], group_ids: Optional[Dict[str, int]] = None
                ) -> None:
        """Load persisted state before the switch connects (known routers only).

        ``group_ids``: the last allocation, kept so no live group is renumbered.
        """
        if group_ids:
            self.group_ids = pipeline.allocate_group_ids(self.routers, group_ids)
        for entry in entries:
            router = self.routers.get(entry.router)
            if router is not None and router.home_address == entry.home_address:
                self.cache.put(entry.home_address, entry)
        self.handler.last_timestamps.update(timestamps)
        if self.config.next_hop_mac is None and next_hop_mac:
            self.next_hop_mac = next_hop_mac

    def desired(self) -> SwitchState:
        assert self.ports is not None
        return pipeline.compile_all(self.config, self.ports, self.next_hop_mac, self.cache,
                                    self.group_ids)

    def connected(self, ports: pipeline.Ports) -> None:
        self.ports = ports
        self.ready = False
        self._busy.clear()
        self._waiting.clear()

    def reconcile(self, installed: SwitchState) -> Work:
        """What to send so the switch holds exactly the desired state (nothing if it does)."""
        desired = self.desired()
        changes = diff(desired, installed)
        self.installed = SwitchState({k: f for k, f in desired.flows.items()
                                      if f.cookie == pipeline.BASE_COOKIE},
                                     {}, dict(desired.meters))
        LOG.info("reconcile: %d changes (%s)", len(changes), _summary(changes))
        return Work(next(self._ids), changes)

    def disconnected(self) -> None:
        self.ready = False
        self.ports = None

    # -- packet-ins ------------------------------------------------------------------
    def packet_in(self, data: bytes, in_port: int, now: float, wall: float) -> List[Work]:
        """Handle one packet-in; returns the work to carry out (possibly none)."""
        if not self.ready or self.ports is None:
            self.counters.packet_ins["before ready"] += 1
            return []
        advert = neighbor.parse_advertisement(data)
        if advert is not None:
            return self._advertisement(*advert)
        try:
            packet = decode_frame(data)
        except mip6.DecodeError as exc:
            self.counters.packet_ins["malformed"] += 1
            LOG.debug("malformed signalling from port %s: %s", in_port, exc)
            return []
        self.counters.packet_ins[type(packet.message).__name__] += 1
        return self._dispatch(packet, data, in_port, now, wall)

    def _dispatch(self, packet: SignallingPacket, data: bytes, in_port: int, received: float,
                  wall: float) -> List[Work]:
        """Handle it now, or queue it behind the change in flight for the same router."""
        router = self._router_name(packet)
        if router is not None and router in self._busy:
            self._waiting[router].append((packet, data, in_port, received, wall))
            return []
        return self._signal(packet, data, in_port, received, wall)

    def _router_name(self, packet: SignallingPacket) -> Optional[str]:
        if not packet.is_binding_update:
            return None
        router = self.config.router_by_home_address(packet.mobile_home_address)
        return router.name if router else None

    def _signal(self, packet: SignallingPacket, data: bytes, in_port: int, now: float,
                wall: float) -> List[Work]:
        verdict = self.handler.handle(packet, now, wall)
        if verdict.action == "drop":
            self.counters.packet_ins[f"dropped: {verdict.reason}"] += 1
            LOG.info("signalling dropped: %s (from %s)", verdict.reason, packet.src)
            return []
        reply_to = (in_port, data[6:12], data[0:6])
        reply = _frame(reply_to, verdict.encoded_reply())
        work = Work(next(self._ids), Changes(), verdict.router, verdict, received=now,
                    reply_to=reply_to, on_success=[reply])
        if verdict.changes_cache:
            work.old_entry, work.new_entry = verdict.old, verdict.new
            work.changes = self._router_changes(verdict.router, verdict.old, verdict.new)
            self._busy[verdict.router] = work
        return [work]

    def _failure_reply(self, verdict: Verdict) -> bytes:
        """The BA for an update whose forwarding state the switch refused.

        Built only when it is needed: signing a BA is a good share of a BU's cost.
        """
        ba = verdict.reply.message
        explicit = verdict.new.explicit if verdict.new else False
        status = BaStatus.INVALID_PREFIX if explicit else BaStatus.FORWARDING_SETUP_FAILED
        failed = mip6.BindingAcknowledgement(status, 0, ba.sequence, 0,
                                             [o for o in ba.options
                                              if isinstance(o, (mip6.ReplayProtection,
                                                                mip6.Authentication))])
        reply = SignallingPacket(verdict.reply.src, verdict.reply.dst, failed,
                                 routing_home_address=verdict.reply.routing_home_address,
                                 udp=verdict.reply.udp)
        return reply.encode(auth=verdict.reply_key)

    def _router_changes(self, name: str, old: Optional[RouterBinding],
                        new: Optional[RouterBinding]) -> Changes:
        if _forwarding(old) == _forwarding(new):
            return Changes()  # a refresh: same CoAs, keys and prefixes, nothing to compile
        router, gid = self.routers[name], self.group_ids[name]
        assert self.ports is not None
        return diff_partial(pipeline.compile_router(router, new, gid, self.ports),
                            pipeline.compile_router(router, old, gid, self.ports))

    def _advertisement(self, target: ipaddress.IPv6Address, mac: str) -> List[Work]:
        self.counters.packet_ins["neighbor advertisement"] += 1
        if self.config.next_hop_mac is not None or target != self.config.next_hop \
                or mac == self.next_hop_mac:
            return []
        LOG.info("next hop %s is at %s", target, mac)
        self.next_hop_mac = mac
        self.dirty = self.status_changed = True
        return [self._base_work()]

    def _base_work(self) -> Work:
        assert self.ports is not None
        new_base = pipeline.compile_base(self.config, self.ports, self.next_hop_mac)
        old_base = SwitchState(dict(self.installed.flows), {}, dict(self.installed.meters))
        changes = diff_partial(new_base, old_base)
        apply_changes(self.installed, changes)
        return Work(next(self._ids), changes)

    # -- confirmations -----------------------------------------------------------------
    def confirmed(self, work: Work, now: float) -> Tuple[List[Frame], List[Work]]:
        """The switch holds ``work``'s changes: commit, release the reply, resume waiters."""
        # A refresh that leaves the switch as it was is routine: logged at DEBUG (so that
        # thousands of MRs refreshing do not flood the log) and no reason to rewrite the
        # status file, which shows remaining lifetimes as of its writing anyway.
        routine = (work.verdict is not None and work.verdict.changes_cache
                   and work.old_entry is not None and not len(work.changes)
                   and work.verdict.status == BaStatus.ACCEPTED
                   and work.verdict.log.get("action") == "register")
        if work.verdict is not None and work.verdict.changes_cache:
            self.handler.commit(work.verdict)
            self.dirty = True
            self.status_changed = self.status_changed or not routine
        elif work.router is not None and work.verdict is None:  # expiry
            self.cache.put(work.old_entry.home_address, work.new_entry)
            self.dirty = self.status_changed = True
        if work.verdict is not None and work.verdict.reply is not None \
                and isinstance(work.verdict.reply.message, mip6.BindingAcknowledgement):
            self.counters.statuses[mip6.status_name(work.verdict.status)] += 1
        if work.verdict is not None:
            level = logging.DEBUG if routine else logging.INFO
            if LOG.isEnabledFor(level):
                record = dict(work.verdict.log)
                if routine:
                    record["action"] = "refresh"
                record["status"] = mip6.status_name(record.get("status",
                                                               work.verdict.status or 0))
                record["latency_ms"] = round((now - work.received) * 1000, 2)
                LOG.log(level, "BU %s", " ".join(f"{k}={v}" for k, v in record.items()))
        return work.on_success, self._release(work, now)

    def failed(self, work: Work, error: str, now: float) -> Tuple[List[Frame], List[Work]]:
        """The switch refused ``work``: keep the cache as it was, answer with a failure."""
        self.counters.switch_errors += 1
        LOG.error("switch refused changes of %s: %s", work.router or "base pipeline", error)
        frames: List[Frame] = []
        if work.verdict is not None and work.verdict.changes_cache:
            explicit = work.new_entry.explicit if work.new_entry else False
            refused = BaStatus.INVALID_PREFIX if explicit else BaStatus.FORWARDING_SETUP_FAILED
            self.counters.statuses[mip6.status_name(refused)] += 1
            if work.reply_to is not None and work.verdict.reply is not None:
                frames.append(_frame(work.reply_to, self._failure_reply(work.verdict)))
        return frames, self._release(work, now)

    def _release(self, work: Work, now: float) -> List[Work]:
        if work.router is None or self._busy.get(work.router) is not work:
            return []
        del self._busy[work.router]
        follow: List[Work] = []
        queue = self._waiting.get(work.router)
        while queue and work.router not in self._busy:
            packet, data, port, received, wall = queue.popleft()
            follow.extend(self._dispatch(packet, data, port, received, wall))
        return follow

    # -- timers --------------------------------------------------------------------------
    def expire(self, now: float) -> List[Work]:
        """Remove expired bindings (their buckets; the MR's flows with the last one)."""
        if not self.ready:
            return []
        works = []
        for old, new in self.cache.expire(now):
            if old.router in self._busy:
                continue  # next tick
            gone = [b.bid for b in old.expired(now)]
            LOG.info("binding expired: mr=%s bids=%s remaining=%s", old.router, gone,
                     [b.bid for b in new.care_of] if new else [])
            work = Work(next(self._ids), self._router_changes(old.router, old, new),
                        old.router, None, new, old, received=now)
            self._busy[old.router] = work
            works.append(work)
        return works

    def neighbor_solicitation(self) -> Optional[Frame]:
        """A solicitation for the next hop while its MAC is unknown."""
        if not self.ready or self.ports is None or self.next_hop_mac is not None \
                or self.config.next_hop is None:
            return None
        return Frame(self.ports.uplink, neighbor.solicitation_frame(
            self.config.next_hop, self.config.addresses[0], self.ports.local_mac))

    def drop_counters(self, flows: List[Tuple[Flow, int]],
                      aggregates: Optional[Dict[str, int]] = None) -> bool:
        """Counters of the drop flows: (flow, packet count) pairs from a flow-stats reply
        plus, per reason, packet totals of aggregate-stats replies. True if they changed.
        """
        totals: Dict[str, int] = collections.Counter()
        for flow, packets in flows:
            reason = pipeline.drop_reason(flow)
            if reason is not None:
                totals[reason] += packets
        for reason, packets in (aggregates or {}).items():
            totals[reason] += packets
        drops = {reason: n for reason, n in totals.items()}
        changed = drops != self.counters.drops
        self.counters.drops = drops
        return changed

    def status(self, now: float) -> Dict[str, object]:
        """A snapshot for operators: bindings, counters, readiness."""
        return self.status_snapshot(now)()

    def status_snapshot(self, now: float
                        ) -> Callable[[Optional[Callable[[], None]]], Dict[str, object]]:
        """The status as of ``now``, to be built later (in slices: the builder calls the
        ``pause`` it is given every few entries).

        Taking it is cheap (a list of the immutable entries, copies of the counters);
        building it is what costs at thousands of bindings.
        """
        entries, counters = list(self.cache), self.counters.as_dict()
        ready, next_hop_mac = self.ready, self.next_hop_mac
        return lambda pause=None: _status_document(entries, counters, ready, next_hop_mac,
                                                   now, pause)


def _status_document(entries: List[RouterBinding], counters: Dict[str, object], ready: bool,
                     next_hop_mac: Optional[str], now: float,
                     pause: Optional[Callable[[], None]] = None) -> Dict[str, object]:
    bindings = []
    for e in paced(entries, STATUS_PAUSE_EVERY, pause):  # built in the background
        bindings.append({
            "router": e.router, "home_address": address_text(e.home_address),
            "prefixes": [str(p) for p in e.prefixes],
            "mode": "explicit" if e.explicit else "implicit",
            "care_of": [{"bid": b.bid, "care_of": address_text(b.care_of),
                         "priority": b.priority,
                         "remaining": round(b.remaining(now), 1)} for b in e.care_of],
        })
    return {"ready": ready, "next_hop_mac": next_hop_mac, "bindings": bindings,
            "counters": counters}


def _forwarding(entry: Optional[RouterBinding]) -> Optional[Tuple]:
    """What the switch state of one MR depends on (lifetimes and sequences do not)."""
    if entry is None or not entry.care_of:
        return None
    return (entry.prefixes, entry.home_address, entry.downlink_key,
            tuple((b.bid, b.care_of, b.priority) for b in entry.care_of))


def _frame(reply_to: Tuple[int, bytes, bytes], ip_packet: bytes) -> Frame:
    port, peer_mac, our_mac = reply_to
    ethertype = _ETH_IPV6 if ip_packet[0] >> 4 == 6 else _ETH_IPV4
    return Frame(port, bytes(peer_mac) + bytes(our_mac) + ethertype + ip_packet)


def _summary(changes: Changes) -> str:
    parts = [f"{name}={len(getattr(changes, name))}" for name in changes.__dataclass_fields__
             if getattr(changes, name)]
    return ", ".join(parts) or "none"
