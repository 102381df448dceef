"""Home Agent configuration: load a YAML file, validate every key, build typed objects.

Every problem is reported with the file, the key path and what is wrong, all at once
(not one per run), e.g. ``ha.yaml: mobile_routers[1].prefixes[0]: '2001:db8::1/64'
has host bits set``. :func:`load_config` raises :class:`ConfigError` listing them.
"""

from __future__ import annotations

import binascii
import ipaddress
import math
import os
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address
IPv6Network = ipaddress.IPv6Network

POLICIES = ("weighted", "priority")
MAX_LIFETIME_LIMIT = 0xFFFF * 4


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: List[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


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
        for router in self.mobile_routers:
            if router.home_address == home:
                return router
        return None


class _Checker:
    """Collects problems while typed values are read out of a YAML tree."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: List[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{self.source}: {path}: {message}")

    def get(self, tree: Dict[str, Any], path: str, key: str, convert: Callable[[Any], Any],
            default: Any = ..., what: str = "") -> Any:
        full = f"{path}.{key}" if path else key
        if key not in tree or tree[key] is None:
            if default is ...:
                self.fail(full, f"missing (required{': ' + what if what else ''})")
            return None if default is ... else default
        try:
            return convert(tree[key])
        except (ValueError, TypeError) as exc:
            self.fail(full, f"{tree[key]!r}: {exc}")
            return None

    def mapping(self, value: Any, path: str) -> Dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path or "(top level)", f"must be a mapping, got {type(value).__name__}")
            return {}
        return value

    def unknown_keys(self, tree: Dict[str, Any], path: str, known: Tuple[str, ...]) -> None:
        for key in tree:
            if key not in known:
                self.fail(f"{path}.{key}" if path else str(key),
                          f"unknown key (known: {', '.join(known)})")


def _ipv6(value: Any) -> IPv6Address:
    return IPv6Address(str(value))


def _ipv4(value: Any) -> IPv4Address:
    return IPv4Address(str(value))


def _prefix(value: Any) -> IPv6Network:
    try:
        return IPv6Network(str(value))
    except ValueError as exc:
        if "host bits" in str(exc):
            raise ValueError("has host bits set") from None
        raise


def _list_of(convert: Callable[[Any], Any]) -> Callable[[Any], Tuple[Any, ...]]:
    def run(value: Any) -> Tuple[Any, ...]:
        if isinstance(value, (str, int)):
            value = [value]
        if not isinstance(value, list):
            raise TypeError("must be a list")
        out = []
        for index, item in enumerate(value):
            try:
                out.append(convert(item))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"item {index} ({item!r}): {exc}") from None
        return tuple(out)
    return run


def _bounded_int(low: int, high: int) -> Callable[[Any], int]:
    def run(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError("must be an integer")
        number = int(value, 0) if isinstance(value, str) else value
        if not low <= number <= high:
            raise ValueError(f"must be in {low}..{high}")
        return number
    return run


def _positive_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("must be a number")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError("must be a positive finite number")
    return number


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("must be true or false (unquoted)")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("must be a non-empty string")
    return value


def _path(base_dir: str) -> Callable[[Any], str]:
    def run(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise TypeError("must be a file path")
        return os.path.join(base_dir, value)
    return run


def _mac(value: Any) -> str:
    text = str(value).lower()
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p)
                                  for p in parts):
        raise ValueError("is not a MAC address like 02:00:00:00:00:01")
    return text


def _hex_key(value: Any) -> bytes:
    if not isinstance(value, str):
        # YAML turns an unquoted 0x... or all-digit key into a number: its hex is lost.
        raise TypeError("must be a quoted string of hex digits, e.g. '000102...'")
    text = value.strip().lower().replace(":", "")
    if text.startswith("0x"):
        text = text[2:]
    try:
        key = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise ValueError("must be hexadecimal (e.g. 000102...)") from None
    if len(key) < 16:
        raise ValueError(f"is {len(key)} octets; use at least 16 (HMAC-SHA1 key)")
    return key


def default_gre_key(name: str) -> int:
    """A stable GRE key for an MR without one configured (never 0)."""
    return zlib.crc32(name.encode()) or 1


def _router(check: _Checker, raw: Any, path: str, base_dir: str) -> Optional[MobileRouterConfig]:
    tree = check.mapping(raw, path)
    check.unknown_keys(tree, path, ("name", "home_address", "prefixes", "spi", "key",
                                    "key_file", "gre_key", "policy", "nai", "mobile_router"))
    name = check.get(tree, path, "name", _name)
    home = check.get(tree, path, "home_address", _ipv6)
    prefixes = check.get(tree, path, "prefixes", _list_of(_prefix), default=())
    spi = check.get(tree, path, "spi", _bounded_int(256, 0xFFFFFFFF),
                    what="RFC 4285 SPI, 256 or more")
    key = None
    if "key" in tree and "key_file" in tree:
        check.fail(path, "give either key or key_file, not both")
    elif "key_file" in tree:
        key_path = os.path.join(base_dir, str(tree["key_file"]))
        try:
            with open(key_path, encoding="ascii") as handle:
                key = _hex_key(handle.read())
        except (OSError, ValueError) as exc:
            check.fail(f"{path}.key_file", f"{key_path}: {exc}")
    else:
        key = check.get(tree, path, "key", _hex_key, what="MN-HA shared key in hex")
    gre_key = check.get(tree, path, "gre_key", _bounded_int(1, 0xFFFFFFFF), default=None)
    policy = check.get(tree, path, "policy", str, default="weighted")
    if policy not in POLICIES:
        check.fail(f"{path}.policy", f"{policy!r} is not one of {', '.join(POLICIES)}")
    nai = check.get(tree, path, "nai", _name, default=None)
    nemo = check.get(tree, path, "mobile_router", _boolean, default=True)
    if None in (name, home, spi, key):
        return None
    return MobileRouterConfig(name, home, tuple(prefixes or ()), spi, key,
                              gre_key or default_gre_key(name), policy, nai, nemo)


def parse_config(tree: Any, source: str = "<config>", base_dir: str = ".") -> HomeAgentConfig:
    """Validate a parsed YAML tree; raises ConfigError with every problem found."""
    check = _Checker(source)
    tree = check.mapping(tree, "")
    check.unknown_keys(tree, "", ("home_agent", "datapath", "openflow", "upstream", "limits",
                                  "mobile_routers"))
    ha = check.mapping(tree.get("home_agent") or {}, "home_agent")
    check.unknown_keys(ha, "home_agent", ("addresses", "ipv4_address", "home_prefixes",
                                          "state_file", "status_file"))
    addresses = check.get(ha, "home_agent", "addresses", _list_of(_ipv6))
    if addresses == ():
        check.fail("home_agent.addresses", "needs at least one address")
    ipv4 = check.get(ha, "home_agent", "ipv4_address", _ipv4, default=None)
    home_prefixes = check.get(ha, "home_agent", "home_prefixes", _list_of(_prefix))
    if home_prefixes == ():
        check.fail("home_agent.home_prefixes", "needs at least one prefix (where home "
                                               "addresses live)")
    state_file = check.get(ha, "home_agent", "state_file", _path(base_dir), default=None)
    status_file = check.get(ha, "home_agent", "status_file", _path(base_dir), default=None)
    dp = check.mapping(tree.get("datapath") or {}, "datapath")
    check.unknown_keys(dp, "datapath", ("dpid", "uplink_port", "tunnel_port"))
    dpid = check.get(dp, "datapath", "dpid", _bounded_int(0, (1 << 64) - 1), default=None)
    uplink = check.get(dp, "datapath", "uplink_port", _name)
    tunnel = check.get(dp, "datapath", "tunnel_port", _name)
    if uplink and uplink == tunnel:
        check.fail("datapath", "uplink_port and tunnel_port must differ")
    of = check.mapping(tree.get("openflow", {}) or {}, "openflow")
    check.unknown_keys(of, "openflow", ("listen_host", "listen_port"))
    listen_host = check.get(of, "openflow", "listen_host", str, default="127.0.0.1")
    listen_port = check.get(of, "openflow", "listen_port", _bounded_int(1, 65535),
                            default=6653)
    up = check.mapping(tree.get("upstream", {}) or {}, "upstream")
    check.unknown_keys(up, "upstream", ("next_hop", "next_hop_mac"))
    next_hop = check.get(up, "upstream", "next_hop", _ipv6, default=None)
    next_hop_mac = check.get(up, "upstream", "next_hop_mac", _mac, default=None)
    if next_hop is None and next_hop_mac is None:
        check.fail("upstream", "give next_hop (resolved by neighbour discovery) and/or "
                               "next_hop_mac: where decapsulated traffic goes")
    lim = check.mapping(tree.get("limits", {}) or {}, "limits")
    check.unknown_keys(lim, "limits", tuple(Limits.__dataclass_fields__))
    defaults = Limits()
    limits = Limits(
        check.get(lim, "limits", "max_lifetime", _bounded_int(4, MAX_LIFETIME_LIMIT),
                  default=defaults.max_lifetime),
        check.get(lim, "limits", "max_care_of_addresses", _bounded_int(1, 64),
                  default=defaults.max_care_of_addresses),
        check.get(lim, "limits", "packet_in_rate", _bounded_int(1, 10_000_000),
                  default=defaults.packet_in_rate),
        check.get(lim, "limits", "packet_in_burst", _bounded_int(0, 10_000_000),
                  default=defaults.packet_in_burst),
        check.get(lim, "limits", "replay_window", _positive_float,
                  default=defaults.replay_window),
        check.get(lim, "limits", "expiry_interval", _positive_float,
                  default=defaults.expiry_interval))
    raw_routers = tree.get("mobile_routers", [])
    if not isinstance(raw_routers, list):
        check.fail("mobile_routers", "must be a list")
        raw_routers = []
    routers = [_router(check, raw, f"mobile_routers[{i}]", base_dir)
               for i, raw in enumerate(raw_routers)]
    _check_router_table(check, routers, home_prefixes or ())
    valid = [r for r in routers if r is not None]
    if check.problems:
        raise ConfigError(check.problems)
    return HomeAgentConfig(tuple(addresses), tuple(home_prefixes), uplink, tunnel,
                           tuple(valid), ipv4, dpid, next_hop, next_hop_mac, listen_host,
                           listen_port, limits, state_file, status_file, source)


def _check_router_table(check: _Checker, routers: List[Optional[MobileRouterConfig]],
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
    owned = [(p, f"mobile_routers[{i}] ({r.name})") for i, r in enumerate(routers)
             if r is not None for p in r.prefixes]
    for i, (prefix, name) in enumerate(owned):
        for other, other_name in owned[i + 1:]:
            if prefix.overlaps(other):
                check.fail(f"{other_name.split(' ')[0]}.prefixes",
                           f"{other} overlaps {prefix} of {name}")


def load_config(path: str) -> HomeAgentConfig:
    """Read and validate a YAML configuration file."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            tree = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    return parse_config(tree, path, os.path.dirname(os.path.abspath(path)))
