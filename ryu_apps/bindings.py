"""The binding cache: one immutable entry per mobile router, keyed by home address.

Entries are values: the signalling handler builds a *new* entry for an accepted
Binding Update and the cache swaps it in only once the switch has confirmed the
forwarding state, so a rejected or failed update leaves the cache exactly as it was.
Time is passed in (``now``, monotonic seconds), never read here.
"""

from __future__ import annotations

import heapq
import ipaddress
import sys
from dataclasses import dataclass, field, replace
from typing import Dict, Iterator, List, Optional, Tuple, Union

# Millions of these at 10,000 MRs: slots halve their size (dataclass slots need 3.10+;
# the Ryu run on Python 3.9 goes without).
SLOTS = {"slots": True} if sys.version_info >= (3, 10) else {}

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address
CareOf = Union[IPv6Address, IPv4Address]

#: BID used for a registration that carries no Binding Identifier option.
PRIMARY_BID = 0


@dataclass(frozen=True, **SLOTS)
class CareOfBinding:
    """One registered care-of address of a mobile router (one BID)."""

    bid: int
    care_of: CareOf
    priority: int
    sequence: int
    registered_at: float
    expires_at: float

    def remaining(self, now: float) -> float:
        return max(0.0, self.expires_at - now)


@dataclass(frozen=True, **SLOTS)
class RouterBinding:
    """The binding cache entry of one mobile router (its home address)."""

    router: str
    home_address: IPv6Address
    prefixes: Tuple[ipaddress.IPv6Network, ...]
    explicit: bool
    mobile_router: bool
    downlink_key: int
    last_sequence: int
    care_of: Tuple[CareOfBinding, ...] = field(default=())

    def by_bid(self) -> Dict[int, CareOfBinding]:
        return {binding.bid: binding for binding in self.care_of}

    def with_care_of(self, bindings: Dict[int, CareOfBinding]) -> "RouterBinding":
        return replace(self, care_of=tuple(sorted(bindings.values(), key=lambda b: b.bid)))

    def expired(self, now: float) -> Tuple[CareOfBinding, ...]:
        return tuple(b for b in self.care_of if b.expires_at <= now)

    def next_expiry(self) -> Optional[float]:
        return min((b.expires_at for b in self.care_of), default=None)


class BindingCache:
    """Entries by home address, plus the two operations that change them."""

    def __init__(self) -> None:
        self._entries: Dict[IPv6Address, RouterBinding] = {}
        # (earliest expiry, home address) of every stored entry, plus stale pairs left by
        # later puts: expire() looks at due pairs only instead of scanning every entry
        # each tick (~15 ms at 10,000 MRs), and checks each against the live entry.
        self._deadlines: List[Tuple[float, IPv6Address]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[RouterBinding]:
        return iter(list(self._entries.values()))

    def get(self, home: IPv6Address) -> Optional[RouterBinding]:
        return self._entries.get(home)

    def put(self, home: IPv6Address, entry: Optional[RouterBinding]) -> None:
        """Store ``entry`` for ``home``; None (or an entry without bindings) removes it."""
        if entry is None or not entry.care_of:
            self._entries.pop(home, None)
        else:
            self._entries[home] = entry
            self._push(entry.next_expiry(), home)

    def _push(self, deadline: float, home: IPv6Address) -> None:
        heapq.heappush(self._deadlines, (deadline, home))
        if len(self._deadlines) > 4 * len(self._entries) + 1024:  # drop the stale pairs
            self._deadlines = [(e.next_expiry(), h) for h, e in self._entries.items()]
            heapq.heapify(self._deadlines)

    def expire(self, now: float) -> List[Tuple[RouterBinding, Optional[RouterBinding]]]:
        """Entries with expired bindings: ``(old, new)`` pairs, new None when none are left.

        The cache is not changed: the caller commits each ``new`` once the switch has it.
        """
        changes = []
        due: Dict[IPv6Address, RouterBinding] = {}
        while self._deadlines and self._deadlines[0][0] <= now:
            _, home = heapq.heappop(self._deadlines)
            entry = self._entries.get(home)
            if entry is not None and entry.next_expiry() <= now:
                due[home] = entry
        for home, entry in due.items():
            # Proposed, not committed: keep it due until the caller stores the outcome.
            self._push(entry.next_expiry(), home)
            gone = entry.expired(now)
            left = {b.bid: b for b in entry.care_of if b not in gone}
            changes.append((entry, entry.with_care_of(left) if left else None))
        return changes

    def next_expiry(self) -> Optional[float]:
        return min((t for t in (e.next_expiry() for e in self._entries.values())
                    if t is not None), default=None)

    def binding_count(self) -> int:
        return sum(len(e.care_of) for e in self._entries.values())
