"""The flow compiler, checked by running packets through the fake switch.

Every test asks where a packet goes (or why it is dropped), never what the flows look
like, so the pipeline can be restructured freely as long as the behaviour holds.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from ipaddress import ip_address
from typing import Any, Dict, Iterable, Optional

import pytest

from ryu_apps.bindings import CareOfBinding, RouterBinding
from ryu_apps.config import parse_config
from ryu_apps.flowmodel import SwitchState, apply_changes, diff
from ryu_apps.pipeline import (BASE_COOKIE, DROP_REASONS, OFPP_LOCAL, ROUTER_COOKIE_FLAG,
                               NEIGHBOR_METER, SIGNALLING_METER, Ports, allocate_group_ids,
                               compile_all, drop_aggregates, drop_reason)
from tests.fakeswitch import CONTROLLER, FakeSwitch

HA, HA4 = "2001:db8:ffff::1", "198.51.100.1"
UP, TUN = 1, 2
PORTS = Ports(uplink=UP, tunnel=TUN, local_mac="02:00:00:00:00:01")
NEXT_HOP_MAC = "02:00:00:00:00:fe"
CN = "2001:db8:cafe::5"
IPV6, IPV4, ARP = 0x86DD, 0x0800, 0x0806
A_KEY_UP, A_KEY_DOWN, B_KEY_UP, B_KEY_DOWN = 0xA1, 0xA2, 0xB1, 0xB2


def _router(name: str, home: str, prefixes, spi: int, gre_key: int, policy: str) -> Dict:
    return {"name": name, "home_address": home, "prefixes": prefixes, "spi": spi,
            "key": "00" * 20, "gre_key": gre_key, "policy": policy}


def make_config(a_policy: str = "weighted"):
    return parse_config({
        "home_agent": {"addresses": [HA], "home_prefixes": ["2001:db8:ffff::/64"],
                       "ipv4_address": HA4},
        "datapath": {"uplink_port": "ha-up", "tunnel_port": "gre0"},
        "upstream": {"next_hop": "2001:db8:ffff::fe"},
        "mobile_routers": [
            _router("office1", "2001:db8:ffff::100",
                    ["2001:db8:ff00:1::/64", "2001:db8:ff10::/48"], 256, A_KEY_UP, a_policy),
            _router("bus", "2001:db8:ffff::200", ["2001:db8:ff00:2::/64"], 257, B_KEY_UP,
                    "priority"),
            _router("van", "2001:db8:ffff::300", ["2001:db8:ff00:3::/64"], 258, 0xC1,
                    "weighted"),
        ],
    })


CONFIG = make_config()
GROUP_IDS = allocate_group_ids(r.name for r in CONFIG.mobile_routers)


def coa(bid: int, address: str, priority: int = 0) -> CareOfBinding:
    return CareOfBinding(bid, ip_address(address), priority, 1, 0.0, 600.0)


def entry(name: str, key: int, *care_of: CareOfBinding) -> RouterBinding:
    router = next(r for r in CONFIG.mobile_routers if r.name == name)
    return RouterBinding(name, router.home_address, router.prefixes, False, True, key, 1,
                         tuple(care_of))


A_COAS = ("2001:db8:a::1", "2001:db8:b::1", "2001:db8:c::1", "203.0.113.7")
A = entry("office1", A_KEY_DOWN, *(coa(i + 1, c) for i, c in enumerate(A_COAS)))
B_BEST = "2001:db8:e::1"
B = entry("bus", B_KEY_DOWN, coa(1, "2001:db8:d::1", 5), coa(2, B_BEST, 1),
          coa(3, "192.0.2.9", 3))
A_HOME, A_HOST, A_HOST2 = "2001:db8:ffff::100", "2001:db8:ff00:1::10", "2001:db8:ff10:7::1"
B_HOME, B_HOST = "2001:db8:ffff::200", "2001:db8:ff00:2::20"


def build(entries: Iterable[RouterBinding] = (A, B), next_hop_mac: Optional[str] = NEXT_HOP_MAC,
          config=CONFIG) -> SwitchState:
    return compile_all(config, PORTS, next_hop_mac, list(entries), GROUP_IDS)


def switch_for(desired: SwitchState) -> FakeSwitch:
    switch = FakeSwitch(tunnel_port=TUN, drop_reasons=DROP_REASONS)
    switch.apply(diff(desired, SwitchState()))
    return switch


@pytest.fixture
def switch() -> FakeSwitch:
    return switch_for(build())


def down(dst: str, **extra: Any) -> Dict[str, Any]:
    """A correspondent's packet arriving on the uplink."""
    return {"in_port": UP, "eth_type": IPV6, "ipv6_src": CN, "ipv6_dst": dst, "ip_proto": 6,
            **extra}


