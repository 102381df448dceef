"""Failover benchmark: the largest gap in probe streams when an uplink fails (fig1).

Streams: ``topologies.probe`` senders at 1 000 packets/s each way, CN -> lan1
("downstream") and lan1 -> CN ("upstream"), five flows each (one per CN address: OVS's
select groups hash UDP on the addresses, and these five addresses spread over all four
care-of addresses; the per-CoA counters of every baseline stream are recorded to show
that the failed uplink carried traffic). The receiver here records every arrival; the
gap of a flow is the largest time between two consecutive arrivals *or* from its last
arrival to the end of the stream (a flow that never comes back counts: the probe
module's own receiver would not see it). The figure per direction is the largest gap
over its flows.

* **link failure**: ``fail mr-isp1`` (``ip link set down`` at the MR) ``before`` s into
  the stream; after the stream the link is healed and the next repetition waits until
  the HA has bound all four CoAs again. Repeated ``repeats`` times.
* **baseline**: the same stream without any failure, in turn with every repetition (its
  largest gap is the noise floor of this machine and of the probe itself).
* **silent failure**: isp1 blackholes the path while every link stays up (in isp1's
  namespace: ``ip -6 route replace blackhole 2001:db8:ffff::/64``, the HA's prefix, and
  blackhole routes for isp1's two CoAs) ``before`` s into a stream of ``before +
  silent_window`` s; afterwards the routes are restored and the next repetition waits
  until the HA has bound all four CoAs again (the MR re-registers them over their own
  path). Repeated ``repeats`` times. The MR agent's per-CoA liveness probes
  (``mr_agent/liveness.py``) find isp1's CoAs dead, stop using them upstream and
  de-register them at the HA over isp2. A flow that has not resumed when the stream ends
  counts as "not detected" (gap > window).

Targets: largest gap <= 50 ms for a link failure, <= 300 ms for a silent failure.
``ratio`` is the link-failure gap over the baseline gap (worst direction, medians).
"""

from __future__ import annotations

import json
import re
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

TARGET_LINK_MS = 50.0
TARGET_SILENT_MS = 300.0
RATE = 1000
LINK = "mr-isp1"
LAN1 = "2001:db8:ff00:1::10"
ISP1_COAS = ("2001:db8:a::100", "2001:db8:a::101")
HA_PREFIX = "2001:db8:ffff::/64"
DIRECTIONS = ("downstream", "upstream")
_FORMAT = "!HId"  # topologies.probe: flow, sequence number, send time
_SIZE = struct.calcsize(_FORMAT)


# -- receiver (runs inside a lab namespace: python -m bench.failover recv PORT SECONDS) --------

def receive(port: int, seconds: float) -> Dict[str, Any]:
    """Every arrival per flow as [arrival time, send time], both time.time()."""
    from topologies.probe import collect

    return {"flows": {str(flow): [(arrived, sent) for arrived, _, sent in got]
                      for flow, got in collect(port, seconds).items()}}


def largest_gap(flows: Dict[str, List[Tuple[float, float]]], flow_count: int
                ) -> Dict[str, Any]:
    """The largest gap over the flows (ms), when it started, whether its flow came back."""
    if not flows:
        return {"gap_ms": None, "started": None, "resumed": False, "received": 0}
    stream_end = max(sent for got in flows.values() for _, sent in got)
    best = (0.0, None, True)
    for got in flows.values():
        times = [t for t, _ in got]
        for a, b in zip(times, times[1:]):
            if b - a > best[0]:
                best = (b - a, a, True)
        if stream_end - times[-1] > best[0]:
            best = (stream_end - times[-1], times[-1], False)
    return {"gap_ms": round(best[0] * 1000, 1), "started": best[1], "resumed": best[2],
            "received": sum(len(g) for g in flows.values()),
            "flows_seen": len(flows), "flows_sent": flow_count}


# -- streams -----------------------------------------------------------------------------------

_port = [7600]


