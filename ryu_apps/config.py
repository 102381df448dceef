"""Home Agent configuration: load a YAML file, validate every key, build typed objects.

Every problem is reported with the file, the key path and what is wrong, all at once
(not one per run), e.g. ``ha.yaml: mobile_routers[1].prefixes: ['2001:db8::1/64']: item 0
('2001:db8::1/64'): has host bits set``. :func:`load_config` raises
:class:`~ryu_apps.validate.ConfigError` listing them.
"""

from __future__ import annotations

import ipaddress
import os
import zlib
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Tuple

from .validate import (Checker, ConfigError, as_bool, as_hex_key, as_ipv4, as_ipv6, as_mac,
                       as_name, as_prefix, bounded_int, list_of, path_in, positive_float,
                       read_yaml)

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address
IPv6Network = ipaddress.IPv6Network

POLICIES = ("weighted", "priority")
MAX_LIFETIME_LIMIT = 0xFFFF * 4
#: UDP port of the MRs' liveness probes, reflected by the switch (0 or null: off).
DEFAULT_LIVENESS_PORT = 4195


@dataclass(frozen=True)
class MobileRouterConfig:
    name: str
    home_address: IPv6Address
    prefixes: Tuple[IPv6Network, ...]
    spi: int
    key: bytes
    gre_key: int
    policy: str = "weighted"
    nai: Optional[str] = None
    mobile_router: bool = True  # NEMO service (R flag) permitted
    #: (HA address, UDP port) whose probes the switch reflects back through the CoA they
    #: came from; None: no reflect flows. Filled in from home_agent.liveness_port, kept
    #: per router so the per-MR flow compiler needs nothing else.
    liveness: Optional[Tuple[IPv6Address, int]] = None


@dataclass(frozen=True)
class Limits:
    max_lifetime: int = 600  # seconds granted at most
    max_care_of_addresses: int = 8
    packet_in_rate: int = 1000  # packets per second through the signalling meter
    packet_in_burst: int = 100
    replay_window: float = 7.0  # seconds of clock difference accepted (RFC 4285)
    expiry_interval: float = 1.0  # seconds between binding expiry checks


@dataclass(frozen=True)
class HomeAgentConfig:
    addresses: Tuple[IPv6Address, ...]
    home_prefixes: Tuple[IPv6Network, ...]
    uplink_port: str
    tunnel_port: str
    mobile_routers: Tuple[MobileRouterConfig, ...]
    ipv4_address: Optional[IPv4Address] = None
    dpid: Optional[int] = None
    next_hop: Optional[IPv6Address] = None
    next_hop_mac: Optional[str] = None
    listen_host: str = "127.0.0.1"
    listen_port: int = 6653
    limits: Limits = field(default_factory=Limits)
    state_file: Optional[str] = None
    status_file: Optional[str] = None
    source: str = "<config>"

    @property
    def tunnel_source(self) -> IPv6Address:
        return self.addresses[0]

    def router_by_home_address(self, home: IPv6Address) -> Optional[MobileRouterConfig]:
        """The MR with this home address (a dict lookup: this runs for every BU)."""
        index = self.__dict__.get("_by_home")
        if index is None:
            index = {router.home_address: router for router in self.mobile_routers}
            object.__setattr__(self, "_by_home", index)  # frozen dataclass: cache once
        return index.get(home)


def default_gre_key(name: str) -> int:
    """A stable GRE key for an MR without one configured (never 0)."""
    return zlib.crc32(name.encode()) or 1


