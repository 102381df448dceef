"""Topology files: load a lab topology (YAML) into a :mod:`networkx` graph, check it,
and compute the static routes of its plain routers.

A topology file (see ``topologies/fig1.yaml``) has ``nodes`` (name -> settings with a
``kind``: ``host``, ``router``, ``ha``, ``mr`` or ``bgp``) and ``links`` (each with a
``name`` and two ``ends``: ``node``, ``interface``, optional ``addresses`` and, for an
MR's LAN ports, ``bridge``). A link with an ``uplink`` section is one of an MR's uplinks
(name, priority, weight, care-of addresses); a link with ``bgp: true`` carries a BGP
session between its two ``bgp`` ends. A ``bgp`` node is a router running FRR (see
``topologies/fig2.yaml`` and :mod:`topologies.frr`): ``asn``, ``router_id`` and
``networks`` (prefixes it originates besides its connected ones, e.g. an HA site's
anycast aggregate, which it routes to the ``ha`` node on one of its links). The graph has one vertex per node (attributes ``kind`` and
``settings``) and one edge per link (attributes ``link`` and ``ends``).

Checks report every problem at once, each naming the file and the node or link::

    fig1.yaml: links[4] (mr-isp1).ends[1].addresses[0]: 2001:db9::1/64 is not in a
    documentation prefix (2001:db8::/32, 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)

Routes (:func:`router_routes`): every router gets a route to every prefix it is not
attached to, via the next hop on the shortest path (only routers forward); an MR's
prefixes (MNPs) and the home agent's home prefixes are routed towards the home agent's
address. Hosts get a default route via their link's peer (a LAN host via the MR's LAN
address); the home agent a default route via its uplink peer. ``bgp`` nodes learn their
routes over BGP; their only static routes (:func:`bgp_static_routes`) send each announced
aggregate to the HA next to them. Plain and bgp routers do not mix in one topology.

    python -m topologies.model topologies/fig1.yaml      # check, print nodes and routes
"""

from __future__ import annotations

import ipaddress
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import networkx as nx
import yaml

