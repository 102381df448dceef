"""The benchmark lab: the real home agent (and the echo baseline) behind a private OVS.

::

    gen: gen0 ----- up0 [br-ha  (+ gre0, LOCAL 2001:db8:ffff::1)] -- nemo-ha (launcher)
         gen1 ----- up1 [br-echo]                                 -- bench.echo_app
                         (one ovs-vswitchd in namespace ha)

The generator (``bench.bugen``, namespace gen) injects pre-built signed BU frames over
AF_PACKET on gen0 (towards br-ha's MAC) or gen1 and captures the replies on the same
veth. Both bridges live in the same ovs-vswitchd, so the echo baseline and the home
agent share the switch, the CPU and the generator; only the controller differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from topologies.lab import Lab
from topologies.procs import wait_until

ROOT = Path(__file__).resolve().parent.parent
HA, NEXT_HOP, NEXT_HOP_MAC = "2001:db8:ffff::1", "2001:db8:ffff::fe", "02:00:00:00:00:fe"
HA_MAC, ECHO_MAC = "02:00:00:00:01:01", "02:00:00:00:01:02"
HOME_PREFIX = "2001:db8:f000::/64"
COA_NETS = ("2001:db8:a::", "2001:db8:b::", "2001:db8:c::", "2001:db8:d::")
LIFETIME_UNITS = 900  # 3600 s: nothing expires during a run
GEN_WINDOW = 32


def make_mrs(count: int, coas: int = 1) -> List[Dict[str, Any]]:
    """``count`` mobile routers: distinct home addresses, keys, SPIs, GRE keys, prefixes."""
    mrs = []
    for i in range(count):
        host = 0x10000 + i
        mrs.append({
            "name": f"mr{i}",
            "home": f"2001:db8:f000::{host >> 16:x}:{host & 0xFFFF:x}",
            "prefix": f"2001:db8:ff:{i:x}::/64",
            "spi": 256 + i,
            "key": hashlib.sha1(f"nemo-bench-{i}".encode()).hexdigest(),
            "gre_key": 1000 + i,
            "coas": [f"{net}{host >> 16:x}:{host & 0xFFFF:x}" for net in COA_NETS[:coas]],
        })
    return mrs


def ha_config(mrs: List[Dict[str, Any]], port: int, run_dir: Path) -> Dict[str, Any]:
    return {
        "home_agent": {"addresses": [HA], "home_prefixes": [HOME_PREFIX],
                       "state_file": str(run_dir / "state.json"),
                       "status_file": str(run_dir / "status.json")},
        "datapath": {"uplink_port": "up0", "tunnel_port": "gre0"},
        "openflow": {"listen_host": "127.0.0.1", "listen_port": port},
        "upstream": {"next_hop": NEXT_HOP, "next_hop_mac": NEXT_HOP_MAC},
        # The signalling meter is opened wide (the benchmark measures the controller,
        # not the protection); lifetimes long and the replay window wide enough for
        # frames built before a run that can last over a minute (10,000 MRs).
        "limits": {"max_lifetime": LIFETIME_UNITS * 4, "packet_in_rate": 1_000_000,
                   "packet_in_burst": 100_000, "replay_window": 900,
                   "max_care_of_addresses": 8},
        "mobile_routers": [{"name": m["name"], "home_address": m["home"],
                            "prefixes": [m["prefix"]], "spi": m["spi"], "key": m["key"],
                            "gre_key": m["gre_key"]} for m in mrs],
    }


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _log_time(line: str) -> float:
    """Seconds of the day of a log line starting ``YYYY-MM-DD HH:MM:SS,mmm``."""
    stamp = line[11:23]
    hours, minutes, rest = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest.replace(",", "."))


INACTIVITY_PROBE_MS = 120_000


class BenchLab:
    def __init__(self, lab: Lab, mrs: List[Dict[str, Any]], echo: bool = True) -> None:
        self.lab, self.mrs = lab, mrs
        self.dir = lab.base_dir / f"{lab.prefix}bench-run"
        self.dir.mkdir(parents=True, exist_ok=True)
        lab.add_cleanup(f"run dir {self.dir}",
                        lambda: subprocess.run(["rm", "-rf", str(self.dir)], check=False))
        self.ha_port, self.echo_port = free_port(), free_port()
        self.ha_ns, self.gen_ns = lab.namespace("ha"), lab.namespace("gen")
        lab.veth(self.gen_ns, "gen0", self.ha_ns, "up0")
        self.gen_ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")
        self.ovs = ovs = lab.ovs(self.ha_ns)
        # At 10,000 MRs the restarted home agent reads ~170,000 flows before it can
        # answer OVS's echo requests: give it longer than OVS's default 5 s.
        ovs.add_bridge("br-ha", secure=True, hwaddr=HA_MAC,
                       controller=f"tcp:127.0.0.1:{self.ha_port}",
                       inactivity_probe_ms=INACTIVITY_PROBE_MS)
        ovs.add_port("br-ha", "up0")
        ovs.add_gre_port("br-ha", "gre0")
        self.ha_ns.add_addr("br-ha", f"{HA}/64")
        self.ha_ns.add_route("default", via=NEXT_HOP)
        if echo:
            lab.veth(self.gen_ns, "gen1", self.ha_ns, "up1")
            ovs.add_bridge("br-echo", secure=True, hwaddr=ECHO_MAC,
                           controller=f"tcp:127.0.0.1:{self.echo_port}")
            ovs.add_port("br-echo", "up1")
        self.config_path = self.dir / "ha.yaml"
        self.config_path.write_text(yaml.safe_dump(ha_config(mrs, self.ha_port, self.dir)))
        self.log_path = self.dir / "ha.log"
        self.echo_log = self.dir / "echo.log"
        self.ha_proc: Optional[subprocess.Popen] = None
        self.echo_proc: Optional[subprocess.Popen] = None
        self.gen_proc: Optional[subprocess.Popen] = None
        self.env = dict(os.environ, PYTHONPATH=str(ROOT))

    # -- controllers ------------------------------------------------------------------
    def start_ha(self, timeout: float = 300.0, extra_env: Optional[Dict[str, str]] = None,
                 must_be_ready: bool = True) -> Dict[str, Any]:
        """Start nemo-ha; wait for "home agent ready"; return the start-up timings.

        With ``must_be_ready`` false a timeout is reported (``ready`` False, the
        reconciles and disconnections seen) instead of raised."""
        before = self.log_text().count("home agent ready")
        log = open(self.log_path, "a")
        started = time.monotonic()
        self.ha_proc = self.lab.popen(self.ha_ns, sys.executable, "-m", "ryu_apps.launcher",
                                      "--config", str(self.config_path),
                                      stdout=log, stderr=subprocess.STDOUT,
                                      env=dict(self.env, **(extra_env or {})), cwd=str(ROOT))
        try:
            wait_until(lambda: self.log_text().count("home agent ready") > before
                       or self.ha_proc.poll() is not None, timeout,
                       "the home agent to be ready", interval=0.05)
        except Exception:
            if must_be_ready:
                raise
            text = self.log_text()
            return {"ready": False, "waited_s": timeout,
                    "reconciles": re.findall(r"reconcile: (\d+) changes", text)[-10:],
                    "disconnections": text.count("disconnected"),
                    "reconcile_changes": int(re.findall(r"reconcile: (\d+) changes", text)[-1])
                    if "reconcile:" in text else -1, "connect_to_ready_s": float("nan")}
        if self.ha_proc.poll() is not None:
            raise RuntimeError(f"nemo-ha exited:\n{self.log_text()[-3000:]}")
        ready = time.monotonic() - started
        lines = self.log_text().splitlines()
        connect = [l for l in lines if "connected: reading its state" in l][-1]
        done = [l for l in lines if "home agent ready" in l][-1]
        reconcile = [l for l in lines if "reconcile:" in l][-1]
        return {"ready": True, "start_to_ready_s": ready,
                "connect_to_ready_s": _log_time(done) - _log_time(connect),
                "reconcile_changes": int(re.search(r"reconcile: (\d+) changes", reconcile)
                                         .group(1)),
                "reconcile_line": reconcile.split("nemo.ha INFO ", 1)[-1]}

    def stop_ha(self, timeout: float = 60.0) -> float:
        """SIGTERM (the app saves its state file); seconds until it exited.

        Killed after ``timeout`` (then it returns -1: the state file is the one of the
        last tick)."""
        started = time.monotonic()
        if self.ha_proc is not None and self.ha_proc.poll() is None:
            self.ha_proc.terminate()
            try:
                self.ha_proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.ha_proc.kill()
                self.ha_proc.wait(timeout=10)
                return -1.0
        return time.monotonic() - started

    def start_echo(self, timeout: float = 30.0) -> None:
        log = open(self.echo_log, "a")
        self.echo_proc = self.lab.popen(self.ha_ns, sys.executable, "-m", "bench.echo_app",
                                        "--port", str(self.echo_port), stdout=log,
                                        stderr=subprocess.STDOUT, env=self.env, cwd=str(ROOT))
        wait_until(lambda: "echo ready" in self.echo_log.read_text()
                   or self.echo_proc.poll() is not None, timeout, "the echo app", interval=0.05)
        if self.echo_proc.poll() is not None:
            raise RuntimeError(f"echo app exited:\n{self.echo_log.read_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    # -- generator --------------------------------------------------------------------
    def start_generator(self) -> None:
        spec = self.dir / "mrs.json"
        spec.write_text(json.dumps({"mrs": self.mrs, "ha": HA, "lifetime": LIFETIME_UNITS}))
        self.gen_proc = self.lab.popen(self.gen_ns, sys.executable, "-m", "bench.bugen",
                                       str(spec), stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env=self.env, cwd=str(ROOT))

    def gen(self, cmd: str, target: str = "ha", **args: Any) -> Dict[str, Any]:
        """One generator command towards ``target`` ("ha" or "echo")."""
        iface, mac = ("gen0", HA_MAC) if target == "ha" else ("gen1", ECHO_MAC)
        request = dict(cmd=cmd, iface=iface, dst_mac=mac, **args)
        assert self.gen_proc is not None and self.gen_proc.stdin and self.gen_proc.stdout
        self.gen_proc.stdin.write((json.dumps(request) + "\n").encode())
        self.gen_proc.stdin.flush()
        line = self.gen_proc.stdout.readline()
        if not line:
            raise RuntimeError("generator exited")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"generator: {answer['error']}")
        return answer

    # -- switch -------------------------------------------------------------------------
    def flow_count(self, bridge: str = "br-ha") -> int:
        out = self.ovs.ofctl("dump-aggregate", bridge)
        return int(re.search(r"flow_count=(\d+)", out).group(1))

    def group_count(self, bridge: str = "br-ha") -> int:
        out = self.ovs.ofctl("dump-groups", bridge, timeout=120)
        return sum(1 for line in out.splitlines() if "group_id=" in line)
