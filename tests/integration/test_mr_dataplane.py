"""The mobile router's data plane with two uplinks (RFC 4908), proved on OVS 3.1 (userspace).

Design note (measured on this machine kind: Debian 12, openvswitch 3.1.0-2+deb12u1,
``datapath_type=netdev``, one private OVS per namespace).

Lab topology
============
::

    lan ── lan0 ┐  mr
            br-mr: lan0 (3), gre0 (10), up1 (1), up2 (2), pup1 (21), pup2 (22)
                   pup1 ══patch══ pmr1 (1) br-up1, LOCAL: 2001:db8:a::100, 2001:db8:a::101
                   pup2 ══patch══ pmr2 (1) br-up2, LOCAL: 2001:db8:b::100, 192.0.2.10
            up1 ── isp1 (2001:db8:a::1) ──────────────┐
            up2 ── isp2 (2001:db8:b::1, 192.0.2.1) ───┴── core ── ha: br-ha ── cn0 ── cn
                                                         (2001:db8:ffff::1, 198.51.100.1)

The HA end is a second private OVS with static flows (decapsulate and count per outer
source, encapsulate towards the CoA chosen by UDP port).

MR bridge layout (the design)
=============================
* ``br-mr`` (netdev, fail_mode=secure): the uplink veths ``up1`` (1) and ``up2`` (2), the
  LAN port ``lan0`` (3), one flow-based L3 GRE port ``gre0`` (10: ``remote_ip=flow
  key=flow packet_type=legacy_l3``, **no** ``local_ip``) and one patch port per uplink
  (``pup1`` 21, ``pup2`` 22).
* ``br-up1``, ``br-up2`` (netdev, secure): only a patch port (``pmrN``, 1) and LOCAL. The
  CoAs of uplink N live on the kernel interface ``br-upN`` (``ip addr add
  2001:db8:a::100/64 dev br-up1``), so the kernel has one interface per ISP (its own
  addresses, ND, routes, policy rules) while the uplink *port* sits in the same bridge
  as the tunnel port: a group bucket in ``br-mr`` can ``watch_port`` the uplink itself.
* IPv6 is disabled on the veths OVS owns (``up1``, ``up2``, ``lan0``):
  ``sysctl net.ipv6.conf.up1.disable_ipv6=1``, or the kernel sends RS/MLD on them.

Commands and flows (mark N = CoA N; ``HA=2001:db8:ffff::1``)::

    ovs-appctl ovs/route/add 2001:db8:ffff::1/128 br-up1 2001:db8:a::1 pkt_mark=1   # a::100
    ovs-appctl ovs/route/add 2001:db8:ffff::1/128 br-up1 2001:db8:a::1 pkt_mark=2   # a::101
    ovs-appctl ovs/route/add 2001:db8:ffff::1/128 br-up2 2001:db8:b::1 pkt_mark=3   # b::100
    ovs-appctl ovs/route/add 198.51.100.1/32     br-up2 192.0.2.1     pkt_mark=4   # 192.0.2.10

    # br-mr: encapsulate per CoA (ENC(N) = the action list), the failover group, decapsulate
    ENC(N) = set_field:N->pkt_mark,set_field:HA->tun_ipv6_dst,set_field:100->tun_id,output:10
             (IPv4 CoA: set_field:198.51.100.1->tun_dst instead of tun_ipv6_dst)
    priority=100,in_port=3,<LAN flow chosen for CoA N>          actions=ENC(N)
    priority=50,in_port=3,ipv6,ipv6_src=<MNP>                   actions=group:1
    group_id=1,type=ff,bucket=watch_port:1,actions=ENC(1),bucket=watch_port:2,actions=ENC(3)
      (or type=select,bucket=weight:W,watch_port:<uplink>,actions=ENC(N),...: OVS also
       skips dead buckets of select groups)
    priority=100,in_port=10,ipv6,tun_ipv6_dst=<CoA>  actions=set_field:<mr mac>->eth_src,
                                  set_field:<lan mac>->eth_dst,output:3     # per-CoA counter
    priority=100,in_port=10,ipv6,tun_dst=192.0.2.10  actions=(same)
    priority=10,in_port=1,actions=output:21    priority=10,in_port=21,actions=output:1
    priority=10,in_port=2,actions=output:22    priority=10,in_port=22,actions=output:2
    # br-upN: pin the outer source per CoA (and count), hand GRE for a CoA to LOCAL
    priority=200,in_port=LOCAL,pkt_mark=N,ipv6,nw_proto=47 actions=set_field:<CoA N>->ipv6_src,output:1
    priority=200,in_port=LOCAL,pkt_mark=4,ip,nw_proto=47   actions=set_field:192.0.2.10->nw_src,output:1
    priority=100,in_port=1,ipv6,nw_proto=47,ipv6_dst=<CoA> actions=LOCAL   # tnl_pop happens here
    priority=10,in_port=1,actions=LOCAL        priority=10,in_port=LOCAL,actions=output:1

How a packet goes: the LAN flow (or the group bucket) sets ``pkt_mark`` and the tunnel
metadata and outputs to ``gre0``; native tunnelling looks up the route for the HA *with
that pkt_mark*, which names the output bridge ``br-upN`` and the gateway (its MAC comes
from ``tnl/neigh``, learnt by snooping the kernel's ND/ARP); the encapsulated packet enters
``br-upN`` at LOCAL with ``pkt_mark`` kept, the mark flow writes the CoA as outer source,
the patch port takes it to ``br-mr`` and out of ``upN``. Downstream, GRE to a CoA comes in
on ``upN``, crosses the patch, and its output to ``br-upN``'s LOCAL (the port holding the
CoA) becomes ``tnl_pop``; the inner packet reappears on ``gre0`` with ``tun_ipv6_dst``
(``tun_dst``) = the CoA, which the per-CoA flows count and deliver to the LAN.

What did not work, and why (OVS 3.1.0 as shipped by Debian 12)
==============================================================
* ``ovs/route/add`` has no ``src=`` in 3.1 (``"ovs/route/add" command takes at most 4
  arguments``; syntax ``ip/plen out_br [gw] [pkt_mark=N]``; ``src=`` came in later
  releases). The route's source is chosen once, at insertion, as the address of the output
  bridge with the longest prefix covering the destination, else the gateway; with two CoAs
  in one prefix that is whichever the kernel lists first (here the one added last), so
  marks 1 and 2 both get ``SRC 2001:db8:a::101``. Hence the per-mark ``set_field`` of the
  outer ``ipv6_src`` in ``br-upN`` (GRE has no checksum over the outer header, so the
  rewrite is safe; ``ofproto/trace`` shows ``tnl_push(...src=a::101...)`` then
  ``set(ipv6(src=2001:db8:a::100))``). The route can only be added once an address that
  covers the gateway is on the bridge (else "Error while inserting route"), user routes are
  not stored in the database (re-add them after an ovs-vswitchd restart) and survive kernel
  route changes; marked packets without a route of their mark are dropped ("native tunnel
  routing failed"): there is no fallback to the unmarked routes.
* ``set_field:<CoA>->tun_ipv6_src`` is ignored for the outer IPv6 source in 3.1.0, with
  or without ``options:local_ip=flow``; a fixed ``options:local_ip=<CoA>`` is ignored too,
  and worse, the flow metadata then claims the configured source while the datapath pushes
  the route's source (trace: ``br-up1`` matched ``ipv6_src=a::100`` but ``tnl_push`` used
  ``a::101``). Upstream fix: "ofproto-dpif-xlate: Fix ignoring IPv6 local_ip for native
  tunnels" (in 3.1.5, 3.4+). Even then the source only has to be local: the output bridge
  still comes from the route (pkt_mark + destination). An IPv4 ``tun_src`` with
  ``local_ip=flow`` is honoured in 3.1.
* Without a mark the tunnel uses OVS's copy of the kernel routes, which ignores metrics and
  tables: with two kernel default routes (metric 100 via ISP1, 200 via ISP2) OVS kept the
  *last* one dumped (``::/0 dev br-up2``); default routes of policy tables land there too.
* Separate uplink bridges with the uplink veth inside (``br-upN`` = ``upN`` + LOCAL, and
  ``br-lan`` = ``lan0`` + ``gre0``) carry data just as well (per-mark routes, same flows),
  but no bucket in ``br-lan`` can watch an uplink: ``watch_port`` must be a port of the
  group's bridge, patch ports stay LIVE when the far bridge's port goes down, and the
  tunnel port is always live. Failover then needs the agent (numbers below).
* BFD on fixed-remote GRE ports per CoA (``remote_ip=HA local_ip=<CoA> key=1N``, peers on
  the HA with ``remote_ip=<CoA>``): only the session whose CoA equals the source of the
  *unmarked* route to the HA came up (b::100 here); a::100 and a::101 stayed down: their
  BFD packets were sent with that route's source out of that route's bridge (BFD packets
  carry no pkt_mark), so they reached the HA as another CoA's traffic. A fast-failover
  group can watch such ports (a BFD port's liveness follows its session), but with one HA
  address BFD cannot probe per uplink in 3.1; with the upstream fix the source would be
  right but the path still the unmarked route's, so per-uplink BFD would need one HA
  address per uplink (a /128 route each).
* The kernel does not see an uplink failure: its interfaces are ``br-upN`` (OVS internal
  ports, always up); ``upN`` is owned by OVS. Do not take ``br-upN`` down to signal it:
  Linux flushes global IPv6 addresses of an interface set admin down.

Signalling (BUs from a raw socket, source = CoA X, must leave via X's uplink)
=============================================================================
Yes, the kernel needs source-based routing (main table: ``default via 2001:db8:a::1 dev
br-up1 metric 100`` and ``default via 2001:db8:b::1 dev br-up2 metric 200``)::

    ip -6 rule add from 2001:db8:a::100 table 101
    ip -6 rule add from 2001:db8:a::101 table 101
    ip -6 rule add from 2001:db8:b::100 table 102
    ip -6 route add default via 2001:db8:a::1 dev br-up1 table 101
    ip -6 route add default via 2001:db8:b::1 dev br-up2 table 102

(source-specific routes, ``ip -6 route add default from 2001:db8:b::/64 via 2001:db8:b::1
dev br-up2``, work as well). The ``socket(AF_INET6, SOCK_RAW, IPPROTO_RAW)`` must be
``bind()``-ed to the CoA: the kernel routes by the socket's source, not by the source in
the written header, so an unbound socket writing ``src=b::100`` follows the main table
and leaves through ISP1. The IPv4 CoA (DSMIPv6, UDP 4191) has only one uplink here.
The kernel's own packets reach the uplinks through ``br-upN`` -> patch -> ``upN``.

Failover (LAN -> CN UDP stream, 1 probe/ms, ``up1`` set down in the MR namespace by
netlink; times from that call; 2 cores, Python sender and receiver; 6 runs of this module)
==========================================================================================
=========================================  =======  ===========  ==========================
reaction                                   lost     outage       group changed after down
=========================================  =======  ===========  ==========================
native: ff group, ``watch_port`` = uplink  1-11     5-12 ms      (no agent needed)
agent: pyroute2 event + ``ovs-ofctl``      20-34    21-36 ms     21-36 ms (event: 1.4-2.5 ms)
agent: event + GROUP_MOD + barrier on an   0-9      4.5-10 ms    2.3-5.8 ms
already open OpenFlow connection
=========================================  =======  ===========  ==========================

(outage: last probe before the hole to the first after it; with no loss, the largest
inter-arrival gap just after the link went down.) ``ovs-ofctl`` costs a process start
(~20-30 ms under load); the netlink event itself arrives within ~2 ms. The native path
needs no agent and also catches carrier loss from the far side (``ip -n isp1 link set mr
down`` gave port state ``LINK_DOWN`` and 8 lost probes). A ``type=select`` group with
``watch_port`` on the uplinks failed over the same way (checked by hand: OVS skips dead
buckets of select groups too). Failures beyond the first hop are invisible to both (no
per-uplink BFD, see above): the agent must probe those itself.

What the MR agent does at each event (OVS operations)
=====================================================
* Start / OVS restart: bridges and patch ports as above; ``ovs/route/add`` per CoA mark
  (after the CoA is on ``br-upN``); underlay flows per mark; ``tnl/neigh/set br-upN <gw>
  <mac>`` from the kernel's neighbour table (or let OVS snoop ND/ARP); ip rules per CoA.
* CoA added on uplink N: pick a free mark, ``ovs/route/add <HA>/128 br-upN <gw>
  pkt_mark=M``, add the ``br-upN`` source-pinning flow for M and the ``in_port=1,
  ipv6_dst=<CoA>`` flow, the ``br-mr`` decapsulation flow (``tun_ipv6_dst=<CoA>``),
  ``ip -6 rule add from <CoA> table 10N``; send the BU (raw socket bound to the CoA).
* BA received (status < 128) for a CoA/BID: add its bucket to the groups
  (``mod-group``: ff buckets in BID priority order, or select buckets with weights), each
  bucket ``watch_port:<its uplink port>`` and ``ENC(M)``; a failed BA: remove it.
* Link down (OpenFlow PORT_STATUS of ``upN`` with ``LINK_DOWN``/``PORT_DOWN``, or netlink):
  nothing is urgent, OVS already skips the buckets; then ``mod-group`` to drop the dead
  buckets (so a flapping link does not pull traffic back before a BU refresh succeeds),
  and stop signalling from that uplink's CoAs. Link up: re-register (BU), and re-add the
  buckets on the BA.
* CoA address removed: GRE to it is no longer decapsulated (it goes to the kernel), but the
  marked route and the pinning flow would keep sending with the old source: remove its
  buckets (``mod-group``), ``ovs/route/del <HA>/128 pkt_mark=M``, delete its flows and its
  ip rule; have the signalling deregister that binding (BID) at the HA.

This module prints the gaps of its own run.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import re
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # when run as a helper script inside a namespace
    sys.path.insert(0, str(ROOT))

from topologies.lab import Lab  # noqa: E402
from topologies.netns import Namespace  # noqa: E402
from topologies.ovs import OvsInstance  # noqa: E402
from topologies.procs import wait_until  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.requires_root,
              pytest.mark.requires_ovs,
              pytest.mark.requires_tools("ip", "ping", "ethtool", "ovs-ofctl", "ovs-vswitchd",
                                         "ovsdb-server")]

# -- addresses and numbers ------------------------------------------------------------------
HA, HA4 = "2001:db8:ffff::1", "198.51.100.1"
CN_HOST, LAN_HOST, MNP = "2001:db8:100::10", "2001:db8:ff00:1::10", "2001:db8:ff00:1::/64"
GRE_KEY = 100
ISP1_GW, ISP2_GW, ISP2_GW4 = "2001:db8:a::1", "2001:db8:b::1", "192.0.2.1"
MAC = {"isp1": "02:00:00:00:a1:01", "isp2": "02:00:00:00:b1:01", "up1": "02:00:00:00:0a:01",
       "up2": "02:00:00:00:0b:01", "br-up1": "02:00:00:00:0a:00", "br-up2": "02:00:00:00:0b:00",
       "br-mr": "02:00:00:00:02:01", "lan": "02:00:00:00:02:10", "br-ha": "02:00:00:00:ff:01",
       "cn": "02:00:00:00:10:10"}
# br-mr ports; the underlay bridges have their patch port as 1.
UP = {"up1": 1, "up2": 2}
LAN0, GRE0, PATCH = 3, 10, {"up1": 21, "up2": 22}
HA_UP, HA_CN, HA_GRE = 1, 2, 10
FAILOVER_PORT = 7000


@dataclass(frozen=True)
class Coa:
    addr: str
    uplink: str  # "up1" / "up2"
    mark: int    # pkt_mark selecting the OVS route (and the source rewrite)
    port: int    # UDP port by which the test's LAN/CN flows choose this CoA

    @property
    def v4(self) -> bool:
        return ":" not in self.addr

    @property
    def bridge(self) -> str:
        return "br-" + self.uplink


COAS = [Coa("2001:db8:a::100", "up1", 1, 5001), Coa("2001:db8:a::101", "up1", 2, 5002),
        Coa("2001:db8:b::100", "up2", 3, 5003), Coa("192.0.2.10", "up2", 4, 5004)]
PRIMARY, BACKUP = COAS[0], COAS[2]
GATEWAY = {"up1": ISP1_GW, "up2": ISP2_GW}


def encap(coa: Coa) -> str:
    """Actions of the LAN side that send a packet to the HA over ``coa``."""
    dst = f"set_field:{HA4}->tun_dst" if coa.v4 else f"set_field:{HA}->tun_ipv6_dst"
    return f"set_field:{coa.mark}->pkt_mark,{dst},set_field:{GRE_KEY}->tun_id,output:{GRE0}"


def group_spec(buckets: Sequence[Tuple[int, Coa]], gid: int = 1) -> str:
    """A fast-failover group; each bucket is (watch_port, CoA)."""
    return f"group_id={gid},type=ff," + ",".join(
        f"bucket=watch_port:{port},actions={encap(coa)}" for port, coa in buckets)


NATIVE_GROUP = group_spec([(UP[PRIMARY.uplink], PRIMARY), (UP[BACKUP.uplink], BACKUP)])
AGENT_GROUP = group_spec([(GRE0, PRIMARY), (GRE0, BACKUP)])  # tunnel port: always live
AGENT_NEW_GROUP = group_spec([(GRE0, BACKUP)])


# ============================================================================================
# The lab
# ============================================================================================
class MrLab:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        ns = {n: lab.namespace(n) for n in ("lan", "mr", "isp1", "isp2", "core", "ha", "cn")}
        self.ns = ns
        self.mr, self.lan, self.cn, self.ha = ns["mr"], ns["lan"], ns["cn"], ns["ha"]
        self.isp = {"up1": ns["isp1"], "up2": ns["isp2"]}
        lab.veth(ns["mr"], "up1", ns["isp1"], "mr", a_mac=MAC["up1"], b_mac=MAC["isp1"])
        lab.veth(ns["mr"], "up2", ns["isp2"], "mr", a_mac=MAC["up2"], b_mac=MAC["isp2"])
        lab.veth(ns["isp1"], "core", ns["core"], "isp1")
        lab.veth(ns["isp2"], "core", ns["core"], "isp2")
        lab.veth(ns["ha"], "up0", ns["core"], "ha")
        lab.veth(ns["cn"], "eth0", ns["ha"], "cn0", a_mac=MAC["cn"])
        lab.veth(ns["lan"], "eth0", ns["mr"], "lan0", a_mac=MAC["lan"])
        for node, devs in ((self.mr, ("up1", "up2", "lan0")), (self.ha, ("up0", "cn0"))):
            for dev in devs:  # OVS owns these: keep the kernel off them
                node.sysctl(f"net.ipv6.conf.{dev}.disable_ipv6", "1")
        self._routers()
        self._hosts()
        self.ha_ovs = self._ha()
        self.mr_ovs = self._mr()
        self._warm_up()

    # -- plain routers and hosts ---------------------------------------------------------------
    def _routers(self) -> None:
        i1, i2, core = self.ns["isp1"], self.ns["isp2"], self.ns["core"]
        for node in (i1, i2, core):
            node.enable_forwarding()
        i1.add_addr("mr", f"{ISP1_GW}/64")
        i1.add_addr("core", "2001:db8:e1::1/64")
        i1.add_route("default", via="2001:db8:e1::2")
        i2.add_addr("mr", f"{ISP2_GW}/64")
        i2.add_addr("mr", f"{ISP2_GW4}/24")
        i2.add_addr("core", "2001:db8:e2::1/64")
        i2.add_addr("core", "198.18.2.1/24")
        i2.add_route("default", via="2001:db8:e2::2")
        i2.add_route("default", via="198.18.2.2")
        for dev, cidr in (("isp1", "2001:db8:e1::2/64"), ("isp2", "2001:db8:e2::2/64"),
                          ("isp2", "198.18.2.2/24"), ("ha", "2001:db8:ffff::fe/64"),
                          ("ha", "198.51.100.254/24")):
            core.add_addr(dev, cidr)
        core.add_route("2001:db8:a::/64", via="2001:db8:e1::1")
        core.add_route("2001:db8:b::/64", via="2001:db8:e2::1")
        core.add_route("192.0.2.0/24", via="198.18.2.1")

    def _hosts(self) -> None:
        for host, addr, gw_mac in ((self.cn, CN_HOST, MAC["br-ha"]),
                                   (self.lan, LAN_HOST, MAC["br-mr"])):
            host.add_addr("eth0", f"{addr}/64")
            host.add_neigh("fe80::1", gw_mac, "eth0")
            host.add_route("default", via="fe80::1", dev="eth0")

    # -- the HA: decapsulate (count per outer source) and encapsulate per UDP port -------------
    def _ha(self) -> OvsInstance:
        ovs = self.lab.ovs(self.ha)
        ovs.add_bridge("br-ha", secure=True, hwaddr=MAC["br-ha"])
        ovs.add_port("br-ha", "up0", ofport=HA_UP)
        ovs.add_port("br-ha", "cn0", ofport=HA_CN)
        ovs.add_gre_port("br-ha", "gre0", ofport=HA_GRE)
        self.ha.add_addr("br-ha", f"{HA}/64")
        self.ha.add_addr("br-ha", f"{HA4}/24")
        self.ha.add_route("default", via="2001:db8:ffff::fe")
        self.ha.add_route("default", via="198.51.100.254")
        to_cn = f"set_field:{MAC['br-ha']}->eth_src,set_field:{MAC['cn']}->eth_dst,output:{HA_CN}"
        flows = [f"priority=10,in_port={HA_UP},actions=LOCAL",
                 f"priority=10,in_port=LOCAL,actions=output:{HA_UP}",
                 f"priority=50,in_port={HA_GRE},ipv6,actions={to_cn}"]
        for coa in COAS:
            src = f"tun_src={coa.addr}" if coa.v4 else f"tun_ipv6_src={coa.addr}"
            dst = f"tun_dst={coa.addr}" if coa.v4 else f"tun_ipv6_dst={coa.addr}"
            flows += [f"priority=100,in_port={HA_GRE},ipv6,{src},actions={to_cn}",
                      f"priority=100,in_port={HA_CN},udp6,tp_dst={coa.port},"
                      f"actions=set_field:{coa.addr}->{dst.split('=')[0]},"
                      f"set_field:{GRE_KEY}->tun_id,output:{HA_GRE}"]
        ovs.add_flows("br-ha", flows)
        return ovs

    # -- the MR: the design of the module docstring ---------------------------------------------
    def _mr(self) -> OvsInstance:
        ovs, mr = self.lab.ovs(self.mr), self.mr
        ovs.add_bridge("br-mr", secure=True, hwaddr=MAC["br-mr"])
        for uplink, port in UP.items():
            ovs.add_port("br-mr", uplink, ofport=port)
        ovs.add_port("br-mr", "lan0", ofport=LAN0)
        ovs.add_gre_port("br-mr", "gre0", ofport=GRE0)
        for uplink in UP:
            n = uplink[-1]
            ovs.add_bridge(f"br-{uplink}", secure=True, hwaddr=MAC[f"br-{uplink}"])
            ovs.add_patch_pair("br-mr", f"pup{n}", f"br-{uplink}", f"pmr{n}",
                               ofport_a=PATCH[uplink], ofport_b=1)
        for coa in COAS:
            mr.add_addr(coa.bridge, f"{coa.addr}/{24 if coa.v4 else 64}")
        # Kernel routes: both defaults in main, source-based tables for the signalling.
        for uplink, metric in (("up1", "100"), ("up2", "200")):
            mr.run("ip", "-6", "route", "add", "default", "via", GATEWAY[uplink],
                   "dev", f"br-{uplink}", "metric", metric)
        mr.add_route("default", via=ISP2_GW4)
        for coa in COAS:
            if not coa.v4:
                table = str(100 + int(coa.uplink[-1]))
                mr.run("ip", "-6", "rule", "add", "from", coa.addr, "table", table)
        for uplink in UP:
            mr.run("ip", "-6", "route", "add", "default", "via", GATEWAY[uplink], "dev",
                   f"br-{uplink}", "table", str(100 + int(uplink[-1])))

        to_lan = f"set_field:{MAC['br-mr']}->eth_src,set_field:{MAC['lan']}->eth_dst,output:{LAN0}"
        flows = []
        for uplink, port in UP.items():
            flows += [f"priority=10,in_port={port},actions=output:{PATCH[uplink]}",
                      f"priority=10,in_port={PATCH[uplink]},actions=output:{port}"]
        for coa in COAS:
            tun = f"tun_dst={coa.addr}" if coa.v4 else f"tun_ipv6_dst={coa.addr}"
            flows += [f"priority=100,in_port={LAN0},udp6,tp_dst={coa.port},actions={encap(coa)}",
                      f"priority=100,in_port={GRE0},ipv6,{tun},actions={to_lan}"]
        flows += [f"priority=100,in_port={LAN0},udp6,tp_dst={FAILOVER_PORT},actions=group:1",
                  f"priority=50,in_port={LAN0},ipv6,ipv6_src={MNP},actions=group:1"]
        ovs.ofctl("add-group", "br-mr", NATIVE_GROUP)
        ovs.add_flows("br-mr", flows)
        for uplink in UP:
            under = ["priority=10,in_port=1,actions=LOCAL",
                     "priority=10,in_port=LOCAL,actions=output:1"]
            for coa in (c for c in COAS if c.uplink == uplink):
                l3, src, dst = (("ip", "nw_src", "nw_dst") if coa.v4
                                else ("ipv6", "ipv6_src", "ipv6_dst"))
                under += [f"priority=200,in_port=LOCAL,pkt_mark={coa.mark},{l3},nw_proto=47,"
                          f"actions=set_field:{coa.addr}->{src},output:1",
                          f"priority=100,in_port=1,{l3},nw_proto=47,{dst}={coa.addr},actions=LOCAL"]
            ovs.add_flows(f"br-{uplink}", under)
        for coa in COAS:
            dst, gw = (f"{HA4}/32", ISP2_GW4) if coa.v4 else (f"{HA}/128", GATEWAY[coa.uplink])
            out = ovs.appctl("ovs/route/add", dst, coa.bridge, gw, f"pkt_mark={coa.mark}")
            assert out.strip() == "OK", out
        return ovs

    def _warm_up(self) -> None:
        """Resolve the next hops (OVS snoops the kernel's ND/ARP replies into tnl/neigh)."""
        for gw in (ISP1_GW, ISP2_GW, ISP2_GW4):
            self.mr.run("ping", "-c", "1", "-W", "2", gw, timeout=10)
        for gw in ("2001:db8:ffff::fe", "198.51.100.254"):
            self.ha.run("ping", "-c", "1", "-W", "2", gw, timeout=10)
        gateways = (ISP1_GW, ISP2_GW, ISP2_GW4)
        wait_until(lambda: all(gw in self.mr_ovs.tnl_neigh_show() for gw in gateways),
                   5, "the MR's OVS to learn its gateways")

    # -- helpers -----------------------------------------------------------------------------------
    def tool(self, ns: Namespace, *args: object, **kwargs: object) -> subprocess.Popen:
        """Start one of this module's helper commands in ``ns``; waits for its READY line."""
        proc = self.lab.popen(ns, "env", f"PYTHONPATH={ROOT}", sys.executable, "-m",
                              "tests.integration.test_mr_dataplane", *map(str, args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
        line = proc.stdout.readline().decode()
        assert line.strip() == "READY", f"{args[0]} did not start: {line!r} {proc.stderr.read()!r}"
        return proc

    def run_tool(self, ns: Namespace, *args: object) -> str:
        return ns.run("env", f"PYTHONPATH={ROOT}", sys.executable, "-m",
                      "tests.integration.test_mr_dataplane", *map(str, args), timeout=30).stdout

    @staticmethod
    def result(proc: subprocess.Popen, timeout: float = 15) -> object:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err.decode()
        return json.loads(out.decode().strip().splitlines()[-1])

    def sniff_isps(self, seconds: float) -> Dict[str, subprocess.Popen]:
        return {up: self.tool(self.isp[up], "sniff", "mr", seconds) for up in UP}

    def counter(self, ovs: OvsInstance, bridge: str, pattern: str) -> int:
        total = 0
        for line in ovs.dump_flows(bridge):
            if re.search(pattern, line):
                total += int(re.search(r"n_packets=(\d+)", line).group(1))
        return total

    def wait_counter(self, ovs: OvsInstance, bridge: str, pattern: str, at_least: int) -> int:
        """Flow statistics of the userspace datapath lag up to a second: poll."""
        wait_until(lambda: self.counter(ovs, bridge, pattern) >= at_least, 5,
                   f"{bridge} flow /{pattern}/ to count {at_least} packets")
        return self.counter(ovs, bridge, pattern)


@pytest.fixture(scope="module")
def mrlab() -> Iterator[MrLab]:
    with Lab() as lab:
        yield MrLab(lab)


def _mark_flow(coa: Coa) -> str:
    return rf"pkt_mark=0x{coa.mark:x},"


# ============================================================================================
# Tests
# ============================================================================================
def test_routes_per_mark_name_the_uplink_bridge(mrlab: MrLab) -> None:
    routes = mrlab.mr_ovs.route_show()
    print(routes)
    for coa in COAS:
        dst = f"{HA4}/32" if coa.v4 else f"{HA}/128"
        route = rf"User: {re.escape(dst)} MARK {coa.mark} dev {coa.bridge} "
        assert re.search(route, routes), routes
    for coa in COAS:
        dst = HA4 if coa.v4 else HA
        found = mrlab.mr_ovs.appctl("ovs/route/lookup", dst, f"pkt_mark={coa.mark}")
        assert f"dev {coa.bridge}" in found, found


def test_upstream_leaves_through_the_coas_uplink_with_the_coa_as_source(mrlab: MrLab) -> None:
    count = 5
    def at_ha(coa: Coa) -> str:
        return rf"tun_(ipv6_)?src={re.escape(coa.addr)},"

    ha_before = {c.addr: mrlab.counter(mrlab.ha_ovs, "br-ha", at_ha(c)) for c in COAS}
    sniffers = mrlab.sniff_isps(1.5)
    mrlab.run_tool(mrlab.lan, "send", CN_HOST, ",".join(str(c.port) for c in COAS), count, 0.005)
    seen = {up: mrlab.result(proc) for up, proc in sniffers.items()}
    print("GRE seen by the ISPs (outer source -> packets):", seen)
    for coa in COAS:
        other = "up2" if coa.uplink == "up1" else "up1"
        assert seen[coa.uplink].get(f"47 {coa.addr}", 0) == count, (coa, seen)
        assert f"47 {coa.addr}" not in seen[other], (coa, seen)
        # the HA saw it with that outer source, and the MR counted it on its mark flow
        mrlab.wait_counter(mrlab.ha_ovs, "br-ha", at_ha(coa), ha_before[coa.addr] + count)
        assert mrlab.counter(mrlab.mr_ovs, coa.bridge, _mark_flow(coa)) >= count


def test_downstream_is_decapsulated_per_coa_and_delivered(mrlab: MrLab) -> None:
    count = 5
    ports = ",".join(str(c.port) for c in COAS)
    receiver = mrlab.tool(mrlab.lan, "recv", ports, 2.0)
    mrlab.run_tool(mrlab.cn, "send", LAN_HOST, ports, count, 0.005)
    got = mrlab.result(receiver)
    print("LAN host received per UDP port:", got)
    for coa in COAS:
        assert got.get(str(coa.port), 0) == count, (coa, got)
        esc = re.escape(coa.addr)
        # arrived on its uplink (underlay bridge of that uplink), decapsulated per CoA
        mrlab.wait_counter(mrlab.mr_ovs, coa.bridge, rf"(ipv6|nw)_dst={esc},nw_proto=47", count)
        mrlab.wait_counter(mrlab.mr_ovs, "br-mr", rf"tun_(ipv6_)?dst={esc}\b", count)


def test_signalling_needs_source_rules_and_a_bound_raw_socket(mrlab: MrLab) -> None:
    sniffers = mrlab.sniff_isps(1.2)
    mrlab.run_tool(mrlab.mr, "bu", HA, f"{COAS[1].addr},1,bind", f"{COAS[2].addr},2,bind",
                   f"{COAS[2].addr},3,nobind")
    seen = {up: mrlab.result(proc) for up, proc in sniffers.items()}
    print("Mobility Header packets seen by the ISPs:", seen)
    a101, b100 = COAS[1].addr, COAS[2].addr
    assert seen["up1"].get(f"135 {a101} seq=1") == 1 and f"135 {a101} seq=1" not in seen["up2"]
    assert seen["up2"].get(f"135 {b100} seq=2") == 1 and f"135 {b100} seq=2" not in seen["up1"]
    # Unbound: the source rule does not apply, the main table sends it to the wrong ISP.
    assert seen["up1"].get(f"135 {b100} seq=3") == 1, seen
    # the kernel's policy tables left OVS's marked routes alone
    assert len(re.findall(r"User: .* MARK", mrlab.mr_ovs.route_show())) == len(COAS)


def _failover_run(mrlab: MrLab, label: str,
                  watcher_args: Optional[List[object]]) -> Dict[str, float]:
    from pyroute2 import NetNS

    duration, interval, down_at = 1.6, 0.001, 0.6
    primary_before = mrlab.counter(mrlab.mr_ovs, "br-up1", _mark_flow(PRIMARY))
    backup_before = mrlab.counter(mrlab.mr_ovs, "br-up2", _mark_flow(BACKUP))
    receiver = mrlab.tool(mrlab.cn, "probe-recv", FAILOVER_PORT, duration + 1.2)
    watcher = mrlab.tool(mrlab.mr, *watcher_args) if watcher_args else None
    sender = mrlab.tool(mrlab.lan, "probe-send", CN_HOST, FAILOVER_PORT, duration, interval)
    netns = NetNS(mrlab.mr.name)
    try:
        index = netns.link_lookup(ifname="up1")[0]
        time.sleep(down_at)
        t_down = time.time()
        netns.link("set", index=index, state="down")
        sent = mrlab.result(sender)["sent"]
        got = {int(seq): t for seq, t in mrlab.result(receiver)}
        reaction = mrlab.result(watcher) if watcher else None
    finally:
        netns.link("set", index=netns.link_lookup(ifname="up1")[0], state="up")
        netns.close()
    stats = _gap(got, sent, t_down)
    stats["label"] = label
    if reaction:
        stats["event_ms"] = (reaction["event"] - t_down) * 1000
        stats["applied_ms"] = (reaction["done"] - t_down) * 1000
    print("failover %-28s sent %d, received %d, lost %d, outage %.1f ms, resumed %.1f ms after "
          "link down%s" % (label, sent, len(got), stats["lost"], stats["outage_ms"],
                            stats["resumed_ms"],
                            ", reaction: event %.1f ms, group changed %.1f ms" %
                            (stats["event_ms"], stats["applied_ms"]) if reaction else ""))
    # traffic resumed and went through the other uplink; nothing lost at the end
    assert any(t > t_down + 0.05 for t in got.values()), stats
    assert all(seq in got for seq in range(sent - 100, sent)), stats
    mrlab.wait_counter(mrlab.mr_ovs, "br-up1", _mark_flow(PRIMARY), primary_before + 100)
    mrlab.wait_counter(mrlab.mr_ovs, "br-up2", _mark_flow(BACKUP), backup_before + 100)
    wait_until(lambda: re.search(r"\(up1\):.*?state:\s+LIVE", mrlab.mr_ovs.ofctl(
        "dump-ports-desc", "br-mr"), re.S) is not None, 5, "up1 to be live again")
    return stats


def _gap(got: Dict[int, float], sent: int, t_down: float) -> Dict[str, float]:
    """Loss, outage (last probe before the hole to first after) and recovery time."""
    assert got, "no probe arrived at all"
    missing = sorted(set(range(min(got), max(got))) - set(got))
    if missing:
        last = max(s for s in got if s < missing[0])
        first = min(s for s in got if s > missing[-1])
        return {"lost": sent - len(got), "outage_ms": (got[first] - got[last]) * 1000,
                "resumed_ms": (got[first] - t_down) * 1000}
    times = sorted(got.values())
    window = [(b - a, b) for a, b in zip(times, times[1:]) if t_down - 0.005 < b < t_down + 0.05]
    gap, at = max(window) if window else (0.0, t_down)
    return {"lost": sent - len(got), "outage_ms": gap * 1000,
            "resumed_ms": max(0.0, at - t_down) * 1000}


def test_failover_after_uplink_down(mrlab: MrLab) -> None:
    pytest.importorskip("pyroute2")
    mgmt = str(mrlab.mr_ovs.mgmt_socket("br-mr"))
    results = []
    # 1. OVS alone: the fast-failover buckets watch the uplink ports.
    mrlab.mr_ovs.ofctl("mod-group", "br-mr", NATIVE_GROUP)
    results.append(_failover_run(mrlab, "native ff (watch uplink)", None))
    # 2. The agent: netlink event -> ovs-ofctl mod-group (buckets watch the tunnel port).
    mrlab.mr_ovs.ofctl("mod-group", "br-mr", AGENT_GROUP)
    cmd = ["ovs-ofctl", "-O", "OpenFlow13", "mod-group", f"unix:{mgmt}", AGENT_NEW_GROUP]
    results.append(_failover_run(mrlab, "agent + ovs-ofctl", ["watch", "up1", json.dumps(cmd)]))
    # 3. The agent with an open OpenFlow connection (how an os-ken agent would do it).
    try:
        message = _group_mod_bytes(BACKUP)
    except ImportError:
        print("os-ken missing: skipping the open-connection variant")
    else:
        mrlab.mr_ovs.ofctl("mod-group", "br-mr", AGENT_GROUP)
        results.append(_failover_run(mrlab, "agent + open OF connection",
                                     ["watch-of", "up1", mgmt, message.hex()]))
    mrlab.mr_ovs.ofctl("mod-group", "br-mr", NATIVE_GROUP)
    print("failover summary:", json.dumps(results, indent=1))


def _group_mod_bytes(coa: Coa) -> bytes:
    """OFPT_GROUP_MOD (OpenFlow 1.3, modify group 1) to the single bucket ``coa``, by os-ken."""
    from os_ken.ofproto import ofproto_v1_3 as ofp
    from os_ken.ofproto import ofproto_v1_3_parser as parser

    class Datapath:  # what the message encoder needs from a datapath
        ofproto, ofproto_parser, id = ofp, parser, 0

    actions = [parser.OFPActionSetField(pkt_mark=coa.mark),
               parser.OFPActionSetField(tun_ipv6_dst=HA),
               parser.OFPActionSetField(tunnel_id=GRE_KEY), parser.OFPActionOutput(GRE0)]
    msg = parser.OFPGroupMod(Datapath(), ofp.OFPGC_MODIFY, ofp.OFPGT_FF, 1,
                             [parser.OFPBucket(watch_port=GRE0, actions=actions)])
    msg.set_xid(7)
    msg.serialize()
    return bytes(msg.buf)


# ============================================================================================
# Helper commands, run inside the namespaces: python -m tests.integration.test_mr_dataplane CMD
# ============================================================================================
def _ready() -> None:
    print("READY", flush=True)


def cmd_send(dst: str, ports: str, count: str, gap: str) -> None:
    """Send ``count`` UDP datagrams to each port (interleaved)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        for i in range(int(count)):
            for port in ports.split(","):
                s.sendto(b"nemo %d" % i, (dst, int(port)))
            time.sleep(float(gap))


def cmd_recv(ports: str, seconds: str) -> None:
    """Count UDP datagrams per port for ``seconds``; print {port: count}."""
    import selectors
    sel = selectors.DefaultSelector()
    for port in ports.split(","):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::", int(port)))
        sel.register(s, selectors.EVENT_READ, port)
    counts: Dict[str, int] = collections.Counter()
    end = time.time() + float(seconds)
    _ready()
    while time.time() < end:
        for key, _ in sel.select(0.05):
            key.fileobj.recv(2048)
            counts[key.data] += 1
    print(json.dumps(counts))


def cmd_sniff(dev: str, seconds: str) -> None:
    """Count received IP packets on ``dev`` by "proto source" (MH: also its sequence number)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((dev, 0))
    s.settimeout(0.05)
    counts: Dict[str, int] = collections.Counter()
    end = time.time() + float(seconds)
    _ready()
    while time.time() < end:
        try:
            frame, addr = s.recvfrom(4096)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        ethertype = int.from_bytes(frame[12:14], "big")
        if ethertype == 0x86DD:
            proto, src = frame[20], str(ipaddress.IPv6Address(frame[22:38]))
            key = f"{proto} {src}"
            if proto == 135:
                key += " seq=%d" % int.from_bytes(frame[14 + 40 + 6:14 + 40 + 8], "big")
        elif ethertype == 0x0800:
            key = f"{frame[23]} {ipaddress.IPv4Address(frame[26:30])}"
        else:
            continue
        counts[key] += 1
    print(json.dumps(counts))


def cmd_bu(dst: str, *specs: str) -> None:
    """Binding-Update-shaped Mobility Headers through IPPROTO_RAW (the whole packet is written).

    Each spec is ``source,sequence,bind|nobind``: one new socket per packet, bound to the
    source or not.
    """
    for spec in specs:
        src, seq, mode = spec.split(",")
        mh = struct.pack("!BBBBHHHH", 59, 1, 5, 0, 0, int(seq), 0x8000, 10) + bytes(4)
        packet = struct.pack("!IHBB", 6 << 28, len(mh), 135, 64) + \
            ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + mh
        with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
            if mode == "bind":
                s.bind((src, 0))
            s.sendto(packet, (dst, 0))


def cmd_probe_send(dst: str, port: str, seconds: str, interval: str) -> None:
    """Send (seq, time) datagrams every ``interval`` seconds; print {"sent": n}."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    _ready()
    start = next_at = time.time()
    seq = 0
    while True:
        now = time.time()
        if now - start >= float(seconds):
            break
        if now >= next_at:
            s.sendto(struct.pack("!Id", seq, now), (dst, int(port)))
            seq += 1
            next_at += float(interval)
        else:
            time.sleep(min(next_at - now, 0.0005))
    print(json.dumps({"sent": seq}))


def cmd_probe_recv(port: str, seconds: str) -> None:
    """Record the arrival time of every probe; print [[seq, time], ...]."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", int(port)))
    s.settimeout(0.05)
    got = []
    end = time.time() + float(seconds)
    _ready()
    while time.time() < end:
        try:
            data = s.recv(64)
        except socket.timeout:
            continue
        got.append((struct.unpack("!I", data[:4])[0], time.time()))
    print(json.dumps(got))


def _wait_link_loss(dev: str) -> float:
    """Block until a netlink RTM_NEWLINK says ``dev`` is no longer running; return its time."""
    from pyroute2 import IPRoute

    IFF_RUNNING = 0x40
    with IPRoute() as ipr:
        ipr.bind()
        _ready()
        while True:
            for msg in ipr.get():
                if msg.get("event") == "RTM_NEWLINK" and msg.get_attr("IFLA_IFNAME") == dev \
                        and not msg["flags"] & IFF_RUNNING:
                    return time.time()


def cmd_watch(dev: str, command: str) -> None:
    """The agent's reaction, simplest form: on link loss run ``command`` (a JSON argv)."""
    event = _wait_link_loss(dev)
    subprocess.run(json.loads(command), check=True)
    print(json.dumps({"event": event, "done": time.time()}))


def cmd_watch_of(dev: str, mgmt: str, message_hex: str) -> None:
    """On link loss send a prebuilt OpenFlow message + barrier on an already open connection."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(mgmt)
    conn.sendall(struct.pack("!BBHI", 4, 0, 8, 1))  # OFPT_HELLO, OpenFlow 1.3
    conn.recv(4096)
    event = _wait_link_loss(dev)
    conn.sendall(bytes.fromhex(message_hex) + struct.pack("!BBHI", 4, 20, 8, 99))  # + BARRIER
    buf = b""
    while True:
        buf += conn.recv(4096)
        while len(buf) >= 8:
            _, kind, length, _ = struct.unpack("!BBHI", buf[:8])
            if len(buf) < length:
                break
            if kind == 1:  # OFPT_ERROR
                raise SystemExit("OpenFlow error: " + buf[:length].hex())
            if kind == 21:  # OFPT_BARRIER_REPLY
                print(json.dumps({"event": event, "done": time.time()}))
                return
            buf = buf[length:]


def main(argv: List[str]) -> None:
    commands = {"send": cmd_send, "recv": cmd_recv, "sniff": cmd_sniff, "bu": cmd_bu,
                "probe-send": cmd_probe_send, "probe-recv": cmd_probe_recv,
                "watch": cmd_watch, "watch-of": cmd_watch_of}
    commands[argv[0]](*argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
