"""``nemo-lab demo``: RFC 4908 figure 1 live - registration, traffic per CoA, failover, recovery.

Steps: bring ``fig1`` up and wait until the HA has bound the four care-of addresses;
print the HA's and the MR's bindings; start UDP probe streams CN -> each LAN host and
each LAN host -> CN; sample the per-CoA packet counters every ``interval`` seconds
(downstream: the MR's decapsulation flows in br-mr, ``tun_ipv6_dst=<CoA>``; upstream: the
HA's accepting upstream flows in table 2, ``tun_ipv6_src=<CoA>``); fail the isp1 uplink
after ``before`` seconds, heal it ``during`` seconds later, run ``after`` seconds more;
print a summary and write ``demo.json`` and ``demo.png`` into the output folder. The lab
is always torn down, also on failure or Ctrl-C.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from topologies.model import Topology, load
from topologies.runner import ROOT, Runner

DOWN, UP = "downstream", "upstream"


def run_demo(out_dir: Union[str, Path] = ".", *, topology: Union[str, Topology] = "fig1",
             link: str = "mr-isp1", rate: int = 500, before: float = 3.0, during: float = 3.0,
             after: float = 3.0, interval: float = 0.1, runner: Optional[Runner] = None,
             echo=print) -> Dict[str, Any]:
    """Run the demo (see the module docstring); returns the figures written to demo.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runner = runner or Runner()
    topo = topology if isinstance(topology, Topology) else load(topology)
    mr = topo.nodes_of("mr")[0]
    failed_uplink = topo.link(link).uplink
    hosts = topo.lan_hosts(mr)
    cn = next(n for n in topo.nodes_of("host") if n not in hosts)
    cn_addrs = [str(a.ip) for a in topo.links_of(cn)[0].end(cn).addresses if a.version == 6]
    started = time.time()
    state = None
    try:
        echo("bringing up %s ..." % topo.name)
        state = runner.up(topo)
        echo("lab %s up in %.1f s; all %d care-of addresses bound %.2f s after the MR agent "
             "started" % (state["prefix"], time.time() - started, len(state["care_of"]),
                          state["registration_s"]))
        echo(format_bindings(runner.ha_status(state), runner.mr_status(state)))
        total = before + during + after
        figures = _traffic(runner, state, topo, cn, cn_addrs, hosts, link, rate, before, during,
                           after, interval, echo)
        figures.update({
            "topology": topo.name, "prefix": state["prefix"], "failed_link": link,
            "failed_uplink": failed_uplink.name if failed_uplink else None,
            "care_of_registered": state["care_of"],
            "registration_s": state["registration_s"],
            "rate_per_stream": rate, "interval_s": interval, "phases_s": {"before": before, "during": during,
                                                  "after": after, "total": total},
        })
        (out / "demo.json").write_text(json.dumps(figures, indent=1))
        plot(figures, out / "demo.png")
        echo(format_summary(figures))
        echo("wrote %s and %s" % (out / "demo.json", out / "demo.png"))
        return figures
    finally:
        if state is not None:
            runner.down(state["prefix"])
            echo("lab %s torn down (%.1f s in all)" % (state["prefix"], time.time() - started))


