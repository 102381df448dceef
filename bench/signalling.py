"""Signalling benchmark: BU -> BA rate and latency at the real home agent, OVS in the path.

Lab (``bench/halab.py``): one private ovs-vswitchd with two bridges, br-ha driven by
the real ``nemo-ha`` (launcher, INFO logging, state and status files) and br-echo driven
by ``bench/echo_app.py`` (the baseline: an os-ken app answering each packet-in with a
packet-out of the same frame to its in_port, started the same way). A load generator
(``bench/bugen.py``) in a peer namespace injects pre-built signed BU frames (one Binding
Identifier with a CoA, RFC 4285 authenticator, fresh and strictly increasing timestamps
and sequence numbers per MR) over AF_PACKET on the uplink veth of either bridge and
captures the replies on the same veth, matching BU -> BA by (home address, sequence).

For N = 1, 1,000 and 10,000 registered MRs (each registered first; the targets are
judged at 1,000), the BUs are refreshes, taken round robin over the MRs:

* max rate: closed loop with a window of 32 BUs outstanding (a new BU per reply);
  samples alternate echo / home agent, median of the samples;
* latency: open loop at half the home agent's median max rate, BUs evenly spaced, the
  same offered rate to the echo app; p50 / p99 per sample, median over samples. Each
  BU -> reply time runs from the clock read just before the BU is sent to the kernel's
  receive timestamp of the reply, so the generator's own wait for a core is left out
  (``bench/bugen.py``).
"""

from __future__ import annotations

import statistics
from typing import Any, Dict, List

from bench.halab import GEN_WINDOW, BenchLab, make_mrs
from topologies.lab import Lab

TARGET_RATIO = 0.5
TARGET_P99_MS = 10.0
MAIN_MRS = 1000


