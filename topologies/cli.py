"""``nemo-lab``: bring a lab topology up, look at it, break it, tear it down.

    nemo-lab up fig1                 build topologies/fig1.yaml, start nemo-ha and nemo-mr
    nemo-lab up fig2                 two anycast HA sites, eBGP between FRR routers
    nemo-lab up scale --mrs 10       one HA and 10 MRs (generated: topologies/scale.py)
    nemo-lab status [--json]         nodes, daemons, the HA's and the MR's bindings
    nemo-lab exec lan1 ping -6 -c1 2001:db8:100::10
    nemo-lab fail mr-isp1            ip link set down on the MR side of the link
    nemo-lab heal mr-isp1
    nemo-lab vtysh isp1 show bgp summary     FRR's vtysh on a bgp node
    nemo-lab down                    tear everything down (also after a crash)
    nemo-lab demo --out DIR          the whole story in one command (demo.json, demo.png)

Needs root (namespaces, OVS). Runs live under $NEMO_FABRIC_LAB_DIR (default /tmp/nemo-lab)
or --base-dir; the last `up` is the current run, which the other commands act on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import List, Optional

from topologies.lab import BASE_DIR_ENV
from topologies.model import TopologyError
from topologies.procs import LabError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nemo-lab", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="Run `nemo-lab COMMAND --help` for the options of each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-dir", metavar="DIR",
                        help="where runs live (default $%s or /tmp/nemo-lab)" % BASE_DIR_ENV)
    parser.add_argument("--log-level", default="WARNING",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="log level of the lab library (default WARNING)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser("up", help="build a topology and start its daemons",
                        description="Build TOPOLOGY (a name such as fig1, or a YAML file) in "
                                    "network namespaces, start nemo-ha and nemo-mr, add the "
                                    "care-of addresses and wait until the HA has bound them.")
    up.add_argument("topology", metavar="TOPOLOGY", help="topology name (fig1) or YAML file")
    up.add_argument("--prefix", metavar="nfXXXX-",
                    help="run prefix for namespace and directory names (default: random)")
    up.add_argument("--no-wait", action="store_true",
                    help="return without waiting for the care-of addresses to be bound")
    up.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                    help="how long to wait for the bindings (default 30)")
    up.add_argument("--mrs", type=int, metavar="N",
                    help="scale only: number of mobile routers (default 10)")
    up.add_argument("--uplinks", type=int, choices=(1, 2), metavar="{1,2}",
                    help="scale only: uplinks per mobile router (default 1)")

    down = sub.add_parser("down", help="tear the current (or given) run down",
                          description="Stop nemo-mr (it de-registers), nemo-ha and the OVS "
                                      "instances, delete the namespaces and the run folder, and "
                                      "sweep leftovers of the run's prefix (also after a crash).")
    down.add_argument("--prefix", metavar="nfXXXX-", help="tear down this run instead of the "
                                                          "current one")

    status = sub.add_parser("status", help="show nodes, daemons and bindings",
                            description="Show the current run: nodes and namespaces, whether "
                                        "the daemons run, the HA's and the MR's bindings.")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument("--prefix", metavar="nfXXXX-", help="show this run instead of the "
                                                            "current one")

    ex = sub.add_parser("exec", help="run a command in a node's namespace",
                        description="Run CMD in NODE's network namespace; exits with its status.")
    ex.add_argument("node", metavar="NODE", help="node name from the topology (cn, lan1, mr...)")
    ex.add_argument("cmd", metavar="CMD", nargs=argparse.REMAINDER,
                    help="the command and its arguments")

    vt = sub.add_parser("vtysh", help="run an FRR vtysh command on a bgp node",
                        description="Run `vtysh -c 'CMD'` against the FRR daemons of NODE (a "
                                    "bgp node), e.g. `nemo-lab vtysh isp1 show bgp summary`.")
    vt.add_argument("node", metavar="NODE", help="a bgp node of the topology (isp1, site1...)")
    vt.add_argument("cmd", metavar="CMD", nargs=argparse.REMAINDER, help="the vtysh command")

    for name, what in (("fail", "down"), ("heal", "up")):
        p = sub.add_parser(name, help="set a link %s (MR side)" % what,
                           description="`ip link set %s` on the MR side of LINK (else its first "
                                       "end)." % what)
        p.add_argument("link", metavar="LINK", help="link name from the topology (mr-isp1)")

    demo = sub.add_parser("demo", help="registration, traffic per CoA, failover, recovery",
                          description="Bring fig1 up, print the bindings, run probe streams "
                                      "both ways while sampling per-CoA counters, fail and heal "
                                      "an uplink, print a summary, write demo.json and demo.png, "
                                      "tear down.")
    demo.add_argument("--out", default=".", metavar="DIR",
                      help="output folder for demo.json and demo.png (default: current dir)")
    demo.add_argument("--topology", default="fig1", metavar="TOPOLOGY",
                      help="topology name or file (default fig1)")
    demo.add_argument("--link", default="mr-isp1", metavar="LINK",
                      help="the link to fail and heal (default mr-isp1)")
    demo.add_argument("--rate", type=int, default=500, metavar="PPS",
                      help="packets per second of each probe stream (default 500)")
    demo.add_argument("--before", type=float, default=3.0, metavar="SECONDS",
                      help="traffic before the failure (default 3)")
    demo.add_argument("--during", type=float, default=3.0, metavar="SECONDS",
                      help="time the link stays down (default 3)")
    demo.add_argument("--after", type=float, default=3.0, metavar="SECONDS",
                      help="traffic after healing (default 3)")
    demo.add_argument("--interval", type=float, default=0.1, metavar="SECONDS",
                      help="counter sampling interval (default 0.1)")
    return parser


def _print_status(status: dict) -> None:
    print("lab %s (%s), phase %s, run folder %s" % (status["prefix"], status["topology"],
                                                    status["phase"], status["run_dir"]))
    if status.get("registration_s") is not None:
        print("all care-of addresses bound %.2f s after the MR agent started"
              % status["registration_s"])
    if status["failed_links"]:
        print("failed links: %s" % ", ".join(status["failed_links"]))
    print("nodes:")
    for node, info in status["nodes"].items():
        extra = []
        for key, p in status["processes"].items():
            if key == node or key.startswith(node + "."):
                extra.append("%spid %d %s" % (key[len(node) + 1:] + " " if key != node else "",
                                              p["pid"], "running" if p["alive"] else "NOT RUNNING"))
        if node in status["ovs"]:
            extra.append("OVS %s" % ("running" if status["ovs"][node] else "NOT RUNNING"))
        print("  %-6s %-7s %-16s %s%s" % (node, info["kind"], info["namespace"],
                                          "" if info["exists"] else "MISSING ",
                                          ", ".join(extra)))
    for node, peers in status.get("bgp", {}).items():
        print("  bgp %-6s %s" % (node, ", ".join("%s %s (AS %s, %s prefixes)" % (
            peer, p.get("state"), p.get("remote_as"), p.get("prefixes_received"))
            for peer, p in peers.items() if isinstance(p, dict))
            or peers.get("error", "no sessions")))
    from topologies.demo import format_bindings
    if len(status["mr"]) > 2:
        for ha, ha_status in status["ha"].items():
            print("%s: %d mobile routers bound, %d care-of addresses" % (
                ha, len(ha_status["bindings"]),
                sum(len(e["care_of"]) for e in ha_status["bindings"])))
        return
    mr_status = next(iter(status["mr"].values()), {"bindings": []})
    for i, (ha, ha_status) in enumerate(status["ha"].items()):
        text = format_bindings(ha_status, mr_status)
        if len(status["ha"]) > 1:  # each HA's bindings, the MR's once at the end
            head, tail = text.split("mobile router bindings:", 1)
            text = head.replace("home agent bindings:", "home agent %s bindings:" % ha).rstrip()
            if i == len(status["ha"]) - 1:
                text += "\nmobile router bindings:" + tail
        print(text)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(levelname)s %(name)s: %(message)s")
    from topologies.runner import Runner
    runner = Runner(args.base_dir)
    try:
        if args.command == "up":
            params = {k: v for k, v in (("mrs", args.mrs), ("uplinks", args.uplinks))
                      if v is not None}
            state = runner.up(args.topology, prefix=args.prefix, wait=not args.no_wait,
                              timeout=args.timeout, **params)
            print("lab %s up: topology %s, run folder %s" % (state["prefix"], state["topology"],
                                                           state["run_dir"]))
            if "bgp_converged_s" in state:
                print("BGP: %d routers, sessions established and routes converged in %.2f s"
                      % (len(state["bgp"]), state["bgp_converged_s"]))
            if "registration_s" in state:
                coas = state["care_of"]
                print("%d care-of addresses bound in %.2f s: %s"
                      % (len(coas), state["registration_s"], ", ".join(coas[:8])
                         + (", ..." if len(coas) > 8 else "")))
        elif args.command == "down":
            done = runner.down(args.prefix)
            print("\n".join(done) if done else "nothing to tear down")
        elif args.command == "status":
            status = runner.status(args.prefix)
            if args.json:
                print(json.dumps(status, indent=1))
            else:
                _print_status(status)
        elif args.command == "exec":
            if not args.cmd:
                print("nemo-lab exec: give a command after the node", file=sys.stderr)
                return 2
            return runner.exec(args.node, args.cmd, capture=False, timeout=None).returncode
        elif args.command == "vtysh":
            print(runner.vtysh(args.node, " ".join(args.cmd) or "show bgp summary"), end="")
        elif args.command in ("fail", "heal"):
            print(getattr(runner, args.command)(args.link))
        elif args.command == "demo":
            from topologies.demo import run_demo
            if os.geteuid() != 0:
                print("nemo-lab demo needs root (network namespaces, OVS)", file=sys.stderr)
                return 1
            run_demo(args.out, topology=args.topology, link=args.link, rate=args.rate,
                     before=args.before, during=args.during, after=args.after,
                     interval=args.interval, runner=runner)
    except (LabError, TopologyError, KeyError) as exc:
        print("nemo-lab %s: %s" % (args.command, exc.args[0] if isinstance(exc, KeyError)
                                   else exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