def _traffic(runner: Runner, state: Dict[str, Any], topo: Topology, cn: str, cn_addrs: List[str],
             hosts: List[str], link: str, rate: int, before: float, during: float, after: float,
             interval: float, echo) -> Dict[str, Any]:
    total = before + during + after
    env = ["env", "PYTHONPATH=%s" % ROOT, sys.executable, "-m", "topologies.probe"]
    # (direction, name, receiver node, port, sender node, sender arguments): one stream per
    # LAN host and direction, one flow per CN address in each (UDP hashes on addresses).
    streams = []
    for i, host in enumerate(hosts):
        streams.append((DOWN, "%s->%s" % (cn, host), host, 7200 + i, cn,
                        [str(topo.address_of(host)), str(7200 + i), str(rate), str(total),
                         ",".join(cn_addrs)]))
        streams.append((UP, "%s->%s" % (host, cn), cn, 7100 + i, host,
                        [",".join(cn_addrs), str(7100 + i), str(rate), str(total)]))
    receivers, senders = [], []
    try:
        for direction, name, node, port, _, _ in streams:
            receivers.append(runner.popen(node, env + ["recv", str(port), str(total + 1.5)],
                                          stdout=subprocess.PIPE))
        time.sleep(0.4)
        for direction, name, _, port, node, sender_args in streams:
            senders.append(runner.popen(node, env + ["send"] + sender_args,
                                        stdout=subprocess.DEVNULL))
        echo("traffic: %d streams at %d packets/s, %d flows each (%s); failing %s after "
             "%.1f s, healing it %.1f s later" % (len(streams), rate, len(cn_addrs),
                                                  ", ".join(s[1] for s in streams), link,
                                                  before, during))
        samples, events = [], {}
        t0 = time.monotonic()
        wall0 = time.time()
        want_all = sorted(state["care_of"])
        while True:
            now = time.monotonic() - t0
            if now >= total + 0.3:
                break
            if "fail" not in events and now >= before:
                runner.fail(link)
                events["fail"] = time.monotonic() - t0
                echo("t=%.2f s: %s failed (ip link set down)" % (events["fail"], link))
            if "heal" not in events and now >= before + during:
                runner.heal(link)
                events["heal"] = time.monotonic() - t0
                echo("t=%.2f s: %s healed (ip link set up)" % (events["heal"], link))
            counters = runner.counters(state)
            bound = runner.ha_care_of(state)
            t = time.monotonic() - t0
            samples.append({"t": round(t, 3), "counters": counters, "bound": bound})
            if "fail" in events and "deregistered" not in events and bound != want_all:
                events["deregistered"] = t
            if "heal" in events and "reregistered" not in events and bound == want_all:
                events["reregistered"] = t
            time.sleep(max(0.0, interval - (time.monotonic() - t0 - t)))
        for sender in senders:
            sender.wait(timeout=30)
        results = []
        for (direction, name, node, port, _, _), proc in zip(streams, receivers):
            data = json.loads(proc.communicate(timeout=30)[0] or "{}")
            data.update(direction=direction, stream=name, expected=int(rate * total))
            if data.get("gap_started"):
                data["gap_at_s"] = round(data["gap_started"] - wall0, 3)
            results.append(data)
    finally:
        for proc in senders + receivers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return _figures(samples, events, results, state)


def _figures(samples: List[Dict[str, Any]], events: Dict[str, float],
             results: List[Dict[str, Any]], state: Dict[str, Any]) -> Dict[str, Any]:
    coas = list(state["care_of"])
    series: Dict[str, Dict[str, List[float]]] = {DOWN: {c: [] for c in coas},
                                                 UP: {c: [] for c in coas}}
    totals = {c: {DOWN: 0, UP: 0} for c in coas}
    times = []
    for prev, cur in zip(samples, samples[1:]):
        dt = cur["t"] - prev["t"]
        times.append(cur["t"])
        for direction in (DOWN, UP):
            for coa in coas:
                old = prev["counters"][direction].get(coa, 0)
                new = cur["counters"][direction].get(coa, 0)
                delta = new - old if new >= old else new  # flows re-created: counter reset
                totals[coa][direction] += delta
                series[direction][coa].append(round(delta / dt, 1) if dt > 0 else 0.0)
    gaps = {}
    for direction in (DOWN, UP):
        mine = [r for r in results if r["direction"] == direction]
        worst = max(mine, key=lambda r: r.get("max_gap_ms", 0), default={})
        gaps[direction] = {"max_gap_ms": worst.get("max_gap_ms"), "stream": worst.get("stream"),
                           "at_s": worst.get("gap_at_s")}
    timeline = {k: round(v, 3) for k, v in events.items()}
    if "fail" in events and "deregistered" in events:
        timeline["deregistration_s"] = round(events["deregistered"] - events["fail"], 3)
    if "heal" in events and "reregistered" in events:
        timeline["reregistration_s"] = round(events["reregistered"] - events["heal"], 3)
    return {"packets_per_coa": totals, "largest_gap": gaps, "streams": results,
            "events": timeline, "series": {"t": times, **series},
            "samples": len(samples)}


