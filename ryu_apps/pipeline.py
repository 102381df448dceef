"""Flow compiler: the OpenFlow pipeline the home agent wants, from config and bindings.

Tables (all on one bridge that holds the uplink port, the flow-based GRE port and the
LOCAL port carrying the home agent's own addresses):

=====  ==========  ==============================================================
table  name        what it matches
=====  ==========  ==============================================================
0      CLASSIFY    signalling (MH to an HA address, UDP 4191 to the HA's IPv4
                   address) -> meter -> controller; the HA's own traffic (ND, GRE
                   to its address, anything to its address) -> LOCAL; LOCAL ->
                   uplink; other IPv6 from the uplink -> DOWNSTREAM; decapsulated
                   packets from the tunnel port -> UPSTREAM; the rest is dropped
1      DOWNSTREAM  destination in an MR's prefix or its home address -> dec TTL ->
                   that MR's group (one bucket per care-of address: tunnel
                   destination + key -> GRE port); else drop (no binding)
2      UPSTREAM    liveness reflect (priority 400, :func:`reflect_flows`): GRE key of
                   an MR + outer source one of its registered CoAs + UDP to the HA
                   address and the liveness port -> back into the tunnel to that same
                   CoA with the MR's downlink key (``IN_PORT``), no controller;
                   ingress filter: GRE key of an MR + outer source one of its
                   registered CoAs + inner source in its prefixes/home address ->
                   FORWARD; same key and CoA, other inner source -> drop (spoofed
                   source); same key, other CoA -> drop (unregistered CoA); else drop
                   (unknown key)
3      FORWARD     destination of another MR -> its group; else -> next hop on the
                   uplink (MACs rewritten, TTL decremented)
=====  ==========  ==============================================================

Every drop is its own flow, so its packet counter counts that drop reason.
"""

from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

from .bindings import RouterBinding
from .config import HomeAgentConfig, MobileRouterConfig
from .flowmodel import (Bucket, Flow, Group, Meter, SwitchState, address_text,
                        canonical_action, match, prefix_value)

CLASSIFY, DOWNSTREAM, UPSTREAM, FORWARD = 0, 1, 2, 3
TABLE_NAMES = {CLASSIFY: "classify", DOWNSTREAM: "downstream", UPSTREAM: "upstream",
               FORWARD: "forward"}
ETH_IPV6, ETH_IPV4, ETH_ARP = 0x86DD, 0x0800, 0x0806
IPPROTO_ICMPV6, IPPROTO_UDP, IPPROTO_MH = 58, 17, 135
ND_NEIGHBOR_ADVERT = 136
DSMIP_PORT = 4191
OFPP_LOCAL = 0xFFFFFFFE
OFPP_IN_PORT = 0xFFFFFFF8  # OVS refuses to output a packet to its in_port by number
OFPP_CONTROLLER = 0xFFFFFFFD
NO_BUFFER = 0xFFFF
SIGNALLING_METER = 1
NEIGHBOR_METER = 2
NEIGHBOR_RATE = 100  # advertisements per second while the next hop is resolved
BASE_COOKIE = 0x4E454D4F00000000  # "NEMO" in the high half
ROUTER_COOKIE_FLAG = 0x1 << 31
#: A router's drop flows carry one of these cookie bits (group ids use the low 24), so
#: their packets can be totalled by one aggregate-stats request per reason instead of
#: reading every flow of every MR.
ROUTER_DROP_COOKIE_FLAGS: Dict[Tuple[int, int], int] = {
    (UPSTREAM, 100): 0x1 << 30,  # UPSTREAM, unregistered care-of address
    (UPSTREAM, 200): 0x1 << 29,  # UPSTREAM, spoofed inner source
}

#: Drop flows and the reason their packet counters count: (table, priority) -> reason.
DROP_REASONS: Dict[Tuple[int, int], str] = {
    (CLASSIFY, 0): "unclassified",
    (DOWNSTREAM, 0): "no binding for destination",
    (UPSTREAM, 0): "unknown GRE key",
    (UPSTREAM, 100): "unregistered care-of address",
    (UPSTREAM, 200): "spoofed inner source",
    (FORWARD, 0): "next hop unresolved",
}


@dataclass(frozen=True)
class Ports:
    """What the switch told us: port numbers and the LOCAL port's MAC address."""

    uplink: int
    tunnel: int
    local_mac: str


def allocate_group_ids(names: Iterable[str], previous: Optional[Dict[str, int]] = None
                       ) -> Dict[str, int]:
    """Group ids for MR names: CRC-32 based, collisions probed in name order.

    Ids in ``previous`` (the last allocation, kept in the state file) are kept for names
    still present, so adding a router never renumbers the live group of another one.
    """
    names = sorted(set(names))
    ids = {n: gid for n, gid in (previous or {}).items()
           if n in names and 0 < gid <= 0xFFFFFF}
    if len(set(ids.values())) != len(ids):
        ids = {}  # a damaged allocation: start afresh rather than share a group
    used = set(ids.values())
    for name in names:
        if name in ids:
            continue
        gid = zlib.crc32(name.encode()) % 0xFFFFFF + 1
        while gid in used:
            gid = gid % 0xFFFFFF + 1
        used.add(gid)
        ids[name] = gid
    return ids


