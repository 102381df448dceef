"""Binding cache entries and their expiry, with a fake clock.

``BindingCache.expire(now)`` only *proposes* changes: ``(old, new)`` pairs for entries
with expired care-of bindings (``new`` None when nothing is left); the cache changes
when the caller ``put``s the new entry. Refreshing a binding moves its expiry.
"""

from __future__ import annotations

import ipaddress
from typing import Dict, Sequence, Tuple

import mip6
from mip6.constants import BuFlag
from mip6.packet import bu_packet, decode_packet
from ryu_apps.bindings import BindingCache, CareOfBinding, RouterBinding
from ryu_apps.config import parse_config
from ryu_apps.signalling import SignallingHandler
from tests.vectors import COA1, COA2, HA, HOA, MNP

IPv6Address = ipaddress.IPv6Address
HOA2 = "2001:db8:ffff::200"
COA3 = "2001:db8:c::100"


def entry(home: str, expiries: Sequence[Tuple[int, float]], name: str = "mr1") -> RouterBinding:
    """An entry with one binding per ``(bid, expires_at)``; CoAs are made up per BID."""
    bindings = {bid: CareOfBinding(bid, IPv6Address(f"2001:db8:a::{bid}"), 1, 10, 0.0, at)
                for bid, at in expiries}
    return RouterBinding(name, IPv6Address(home), (ipaddress.IPv6Network(MNP),), False, True,
                         7, 10).with_care_of(bindings)


def contents(cache: BindingCache) -> Dict[IPv6Address, RouterBinding]:
    return {e.home_address: e for e in cache}


def test_expire_proposes_changes_without_making_them() -> None:
    cache = BindingCache()
    first = entry(HOA, [(1, 10.0), (2, 20.0), (3, 30.0)])
    cache.put(first.home_address, first)
    before = contents(cache)
    assert cache.expire(9.99) == []
    (old, new), = cache.expire(10.0)  # expires_at <= now counts as expired
    assert old is first
    assert [b.bid for b in new.care_of] == [2, 3]
    assert (new.router, new.prefixes, new.last_sequence) == (old.router, old.prefixes, 10)
    assert contents(cache) == before  # untouched until put
    assert cache.expire(10.0) == [(first, new)]  # and so proposed again
    cache.put(old.home_address, new)
    assert cache.get(IPv6Address(HOA)) == new
    assert cache.expire(15.0) == []


def test_expire_all_bindings_gives_none_and_put_none_removes() -> None:
    cache = BindingCache()
    first = entry(HOA, [(1, 10.0), (2, 20.0)])
    cache.put(first.home_address, first)
    assert cache.expire(25.0) == [(first, None)]
    assert len(cache) == 1
    cache.put(first.home_address, None)
    assert len(cache) == 0 and cache.get(IPv6Address(HOA)) is None


def test_only_entries_with_expired_bindings_are_listed() -> None:
    cache = BindingCache()
    early = entry(HOA, [(1, 10.0), (2, 50.0)])
    late = entry(HOA2, [(1, 40.0)], name="mr2")
    cache.put(early.home_address, early)
    cache.put(late.home_address, late)
    changes = cache.expire(20.0)
    assert [old for old, _ in changes] == [early]
    assert cache.binding_count() == 3


def test_next_expiry() -> None:
    cache = BindingCache()
    assert cache.next_expiry() is None
    first = entry(HOA, [(1, 30.0), (2, 20.0)])
    second = entry(HOA2, [(4, 25.0)], name="mr2")
    cache.put(first.home_address, first)
    cache.put(second.home_address, second)
    assert cache.next_expiry() == 20.0 and first.next_expiry() == 20.0
    (_, new), = cache.expire(20.0)
    cache.put(first.home_address, new)
    assert cache.next_expiry() == 25.0


def test_put_entry_without_bindings_removes_it() -> None:
    cache = BindingCache()
    first = entry(HOA, [(1, 10.0)])
    cache.put(first.home_address, first)
    cache.put(first.home_address, first.with_care_of({}))
    assert len(cache) == 0