def streams(runner, state, cn_addrs: List[str], seconds: float,
            during=None) -> Dict[str, Dict[str, Any]]:
    """Run both streams for ``seconds``; ``during(t0)`` is called right after the senders
    start (it may sleep and act); returns the largest gap per direction."""
    from topologies.runner import ROOT

    py = ["env", "PYTHONPATH=%s" % ROOT, sys.executable, "-m"]
    _port[0] += 2
    down_port, up_port = _port[0], _port[0] + 1
    plan = {
        "downstream": ("lan1", down_port, "cn",
                       [LAN1, str(down_port), str(RATE), str(seconds), ",".join(cn_addrs)]),
        "upstream": ("cn", up_port, "lan1",
                     [",".join(cn_addrs), str(up_port), str(RATE), str(seconds)]),
    }
    receivers, senders = {}, []
    try:
        for direction, (node, port, _, _) in plan.items():
            receivers[direction] = runner.popen(
                node, py + ["bench.failover", "recv", str(port), str(seconds + 1.5)],
                stdout=subprocess.PIPE)
        time.sleep(0.6)  # the receivers' interpreters start and bind
        for direction, (_, _, node, args) in plan.items():
            senders.append(runner.popen(node, py + ["topologies.probe", "send"] + args))
        t0 = time.time()
        extra = during(t0) if during else None
        for sender in senders:
            sender.wait(timeout=seconds + 30)
        out = {}
        for direction, proc in receivers.items():
            data = json.loads(proc.communicate(timeout=30)[0] or "{}")
            out[direction] = largest_gap(data.get("flows", {}), len(cn_addrs))
            if out[direction]["started"] is not None:
                out[direction]["at_s"] = round(out[direction]["started"] - t0, 3)
        out["event"] = extra
        return out
    finally:
        for proc in senders + list(receivers.values()):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


_DETECTED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) nemo\.mr WARNING "
                       r"care-of (\S+) \(bid \d+\) silent for (\d+) ms", re.M)


def detections(log: str, failed_at: float) -> List[Dict[str, Any]]:
    """The MR agent's "silent for" lines: when (after the failure) and what it said."""
    found = []
    for stamp, millis, coa, silent in _DETECTED.findall(log):
        when = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
        found.append({"care_of": coa, "after_ms": round((when - failed_at) * 1000, 1),
                      "silent_ms": int(silent)})
    return found


def stats(values: List[float]) -> Dict[str, Any]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "samples": values}


def run(quick: bool = False) -> Dict[str, Any]:
    from topologies.model import load
    from topologies.runner import Runner

    repeats = 3 if quick else 10
    before, after = (0.8, 1.2) if quick else (1.0, 1.5)
    silent_window = 1.5 if quick else 2.0
    topo = load("fig1")
    cn_addrs = [str(a.ip) for a in topo.links_of("cn")[0].end("cn").addresses
                if a.version == 6]
    runner = Runner()
    started = time.time()
    state = runner.up("fig1")
    baseline: List[Dict[str, Any]] = []
    link: List[Dict[str, Any]] = []
    silent: Dict[str, Any] = {}
    coa_packets: List[Dict[str, Any]] = []
    try:
        for _ in range(repeats):
            before_counts = runner.counters(state)
            baseline.append(streams(runner, state, cn_addrs, before + after))
            time.sleep(0.25)  # OVS pushes flow statistics every 100 ms here
            after_counts = runner.counters(state)
            coa_packets.append({d: {c: after_counts[d].get(c, 0) - before_counts[d].get(c, 0)
                                    for c in state["care_of"]} for d in DIRECTIONS})

            def fail(t0: float) -> Dict[str, Any]:
                time.sleep(max(0.0, t0 + before - time.time()))
                at = time.time()
                runner.fail(LINK)
                return {"fail_at_s": round(at - t0, 3)}

            link.append(streams(runner, state, cn_addrs, before + after, fail))
            runner.heal(LINK)
            link[-1]["rebound_s"] = round(runner.wait_bound(state, timeout=30), 3)
            time.sleep(0.3)

        isp1 = runner.namespace("isp1", state)
        original = isp1.run("ip", "-6", "route", "show", "exact", HA_PREFIX).stdout.split()

        def blackhole(t0: float) -> Dict[str, Any]:
            time.sleep(max(0.0, t0 + before - time.time()))
            at = time.time()
            isp1.run("ip", "-6", "route", "replace", "blackhole", HA_PREFIX)
            for coa in ISP1_COAS:
                isp1.run("ip", "-6", "route", "add", "blackhole", coa + "/128")
            time.sleep(max(0.0, at + silent_window * 0.8 - time.time()))
            return {"fail_at_s": round(at - t0, 3), "at": at,
                    "bound_during": runner.ha_care_of(state),
                    "mr_usable_during": runner.mr_usable(state)}

        def restore() -> None:
            if original:
                isp1.run("ip", "-6", "route", "replace", *original, check=False)
            else:
                isp1.run("ip", "-6", "route", "del", "blackhole", HA_PREFIX, check=False)
            for coa in ISP1_COAS:
                isp1.run("ip", "-6", "route", "del", "blackhole", coa + "/128", check=False)

        silent_runs: List[Dict[str, Any]] = []
        mr_log = Path(state["run_dir"]) / "mr.log"
        for _ in range(repeats):
            seen = len(mr_log.read_text()) if mr_log.exists() else 0
            try:
                silent_runs.append(streams(runner, state, cn_addrs, before + silent_window,
                                           blackhole))
            finally:
                restore()
            event = silent_runs[-1].get("event") or {}
            if mr_log.exists() and "at" in event:
                silent_runs[-1]["detections"] = detections(mr_log.read_text()[seen:],
                                                           event["at"])
            silent_runs[-1]["rebound_s"] = round(runner.wait_bound(state, timeout=60), 3)
            time.sleep(0.3)
        silent = {"runs": silent_runs, "window_s": silent_window}
    finally:
        runner.down(state["prefix"])
    return summarise(baseline, link, silent, coa_packets, repeats, before, after,
                     silent_window, quick, time.time() - started)


