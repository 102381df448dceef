"""Per care-of address liveness: is the path through each acknowledged CoA still alive?

A link can stay up while the path behind it blackholes (an ISP loses a route, a
filter appears). Netlink never tells; only traffic does. So the agent sends a small
UDP probe through every acknowledged care-of address every ``interval`` seconds: from
the home address to the home agent's address and its liveness port, through that CoA's
tunnel (the data plane forces the probe into it, see :mod:`mr_agent.dataplane`). The
home agent's switch reflects it back through the same CoA (``pipeline.reflect_flows``),
so a reply proves the path both ways; no controller or process on the home agent is
involved.

Pure and clock-free, like :mod:`mr_agent.bul`: the caller passes ``now`` (monotonic
seconds) and does the sending.

* :meth:`Liveness.sync` follows the set of probed CoAs (BID -> CoA); a new one is
  probed at once, a gone one forgotten.
* :meth:`Liveness.poll` returns the probes due now and the CoAs found dead. When a
  probe is due and the previous one is still unanswered, that is one more miss;
  ``misses`` consecutive misses make the CoA dead (it leaves the probed set; the agent
  stops using it and de-registers it). A reply to any outstanding probe, late or not,
  resets the count. Detection therefore takes between ``misses`` and ``misses + 1``
  intervals after the path breaks.
* A CoA is only *armed* once one of its probes has been answered: a home agent that does
  not reflect probes (``liveness_port`` 0, another port, an older version) must not make
  the MR drop every CoA it registers. A CoA whose first ``NOT_ARMED_WARNING`` probes go
  unanswered gets one warning in :attr:`Liveness.events`; a path that dies before its
  first reply (milliseconds after the BA that proved it) is not detected.
* Every CoA is probed on one common schedule (a new one at once, then at the next common
  tick), so CoAs that fail together are found dead in the same turn. If the caller is
  late (a busy machine), the next probe is at the next tick after ``now``, not a burst.
  A probe only counts as missed once it has been out for at least half an interval (a
  probe that itself went out late is not blamed for the next one being due soon
  after). Replies that arrived while the caller was busy wait in its socket and
  are read before :meth:`Liveness.poll` (the agent does so), so a stall alone causes no
  miss.

* Congestion is not failure: probes share the path (and, on a software switch, the
  CPU) with the data, and a saturated path loses some of them - enough to string
  ``misses`` losses together on a healthy CoA now and then. So the misses needed adapt
  to the loss the CoA showed just before: over the last ``LOSS_WINDOW`` probe turns
  (the current run of misses left out), loss ``p`` asks for ``log(FALSE_ALARM) /
  log(p)`` misses in a row (at least ``misses``, at most ``MAX_MISSES``). A clean path
  that blackholes is found after ``misses`` (150-200 ms with the defaults); a path that
  was losing 70 % of its probes to a flood needs 20 (a second) - by then a string of
  losses that long is a failure with odds of 1,000 to 1.

* Dead only next to a live one: a CoA is declared dead only while another armed CoA
  answers (its last probe came back). When every path loses probes at once (the MR's
  own switch saturated) or the only CoA goes quiet, nothing better exists to switch to,
  so it is kept (one event per episode) and probing goes on.

Probe payload (:func:`encode`): magic ``NMLV``, BID (16 bits), sequence (32 bits),
send time (monotonic nanoseconds, 64 bits) - 18 octets.
"""

from __future__ import annotations

import collections
import ipaddress
import math
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

CareOf = Union[ipaddress.IPv6Address, ipaddress.IPv4Address]
MAGIC = b"NMLV"
_FORMAT = "!4sHIQ"
PAYLOAD_SIZE = struct.calcsize(_FORMAT)
KEEP_OUTSTANDING = 16  # probes remembered per CoA (a late reply still counts)
MIN_WAIT_SHARE = 0.5  # a probe is missed only after half an interval at least
NOT_ARMED_WARNING = 20  # unanswered probes of a never-answered CoA before a warning
LOSS_WINDOW = 40  # probe turns the loss before a run of misses is measured over
FALSE_ALARM = 1e-3  # accepted odds that congestion alone strings the misses together
MAX_MISSES = 40  # whatever the loss, this many misses in a row make a CoA dead