KINDS = ("host", "router", "ha", "mr", "bgp")
#: The only address space a lab topology may use (RFC 3849, RFC 5737).
DOCUMENTATION_PREFIXES = tuple(ipaddress.ip_network(p) for p in (
    "2001:db8::/32", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
#: Where ``load("fig1")`` looks for ``fig1.yaml``.
TOPOLOGY_DIR = Path(__file__).resolve().parent

_NODE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,14}$")
_LINK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")

_NODE_KEYS = {
    "host": {"kind", "gateway"},
    "router": {"kind"},
    "ha": {"kind", "bridge", "uplink", "address", "home_prefixes", "limits", "openflow_port"},
    "mr": {"kind", "home_agent", "home_address", "prefixes", "spi", "key", "gre_key",
           "lifetime", "policy", "ha_policy", "lan"},
    "bgp": {"kind", "asn", "router_id", "networks"},
}
_POLICIES = ("weighted", "active-backup")
_HA_POLICIES = ("weighted", "priority")

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Interface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


class TopologyError(ValueError):
    """A topology file is invalid; ``problems`` lists every problem (file: where: what)."""

    def __init__(self, problems: List[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class End:
    node: str
    interface: str
    addresses: Tuple[Interface, ...] = ()
    bridge: Optional[str] = None


@dataclass(frozen=True)
class Uplink:
    name: str
    care_of: Tuple[Address, ...]
    priority: int = 1
    weight: int = 1


@dataclass(frozen=True)
class Link:
    name: str
    ends: Tuple[End, End]
    uplink: Optional[Uplink] = None
    #: ``bgp: true``: the two (bgp) ends run an eBGP/iBGP session over this link.
    bgp: bool = False

    def end(self, node: str) -> Optional[End]:
        return next((e for e in self.ends if e.node == node), None)

    def peer(self, node: str) -> Optional[End]:
        a, b = self.ends
        return b if a.node == node else a if b.node == node else None


@dataclass(frozen=True)
class BgpSession:
    """One BGP session of a ``bgp`` node, seen from that node."""

    link: str
    interface: str
    local: Address
    peer: Address
    peer_node: str
    peer_asn: int


@dataclass(frozen=True)
class Route:
    """``ip route add <dst> via <via> dev <dev>`` in a node's namespace."""

    dst: str
    via: str
    dev: str


@dataclass
class Topology:
    name: str
    source: str
    nodes: Dict[str, Dict[str, Any]]
    links: List[Link]
    graph: "nx.Graph"
    description: str = ""
    raw: Dict[str, Any] = field(default_factory=dict)

    # -- queries ------------------------------------------------------------------
    def kind(self, node: str) -> str:
        return self.nodes[node]["kind"]

    def nodes_of(self, kind: str) -> List[str]:
        return [n for n, s in self.nodes.items() if s["kind"] == kind]

    def link(self, name: str) -> Link:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError("%s: no link named %r (links: %s)"
                       % (self.source, name, ", ".join(l.name for l in self.links)))

    def links_of(self, node: str) -> List[Link]:
        return [l for l in self.links if l.end(node) is not None]

    def uplinks(self, mr: str) -> List[Link]:
        """The MR's uplinks in file order (the agent numbers its bridges br-up1, br-up2...)."""
        return [l for l in self.links_of(mr) if l.uplink is not None]

    def ha_address(self, ha: str) -> Interface:
        return ipaddress.ip_interface(self.nodes[ha]["address"])

    def ha_next_hop(self, ha: str) -> Address:
        """The peer's address on the HA's uplink link (same family as the HA address)."""
        link = self.link(self.nodes[ha]["uplink"])
        version = self.ha_address(ha).version
        peer = link.peer(ha)
        return next(a.ip for a in peer.addresses if a.version == version)

    def uplink_gateway(self, link: Link, mr: str) -> Address:
        """The ISP router's address on an MR uplink (same family as the first CoA)."""
        version = link.uplink.care_of[0].version
        return next(a.ip for a in link.peer(mr).addresses if a.version == version)

    def all_care_of(self) -> List[str]:
        return [str(c) for mr in self.nodes_of("mr") for l in self.uplinks(mr)
                for c in l.uplink.care_of]

    def lan_hosts(self, mr: str) -> List[str]:
        """Hosts plugged into the MR's LAN bridge, in file order."""
        lan = self.nodes[mr].get("lan") or {}
        return [l.peer(mr).node for l in self.links_of(mr)
                if l.end(mr).bridge and l.end(mr).bridge == lan.get("interface")]

    def bgp_sessions(self, node: str) -> List["BgpSession"]:
        """The BGP sessions of a ``bgp`` node: one per link marked ``bgp: true``, over the
        link's IPv6 addresses (else IPv4), in file order."""
        sessions = []
        for link in self.links_of(node):
            if not link.bgp:
                continue
            mine, peer = link.end(node), link.peer(node)
            for version in (6, 4):
                local = next((a.ip for a in mine.addresses if a.version == version), None)
                remote = next((a.ip for a in peer.addresses if a.version == version), None)
                if local is not None and remote is not None:
                    sessions.append(BgpSession(link.name, mine.interface, local, remote,
                                               peer.node, self.nodes[peer.node].get("asn")))
                    break
        return sessions

    def bgp_networks(self, node: str) -> List[Network]:
        return [ipaddress.ip_network(str(p)) for p in self.nodes[node].get("networks") or []]

    def address_of(self, node: str, version: int = 6) -> Optional[Address]:
        """The node's first address of that family (an HA: its bridge address; an MR: LAN)."""
        settings = self.nodes[node]
        if settings["kind"] == "ha" and self.ha_address(node).version == version:
            return self.ha_address(node).ip
        if settings["kind"] == "mr" and settings.get("lan"):
            lan = ipaddress.ip_interface(settings["lan"]["address"])
            if lan.version == version:
                return lan.ip
        for link in self.links_of(node):
            for address in link.end(node).addresses:
                if address.version == version:
                    return address.ip
        return None


# ---------------------------------------------------------------------------------------
# loading and checking
# ---------------------------------------------------------------------------------------

def resolve(name_or_path: Union[str, Path]) -> Path:
    """``fig1`` -> ``topologies/fig1.yaml``; an existing path is returned as it is."""
    path = Path(name_or_path)
    if path.exists():
        return path
    for candidate in (TOPOLOGY_DIR / str(name_or_path), TOPOLOGY_DIR / ("%s.yaml" % name_or_path)):
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in TOPOLOGY_DIR.glob("*.yaml"))
    raise TopologyError(["%s: no such topology file or name (known names: %s)"
                         % (name_or_path, ", ".join(known) or "none")])


def load(name_or_path: Union[str, Path]) -> Topology:
    """Read, check and build a topology; raises :class:`TopologyError` with every problem."""
    path = resolve(name_or_path)
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TopologyError(["%s: not valid YAML: %s" % (path.name, exc)]) from None
    except OSError as exc:
        raise TopologyError(["%s: cannot read: %s" % (path, exc)]) from None
    return parse(tree, source=path.name)


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: List[str] = []

    def fail(self, where: str, what: str) -> None:
        self.problems.append("%s: %s: %s" % (self.source, where, what))


def _documentation(check: _Checker, where: str, value: Any) -> Optional[Interface]:
    try:
        iface = ipaddress.ip_interface(str(value))
    except ValueError:
        check.fail(where, "%r is not an address with a prefix length (like 2001:db8::1/64)"
                   % (value,))
        return None
    if not any(iface.ip in net for net in DOCUMENTATION_PREFIXES):
        check.fail(where, "%s is not in a documentation prefix (%s)"
                   % (value, ", ".join(str(n) for n in DOCUMENTATION_PREFIXES)))
    return iface


def _network(check: _Checker, where: str, value: Any) -> Optional[Network]:
    try:
        net = ipaddress.ip_network(str(value))
    except ValueError:
        check.fail(where, "%r is not a prefix without host bits (like 2001:db8:f000::/64)"
                   % (value,))
        return None
    if not any(net.subnet_of(d) for d in DOCUMENTATION_PREFIXES if d.version == net.version):
        check.fail(where, "%s is not inside a documentation prefix" % net)
    return net


def _list(check: _Checker, where: str, value: Any) -> List[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        check.fail(where, "must be a list")
        return []
    return value


def parse(tree: Any, source: str = "<topology>") -> Topology:
    """Check a parsed topology tree and build the :class:`Topology`."""
    check = _Checker(source)
    if not isinstance(tree, dict):
        raise TopologyError(["%s: the file must be a mapping with nodes and links" % source])
    for key in tree:
        if key not in ("name", "description", "nodes", "links"):
            check.fail(str(key), "unknown key (expected name, description, nodes, links)")
    raw_nodes = tree.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        check.fail("nodes", "must be a non-empty mapping of node name -> settings")
        raw_nodes = {}
    nodes: Dict[str, Dict[str, Any]] = {}
    for name, settings in raw_nodes.items():
        where = "nodes.%s" % name
        if not isinstance(name, str) or not _NODE_NAME_RE.match(name):
            check.fail(where, "node names are 1-15 of a-z 0-9 _ starting with a letter")
            continue
        if not isinstance(settings, dict):
            check.fail(where, "must be a mapping with at least 'kind'")
            continue
        kind = settings.get("kind")
        if kind not in KINDS:
            check.fail(where + ".kind", "%r is not one of %s" % (kind, ", ".join(KINDS)))
            continue
        for key in settings:
            if key not in _NODE_KEYS[kind]:
                check.fail("%s.%s" % (where, key), "unknown key for a %s node (expected %s)"
                           % (kind, ", ".join(sorted(_NODE_KEYS[kind]))))
        nodes[name] = dict(settings)

    links: List[Link] = []
    seen_links: Dict[str, int] = {}
    seen_ifaces: Dict[Tuple[str, str], str] = {}
    for index, raw in enumerate(_list(check, "links", tree.get("links"))):
        link = _parse_link(check, index, raw, nodes, seen_links, seen_ifaces)
        if link is not None:
            links.append(link)
    if not tree.get("links"):
        check.fail("links", "must be a non-empty list")

    graph = nx.Graph()
    for name, settings in nodes.items():
        graph.add_node(name, kind=settings["kind"], settings=settings)
    for link in links:
        a, b = link.ends[0].node, link.ends[1].node
        if graph.has_edge(a, b):
            check.fail("links (%s)" % link.name, "%s and %s are already connected by link %s "
                       "(parallel links are not supported)" % (a, b, graph.edges[a, b]["link"]))
            continue
        graph.add_edge(a, b, link=link.name, ends=link.ends)

    topo = Topology(str(tree.get("name") or Path(source).stem), source, nodes, links, graph,
                    str(tree.get("description") or ""), tree)
    if not check.problems:
        _check_nodes(check, topo)
    if not check.problems and nodes and not nx.is_connected(graph):
        parts = [sorted(c) for c in nx.connected_components(graph)]
        check.fail("links", "the topology is not connected: %s" % parts)
    if check.problems:
        raise TopologyError(check.problems)
    return topo


def _parse_link(check: _Checker, index: int, raw: Any, nodes: Dict[str, Dict[str, Any]],
                seen_links: Dict[str, int], seen_ifaces: Dict[Tuple[str, str], str]
                ) -> Optional[Link]:
    if not isinstance(raw, dict):
        check.fail("links[%d]" % index, "must be a mapping with name and ends")
        return None
    name = raw.get("name")
    where = "links[%d] (%s)" % (index, name)
    if not isinstance(name, str) or not _LINK_NAME_RE.match(name):
        check.fail(where + ".name", "a link needs a name of letters, digits, _ . -")
        return None
    if name in seen_links:
        check.fail(where + ".name", "%r is already the name of links[%d]" % (name, seen_links[name]))
    seen_links[name] = index
    for key in raw:
        if key not in ("name", "ends", "uplink", "bgp"):
            check.fail("%s.%s" % (where, key), "unknown key (expected name, ends, uplink, bgp)")
    if not isinstance(raw.get("bgp", False), bool):
        check.fail(where + ".bgp", "must be true or false")
    raw_ends = raw.get("ends")
    if not isinstance(raw_ends, list) or len(raw_ends) != 2:
        check.fail(where + ".ends", "a link needs exactly two ends")
        return None
    ends = []
    for i, raw_end in enumerate(raw_ends):
        ewhere = "%s.ends[%d]" % (where, i)
        if not isinstance(raw_end, dict):
            check.fail(ewhere, "must be a mapping with node and interface")
            return None
        for key in raw_end:
            if key not in ("node", "interface", "addresses", "bridge"):
                check.fail("%s.%s" % (ewhere, key),
                           "unknown key (expected node, interface, addresses, bridge)")
        node, iface = raw_end.get("node"), raw_end.get("interface")
        if node not in nodes:
            check.fail(ewhere + ".node", "%r is not a node (nodes: %s)"
                       % (node, ", ".join(nodes)))
        if not isinstance(iface, str) or not _IFNAME_RE.match(iface):
            check.fail(ewhere + ".interface", "%r is not an interface name (1-15 of "
                       "A-Z a-z 0-9 _ . -)" % (iface,))
        elif (node, iface) in seen_ifaces:
            check.fail(ewhere + ".interface", "node %s already has an interface %s (link %s)"
                       % (node, iface, seen_ifaces[(node, iface)]))
        else:
            seen_ifaces[(node, iface)] = name
        addresses = []
        for j, value in enumerate(_list(check, ewhere + ".addresses", raw_end.get("addresses"))):
            address = _documentation(check, "%s.addresses[%d]" % (ewhere, j), value)
            if address is not None:
                addresses.append(address)
        bridge = raw_end.get("bridge")
        ends.append(End(str(node), str(iface), tuple(addresses),
                        str(bridge) if bridge is not None else None))
    if ends[0].node == ends[1].node:
        check.fail(where + ".ends", "both ends are on node %s" % ends[0].node)
    uplink = None
    if raw.get("uplink") is not None:
        uplink = _parse_uplink(check, where + ".uplink", raw["uplink"])
    return Link(name, (ends[0], ends[1]), uplink, raw.get("bgp") is True)


def _parse_uplink(check: _Checker, where: str, raw: Any) -> Optional[Uplink]:
    if not isinstance(raw, dict):
        check.fail(where, "must be a mapping with name and care_of")
        return None
    for key in raw:
        if key not in ("name", "care_of", "priority", "weight"):
            check.fail("%s.%s" % (where, key), "unknown key (expected name, care_of, priority, "
                       "weight)")
    name = raw.get("name")
    if not isinstance(name, str) or not _NODE_NAME_RE.match(name):
        check.fail(where + ".name", "an uplink needs a short name (like isp1)")
    coas = []
    for j, value in enumerate(_list(check, where + ".care_of", raw.get("care_of"))):
        iface = _documentation(check, "%s.care_of[%d]" % (where, j), value)
        if iface is not None:
            if iface.network.prefixlen != iface.max_prefixlen:
                check.fail("%s.care_of[%d]" % (where, j), "give the address without a prefix "
                           "length (it takes the uplink's prefix)")
            coas.append(iface.ip)
    if not coas:
        check.fail(where + ".care_of", "needs at least one care-of address")
    priority, weight = raw.get("priority", 1), raw.get("weight", 1)
    for key, value, high in (("priority", priority, 127), ("weight", weight, 1000)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
            check.fail("%s.%s" % (where, key), "must be an integer 1..%d" % high)
    return Uplink(str(name), tuple(coas), priority, weight)


def _check_nodes(check: _Checker, topo: Topology) -> None:
    """Cross-checks between nodes and links (run once the pieces parsed)."""
    for link in topo.links:
        where = "links (%s)" % link.name
        a, b = link.ends
        for end, other in ((a, b), (b, a)):
            for address in end.addresses:
                if other.addresses and not any(o.network == address.network
                                               for o in other.addresses
                                               if o.version == address.version):
                    check.fail(where, "%s %s and %s are not on one prefix with %s"
                               % (end.node, address, other.node,
                                  ", ".join(str(o) for o in other.addresses)))
            if end.bridge is not None:
                lan = (topo.nodes[end.node].get("lan") or {}) if topo.kind(end.node) == "mr" else {}
                if end.bridge != lan.get("interface"):
                    check.fail(where, "%s end: bridge %r is not the LAN interface of an mr node"
                               % (end.node, end.bridge))
                if end.addresses:
                    check.fail(where, "%s end: a bridge port carries no addresses" % end.node)
        if link.uplink is not None:
            mr_ends = [e for e in link.ends if topo.kind(e.node) == "mr"]
            if len(mr_ends) != 1:
                check.fail(where + ".uplink", "an uplink link needs exactly one mr end")
                continue
            mr = mr_ends[0]
            peer = link.peer(mr.node)
            if mr.addresses:
                check.fail(where, "the MR end of an uplink is owned by OVS: no addresses "
                           "(the care-of addresses go on br-upN)")
            for coa in link.uplink.care_of:
                if not any(coa in p.network for p in peer.addresses if p.version == coa.version):
                    check.fail(where + ".uplink.care_of", "%s is not on a prefix of %s's end %s"
                               % (coa, peer.node, [str(p) for p in peer.addresses]))
    has = {k: topo.nodes_of(k) for k in KINDS}
    for ha in has["ha"]:
        s, where = topo.nodes[ha], "nodes.%s" % ha
        address = _documentation(check, where + ".address", s.get("address"))
        for key in ("bridge", "uplink", "home_prefixes"):
            if not s.get(key):
                check.fail("%s.%s" % (where, key), "missing (required for an ha node)")
        for j, value in enumerate(_list(check, where + ".home_prefixes", s.get("home_prefixes"))):
            _network(check, "%s.home_prefixes[%d]" % (where, j), value)
        if s.get("bridge") and not _IFNAME_RE.match(str(s["bridge"])):
            check.fail(where + ".bridge", "%r is not an interface name" % s["bridge"])
        uplink = next((l for l in topo.links if l.name == s.get("uplink")), None)
        if s.get("uplink") and uplink is None:
            check.fail(where + ".uplink", "%r is not a link" % s["uplink"])
        elif uplink is not None:
            if uplink.end(ha) is None:
                check.fail(where + ".uplink", "link %s does not end at %s" % (uplink.name, ha))
            elif address is not None and not any(
                    p.network == address.network for p in uplink.peer(ha).addresses):
                check.fail(where + ".address", "%s is not on the prefix of %s's end of link %s"
                           % (address, uplink.peer(ha).node, uplink.name))
            elif uplink.end(ha).addresses:
                check.fail("links (%s)" % uplink.name, "the HA end is an OVS port: put the HA "
                           "address in nodes.%s.address" % ha)
        for link in topo.links_of(ha):
            if link.name != s.get("uplink"):
                check.fail("links (%s)" % link.name, "an ha node has one link, its uplink")
    for mr in has["mr"]:
        s, where = topo.nodes[mr], "nodes.%s" % mr
        ha = s.get("home_agent")
        if ha not in has["ha"]:
            check.fail(where + ".home_agent", "%r is not an ha node (ha nodes: %s)"
                       % (ha, ", ".join(has["ha"]) or "none"))
        try:
            home = ipaddress.ip_address(str(s.get("home_address")))
        except ValueError:
            check.fail(where + ".home_address", "%r is not an IPv6 address"
                       % (s.get("home_address"),))
            home = None
        if home is not None and ha in has["ha"]:
            prefixes = [ipaddress.ip_network(str(p)) for p in topo.nodes[ha].get("home_prefixes") or []]
            if not any(home in p for p in prefixes):
                check.fail(where + ".home_address", "%s is not in %s's home prefixes %s"
                           % (home, ha, [str(p) for p in prefixes]))
        mnps = [n for j, v in enumerate(_list(check, where + ".prefixes", s.get("prefixes")))
                for n in [_network(check, "%s.prefixes[%d]" % (where, j), v)] if n is not None]
        if not mnps:
            check.fail(where + ".prefixes", "needs at least one mobile network prefix")
        spi = s.get("spi")
        if not isinstance(spi, int) or isinstance(spi, bool) or not 256 <= spi <= 0xFFFFFFFF:
            check.fail(where + ".spi", "must be an integer >= 256 (RFC 4285)")
        key = s.get("key")
        if not isinstance(key, str) or not re.fullmatch(r"([0-9a-fA-F]{2}){16,}", key):
            check.fail(where + ".key", "must be a quoted hex string of at least 16 octets")
        gre_key = s.get("gre_key")
        if not isinstance(gre_key, int) or isinstance(gre_key, bool) or not 1 <= gre_key <= 0xFFFFFFFF:
            check.fail(where + ".gre_key", "must be an integer 1..4294967295")
        if s.get("policy", "weighted") not in _POLICIES:
            check.fail(where + ".policy", "must be one of %s" % ", ".join(_POLICIES))
        if s.get("ha_policy", "weighted") not in _HA_POLICIES:
            check.fail(where + ".ha_policy", "must be one of %s" % ", ".join(_HA_POLICIES))
        if not topo.uplinks(mr):
            check.fail(where, "an mr node needs at least one link with an 'uplink' section")
        names = [l.uplink.name for l in topo.uplinks(mr)]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            check.fail(where, "uplink name %r is used by two links" % dup)
        lan = s.get("lan")
        if lan is not None:
            if not isinstance(lan, dict) or not lan.get("interface") or not lan.get("address"):
                check.fail(where + ".lan", "needs interface and address")
                continue
            for key in lan:
                if key not in ("interface", "address", "mtu"):
                    check.fail("%s.lan.%s" % (where, key), "unknown key (interface, address, mtu)")
            address = _documentation(check, where + ".lan.address", lan["address"])
            if address is not None and mnps and not any(address.ip in n for n in mnps):
                check.fail(where + ".lan.address", "%s is not inside the MNP(s) %s"
                           % (address, [str(n) for n in mnps]))
            mtu = lan.get("mtu", 1500)
            if not isinstance(mtu, int) or not 1280 <= mtu <= 9000:
                check.fail(where + ".lan.mtu", "must be an integer 1280..9000")
            for link in topo.links_of(mr):
                end = link.end(mr)
                if end.bridge == lan["interface"] and address is not None:
                    for host_addr in link.peer(mr).addresses:
                        if host_addr.version == address.version and host_addr.network != address.network:
                            check.fail("links (%s)" % link.name, "%s %s is not on the LAN prefix %s"
                                       % (link.peer(mr).node, host_addr, address.network))
    _check_bgp(check, topo, has)
    for host in has["host"]:
        mine = topo.links_of(host)
        if len(mine) != 1:
            check.fail("nodes.%s" % host, "a host needs exactly one link (it has %d)" % len(mine))
        elif not mine[0].end(host).addresses:
            check.fail("links (%s)" % mine[0].name, "host %s end needs an address" % host)


def _check_bgp(check: _Checker, topo: Topology, has: Dict[str, List[str]]) -> None:
    """``bgp`` nodes (FRR routers) and the links marked ``bgp: true``."""
    if has["bgp"] and has["router"]:
        check.fail("nodes", "plain routers (%s) and bgp routers (%s) do not mix: static routes "
                   "are not redistributed into BGP" % (", ".join(has["router"]),
                                                       ", ".join(has["bgp"])))
    router_ids: Dict[str, str] = {}
    for node in has["bgp"]:
        s, where = topo.nodes[node], "nodes.%s" % node
        asn = s.get("asn")
        if not isinstance(asn, int) or isinstance(asn, bool) or not 1 <= asn <= 0xFFFFFFFF:
            check.fail(where + ".asn", "must be an integer 1..4294967295 (use 64512-65534 or "
                       "4200000000-4294967294, private ASNs)")
        try:
            rid = ipaddress.IPv4Address(str(s.get("router_id")))
        except ValueError:
            check.fail(where + ".router_id", "%r is not an IPv4 address (like 192.0.2.1)"
                       % (s.get("router_id"),))
        else:
            if str(rid) in router_ids:
                check.fail(where + ".router_id", "%s is already the router-id of %s"
                           % (rid, router_ids[str(rid)]))
            router_ids[str(rid)] = node
        attached = {a.network for l in topo.links_of(node) for a in l.end(node).addresses}
        for j, value in enumerate(_list(check, where + ".networks", s.get("networks"))):
            net = _network(check, "%s.networks[%d]" % (where, j), value)
            if net is None or net in attached:
                continue
            if _ha_for_network(topo, node, net) is None:
                check.fail("%s.networks[%d]" % (where, j), "%s is neither attached nor covers the "
                           "home prefixes of an ha node on a link of %s: nothing to route it to"
                           % (net, node))
        if not topo.bgp_sessions(node) and any(l.bgp for l in topo.links_of(node)):
            check.fail(where, "its bgp links have no address family in common with the peers")
    for link in topo.links:
        if not link.bgp:
            continue
        where = "links (%s).bgp" % link.name
        kinds = [topo.kind(e.node) for e in link.ends]
        if kinds != ["bgp", "bgp"]:
            check.fail(where, "a BGP session needs two bgp nodes (the ends are %s)"
                       % " and ".join(kinds))
        elif not any(a.version == b.version for a in link.ends[0].addresses
                     for b in link.ends[1].addresses):
            check.fail(where, "the ends need addresses of one family for the session")
    for ha in has["ha"]:
        uplink = next((l for l in topo.links if l.name == topo.nodes[ha].get("uplink")), None)
        if uplink is None or uplink.peer(ha) is None or topo.kind(uplink.peer(ha).node) != "bgp":
            continue
        site = uplink.peer(ha).node
        nets = [ipaddress.ip_network(str(n)) for n in topo.nodes[site].get("networks") or []
                if _quiet_network(n)]
        routed = [str(p) for p in topo.nodes[ha].get("home_prefixes") or []]
        routed += [str(p) for mr in has["mr"] if topo.nodes[mr].get("home_agent") == ha
                   for p in topo.nodes[mr].get("prefixes") or []]
        for prefix in routed:
            net = _quiet_network(prefix)
            if net is not None and not any(net.subnet_of(n) for n in nets
                                           if n.version == net.version):
                check.fail("nodes.%s" % ha, "%s is not inside a network that %s announces (%s): "
                           "nobody would route it to the HA"
                           % (net, site, ", ".join(str(n) for n in nets) or "none"))


def _quiet_network(value: Any) -> Optional[Network]:
    try:
        return ipaddress.ip_network(str(value))
    except ValueError:
        return None


def _ha_for_network(topo: Topology, node: str, net: Network) -> Optional[str]:
    """The ha node on a link of ``node`` whose home prefixes are all inside ``net``."""
    for link in topo.links_of(node):
        peer = link.peer(node).node
        if topo.kind(peer) != "ha":
            continue
        prefixes = [_quiet_network(p) for p in topo.nodes[peer].get("home_prefixes") or []]
        if prefixes and all(p is not None and p.version == net.version and p.subnet_of(net)
                            for p in prefixes):
            return peer
    return None


# ---------------------------------------------------------------------------------------
# routes
# ---------------------------------------------------------------------------------------

def bgp_static_routes(topo: Topology) -> Dict[str, List[Route]]:
    """Kernel routes of ``bgp`` nodes: each announced network that is not attached goes to
    the HA next to the node (an HA site's aggregate); the rest is learnt over BGP."""
    routes: Dict[str, List[Route]] = {}
    for node in topo.nodes_of("bgp"):
        attached = {a.network for l in topo.links_of(node) for a in l.end(node).addresses}
        mine = []
        for net in topo.bgp_networks(node):
            ha = None if net in attached else _ha_for_network(topo, node, net)
            if ha is not None:
                hop = _via(topo, node, ha, net.version)
                if hop is not None:
                    mine.append(Route(str(net), hop.via, hop.dev))
        routes[node] = mine
    return routes


def attached_prefixes(topo: Topology) -> Dict[Network, set]:
    """Prefix -> the nodes that have an address on it (HA addresses included)."""
    attached: Dict[Network, set] = {}
    for link in topo.links:
        for end in link.ends:
            for address in end.addresses:
                attached.setdefault(address.network, set()).add(end.node)
    for ha in topo.nodes_of("ha"):
        attached.setdefault(topo.ha_address(ha).network, set()).add(ha)
    return attached


def ha_routed_prefixes(topo: Topology) -> Dict[Network, str]:
    """Prefix -> HA node, for every MNP and every home prefix."""
    routed: Dict[Network, str] = {}
    for ha in topo.nodes_of("ha"):
        for prefix in topo.nodes[ha].get("home_prefixes") or []:
            routed[ipaddress.ip_network(str(prefix))] = ha
    for mr in topo.nodes_of("mr"):
        for prefix in topo.nodes[mr].get("prefixes") or []:
            routed[ipaddress.ip_network(str(prefix))] = topo.nodes[mr]["home_agent"]
    return routed


def _via(topo: Topology, router: str, nxt: str, version: int) -> Optional[Route]:
    """Route parts for the hop ``router`` -> ``nxt`` (same link), in IP ``version``."""
    link = next(l for l in topo.links_of(router) if l.peer(router).node == nxt)
    if topo.kind(nxt) == "ha" and topo.ha_address(nxt).version == version:
        via = topo.ha_address(nxt).ip
    else:
        via = next((a.ip for a in link.end(nxt).addresses if a.version == version), None)
    if via is None:
        return None
    return Route("", str(via), link.end(router).interface)


def router_routes(topo: Topology) -> Dict[str, List[Route]]:
    """Static routes of every ``router`` node (see the module docstring)."""
    attached = attached_prefixes(topo)
    to_ha = ha_routed_prefixes(topo)
    routers = set(topo.nodes_of("router"))
    targets: Dict[Network, set] = {p: set(n) for p, n in attached.items() if p not in to_ha}
    for prefix, ha in to_ha.items():
        targets[prefix] = {ha}
    routes: Dict[str, List[Route]] = {}
    for router in sorted(routers):
        mine: List[Route] = []
        for prefix in sorted(targets, key=lambda p: (p.version, p)):
            if router in attached.get(prefix, set()) and prefix not in to_ha:
                continue
            # Only routers forward: the path may pass through routers, ending at a target.
            view = topo.graph.subgraph(routers | targets[prefix])
            lengths, paths = nx.single_source_dijkstra(view, router)
            reachable = sorted((lengths[t], t) for t in targets[prefix] if t in paths and t != router)
            if not reachable:
                continue
            path = paths[reachable[0][1]]
            hop = _via(topo, router, path[1], prefix.version)
            if hop is not None:
                mine.append(Route(str(prefix), hop.via, hop.dev))
        routes[router] = mine
    return routes


def default_routes(topo: Topology) -> Dict[str, List[Route]]:
    """Default routes of hosts (via their link's peer or the MR's LAN address) and HAs."""
    routes: Dict[str, List[Route]] = {}
    for host in topo.nodes_of("host"):
        link = topo.links_of(host)[0]
        end, peer = link.end(host), link.peer(host)
        mine = []
        for version in sorted({a.version for a in end.addresses}):
            via = next((a.ip for a in peer.addresses if a.version == version), None)
            if via is None and topo.kind(peer.node) == "mr":
                via = topo.address_of(peer.node, version)
            if via is not None:
                mine.append(Route("default", str(via), end.interface))
        routes[host] = mine
    for ha in topo.nodes_of("ha"):
        routes[ha] = [Route("default", str(topo.ha_next_hop(ha)), topo.nodes[ha]["bridge"])]
    return routes


def describe(topo: Topology) -> str:
    """A human-readable summary: nodes, links, routes."""
    lines = ["topology %s (%s): %s" % (topo.name, topo.source, topo.description)]
    for node, s in topo.nodes.items():
        lines.append("  node %-6s %s" % (node, s["kind"]))
    for link in topo.links:
        ends = " -- ".join("%s:%s%s" % (e.node, e.interface,
                                        "".join(" " + str(a) for a in e.addresses))
                           for e in link.ends)
        extra = ""
        if link.uplink:
            extra = "  [uplink %s: %s]" % (link.uplink.name,
                                           ", ".join(str(c) for c in link.uplink.care_of))
        lines.append("  link %-10s %s%s" % (link.name, ends, extra))
    for node in topo.nodes_of("bgp"):
        s = topo.nodes[node]
        lines.append("  bgp   %-6s AS %s router-id %s announces %s" % (
            node, s.get("asn"), s.get("router_id"),
            ", ".join(["connected"] + [str(n) for n in topo.bgp_networks(node)])))
        for b in topo.bgp_sessions(node):
            lines.append("  bgp   %-6s neighbor %s (%s, AS %s) over %s" % (
                node, b.peer, b.peer_node, b.peer_asn, b.link))
    static = {**router_routes(topo), **default_routes(topo), **bgp_static_routes(topo)}
    for node, routes in sorted(static.items()):
        for r in routes:
            lines.append("  route %-6s %s via %s dev %s" % (node, r.dst, r.via, r.dev))
    return "\n".join(lines)


def main(argv: Optional[Iterable[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m topologies.model TOPOLOGY(.yaml)", file=sys.stderr)
        return 2
    try:
        print(describe(load(args[0])))
    except TopologyError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
