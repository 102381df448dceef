"""The MR agent's integration lab: the real nemo-mr against the real nemo-ha.

::

    lan (2001:db8:ff00:1::10) -- lan0 [mr: kernel routes the MNP; nemo-mr; private OVS:
                                      br-mr, br-up1 (CoAs a::100, a::101), br-up2 (b::100, b::101)]
                                        up1 -- isp1 (2001:db8:a::1) --+
                                        up2 -- isp2 (2001:db8:b::1) --+-- core -- ha (nemo-ha)
                                                                       \\-- cn (2001:db8:100::10)

The agent creates its bridges itself; the test then "autoconfigures" the care-of
addresses on br-up1/br-up2 as an ISP would, and the agent registers them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from tests.integration.ha_lab import HA, KEY, SPI, GRE_KEY, HOME, free_port
from topologies.lab import Lab
from topologies.procs import wait_until

ROOT = Path(__file__).resolve().parents[2]
MNP = "2001:db8:ff00:1::/64"
LAN_HOST, LAN_GW, CN_HOST = "2001:db8:ff00:1::10", "2001:db8:ff00:1::1", "2001:db8:100::10"
UPLINKS = {"isp1": ("up1", "2001:db8:a::1", ["2001:db8:a::100", "2001:db8:a::101"]),
           "isp2": ("up2", "2001:db8:b::1", ["2001:db8:b::100", "2001:db8:b::101"])}
ALL_COAS = [c for _, _, coas in UPLINKS.values() for c in coas]


class MobileRouterLab:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.dir = lab.base_dir / f"{lab.prefix}mr-run"
        self.dir.mkdir(parents=True, exist_ok=True)
        lab.add_cleanup(f"run dir {self.dir}", lambda: subprocess.run(
            ["rm", "-rf", str(self.dir)], check=False))
        self.port = free_port()
        self.ha_proc: Optional[subprocess.Popen] = None
        self.mr_proc: Optional[subprocess.Popen] = None
        self._build()

    def _build(self) -> None:
        lab = self.lab
        ns = {n: lab.namespace(n) for n in ("ha", "core", "cn", "isp1", "isp2", "mr", "lan")}
        self.ns = ns
        lab.veth(ns["ha"], "up0", ns["core"], "ha0")
        lab.veth(ns["cn"], "eth0", ns["core"], "cn0")
        lab.veth(ns["isp1"], "core0", ns["core"], "isp1")
        lab.veth(ns["isp2"], "core0", ns["core"], "isp2")
        lab.veth(ns["mr"], "up1", ns["isp1"], "mr0")
        lab.veth(ns["mr"], "up2", ns["isp2"], "mr0")
        # The tunnels carry 48 octets of GRE/IPv6 over 1500-octet links, and OVS drops
        # bigger packets silently: the LAN runs at 1400, so TCP's MSS fits both ways.
        lab.veth(ns["lan"], "eth0", ns["mr"], "lan0", mtu=1400)
        core = ns["core"]
        core.enable_forwarding()
        core.add_addr("ha0", "2001:db8:ffff::fe/64")
        core.add_addr("cn0", "2001:db8:100::1/64")
        core.add_addr("isp1", "2001:db8:1a::1/64")
        core.add_addr("isp2", "2001:db8:1b::1/64")
        core.add_route(MNP, via=HA)
        core.add_route("2001:db8:f000::/64", via=HA)
        core.add_route("2001:db8:a::/64", via="2001:db8:1a::2")
        core.add_route("2001:db8:b::/64", via="2001:db8:1b::2")
        for isp, net, sub in (("isp1", "2001:db8:a::1/64", "2001:db8:1a::2/64"),
                              ("isp2", "2001:db8:b::1/64", "2001:db8:1b::2/64")):
            ns[isp].enable_forwarding()
            ns[isp].add_addr("mr0", net)
            ns[isp].add_addr("core0", sub)
            ns[isp].add_route("default", via=sub.split("/")[0].replace("::2", "::1"))
        ns["cn"].add_addr("eth0", f"{CN_HOST}/64")
        ns["cn"].add_route("default", via="2001:db8:100::1")
        ns["lan"].add_addr("eth0", f"{LAN_HOST}/64")
        ns["lan"].add_route("default", via=LAN_GW)
        ns["mr"].add_addr("lan0", f"{LAN_GW}/64")
        ns["mr"].enable_forwarding()
        self._build_ha()
        self.mr_ovs = lab.ovs(ns["mr"])  # the agent creates its bridges in it
        self._write_mr_config()

    def _build_ha(self) -> None:
        ha = self.ns["ha"]
        self.ha_ovs = ovs = self.lab.ovs(ha)
        ovs.add_bridge("br-ha", secure=True, hwaddr="02:00:00:00:01:01",
                       controller=f"tcp:127.0.0.1:{self.port}")
        ovs.add_port("br-ha", "up0")
        ovs.add_gre_port("br-ha", "gre0")
        ha.add_addr("br-ha", f"{HA}/64")
        ha.add_route("default", via="2001:db8:ffff::fe")
        config = {
            "home_agent": {"addresses": [HA], "home_prefixes": ["2001:db8:f000::/64"],
                           "state_file": str(self.dir / "ha-state.json"),
                           "status_file": str(self.dir / "ha-status.json")},
            "datapath": {"uplink_port": "up0", "tunnel_port": "gre0"},
            "openflow": {"listen_host": "127.0.0.1", "listen_port": self.port},
            "upstream": {"next_hop": "2001:db8:ffff::fe"},
            "limits": {"expiry_interval": 0.5},
            "mobile_routers": [{"name": "office1", "home_address": HOME, "prefixes": [MNP],
                                "spi": SPI, "key": KEY.hex(), "gre_key": GRE_KEY,
                                "policy": "priority"}],  # downstream on isp1 too
        }
        (self.dir / "ha.yaml").write_text(yaml.safe_dump(config))

    def _write_mr_config(self) -> None:
        run = str(self.mr_ovs.rundir)
        config = {
            "mobile_router": {"home_address": HOME, "prefixes": [MNP], "spi": SPI,
                              "key": KEY.hex(), "lifetime": 60, "gre_key": GRE_KEY},
            "home_agents": [HA],
            "uplinks": [{"name": name, "interface": iface, "gateway": gw, "priority": i + 1}
                        for i, (name, (iface, gw, _)) in enumerate(UPLINKS.items())],
            "policy": {"mode": "active-backup"},  # upstream on isp1 until it fails
            "state_file": str(self.dir / "mr-state.json"),
            "status_file": str(self.dir / "mr-status.json"),
            "dataplane": {"backend": "ovs", "vsctl": ["ovs-vsctl", f"--db=unix:{run}/db.sock"],
                          "ofctl": ["ovs-ofctl"], "ofctl_target": f"unix:{run}/{{bridge}}.mgmt",
                          "appctl": ["ovs-appctl", "-t", f"{run}/vswitchd.ctl"]},
        }
        (self.dir / "mr.yaml").write_text(yaml.safe_dump(config))

    # -- processes ---------------------------------------------------------------------
    def _start(self, ns: str, module: str, config: str, log: str) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        handle = open(self.dir / log, "a")
        return self.lab.popen(self.ns[ns], sys.executable, "-m", module, "--config",
                              str(self.dir / config), "--log-level", "DEBUG",
                              stdout=handle, stderr=subprocess.STDOUT, env=env)

    def start_ha(self) -> None:
        self.ha_proc = self._start("ha", "ryu_apps.launcher", "ha.yaml", "ha.log")
        wait_until(lambda: "home agent ready" in self.log("ha.log") or
                   self.ha_proc.poll() is not None, 20, "the home agent")
        assert self.ha_proc.poll() is None, self.log("ha.log")[-3000:]

    def start_mr(self) -> None:
        self.mr_proc = self._start("mr", "mr_agent.cli", "mr.yaml", "mr.log")
        wait_until(lambda: self.ns["mr"].link_exists("br-up2") or
                   self.mr_proc.poll() is not None, 20, "the MR agent's bridges")
        assert self.mr_proc.poll() is None, self.log("mr.log")[-3000:]

    def stop(self, proc: Optional[subprocess.Popen], signal_name: str = "TERM") -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(getattr(__import__("signal"), f"SIG{signal_name}"))
            proc.wait(timeout=10)

    def add_care_of_addresses(self) -> None:
        """As an ISP's autoconfiguration would: the CoAs appear on br-up1/br-up2."""
        for index, (_, _, coas) in enumerate(UPLINKS.values(), 1):
            for coa in coas:
                self.ns["mr"].add_addr(f"br-up{index}", f"{coa}/64")

    def probe(self, seconds: float, action, rate: int = 1000) -> Dict[str, Dict[str, Any]]:
        """Probe streams LAN->CN and CN->LAN while ``action()`` runs; gaps per direction."""
        env = ["env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "tests.integration.probe"]
        receivers = {"upstream": self.ns["cn"].popen(*env, "recv", "7001", str(seconds + 1),
                                                    stdout=subprocess.PIPE),
                     "downstream": self.ns["lan"].popen(*env, "recv", "7002", str(seconds + 1),
                                                       stdout=subprocess.PIPE)}
        time.sleep(0.3)
        senders = [self.ns["lan"].popen(*env, "send", CN_HOST, "7001", str(rate), str(seconds)),
                   self.ns["cn"].popen(*env, "send", LAN_HOST, "7002", str(rate), str(seconds))]
        time.sleep(seconds / 3)
        action()
        for sender in senders:
            sender.wait(timeout=seconds + 10)
        return {name: json.loads(proc.communicate(timeout=seconds + 10)[0])
                for name, proc in receivers.items()}

    def log(self, name: str) -> str:
        path = self.dir / name
        return path.read_text() if path.exists() else ""

    def ha_care_of(self) -> List[str]:
        path = self.dir / "ha-status.json"
        if not path.exists():
            return []
        status = json.loads(path.read_text())
        return sorted(b["care_of"] for e in status["bindings"] for b in e["care_of"])

    def mr_status(self) -> Dict[str, Any]:
        path = self.dir / "mr-status.json"
        return json.loads(path.read_text()) if path.exists() else {"bindings": []}

    def mr_usable(self) -> List[str]:
        return sorted(b["care_of"] for b in self.mr_status()["bindings"] if b["usable"])
