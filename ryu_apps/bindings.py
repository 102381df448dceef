"""The binding cache: one immutable entry per mobile router, keyed by home address.

Entries are values: the signalling handler builds a *new* entry for an accepted
Binding Update and the cache swaps it in only once the switch has confirmed the
forwarding state, so a rejected or failed update leaves the cache exactly as it was.
Time is passed in (``now``, monotonic seconds), never read here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Dict, Iterator, List, Optional, Tuple, Union

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address
CareOf = Union[IPv6Address, IPv4Address]

#: BID used for a registration that carries no Binding Identifier option.
PRIMARY_BID = 0


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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

    def expire(self, now: float) -> List[Tuple[RouterBinding, Optional[RouterBinding]]]:
        """Entries with expired bindings: ``(old, new)`` pairs, new None when none are left.

        The cache is not changed: the caller commits each ``new`` once the switch has it.
        """
        changes = []
        for entry in self._entries.values():
            gone = entry.expired(now)
            if gone:
                left = {b.bid: b for b in entry.care_of if b not in gone}
                changes.append((entry, entry.with_care_of(left) if left else None))
        return changes

    def next_expiry(self) -> Optional[float]:
        return min((t for t in (e.next_expiry() for e in self._entries.values())
                    if t is not None), default=None)

    def binding_count(self) -> int:
        return sum(len(e.care_of) for e in self._entries.values())