def up(key: int, care_of: str, src: str, dst: str = CN, **extra: Any) -> Dict[str, Any]:
    """A decapsulated packet from the tunnel port: outer source ``care_of``, outer
    destination the HA address of the same family (OVS keeps both as tunnel metadata)."""
    v = ip_address(care_of).version
    outer = {f"tun_ipv{v}_src": care_of, f"tun_ipv{v}_dst": HA if v == 6 else HA4}
    return {"in_port": TUN, "eth_type": IPV6, "tunnel_id": key, **outer,
            "ipv6_src": src, "ipv6_dst": dst, "ip_proto": 6, **extra}


# -- classify ----------------------------------------------------------------------------

def test_binding_update_goes_to_the_controller_through_the_meter(switch):
    bu = {"in_port": UP, "eth_type": IPV6, "ip_proto": 135, "ipv6_src": A_COAS[0],
          "ipv6_dst": "2001:0db8:ffff:0000:0000:0000:0000:0001"}
    assert [(o.port, o.meters) for o in switch.process(bu)] == [(CONTROLLER, (SIGNALLING_METER,))]


def test_udp_4191_to_the_ipv4_address_goes_to_the_controller_through_the_meter(switch):
    bu4 = {"in_port": UP, "eth_type": IPV4, "ip_proto": 17, "ipv4_src": "203.0.113.7",
           "ipv4_dst": HA4, "udp_dst": 4191}
    assert [(o.port, o.meters) for o in switch.process(bu4)] == [(CONTROLLER, (SIGNALLING_METER,))]


@pytest.mark.parametrize("packet", [
    down(HA, ip_proto=58, icmpv6_type=135),  # neighbour solicitation
    down("ff02::1:ff00:1", ip_proto=58, icmpv6_type=135),  # to the solicited-node group
    down("ff02::1", ip_proto=58, icmpv6_type=134),
    down(HA, ip_proto=58, icmpv6_type=136),  # NA, next hop already resolved
    down(HA), down(HA, ip_proto=47),  # TCP, GRE to the HA's own address
    down(HA, ip_proto=17, udp_dst=4191),  # DSMIPv6 port, but IPv6: not signalling
    {"in_port": UP, "eth_type": IPV4, "ip_proto": 17, "ipv4_dst": HA4, "udp_dst": 53},
    {"in_port": UP, "eth_type": ARP},
], ids=["ns", "ns-solicited-node", "ra-all-nodes", "na", "tcp", "gre", "udp6", "udp4", "arp"])
def test_the_home_agents_own_traffic_goes_to_local(switch, packet):
    outcomes = switch.process(packet)
    assert [(o.port, o.meters) for o in outcomes] == [(OFPP_LOCAL, ())]


@pytest.mark.parametrize("packet", [
    {"in_port": OFPP_LOCAL, "eth_type": IPV6, "ipv6_src": HA, "ipv6_dst": CN},
    {"in_port": OFPP_LOCAL, "eth_type": ARP},
    {"in_port": OFPP_LOCAL, "eth_type": IPV4, "ip_proto": 47, "ipv4_dst": "203.0.113.7"},
])
def test_the_home_agents_own_packets_leave_through_the_uplink(switch, packet):
    assert switch.outputs(packet) == {UP}