def _drop(table: int, priority: int, fields: Dict, cookie: int) -> Flow:
    assert (table, priority) in DROP_REASONS
    if cookie & ROUTER_COOKIE_FLAG:
        cookie |= ROUTER_DROP_COOKIE_FLAGS[(table, priority)]
    return Flow(table, priority, match(**fields), (), cookie)


def drop_aggregates() -> Dict[str, Tuple[int, int, int]]:
    """Per drop reason of the routers' drop flows: (table, cookie, cookie mask)."""
    out = {}
    for (table, priority), flag in ROUTER_DROP_COOKIE_FLAGS.items():
        cookie = BASE_COOKIE | ROUTER_COOKIE_FLAG | flag
        out[DROP_REASONS[(table, priority)]] = (table, cookie, 0xFFFFFFFF00000000 | cookie)
    return out


def _apply(*actions) -> Tuple:
    return ("apply", tuple(canonical_action(a) for a in actions))


def compile_base(config: HomeAgentConfig, ports: Ports, next_hop_mac: Optional[str]
                 ) -> SwitchState:
    """Flows, meter and drops that do not depend on any binding."""
    state = SwitchState()
    cookie = BASE_COOKIE
    up, tun = ports.uplink, ports.tunnel
    to_controller = (("meter", SIGNALLING_METER),
                     _apply(("output", OFPP_CONTROLLER, NO_BUFFER)))
    state.meters[SIGNALLING_METER] = Meter(SIGNALLING_METER, config.limits.packet_in_rate,
                                           config.limits.packet_in_burst)
    add = state.add_flow
    for address in config.addresses:
        add(Flow(CLASSIFY, 1000, match(in_port=up, eth_type=ETH_IPV6, ip_proto=IPPROTO_MH,
                                       ipv6_dst=str(address)), to_controller, cookie))
        add(Flow(CLASSIFY, 900, match(in_port=up, eth_type=ETH_IPV6, ipv6_dst=str(address)),
                 (_apply(("output", OFPP_LOCAL)),), cookie))
    if config.ipv4_address is not None:
        add(Flow(CLASSIFY, 1000, match(in_port=up, eth_type=ETH_IPV4, ip_proto=IPPROTO_UDP,
                                       ipv4_dst=str(config.ipv4_address), udp_dst=DSMIP_PORT),
                 to_controller, cookie))
        add(Flow(CLASSIFY, 900, match(in_port=up, eth_type=ETH_IPV4,
                                      ipv4_dst=str(config.ipv4_address)),
                 (_apply(("output", OFPP_LOCAL)),), cookie))
        add(Flow(CLASSIFY, 900, match(in_port=up, eth_type=ETH_ARP),
                 (_apply(("output", OFPP_LOCAL)),), cookie))
    if next_hop_mac is None:
        # While the next hop is unresolved, advertisements to us also reach the controller
        # (through their own meter, so they cannot crowd out signalling).
        state.meters[NEIGHBOR_METER] = Meter(NEIGHBOR_METER, NEIGHBOR_RATE, NEIGHBOR_RATE)
        for address in config.addresses:
            add(Flow(CLASSIFY, 950, match(in_port=up, eth_type=ETH_IPV6,
                                          ip_proto=IPPROTO_ICMPV6,
                                          icmpv6_type=ND_NEIGHBOR_ADVERT,
                                          ipv6_dst=str(address)),
                     (("meter", NEIGHBOR_METER),
                      _apply(("output", OFPP_LOCAL), ("output", OFPP_CONTROLLER, NO_BUFFER))),
                     cookie))
    add(Flow(CLASSIFY, 900, match(in_port=up, eth_type=ETH_IPV6,
                                  ipv6_dst=("ff00::", "ff00::")),
             (_apply(("output", OFPP_LOCAL)),), cookie))
    add(Flow(CLASSIFY, 800, match(in_port=OFPP_LOCAL), (_apply(("output", up)),), cookie))
    add(Flow(CLASSIFY, 500, match(in_port=up, eth_type=ETH_IPV6),
             (("goto", DOWNSTREAM),), cookie))
    add(Flow(CLASSIFY, 500, match(in_port=tun, eth_type=ETH_IPV6),
             (("goto", UPSTREAM),), cookie))
    for address in config.addresses:
        add(Flow(FORWARD, 300, match(eth_type=ETH_IPV6, ipv6_dst=str(address)),
                 (_apply(("set_field", "eth_dst", ports.local_mac), ("output", OFPP_LOCAL)),),
                 cookie))
    add(_drop(CLASSIFY, 0, {}, cookie))
    add(_drop(DOWNSTREAM, 0, {}, cookie))
    add(_drop(UPSTREAM, 0, {}, cookie))
    if next_hop_mac is not None:
        add(Flow(FORWARD, 0, match(eth_type=ETH_IPV6),
                 (_apply(("set_field", "eth_src", ports.local_mac),
                         ("set_field", "eth_dst", next_hop_mac), ("dec_ttl",),
                         ("output", up)),), cookie))
    else:
        add(_drop(FORWARD, 0, {"eth_type": ETH_IPV6}, cookie))
    return state