# -- output -------------------------------------------------------------------------------------

def format_bindings(ha_status: Dict[str, Any], mr_status: Dict[str, Any]) -> str:
    lines = ["home agent bindings:"]
    for entry in ha_status.get("bindings", []):
        lines.append("  %s home %s prefixes %s" % (entry["router"], entry["home_address"],
                                                     ", ".join(entry["prefixes"])))
        for b in entry["care_of"]:
            lines.append("    BID %-2s %-18s priority %-3s %5.1f s left"
                         % (b["bid"], b["care_of"], b["priority"], b["remaining"]))
    lines.append("mobile router bindings:")
    for b in mr_status.get("bindings", []):
        lines.append("    BID %-2s %-18s %-5s %-12s usable=%s"
                     % (b["bid"], b["care_of"], b["uplink"], b["state"], b["usable"]))
    return "\n".join(lines)


def format_summary(f: Dict[str, Any]) -> str:
    lines = ["", "==== demo summary (%s, lab %s) ====" % (f["topology"], f["prefix"]),
             "care-of addresses registered: %s (all bound %.2f s after the MR agent started)"
             % (", ".join(f["care_of_registered"]), f["registration_s"]),
             "packets per care-of address (from the OVS flow counters):",
             "  %-18s %12s %12s" % ("CoA", "downstream", "upstream")]
    for coa, counts in f["packets_per_coa"].items():
        lines.append("  %-18s %12d %12d" % (coa, counts[DOWN], counts[UP]))
    lines.append("largest gap per direction (probe streams, %d packets/s each):"
                 % f["rate_per_stream"])
    for direction in (DOWN, UP):
        g = f["largest_gap"][direction]
        lines.append("  %-10s %8s ms  (%s, at t=%s s)" % (direction, g["max_gap_ms"],
                                                         g["stream"], g["at_s"]))
    for s in f["streams"]:
        lines.append("  stream %-10s received %5d of %5d (%d flows), largest gap %s ms"
                     % (s["stream"], s.get("received", 0), s["expected"],
                        len(s.get("flows", {})), s.get("max_gap_ms")))
    e = f["events"]
    lines.append("events: %s failed at t=%s s, HA dropped its CoAs %s s later; healed at t=%s s, "
                 "all CoAs bound again %s s later"
                 % (f["failed_link"], e.get("fail"), e.get("deregistration_s"), e.get("heal"),
                    e.get("reregistration_s")))
    return "\n".join(lines)


def plot(f: Dict[str, Any], path: Union[str, Path]) -> None:
    """Packets per second per CoA over time (downstream and upstream), events marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = f["series"]
    fig, axes = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for ax, direction, title in ((axes[0], DOWN, "downstream (CN -> LAN): MR decapsulation "
                                  "flows per CoA"),
                                 (axes[1], UP, "upstream (LAN -> CN): HA table 2 flows per CoA")):
        styles = ["-", "--", "-.", ":"]
        for i, (coa, values) in enumerate(series[direction].items()):
            # OVS pushes flow statistics in batches: a 3-sample moving average evens that out.
            smooth = [sum(values[max(0, j - 2):j + 1]) / len(values[max(0, j - 2):j + 1])
                      for j in range(len(values))]
            ax.plot(series["t"], smooth, label=coa, linewidth=1.6, linestyle=styles[i % 4])
        for key, colour, label in (("fail", "red", "%s down" % f["failed_link"]),
                                   ("heal", "green", "%s up" % f["failed_link"])):
            if key in f["events"]:
                ax.axvline(f["events"][key], color=colour, linestyle="--", label=label)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("packets/s")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[1].set_xlabel("time since traffic start (s)")
    fig.suptitle("nemo-lab demo: %s, %d packets/s per stream; packets/s per CoA "
                 "(%.0f ms moving average)" % (f["topology"], f["rate_per_stream"],
                                               3000 * f.get("interval_s", 0.1)))
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    run_demo(sys.argv[1] if len(sys.argv) > 1 else os.getcwd())
