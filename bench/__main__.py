"""``python -m bench [--only SECTION] [--quick]``: run benchmarks, rewrite docs/benchmarks.md."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path
from typing import Dict, List

from bench import codec, dataplane, failover, plots, scale, signalling

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
SECTIONS = {"codec": codec, "signalling": signalling, "scale": scale,
            "dataplane": dataplane, "failover": failover}


def machine() -> Dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def write_doc(results: List[Dict[str, object]]) -> None:
    try:  # a PNG per section next to the doc; failing costs the images, never the doc
        images = plots.plot_all(results, DOC.parent / "images")
    except Exception as exc:  # noqa: BLE001
        print(f"bench: plots not written: {type(exc).__name__}: {exc}", file=sys.stderr)
        images = {}
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`python -m bench`); do not edit by hand. Every figure",
        "is measured beside a baseline in the same run, as min/median/max over repeated",
        "samples, and reported as a ratio: these machines are shared and noisy, so",
        "absolute numbers vary from run to run, ratios much less. Raw numbers:",
        "`bench/results/*.json`.",
        "",
        "| section | measured | target | verdict | machine |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        info = result["machine"]
        lines.append(f"| {result['section']} | {result['ratio']:.1f}x | {result['target']} | "
                     f"{'met' if result['met'] else 'missed'} | {info['cores']} cores, "
                     f"Python {info['python']}, {info['date']} |")
    lines.append("")
    for result in results:
        lines.append(SECTIONS[result["section"]].markdown(result))
        if result["section"] in images:
            lines.append(f"![{result.get('title', result['section'])}]"
                         f"({images[result['section']]})\n")
        info = result["machine"]
        lines.append(f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, "
                     f"Python {info['python']}; run {info['date']}.\n")
    analysis = ROOT / "bench" / "analysis.md"  # hand-written: why targets are missed
    if analysis.exists():
        lines.append(analysis.read_text())
    DOC.write_text("\n".join(lines))


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append",
                        help="run only this section (repeatable); others keep their "
                             "last results")
    parser.add_argument("--quick", action="store_true",
                        help="fewer, shorter samples (a smoke run, not for the docs)")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in args.only or sorted(SECTIONS):
        print(f"bench: running {name} ...", flush=True)
        result = SECTIONS[name].run(quick=args.quick)
        result["machine"] = machine()
        if args.quick:
            print(json.dumps(result, indent=1, default=str))
            continue
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))
        print(f"bench: {name}: {result['ratio']:.1f}x (target {result['target']}, "
              f"{'met' if result['met'] else 'MISSED'})", flush=True)
    if args.quick:
        return 0
    stored = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))
              if p.stem in SECTIONS]
    write_doc(stored)
    print(f"bench: wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
