"""RFC 4908 figure 1 as a product: topologies/fig1.yaml through the runner, the CLI and the demo.

The class-scoped lab is built once by :class:`topologies.runner.Runner` (real nemo-ha and
nemo-mr); the CLI and the demo then build their own runs after it is gone. Every run
lives in a short temporary base directory (unix socket paths must stay short).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from topologies.model import TopologyError, load, parse, router_routes
from topologies.netns import list_netns
from topologies.procs import pids_matching, wait_until
from topologies.runner import ROOT, Runner

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.requires_root,
              pytest.mark.requires_ovs,
              pytest.mark.requires_tools("ip", "ping", "ethtool", "ovs-ofctl", "ovs-vswitchd")]

TOPO = load("fig1")
CN = "2001:db8:100::10"
LAN = {"lan1": "2001:db8:ff00:1::10", "lan2": "2001:db8:ff00:1::11"}
ALL_COAS = sorted(TOPO.all_care_of())
ISP2_COAS = ["2001:db8:b::100", "2001:db8:b::101"]


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


# -- the topology file (no lab needed, but kept with the rest) ----------------------------

def test_fig1_loads_into_a_graph_with_routes():
    assert sorted(TOPO.graph.nodes) == ["cn", "core", "ha", "isp1", "isp2", "lan1", "lan2", "mr"]
    assert TOPO.graph.edges["mr", "isp1"]["link"] == "mr-isp1"
    assert TOPO.lan_hosts("mr") == ["lan1", "lan2"]
    routes = {(r.dst, r.via, r.dev) for r in router_routes(TOPO)["core"]}
    assert ("2001:db8:ff00:1::/64", "2001:db8:ffff::1", "ha0") in routes  # MNP -> HA
    assert ("2001:db8:f000::/64", "2001:db8:ffff::1", "ha0") in routes    # home prefix
    assert ("2001:db8:a::/64", "2001:db8:1a::2", "isp1") in routes
    isp1 = {(r.dst, r.via) for r in router_routes(TOPO)["isp1"]}
    assert ("2001:db8:ff00:1::/64", "2001:db8:1a::1") in isp1              # via core
    assert ("2001:db8:b::/64", "2001:db8:1a::1") in isp1


def test_a_broken_topology_names_the_file_and_the_link():
    raw = json.loads(json.dumps(TOPO.raw))
    raw["links"][4]["ends"][1]["addresses"] = ["2001:db9::1/64"]
    raw["links"][0]["ends"][0]["node"] = "nowhere"
    with pytest.raises(TopologyError) as info:
        parse(raw, "broken.yaml")
    text = str(info.value)
    assert "broken.yaml: links[4] (mr-isp1).ends[1].addresses[0]: 2001:db9::1/64 is not in a " \
           "documentation prefix" in text
    assert "broken.yaml: links[0] (cn-core).ends[0].node: 'nowhere' is not a node" in text


# -- one lab through the runner ---------------------------------------------------------------

@pytest.fixture(scope="class")
def lab(base) -> Iterator[Tuple[Runner, dict]]:
    """fig1 up for the tests of one class (torn down when the class is done)."""
    runner = Runner(base)
    state = runner.up("fig1")
    try:
        yield runner, state
    finally:
        for node in ("mr", "ha"):
            log = Path(state["run_dir"]) / ("%s.log" % node)
            if log.exists():
                print("---- %s log (tail) ----\n%s" % (node, log.read_text()[-3000:]))
        runner.down(state["prefix"])


class TestRunner:
    def test_all_four_care_of_addresses_register(self, lab):
        runner, state = lab
        assert runner.ha_care_of() == ALL_COAS
        wait_until(lambda: runner.mr_usable() == ALL_COAS, 5, "the MR to use the four CoAs")
        status = runner.status()
        assert all(n["exists"] for n in status["nodes"].values())
        assert all(p["alive"] for p in status["processes"].values())
        assert status["ovs"] == {"ha": True, "mr": True}
        assert sorted(b["bid"] for b in status["mr"]["mr"]["bindings"]) == [1, 2, 3, 4]
        assert 0 < state["registration_s"] < 15

    @pytest.mark.parametrize("host", ["lan1", "lan2"])
    def test_traffic_both_ways_from_both_lan_hosts(self, lab, host):
        runner, _ = lab
        ping = ["ping", "-6", "-n", "-q", "-c", "5", "-i", "0.2", "-W", "1"]
        runner.exec(host, ping[:-6] + ["-c", "1", "-W", "2", CN])  # neighbour discovery
        assert runner.exec(host, ping + [CN]).returncode == 0
        assert runner.exec("cn", ping + [LAN[host]]).returncode == 0

    def test_downstream_spreads_across_the_care_of_addresses(self, lab):
        """TCP SYNs from 64 source ports (UDP between two hosts takes one bucket)."""
        runner, _ = lab
        before = runner.counters()["downstream"]
        script = ("import socket, time\nsockets = []\n"
                  "for port in range(41000, 41064):\n"
                  "    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n"
                  "    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                  "    s.setblocking(False)\n    s.bind(('', port))\n"
                  f"    s.connect_ex(('{LAN['lan1']}', 9))\n    sockets.append(s)\n"
                  "time.sleep(0.5)\nfor s in sockets:\n    s.close()\n")
        runner.exec("cn", [sys.executable, "-c", script], check=True)

        def delta():
            now = runner.counters()["downstream"]
            return {coa: now.get(coa, 0) - before.get(coa, 0) for coa in ALL_COAS}
        wait_until(lambda: sum(delta().values()) >= 64, 5, "the MR's counters to show the SYNs")
        spread = delta()
        print("\nSYNs per care-of address: %s" % spread)
        assert all(count > 0 for count in spread.values()), spread

    def test_failover_and_recovery_with_fail_and_heal(self, lab):
        runner, _ = lab
        assert runner.fail("mr-isp1") == "mr-isp1: mr up1 down"
        assert runner.status()["failed_links"] == ["mr-isp1"]
        wait_until(lambda: runner.ha_care_of() == ISP2_COAS, 5,
                   "the HA to drop the care-of addresses of isp1")
        wait_until(lambda: runner.mr_usable() == ISP2_COAS, 5, "the MR to stop using isp1")
        ping = ["ping", "-6", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1"]
        for host, address in LAN.items():
            assert runner.exec(host, ping + [CN]).returncode == 0
            assert runner.exec("cn", ping + [address]).returncode == 0
        runner.heal("mr-isp1")
        wait_until(lambda: runner.ha_care_of() == ALL_COAS, 10, "isp1's CoAs to be bound again")
        wait_until(lambda: runner.mr_usable() == ALL_COAS, 5, "the MR to use them again")
        assert runner.status()["failed_links"] == []
        for host in LAN:
            assert runner.exec(host, ping + [CN]).returncode == 0

    def test_unknown_nodes_and_links_are_reported(self, lab):
        runner, _ = lab
        with pytest.raises(Exception, match="no node 'nope'"):
            runner.exec("nope", ["true"])
        with pytest.raises(Exception, match="no link named 'mr-isp9'"):
            runner.fail("mr-isp9")

    def test_down_from_another_process_leaves_nothing(self, lab, base):
        _, state = lab
        out = subprocess.run([sys.executable, "-m", "topologies.cli", "--base-dir", str(base),
                              "down"], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "stopped mr" in out.stdout and "deleted namespace %smr" % state["prefix"] in out.stdout
        assert_nothing_left(base, state["prefix"])


# -- the CLI as a subprocess ----------------------------------------------------------------------

def nemo_lab(base: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "topologies.cli", "--base-dir", str(base), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_cli_up_status_exec_down(base):
    up = nemo_lab(base, "up", "fig1")
    prefix = json.loads((base / "current").read_text())["prefix"] if up.returncode == 0 else None
    try:
        assert up.returncode == 0, up.stderr
        assert "4 care-of addresses bound" in up.stdout
        status = json.loads(nemo_lab(base, "status", "--json").stdout)
        assert status["prefix"] == prefix
        assert all(p["alive"] for p in status["processes"].values())
        bound = sorted(b["care_of"] for e in status["ha"]["ha"]["bindings"] for b in e["care_of"])
        assert bound == ALL_COAS
        table = nemo_lab(base, "status").stdout
        assert "2001:db8:a::100" in table and "running" in table
        ping = nemo_lab(base, "exec", "lan2", "ping", "-6", "-c", "2", "-W", "2", CN)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert nemo_lab(base, "exec", "nope", "true").returncode == 1
        second = nemo_lab(base, "up", "fig1")
        assert second.returncode == 1 and "already up" in second.stderr
    finally:
        down = nemo_lab(base, "down")
    assert down.returncode == 0, down.stderr
    assert_nothing_left(base, prefix)
    assert nemo_lab(base, "down").stdout.strip() == "nothing to tear down"


def test_cli_help_explains_every_command():
    out = subprocess.run([sys.executable, "-m", "topologies.cli", "--help"], capture_output=True,
                         text=True, cwd=ROOT).stdout
    for command in ("up", "down", "status", "exec", "fail", "heal", "demo"):
        assert command in out
    demo = subprocess.run([sys.executable, "-m", "topologies.cli", "demo", "--help"],
                          capture_output=True, text=True, cwd=ROOT).stdout
    for option in ("--out", "--rate", "--before", "--during", "--after", "--interval", "--link"):
        assert option in demo


# -- the demo end to end -------------------------------------------------------------------------

def test_demo_end_to_end(base, tmp_path):
    from topologies.demo import run_demo

    started = time.monotonic()
    figures = run_demo(tmp_path, rate=400, before=1.5, during=1.5, after=1.5,
                       runner=Runner(base), echo=print)
    elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert saved["care_of_registered"] == figures["care_of_registered"]
    assert sorted(saved["care_of_registered"]) == ALL_COAS
    assert 0 < saved["registration_s"] < 15
    for coa in ALL_COAS:  # the probe flows cover every CoA in both directions
        assert saved["packets_per_coa"][coa]["downstream"] > 0, saved["packets_per_coa"]
        assert saved["packets_per_coa"][coa]["upstream"] > 0, saved["packets_per_coa"]
    for direction in ("downstream", "upstream"):
        assert 0 < saved["largest_gap"][direction]["max_gap_ms"] < 1000, saved["largest_gap"]
    for stream in saved["streams"]:
        assert stream["received"] > 0.9 * stream["expected"], stream
    events = saved["events"]
    assert events["fail"] < events["heal"]
    assert 0 < events["deregistration_s"] < 3 and 0 < events["reregistration_s"] < 3
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_nothing_left(base, figures["prefix"])
