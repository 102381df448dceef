"""The binding cache survives a restart: save, load, expiry translated, damage reported."""

from __future__ import annotations

import ipaddress
import json

import pytest

from ryu_apps import statefile
from ryu_apps.bindings import CareOfBinding, RouterBinding

HOME = ipaddress.IPv6Address("2001:db8:f000::100")


def entry(*bindings: CareOfBinding) -> RouterBinding:
    return RouterBinding("office1", HOME, (ipaddress.IPv6Network("2001:db8:ff00:1::/64"),),
                         False, True, 100, 42, bindings)


def binding(bid: int, coa: str, expires_at: float) -> CareOfBinding:
    return CareOfBinding(bid, ipaddress.ip_address(coa), bid, 40 + bid, 10.0, expires_at)


def test_round_trip_moves_the_monotonic_clock_and_drops_what_expired(tmp_path):
    path = str(tmp_path / "state.json")
    saved = entry(binding(1, "2001:db8:a::100", 100.0), binding(2, "192.0.2.10", 30.0))
    statefile.save(path, [saved], {"office1": 7}, "02:00:00:00:00:fe", now=20.0,
                   wall=1_000_000.0, group_ids={"office1": 5})
    # 15 s later, on a monotonic clock that restarted at 500: binding 2 (10 s left) is gone.
    entries, stamps, mac = statefile.load(path, now=500.0, wall=1_000_015.0)
    (loaded,) = entries
    assert [b.bid for b in loaded.care_of] == [1]
    assert loaded.care_of[0].expires_at == pytest.approx(500.0 + 80.0 - 15.0)
    assert loaded.care_of[0].registered_at == pytest.approx(500.0 - 10.0 - 15.0)
    assert (loaded.last_sequence, loaded.downlink_key, loaded.prefixes) == (
        saved.last_sequence, saved.downlink_key, saved.prefixes)
    assert stamps == {"office1": 7} and mac == "02:00:00:00:00:fe"
    assert statefile.load_group_ids(path) == {"office1": 5}


def test_missing_file_is_an_empty_state(tmp_path):
    assert statefile.load(str(tmp_path / "none.json"), 0.0, 0.0) == ([], {}, None)
    assert statefile.load_group_ids(str(tmp_path / "none.json")) == {}


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": 99}),
                                     json.dumps({"format": 1, "entries": [{"router": 1}]})])
def test_a_damaged_file_is_an_error_naming_the_file(tmp_path, content):
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="state.json"):
        statefile.load(str(path), 0.0, 0.0)


def test_saving_replaces_the_file_atomically(tmp_path):
    path = str(tmp_path / "state.json")
    statefile.save(path, [entry(binding(1, "2001:db8:a::100", 100.0))], {}, None, 0.0, 0.0)
    statefile.save(path, [], {}, None, 0.0, 0.0)
    assert statefile.load(path, 0.0, 0.0) == ([], {}, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temp left


def test_a_background_save_pauses_between_slices_and_writes_the_same_state(tmp_path):
    """1,200 MRs: entries, replay timestamps and group ids are encoded a slice at a time
    (the app lets BUs through at each pause); the file loads as one saved in one go."""
    entries = [RouterBinding(f"mr{i}", HOME + i,
                             (ipaddress.IPv6Network(f"2001:db8:ff:{i:x}::/64"),), True, True,
                             1000 + i, i, (binding(1, f"2001:db8:a::{i:x}", 100.0),))
               for i in range(1200)]
    stamps = {f"mr{i}": 10**18 + i for i in range(1200)}
    groups = {f"mr{i}": i + 1 for i in range(1200)}
    pauses, synced = [], []
    sliced, whole = str(tmp_path / "sliced.json"), str(tmp_path / "whole.json")
    statefile.save(sliced, entries, stamps, None, 20.0, 1e6, groups,
                   pause=lambda: pauses.append(1), sync=synced.append)
    statefile.save(whole, entries, stamps, None, 20.0, 1e6, groups)
    assert len(pauses) == 1200 // statefile.PAUSE_EVERY + 2 * (1200 // 512) and len(synced) == 1
    with open(sliced) as a, open(whole) as b:
        assert json.load(a) == json.load(b)
    loaded, loaded_stamps, _ = statefile.load(sliced, 20.0, 1e6)
    assert loaded == entries and loaded_stamps == stamps
    assert statefile.load_group_ids(sliced) == groups
