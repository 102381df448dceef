"""The home agent's integration lab: real namespaces, two private OVS, the real nemo-ha.

::

    cn (2001:db8:100::10) --- core router --- ha: br-ha [up0, gre0, LOCAL 2001:db8:ffff::1,
                                |                      198.51.100.1]  + nemo-ha
                                |  2001:db8:a::/64, b::/64, c::/64, 192.0.2.0/24
                              mr: br-mr [up0, gre0, lan0; LOCAL = the four CoAs]
                                |     static flows: decapsulate per CoA (counted), encapsulate
                               lan (2001:db8:ff00:1::10, the mobile network)

The test MR signals with the ``mip6`` codec (``mr_signal.py`` in the MR namespace); its
data plane is a second OVS with static flows whose per-CoA counters show which tunnel
carried each packet.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from topologies.lab import Lab
from topologies.netns import Namespace
from topologies.ovs import OvsInstance
from topologies.procs import wait_until

ROOT = Path(__file__).resolve().parents[2]
HA, HA4, NEXT_HOP, NEXT_HOP4 = "2001:db8:ffff::1", "198.51.100.1", "2001:db8:ffff::fe", \
    "198.51.100.254"
HOME = "2001:db8:f000::100"
MNP = "2001:db8:ff00:1::/64"
LAN_HOST, CN_HOST = "2001:db8:ff00:1::10", "2001:db8:100::10"
COAS = {"a": "2001:db8:a::100", "b": "2001:db8:b::100", "c": "2001:db8:c::100"}
COA4 = "192.0.2.10"
SPI, KEY, GRE_KEY = 0x100, bytes(range(1, 21)), 100
LAN_MAC, MR_LAN_GW_MAC = "02:00:00:00:02:10", "02:00:00:00:02:01"
MR_PORTS = {"up0": 1, "lan0": 2, "gre0": 10}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


IDLE_ROUTERS = 300


class HomeAgentLab:
    """Builds the topology above inside a :class:`Lab` and drives it."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.dir = lab.base_dir / f"{lab.prefix}ha-run"
        self.dir.mkdir(parents=True, exist_ok=True)
        lab.add_cleanup(f"run dir {self.dir}", lambda: subprocess.run(
            ["rm", "-rf", str(self.dir)], check=False))
        self.port = free_port()
        self.ha_proc: Optional[subprocess.Popen] = None
        self.config_path = self.dir / "ha.yaml"
        self.log_path = self.dir / "ha.log"
        self.seq = 1
        self._build()

    # -- topology -----------------------------------------------------------------
    def _build(self) -> None:
        lab = self.lab
        self.ha, self.core, self.cn = lab.namespace("ha"), lab.namespace("core"), \
            lab.namespace("cn")
        self.mr, self.lan = lab.namespace("mr"), lab.namespace("lan")
        lab.veth(self.ha, "up0", self.core, "ha0")
        lab.veth(self.cn, "eth0", self.core, "cn0")
        lab.veth(self.mr, "up0", self.core, "mr0")
        lab.veth(self.lan, "eth0", self.mr, "lan0", a_mac=LAN_MAC)
        core = self.core
        core.enable_forwarding()
        for cidr in (f"{NEXT_HOP}/64", f"{NEXT_HOP4}/24"):
            core.add_addr("ha0", cidr)
        core.add_addr("cn0", "2001:db8:100::1/64")
        for cidr in ("2001:db8:a::1/64", "2001:db8:b::1/64", "2001:db8:c::1/64", "192.0.2.1/24"):
            core.add_addr("mr0", cidr)
        core.add_route(MNP, via=HA)
        core.add_route("2001:db8:f000::/64", via=HA)
        self.cn.add_addr("eth0", f"{CN_HOST}/64")
        self.cn.add_route("default", via="2001:db8:100::1")
        self.lan.add_addr("eth0", f"{LAN_HOST}/64")
        self.lan.add_neigh("fe80::1", MR_LAN_GW_MAC, "eth0")
        self.lan.add_route("default", via="fe80::1", dev="eth0")
        self._build_ha()
        self._build_mr()

    def _build_ha(self) -> None:
        self.ha_ovs = ovs = self.lab.ovs(self.ha)
        ovs.add_bridge("br-ha", secure=True, hwaddr="02:00:00:00:01:01",
                       controller=f"tcp:127.0.0.1:{self.port}")
        ovs.add_port("br-ha", "up0")
        ovs.add_gre_port("br-ha", "gre0")
        self.ha.add_addr("br-ha", f"{HA}/64")
        self.ha.add_addr("br-ha", f"{HA4}/24")
        self.ha.add_route("default", via=NEXT_HOP)
        self.ha.add_route("default", via=NEXT_HOP4)
        config = {
            "home_agent": {"addresses": [HA], "ipv4_address": HA4,
                           "home_prefixes": ["2001:db8:f000::/64"],
                           "state_file": str(self.dir / "state.json"),
                           "status_file": str(self.dir / "status.json")},
            "datapath": {"uplink_port": "up0", "tunnel_port": "gre0"},
            "openflow": {"listen_host": "127.0.0.1", "listen_port": self.port},
            "upstream": {"next_hop": NEXT_HOP},
            "limits": {"max_lifetime": 600, "expiry_interval": 0.5},
            "mobile_routers": [{"name": "office1", "home_address": HOME, "prefixes": [MNP],
                                "spi": SPI, "key": KEY.hex(), "gre_key": GRE_KEY}]
            # Configured but never registering: enough routers that the app reads the
            # switch's flows in several cookie slices (home_agent.flow_read_bits).
            + [{"name": f"idle{i}", "home_address": f"2001:db8:f000::1:{i:x}",
                "prefixes": [f"2001:db8:e{i:03x}::/48"], "spi": 5000 + i, "key": KEY.hex(),
                "gre_key": 50000 + i} for i in range(IDLE_ROUTERS)],
        }
        self.config_path.write_text(yaml.safe_dump(config))

    def _build_mr(self) -> None:
        self.mr_ovs = ovs = self.lab.ovs(self.mr)
        ovs.add_bridge("br-mr", secure=True, hwaddr=MR_LAN_GW_MAC)
        ovs.add_port("br-mr", "up0", ofport=MR_PORTS["up0"])
        ovs.add_port("br-mr", "lan0", ofport=MR_PORTS["lan0"])
        ovs.add_gre_port("br-mr", "gre0", ofport=MR_PORTS["gre0"])
        for coa in COAS.values():
            self.mr.add_addr("br-mr", f"{coa}/64")
        self.mr.add_addr("br-mr", f"{COA4}/24")
        self.mr.add_route("default", via="2001:db8:a::1")
        self.mr.add_route("default", via="192.0.2.1")
        up, lan, gre = MR_PORTS["up0"], MR_PORTS["lan0"], MR_PORTS["gre0"]
        to_lan = f"set_field:{MR_LAN_GW_MAC}->eth_src,set_field:{LAN_MAC}->eth_dst,output:{lan}"
        flows = [f"priority=10,in_port={up},actions=LOCAL",
                 f"priority=10,in_port=LOCAL,actions=output:{up}",
                 f"priority=50,in_port={lan},ipv6,actions=set_field:{HA}->tun_ipv6_dst,"
                 f"set_field:{GRE_KEY}->tun_id,output:{gre}"]
        for name, coa in COAS.items():
            flows.append(f"priority=100,in_port={gre},ipv6,tun_ipv6_dst={coa},actions={to_lan}")
        flows.append(f"priority=100,in_port={gre},ipv6,tun_dst={COA4},actions={to_lan}")
        ovs.add_flows("br-mr", flows)

    # -- the home agent ------------------------------------------------------------
    def start_ha(self, timeout: float = 20.0) -> None:
        log = open(self.log_path, "a")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.ha_proc = self.lab.popen(self.ha, sys.executable, "-m", "ryu_apps.launcher",
                                      "--config", str(self.config_path), "--log-level", "DEBUG",
                                      stdout=log, stderr=subprocess.STDOUT, env=env)
        start = self.log_text().count("home agent ready")
        wait_until(lambda: self.log_text().count("home agent ready") > start or
                   self.ha_proc.poll() is not None, timeout, "the home agent to program br-ha")
        assert self.ha_proc.poll() is None, f"nemo-ha exited:\n{self.log_text()[-3000:]}"

    def stop_ha(self) -> None:
        if self.ha_proc is not None and self.ha_proc.poll() is None:
            self.ha_proc.terminate()
            self.ha_proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def status(self) -> Dict[str, Any]:
        """The home agent's status file (written after changes and every 10 s; empty
        before the first)."""
        path = self.dir / "status.json"
        if not path.exists():
            return {"next_hop_mac": None, "bindings": []}
        return json.loads(path.read_text())

    # -- signalling ------------------------------------------------------------------
    def signal(self, coa: Optional[str] = None, bids: Optional[List[Dict[str, Any]]] = None,
               lifetime: int = 60, coa4: Optional[str] = None, seq: Optional[int] = None,
               key: bytes = KEY, spi: int = SPI, **extra: Any) -> Dict[str, Any]:
        """Send one BU from the test MR; returns its BA as a dict (``type`` None: no BA)."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        request = {"seq": seq, "lifetime": lifetime, "spi": spi, "key": key.hex(),
                   "home": HOME, "ha": HA, "ha4": HA4, "capture_dev": "br-mr",
                   "bids": bids or [], **extra}
        if coa4:
            request.update(coa4=coa4, ipv4_coa=coa4)
        else:
            request["coa"] = coa or COAS["a"]
        out = self.mr.run("env", f"PYTHONPATH={ROOT}", sys.executable, "-m",
                          "tests.integration.mr_signal", json.dumps(request), timeout=15)
        return json.loads(out.stdout)

    # -- observation -----------------------------------------------------------------
    def ha_groups(self) -> str:
        return self.ha_ovs.ofctl("dump-groups", "br-ha")

    def ha_flows(self, table: Optional[int] = None) -> List[str]:
        return self.ha_ovs.dump_flows("br-ha", f"table={table}" if table is not None else None)

    def mr_counters(self) -> Dict[str, int]:
        """Packets the MR received per care-of address (its decapsulation flows)."""
        counts = {}
        for line in self.mr_ovs.dump_flows("br-mr"):
            found = re.search(r"n_packets=(\d+).*?(?:tun_ipv6_dst|tun_dst)=([0-9a-f.:]+)", line)
            if found:
                counts[found.group(2)] = int(found.group(1))
        return counts

    def drop_count(self, table: int, priority: int) -> int:
        total = 0
        for line in self.ha_flows(table):
            if re.search(rf"\bpriority={priority}[, ]", line):
                total += int(re.search(r"n_packets=(\d+)", line).group(1))
        return total

    def ping(self, src: Namespace, dst: str, count: int = 3, interval: float = 0.2,
             deadline: Optional[float] = None) -> subprocess.CompletedProcess:
        cmd = ["ping", "-6", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "1"]
        if deadline:
            cmd += ["-w", str(deadline)]
        return src.run(*cmd, dst, check=False, timeout=60)

    def tcp_spray(self, flows: int = 64, dst: str = LAN_HOST) -> None:
        """One TCP SYN from CN per source port (the LAN host answers with a reset).

        TCP, not UDP: OVS's select groups hash with sym_l4, which leaves UDP ports out,
        so UDP flows between two hosts would all take one bucket.
        """
        script = ("import socket, time\nsockets = []\n"
                  f"for port in range(41000, 41000 + {flows}):\n"
                  "    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n"
                  "    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                  "    s.setblocking(False)\n"
                  "    s.bind(('', port))\n"
                  f"    s.connect_ex(('{dst}', 9))\n"
                  "    sockets.append(s)\n"
                  "time.sleep(0.5)\n"
                  "for s in sockets:\n    s.close()\n")
        self.cn.run(sys.executable, "-c", script, timeout=30)

    def raw_gre(self, outer_src: str, inner_src: str, key: int = GRE_KEY,
                inner_dst: str = CN_HOST, count: int = 5) -> None:
        """Craft GRE/IPv6 packets from the MR namespace (spoofing tests)."""
        script = f"""
import ipaddress, socket, struct
inner_src, inner_dst = ipaddress.IPv6Address({inner_src!r}), ipaddress.IPv6Address({inner_dst!r})
payload = struct.pack('!HHHH', 5000, 9, 8 + 4, 0) + b'spof'
inner = struct.pack('!IHBB', 6 << 28, len(payload), 17, 64) + inner_src.packed + inner_dst.packed + payload
gre = struct.pack('!HHI', 0x2000, 0x86DD, {key}) + inner
outer = struct.pack('!IHBB', 6 << 28, len(gre), 47, 64) + ipaddress.IPv6Address({outer_src!r}).packed \\
    + ipaddress.IPv6Address({HA!r}).packed + gre
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range({count}):
    s.sendto(outer, ({HA!r}, 0))
"""
        self.mr.run(sys.executable, "-c", script, timeout=15)