def _median(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(mr_count: int, quick: bool) -> Dict[str, Any]:
    repeats, open_repeats = (2, 1) if quick else (5, 5)
    sample_s, open_s = (0.5, 0.7) if quick else (1.5, 3.0)
    with Lab() as lab:
        bench = BenchLab(lab, make_mrs(mr_count, 1), echo=True)
        bench.start_echo()
        bench.start_ha()
        bench.start_generator()
        for target in ("ha", "echo"):  # the decoder's offsets, checked with mip6
            check = bench.gen("check", target)
            assert check["ok"] and check["decoded_sequence"] == check["sequence"], check
        register = bench.gen("closed", "ha", count=mr_count, window=GEN_WINDOW)
        assert register["statuses"] == {"0": mr_count}, register
        estimate = {"ha": bench.gen("closed", "ha", count=max(200, mr_count),
                                    window=GEN_WINDOW)["rate"],
                    "echo": bench.gen("closed", "echo", count=2000, window=GEN_WINDOW)["rate"]}
        closed: Dict[str, List[Dict[str, Any]]] = {"echo": [], "ha": []}
        for _ in range(repeats):
            for target in ("echo", "ha"):
                count = max(300, int(estimate[target] * sample_s))
                sample = bench.gen("closed", target, count=count, window=GEN_WINDOW)
                closed[target].append(sample)
        ha_max = _median([s["rate"] for s in closed["ha"]])
        echo_max = _median([s["rate"] for s in closed["echo"]])
        half = ha_max / 2
        opened: Dict[str, List[Dict[str, Any]]] = {"echo": [], "ha": []}
        for _ in range(open_repeats):
            for target in ("echo", "ha"):
                opened[target].append(bench.gen("open", target, rate=half,
                                                count=max(100, int(half * open_s))))
        rss = {"ha": _rss(bench.ha_proc.pid), "echo": _rss(bench.echo_proc.pid)}
        statuses: Dict[str, int] = {}
        for sample in closed["ha"] + opened["ha"]:
            for status, n in sample["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
    return {
        "mrs": mr_count,
        "registration": {"rate": register["rate"], "seconds": register["seconds"]},
        "max_rate": {"ha": ha_max, "echo": echo_max, "ratio": ha_max / echo_max,
                     "ha_samples": [s["rate"] for s in closed["ha"]],
                     "echo_samples": [s["rate"] for s in closed["echo"]],
                     "ha_p99_ms_at_max": _median([s["p99_ms"] for s in closed["ha"]]),
                     "echo_p99_ms_at_max": _median([s["p99_ms"] for s in closed["echo"]])},
        "half_load": {
            "offered_rate": half,
            "ha_p50_ms": _median([s["p50_ms"] for s in opened["ha"]]),
            "ha_p99_ms": _median([s["p99_ms"] for s in opened["ha"]]),
            "echo_p50_ms": _median([s["p50_ms"] for s in opened["echo"]]),
            "echo_p99_ms": _median([s["p99_ms"] for s in opened["echo"]]),
            "ha_p99_samples": [s["p99_ms"] for s in opened["ha"]],
            "echo_p99_samples": [s["p99_ms"] for s in opened["echo"]],
            "ha_lost": sum(s["lost"] for s in opened["ha"]),
            "echo_lost": sum(s["lost"] for s in opened["echo"]),
            "replies": sum(s["replies"] for s in opened["ha"] + opened["echo"]),
            "kernel_timed": sum(s.get("kernel_timed", 0) for s in opened["ha"] + opened["echo"]),
        },
        "lost": {"ha": sum(s["lost"] for s in closed["ha"]),
                 "echo": sum(s["lost"] for s in closed["echo"])},
        "ha_ba_statuses": statuses,
        "rss_mb": rss,
    }


def _rss(pid: int) -> float:
    from bench.halab import rss_mb

    return rss_mb(pid)


def run(quick: bool = False) -> Dict[str, Any]:
    counts = [1, 20] if quick else [1, MAIN_MRS, 10000]
    cases = [measure(n, quick) for n in counts]
    # The targets are set at 1,000 MRs; 1 and 10,000 show how the figures move with N.
    main = next((c for c in cases if c["mrs"] == MAIN_MRS), cases[-1])
    ratio = main["max_rate"]["ratio"]
    p99 = main["half_load"]["ha_p99_ms"]
    return {
        "section": "signalling",
        "title": "Signalling: BU -> BA through OVS, home agent against an echo app",
        "window": GEN_WINDOW,
        "quick": quick,
        "cases": cases,
        "ratio": ratio,
        "p99_ms_half_load": p99,
        "target": f">= {TARGET_RATIO:g}x echo rate; p99 <= {TARGET_P99_MS:g} ms at half "
                  f"load ({main['mrs']:,} MRs)",
        "met_rate": ratio >= TARGET_RATIO,
        "met_latency": p99 <= TARGET_P99_MS,
        "met": ratio >= TARGET_RATIO and p99 <= TARGET_P99_MS,
    }


def markdown(result: Dict[str, Any]) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines = [
        f"## {result['title']}",
        "",
        __doc__.split("\n\n", 1)[1].strip(),
        "",
        "| MRs | measured | baseline (echo) | ratio | target | verdict |",
        "|---:|---|---|---:|---|---|",
    ]
    main_mrs = MAIN_MRS if any(c["mrs"] == MAIN_MRS for c in result["cases"]) \
        else result["cases"][-1]["mrs"]
    for case in result["cases"]:
        rate, half = case["max_rate"], case["half_load"]
        main = case["mrs"] == main_mrs
        lines.append(
            f"| {case['mrs']:,} | max {rate['ha']:,.0f} BU/s | {rate['echo']:,.0f} frames/s | "
            f"{rate['ratio']:.3f} | >= {TARGET_RATIO:g} | "
            f"{verdict(rate['ratio'] >= TARGET_RATIO) if main else '-'} |")
        lines.append(
            f"| {case['mrs']:,} | p99 {half['ha_p99_ms']:.1f} ms (p50 {half['ha_p50_ms']:.1f}) "
            f"at {half['offered_rate']:,.0f}/s | p99 {half['echo_p99_ms']:.2f} ms (p50 "
            f"{half['echo_p50_ms']:.2f}) | {half['ha_p99_ms'] / half['echo_p99_ms']:.1f} | "
            f"<= {TARGET_P99_MS:g} ms | "
            f"{verdict(half['ha_p99_ms'] <= TARGET_P99_MS) if main else '-'} |")
    lines += ["", "Samples (BU/s, closed loop): " + "; ".join(
        f"{c['mrs']:,} MRs: HA {', '.join(f'{x:,.0f}' for x in c['max_rate']['ha_samples'])}"
        f" / echo {', '.join(f'{x:,.0f}' for x in c['max_rate']['echo_samples'])}"
        for c in result["cases"]) + ". Registration of the MRs before the runs: " + "; ".join(
        f"{c['mrs']:,} in {c['registration']['seconds']:.2f} s" for c in result["cases"])
        + ". Lost replies: " + ", ".join(
        f"{c['mrs']:,} MRs HA {c['lost']['ha'] + c['half_load']['ha_lost']} / echo "
        f"{c['lost']['echo'] + c['half_load']['echo_lost']}" for c in result["cases"]) + ". "
        "Half-load p99 samples (ms): " + "; ".join(
        f"{c['mrs']:,} MRs: HA {', '.join(f'{x:.1f}' for x in c['half_load']['ha_p99_samples'])}"
        f" / echo {', '.join(f'{x:.1f}' for x in c['half_load']['echo_p99_samples'])}"
        for c in result["cases"]) + ". Latencies timed by kernel timestamps: " + ", ".join(
        f"{c['half_load'].get('kernel_timed', 0):,} of {c['half_load'].get('replies', 0):,}"
        for c in result["cases"]) + " replies.", ""]
    if result.get("analysis"):
        lines += [result["analysis"], ""]
    return "\n".join(lines)