@pytest.mark.parametrize("packet, reason", [
    ({"in_port": UP, "eth_type": IPV4, "ipv4_dst": "192.0.2.77"}, "unclassified"),
    (up(A_KEY_UP, A_COAS[0], A_HOST, eth_type=IPV4), "unclassified"),
    ({"in_port": 7, "eth_type": IPV6, "ipv6_dst": A_HOST}, "unclassified"),
    (down("2001:db8:dead::1"), "no binding for destination"),
    (down("2001:db8:ff00:3::1"), "no binding for destination"),  # van: configured, unbound
    (down("2001:db8:ffff::300"), "no binding for destination"),
])
def test_drops_and_their_reasons(switch, packet, reason):
    assert switch.dropped_by(packet) == reason


# -- downstream --------------------------------------------------------------------------

@pytest.mark.parametrize("dst", [A_HOST, A_HOST2, A_HOME])
def test_downstream_reaches_every_care_of_address_of_a_weighted_router(switch, dst):
    assert switch.tunnel_destinations(down(dst)) == {(c, A_KEY_DOWN) for c in A_COAS}
    executions = switch.executions(down(dst))
    assert len(executions) == 4  # one select bucket per binding, each a single output
    assert all(len(outcomes) == 1 and outcomes[0].port == TUN for _, outcomes in executions)


def test_an_ipv4_care_of_address_uses_the_ipv4_tunnel_destination(switch):
    (v4,) = [o for o in switch.process(down(A_HOST))
             if o.packet.get("tun_ipv4_dst") not in (None, "0.0.0.0")]
    assert v4.packet["tun_ipv4_dst"] == "203.0.113.7" and "tun_ipv6_dst" not in v4.packet
    assert v4.packet["hop_limit"] == 63


def test_downstream_decrements_the_hop_limit_and_drops_at_zero(switch):
    assert {o.packet["hop_limit"] for o in switch.process(down(A_HOST, hop_limit=9))} == {8}
    assert switch.dropped_by(down(A_HOST, hop_limit=1)) == "hop limit exceeded"


@pytest.mark.parametrize("dst", [B_HOST, B_HOME])
def test_a_priority_router_uses_only_its_lowest_bid_pri_binding(switch, dst):
    assert switch.tunnel_destinations(down(dst)) == {(B_BEST, B_KEY_DOWN)}


def test_priority_router_with_the_tunnel_port_down_has_no_way_out(switch):
    """Every fast-failover bucket watches the one tunnel port, so buckets never fail over
    to another care-of address: either the tunnel port is up and the best binding is
    used (reachable or not), or it is down and every bucket is dead. Failover to the
    next BID-PRI only happens when the best binding is removed (next test)."""
    switch.set_port_live(TUN, False)
    assert switch.dropped_by(down(B_HOST)) == f"group {GROUP_IDS['bus']} has no usable bucket"
    switch.set_port_live(TUN, True)
    assert switch.tunnel_destinations(down(B_HOST)) == {(B_BEST, B_KEY_DOWN)}


def test_priority_router_falls_back_when_its_best_binding_is_removed(switch):
    without_best = B.with_care_of({b.bid: b for b in B.care_of if b.bid != 2})
    switch.sync(build((A, without_best)))
    assert switch.tunnel_destinations(down(B_HOST)) == {("192.0.2.9", B_KEY_DOWN)}


# -- upstream ----------------------------------------------------------------------------

@pytest.mark.parametrize("care_of", A_COAS)
@pytest.mark.parametrize("src", [A_HOST, A_HOST2, A_HOME])
def test_upstream_from_a_registered_care_of_address_goes_to_the_next_hop(switch, care_of, src):
    (out,) = switch.process(up(A_KEY_UP, care_of, src, hop_limit=30))
    assert out.port == UP
    assert out.packet["eth_dst"] == NEXT_HOP_MAC and out.packet["eth_src"] == PORTS.local_mac
    assert out.packet["hop_limit"] == 29 and out.packet["ipv6_dst"] == CN


