"""The ``scale`` topology: one HA and N mobile routers, generated (not a YAML file).

    nemo-lab up scale --mrs 10 [--uplinks 2]
    python -m topologies.scale --mrs 10          # print the generated topology (YAML)

Layout: ``cn -- core -- ha`` as in figure 1, ``isp1`` (and ``isp2`` with two uplinks)
behind ``core``, and MR ``mrI`` (I = 1..N) with one uplink to each ISP on its own link
prefix ``2001:db8:a:I::/64`` (``2001:db8:b:I::/64``), care-of address ``::100`` there.
Every MR has its own home address ``2001:db8:f000::1:I`` (home prefix
``2001:db8:f000::/64``), MNP ``2001:db8:ff00:I::/64`` (from ``2001:db8:ff00::/40``) with
the gateway address ``::1`` on a LAN bridge (no hosts: ping it from the CN), SPI
``256+I``, GRE key ``1000+I`` and its own key; all register with the one HA, whose
configuration lists the N mobile routers. Each MR costs a namespace, a private OVS
(ovsdb-server + ovs-vswitchd) and a ``nemo-mr`` process; :func:`node_costs` measures them.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import yaml

from topologies.model import Topology, parse

MAX_MRS = 4000  # link prefixes 2001:db8:a:I::/64 and MNPs 2001:db8:ff00:I::/64 use I < 0x10000


def scale_tree(mrs: int = 10, uplinks: int = 1) -> Dict[str, Any]:
    """The topology tree (as a YAML file would give it) for ``mrs`` MRs."""
    if not isinstance(mrs, int) or not 1 <= mrs <= MAX_MRS:
        raise ValueError("mrs must be 1..%d (got %r)" % (MAX_MRS, mrs))
    if uplinks not in (1, 2):
        raise ValueError("uplinks must be 1 or 2 (got %r)" % (uplinks,))
    isps = ["isp1", "isp2"][:uplinks]
    nodes: Dict[str, Any] = {
        "cn": {"kind": "host"},
        "core": {"kind": "router"},
        "ha": {"kind": "ha", "bridge": "br-ha", "uplink": "ha-core",
               "address": "2001:db8:ffff::1/64", "home_prefixes": ["2001:db8:f000::/64"],
               "limits": {"expiry_interval": 0.2, "max_lifetime": 600}},
    }
    links: List[Dict[str, Any]] = [
        {"name": "cn-core", "ends": [
            {"node": "cn", "interface": "eth0", "addresses": ["2001:db8:100::10/64"]},
            {"node": "core", "interface": "cn0", "addresses": ["2001:db8:100::1/64"]}]},
        {"name": "ha-core", "ends": [
            {"node": "ha", "interface": "up0"},
            {"node": "core", "interface": "ha0", "addresses": ["2001:db8:ffff::fe/64"]}]},
    ]
    for j, isp in enumerate(isps):
        nodes[isp] = {"kind": "router"}
        links.append({"name": "%s-core" % isp, "ends": [
            {"node": isp, "interface": "core0", "addresses": ["2001:db8:1%s::2/64" % "ab"[j]]},
            {"node": "core", "interface": isp, "addresses": ["2001:db8:1%s::1/64" % "ab"[j]]}]})
    for i in range(1, mrs + 1):
        mr = "mr%d" % i
        key = hashlib.sha256(("nemo-fabric scale %s" % mr).encode()).hexdigest()[:40]
        nodes[mr] = {
            "kind": "mr", "home_agent": "ha", "home_address": "2001:db8:f000::1:%x" % i,
            "prefixes": ["2001:db8:ff00:%x::/64" % i], "spi": 256 + i, "key": key,
            "gre_key": 1000 + i, "lifetime": 60, "policy": "weighted", "ha_policy": "weighted",
            "lan": {"interface": "lan0", "address": "2001:db8:ff00:%x::1/64" % i, "mtu": 1400}}
        for j, isp in enumerate(isps):
            net = "2001:db8:%s:%x" % ("ab"[j], i)
            links.append({"name": "%s-%s" % (mr, isp),
                          "uplink": {"name": isp, "priority": 1, "weight": 1,
                                     "care_of": ["%s::100" % net]},
                          "ends": [{"node": mr, "interface": "up%d" % (j + 1)},
                                   {"node": isp, "interface": "mr%d" % i,
                                    "addresses": ["%s::1/64" % net]}]})
    return {"name": "scale", "description": "one HA, %d MRs with %d uplink(s) each"
            % (mrs, uplinks), "nodes": nodes, "links": links}


def scale_topology(mrs: int = 10, uplinks: int = 1) -> Topology:
    """The checked :class:`Topology` for ``mrs`` MRs (the model validates it like a file)."""
    return parse(scale_tree(mrs, uplinks), source="scale(mrs=%d,uplinks=%d)" % (mrs, uplinks))


# -- what it costs ---------------------------------------------------------------------------

def _proc_stats(pid: int) -> Optional[Dict[str, float]]:
    """RSS (KiB) and CPU time (s) of ``pid`` from /proc."""
    import os
    try:
        status = Path("/proc/%d/status" % pid).read_text()
        fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    rss = next((int(line.split()[1]) for line in status.splitlines()
                if line.startswith("VmRSS:")), 0)
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_kib": rss, "cpu_s": (int(fields[11]) + int(fields[12])) / ticks}


def node_costs(namespaces: Dict[str, str]) -> Dict[str, Dict[str, float]]:
    """Per node: processes, summed RSS (MiB) and CPU time (s) of everything in its namespace."""
    from topologies.netns import Namespace
    costs = {}
    for node, name in namespaces.items():
        stats = [s for s in (_proc_stats(p) for p in Namespace(name).pids()) if s]
        costs[node] = {"processes": len(stats),
                       "rss_mib": round(sum(s["rss_kib"] for s in stats) / 1024, 1),
                       "cpu_s": round(sum(s["cpu_s"] for s in stats), 2)}
    return costs


def main(argv: Optional[Iterable[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m topologies.scale",
                                     description="print the generated scale topology")
    parser.add_argument("--mrs", type=int, default=10)
    parser.add_argument("--uplinks", type=int, default=1, choices=(1, 2))
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    scale_topology(args.mrs, args.uplinks)  # check it
    print(yaml.safe_dump(scale_tree(args.mrs, args.uplinks), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