def test_care_of_binding_remaining() -> None:
    binding = CareOfBinding(1, IPv6Address(COA1), 1, 1, 0.0, 100.0)
    assert binding.remaining(40.0) == 60.0 and binding.remaining(150.0) == 0.0


# -- through the signalling handler ---------------------------------------------------------
KEY = bytes(range(20))
SPI = 0x100
WALL0 = 1_700_000_000.0


def handler() -> SignallingHandler:
    tree = {"home_agent": {"addresses": [HA], "home_prefixes": ["2001:db8:ffff::/64"]},
            "datapath": {"uplink_port": "up", "tunnel_port": "gre0"},
            "upstream": {"next_hop": "2001:db8:fffe::1"},
            "mobile_routers": [{"name": "mr1", "home_address": HOA, "prefixes": [MNP],
                                "spi": SPI, "key": KEY.hex()}]}
    return SignallingHandler(parse_config(tree, "test.yaml"), BindingCache())


def register(ha: SignallingHandler, now: float, seq: int, bid: int, coa: str, units: int
             ) -> None:
    options = [mip6.BindingIdentifier(bid, 0, 1),
               mip6.ReplayProtection(mip6.ntp_from_unix(WALL0 + now)),
               mip6.Authentication(SPI)]
    bu = mip6.BindingUpdate(seq, int(BuFlag.A | BuFlag.H | BuFlag.R), units, options)
    raw = bu_packet(bu, coa, HOA, HA).encode(auth=mip6.MnHaKey(KEY, coa, HOA))
    verdict = ha.handle(decode_packet(raw), now, WALL0 + now)
    assert verdict.status == 0, verdict.reason
    ha.commit(verdict)


def test_registered_bindings_expire_and_refresh_moves_the_expiry() -> None:
    ha = handler()
    cache = ha.cache
    register(ha, 100.0, 1, 1, COA1, 10)  # expires at 140
    register(ha, 101.0, 2, 2, COA2, 75)  # expires at 401
    assert cache.next_expiry() == 140.0
    register(ha, 130.0, 3, 1, COA1, 10)  # refreshed: expires at 170
    assert cache.next_expiry() == 170.0
    assert cache.expire(141.0) == []
    (old, new), = cache.expire(170.0)
    assert [b.bid for b in new.care_of] == [2]
    assert cache.binding_count() == 2  # not yet committed
    cache.put(old.home_address, new)
    assert cache.next_expiry() == 401.0
    register(ha, 200.0, 4, 3, COA3, 75)  # a new BID after the expiry
    assert sorted(b.bid for b in cache.get(IPv6Address(HOA)).care_of) == [2, 3]
    (old, new), = cache.expire(500.0)
    assert new is None
    cache.put(old.home_address, new)
    assert len(cache) == 0 and cache.next_expiry() is None


def test_expiry_stays_exact_through_many_refreshes_and_removals() -> None:
    """Refreshes leave stale deadlines behind (and compact them): none may fire early,
    be lost, or resurrect a removed entry."""
    cache = BindingCache()
    homes = [f"2001:db8:ffff::{i:x}" for i in range(1, 40)]
    for i, home in enumerate(homes):
        cache.put(IPv6Address(home), entry(home, [(1, 100.0 + i)], name=f"mr{i}"))
    for round_ in range(200):  # each refresh pushes the deadline out again
        for i, home in enumerate(homes[:20]):
            cache.put(IPv6Address(home), entry(home, [(1, 1000.0 + round_ + i)],
                                               name=f"mr{i}"))
    cache.put(IPv6Address(homes[25]), None)  # removed: must never be proposed
    due = cache.expire(140.0)
    assert sorted(str(old.home_address) for old, _ in due) == sorted(
        h for i, h in enumerate(homes) if 20 <= i and i != 25)
    assert all(new is None for _, new in due)
    for old, new in due:  # committed
        cache.put(old.home_address, new)
    assert cache.expire(1150.0) == []  # the refreshed ones expire at 1199 + i at the latest
    later = cache.expire(1300.0)
    assert sorted(str(o.home_address) for o, _ in later) == sorted(homes[:20])
