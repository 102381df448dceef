"""Canonical forms, diff and its order, partial diffs and the state model."""

from __future__ import annotations

import ipaddress
from dataclasses import fields

import pytest

from ryu_apps.flowmodel import (Bucket, Changes, Flow, Group, Meter, SwitchState, apply_changes,
                                canonical_action, canonical_match, diff, diff_partial, match,
                                prefix_value)
from tests.fakeswitch import FakeSwitch
from tests.unit.test_pipeline import build

FULL = {4: "255.255.255.255", 6: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}


def test_match_is_canonical():
    assert match(ipv6_dst="2001:0DB8:0000:0000:0000:0000:0000:0001", eth_type=0x86DD) == (
        ("eth_type", 0x86DD), ("ipv6_dst", "2001:db8::1"))
    assert match(ipv6_dst=("2001:db8::1", FULL[6])) == match(ipv6_dst="2001:db8::1")
    assert match(ipv4_dst=("192.0.2.1", FULL[4])) == match(ipv4_dst="192.0.2.1")
    assert match(ipv6_src=("2001:db8:1::5", "ffff:ffff:ffff:ffff::")) == match(
        ipv6_src=prefix_value("2001:db8:1::/64")) == (
        ("ipv6_src", ("2001:db8:1::", "ffff:ffff:ffff:ffff::")),)
    assert match(eth_dst="02:00:00:00:00:AB") == match(eth_dst=("02:00:00:00:00:ab",
                                                                "FF:FF:FF:FF:FF:FF"))
    assert match(a=1, b=2) == match(b=2, a=1)


def test_prefix_value():
    assert prefix_value("2001:db8::1/128") == "2001:db8::1"
    assert prefix_value(ipaddress.ip_network("192.0.2.0/24")) == ("192.0.2.0", "255.255.255.0")
    assert prefix_value("2001:db8:1::5/48") == ("2001:db8:1::", "ffff:ffff:ffff::")


def _as_osken(name, value):
    """How os-ken reads a field back: exploded addresses, full masks, upper-case MACs."""
    if isinstance(value, str) and ":" in value and name.startswith("eth"):
        return value.upper()
    if isinstance(value, tuple) and "ip" in name:
        return tuple(ipaddress.ip_address(v).exploded for v in value)
    if isinstance(value, str) and "ip" in name:
        addr = ipaddress.ip_address(value)
        return (addr.exploded, FULL[addr.version])
    return value


@pytest.mark.parametrize("next_hop_mac", [None, "02:00:00:00:00:FE"])
def test_every_compiled_match_equals_its_read_back_form(next_hop_mac):
    flows = build(next_hop_mac=next_hop_mac).flows.values()
    assert any(isinstance(v, tuple) for f in flows for _, v in f.match)
    for flow in flows:
        read = [(name, _as_osken(name, value)) for name, value in reversed(flow.match)]
        assert canonical_match(read) == flow.match


def test_canonical_action():
    assert canonical_action(["set_field", "tun_ipv6_dst", "2001:0db8::0001"]) == (
        "set_field", "tun_ipv6_dst", "2001:db8::1")
    assert canonical_action(("set_field", "eth_dst", "02:00:00:00:00:FE")) == (
        "set_field", "eth_dst", "02:00:00:00:00:fe")
    assert canonical_action(["output", 1]) == ("output", 1)


def test_a_full_mask_on_an_integer_field_is_dropped():
    assert match(tunnel_id=(5, 0xFFFFFFFFFFFFFFFF)) == match(tunnel_id=5)


# -- state and diff ----------------------------------------------------------------------

def out(port):
    return (("apply", (("output", port),)),)


F1 = Flow(0, 10, match(in_port=1), out(2))
F2 = Flow(0, 10, match(in_port=2), out(1))
G1 = Group(1, "all", (Bucket((("output", 3),)),))
M1 = Meter(1, 100)


