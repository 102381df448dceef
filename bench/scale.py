"""Scale benchmark: many MRs x 4 CoAs registered at the real home agent, then a restart.

Lab (``bench/halab.py``, without the echo bridge): the real ``nemo-ha`` with a state
file on a private OVS, N configured MRs, and the load generator (``bench/bugen.py``)
sending one bulk BU per MR (four Binding Identifier options, each with its own CoA)
as pre-built signed frames, closed loop with 64 BUs outstanding, until every MR has its
BA. Then: controller RSS (VmRSS), flows (``dump-aggregate``) and groups
(``dump-groups``) on OVS; SIGTERM (the state file is written) and a restart: the
reconcile messages sent ("reconcile: N changes", must be 0) and the time from the switch
connecting to "home agent ready".

Baselines, same run, same ovs-vswitchd: the time ``ovs-ofctl`` takes to install the
identical groups and flows (dumped from br-ha, meters left out) into an empty bridge -
the switch's own floor for this state - and the RSS of the same home agent before any
binding (configuration loaded, pipeline installed).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

from bench.halab import BenchLab, make_mrs, rss_mb
from topologies.lab import Lab

TARGET_SECONDS_PER_40K = 60.0
TARGET_RSS_MB = 300.0
WINDOW = 64
RESTART_TIMEOUT = 90.0  # a restart that is not ready by then is reported, not awaited
PROFILE_ENV = "NEMO_BENCH_PROFILE"  # set to a directory: py-spy profile of registration


def _raw_install(bench: BenchLab) -> Dict[str, Any]:
    """Install br-ha's groups and flows with ovs-ofctl into an empty bridge; timed."""
    ovs = bench.ovs
    flows = [line.strip() for line in ovs.ofctl("dump-flows", "br-ha", "--no-stats",
                                                timeout=300).splitlines()
             if "actions=" in line and "meter:" not in line]
    groups = [line.strip() for line in ovs.ofctl("dump-groups", "br-ha",
                                                  timeout=300).splitlines()
              if "group_id=" in line]
    flow_file, group_file = bench.dir / "raw.flows", bench.dir / "raw.groups"
    flow_file.write_text("\n".join(flows) + "\n")
    group_file.write_text("\n".join(groups) + "\n")
    ovs.add_bridge("br-raw", secure=True)
    started = time.monotonic()
    ovs.ofctl("add-groups", "br-raw", str(group_file), timeout=600)
    ovs.ofctl("add-flows", "br-raw", str(flow_file), timeout=600)
    seconds = time.monotonic() - started
    installed = bench.flow_count("br-raw"), bench.group_count("br-raw")
    ovs.del_bridge("br-raw")
    return {"seconds": seconds, "flows": len(flows), "groups": len(groups),
            "installed_flows": installed[0], "installed_groups": installed[1]}


