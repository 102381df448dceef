"""The fake switch itself: OpenFlow semantics it models and messages it rejects."""

from __future__ import annotations

import pytest

from ryu_apps.flowmodel import Bucket, Changes, Flow, Group, Meter, SwitchState, match
from tests.fakeswitch import CONTROLLER, OFPP_CONTROLLER, Ambiguous, FakeSwitch, Rejected

IPV6 = 0x86DD
NET = ("2001:db8:1::", "ffff:ffff:ffff:ffff::")


def apply(*actions):
    return ("apply", tuple(actions))


def tunnel(dst, key, port=9):
    field = "tun_ipv4_dst" if "." in dst else "tun_ipv6_dst"
    return (("set_field", field, dst), ("set_field", "tunnel_id", key), ("output", port))


def flow(table=0, priority=10, instructions=(), cookie=0, **fields):
    return Flow(table, priority, match(**fields), tuple(instructions), cookie)


def switch_with(*flows, groups=(), meters=()):
    state = SwitchState()
    state.meters.update({m.meter_id: m for m in meters})
    state.groups.update({g.group_id: g for g in groups})
    state.flows.update({f.key: f for f in flows})
    return FakeSwitch(state, tunnel_port=9, drop_reasons={(0, 0): "default drop"})


def pkt(**fields):
    return {"in_port": 1, "eth_type": IPV6, **fields}


SELECT = Group(5, "select", tuple(Bucket(tunnel(d, 7), 1) for d in
                                  ("2001:db8:a::1", "2001:db8:b::1", "192.0.2.1")))
TO_SELECT = flow(priority=10, instructions=[apply(("group", 5))], eth_type=IPV6)


# -- rejected messages -------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    flow(instructions=[apply(("group", 99))]),
    flow(instructions=[("meter", 3), apply(("output", 1))]),
    flow(table=2, instructions=[("goto", 1)]),
    flow(table=2, instructions=[("goto", 2)]),
    flow(instructions=[apply(("push_vlan", 0x8100))]),
    flow(instructions=[apply(("output", "uplink"))]),
    flow(instructions=[apply(("set_field", "ipv6_dst", "2001:db8::1"), ("output", 1))]),
    flow(instructions=[("write", (("output", 1),))]),
    flow(instructions=[apply(("output", 1)), apply(("output", 2))]),
    flow(instructions=[apply(("output", 1))], vlan_vid=5),
    flow(instructions=[apply(("output", 1))], eth_type=IPV6, ipv6_nd_target="2001:db8::1"),
    flow(instructions=[apply(("output", 1))], ipv6_dst="2001:db8::1"),  # needs eth_type
    flow(instructions=[apply(("output", 1))], eth_type=IPV6, udp_dst=53),  # needs ip_proto
    Flow(0, 1, (("in_port", 1), ("in_port", 2)), (apply(("output", 1)),)),
], ids=["missing-group", "missing-meter", "goto-back", "goto-same", "unknown-action",
        "port-name", "set-ipv6-dst", "write-actions", "two-applies", "vlan-match",
        "nd-target-match", "no-eth-type", "no-ip-proto", "duplicate-field"])
def test_invalid_flows_are_rejected(bad):
    switch = FakeSwitch()
    with pytest.raises(Rejected):
        switch.apply(Changes(flow_adds=[bad]))
    assert switch.state == SwitchState() and switch.messages == 0


@pytest.mark.parametrize("bad", [
    Group(1, "fancy", ()),
    Group(1, "indirect", (Bucket((("output", 1),)), Bucket((("output", 2),)))),
    Group(1, "ff", (Bucket((("output", 1),)),)),  # no watch port
    Group(1, "all", (Bucket((("group", 1),)),)),  # itself
    Group(1, "all", (Bucket((("group", 2),)),)),  # missing
    Group(1, "all", (Bucket((("pop_vlan",),)),)),
    Group(1, "ff", (Bucket((("output", 1),), 1, 1),)),  # weight outside a select group
    Group(1, "all", (Bucket((("output", 1),), 0, 1),)),  # watch port in an all group
])
def test_invalid_groups_are_rejected(bad):
    with pytest.raises(Rejected):
        FakeSwitch().apply(Changes(group_adds=[bad]))