def encode(bid: int, sequence: int, now: float) -> bytes:
    return struct.pack(_FORMAT, MAGIC, bid, sequence & 0xFFFFFFFF, int(now * 1e9) & (2**64 - 1))


def decode(data: bytes) -> Optional[Tuple[int, int]]:
    """(BID, sequence) of a probe payload, or None if it is not one."""
    if len(data) != PAYLOAD_SIZE:
        return None
    magic, bid, sequence, _ = struct.unpack(_FORMAT, data)
    return (bid, sequence) if magic == MAGIC else None


@dataclass
class Probe:
    """A probe to send now through ``care_of`` (BID ``bid``)."""

    bid: int
    care_of: CareOf
    sequence: int
    payload: bytes


@dataclass
class Dead:
    """A care-of address whose path stopped answering."""

    bid: int
    care_of: CareOf
    silent_ms: float  # since the last reply (or since probing started)
    misses: int


@dataclass
class PathState:
    bid: int
    care_of: CareOf
    started: float
    next_at: float
    sequence: int = 0
    misses: int = 0
    last_reply: Optional[float] = None
    last_sent: Optional[int] = None  # sequence of the newest probe, while unanswered
    outstanding: Dict[int, float] = field(default_factory=dict)  # sequence -> sent at
    sent: int = 0
    received: int = 0
    rtt_ms: Optional[float] = None
    warned: bool = False
    # One entry per probe turn: did a reply arrive since the previous turn?
    turns: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=LOSS_WINDOW))
    replied: bool = False  # a reply arrived since the last turn
    alone: bool = False  # kept for want of a better path (logged once per episode)