def _router(check: Checker, raw: Any, path: str, base_dir: str) -> Optional[MobileRouterConfig]:
    tree = check.mapping(raw, path)
    check.unknown_keys(tree, path, ("name", "home_address", "prefixes", "spi", "key",
                                    "key_file", "gre_key", "policy", "nai", "mobile_router"))
    name = check.get(tree, path, "name", as_name)
    home = check.get(tree, path, "home_address", as_ipv6)
    prefixes = check.get(tree, path, "prefixes", list_of(as_prefix), default=())
    spi = check.get(tree, path, "spi", bounded_int(256, 0xFFFFFFFF),
                    what="RFC 4285 SPI, 256 or more")
    key = None
    if "key" in tree and "key_file" in tree:
        check.fail(path, "give either key or key_file, not both")
    elif "key_file" in tree:
        key_path = os.path.join(base_dir, str(tree["key_file"]))
        try:
            with open(key_path, encoding="ascii") as handle:
                key = as_hex_key(handle.read())
        except (OSError, ValueError) as exc:
            check.fail(f"{path}.key_file", f"{key_path}: {exc}")
    else:
        key = check.get(tree, path, "key", as_hex_key, what="MN-HA shared key in hex")
    gre_key = check.get(tree, path, "gre_key", bounded_int(1, 0xFFFFFFFF), default=None)
    policy = check.get(tree, path, "policy", str, default="weighted")
    if policy not in POLICIES:
        check.fail(f"{path}.policy", f"{policy!r} is not one of {', '.join(POLICIES)}")
    nai = check.get(tree, path, "nai", as_name, default=None)
    nemo = check.get(tree, path, "mobile_router", as_bool, default=True)
    if None in (name, home, spi, key):
        return None
    return MobileRouterConfig(name, home, tuple(prefixes or ()), spi, key,
                              gre_key or default_gre_key(name), policy, nai, nemo)


def parse_config(tree: Any, source: str = "<config>", base_dir: str = ".") -> HomeAgentConfig:
    """Validate a parsed YAML tree; raises ConfigError with every problem found."""
    check = Checker(source)
    tree = check.mapping(tree, "")
    check.unknown_keys(tree, "", ("home_agent", "datapath", "openflow", "upstream", "limits",
                                  "mobile_routers"))
    ha = check.mapping(tree.get("home_agent") or {}, "home_agent")
    check.unknown_keys(ha, "home_agent", ("addresses", "ipv4_address", "home_prefixes",
                                          "state_file", "status_file", "liveness_port"))
    addresses = check.get(ha, "home_agent", "addresses", list_of(as_ipv6))
    if addresses == ():
        check.fail("home_agent.addresses", "needs at least one address")
    ipv4 = check.get(ha, "home_agent", "ipv4_address", as_ipv4, default=None)
    home_prefixes = check.get(ha, "home_agent", "home_prefixes", list_of(as_prefix))
    if home_prefixes == ():
        check.fail("home_agent.home_prefixes", "needs at least one prefix (where home "
                                               "addresses live)")
    state_file = check.get(ha, "home_agent", "state_file", path_in(base_dir), default=None)
    status_file = check.get(ha, "home_agent", "status_file", path_in(base_dir), default=None)
    liveness_port = (DEFAULT_LIVENESS_PORT if "liveness_port" not in ha else
                     check.get(ha, "home_agent", "liveness_port", bounded_int(0, 65535),
                               default=0, what="UDP port, 0 or null to disable"))
    dp = check.mapping(tree.get("datapath") or {}, "datapath")
    check.unknown_keys(dp, "datapath", ("dpid", "uplink_port", "tunnel_port"))
    dpid = check.get(dp, "datapath", "dpid", bounded_int(0, (1 << 64) - 1), default=None)
    uplink = check.get(dp, "datapath", "uplink_port", as_name)
    tunnel = check.get(dp, "datapath", "tunnel_port", as_name)
    if uplink and uplink == tunnel:
        check.fail("datapath", "uplink_port and tunnel_port must differ")
    of = check.mapping(tree.get("openflow", {}) or {}, "openflow")
    check.unknown_keys(of, "openflow", ("listen_host", "listen_port"))
    listen_host = check.get(of, "openflow", "listen_host", str, default="127.0.0.1")
    listen_port = check.get(of, "openflow", "listen_port", bounded_int(1, 65535),
                            default=6653)
    up = check.mapping(tree.get("upstream", {}) or {}, "upstream")
    check.unknown_keys(up, "upstream", ("next_hop", "next_hop_mac"))
    next_hop = check.get(up, "upstream", "next_hop", as_ipv6, default=None)
    next_hop_mac = check.get(up, "upstream", "next_hop_mac", as_mac, default=None)
    if next_hop is None and next_hop_mac is None:
        check.fail("upstream", "give next_hop (resolved by neighbour discovery) and/or "
                               "next_hop_mac: where decapsulated traffic goes")
    lim = check.mapping(tree.get("limits", {}) or {}, "limits")
    check.unknown_keys(lim, "limits", tuple(Limits.__dataclass_fields__))
    defaults = Limits()
    limits = Limits(
        check.get(lim, "limits", "max_lifetime", bounded_int(4, MAX_LIFETIME_LIMIT),
                  default=defaults.max_lifetime),
        check.get(lim, "limits", "max_care_of_addresses", bounded_int(1, 64),
                  default=defaults.max_care_of_addresses),
        check.get(lim, "limits", "packet_in_rate", bounded_int(1, 10_000_000),
                  default=defaults.packet_in_rate),
        check.get(lim, "limits", "packet_in_burst", bounded_int(0, 10_000_000),
                  default=defaults.packet_in_burst),
        check.get(lim, "limits", "replay_window", positive_float,
                  default=defaults.replay_window),
        check.get(lim, "limits", "expiry_interval", positive_float,
                  default=defaults.expiry_interval))
    raw_routers = tree.get("mobile_routers", [])
    if not isinstance(raw_routers, list):
        check.fail("mobile_routers", "must be a list")
        raw_routers = []
    routers = [_router(check, raw, f"mobile_routers[{i}]", base_dir)
               for i, raw in enumerate(raw_routers)]
    _check_router_table(check, routers, home_prefixes or ())
    valid = [r for r in routers if r is not None]
    if liveness_port and addresses:
        valid = [replace(r, liveness=(addresses[0], liveness_port)) for r in valid]
    if check.problems:
        raise ConfigError(check.problems)
    return HomeAgentConfig(tuple(addresses), tuple(home_prefixes), uplink, tunnel,
                           tuple(valid), ipv4, dpid, next_hop, next_hop_mac, listen_host,
                           listen_port, limits, state_file, status_file, source)