def summarise(baseline, link, silent, coa_packets, repeats, before, after, silent_window,
              quick, elapsed) -> Dict[str, Any]:
    figures: Dict[str, Any] = {}
    for direction in DIRECTIONS:
        base = stats([r[direction]["gap_ms"] for r in baseline])
        fail = stats([r[direction]["gap_ms"] for r in link])
        figures[direction] = {
            "baseline_gap_ms": base, "link_failure_gap_ms": fail,
            "ratio": fail["median"] / base["median"],
            "met": fail["median"] <= TARGET_LINK_MS,
            "max_within_target": fail["max"] <= TARGET_LINK_MS,
            "not_resumed": sum(1 for r in link if not r[direction]["resumed"]),
        }
        window_ms = silent_window * 1000
        runs = [r[direction] for r in silent["runs"]]
        detected = [r for r in runs if r["resumed"] and r["gap_ms"] is not None
                    and r["gap_ms"] < window_ms * 0.9]
        gaps = stats([r["gap_ms"] for r in detected]) if detected else None
        missed = len(runs) - len(detected)
        if gaps is None:
            text = "> %.1f s (not detected)" % silent_window
        else:
            text = "%.1f / %.1f / %.1f ms" % (gaps["min"], gaps["median"], gaps["max"])
            if missed:
                text += " (%d of %d not detected)" % (missed, len(runs))
        figures[direction]["silent"] = {
            "gap_ms": gaps, "window_s": silent_window, "repeats": len(runs),
            "not_detected": missed, "text": text,
            "ratio": gaps["median"] / base["median"] if gaps else None,
            "met": bool(gaps and not missed and gaps["median"] <= TARGET_SILENT_MS),
            "max_within_target": bool(gaps and gaps["max"] <= TARGET_SILENT_MS),
        }
    found = [d["after_ms"] for r in silent["runs"] for d in r.get("detections", [])]
    figures["silent_detection_ms"] = stats(found) if found else None
    worst = max(DIRECTIONS, key=lambda d: figures[d]["ratio"])  # link failure
    link_met = all(figures[d]["met"] for d in DIRECTIONS)
    silent_met = all(figures[d]["silent"]["met"] for d in DIRECTIONS)
    return {
        "section": "failover",
        "title": "Failover: largest probe gap when an uplink fails (fig1)",
        "rate_pps": RATE, "flows_per_stream": 5, "repeats": repeats,
        "stream_s": before + after, "fail_after_s": before, "quick": quick,
        "figures": figures, "worst": worst,
        "ratio": figures[worst]["ratio"],
        "link_met": link_met, "silent_met": silent_met,
        "target": "gap <= %g ms on link down; <= %g ms on a silent failure"
                  % (TARGET_LINK_MS, TARGET_SILENT_MS),
        "met": link_met and silent_met,
        "coa_packets_baseline": coa_packets,
        "runs": {"baseline": baseline, "link": link, "silent": silent},
        "elapsed_s": round(elapsed, 1),
    }