@pytest.mark.parametrize("packet, reason", [
    (up(A_KEY_UP, A_COAS[0], "2001:db8:dead::1"), "spoofed inner source"),
    (up(A_KEY_UP, A_COAS[3], B_HOST), "spoofed inner source"),  # B's prefix, A's tunnel
    (up(A_KEY_UP, "2001:db8:bad::1", A_HOST), "unregistered care-of address"),
    (up(A_KEY_UP, B_BEST, A_HOST), "unregistered care-of address"),  # B's CoA, A's key
    (up(A_KEY_UP, "192.0.2.200", A_HOST), "unregistered care-of address"),
    (up(0x999, A_COAS[0], A_HOST), "unknown GRE key"),
    (up(A_KEY_DOWN, A_COAS[0], A_HOST), "unknown GRE key"),  # the downlink key is not uplink
    (up(A_KEY_UP, A_COAS[0], A_HOST, hop_limit=1), "hop limit exceeded"),
])
def test_upstream_ingress_filter(switch, packet, reason):
    assert switch.dropped_by(packet) == reason


@pytest.mark.parametrize("dst", [B_HOST, B_HOME])
def test_router_to_router_traffic_goes_into_the_other_routers_tunnels(switch, dst):
    packet = up(A_KEY_UP, A_COAS[1], A_HOST, dst)
    assert switch.outputs(packet) == {TUN}
    assert switch.tunnel_destinations(packet) == {(B_BEST, B_KEY_DOWN)}
    back = up(B_KEY_UP, B_BEST, B_HOST, A_HOST)
    assert switch.tunnel_destinations(back) == {(c, A_KEY_DOWN) for c in A_COAS}


def test_router_to_router_from_an_ipv4_care_of_address_to_an_ipv6_one(switch):
    packet = up(A_KEY_UP, A_COAS[3], A_HOST, B_HOST)
    assert switch.tunnel_destinations(packet) == {(B_BEST, B_KEY_DOWN)}


def test_unresolved_next_hop_drops_upstream_and_copies_advertisements_to_the_controller():
    switch = switch_for(build(next_hop_mac=None))
    assert switch.dropped_by(up(A_KEY_UP, A_COAS[0], A_HOST)) == "next hop unresolved"
    na = down(HA, ip_proto=58, icmpv6_type=136, ipv6_src="2001:db8:ffff::fe")
    outcomes = switch.process(na)
    assert {o.port for o in outcomes} == {OFPP_LOCAL, CONTROLLER}
    assert all(o.meters == (NEIGHBOR_METER,) for o in outcomes)  # not the signalling meter
    elsewhere = down("2001:db8:ffff::99", ip_proto=58, icmpv6_type=136)
    assert CONTROLLER not in {o.port for o in switch.process(elsewhere)}
    # Router-to-router traffic does not need the next hop.
    assert switch.tunnel_destinations(up(A_KEY_UP, A_COAS[0], A_HOST, B_HOST)) == {
        (B_BEST, B_KEY_DOWN)}


def test_resolving_the_next_hop_modifies_the_forward_default_in_place():
    switch = switch_for(build(next_hop_mac=None))
    changes = switch.sync(build())
    assert [(f.table, f.priority) for f in changes.flow_modifies] == [(3, 0)]
    assert [(f.table, f.priority) for f in changes.flow_deletes] == [(0, 950)]
    assert [m.meter_id for m in changes.meter_deletes] == [NEIGHBOR_METER]
    assert len(changes) == 3
    assert switch.outputs(up(A_KEY_UP, A_COAS[0], A_HOST)) == {UP}


# -- reconcile ---------------------------------------------------------------------------

def test_a_fresh_install_then_a_recompile_needs_no_message(switch):
    assert switch.state == build()
    assert switch.messages == len(diff(build(), SwitchState()))
    assert len(diff(build(), switch.state)) == 0