def test_group_and_meter_lifecycle_errors():
    switch = switch_with(TO_SELECT, groups=[SELECT], meters=[Meter(1, 10)])
    for changes in (Changes(group_adds=[SELECT]), Changes(group_modifies=[Group(6, "all", ())]),
                    Changes(group_deletes=[Group(6, "all", ())]),
                    Changes(group_deletes=[SELECT]),  # still used by a flow
                    Changes(meter_adds=[Meter(1, 10)]), Changes(meter_modifies=[Meter(2, 1)]),
                    Changes(meter_deletes=[Meter(2, 1)]),
                    Changes(flow_modifies=[flow(priority=11)]),
                    Changes(flow_deletes=[flow(priority=11)])):
        with pytest.raises(Rejected):
            switch.apply(changes)
    switch.apply(Changes(flow_adds=[flow(priority=1, instructions=[("meter", 1)])]))
    with pytest.raises(Rejected):
        switch.apply(Changes(meter_deletes=[Meter(1, 10)]))


def test_a_group_used_by_another_group_cannot_be_deleted():
    outer = Group(6, "all", (Bucket((("group", 5),)),))
    switch = switch_with(groups=[SELECT, outer])
    with pytest.raises(Rejected, match="still used"):
        switch.apply(Changes(group_deletes=[SELECT]))
    switch.apply(Changes(group_deletes=[outer, SELECT]))
    assert switch.state.groups == {}


def test_messages_are_counted_and_applied_in_order_until_one_is_rejected():
    switch = FakeSwitch()
    switch.apply(Changes(group_adds=[SELECT], flow_adds=[TO_SELECT]))
    assert switch.messages == 2
    assert dict(switch.message_counts) == {"group_add": 1, "flow_add": 1}
    # The group delete comes after the flow delete in a Changes, so this batch is fine...
    switch.apply(Changes(flow_deletes=[TO_SELECT], group_deletes=[SELECT]))
    assert switch.messages == 4 and switch.state == SwitchState()
    # ...while a flow before its group is rejected, after the messages before it.
    with pytest.raises(Rejected):
        switch.apply(Changes(meter_adds=[Meter(1, 5)], flow_adds=[TO_SELECT],
                             group_deletes=[]))
    assert switch.state.meters == {1: Meter(1, 5)} and switch.messages == 5


def test_a_flow_modify_keeps_the_installed_cookie():
    switch = switch_with(flow(instructions=[apply(("output", 1))], cookie=1))
    switch.apply(Changes(flow_modifies=[flow(instructions=[apply(("output", 2))], cookie=2)]))
    (installed,) = switch.state.flows.values()
    assert installed.cookie == 1 and installed.instructions == (apply(("output", 2)),)


# -- packets -----------------------------------------------------------------------------

def test_highest_priority_match_wins_and_missing_fields_match_anything():
    switch = switch_with(
        flow(priority=5, instructions=[apply(("output", 2))]),
        flow(priority=20, instructions=[apply(("output", 3))], eth_type=IPV6, ipv6_dst=NET),
        flow(priority=30, instructions=[apply(("output", 4))], eth_type=IPV6,
             ipv6_dst="2001:db8:1::9"))
    assert switch.outputs(pkt(ipv6_dst="2001:db8:1::9")) == {4}
    assert switch.outputs(pkt(ipv6_dst="2001:0db8:0001:0000:ffff::1")) == {3}
    assert switch.outputs(pkt(ipv6_dst="2001:db8:2::1")) == {2}
    assert switch.outputs({"in_port": 1}) == {2}  # the packet lacks ipv6_dst: no match


def test_table_miss_drop_flows_and_outputless_flows_are_drops():
    switch = switch_with(
        flow(priority=0),
        flow(priority=5, instructions=[apply(("set_field", "eth_dst", "02:00:00:00:00:09"))],
             eth_type=0x0800),
        flow(priority=5, instructions=[("goto", 3)], eth_type=IPV6))
    (miss,) = switch.process(pkt())
    assert (miss.port, miss.table, miss.priority, miss.reason) == (None, 3, None, "table miss")
    assert switch.dropped_by(pkt(eth_type=0x0806)) == "default drop"
    assert switch.dropped_by(pkt(eth_type=0x0800)) == "no output"
    assert switch.dropped_by(pkt(eth_type=0x0800)) is not None


def test_actions_run_in_order_on_copies():
    switch = switch_with(flow(instructions=[("meter", 1), apply(
        ("output", OFPP_CONTROLLER, 0xFFFF), ("set_field", "eth_dst", "02:00:00:00:00:09"),
        ("dec_ttl",), ("output", 2))], eth_type=IPV6), meters=[Meter(1, 10)])
    first, second = switch.process(pkt(hop_limit=5))
    assert first.port == CONTROLLER and "eth_dst" not in first.packet
    assert first.packet["hop_limit"] == 5 and first.meters == (1,)
    assert second.port == 2 and second.packet["eth_dst"] == "02:00:00:00:00:09"
    assert second.packet["hop_limit"] == 4
    assert [o.port for o in switch.process(pkt())] == [CONTROLLER, 2]  # default hop limit 64
    assert [(o.port, o.reason) for o in switch.process(pkt(hop_limit=1))] == [
        (CONTROLLER, None), (None, "hop limit exceeded")]