def markdown(result: Dict[str, Any]) -> str:
    f = result["figures"]
    lines = [
        "## %s" % result["title"],
        "",
        "Probe streams of %d packets/s each way (CN -> lan1 downstream, lan1 -> CN upstream, "
        "%d flows each, spread over the four care-of addresses), %g s long. **Link "
        "failure**: `fail %s` (link down at the MR) %g s in, healed afterwards and "
        "re-registered before the next of %d repetitions. **Baseline**: the same stream "
        "without a failure, alternating with them (its largest gap is the noise floor). "
        "**Silent failure**: isp1 blackholes the HA's prefix and its CoAs while every link "
        "stays up, for %g s. Gap: the longest silence of any flow, including a flow that "
        "never resumes until the end of the stream."
        % (result["rate_pps"], result["flows_per_stream"], result["stream_s"], LINK,
           result["fail_after_s"], result["repeats"], f["downstream"]["silent"]["window_s"]),
        "",
        "| case | direction | largest gap min / median / max | baseline (no failure) min / "
        "median / max | ratio (median) | target | verdict |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for d in DIRECTIONS:
        x, b = f[d]["link_failure_gap_ms"], f[d]["baseline_gap_ms"]
        verdict = "met" if f[d]["met"] else "**missed**"
        if f[d]["met"] and not f[d]["max_within_target"]:
            verdict += " (max over)"
        lines.append("| link down | %s | %.1f / %.1f / %.1f ms | %.1f / %.1f / %.1f ms | %.1fx | "
                     "<= %g ms | %s |" % (d, x["min"], x["median"], x["max"], b["min"],
                                          b["median"], b["max"], f[d]["ratio"], TARGET_LINK_MS,
                                          verdict))
    for d in DIRECTIONS:
        s, b = f[d]["silent"], f[d]["baseline_gap_ms"]
        verdict = "met" if s["met"] else "**missed**"
        if s["met"] and not s["max_within_target"]:
            verdict += " (max over)"
        lines.append("| silent (blackhole at isp1) | %s | %s | %.1f / %.1f / %.1f ms | %s | "
                     "<= %g ms | %s |" % (d, s["text"], b["min"], b["median"], b["max"],
                                          "%.1fx" % s["ratio"] if s["ratio"] else "-",
                                          TARGET_SILENT_MS, verdict))
    runs = result["runs"]["silent"].get("runs", [])
    during = runs[-1]["event"] if runs and runs[-1].get("event") else {}
    rebound = [r["rebound_s"] for r in runs if "rebound_s" in r]
    lines += [
        "",
        "Link failure: %s. Silent failure (%d repetitions): %s. Detection: the MR agent probes "
        "every acknowledged care-of address through its own tunnel every 50 ms and the HA's "
        "switch reflects the probe back through the same CoA (an OpenFlow flow, no "
        "controller); 3 unanswered probes in a row make the CoA dead: the MR drops it from "
        "its outbound group and de-registers it at the HA over a care-of address of the "
        "other uplink. The gap is detection plus the reaction (the HA's group change "
        "downstream, the MR's ovs-ofctl group rewrite upstream). %s" % (
            "met" if result["link_met"] else "**missed**", len(runs),
            "met" if result["silent_met"] else "**missed**", detection_text(result)),
        "",
        "While isp1 was silent (last repetition, %.1f s in) the HA had %s bound and the MR "
        "used %s. After the routes were restored the MR re-registered isp1's CoAs over "
        "their own path (attempts 1 s after detection, then 1.25, 2.25, 4.25 ... s apart): "
        "all four bound again %s s after the stream ended (min / median / max)." % (
            silent_in(result), ", ".join(during.get("bound_during", [])) or "none",
            ", ".join(during.get("mr_usable_during", [])) or "none",
            "%.1f / %.1f / %.1f" % (min(rebound), statistics.median(rebound), max(rebound))
            if rebound else "-"),
        "",
    ]
    return "\n".join(lines)


def detection_text(result: Dict[str, Any]) -> str:
    found = result["figures"].get("silent_detection_ms")
    if not found:
        return ""
    return ("The MR agent logged isp1's CoAs dead %.0f / %.0f / %.0f ms (min / median / max "
            "over %d CoA detections) after the blackhole routes went in."
            % (found["min"], found["median"], found["max"], len(found["samples"])))


def silent_in(result: Dict[str, Any]) -> float:
    return result["figures"]["downstream"]["silent"]["window_s"] * 0.8


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 3 and args[0] == "recv":
        print(json.dumps(receive(int(args[1]), float(args[2]))))
        return 0
    print("usage: python -m bench.failover recv PORT SECONDS", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
