"""The Binding Update List: the mobile router's registration state, one entry per BID.

Pure and clock-free: every method takes ``now`` (monotonic seconds) and returns the
Binding Updates to send (:class:`Send`); the agent signs and transmits them. What it
implements (RFC 6275 11.7-11.8, RFC 5648, RFC 3963 for the MR side):

* one entry per care-of address, with a stable Binding Identifier (BID) kept by the
  caller across restarts, and one sequence counter for all of them; every
  transmission, retransmissions included, takes a new sequence number;
* retransmission without a BA after 1.5 s for the first registration, 1 s otherwise,
  doubling up to 32 s and staying there;
* refresh at 95 % of the granted lifetime, or earlier at the Binding Refresh Advice;
  a binding whose lifetime ran out is no longer usable for traffic;
* BA statuses: accepted -> usable; 135 -> take the HA's sequence + 1 and resend at
  once; partial MCoA success (4) -> only the failed BIDs are retried; 132/133 and a
  home agent that stops answering -> the next configured home agent; authentication
  or other refusals -> logged and retried with backoff;
* a lost care-of address stops being usable at once and is de-registered (lifetime
  0 with its BID) through a surviving care-of address; shutdown de-registers all;
* a care-of address whose path went silent (:meth:`BindingUpdateList.path_failed`,
  from :mod:`mr_agent.liveness`) stops being usable and is de-registered the same way,
  but stays in the list: it is registered again over its own path, first after 1 s,
  then with the usual doubling backoff, until a BA proves the path (then it is usable
  and probed again). An attempt without a BA within its proof window (0.25 s at
  first) is undone by a de-registration over a survivor: a path that fails downstream
  only lets the BU through, and the home agent sends a share of the traffic into the
  hole for as long as the CoA stays bound, so the window is kept short. A BA that
  arrives after its attempt was undone proves the path slow, not broken: the window
  grows to twice that BA's delay and the CoA is registered again at once. Unanswered
  recovery BUs do not count against the home agent.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple, Union

import mip6
from mip6.constants import BaStatus, BuFlag

from .config import MobileRouterAgentConfig

CareOf = Union[ipaddress.IPv6Address, ipaddress.IPv4Address]
FIRST_REGISTRATION_TIMEOUT = 1.5  # InitialBindackTimeoutFirstReg
INITIAL_BINDACK_TIMEOUT = 1.0
MAX_BINDACK_TIMEOUT = 32.0
REFRESH_SHARE = 0.95
SWITCH_HOME_AGENT_AFTER = 3  # unanswered transmissions before the next home agent
DEREGISTRATION_TRIES = 3
RECOVERY_PROOF_WINDOW = 0.25  # a recovery attempt's first wait for its BA (then undone)
_WRONG_HOME_AGENT = {BaStatus.HOME_REGISTRATION_NOT_SUPPORTED, BaStatus.NOT_HOME_SUBNET,
                     BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE}


class State(enum.Enum):
    REGISTERING = "registering"  # a BU is out, no (good) BA yet
    REGISTERED = "registered"  # acknowledged; refreshed before it runs out
    BACKOFF = "backoff"  # refused; retried after the backoff
    DEREGISTERING = "deregistering"  # lost CoA: its removal is being signalled


@dataclass
class Entry:
    """One BID: a care-of address, its uplink and its registration."""

    bid: int
    care_of: CareOf
    uplink: str
    priority: int
    state: State = State.REGISTERING
    sequence: Optional[int] = None  # of the BU in flight
    timeout: float = FIRST_REGISTRATION_TIMEOUT
    retransmit_at: Optional[float] = None
    refresh_at: Optional[float] = None
    expires_at: Optional[float] = None
    granted: int = 0
    sent_at: Optional[float] = None  # of the BU in flight: the lifetime counts from it
    acknowledged_once: bool = False
    unanswered: int = 0
    last_status: Optional[int] = None
    silent_since: Optional[float] = None  # its path stopped answering probes
    path_failures: int = 0
    proof_window: float = RECOVERY_PROOF_WINDOW  # a recovery attempt's wait for its BA
    undone: Optional[Tuple[int, float]] = None  # last undone attempt: sequence, sent at

    def usable(self, now: float) -> bool:
        """Acknowledged, not expired, not being removed: traffic may use it."""
        return (self.state in (State.REGISTERED, State.REGISTERING)
                and self.expires_at is not None and now < self.expires_at)


@dataclass
class Send:
    """A Binding Update to sign and send from ``via`` to ``home_agent``."""

    via: CareOf
    home_agent: ipaddress.IPv6Address
    message: mip6.BindingUpdate
    bids: Tuple[int, ...]
    purpose: str  # "register", "refresh", "retransmit", "deregister"


@dataclass
class Event:
    """Something worth a log line."""

    level: str  # "info", "warning", "error"
    text: str


class BindingUpdateList:
    """All registrations of one mobile router with its home agent."""

    def __init__(self, config: MobileRouterAgentConfig, next_sequence: int = 0) -> None:
        self.config = config
        self.entries: Dict[int, Entry] = {}
        self.sequence = (next_sequence - 1) % 65536  # the last number used
        self.ha_index = 0
        self.events: List[Event] = []
        self._in_flight: Dict[int, Tuple[str, Tuple[int, ...]]] = {}  # seq -> purpose, bids
        self._leaving: Dict[int, Tuple[Entry, int]] = {}  # bid -> entry, tries left

    @property
    def home_agent(self) -> ipaddress.IPv6Address:
        return self.config.home_agents[self.ha_index]

    # -- care-of addresses appear and disappear -------------------------------------
    def add_care_of(self, bid: int, care_of: CareOf, uplink: str, priority: int,
                    now: float) -> List[Send]:
        """A care-of address is available: register it (nothing if it already is)."""
        entry = self.entries.get(bid)
        if entry is not None and entry.care_of == care_of and entry.state != State.BACKOFF:
            return []
        self._leaving.pop(bid, None)
        entry = Entry(bid, care_of, uplink, priority)
        self.entries[bid] = entry
        self._log("info", f"care-of address {care_of} on {uplink}: registering as BID {bid}")
        return [self._register(entry, now, "register")]

    def remove_care_of(self, bids: Union[int, Sequence[int]], now: float) -> List[Send]:
        """Care-of addresses are gone: stop using them now; de-register them (one BU with
        their BIDs) over a surviving care-of address."""
        leaving = []
        for bid in [bids] if isinstance(bids, int) else list(bids):
            entry = self.entries.pop(bid, None)
            if entry is None:
                continue
            self._log("warning", f"care-of address {entry.care_of} (BID {bid}) lost")
            if not entry.acknowledged_once and entry.sent_at is None:
                continue  # no BU ever left for it: the home agent cannot have bound it
            entry.state = State.DEREGISTERING
            self._leaving[bid] = (entry, DEREGISTRATION_TRIES)
            leaving.append(bid)
        return self._send_deregistration(leaving, now) if leaving else []

    def path_failed(self, bids: Union[int, Sequence[int]], now: float,
                    suspects: Sequence[int] = ()) -> List[Send]:
        """The paths through these care-of addresses are silent (the links may well be
        up): stop using them now, de-register their BIDs (one BU) over a surviving
        care-of address, like lost addresses, and keep re-registering each over its own
        path with the usual backoff; a BA over that path makes it usable again. The
        de-registration avoids ``suspects`` (care-of addresses whose probes are going
        unanswered too) and the failed ones' uplinks when it can: they likely share the
        failure."""
        leaving, uplinks = [], set()
        for bid in [bids] if isinstance(bids, int) else list(bids):
            entry = self.entries.get(bid)
            if entry is None or not entry.usable(now):
                continue
            if entry.sequence is not None:
                self._in_flight.pop(entry.sequence, None)  # a refresh in flight: forget it
            entry.silent_since = now
            entry.path_failures += 1
            entry.state = State.BACKOFF
            entry.sequence = None
            entry.expires_at = entry.refresh_at = None
            entry.timeout = INITIAL_BINDACK_TIMEOUT
            # The first re-registration waits: the de-registration (over another path)
            # must reach the home agent first, or it would undo a re-registration that
            # got through.
            entry.retransmit_at = now + INITIAL_BINDACK_TIMEOUT
            if entry.acknowledged_once:
                self._leaving[bid] = (replace(entry, state=State.DEREGISTERING),
                                      DEREGISTRATION_TRIES)
                leaving.append(bid)
                uplinks.add(entry.uplink)
        if not leaving:
            return []
        return self._send_deregistration(leaving, now, avoid=(set(suspects), uplinks))

    def _undo_recovery(self, entry: Entry, now: float) -> List[Send]:
        """A recovery attempt of a silent CoA got no BA within its proof window. If its
        path fails downstream only, the BU did reach the home agent, which bound the CoA
        again and sends traffic into the hole: de-register it (over a survivor) before
        the next attempt, after the backoff. A BA of that attempt arriving later does
        not make the CoA usable (the de-registration is newer), but shows how slow the
        path is (see :meth:`_late_recovery_ack`)."""
        self._in_flight.pop(entry.sequence, None)
        if entry.sequence is not None and entry.sent_at is not None:
            entry.undone = (entry.sequence, entry.sent_at)
        entry.sequence = None
        entry.state = State.BACKOFF
        entry.retransmit_at = now + entry.timeout
        entry.timeout = min(entry.timeout * 2, MAX_BINDACK_TIMEOUT)
        self._leaving[entry.bid] = (replace(entry, state=State.DEREGISTERING),
                                    DEREGISTRATION_TRIES)
        return self._send_deregistration([entry.bid], now, avoid=(set(), {entry.uplink}))

    def shutdown(self, now: float) -> List[Send]:
        """De-register everything with one BU (lifetime 0, no BID) over any CoA."""
        via = self._survivor(now, any_state=True)
        self.entries.clear()
        self._leaving.clear()
        if via is None:
            return []
        message = self._bu(0, [], explicit=False)
        self._in_flight[message.sequence] = ("deregister", ())
        return [Send(via.care_of, self.home_agent, message, (), "deregister")]

    # -- Binding Acknowledgements -------------------------------------------------------
    def on_ack(self, ba: mip6.BindingAcknowledgement, now: float) -> List[Send]:
        """Process a BA (already authenticated by the caller); returns BUs to send."""
        if ba.status == BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW:
            if ba.sequence in self._in_flight or not mip6.seq_is_newer(self.sequence,
                                                                       ba.sequence):
                # Continue after the home agent's last accepted number, never reusing ours.
                self.sequence = ba.sequence
                self._log("warning", f"sequence out of window: continuing after {ba.sequence}")
                pending = [e for e in self.entries.values() if e.state == State.REGISTERING]
                self._in_flight.clear()
                return [self._register(e, now, "retransmit") for e in pending]
            return []  # already resynchronised by an earlier 135
        purpose, bids = self._in_flight.pop(ba.sequence, (None, ()))
        if purpose is None:
            late = next((e for e in self.entries.values()
                         if e.undone is not None and e.undone[0] == ba.sequence), None)
            if late is not None:
                sent_at, late.undone = late.undone[1], None
                if ba.status < 128:
                    return self._late_recovery_ack(late, now - sent_at, now)
            return []  # a BA for a BU we no longer wait for (a retransmission's twin)
        for entry in self.entries.values():
            entry.unanswered = 0
        if purpose == "deregister":
            for bid in bids:
                self._leaving.pop(bid, None)
            self._log("info", f"de-registered BID(s) {list(bids)}: status {ba.status}")
            return []
        if ba.status in _WRONG_HOME_AGENT:
            return self._next_home_agent(now, f"status {mip6.status_name(ba.status)}")
        per_bid = {o.bid: o.status for o in ba.find_all(mip6.BindingIdentifier)}
        sends: List[Send] = []
        for bid in bids:
            entry = self.entries.get(bid)
            if entry is None or entry.sequence != ba.sequence:
                continue
            status = per_bid.get(bid, 0) or ba.status
            if ba.status >= 128 and per_bid.get(bid, 0) == 0:
                status = ba.status
            entry.last_status = status
            if status < 128:
                self._accepted(entry, ba, now)
            else:
                self._refused(entry, status, now)
        return sends

    def _accepted(self, entry: Entry, ba: mip6.BindingAcknowledgement, now: float) -> None:
        granted = ba.lifetime * 4
        refresh = granted * REFRESH_SHARE
        advice = ba.find(mip6.BindingRefreshAdvice)
        if advice is not None and 0 < advice.interval * 4 < refresh:
            refresh = advice.interval * 4
        first = not entry.acknowledged_once
        start = entry.sent_at if entry.sent_at is not None else now  # RFC 6275 11.7.3
        entry.state = State.REGISTERED
        entry.acknowledged_once = True
        entry.granted = granted
        entry.expires_at = start + granted
        entry.refresh_at = start + refresh
        entry.retransmit_at = None
        entry.sequence = None
        entry.timeout = INITIAL_BINDACK_TIMEOUT
        if self._leaving.pop(entry.bid, None) is not None:
            self._log("info", f"BID {entry.bid} ({entry.care_of}) bound again: its pending "
                              "de-registration is dropped")
        if entry.silent_since is not None:
            self._log("info", f"care-of {entry.care_of} (bid {entry.bid}) answers again after "
                              f"{now - entry.silent_since:.1f} s: usable, probing resumes")
            entry.silent_since = None
        if first:
            self._log("info", f"BID {entry.bid} ({entry.care_of}) registered for {granted} s")

    def _late_recovery_ack(self, entry: Entry, delay: float, now: float) -> List[Send]:
        """A recovery attempt was undone, then its BA came: the path works both ways,
        only slower than the proof window. Widen the window past that delay and try
        again at once (the undo de-registered the CoA meanwhile)."""
        if entry.silent_since is None or entry.state != State.BACKOFF:
            return []
        entry.proof_window = min(MAX_BINDACK_TIMEOUT, max(2 * delay, 2 * entry.proof_window))
        self._log("info", f"care-of {entry.care_of} (bid {entry.bid}): the BA of an undone "
                          f"recovery attempt came after {delay * 1000:.0f} ms; trying again with "
                          f"{entry.proof_window:.2f} s to prove the path")
        return [self._register(entry, now, "retransmit")]

    def _refused(self, entry: Entry, status: int, now: float) -> None:
        entry.state = State.BACKOFF
        entry.sequence = None
        entry.refresh_at = None
        entry.retransmit_at = now + entry.timeout
        level = "error" if status in (BaStatus.MIPV6_AUTH_FAIL, BaStatus.MIPV6_ID_MISMATCH,
                                      BaStatus.MIPV6_MESG_ID_REQD) else "warning"
        self._log(level, f"BID {entry.bid} ({entry.care_of}) refused: "
                         f"{mip6.status_name(status)}; retry in {entry.timeout:g} s")
        entry.timeout = min(entry.timeout * 2, MAX_BINDACK_TIMEOUT)

    # -- timers ---------------------------------------------------------------------------
    def tick(self, now: float) -> List[Send]:
        """Retransmissions, retries after backoff, refreshes, expiry."""
        sends: List[Send] = []
        for entry in list(self.entries.values()):
            if entry.expires_at is not None and now >= entry.expires_at:
                entry.expires_at = None
                self._log("warning", f"BID {entry.bid} ({entry.care_of}) expired "
                                     "before a refresh was acknowledged")
                if entry.state == State.REGISTERED:
                    entry.timeout = INITIAL_BINDACK_TIMEOUT
                    sends.append(self._register(entry, now, "register"))
                    continue
            if entry.state == State.REGISTERING and entry.silent_since is not None and \
                    entry.retransmit_at is not None and now >= entry.retransmit_at:
                sends.extend(self._undo_recovery(entry, now))
                continue
            if entry.state in (State.REGISTERING, State.BACKOFF) and \
                    entry.retransmit_at is not None and now >= entry.retransmit_at:
                if entry.state == State.REGISTERING and entry.silent_since is None:
                    entry.unanswered += 1
                    if entry.unanswered >= SWITCH_HOME_AGENT_AFTER and \
                            len(self.config.home_agents) > 1:
                        return self._next_home_agent(now, "no answer")
                if entry.state == State.REGISTERING:
                    entry.timeout = min(entry.timeout * 2, MAX_BINDACK_TIMEOUT)
                sends.append(self._register(entry, now, "retransmit"))
            elif entry.state == State.REGISTERED and entry.refresh_at is not None \
                    and now >= entry.refresh_at:
                entry.timeout = INITIAL_BINDACK_TIMEOUT
                sends.append(self._register(entry, now, "refresh"))
        due = [bid for bid, (entry, _) in self._leaving.items()
               if entry.retransmit_at is not None and now >= entry.retransmit_at]
        if due:
            # A silent path's de-registration again avoids its uplink (see path_failed).
            silent = {self._leaving[b][0].uplink for b in due
                      if self._leaving[b][0].silent_since is not None}
            sends.extend(self._send_deregistration(due, now, avoid=(set(), silent)))
        return sends

    def next_deadline(self) -> Optional[float]:
        """When :meth:`tick` next has something to do."""
        times = []
        for entry in list(self.entries.values()) + [e for e, _ in self._leaving.values()]:
            times += [t for t in (entry.retransmit_at, entry.refresh_at, entry.expires_at)
                      if t is not None]
        return min(times, default=None)

    # -- what traffic may use -----------------------------------------------------------------
    def usable(self, now: float) -> List[Entry]:
        """Entries traffic may use, best BID-PRI first."""
        return sorted((e for e in self.entries.values() if e.usable(now)),
                      key=lambda e: (e.priority, e.bid))

    # -- building messages ----------------------------------------------------------------------
    def _next_sequence(self) -> int:
        self.sequence = mip6.seq_add(self.sequence, 1)
        return self.sequence

    def _bu(self, lifetime_seconds: int, options: List[mip6.MobilityOption],
            explicit: bool = True) -> mip6.BindingUpdate:
        head: List[mip6.MobilityOption] = []
        if lifetime_seconds and explicit and self.config.explicit_prefixes:
            head = [mip6.MobileNetworkPrefix(p.network_address, p.prefixlen)
                    for p in self.config.prefixes]
        if lifetime_seconds and self.config.downlink_key:
            options = options + [mip6.GreKey(self.config.downlink_key)]
        flags = BuFlag.A | BuFlag.H | BuFlag.R
        units = min(0xFFFF, (lifetime_seconds + 3) // 4)
        return mip6.BindingUpdate(self._next_sequence(), int(flags), units, head + options)

    def _register(self, entry: Entry, now: float, purpose: str) -> Send:
        options: List[mip6.MobilityOption] = [mip6.BindingIdentifier(entry.bid,
                                                                     priority=entry.priority)]
        if entry.care_of.version == 4:
            options.append(mip6.IPv4CareOfAddress(entry.care_of))
        message = self._bu(self.config.lifetime, options)
        if entry.sequence is not None:
            self._in_flight.pop(entry.sequence, None)
        entry.sequence = message.sequence
        if entry.state == State.BACKOFF:
            entry.state = State.REGISTERING
        elif entry.state == State.REGISTERED:
            entry.state = State.REGISTERING  # refresh: still usable until it expires
        entry.retransmit_at = now + entry.timeout
        if entry.silent_since is not None:
            # A recovery attempt: its BA is awaited for the proof window (then it is
            # undone, see tick), and no older de-registration may be retransmitted after it.
            entry.retransmit_at = now + entry.proof_window
            self._leaving.pop(entry.bid, None)
        entry.refresh_at = None  # until the BA says when
        entry.sent_at = now
        self._in_flight[message.sequence] = ("register", (entry.bid,))
        return Send(entry.care_of, self.home_agent, message, (entry.bid,), purpose)

    def _send_deregistration(self, bids: List[int], now: float,
                             avoid: Tuple[set, set] = (set(), set())) -> List[Send]:
        via = self._survivor(now, avoid=avoid)
        live = [b for b in bids if b in self._leaving and self._leaving[b][1] > 0]
        for bid in bids:
            if bid not in live or via is None:
                self._leaving.pop(bid, None)
        if via is None:
            self._log("warning", f"no care-of address left to de-register BID(s) {bids}; "
                                 "the home agent lets them expire")
            return []
        if not live:
            return []
        message = self._bu(0, [mip6.BindingIdentifier(bid) for bid in live])
        for bid in live:
            entry, tries = self._leaving[bid]
            self._leaving[bid] = (entry, tries - 1)
            entry.retransmit_at = now + INITIAL_BINDACK_TIMEOUT
        self._in_flight[message.sequence] = ("deregister", tuple(live))
        return [Send(via.care_of, self.home_agent, message, tuple(live), "deregister")]

    def _survivor(self, now: float, any_state: bool = False,
                  avoid: Tuple[set, set] = (set(), set())) -> Optional[Entry]:
        usable = self.usable(now)
        if usable:
            suspects, uplinks = avoid
            return min(usable, key=lambda e: (e.bid in suspects, e.uplink in uplinks,
                                              e.priority, e.bid))
        if any_state and self.entries:
            return sorted(self.entries.values(), key=lambda e: (e.priority, e.bid))[0]
        return None

    def _next_home_agent(self, now: float, why: str) -> List[Send]:
        if len(self.config.home_agents) == 1:
            self._log("error", f"home agent {self.home_agent}: {why}; no other home agent "
                               "configured, backing off")
            for entry in self.entries.values():
                if entry.state == State.REGISTERING:
                    self._refused(entry, BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE, now)
            return []
        old = self.home_agent
        self.ha_index = (self.ha_index + 1) % len(self.config.home_agents)
        self._log("warning", f"home agent {old}: {why}; trying {self.home_agent}")
        self._in_flight.clear()
        sends = []
        for entry in self.entries.values():
            entry.unanswered = 0
            entry.timeout = FIRST_REGISTRATION_TIMEOUT  # nothing is bound at the new one yet
            entry.state = State.REGISTERING if entry.state != State.REGISTERED else entry.state
            sends.append(self._register(entry, now, "register"))
        return sends

    def _log(self, level: str, text: str) -> None:
        self.events.append(Event(level, text))

    def drain_events(self) -> List[Event]:
        events, self.events = self.events, []
        return events