def test_removing_one_care_of_address_modifies_the_group_in_place(switch):
    gone = A_COAS[2]
    smaller = A.with_care_of({b.bid: b for b in A.care_of if str(b.care_of) != gone})
    changes = diff(build((smaller, B)), switch.state)
    assert [g.group_id for g in changes.group_modifies] == [GROUP_IDS["office1"]]
    assert not (changes.group_adds or changes.group_deletes)
    assert not (changes.flow_adds or changes.flow_modifies)
    mentioning = {k for k, f in switch.state.flows.items() if gone in dict(f.match).values()}
    assert len(mentioning) == 5  # 3 destinations accepted, 1 spoofed-source drop, 1 reflect
    assert {f.key for f in changes.flow_deletes} == mentioning
    switch.apply(changes)
    assert switch.tunnel_destinations(down(A_HOST)) == {
        (c, A_KEY_DOWN) for c in A_COAS if c != gone}
    assert switch.dropped_by(up(A_KEY_UP, gone, A_HOST)) == "unregistered care-of address"
    assert len(diff(build((smaller, B)), switch.state)) == 0


def test_removing_the_last_binding_removes_the_routers_group_and_flows_only(switch):
    cookie = BASE_COOKIE | ROUTER_COOKIE_FLAG | GROUP_IDS["office1"]
    low = 0xFFFFFFFF00000000 | ROUTER_COOKIE_FLAG | 0xFFFFFF  # the drop-reason bits aside
    owned = {k for k, f in switch.state.flows.items() if f.cookie & low == cookie}
    assert owned
    changes = diff(build((B,)), switch.state)
    assert [g.group_id for g in changes.group_deletes] == [GROUP_IDS["office1"]]
    assert {f.key for f in changes.flow_deletes} == owned
    assert len(changes) == len(owned) + 1
    switch.apply(changes)
    assert switch.dropped_by(down(A_HOST)) == "no binding for destination"
    assert switch.dropped_by(up(A_KEY_UP, A_COAS[0], A_HOST)) == "unknown GRE key"
    assert switch.tunnel_destinations(down(B_HOST)) == {(B_BEST, B_KEY_DOWN)}


def test_every_batch_is_idempotent_and_matches_the_model():
    a_small = A.with_care_of({1: A.care_of[0], 4: A.care_of[3]})
    b_reordered = B.with_care_of({b.bid: replace(b, priority=9 - b.priority) for b in B.care_of})
    batches = [((A, B), NEXT_HOP_MAC), ((a_small, B), NEXT_HOP_MAC),
               ((a_small, b_reordered), None), ((b_reordered,), None), ((), NEXT_HOP_MAC),
               ((A,), NEXT_HOP_MAC), ((A, B), NEXT_HOP_MAC)]
    switch = FakeSwitch(tunnel_port=TUN, drop_reasons=DROP_REASONS)
    model = SwitchState()
    for entries, mac in batches:
        desired = build(entries, mac)
        changes = switch.sync(desired)
        apply_changes(model, changes)
        assert switch.state == desired == model
        count = switch.messages
        assert len(switch.sync(desired)) == 0 and switch.messages == count
    assert switch.tunnel_destinations(down(B_HOST)) == {(B_BEST, B_KEY_DOWN)}


def test_changing_a_routers_policy_only_modifies_its_group(switch):
    changes = diff(build(config=make_config(a_policy="priority")), switch.state)
    assert [(g.group_id, g.type) for g in changes.group_modifies] == [
        (GROUP_IDS["office1"], "ff")]
    assert len(changes) == 1
    switch.apply(changes)
    assert switch.tunnel_destinations(down(A_HOST)) == {(A_COAS[0], A_KEY_DOWN)}


# -- group ids ---------------------------------------------------------------------------

def test_group_ids_are_stable_distinct_and_in_range():
    names = [f"mr{i}" for i in range(200)]
    ids = allocate_group_ids(names)
    assert ids == allocate_group_ids(reversed(names))
    assert len(set(ids.values())) == len(names)
    assert all(1 <= gid <= 0xFFFFFF for gid in ids.values())


def test_colliding_group_ids_are_probed(monkeypatch):
    monkeypatch.setattr(zlib, "crc32", lambda data: 41)
    assert allocate_group_ids(["c", "a", "b"]) == {"a": 42, "b": 43, "c": 44}
    monkeypatch.setattr(zlib, "crc32", lambda data: 0xFFFFFE)
    assert allocate_group_ids(["a", "b"]) == {"a": 0xFFFFFF, "b": 1}  # wraps, never 0


