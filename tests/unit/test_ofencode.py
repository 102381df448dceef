"""The direct OpenFlow encoder against its oracle: os-ken's own serialisation.

For every flow and group the compiler emits over a rich configuration, and for every
command, ``ofencode`` must produce exactly the bytes of the os-ken message that
``ofmsg`` builds (same xid). Hypothesis then varies field values and action lists over
the supported subset; anything outside it must raise ValueError (the caller falls back).
"""

from __future__ import annotations

import itertools
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ryu_apps import ofencode, ofmsg
from ryu_apps.bindings import CareOfBinding, RouterBinding
from ryu_apps.config import parse_config
from ryu_apps.flowmodel import Bucket, Changes, Flow, Group, Meter, SwitchState
from ryu_apps.pipeline import Ports, allocate_group_ids, compile_all

ofp = pytest.importorskip("os_ken.ofproto.ofproto_v1_3")
parser = pytest.importorskip("os_ken.ofproto.ofproto_v1_3_parser")


class FakeDatapath:
    """What os-ken's message classes and ``Datapath.set_xid`` need from a datapath."""

    ofproto, ofproto_parser, id = ofp, parser, 1

    def __init__(self) -> None:
        self.xid = 0

    def set_xid(self, msg: Any) -> int:  # as os-ken's Datapath.set_xid
        self.xid = (self.xid + 1) & ofp.MAX_XID
        msg.set_xid(self.xid)
        return self.xid


DP = FakeDatapath()


def oracle(msg: Any, xid: int) -> bytes:
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


# -- a rich configuration ----------------------------------------------------------------
UP, TUN = 1, 10
PORTS = Ports(uplink=UP, tunnel=TUN, local_mac="02:00:00:00:00:01")


def _router(name: str, home: str, prefixes: List[str], gre_key: int, policy: str) -> dict:
    return {"name": name, "home_address": home, "prefixes": prefixes,
            "spi": 256 + (gre_key & 0xFFFF), "key": "00" * 20, "gre_key": gre_key,
            "policy": policy}


def make_config(ipv4: Optional[str]) -> Any:
    ha = {"addresses": ["2001:db8:ffff::1", "2001:db8:fffe::1"],
          "home_prefixes": ["2001:db8:ffff::/64", "2001:db8:fffe::/64"]}
    if ipv4:
        ha["ipv4_address"] = ipv4
    return parse_config({
        "home_agent": ha,
        "datapath": {"uplink_port": "ha-up", "tunnel_port": "gre0"},
        "upstream": {"next_hop": "2001:db8:ffff::fe"},
        "mobile_routers": [
            _router("office", "2001:db8:ffff::100",
                    ["2001:db8:ff00:1::/64", "2001:db8:ff10::/48", "2001:db9::/33"],
                    0xA1, "weighted"),
            _router("bus", "2001:db8:ffff::200", ["2001:db8:ff00:2::/64"], 0xB1, "priority"),
            _router("van", "2001:db8:ffff::300", ["2001:db8:ff00:300::/56"], 0xFFFFFFFF,
                    "weighted"),
            _router("boat", "2001:db8:ffff::400", ["2001:db8:ff00:4::/64"], 7, "priority"),
        ],
    })


def _coa(bid: int, address: str, priority: int = 0) -> CareOfBinding:
    return CareOfBinding(bid, ip_address(address), priority, 1, 0.0, 600.0)


def entries(config: Any) -> List[RouterBinding]:
    routers = {r.name: r for r in config.mobile_routers}

    def entry(name: str, key: int, explicit: bool, prefixes: Optional[Tuple] = None,
              *care_of: CareOfBinding) -> RouterBinding:
        router = routers[name]
        return RouterBinding(name, router.home_address,
                             router.prefixes if prefixes is None else prefixes,
                             explicit, True, key, 1, tuple(care_of))

    return [
        # explicit prefixes, IPv6 and IPv4 (DSMIPv6) care-of addresses, weighted
        entry("office", 0xA2, True, None, _coa(1, "2001:db8:a::1"), _coa(2, "2001:db8:b::1"),
              _coa(3, "2001:db8:c::1"), _coa(4, "203.0.113.7")),
        # implicit prefixes, fast failover by priority, mixed families
        entry("bus", 0xB2, False, None, _coa(1, "2001:db8:d::1", 5),
              _coa(2, "2001:db8:e::1", 1), _coa(3, "192.0.2.9", 3)),
        # only IPv4 care-of addresses, a 64-bit downlink key, a /128 host prefix
        entry("van", (1 << 64) - 1, True, (IPv6Network("2001:db8:ff00:3::5/128"),),
              _coa(1, "198.51.100.200"), _coa(2, "0.0.0.1")),
        # one IPv6 care-of address, no prefixes at all
        entry("boat", 0, False, (), _coa(9, "::ffff:192.0.2.1", 200)),
    ]


