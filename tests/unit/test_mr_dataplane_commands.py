"""The OVS backend's commands, recorded instead of run: what the agent asks OVS to do."""

from __future__ import annotations

import ipaddress
from typing import List, Optional

import pytest

from mr_agent.bul import Entry, State
from mr_agent.config import parse_config
from mr_agent.dataplane import DataPlaneError, OvsDataPlane, backend_for

KEY = "01" * 20


def config(mode: str = "weighted", rules=None, **dataplane):
    return parse_config({
        "mobile_router": {"home_address": "2001:db8:f000::100",
                          "prefixes": ["2001:db8:ff00:1::/64"], "spi": 256, "key": KEY,
                          "gre_key": 100},
        "home_agents": ["2001:db8:ffff::1"], "home_agent_ipv4": "198.51.100.1",
        "uplinks": [{"name": "isp1", "interface": "up1", "gateway": "2001:db8:a::1",
                     "priority": 1, "weight": 3},
                    {"name": "isp2", "interface": "up2", "gateway": "2001:db8:b::1",
                     "priority": 2}],
        "policy": {"mode": mode, "rules": rules or []},
        "dataplane": dict({"backend": "ovs"}, **dataplane),
    })


class Recorder:
    def __init__(self, groups: str = "") -> None:
        self.commands: List[str] = []
        self.inputs: List[str] = []
        self.groups = groups

    def __call__(self, argv: List[str], check: bool, input: Optional[str]) -> str:
        self.commands.append(" ".join(argv))
        if input:
            self.inputs.append(input)
        if argv[0] == "cat":
            return "02:00:00:00:03:03\n"
        if "dump-groups" in argv:
            return self.groups
        return ""


def entry(bid: int, coa: str, uplink: str, priority: int) -> Entry:
    return Entry(bid, ipaddress.ip_address(coa), uplink, priority, State.REGISTERED,
                 expires_at=1e9)


def test_start_builds_bridges_ports_and_the_tunnel_route_for_the_mobile_network():
    run = Recorder()
    plane = OvsDataPlane(config(vsctl=["ovs-vsctl", "--db=unix:/x/db.sock"]), run)
    plane.start()
    joined = "\n".join(run.commands)
    assert "ovs-vsctl --db=unix:/x/db.sock --may-exist add-br br-mr" in joined
    assert "options:packet_type=legacy_l3" in joined and "type=internal" in joined
    assert "options:peer=pmr1" in joined and "options:peer=pup2" in joined
    assert "ip -6 rule add from 2001:db8:ff00:1::/64 lookup 200 pref 1000" in joined
    assert "default via fe80::1 dev mr-tun table 200" in joined
    assert plane.address_devices() == {"up1": "br-up1", "up2": "br-up2"}


def test_a_care_of_address_gets_a_marked_route_a_pinned_source_and_a_signalling_rule():
    run = Recorder()
    plane = OvsDataPlane(config(), run)
    plane.tun_mac = "02:00:00:00:03:03"
    plane.sync_care_of({("isp2", ipaddress.ip_address("2001:db8:b::100")): 3})
    joined = "\n".join(run.commands + run.inputs)
    assert "ovs/route/add 2001:db8:ffff::1/128 br-up2 2001:db8:b::1 pkt_mark=3" in joined
    assert "pkt_mark=3,ipv6,nw_proto=47,actions=set_field:2001:db8:b::100->ipv6_src" in joined
    assert "tun_ipv6_dst=2001:db8:b::100" in joined
    assert "ip -6 rule add from 2001:db8:b::100 lookup 102 pref 500" in joined
    run.commands.clear()
    plane.sync_care_of({})  # gone again: everything removed
    joined = "\n".join(run.commands)
    assert "ovs/route/del 2001:db8:ffff::1/128 pkt_mark=3" in joined
    assert "ip -6 rule del from 2001:db8:b::100 lookup 102 pref 500" in joined


@pytest.mark.parametrize("mode, kind", [("weighted", "select"), ("active-backup", "ff")])
def test_the_outbound_group_watches_each_uplink(mode, kind):
    run = Recorder(groups="group_id=1,type=select")
    plane = OvsDataPlane(config(mode), run)
    usable = [entry(1, "2001:db8:a::100", "isp1", 1), entry(3, "2001:db8:b::100", "isp2", 2)]
    plane.program(usable)
    (mod,) = [c for c in run.commands if "mod-group" in c]
    assert f"type={kind}" in mod
    assert "watch_port:31" in mod and "watch_port:32" in mod
    assert "set_field:1->pkt_mark" in mod and "set_field:3->pkt_mark" in mod
    assert ("weight:3," in mod) is (kind == "select")
    assert any("in_port=3,ipv6,actions=group:1" in i for i in run.inputs)


def test_no_usable_care_of_address_drops_instead_of_leaking_untunnelled():
    run = Recorder()
    OvsDataPlane(config(), run).program([])
    assert any("add-group" in c for c in run.commands)
    assert any("in_port=3,ipv6,actions=drop" in i for i in run.inputs)


def test_a_rule_pins_a_port_to_its_uplinks_best_care_of_address():
    run = Recorder()
    plane = OvsDataPlane(config(rules=[{"protocol": "tcp", "port": 443, "uplink": "isp2"}]),
                         run)
    plane.program([entry(1, "2001:db8:a::100", "isp1", 1),
                   entry(3, "2001:db8:b::100", "isp2", 2)])
    (rule,) = [line for i in run.inputs for line in i.splitlines() if "tp_dst=443" in line]
    assert rule.startswith("priority=100,in_port=3,tcp6,tp_dst=443,actions=")
    assert "set_field:3->pkt_mark" in rule


