"""Data plane benchmark: throughput and small-packet rate through the NEMO tunnels vs plain.

Tunnel path: the RFC 4908 figure-1 lab (``topologies/fig1.yaml`` via the runner, real
``nemo-ha`` and ``nemo-mr``): CN -> core -> HA (userspace OVS, GRE encapsulation to a
care-of address) -> core -> isp1/isp2 -> MR (userspace OVS, decapsulation) -> mr-tun ->
LAN bridge (MTU 1400) -> lan1, and back the other way.

Baseline ("plain"): a second, small lab built with the same Lab primitives and running
at the same time: the same nodes and addresses (cn, core, isp1, mr with its LAN bridge at
MTU 1400, lan1, lan2), the same kind of veths (offloads off) and one userspace
(``datapath_type=netdev``) OVS in the HA's and in the MR's namespace, but forwarding
plainly: the HA's bridge is a bump in the wire between core and isp1 (two ports, one
flow each way), the MR's bridge carries its uplink and its LOCAL port (the kernel of the
MR then routes to the LAN as in fig1). So every packet crosses two userspace OVS
instances in both labs; what the plain lab lacks is exactly the NEMO data plane (GRE
encapsulation and decapsulation, the HA's and MR's flow tables and groups, the patch to
``br-upN``, the ``mr-tun`` hop) and the triangle back through ``core`` (one more kernel
forwarding hop). Replacing the flows of the live fig1 lab was rejected: the HA has no
plain L3 path of its own (it hangs off core by one port, the core routes the MNP to it),
so "plain" there would have meant hand-written L3 rewrite flows on both OVS instances
and changed routes on the core: more artificial than a twin lab.

Figures, each sampled in turn (tunnel, plain, tunnel, plain...) so machine noise hits
both alike: TCP throughput (iperf3, 4 parallel streams so the HA's and MR's select
groups spread them over the care-of addresses) and small-packet rate (iperf3 UDP,
64-octet payloads, unlimited sending rate, packets *received* per second), CN->LAN
("down") and LAN->CN ("up", ``iperf3 -R``), with 4 care-of addresses bound and with 1.
For 1 CoA the MR keeps running: the second uplink is failed (``fail mr-isp2``, the MR
de-registers its two CoAs) and the second CoA of isp1 is removed from ``br-up1`` (the
MR de-registers it), until the HA has exactly ``2001:db8:a::100`` bound.
Target: tunnel/plain >= 0.8 for every figure.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any, Dict, List, Tuple

from topologies.lab import Lab
from topologies.netns import Namespace
from topologies.runner import Runner

TARGET_RATIO = 0.8
CN = "2001:db8:100::10"
LAN1 = "2001:db8:ff00:1::10"
ONE_COA = "2001:db8:a::100"
UDP_PAYLOAD = 64
TCP_STREAMS = 4
LAN_MTU = 1400
KINDS = ("tcp", "udp64")
DIRECTIONS = ("down", "up")


# -- the plain twin lab ---------------------------------------------------------------------

def build_plain(lab: Lab) -> Dict[str, Namespace]:
    """cn - core - [HA OVS, plain] - isp1 - [MR OVS, plain] mr - lan0 - lan1/lan2."""
    ns = {n: lab.namespace(n) for n in ("cn", "core", "ha", "isp1", "mr", "lan1", "lan2")}
    for n in ("core", "isp1", "mr"):
        ns[n].enable_forwarding()
    mr = ns["mr"]
    mr.run("ip", "link", "add", "lan0", "type", "bridge", "mcast_snooping", "0")
    mr.set_mtu("lan0", LAN_MTU)
    lab.veth(ns["cn"], "eth0", ns["core"], "cn0")
    lab.veth(ns["core"], "ha0", ns["ha"], "c0")
    lab.veth(ns["ha"], "i0", ns["isp1"], "core0")
    lab.veth(ns["isp1"], "mr0", mr, "up1")
    for host in ("lan1", "lan2"):
        lab.veth(ns[host], "eth0", mr, host, mtu=LAN_MTU)
        mr.run("ip", "link", "set", "dev", host, "master", "lan0")
    mr.link_up("lan0")
    ns["cn"].add_addr("eth0", CN + "/64")
    ns["core"].add_addr("cn0", "2001:db8:100::1/64")
    ns["core"].add_addr("ha0", "2001:db8:1a::1/64")
    ns["isp1"].add_addr("core0", "2001:db8:1a::2/64")
    ns["isp1"].add_addr("mr0", "2001:db8:a::1/64")
    mr.add_addr("lan0", "2001:db8:ff00:1::1/64")
    ns["lan1"].add_addr("eth0", LAN1 + "/64")
    ns["lan2"].add_addr("eth0", "2001:db8:ff00:1::11/64")
    # The HA's OVS: a bump in the wire between core and isp1, one flow each way.
    ha_ovs = lab.ovs(ns["ha"])
    ha_ovs.add_bridge("br-ha", secure=True)
    ha_ovs.add_port("br-ha", "c0", ofport=1)
    ha_ovs.add_port("br-ha", "i0", ofport=2)
    ha_ovs.add_flows("br-ha", ["in_port=1,actions=output:2", "in_port=2,actions=output:1"])
    # The MR's OVS: uplink port + LOCAL port (the CoA lives there, as on br-upN in fig1).
    mr_ovs = lab.ovs(mr)
    mr_ovs.add_bridge("br-mr", secure=True)
    mr_ovs.add_port("br-mr", "up1", ofport=1)
    mr_ovs.add_flows("br-mr", ["in_port=1,actions=output:LOCAL",
                               "in_port=LOCAL,actions=output:1"])
    mr.add_addr("br-mr", ONE_COA + "/64")
    ns["cn"].add_route("default", via="2001:db8:100::1")
    ns["core"].add_route("2001:db8:ff00:1::/64", via="2001:db8:1a::2")
    ns["core"].add_route("2001:db8:a::/64", via="2001:db8:1a::2")
    ns["isp1"].add_route("default", via="2001:db8:1a::1")
    ns["isp1"].add_route("2001:db8:ff00:1::/64", via=ONE_COA)
    mr.add_route("default", via="2001:db8:a::1")
    for host in ("lan1", "lan2"):
        ns[host].add_route("default", via="2001:db8:ff00:1::1")
    deadline = time.monotonic() + 10
    while ns["cn"].run("ping", "-6", "-c1", "-W1", LAN1, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("plain lab: cn cannot reach lan1")
    return ns


# -- one sample -------------------------------------------------------------------------------

_port = [5300]


def iperf(cn: Namespace, lan: Namespace, kind: str, direction: str, seconds: float) -> float:
    """One iperf3 run between cn and lan1: TCP bits/s received, or UDP packets/s received."""
    _port[0] += 1
    port = str(_port[0])
    server = lan.popen("iperf3", "-s", "-1", "-p", port)
    try:
        argv = ["iperf3", "-c", LAN1, "-p", port, "-t", "%g" % seconds, "-J"]
        if kind == "tcp":
            argv += ["-P", str(TCP_STREAMS)]
        else:
            argv += ["-u", "-l", str(UDP_PAYLOAD), "-b", "0"]
        if direction == "up":
            argv.append("-R")
        out = None
        for _ in range(20):  # until the server listens
            time.sleep(0.1)
            proc = cn.run(*argv, check=False, timeout=seconds + 30)
            out = json.loads(proc.stdout or "{}")
            if "error" not in out:
                break
        if "error" in out:
            raise RuntimeError("iperf3 %s %s: %s" % (kind, direction, out["error"]))
        got = out["end"]["sum_received"]
        if kind == "tcp":
            return float(got["bits_per_second"])
        return got["bytes"] / UDP_PAYLOAD / out["end"]["sum_sent"]["seconds"]
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()


def stats(samples: List[float]) -> Dict[str, Any]:
    return {"min": min(samples), "median": statistics.median(samples), "max": max(samples),
            "samples": samples}


def measure(paths: Dict[str, Tuple[Namespace, Namespace]], repeats: int,
            seconds: float) -> Dict[str, Any]:
    """Interleaved samples of every kind and direction over every path."""
    samples: Dict[str, Dict[str, List[float]]] = {
        "%s_%s" % (k, d): {p: [] for p in paths} for k in KINDS for d in DIRECTIONS}
    for _ in range(repeats):
        for kind in KINDS:
            for direction in DIRECTIONS:
                for path, (cn, lan) in paths.items():
                    samples["%s_%s" % (kind, direction)][path].append(
                        iperf(cn, lan, kind, direction, seconds))
    out = {}
    for key, per_path in samples.items():
        t, p = stats(per_path["tunnel"]), stats(per_path["plain"])
        out[key] = {"tunnel": t, "plain": p, "ratio": t["median"] / p["median"],
                    "ratio_min": t["min"] / p["max"], "ratio_max": t["max"] / p["min"]}
    return out


def one_coa_topology():
    """fig1 with a single care-of address: isp1's a::100 only, the MR's isp2 uplink gone."""
    import copy

    from topologies.model import load, parse

    topo = load("fig1")
    raw = copy.deepcopy(topo.raw)
    raw["name"] = "fig1-1coa"
    raw["links"] = [l for l in raw["links"] if l["name"] != "mr-isp2"]
    for l in raw["links"]:
        if l["name"] == "mr-isp1":
            l["uplink"]["care_of"] = [ONE_COA]
    return parse(raw, topo.source)


def transition_check(runner: Runner, state: Dict[str, Any], wait: float) -> Dict[str, Any]:
    """Go from 4 CoAs to 1 at run time (fail mr-isp2, remove a::101 from br-up1) and see
    whether CN and lan1 still reach each other within ``wait`` s (a finding, not a figure)."""
    start = time.monotonic()
    runner.fail("mr-isp2")
    runner.namespace("mr", state).del_addr("br-up1", "2001:db8:a::101/64")
    runner.wait_bound(state, coas=[ONE_COA], timeout=20)
    bound = time.monotonic() - start
    cn, lan = runner.namespace("cn", state), runner.namespace("lan1", state)
    while time.monotonic() - start < wait:
        if (cn.run("ping", "-6", "-c1", "-W1", LAN1, check=False).returncode == 0
                and lan.run("ping", "-6", "-c1", "-W1", CN, check=False).returncode == 0):
            return {"bound_s": round(bound, 2),
                    "reachable_s": round(time.monotonic() - start, 2)}
        time.sleep(0.2)
    return {"bound_s": round(bound, 2), "reachable_s": None, "waited_s": wait}


def run(quick: bool = False) -> Dict[str, Any]:
    repeats, seconds = (1, 1.5) if quick else (4, 3.0)
    runner = Runner()
    started = time.time()
    phases: Dict[str, Any] = {}
    with Lab() as lab:
        plain = build_plain(lab)
        for phase, topo in (("4coa", "fig1"), ("1coa", one_coa_topology())):
            state = runner.up(topo)
            try:
                paths = {"tunnel": (runner.namespace("cn", state),
                                    runner.namespace("lan1", state)),
                         "plain": (plain["cn"], plain["lan1"])}
                phases[phase] = {"care_of": runner.ha_care_of(state),
                                 **measure(paths, repeats, seconds)}
                if phase == "4coa":
                    phases[phase]["switch"] = transition_check(runner, state,
                                                               5.0 if quick else 20.0)
            finally:
                runner.down(state["prefix"])
    ratios = {"%s/%s" % (ph, key): fig["ratio"] for ph, figs in phases.items()
              for key, fig in figs.items() if key not in ("care_of", "switch")}
    worst = min(ratios, key=ratios.get)
    return {
        "section": "dataplane",
        "title": "Data plane: NEMO tunnels vs plain forwarding (fig1)",
        "repeats": repeats, "seconds_per_sample": seconds, "tcp_streams": TCP_STREAMS,
        "udp_payload": UDP_PAYLOAD, "lan_mtu": LAN_MTU, "quick": quick,
        "phases": phases, "ratios": ratios, "worst": worst,
        "ratio": ratios[worst],
        "target": ">= %gx plain (every figure)" % TARGET_RATIO,
        "met": all(r >= TARGET_RATIO for r in ratios.values()),
        "elapsed_s": round(time.time() - started, 1),
    }


def _fmt(kind: str, value: float) -> str:
    return "%.0f Mbit/s" % (value / 1e6) if kind == "tcp" else "%.0f kpps" % (value / 1e3)


def _num(kind: str, value: float) -> str:
    return "%.0f" % (value / 1e6 if kind == "tcp" else value / 1e3)


def markdown(result: Dict[str, Any]) -> str:
    lines = [
        "## %s" % result["title"],
        "",
        "Tunnel: fig1 with the real `nemo-ha` and `nemo-mr` (CN -> core -> HA OVS, GRE -> "
        "core -> ISP -> MR OVS -> LAN at MTU %d). Plain baseline: a twin lab up at the same "
        "time with the same nodes, addresses, veths and two userspace OVS instances that "
        "forward without tunnels (the HA's bridge a bump in the wire between core and "
        "isp1, the MR's bridge between its uplink and its LOCAL port); see "
        "`bench/dataplane.py` for why. TCP: iperf3, %d streams; small packets: iperf3 UDP "
        "with %d-octet payloads at unlimited rate, packets received per second. %d "
        "samples of %g s per figure, tunnel and plain alternating."
        % (result["lan_mtu"], result["tcp_streams"], result["udp_payload"],
           result["repeats"], result["seconds_per_sample"]),
        "",
        "| CoAs | figure | direction | tunnel median (min-max) | plain median (min-max) "
        "| ratio median (range) | target | verdict |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for phase, label in (("4coa", "4"), ("1coa", "1")):
        figs = result["phases"].get(phase)
        if not figs:
            continue
        for kind in KINDS:
            for direction in DIRECTIONS:
                f = figs["%s_%s" % (kind, direction)]
                t, p = f["tunnel"], f["plain"]
                lines.append(
                    "| %s | %s | %s | %s (%s-%s) | %s (%s-%s) | %.2fx (%.2f-%.2f) | >= %g | %s |"
                    % (label, "TCP" if kind == "tcp" else "UDP 64 B",
                       "CN->LAN" if direction == "down" else "LAN->CN",
                       _fmt(kind, t["median"]), _num(kind, t["min"]), _num(kind, t["max"]),
                       _fmt(kind, p["median"]), _num(kind, p["min"]), _num(kind, p["max"]),
                       f["ratio"], f["ratio_min"], f["ratio_max"], TARGET_RATIO,
                       "met" if f["ratio"] >= TARGET_RATIO else "**missed**"))
    switch = result["phases"].get("4coa", {}).get("switch")
    if switch:
        lines += ["", "1 CoA: a second fig1 lab whose MR has the single CoA a::100 (the isp2 "
                  "uplink left out). The same transition at run time (`fail mr-isp2`, "
                  "a::101 removed from br-up1) is checked too: only a::100 was bound at the "
                  "HA after %.1f s, and CN and lan1 %s."
                  % (switch["bound_s"], "reached each other after %.1f s"
                     % switch["reachable_s"] if switch["reachable_s"] is not None else
                     "did not reach each other within %g s (a regression: the MR agent "
                     "renews its tunnel routes when a care-of address goes)"
                     % switch["waited_s"])]
    lines += [
        "",
        "**Worst ratio: %.2fx** (%s); target %s: %s."
        % (result["ratio"], result["worst"], result["target"],
           "met" if result["met"] else "**missed**"),
        "",
    ]
    return "\n".join(lines)
