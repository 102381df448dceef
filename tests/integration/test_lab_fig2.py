"""fig2 (two anycast HA sites, eBGP between FRR routers) and the generated scale topology,
through :class:`topologies.runner.Runner` and ``nemo-lab``.

fig2 is built once for the class; the scale lab (4 MRs, two uplinks each) after it. Every
run lives in a short temporary base directory (unix socket paths must stay short).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from topologies.frr import bgpd_config
from topologies.model import TopologyError, bgp_static_routes, load, parse
from topologies.netns import list_netns
from topologies.procs import pids_matching, wait_until
from topologies.runner import ROOT, Runner
from topologies.scale import scale_topology

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.requires_root,
              pytest.mark.requires_ovs,
              pytest.mark.requires_tools("ip", "ping", "ethtool", "ovs-ofctl", "ovs-vswitchd",
                                         "zebra", "bgpd", "vtysh")]

TOPO = load("fig2")
AGGREGATE = "2001:db8:f000::/36"
CN, CN2, LAN1 = "2001:db8:100::10", "2001:db8:200::10", "2001:db8:ff00:1::10"
COAS = ["2001:db8:a::100", "2001:db8:b::100"]
PING = ["ping", "-6", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1"]


def assert_nothing_left(base: Path, prefix: str) -> None:
    assert [n for n in list_netns() if n.startswith(prefix)] == []
    assert pids_matching(str(base / prefix)) == [], "processes of the run still alive"
    assert sorted(p.name for p in base.glob(prefix + "*")) == []
    assert not (base / "current").exists()


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="nl", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# -- the topology file and the generator (no lab needed) -------------------------------------

def test_fig2_two_sites_announce_the_same_aggregate_from_different_ases():
    sites = {n: TOPO.nodes[n] for n in ("site1", "site2")}
    assert [s["networks"] for s in sites.values()] == [[AGGREGATE], [AGGREGATE]]
    assert sites["site1"]["asn"] != sites["site2"]["asn"]
    assert TOPO.nodes["mr"]["home_agent"] == "ha1"
    static = {n: [(r.dst, r.via, r.dev) for r in rs] for n, rs in bgp_static_routes(TOPO).items()}
    assert static["site1"] == [(AGGREGATE, "2001:db8:e1::1", "ha0")]   # aggregate -> its HA
    assert static["site2"] == [(AGGREGATE, "2001:db8:e2::1", "ha0")]
    assert static["isp1"] == [] and static["core"] == []                # the rest is BGP
    config = bgpd_config(TOPO, "isp1")
    assert "router bgp 64501" in config and "bgp router-id 192.0.2.11" in config
    assert " neighbor 2001:db8:51::2 remote-as 65001" in config
    assert " neighbor 2001:db8:1a::1 remote-as 64500" in config
    assert "  network" not in config and "  redistribute connected" in config
    assert "  network 2001:db8:f000::/36" in bgpd_config(TOPO, "site2")


def test_fig2_checks_name_every_bgp_problem():
    raw = json.loads(json.dumps(TOPO.raw))
    raw["nodes"]["site2"]["router_id"] = "192.0.2.21"          # site1's
    raw["nodes"]["isp2"]["networks"] = ["2001:db8:e000::/36"]   # no HA next to isp2
    raw["nodes"]["core"]["asn"] = "64500"
    raw["links"][6]["bgp"] = True                               # cn-isp1: cn is a host
    with pytest.raises(TopologyError) as info:
        parse(raw, "bad2.yaml")
    text = str(info.value)
    assert "bad2.yaml: nodes.site2.router_id: 192.0.2.21 is already the router-id of site1" in text
    assert "bad2.yaml: nodes.isp2.networks[0]: 2001:db8:e000::/36 is neither attached" in text
    assert "bad2.yaml: nodes.core.asn: must be an integer" in text
    assert "bad2.yaml: links (cn-isp1).bgp: a BGP session needs two bgp nodes" in text
    raw = json.loads(json.dumps(TOPO.raw))
    raw["nodes"]["site1"]["networks"] = ["2001:db8:f000::/48"]  # MNP 2001:db8:ff00:1::/64 outside
    with pytest.raises(TopologyError, match="nodes.ha1: 2001:db8:ff00:1::/64 is not inside a "
                                            "network that site1 announces"):
        parse(raw, "bad3.yaml")


def test_scale_generator_gives_every_mr_its_own_identity():
    topo = scale_topology(mrs=4, uplinks=2)
    mrs = topo.nodes_of("mr")
    assert mrs == ["mr1", "mr2", "mr3", "mr4"]
    for key in ("home_address", "spi", "key", "gre_key"):
        assert len({str(topo.nodes[m][key]) for m in mrs}) == 4, key
    assert {str(topo.nodes[m]["prefixes"][0]) for m in mrs} == {
        "2001:db8:ff00:%d::/64" % i for i in range(1, 5)}
    assert [len(topo.uplinks(m)) for m in mrs] == [2, 2, 2, 2]
    assert len(topo.all_care_of()) == 8


# -- fig2 through the runner ----------------------------------------------------------------------

@pytest.fixture(scope="class")
def lab(base) -> Iterator[Tuple[Runner, dict]]:
    runner = Runner(base)
    state = runner.up("fig2")
    try:
        yield runner, state
    finally:
        for node in ("mr", "ha1"):
            log = Path(state["run_dir"]) / ("%s.log" % node)
            if log.exists():
                print("---- %s log (tail) ----\n%s" % (node, log.read_text()[-2000:]))
        runner.down(state["prefix"])


class TestFig2:
    def test_every_bgp_session_is_established(self, lab):
        runner, state = lab
        assert sorted(state["bgp"]) == ["core", "isp1", "isp2", "site1", "site2"]
        for node in state["bgp"]:
            peers = runner.bgp_summary(node)
            want = sorted(str(b.peer) for b in TOPO.bgp_sessions(node))
            assert sorted(peers) == want, node
            assert {p["state"] for p in peers.values()} == {"Established"}, (node, peers)
        out = runner.vtysh("core", "show bgp summary")
        assert "64501" in out and "64502" in out

    def test_the_cn_reaches_the_aggregate_via_the_nearest_site(self, lab):
        runner, _ = lab
        # cn's upstream router (isp1) prefers site1 (AS path 65001) ...
        best = runner.bgp_route("isp1", AGGREGATE)
        assert (best["as_path"], best["next_hop"]) == ("65001", "2001:db8:51::2"), best
        route = runner.exec("isp1", ["ip", "-6", "route", "get", LAN1]).stdout
        assert " dev site0 " in route and "proto bgp" in route, route
        # ... cn2's (isp2) prefers site2, while core sees both announcements.
        assert runner.bgp_route("isp2", AGGREGATE)["as_path"] == "65002"
        assert runner.bgp_route("core", AGGREGATE)["paths"] == 2
        # and the sites route the aggregate to their own HA
        for site, ha in (("site1", "2001:db8:e1::1"), ("site2", "2001:db8:e2::1")):
            out = runner.exec(site, ["ip", "-6", "route", "get", LAN1]).stdout
            assert "via %s dev ha0" % ha in out, out

    def test_the_mr_is_registered_with_its_ha_only(self, lab):
        runner, state = lab
        ha1 = runner.ha_status(state, "ha1")["bindings"]
        assert [e["router"] for e in ha1] == ["mr"]
        assert sorted(b["care_of"] for b in ha1[0]["care_of"]) == COAS
        assert runner.ha_status(state, "ha2")["bindings"] == []
        wait_until(lambda: runner.mr_usable() == COAS, 5, "the MR to use both uplinks")

    def test_traffic_between_the_cn_and_the_lan(self, lab):
        runner, _ = lab
        runner.exec("lan1", ["ping", "-6", "-c", "1", "-W", "2", CN])  # neighbour discovery
        assert runner.exec("lan1", PING + [CN]).returncode == 0
        assert runner.exec("cn", PING + [LAN1]).returncode == 0

    @pytest.mark.xfail(strict=True, reason="the multi-HA issue: cn2's nearest site is ha2, "
                                           "which has no binding for the MR")
    def test_cn2_reaches_the_lan_through_the_other_site(self, lab):
        runner, _ = lab
        assert runner.exec("cn2", ["ping", "-6", "-n", "-q", "-c", "2", "-W", "1",
                                   LAN1]).returncode == 0

    def test_down_leaves_nothing(self, lab, base):
        runner, state = lab
        out = subprocess.run([sys.executable, "-m", "topologies.cli", "--base-dir", str(base),
                              "down"], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "stopped site1.bgpd" in out.stdout and "stopped mr" in out.stdout
        assert_nothing_left(base, state["prefix"])


# -- the scale topology ------------------------------------------------------------------------

def test_scale_four_mrs_register_and_down_leaves_nothing(base):
    out = subprocess.run([sys.executable, "-m", "topologies.cli", "--base-dir", str(base), "up",
                          "scale", "--mrs", "4", "--uplinks", "2"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    prefix = json.loads((base / "current").read_text())["prefix"] if out.returncode == 0 else None
    runner = Runner(base)
    try:
        assert out.returncode == 0, out.stderr
        assert "8 care-of addresses bound" in out.stdout
        state = runner.state()
        bindings = runner.ha_status(state, "ha")["bindings"]
        assert sorted(e["router"] for e in bindings) == ["mr1", "mr2", "mr3", "mr4"]
        assert all(len(e["care_of"]) == 2 for e in bindings)
        for i in (1, 4):  # the CN reaches an MR's LAN gateway through the tunnel
            ping = runner.exec("cn", PING + ["2001:db8:ff00:%d::1" % i])
            assert ping.returncode == 0, ping.stdout
    finally:
        down = subprocess.run([sys.executable, "-m", "topologies.cli", "--base-dir", str(base),
                               "down"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert down.returncode == 0, down.stderr
    assert_nothing_left(base, prefix)