def test_an_unknown_backend_is_refused_with_a_reason():
    with pytest.raises(DataPlaneError, match="kernel"):
        backend_for(config(backend="kernel"))


def test_a_missing_gateway_is_a_clear_error():
    tree_config = config()
    plane = OvsDataPlane(tree_config, Recorder())
    plane.uplinks["isp1"] = (0, tree_config.uplinks[0].__class__("isp1", "up1"))
    with pytest.raises(DataPlaneError, match="gateway"):
        plane.sync_care_of({("isp1", ipaddress.ip_address("2001:db8:a::100")): 1})


def test_forgetting_a_care_of_address_renews_the_routes_of_its_uplink_neighbours():
    """OVS keeps the source it chose when a route was added; if that address goes, the
    other marks of the uplink must be re-added (found by the dataplane benchmark)."""
    run = Recorder()
    plane = OvsDataPlane(config(), run)
    plane.tun_mac = "02:00:00:00:03:03"
    a100, a101 = ipaddress.ip_address("2001:db8:a::100"), ipaddress.ip_address("2001:db8:a::101")
    b100 = ipaddress.ip_address("2001:db8:b::100")
    plane.sync_care_of({("isp1", a100): 1, ("isp1", a101): 2, ("isp2", b100): 3})
    run.commands.clear()
    plane.sync_care_of({("isp1", a100): 1, ("isp2", b100): 3})
    routes = [c for c in run.commands if "ovs/route/" in c]
    assert routes == [
        "ovs-appctl ovs/route/del 2001:db8:ffff::1/128 pkt_mark=2",
        "ovs-appctl ovs/route/del 2001:db8:ffff::1/128 pkt_mark=1",
        "ovs-appctl ovs/route/add 2001:db8:ffff::1/128 br-up1 2001:db8:a::1 pkt_mark=1"]


def test_liveness_gives_the_home_address_a_port_of_its_own_not_the_lans():
    run = Recorder()
    OvsDataPlane(config(), run).start()
    joined = "\n".join(run.commands)
    assert "add-port br-mr mr-probe -- set interface mr-probe type=internal " \
           "ofport_request=4" in joined
    assert "ip -6 addr replace 2001:db8:f000::100/128 dev mr-probe nodad" in joined
    assert "ip -6 route replace default via fe80::1 dev mr-probe table 199" in joined
    assert "ip -6 rule add from 2001:db8:f000::100 lookup 199 pref 1000" in joined
    # Not through mr-tun, where the probes would queue behind the LAN's traffic.
    assert "dev mr-tun nodad" not in joined
    assert "from 2001:db8:f000::100 lookup 200" not in joined


def test_each_care_of_address_of_the_group_gets_its_probe_and_reply_flows():
    run = Recorder()
    plane = OvsDataPlane(config(), run)
    plane.start()
    run.inputs.clear()
    a, b = entry(1, "2001:db8:a::100", "isp1", 1), entry(3, "2001:db8:b::100", "isp2", 2)
    plane.program([a, b])
    flows = [f for text in run.inputs for f in text.splitlines() if "tp_dst=4195" in f]
    probe = "udp6,ipv6_src=2001:db8:f000::100,ipv6_dst=2001:db8:ffff::1,tp_src=4196,tp_dst=4195"
    assert f"priority=300,in_port=4,{probe},actions=set_field:1->pkt_mark," \
           "set_field:2001:db8:ffff::1->tun_ipv6_dst,set_field:100->tun_id,output:10" in flows
    assert f"priority=300,in_port=10,tun_ipv6_dst=2001:db8:a::100,{probe},actions=" \
           "set_field:2001:db8:ffff::1->ipv6_src,set_field:2001:db8:f000::100->ipv6_dst," \
           "set_field:4195->udp_src,set_field:4196->udp_dst," \
           "set_field:02:00:00:00:03:03->eth_dst,output:4" in flows
    assert len(flows) == 4  # BID 3 too
    run.commands.clear()
    run.inputs.clear()
    plane.program([b])  # BID 1 leaves the group: its flows go, BID 3's stay as they are
    assert not [f for text in run.inputs for f in text.splitlines() if "tp_dst=4195" in f]
    assert not [c for c in run.commands if "del-flows" in c]  # not now: the group first
    plane.housekeeping()
    assert [c for c in run.commands if "del-flows" in c] == [
        "ovs-ofctl -O OpenFlow13 del-flows br-mr udp6,tp_src=4196,tp_dst=4195"]
    plane.housekeeping()
    assert len([c for c in run.commands if "del-flows" in c]) == 1


def test_liveness_disabled_installs_no_probe_flow():
    run = Recorder()
    plane = OvsDataPlane(parse_config(dict(_tree(), liveness={"enabled": False})), run)
    plane.start()
    plane.program([entry(1, "2001:db8:a::100", "isp1", 1)])
    assert "4195" not in "\n".join(run.commands + run.inputs)
    assert "nodad" not in "\n".join(run.commands)


def _tree():
    return {"mobile_router": {"home_address": "2001:db8:f000::100",
                              "prefixes": ["2001:db8:ff00:1::/64"], "spi": 256, "key": KEY,
                              "gre_key": 100},
            "home_agents": ["2001:db8:ffff::1"],
            "uplinks": [{"name": "isp1", "interface": "up1", "gateway": "2001:db8:a::1"}]}