def _states() -> List[Tuple[str, SwitchState]]:
    out = []
    for ipv4, mac in itertools.product((None, "198.51.100.1"), (None, "02:00:00:00:00:fe")):
        config = make_config(ipv4)
        gids = allocate_group_ids(r.name for r in config.mobile_routers)
        out.append((f"ipv4={ipv4},next_hop={mac}",
                    compile_all(config, PORTS, mac, entries(config), gids)))
    return out


STATES = _states()
FLOWS = [flow for _, state in STATES for flow in state.flows.values()]
GROUPS = [group for _, state in STATES for group in state.groups.values()]


def test_the_rich_configuration_covers_what_the_pipeline_emits():
    fields = {name for flow in FLOWS for name, _ in flow.match}
    # the encoder also takes ipv4_src and eth_src/eth_dst matches (hypothesis covers them)
    assert fields == ofencode.MATCH_FIELDS - {"ipv4_src", "eth_src", "eth_dst"}
    actions = [a for flow in FLOWS for i in flow.instructions if i[0] == "apply" for a in i[1]]
    actions += [a for group in GROUPS for b in group.buckets for a in b.actions]
    assert {a[1] for a in actions if a[0] == "set_field"} == ofencode.SET_FIELDS
    assert {a[0] for a in actions} == {"output", "group", "set_field", "dec_ttl"}
    assert any(len(a) == 3 for a in actions if a[0] == "output")  # controller, max_len
    assert {i[0] for flow in FLOWS for i in flow.instructions} == {"meter", "apply", "goto"}
    assert any(isinstance(v, tuple) for flow in FLOWS for _, v in flow.match)  # masked
    assert {g.type for g in GROUPS} == {"select", "ff"}
    assert len(FLOWS) > 200 and len(GROUPS) == 16


@pytest.mark.parametrize("command", ["add", "modify", "delete"])
def test_every_compiled_flow_encodes_as_os_ken_does(command):
    for n, flow in enumerate(FLOWS):
        xid = (n * 2654435761) & 0xFFFFFFFF
        expected = oracle(ofmsg.flow_mod(DP, flow, command), xid)
        assert ofencode.flow_mod(flow, command, xid) == expected, flow


@pytest.mark.parametrize("command", ["add", "modify", "delete"])
def test_every_compiled_group_encodes_as_os_ken_does(command):
    for n, group in enumerate(GROUPS):
        expected = oracle(ofmsg.group_mod(DP, group, command), n + 1)
        assert ofencode.group_mod(group, command, n + 1) == expected, group


def _changes(state: SwitchState) -> Changes:
    flows, groups = list(state.flows.values()), list(state.groups.values())
    return Changes(flow_deletes=flows[:5], meter_adds=list(state.meters.values()),
                   meter_modifies=list(state.meters.values()), group_adds=groups[:2],
                   group_modifies=groups[2:], flow_adds=flows, flow_modifies=flows[5:],
                   group_deletes=groups[:1], meter_deletes=list(state.meters.values()))


def test_change_batches_fast_path_sends_the_same_bytes_with_the_datapaths_xids():
    changes = _changes(STATES[-1][1])
    fast, slow = FakeDatapath(), FakeDatapath()
    fast_batches = ofmsg.change_batches(fast, changes)
    slow_batches = ofmsg.change_batches(slow, changes, fast=False)
    assert [len(b) for b in fast_batches] == [len(b) for b in slow_batches]
    kinds = set()
    for fast_msg, slow_msg in zip(itertools.chain(*fast_batches),
                                  itertools.chain(*slow_batches)):
        fast.set_xid(fast_msg)
        slow.set_xid(slow_msg)
        assert fast_msg.xid == slow_msg.xid
        slow_msg.serialize()
        if not isinstance(fast_msg, ofmsg.Encoded):
            fast_msg.serialize()  # a meter-mod: sent by send_msg, which serialises it
        assert bytes(fast_msg.buf) == bytes(slow_msg.buf)
        kinds.add((type(fast_msg).__name__, type(slow_msg).__name__))
    # flow and group mods are pre-encoded, meter mods stay framework messages
    assert kinds == {("Encoded", "OFPFlowMod"), ("Encoded", "OFPGroupMod"),
                     ("OFPMeterMod", "OFPMeterMod")}