def _profile(pid: int, seconds: float, out: str) -> subprocess.Popen:
    spy = os.path.join(os.path.dirname(sys.executable),
                       "py-spy")
    return subprocess.Popen([spy, "record", "-p", str(pid), "-o", out, "-f", "raw", "-r",
                             "100", "-d", str(int(seconds) + 1)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise_profile(path: str, top: int = 15) -> Dict[str, List[List[Any]]]:
    """Inclusive and self shares of the frames of a py-spy raw (collapsed) profile."""
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    with open(path) as handle:
        for line in handle:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            total += n
            frames = stack.split(";")
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
    return {"samples": total,
            "inclusive": [[f, round(100 * c / total, 1)] for f, c in inclusive.most_common(top * 3)
                          if "ryu_apps" in f or "mip6" in f or "os_ken" in f][:top],
            "self": [[f, round(100 * c / total, 1)] for f, c in own.most_common(top)]}


def measure(mr_count: int, profile_dir: Optional[str] = None) -> Dict[str, Any]:
    with Lab() as lab:
        bench = BenchLab(lab, make_mrs(mr_count, 4), echo=False)
        first = bench.start_ha()
        pid = bench.ha_proc.pid
        rss_idle = rss_mb(pid)
        bench.start_generator()
        spy = None
        if profile_dir:
            os.makedirs(profile_dir, exist_ok=True)
            profile_path = os.path.join(profile_dir, f"scale-{mr_count}.raw")
            spy = _profile(pid, 600, profile_path)
            time.sleep(1.0)
        register = bench.gen("closed", "ha", count=mr_count, window=WINDOW)
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            spy.wait(timeout=60)
        rss_bound = rss_mb(pid)
        flows, groups = bench.flow_count(), bench.group_count()
        stop_s = bench.stop_ha()
        raw = _raw_install(bench)
        restart = bench.start_ha(timeout=RESTART_TIMEOUT, must_be_ready=False)
        rss_restart = rss_mb(bench.ha_proc.pid)
        flows_after, groups_after = bench.flow_count(), bench.group_count()
        bench.stop_ha()
    result = {
        "mrs": mr_count, "bindings": mr_count * 4,
        "register": {"seconds": register["seconds"], "rate_bu_s": register["rate"],
                     "p50_ms": register["p50_ms"], "p99_ms": register["p99_ms"],
                     "statuses": register["statuses"], "lost": register["lost"]},
        "rss_mb": {"idle": rss_idle, "bound": rss_bound, "after_restart": rss_restart},
        "switch": {"flows": flows, "groups": groups, "flows_after_restart": flows_after,
                   "groups_after_restart": groups_after},
        "raw_install": raw,
        "first_start": first,
        "stop_seconds": stop_s,
        "restart": restart,
    }
    if profile_dir:
        result["profile"] = summarise_profile(profile_path)
    print(f"bench: scale: {mr_count} MRs: {json.dumps(result, default=str)}", file=sys.stderr,
          flush=True)
    return result


def run(quick: bool = False) -> Dict[str, Any]:
    counts = [100] if quick else [1000, 10000]
    if os.environ.get("NEMO_BENCH_SCALE_COUNTS"):
        counts = [int(x) for x in os.environ["NEMO_BENCH_SCALE_COUNTS"].split(",")]
    profile_dir = os.environ.get(PROFILE_ENV)
    cases = [measure(n, profile_dir) for n in counts]
    main = cases[-1]
    per_40k = main["register"]["seconds"] * 40000 / main["bindings"]
    ratio = main["register"]["seconds"] / main["raw_install"]["seconds"]
    met_time = per_40k <= TARGET_SECONDS_PER_40K and main["bindings"] >= 40000
    met_rss = main["rss_mb"]["bound"] <= TARGET_RSS_MB and main["bindings"] >= 40000
    met_restart = all(c["restart"]["reconcile_changes"] == 0 and c["restart"]["ready"]
                      for c in cases)
    return {
        "section": "scale",
        "title": "Scale: MRs x 4 CoAs, registration, memory, switch state, restart",
        "quick": quick,
        "cases": cases,
        "ratio": ratio,
        "seconds_per_40k_extrapolated": per_40k,
        "target": f"<= {TARGET_SECONDS_PER_40K:g} s for 40,000 bindings; RSS <= "
                  f"{TARGET_RSS_MB:g} MB; 0 reconcile changes on restart",
        "met_time": met_time, "met_rss": met_rss, "met_restart": met_restart,
        "met": met_time and met_rss and met_restart,
    }


def markdown(result: Dict[str, Any]) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines = [f"## {result['title']}", "", __doc__.split("\n\n", 1)[1].strip(), "",
             "| MRs x CoAs | register all | OVS floor (ovs-ofctl) | ratio | BU/s | RSS idle -> "
             "bound | flows / groups | restart: changes, connect -> ready |",
             "|---|---:|---:|---:|---:|---|---|---|"]
    for c in result["cases"]:
        raw, reg, rss, sw, rs = (c["raw_install"], c["register"], c["rss_mb"], c["switch"],
                                 c["restart"])
        lines.append(
            f"| {c['mrs']:,} x 4 = {c['bindings']:,} | {reg['seconds']:.1f} s | "
            f"{raw['seconds']:.2f} s | {reg['seconds'] / raw['seconds']:.1f}x | "
            f"{reg['rate_bu_s']:,.0f} | {rss['idle']:.0f} -> {rss['bound']:.0f} MB | "
            f"{sw['flows']:,} / {sw['groups']:,} | {rs['reconcile_changes']}, "
            + (f"{rs['connect_to_ready_s']:.2f} s |" if rs["ready"] else
               f"**not ready** after {rs['waited_s']:.0f} s ({rs['disconnections']} "
               "disconnections) |"))
    main = result["cases"][-1]
    lines += [
        "",
        f"Against the targets ({main['bindings']:,} bindings): registration "
        f"{main['register']['seconds']:.1f} s, {result['seconds_per_40k_extrapolated']:.0f} s "
        f"per 40,000 bindings at that rate (target <= {TARGET_SECONDS_PER_40K:g} s): "
        f"{verdict(result['met_time'])}; RSS {main['rss_mb']['bound']:.0f} MB (target <= "
        f"{TARGET_RSS_MB:g} MB): {verdict(result['met_rss'])}; reconcile changes on restart "
        f"{', '.join(str(c['restart']['reconcile_changes']) for c in result['cases'])} "
        f"(target 0): {verdict(result['met_restart'])}.",
        ""]
    if result.get("analysis"):
        lines += [result["analysis"], ""]
    return "\n".join(lines)
