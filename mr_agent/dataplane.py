"""The MR's data plane on Open vSwitch: GRE tunnels to the home agent over every uplink.

Layout (proved in ``tests/integration/test_mr_dataplane.py`` on OVS 3.1, userspace)::

    LAN hosts -- kernel (routes the MNP) -- mr-tun (internal port) --+
                                                                     |  br-mr  (OpenFlow)
    uplink veths up1, up2 ... (OVS-owned, port 31..) ----------------+-- gre0 (flow GRE, L3)
                                                                     +-- patch pupN == pmrN -- br-upN
                                                                                    LOCAL: the CoAs
* Upstream: the kernel routes traffic from the mobile network (``ip -6 rule from <MNP>``)
  into ``mr-tun``; ``br-mr`` sends it to a group with one bucket per acknowledged
  care-of address: ``pkt_mark=<BID>``, tunnel destination = home agent, key, ``gre0``.
  The mark selects an OVS route (``ovs/route/add <HA> br-upN <gateway> pkt_mark=<BID>``),
  hence the uplink; ``br-upN`` pins the outer source to that CoA (OVS 3.1 cannot set it
  otherwise). Buckets watch their uplink port, so OVS itself skips a dead uplink.
* Downstream: GRE to a CoA arrives on its uplink, crosses the patch and is decapsulated
  at ``br-upN``'s LOCAL port; the inner packet comes back on ``gre0`` and goes to
  ``mr-tun`` (the kernel delivers it on the LAN, neighbour discovery included).
* Signalling: per-uplink routing tables (``from <CoA> lookup <table>``) make BUs sent
  from a CoA leave through its uplink.
* Liveness probes (:mod:`mr_agent.liveness`, when ``liveness.enabled``): the home
  address is put on an internal port of its own, ``mr-probe`` (``/128``, no DAD), and
  routed into it (``from <HoA> lookup 199``), so the agent's UDP sockets bound to
  ``[HoA]:port+BID`` and connected to ``[HA]:port`` send into ``br-mr``. Not through
  ``mr-tun``: there the probes queued behind the LAN's traffic, and a small-packet flood
  from the LAN lost enough of them to declare healthy CoAs dead. In ``br-mr``, per
  CoA in the outbound group (installed and removed with its bucket, priority 300):
  *probe*: ``in_port=mr-probe, udp6, HoA -> HA, tp_src=port+BID, tp_dst=port`` -> exactly
  that CoA's bucket actions (mark, tunnel destination, key, ``gre0``), so the probe
  takes that CoA's path whatever the group would pick; *reply*: the home agent's switch
  reflects the probe unchanged back through the same CoA (``pipeline.reflect_flows``);
  it comes out of ``gre0`` decapsulated with ``tun_ipv6_dst=<CoA>`` (``tun_dst`` for an
  IPv4 CoA) and still HoA -> HA, so ``in_port=gre0, <tunnel dst>=CoA, udp6, HoA -> HA,
  tp_src=port+BID, tp_dst=port`` swaps addresses and ports (OVS fixes the UDP
  checksum) and outputs to ``mr-probe``, where the kernel delivers it to that same
  socket. A reply that came back over another CoA matches nothing here and goes to
  ``mr-tun`` as ordinary traffic to the HA address, i.e. it is not counted.
  Why UDP sockets and not AF_PACKET: OVS 3.1 userspace delivers to ``mr-probe`` like
  any downstream packet, the kernel demultiplexes by port (no parsing in Python), and
  the socket is non-blocking in the agent's ``select`` loop.

All changes go through the OVS command-line tools and ``ip``; every command is checked
and a failure raises :class:`DataPlaneError` naming the command and its output.
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from typing import Dict, List, Optional, Sequence, Tuple

from .agent import DataPlane
from .bul import Entry
from .config import MobileRouterAgentConfig

LOG = logging.getLogger("nemo.mr.dataplane")
LAN_PORT, PROBE_PORT, GRE_PORT, FIRST_PATCH_PORT, FIRST_UPLINK_PORT = 3, 4, 10, 21, 31
TUNNEL_TABLE = 200  # kernel table: mobile network -> mr-tun
PROBE_TABLE = 199  # kernel table: the home address (liveness probes) -> mr-probe
PROBE_DEVICE = "mr-probe"
TUNNEL_GATEWAY, TUNNEL_GATEWAY_MAC = "fe80::1", "02:00:00:00:00:01"  # virtual, in br-mr
TUNNEL_MTU = 1452  # 1500 - 40 (outer IPv6) - 8 (GRE with key)
FIRST_UPLINK_TABLE = 101
_OF = "OpenFlow13"


class DataPlaneError(RuntimeError):
    """An OVS or ip command failed."""


class OvsDataPlane(DataPlane):
    """The backend described above; ``config.dataplane`` holds its settings:

    ``bridge`` (default ``br-mr``), ``tunnel_port`` (``mr-tun``), ``vsctl`` / ``ofctl`` /
    ``appctl`` command prefixes (lists; default the system OVS), ``ofctl_target`` (how
    ovs-ofctl reaches a bridge, ``{bridge}`` replaced; default the bridge name).
    Each uplink needs a ``gateway`` (the ISP router) in the configuration.
    """

    def __init__(self, config: MobileRouterAgentConfig,
                 run: Optional[callable] = None) -> None:
        self.config = config
        settings = config.dataplane
        self.bridge = settings.get("bridge", "br-mr")
        self.tun = settings.get("tunnel_port", "mr-tun")
        self.vsctl = list(settings.get("vsctl", ["ovs-vsctl"]))
        self.ofctl_cmd = list(settings.get("ofctl", ["ovs-ofctl"]))
        self.appctl = list(settings.get("appctl", ["ovs-appctl"]))
        self.target = settings.get("ofctl_target", "{bridge}")
        self._run = run or _run
        self.uplinks = {u.name: (i, u) for i, u in enumerate(config.uplinks)}
        self._routes: Dict[int, Tuple[str, str]] = {}  # BID -> (route args) installed
        self._rules: Dict[str, int] = {}  # CoA -> kernel table
        self._coa_flows: Dict[int, str] = {}  # BID -> CoA with flows installed
        self._uplink_of: Dict[int, str] = {}  # BID -> its uplink
        self._probe_coas: Dict[int, str] = {}  # BID -> CoA with liveness flows installed
        self._group_exists = False
        self._stale_probes: Dict[int, str] = {}  # BID -> CoA whose probe flows must go
        self._default_flow = ""
        self.tun_mac = self.probe_mac = ""

    # -- names ---------------------------------------------------------------------------
    def uplink_bridge(self, name: str) -> str:
        return f"br-up{self.uplinks[name][0] + 1}"

    def uplink_port(self, name: str) -> int:
        return FIRST_UPLINK_PORT + self.uplinks[name][0]

    def address_devices(self) -> Dict[str, str]:
        return {u.interface: self.uplink_bridge(u.name) for u in self.config.uplinks}

    # -- set-up ---------------------------------------------------------------------------
    def start(self) -> None:
        """Create the bridges, ports and fixed flows (idempotent: --may-exist)."""
        br = self.bridge
        netdev = ["--", "set", "bridge", br, "datapath_type=netdev", "fail_mode=secure",
                  f"protocols={_OF}"]
        self._vs("--may-exist", "add-br", br, *netdev)
        self._vs("--may-exist", "add-port", br, self.tun, "--", "set", "interface", self.tun,
                 "type=internal", f"ofport_request={LAN_PORT}")
        self._vs("--may-exist", "add-port", br, "gre0", "--", "set", "interface", "gre0",
                 "type=gre", "options:remote_ip=flow", "options:key=flow",
                 "options:packet_type=legacy_l3", f"ofport_request={GRE_PORT}")
        flows: List[str] = []
        for name, (index, uplink) in self.uplinks.items():
            up_br, port, patch = self.uplink_bridge(name), self.uplink_port(name), \
                FIRST_PATCH_PORT + index
            self._vs("--may-exist", "add-br", up_br, "--", "set", "bridge", up_br,
                     "datapath_type=netdev", "fail_mode=secure", f"protocols={_OF}")
            self._vs("--may-exist", "add-port", br, uplink.interface, "--", "set", "interface",
                     uplink.interface, f"ofport_request={port}")
            self._vs("--may-exist", "add-port", br, f"pup{index + 1}", "--", "set", "interface",
                     f"pup{index + 1}", "type=patch", f"options:peer=pmr{index + 1}",
                     f"ofport_request={patch}")
            self._vs("--may-exist", "add-port", up_br, f"pmr{index + 1}", "--", "set",
                     "interface", f"pmr{index + 1}", "type=patch",
                     f"options:peer=pup{index + 1}", "ofport_request=1")
            self._cmd("sysctl", "-qw", f"net.ipv6.conf.{uplink.interface}.disable_ipv6=1")
            self._cmd("ip", "link", "set", up_br, "up")
            flows += [f"priority=10,in_port={port},actions=output:{patch}",
                      f"priority=10,in_port={patch},actions=output:{port}"]
            self._flows(up_br, ["priority=10,in_port=1,actions=LOCAL",
                                "priority=10,in_port=LOCAL,actions=output:1"])
        # GRE/IPv6 adds 48 octets and OVS drops what does not fit without telling anyone:
        # with this MTU the kernel answers oversized LAN packets with Packet Too Big.
        self._cmd("ip", "link", "set", self.tun, "mtu", str(TUNNEL_MTU), "up")
        self.tun_mac = self._cmd("cat", f"/sys/class/net/{self.tun}/address").strip()
        flows.append(f"priority=5,in_port={GRE_PORT},ipv6,actions=set_field:{self.tun_mac}"
                     f"->eth_dst,output:{LAN_PORT}")
        flows.append(f"priority=1,in_port={LAN_PORT},actions=drop")
        self._flows(br, flows)
        # The mobile network's traffic goes into the tunnels (through mr-tun).
        self._cmd("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        # Through a gateway with a fixed neighbour entry: an on-link route would make the
        # kernel solicit every destination on mr-tun, where nobody answers.
        self._cmd("ip", "-6", "neigh", "replace", TUNNEL_GATEWAY, "lladdr", TUNNEL_GATEWAY_MAC,
                  "dev", self.tun, "nud", "permanent")
        self._cmd("ip", "-6", "route", "replace", "default", "via", TUNNEL_GATEWAY, "dev",
                  self.tun, "table", str(TUNNEL_TABLE))
        for prefix in self.config.prefixes:
            self._rule("add", "from", str(prefix), "lookup", str(TUNNEL_TABLE), "pref", "1000")
        if self.config.liveness.enabled:
            # The probes' source: the home address, on a port of its own. On mr-tun the
            # probes queued behind the LAN's traffic: a 64-octet UDP flood from the LAN
            # overflowed that queue and lost enough probes to declare healthy CoAs dead.
            home = str(self.config.home_address)
            self._vs("--may-exist", "add-port", br, PROBE_DEVICE, "--", "set", "interface",
                     PROBE_DEVICE, "type=internal", f"ofport_request={PROBE_PORT}")
            self._cmd("ip", "link", "set", PROBE_DEVICE, "up")
            self.probe_mac = self._cmd("cat", f"/sys/class/net/{PROBE_DEVICE}/address").strip()
            self._cmd("ip", "-6", "addr", "replace", f"{home}/128", "dev", PROBE_DEVICE,
                      "nodad")
            self._cmd("ip", "-6", "neigh", "replace", TUNNEL_GATEWAY, "lladdr",
                      TUNNEL_GATEWAY_MAC, "dev", PROBE_DEVICE, "nud", "permanent")
            self._cmd("ip", "-6", "route", "replace", "default", "via", TUNNEL_GATEWAY, "dev",
                      PROBE_DEVICE, "table", str(PROBE_TABLE))
            self._rule("add", "from", home, "lookup", str(PROBE_TABLE), "pref", "1000")
            self._flows(br, [f"priority=1,in_port={PROBE_PORT},actions=drop"])
            # Probe flows of an earlier run: rewritten for the CoAs in use by program().
            self._ofctl("del-flows", br, f"udp6,tp_dst={self.config.liveness.port}",
                        check=False)
        LOG.info("data plane ready: %s with %d uplinks", br, len(self.uplinks))

    # -- care-of addresses (signalling paths, decapsulation) --------------------------------
    def sync_care_of(self, care_of: Dict[Tuple[str, object], int]) -> None:
        """(uplink, CoA) -> BID of every present care-of address: routes, rules, flows."""
        wanted = {bid: (name, coa) for (name, coa), bid in care_of.items()}
        for bid in [b for b in self._coa_flows if b not in wanted]:
            self._forget(bid)
        for bid, (name, coa) in wanted.items():
            if self._coa_flows.get(bid) != str(coa):
                if bid in self._coa_flows:
                    self._forget(bid)
                self._learn(bid, name, coa)

    def _learn(self, bid: int, name: str, coa) -> None:
        index, uplink = self.uplinks[name]
        up_br = self.uplink_bridge(name)
        gateway = uplink.gateway
        if gateway is None or gateway.version != coa.version:
            raise DataPlaneError(f"uplink {name} needs an IPv{coa.version} gateway for {coa}")
        home = (self.config.home_agents[0] if coa.version == 6 else self.config.home_agent_ipv4)
        plen = 128 if coa.version == 6 else 32
        # After an agent restart the route is still there: adding it again fails harmlessly.
        self._cmd(*self.appctl, "ovs/route/add", f"{home}/{plen}", up_br, str(gateway),
                  f"pkt_mark={bid}", check=False)
        self._routes[bid] = (f"{home}/{plen}", f"pkt_mark={bid}", up_br, str(gateway))
        self._uplink_of[bid] = name
        family, src, proto = ("ipv6", "ipv6_src", "ipv6,nw_proto=47") if coa.version == 6 \
            else ("ip", "nw_src", "ip,nw_proto=47")
        dst = "ipv6_dst" if coa.version == 6 else "nw_dst"
        self._flows(up_br, [
            f"priority=200,in_port=LOCAL,pkt_mark={bid},{proto},actions=set_field:{coa}->{src},"
            "output:1",
            f"priority=100,in_port=1,{proto},{dst}={coa},actions=LOCAL"])
        tun_dst = "tun_ipv6_dst" if coa.version == 6 else "tun_dst"
        self._flows(self.bridge, [f"priority=100,in_port={GRE_PORT},ipv6,{tun_dst}={coa},"
                                  f"actions=set_field:{self.tun_mac}->eth_dst,output:{LAN_PORT}"])
        table = FIRST_UPLINK_TABLE + index
        ip = "-6" if coa.version == 6 else "-4"
        self._cmd("ip", ip, "route", "replace", "default", "via", str(gateway), "dev", up_br,
                  "table", str(table))
        self._rule("add", "from", str(coa), "lookup", str(table), "pref", "500", family=ip)
        self._rules[str(coa)] = table
        self._coa_flows[bid] = str(coa)

    def _forget(self, bid: int) -> None:
        coa_text = self._coa_flows.pop(bid)
        coa = ipaddress.ip_address(coa_text)
        uplink = self._uplink_of.pop(bid, None)
        route = self._routes.pop(bid, None)
        if route is not None:
            self._cmd(*self.appctl, "ovs/route/del", route[0], route[1], check=False)
        # OVS fixes a route's source when the route is added (the bridge's newest address):
        # if that was this CoA, the other CoAs' routes on its uplink now name a source that
        # is gone and every packet they carry is lost. Add them again to renew it.
        for other, name in self._uplink_of.items():
            if name == uplink and other in self._routes:
                prefix, mark, bridge, gateway = self._routes[other]
                self._cmd(*self.appctl, "ovs/route/del", prefix, mark, check=False)
                self._cmd(*self.appctl, "ovs/route/add", prefix, bridge, gateway, mark)
        tun_dst = "tun_ipv6_dst" if coa.version == 6 else "tun_dst"
        self._ofctl("del-flows", self.bridge, f"in_port={GRE_PORT},ipv6,{tun_dst}={coa}",
                    check=False)
        for name in self.uplinks:
            self._ofctl("del-flows", self.uplink_bridge(name), f"pkt_mark={bid}", check=False)
            dst = "ipv6_dst" if coa.version == 6 else "nw_dst"
            proto = "ipv6,nw_proto=47" if coa.version == 6 else "ip,nw_proto=47"
            self._ofctl("del-flows", self.uplink_bridge(name), f"{proto},{dst}={coa}",
                        check=False)
        table = self._rules.pop(coa_text, None)
        if table is not None:
            self._rule("del", "from", coa_text, "lookup", str(table), "pref", "500",
                       family="-6" if coa.version == 6 else "-4", check=False)

    # -- outbound choice ------------------------------------------------------------------------
    def program(self, usable: List[Entry]) -> None:
        """The group of acknowledged care-of addresses that outbound traffic uses."""
        group = self._group(usable)
        if not self._group_exists:  # once per run: each ovs-ofctl costs milliseconds
            self._group_exists = "group_id=1" in self._ofctl("dump-groups", self.bridge,
                                                             check=False)
        self._ofctl("mod-group" if self._group_exists else "add-group", self.bridge, group)
        self._group_exists = True
        default = f"priority=50,in_port={LAN_PORT},ipv6,actions={'group:1' if usable else 'drop'}"
        if default != self._default_flow:
            self._flows(self.bridge, [default])
            self._default_flow = default
        rules = []
        for rule in self.config.rules:
            best = next((e for e in usable if e.uplink == rule.uplink), None)
            match = f"priority=100,in_port={LAN_PORT},{rule.protocol}6" + (
                f",tp_dst={rule.port}" if rule.port else "")
            rules.append(f"{match},actions=" + (self._encap(best) if best else "group:1"
                                               if usable else "drop"))
        if rules:
            self._flows(self.bridge, rules)
        if self.config.liveness.enabled:
            self._probe_flows(usable)

    def _probe_flows(self, usable: List[Entry]) -> None:
        """Per CoA of the group: force its probe into its tunnel, hand its reply back."""
        live = self.config.liveness
        home, ha = self.config.home_address, self.config.home_agents[0]
        wanted = {e.bid: e for e in usable if live.port + e.bid <= 0xFFFF}
        for bid in [b for b, coa in self._probe_coas.items()
                    if b not in wanted or str(wanted[b].care_of) != coa]:
            # Deleted later (housekeeping): a dead CoA's group rewrite must not wait for
            # it, nor the detection of the next one (each ovs-ofctl costs milliseconds).
            self._stale_probes[bid] = self._probe_coas.pop(bid)
        for bid in [b for b in self._stale_probes
                    if b in wanted and str(wanted[b].care_of) == self._stale_probes[b]]:
            del self._stale_probes[bid]  # back before it was deleted: add-flows replaces
        flows = []
        for bid, entry in wanted.items():
            if bid in self._probe_coas:
                continue
            sport = live.port + bid
            probe = f"udp6,ipv6_src={home},ipv6_dst={ha},tp_src={sport},tp_dst={live.port}"
            tun_dst = "tun_ipv6_dst" if entry.care_of.version == 6 else "tun_dst"
            flows.append(f"priority=300,in_port={PROBE_PORT},{probe},"
                         f"actions={self._encap(entry)}")
            flows.append(f"priority=300,in_port={GRE_PORT},{tun_dst}={entry.care_of},{probe},"
                         f"actions=set_field:{ha}->ipv6_src,set_field:{home}->ipv6_dst,"
                         f"set_field:{live.port}->udp_src,set_field:{sport}->udp_dst,"
                         f"set_field:{self.probe_mac}->eth_dst,output:{PROBE_PORT}")
            self._probe_coas[bid] = str(entry.care_of)
        if flows:
            self._flows(self.bridge, flows)

    def housekeeping(self) -> None:
        """Delete the probe flows of CoAs that left the group (see _probe_flows)."""
        live = self.config.liveness
        for bid in list(self._stale_probes):
            if bid in self._probe_coas:  # back with another CoA: only its old reply flow
                coa = ipaddress.ip_address(self._stale_probes[bid])
                tun_dst = "tun_ipv6_dst" if coa.version == 6 else "tun_dst"
                self._ofctl("del-flows", self.bridge, f"in_port={GRE_PORT},{tun_dst}={coa},"
                            f"udp6,tp_src={live.port + bid},tp_dst={live.port}", check=False)
            else:
                self._ofctl("del-flows", self.bridge,
                            f"udp6,tp_src={live.port + bid},tp_dst={live.port}", check=False)
            del self._stale_probes[bid]

    def _encap(self, entry: Entry) -> str:
        if entry.care_of.version == 6:
            tunnel = f"set_field:{self.config.home_agents[0]}->tun_ipv6_dst"
        else:
            tunnel = f"set_field:{self.config.home_agent_ipv4}->tun_dst"
        return (f"set_field:{entry.bid}->pkt_mark,{tunnel},"
                f"set_field:{self.config.gre_key}->tun_id,output:{GRE_PORT}")

    def _group(self, usable: List[Entry]) -> str:
        weights = {u.name: u.weight for u in self.config.uplinks}
        kind = "ff" if self.config.policy == "active-backup" else "select"
        buckets = []
        for entry in usable:  # best BID-PRI first
            watch = f"watch_port:{self.uplink_port(entry.uplink)}"
            weight = f"weight:{weights.get(entry.uplink, 1)}," if kind == "select" else ""
            buckets.append(f"bucket={weight}{watch},actions={self._encap(entry)}")
        return f"group_id=1,type={kind}" + ("," + ",".join(buckets) if buckets else "")

    def close(self) -> None:
        """Keep the data plane as it is: traffic needs it until the bindings expire."""

    # -- commands ----------------------------------------------------------------------------------
    def _vs(self, *args: str) -> str:
        return self._cmd(*self.vsctl, *args)

    def _ofctl(self, command: str, bridge: str, *args: str, check: bool = True) -> str:
        return self._cmd(*self.ofctl_cmd, "-O", _OF, command,
                         self.target.format(bridge=bridge), *args, check=check)

    def _flows(self, bridge: str, flows: Sequence[str]) -> None:
        self._cmd(*self.ofctl_cmd, "-O", _OF, "add-flows", self.target.format(bridge=bridge),
                  "-", input="\n".join(flows) + "\n")

    def _rule(self, *args: str, family: str = "-6", check: bool = True) -> None:
        # "add" of an existing rule fails with EEXIST: delete first to stay idempotent.
        if args[0] == "add":
            self._cmd("ip", family, "rule", "del", *args[1:], check=False)
        self._cmd("ip", family, "rule", *args, check=check)

    def _cmd(self, *argv: str, check: bool = True, input: Optional[str] = None) -> str:
        return self._run(list(argv), check, input)


def _run(argv: List[str], check: bool, input: Optional[str]) -> str:
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise DataPlaneError(f"{' '.join(argv)} failed ({proc.returncode}): "
                             f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def backend_for(config: MobileRouterAgentConfig) -> DataPlane:
    """The data-plane backend the configuration asks for."""
    kind = config.dataplane.get("backend", "ovs")
    if kind == "ovs":
        return OvsDataPlane(config)
    raise DataPlaneError(f"unknown data-plane backend {kind!r} (available: ovs; the Linux "
                         "kernel backend needs ip6gre/gre devices, which this kernel lacks)")