def test_change_batches_falls_back_to_os_ken_for_what_the_encoder_does_not_cover():
    odd = Flow(0, 10, (("vlan_vid", 0x1005),), (("apply", (("output", 2),)),))
    ok = Flow(0, 11, (("in_port", 3),), (("apply", (("output", 2),)),))
    odd_group = Group(5, "all", (Bucket((("set_field", "ipv6_dst", "2001:db8::1"),
                                         ("output", 1))),))
    batches = ofmsg.change_batches(FakeDatapath(), Changes(flow_adds=[odd, ok],
                                                           group_adds=[odd_group]))
    [groups], flows = batches[0], batches[1]
    assert type(groups).__name__ == "OFPGroupMod"
    assert [type(m).__name__ for m in flows] == ["OFPFlowMod", "Encoded"]


def test_set_xid_writes_the_header_only():
    flow = FLOWS[0]
    msg = ofmsg.Encoded(ofencode.flow_mod(flow, "add", 0))
    DP.set_xid(msg)
    assert bytes(msg.buf) == ofencode.flow_mod(flow, "add", msg.xid)


# -- properties over random values -------------------------------------------------------
def _uint(bits: int) -> st.SearchStrategy:
    return st.integers(0, (1 << bits) - 1)


_ipv4 = _uint(32).map(lambda i: str(IPv4Address(i)))
_ipv6 = _uint(128).map(lambda i: str(IPv6Address(i)))
_mac = st.binary(min_size=6, max_size=6).flatmap(
    lambda b: st.sampled_from([":".join(f"{x:02x}" for x in b), ":".join(f"{x:02X}" for x in b)]))