def test_routers_with_colliding_names_keep_their_traffic_apart(monkeypatch):
    monkeypatch.setattr(zlib, "crc32", lambda data: 7)
    ids = allocate_group_ids(r.name for r in CONFIG.mobile_routers)
    monkeypatch.undo()
    assert len(set(ids.values())) == 3
    switch = switch_for(compile_all(CONFIG, PORTS, NEXT_HOP_MAC, [A, B], ids))
    assert switch.tunnel_destinations(down(A_HOST)) == {(c, A_KEY_DOWN) for c in A_COAS}
    assert switch.tunnel_destinations(down(B_HOST)) == {(B_BEST, B_KEY_DOWN)}


def test_adding_a_colliding_router_keeps_existing_group_ids(monkeypatch):
    """The previous allocation (from the state file) keeps live groups where they are."""
    monkeypatch.setattr(zlib, "crc32", lambda data: 7)
    before = allocate_group_ids(["bus"])
    after = allocate_group_ids(["ambulance", "bus"], previous=before)
    assert after["bus"] == before["bus"] and after["ambulance"] != after["bus"]
    assert allocate_group_ids(["ambulance"], previous=after) == {"ambulance": after["ambulance"]}


def test_a_renumbered_router_converges(monkeypatch):
    switch = switch_for(build())
    ids = dict(GROUP_IDS, office1=GROUP_IDS["office1"] + 1)
    switch.sync(compile_all(CONFIG, PORTS, NEXT_HOP_MAC, [A, B], ids))
    assert switch.tunnel_destinations(down(A_HOST)) == {(c, A_KEY_DOWN) for c in A_COAS}
    assert len(diff(compile_all(CONFIG, PORTS, NEXT_HOP_MAC, [A, B], ids), switch.state)) == 0


def test_aggregate_cookie_masks_select_exactly_the_router_drop_flows_of_one_reason(switch):
    flows = list(switch.state.flows.values())
    aggregates = drop_aggregates()
    assert set(aggregates) == {"unregistered care-of address", "spoofed inner source"}
    for reason, (table, cookie, mask) in aggregates.items():
        selected = [f for f in flows if f.table == table and f.cookie & mask == cookie]
        assert selected and all(drop_reason(f) == reason for f in selected)
        assert len(selected) == sum(1 for f in flows if drop_reason(f) == reason)
    # The base flows (the other reasons) share one exact cookie: read by a flow-stats
    # request without touching the routers' flows.
    base = [f for f in flows if f.cookie == BASE_COOKIE]
    assert {drop_reason(f) for f in base} - {None} == {
        "unclassified", "no binding for destination", "unknown GRE key"}


# -- liveness reflect ------------------------------------------------------------------------

LIVENESS_PORT = 4195  # the default of home_agent.liveness_port


def probe(key: int, care_of: str, port: int = LIVENESS_PORT, dst: str = HA) -> Dict[str, Any]:
    """An MR's liveness probe as it leaves the tunnel port: UDP from its home address."""
    return up(key, care_of, A_HOME, dst, ip_proto=17, udp_src=40001, udp_dst=port)


@pytest.mark.parametrize("care_of", A_COAS)
def test_a_probe_goes_back_through_the_care_of_address_it_came_from(switch, care_of):
    outcomes = switch.process(probe(A_KEY_UP, care_of))
    assert [o.port for o in outcomes] == [TUN]  # IN_PORT: the tunnel port, nothing else
    assert switch.tunnel_destinations(probe(A_KEY_UP, care_of)) == {(care_of, A_KEY_DOWN)}
    assert outcomes[0].packet["ipv6_dst"] == HA  # unchanged: the MR swaps the addresses


def test_a_reflected_probe_from_an_ipv4_care_of_address_keeps_the_ipv4_tunnel(switch):
    assert switch.tunnel_destinations(probe(A_KEY_UP, "203.0.113.7")) == \
        {("203.0.113.7", A_KEY_DOWN)}