def _check_router_table(check: Checker, routers: List[Optional[MobileRouterConfig]],
                        home_prefixes: Tuple[IPv6Network, ...]) -> None:
    """Uniqueness across routers; ``routers`` keeps None for invalid entries (indexes)."""
    seen: Dict[Any, str] = {}
    for index, router in enumerate(routers):
        if router is None:
            continue
        here = f"mobile_routers[{index}]"
        for kind, value in (("name", router.name), ("home_address", router.home_address),
                            ("spi", router.spi), ("gre_key", router.gre_key)):
            other = seen.get((kind, value))
            if other is not None:
                check.fail(f"{here}.{kind}", f"{value} is already used by {other}")
            seen[(kind, value)] = f"{here} ({router.name})"
        if home_prefixes and not any(router.home_address in p for p in home_prefixes):
            check.fail(f"{here}.home_address",
                       f"{router.home_address} is outside home_agent.home_prefixes")
    # Overlaps by a sweep over the prefixes sorted by first address (widest first): a
    # prefix overlaps an earlier one iff it starts before the furthest end seen so far.
    # Pairwise checks took 35 s at 4,000 MRs.
    owned = sorted(((int(p.network_address), -p.prefixlen, i, p)
                    for i, r in enumerate(routers) if r is not None for p in r.prefixes))
    widest: Optional[Tuple[int, int, IPv6Network]] = None  # (last address, index, prefix)
    for start, _, index, prefix in owned:
        end = int(prefix.broadcast_address)
        if widest is not None and start <= widest[0]:
            first, second = sorted(((widest[1], widest[2]), (index, prefix)),
                                   key=lambda item: item[0])
            owner = routers[first[0]]
            check.fail(f"mobile_routers[{second[0]}].prefixes",
                       f"{second[1]} overlaps {first[1]} of mobile_routers[{first[0]}] "
                       f"({owner.name if owner else '?'})")
        if widest is None or end > widest[0]:
            widest = (end, index, prefix)


def load_config(path: str) -> HomeAgentConfig:
    """Read and validate a YAML configuration file."""
    return parse_config(read_yaml(path), path, os.path.dirname(os.path.abspath(path)))