def _maybe_masked(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(values, st.tuples(values, values))


MATCH_VALUES = {
    "in_port": _uint(32), "eth_type": _uint(16), "ip_proto": _uint(8), "udp_dst": _uint(16),
    "icmpv6_type": _uint(8), "tunnel_id": _maybe_masked(_uint(64)),
    "eth_src": _maybe_masked(_mac), "eth_dst": _maybe_masked(_mac),
    "ipv4_src": _maybe_masked(_ipv4), "ipv4_dst": _maybe_masked(_ipv4),
    "ipv6_src": _maybe_masked(_ipv6), "ipv6_dst": _maybe_masked(_ipv6),
    "tun_ipv6_src": _maybe_masked(_ipv6), "tun_ipv4_src": _maybe_masked(_ipv4),
}
assert set(MATCH_VALUES) == ofencode.MATCH_FIELDS
SET_VALUES = {"eth_src": _mac, "eth_dst": _mac, "tunnel_id": _uint(64),
              "tun_ipv4_dst": _ipv4, "tun_ipv6_dst": _ipv6}


@st.composite
def matches(draw: Any) -> Tuple:
    names = draw(st.lists(st.sampled_from(sorted(MATCH_VALUES)), unique=True))
    items = [(name, draw(MATCH_VALUES[name])) for name in names]
    return tuple(draw(st.permutations(items)))  # any order: the encoder must sort


actions = st.one_of(
    st.tuples(st.just("output"), _uint(32)),
    st.tuples(st.just("output"), _uint(32), _uint(16)),
    st.tuples(st.just("group"), _uint(32)),
    st.just(("dec_ttl",)),
    st.sampled_from(sorted(SET_VALUES)).flatmap(
        lambda name: st.tuples(st.just("set_field"), st.just(name), SET_VALUES[name])),
)
action_lists = st.lists(actions, max_size=6).map(tuple)


@st.composite
def instruction_lists(draw: Any) -> Tuple:
    out = []
    if draw(st.booleans()):
        out.append(("meter", draw(_uint(32))))
    if draw(st.booleans()):
        out.append(("apply", draw(action_lists)))
    if draw(st.booleans()):
        out.append(("goto", draw(_uint(8))))
    return tuple(out)


flows = st.builds(Flow, _uint(8), _uint(16), matches(), instruction_lists(), _uint(64))


@st.composite
def groups(draw: Any) -> Group:
    buckets = draw(st.lists(st.builds(Bucket, action_lists, _uint(16),
                                      st.one_of(st.none(), _uint(32))), max_size=5))
    return Group(draw(_uint(32)), draw(st.sampled_from(["all", "select", "indirect", "ff"])),
                 tuple(buckets))


@settings(max_examples=1500, deadline=None)
@given(flows, st.sampled_from(["add", "modify", "delete"]), _uint(32))
def test_random_flows_encode_as_os_ken_does(flow, command, xid):
    expected = oracle(ofmsg.flow_mod(DP, flow, command), xid)
    assert ofencode.flow_mod(flow, command, xid) == expected


@settings(max_examples=800, deadline=None)
@given(groups(), st.sampled_from(["add", "modify", "delete"]), _uint(32))
def test_random_groups_encode_as_os_ken_does(group, command, xid):
    expected = oracle(ofmsg.group_mod(DP, group, command), xid)
    assert ofencode.group_mod(group, command, xid) == expected


# -- outside the subset: ValueError, naming what -----------------------------------------
APPLY = (("apply", (("output", 1),)),)


@pytest.mark.parametrize("flow, command, names", [
    (Flow(0, 1, (("vlan_vid", 5),), APPLY), "add", "vlan_vid"),
    (Flow(0, 1, (("tun_ipv6_dst", "2001:db8::1"),), APPLY), "add", "tun_ipv6_dst"),
    (Flow(0, 1, (("in_port", 1 << 32),), APPLY), "add", "in_port"),
    (Flow(0, 1, (("in_port", -1),), APPLY), "add", "in_port"),
    (Flow(0, 1, (("in_port", True),), APPLY), "add", "in_port"),
    (Flow(0, 1, (("eth_type", "0x86dd"),), APPLY), "add", "eth_type"),
    (Flow(0, 1, (("eth_src", "02-00-00-00-00-01"),), APPLY), "add", "eth_src"),
    (Flow(0, 1, (("ipv6_dst", "2001:db8::/64"),), APPLY), "add", "ipv6_dst"),
    (Flow(0, 1, (("ipv6_dst", "fe80::1%eth0"),), APPLY), "add", "ipv6_dst"),
    (Flow(0, 1, (("ipv4_dst", "2001:db8::1"),), APPLY), "add", "ipv4_dst"),
    (Flow(0, 1, (("ipv4_dst", ("10.0.0.0", "255.0.0.0", 1)),), APPLY), "add", "ipv4_dst"),
    (Flow(0, 1, (("in_port", 1), ("in_port", 2)), APPLY), "add", "in_port"),
    (Flow(0, 1, (), (("apply", (("set_field", "ipv6_dst", "2001:db8::1"),)),)), "add",
     "ipv6_dst"),
    (Flow(0, 1, (), (("apply", (("set_field", "eth_dst", ("02:00:00:00:00:01",
                                                         "ff:ff:ff:ff:ff:ff")),)),)),
     "add", "eth_dst"),
    (Flow(0, 1, (), (("apply", (("pop_vlan",),)),)), "add", "pop_vlan"),
    (Flow(0, 1, (), (("apply", (("output", 1 << 32),)),)), "add", "output"),
    (Flow(0, 1, (), (("write_metadata", 1, 1),)), "add", "write_metadata"),
    (Flow(256, 1, (), APPLY), "add", "table"),
    (Flow(0, 1 << 16, (), APPLY), "delete", "priority"),
    (Flow(0, 1, (), APPLY), "modify_loose", "modify_loose"),
])
def test_unsupported_flows_raise_value_error_naming_the_culprit(flow, command, names):
    with pytest.raises(ValueError, match=names):
        ofencode.flow_mod(flow, command, 1)


@pytest.mark.parametrize("group, command, names", [
    (Group(1, "fast", ()), "add", "fast"),
    (Group(1, "all", ()), "insert", "insert"),
    (Group(1, "all", (Bucket((("set_field", "pkt_mark", 1),)),)), "add", "pkt_mark"),
    (Group(1, "all", (Bucket((("output", 1),), 1 << 16),)), "add", "out of range"),
])
def test_unsupported_groups_raise_value_error_naming_the_culprit(group, command, names):
    with pytest.raises(ValueError, match=names):
        ofencode.group_mod(group, command, 1)


def test_meters_are_not_encoded_here():
    assert not hasattr(ofencode, "meter_mod")
    batches = ofmsg.change_batches(FakeDatapath(), Changes(meter_adds=[Meter(1, 10, 5)]))
    assert type(batches[0][0]).__name__ == "OFPMeterMod"