def _tunnel_to(care_of) -> Tuple:
    """The set-fields that aim a tunnelled packet at ``care_of`` (group buckets, reflect).

    OVS prefers an IPv4 tunnel destination when one is set: a packet that came in over
    an IPv4 tunnel (MR to MR) still carries one, so an IPv6 destination clears it."""
    if care_of.version == 6:
        return (("set_field", "tun_ipv4_dst", "0.0.0.0"),
                ("set_field", "tun_ipv6_dst", address_text(care_of)))
    return (("set_field", "tun_ipv4_dst", address_text(care_of)),)


def reflect_flows(router: MobileRouterConfig, entry: RouterBinding, cookie: int
                  ) -> Iterable[Flow]:
    """Liveness probes: one flow per registered CoA that sends the MR's probe (UDP to the
    HA address and ``router.liveness`` port, arriving with the MR's key from that CoA)
    straight back into the tunnel to the same CoA, with the MR's downlink key.

    Answered by the switch at line rate (no controller), only for registered CoAs and
    the right key - the same check the ingress filter makes - so it cannot be used to
    reach or flood anyone else; the packet comes back unchanged (the MR's data plane
    swaps the addresses). Priority 400: above the ingress filter's accept flows (300).
    """
    if router.liveness is None:
        return
    address, port = router.liveness
    for binding in entry.care_of:
        outer = "tun_ipv6_src" if binding.care_of.version == 6 else "tun_ipv4_src"
        yield Flow(UPSTREAM, 400, match(**{
            "eth_type": ETH_IPV6, "tunnel_id": router.gre_key, outer: binding.care_of,
            "ip_proto": IPPROTO_UDP, "ipv6_dst": address, "udp_dst": port}),
            (_apply(*_tunnel_to(binding.care_of),
                    ("set_field", "tunnel_id", entry.downlink_key),
                    ("output", OFPP_IN_PORT)),), cookie)


def router_group(router: MobileRouterConfig, entry: RouterBinding, gid: int,
                 ports: Ports) -> Group:
    """One bucket per care-of address: weighted select, or fast-failover by BID-PRI."""
    bindings = sorted(entry.care_of, key=lambda b: (b.priority, b.bid))
    buckets = []
    for binding in bindings:
        actions = _tunnel_to(binding.care_of) + (("set_field", "tunnel_id", entry.downlink_key),
                                                 ("output", ports.tunnel))
        if router.policy == "priority":
            buckets.append(Bucket(actions, 0, ports.tunnel))
        else:
            buckets.append(Bucket(actions, 1))
    return Group(gid, "ff" if router.policy == "priority" else "select", tuple(buckets))


def compile_router(router: MobileRouterConfig, entry: Optional[RouterBinding], gid: int,
                   ports: Ports) -> SwitchState:
    """The flows and group of one mobile router; empty when it has no binding."""
    state = SwitchState()
    if entry is None or not entry.care_of:
        return state
    cookie = BASE_COOKIE | ROUTER_COOKIE_FLAG | gid
    state.add_group(router_group(router, entry, gid, ports))
    destinations = list(entry.prefixes) + [ipaddress.IPv6Network(entry.home_address)]
    to_group = (_apply(("dec_ttl",), ("group", gid)),)
    for net in destinations:
        for table in (DOWNSTREAM, FORWARD):
            state.add_flow(Flow(table, 100 + net.prefixlen,
                                match(eth_type=ETH_IPV6, ipv6_dst=prefix_value(net)),
                                to_group, cookie))
    key = router.gre_key
    for binding in entry.care_of:
        outer = ("tun_ipv6_src" if binding.care_of.version == 6 else "tun_ipv4_src")
        for net in destinations:
            state.add_flow(Flow(UPSTREAM, 300, match(**{
                "eth_type": ETH_IPV6, "tunnel_id": key, outer: binding.care_of,
                "ipv6_src": prefix_value(net)}), (("goto", FORWARD),), cookie))
        state.add_flow(_drop(UPSTREAM, 200, {"tunnel_id": key, outer: binding.care_of},
                             cookie))
    state.add_flow(_drop(UPSTREAM, 100, {"tunnel_id": key}, cookie))
    for flow in reflect_flows(router, entry, cookie):
        state.add_flow(flow)
    return state


def compile_all(config: HomeAgentConfig, ports: Ports, next_hop_mac: Optional[str],
                entries: Iterable[RouterBinding], group_ids: Dict[str, int]) -> SwitchState:
    """The whole desired switch state."""
    state = compile_base(config, ports, next_hop_mac)
    routers = {r.name: r for r in config.mobile_routers}
    for entry in entries:
        router = routers.get(entry.router)
        if router is not None:
            state.merge(compile_router(router, entry, group_ids[router.name], ports))
    return state


def drop_reason(flow: Flow) -> Optional[str]:
    """The drop reason a flow counts, if it is a drop flow."""
    if flow.instructions:
        return None
    return DROP_REASONS.get((flow.table, flow.priority))