@pytest.mark.parametrize("packet,reason", [
    (probe(A_KEY_UP, "2001:db8:99::1"), "unregistered care-of address"),
    (probe(0x77, A_COAS[0]), "unknown GRE key"),
    (probe(B_KEY_UP, A_COAS[0]), "unregistered care-of address"),  # another MR's key
])
def test_probes_from_elsewhere_are_not_reflected(switch, packet, reason):
    assert switch.dropped_by(packet) == reason


def test_other_udp_to_the_home_agent_is_not_reflected(switch):
    assert switch.outputs(probe(A_KEY_UP, A_COAS[0], port=LIVENESS_PORT + 1)) == {OFPP_LOCAL}


def test_reflect_flows_follow_the_registered_care_of_addresses(switch):
    smaller = replace(A, care_of=A.care_of[1:])
    switch.sync(build((smaller, B)))
    assert switch.dropped_by(probe(A_KEY_UP, A_COAS[0])) == "unregistered care-of address"
    assert switch.tunnel_destinations(probe(A_KEY_UP, A_COAS[1])) == {(A_COAS[1], A_KEY_DOWN)}
    switch.sync(build(()))
    assert switch.dropped_by(probe(A_KEY_UP, A_COAS[1])) == "unknown GRE key"


def _config_with(**home_agent: Any):
    tree = {"home_agent": {"addresses": [HA], "home_prefixes": ["2001:db8:ffff::/64"],
                           **home_agent},
            "datapath": {"uplink_port": "ha-up", "tunnel_port": "gre0"},
            "upstream": {"next_hop": "2001:db8:ffff::fe"},
            "mobile_routers": [_router("office1", "2001:db8:ffff::100",
                                       ["2001:db8:ff00:1::/64"], 256, A_KEY_UP, "weighted")]}
    return parse_config(tree)


@pytest.mark.parametrize("setting", [0, None])
def test_liveness_port_0_or_null_installs_no_reflect_flow(setting):
    config = _config_with(liveness_port=setting)
    switch = switch_for(build([replace(A, care_of=A.care_of[:1])], config=config))
    assert switch.outputs(probe(A_KEY_UP, A_COAS[0])) == {OFPP_LOCAL}  # plain upstream
    assert not [f for f in switch.state.flows.values() if f.priority == 400]


def test_another_liveness_port_is_reflected():
    config = _config_with(liveness_port=9999)
    switch = switch_for(build([replace(A, care_of=A.care_of[:1])], config=config))
    assert switch.outputs(probe(A_KEY_UP, A_COAS[0], port=9999)) == {TUN}
    assert switch.outputs(probe(A_KEY_UP, A_COAS[0])) == {OFPP_LOCAL}


def test_the_flows_read_back_from_openflow_messages_compare_equal():
    """flowmodel -> os-ken flow-mod -> bytes -> parsed -> flowmodel, as on a reconnect:
    the reflect flows (IN_PORT, udp_dst, tunnel set-fields) must compare equal, so a
    restarted home agent sends no change."""
    of13 = pytest.importorskip("os_ken.ofproto.ofproto_v1_3")
    parser = pytest.importorskip("os_ken.ofproto.ofproto_v1_3_parser")
    from ryu_apps import ofmsg

    class Datapath:
        ofproto_parser, ofproto = parser, of13

    flows = [f for f in build().flows.values()]
    assert any(f.priority == 400 for f in flows)
    for flow in flows:
        mod = ofmsg.flow_mod(Datapath(), flow, "add")
        buf = bytearray()
        mod.match.serialize(buf, 0)
        read_match = parser.OFPMatch.parser(bytes(buf), 0)
        instructions = []
        for inst in mod.instructions:
            raw = bytearray()
            inst.serialize(raw, 0)
            instructions.append(parser.OFPInstruction.parser(bytes(raw), 0))
        stat = parser.OFPFlowStats(table_id=flow.table, priority=flow.priority,
                                   cookie=flow.cookie, match=read_match,
                                   instructions=instructions)
        assert ofmsg.read_flow(stat) == flow