def state(*items):
    result = SwitchState()
    for item in items:
        if isinstance(item, Flow):
            result.add_flow(item)
        elif isinstance(item, Group):
            result.add_group(item)
        else:
            result.meters[item.meter_id] = item
    return result


def test_state_rejects_conflicting_entries():
    s = state(F1, G1)
    s.add_flow(F1)  # the same flow again is fine
    s.add_group(G1)
    with pytest.raises(ValueError):
        s.add_flow(Flow(0, 10, match(in_port=1), out(3)))
    with pytest.raises(ValueError):
        s.add_group(Group(1, "select", G1.buckets))
    with pytest.raises(ValueError):
        s.merge(state(Flow(0, 10, match(in_port=2), out(9)), Flow(0, 10, match(in_port=1))))


def test_changes_are_ordered_deletes_groups_flows_then_group_deletes():
    assert [f.name for f in fields(Changes)] == [
        "flow_deletes", "meter_adds", "meter_modifies", "group_adds", "group_modifies",
        "flow_adds", "flow_modifies", "group_deletes", "meter_deletes"]


def test_diff_sorts_every_difference_into_its_field():
    installed = state(F1, Flow(1, 5, match(), out(1)), G1, Group(2, "all", ()), M1,
                      Meter(2, 1))
    changed_f1 = Flow(0, 10, match(in_port=1), out(3))
    recookied = Flow(1, 5, match(), out(1), cookie=7)
    desired = state(changed_f1, recookied, F2, Group(1, "select", G1.buckets),
                    Group(3, "all", ()), Meter(1, 200), Meter(3, 1))
    changes = diff(desired, installed)
    assert changes == Changes(
        flow_deletes=[], meter_adds=[Meter(3, 1)], meter_modifies=[Meter(1, 200)],
        group_adds=[Group(3, "all", ())], group_modifies=[Group(1, "select", G1.buckets)],
        flow_adds=[recookied, F2], flow_modifies=[changed_f1],
        group_deletes=[Group(2, "all", ())], meter_deletes=[Meter(2, 1)])
    assert len(changes) == 9
    kept = diff(desired, installed, manage_foreign=False)
    assert not (kept.flow_deletes or kept.group_deletes or kept.meter_deletes)
    assert len(diff(installed, installed)) == 0
    apply_changes(installed, changes)
    assert installed == desired


def test_diff_order_lets_a_flow_move_to_a_new_group_on_a_strict_switch():
    old = state(G1, M1, Flow(0, 1, match(), (("meter", 1), ("apply", (("group", 1),)))))
    new = state(Group(2, "all", ()), Meter(2, 5),
                Flow(0, 1, match(), (("meter", 2), ("apply", (("group", 2),)))))
    switch = FakeSwitch(old)
    switch.apply(diff(new, switch.state))
    assert switch.state == new


def test_diff_partial_touches_only_its_part():
    other = Flow(3, 1, match(in_port=9), out(9))
    old_part = state(F1, G1)
    new_part = state(F2, Group(1, "ff", (Bucket((("output", 3),), 0, 3),)))
    installed = state(other, F1, G1, M1)
    changes = diff_partial(new_part, old_part)
    assert changes.flow_deletes == [F1] and changes.flow_adds == [F2]
    assert [g.type for g in changes.group_modifies] == ["ff"]
    assert not (changes.group_deletes or changes.meter_deletes)
    apply_changes(installed, changes)
    assert installed == state(other, F2, Group(1, "ff", (Bucket((("output", 3),), 0, 3),)), M1)
    gone = diff_partial(SwitchState(), new_part)
    assert gone.flow_deletes == [F2] and [g.group_id for g in gone.group_deletes] == [1]
    assert len(gone) == 2


def test_changes_extend_concatenates_every_field():
    first, second = Changes(flow_adds=[F1]), Changes(flow_adds=[F2], group_deletes=[G1])
    first.extend(second)
    assert first.flow_adds == [F1, F2] and first.group_deletes == [G1] and len(first) == 3