class Liveness:
    """The probe schedule and the miss counting of every probed care-of address."""

    def __init__(self, interval: float, misses: int) -> None:
        if interval <= 0 or misses < 1:
            raise ValueError("interval must be > 0 and misses >= 1")
        self.interval = interval
        self.misses = misses
        self.paths: Dict[int, PathState] = {}
        self.failures: Dict[int, int] = {}  # BID -> times found dead (for the status)
        self.dead_total = 0
        self.events: List[str] = []  # warnings for the log (drain them)
        self._origin: Optional[float] = None  # of the common probe schedule
        self._turns: Dict[Tuple[int, CareOf], collections.deque] = {}  # loss histories

    def sync(self, care_of: Dict[int, CareOf], now: float) -> None:
        """Probe exactly these CoAs (BID -> address) from now on."""
        for bid in [b for b, p in self.paths.items() if care_of.get(b) != p.care_of]:
            del self.paths[bid]
        for bid, address in care_of.items():
            if bid not in self.paths:
                # The loss history outlives a death and re-registration of the same CoA:
                # under a lasting flood, a fresh (clean) history would make it flap.
                turns = self._turns.setdefault(
                    (bid, address), collections.deque(maxlen=LOSS_WINDOW))
                self.paths[bid] = PathState(bid, address, started=now, next_at=now,
                                            turns=turns)

    def on_reply(self, bid: int, sequence: int, now: float) -> bool:
        """A reflected probe came back; False if it answers nothing outstanding."""
        path = self.paths.get(bid)
        if path is None or sequence not in path.outstanding:
            return False
        sent = path.outstanding.pop(sequence)
        for older in [s for s in path.outstanding if s < sequence]:
            del path.outstanding[older]  # answered by a newer reply: the path works
        if path.last_sent is not None and path.last_sent <= sequence:
            path.last_sent = None
        path.misses = 0
        path.alone = False
        path.replied = True
        path.last_reply = now
        path.received += 1
        path.rtt_ms = round((now - sent) * 1000, 3)
        return True

    def poll(self, now: float) -> Tuple[List[Probe], List[Dead]]:
        """The probes to send now, and the CoAs that just turned out dead."""
        probes: List[Probe] = []
        dead: List[Dead] = []
        for path in list(self.paths.values()):
            if now < path.next_at:
                continue
            out_for = now - path.outstanding.get(path.last_sent, now) \
                if path.last_sent is not None else 0.0
            if path.last_sent is not None and path.received and \
                    out_for >= self.interval * MIN_WAIT_SHARE:
                path.misses += 1  # the previous probe had its time to come back
            if not path.received and path.sent >= NOT_ARMED_WARNING and not path.warned:
                path.warned = True
                self.events.append(
                    f"care-of {path.care_of} (bid {path.bid}): no answer to {path.sent} "
                    "liveness probes since it was bound; not watched until one comes back "
                    "(does the home agent reflect this port - its liveness_port?)")
            if path.received:
                path.turns.append(path.replied)
            path.replied = False
            silent = path.misses >= self.required_misses(path)
            if silent and not self._peer_answers(path):
                if not path.alone:
                    path.alone = True
                    self.events.append(
                        f"care-of {path.care_of} (bid {path.bid}): {path.misses} probes "
                        "unanswered, but no other care-of address answers either: kept "
                        "(nothing better to switch to; congestion or a total outage)")
            elif silent:
                del self.paths[path.bid]
                self.failures[path.bid] = self.failures.get(path.bid, 0) + 1
                self.dead_total += 1
                since = path.last_reply if path.last_reply is not None else path.started
                dead.append(Dead(path.bid, path.care_of, round((now - since) * 1000, 1),
                                 path.misses))
                continue
            path.sequence = (path.sequence + 1) & 0xFFFFFFFF
            path.outstanding[path.sequence] = now
            if len(path.outstanding) > KEEP_OUTSTANDING:
                del path.outstanding[min(path.outstanding)]
            path.last_sent = path.sequence
            path.sent += 1
            path.next_at = self._next_tick(now)
            probes.append(Probe(path.bid, path.care_of, path.sequence,
                                encode(path.bid, path.sequence, now)))
        return probes, dead

    def _peer_answers(self, path: PathState) -> bool:
        """Whether another armed CoA currently answers (none missing its last probe).

        A CoA is only declared dead relative to one that works: when every path loses
        probes together (the MR's switch or CPU saturated), or the only CoA goes quiet,
        dropping it gains nothing and loses whatever still gets through."""
        return any(other.received and other.misses == 0
                   for other in self.paths.values() if other is not path)

    def required_misses(self, path: PathState) -> int:
        """Misses in a row that make ``path`` dead, given its loss before this run."""
        before = list(path.turns)[:max(0, len(path.turns) - path.misses)]
        if not before:
            return self.misses
        loss = before.count(False) / len(before)
        if loss <= 0:
            return self.misses
        if loss >= 1:
            return MAX_MISSES
        return max(self.misses, min(MAX_MISSES, math.ceil(math.log(FALSE_ALARM) /
                                                          math.log(loss))))

    def _next_tick(self, now: float) -> float:
        """The next point of the common schedule after ``now``: every CoA is probed in
        the same turn, so CoAs that fail together are found dead together (one
        de-registration, one group rewrite)."""
        if self._origin is None:
            self._origin = now
        ticks = int((now - self._origin) / self.interval + 1e-9) + 1
        return self._origin + ticks * self.interval

    def suspects(self) -> List[int]:
        """BIDs whose latest probes go unanswered (not dead yet)."""
        return [bid for bid, path in self.paths.items() if path.misses > 0]

    def next_deadline(self) -> Optional[float]:
        return min((p.next_at for p in self.paths.values()), default=None)

    def status(self, bid: int) -> Optional[Dict[str, object]]:
        path = self.paths.get(bid)
        failures = self.failures.get(bid, 0)
        if path is None:
            return {"probing": False, "failures": failures} if failures else None
        return {"probing": True, "armed": path.received > 0, "sent": path.sent,
                "received": path.received,
                "misses": path.misses, "rtt_ms": path.rtt_ms, "failures": failures}