def test_goto_continues_in_the_later_table_with_the_modified_packet():
    switch = switch_with(
        flow(instructions=[apply(("set_field", "tunnel_id", 4)), ("goto", 2)]),
        flow(table=2, instructions=[apply(("output", 5))], tunnel_id=4))
    (out,) = switch.process(pkt())
    assert (out.port, out.table, out.packet["tunnel_id"]) == (5, 2, 4)


def test_select_groups_expose_every_choice_as_an_alternative():
    switch = switch_with(TO_SELECT, groups=[SELECT])
    assert switch.tunnel_destinations(pkt()) == {
        ("2001:db8:a::1", 7), ("2001:db8:b::1", 7), ("192.0.2.1", 7)}
    executions = switch.executions(pkt())
    assert [choices for choices, _ in executions] == [((5, 0),), ((5, 1),), ((5, 2),)]
    assert all(len(outs) == 1 and outs[0].choices == c for c, outs in executions)
    unweighted = Group(5, "select", (SELECT.buckets[0], Bucket(SELECT.buckets[1].actions, 0)))
    switch.apply(Changes(group_modifies=[unweighted]))
    assert switch.tunnel_destinations(pkt()) == {("2001:db8:a::1", 7)}


def test_all_groups_run_every_bucket_on_a_copy_of_the_packet():
    group = Group(5, "all", (Bucket(tunnel("2001:db8:a::1", 1)), Bucket((("output", 3),))))
    switch = switch_with(flow(instructions=[apply(("group", 5), ("output", 4))]), groups=[group])
    outcomes = switch.process(pkt())
    assert [o.port for o in outcomes] == [9, 3, 4]
    assert "tunnel_id" not in outcomes[1].packet and "tunnel_id" not in outcomes[2].packet
    assert switch.tunnel_destinations(pkt()) == {("2001:db8:a::1", 1)}


def test_fast_failover_takes_the_first_live_bucket():
    group = Group(5, "ff", (Bucket(tunnel("2001:db8:a::1", 1), 0, 11),
                            Bucket(tunnel("2001:db8:b::1", 1), 0, 12)))
    switch = switch_with(flow(instructions=[apply(("group", 5))]), groups=[group])
    assert switch.tunnel_destinations(pkt()) == {("2001:db8:a::1", 1)}
    switch.set_port_live(11, False)
    assert switch.tunnel_destinations(pkt()) == {("2001:db8:b::1", 1)}
    switch.set_port_live(12, False)
    assert switch.dropped_by(pkt()) == "group 5 has no usable bucket"
    switch.set_port_live(11)
    assert switch.tunnel_destinations(pkt()) == {("2001:db8:a::1", 1)}


def test_indirect_groups_and_outputs_outside_the_tunnel():
    group = Group(5, "indirect", (Bucket((("output", 3),)),))
    switch = switch_with(flow(instructions=[apply(("group", 5))]), groups=[group])
    assert switch.outputs(pkt()) == {3} and switch.tunnel_destinations(pkt()) == set()
    assert switch.dropped_by(pkt()) is None


def test_equal_priority_overlaps_are_reported():
    switch = switch_with(flow(instructions=[apply(("output", 2))], in_port=1),
                         flow(instructions=[apply(("output", 3))], eth_type=IPV6),
                         flow(priority=11, instructions=[apply(("output", 4))], ip_proto=6,
                              eth_type=IPV6))
    assert switch.outputs(pkt(ip_proto=6)) == {4}  # a higher priority flow hides the overlap
    with pytest.raises(Ambiguous):
        switch.process(pkt())


def test_tunnel_destination_prefers_a_set_ipv4_destination_like_ovs():
    switch = switch_with(flow(instructions=[apply(*tunnel("2001:db8:a::1", 3))]))
    assert switch.tunnel_destinations(pkt()) == {("2001:db8:a::1", 3)}
    assert switch.tunnel_destinations(pkt(tun_ipv4_dst="198.51.100.1")) == {("198.51.100.1", 3)}
    assert switch.tunnel_destinations(pkt(tun_ipv4_dst="0.0.0.0")) == {("2001:db8:a::1", 3)}
    assert switch.tunnel_destinations(pkt(), port=4) == set()
