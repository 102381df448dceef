"""MR agent configuration: load a YAML file, validate every key, build typed objects.

Problems are reported all at once with the file and key path (shared toolkit:
:mod:`ryu_apps.validate`), e.g. ``mr.yaml: uplinks[1].interface: missing (required)``.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple, Union

from ryu_apps.validate import (Checker, ConfigError, as_bool, as_hex_key, as_ipv4, as_ipv6,
                               as_name, as_prefix, bounded_int, list_of, path_in, read_yaml)

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address
CareOf = Union[IPv6Address, IPv4Address]
POLICY_MODES = ("weighted", "active-backup")
PROTOCOLS = {"tcp": 6, "udp": 17}

__all__ = ["ConfigError", "MobileRouterAgentConfig", "Uplink", "PolicyRule", "Liveness",
           "load_config", "parse_config"]


@dataclass(frozen=True)
class Liveness:
    """Per care-of address liveness probing (see :mod:`mr_agent.liveness`)."""

    enabled: bool = True
    interval_ms: int = 50  # one probe per acknowledged CoA this often
    misses: int = 3  # consecutive unanswered probes that make a CoA dead
    port: int = 4195  # UDP port the home agent reflects (its home_agent.liveness_port)


@dataclass(frozen=True)
class Uplink:
    """One access link: its interface and (optionally) its care-of addresses."""

    name: str
    interface: str
    care_of: Tuple[CareOf, ...] = ()  # empty: discovered on the interface
    gateway: Optional[Union[IPv6Address, IPv4Address]] = None
    priority: int = 1  # lower = preferred (becomes BID-PRI)
    weight: int = 1


@dataclass(frozen=True)
class PolicyRule:
    """Outbound traffic of one protocol/port pinned to an uplink."""

    protocol: str
    port: Optional[int]
    uplink: str


@dataclass(frozen=True)
class MobileRouterAgentConfig:
    home_address: IPv6Address
    prefixes: Tuple[ipaddress.IPv6Network, ...]
    home_agents: Tuple[IPv6Address, ...]  # the anycast address first, unicast fallbacks
    spi: int
    key: bytes
    uplinks: Tuple[Uplink, ...]
    home_agent_ipv4: Optional[IPv4Address] = None
    lifetime: int = 600  # seconds requested
    explicit_prefixes: bool = False  # send MNP options (explicit mode)
    gre_key: int = 0  # key the HA expects on upstream GRE (its gre_key for this MR)
    downlink_key: Optional[int] = None  # ask the HA to use this key (RFC 5845)
    nai: Optional[str] = None
    policy: str = "weighted"
    rules: Tuple[PolicyRule, ...] = ()
    state_file: Optional[str] = None
    status_file: Optional[str] = None
    dataplane: dict = field(default_factory=dict)
    source: str = "<config>"
    liveness: Liveness = field(default_factory=Liveness)

    def uplink(self, name: str) -> Optional[Uplink]:
        return next((u for u in self.uplinks if u.name == name), None)


def _care_of(value: Any) -> CareOf:
    return ipaddress.ip_address(str(value))


def _uplink(check: Checker, raw: Any, path: str) -> Optional[Uplink]:
    tree = check.mapping(raw, path)
    check.unknown_keys(tree, path, ("name", "interface", "care_of", "gateway", "priority",
                                    "weight"))
    name = check.get(tree, path, "name", as_name)
    interface = check.get(tree, path, "interface", as_name)
    if interface and len(interface) > 15:
        check.fail(f"{path}.interface", f"{interface!r} is longer than 15 characters")
    care_of = check.get(tree, path, "care_of", list_of(_care_of), default=())
    for address in care_of or ():
        if address.is_multicast or address.is_link_local or address.is_loopback \
                or address.is_unspecified:
            check.fail(f"{path}.care_of", f"{address} is not a routable unicast address")
    gateway = check.get(tree, path, "gateway", _care_of, default=None)
    priority = check.get(tree, path, "priority", bounded_int(1, 127), default=1)
    weight = check.get(tree, path, "weight", bounded_int(1, 1000), default=1)
    if None in (name, interface):
        return None
    return Uplink(name, interface, tuple(care_of or ()), gateway, priority, weight)


def _rule(check: Checker, raw: Any, path: str) -> Optional[PolicyRule]:
    tree = check.mapping(raw, path)
    check.unknown_keys(tree, path, ("protocol", "port", "uplink"))
    protocol = check.get(tree, path, "protocol", as_name)
    if protocol is not None and protocol not in PROTOCOLS:
        check.fail(f"{path}.protocol", f"{protocol!r} is not one of {', '.join(PROTOCOLS)}")
    port = check.get(tree, path, "port", bounded_int(1, 65535), default=None)
    uplink = check.get(tree, path, "uplink", as_name)
    if None in (protocol, uplink):
        return None
    return PolicyRule(protocol, port, uplink)


def _liveness(check: Checker, raw: Any) -> Liveness:
    tree = check.mapping(raw, "liveness")
    check.unknown_keys(tree, "liveness", ("enabled", "interval_ms", "misses", "port"))
    default = Liveness()
    values = (check.get(tree, "liveness", "enabled", as_bool, default=default.enabled),
              check.get(tree, "liveness", "interval_ms", bounded_int(10, 60000),
                        default=default.interval_ms),
              check.get(tree, "liveness", "misses", bounded_int(1, 100),
                        default=default.misses),
              check.get(tree, "liveness", "port", bounded_int(1, 65534), default=default.port,
                        what="the home agent's liveness_port"))
    return default if None in values else Liveness(*values)


def parse_config(tree: Any, source: str = "<config>", base_dir: str = "."
                 ) -> MobileRouterAgentConfig:
    """Validate a parsed YAML tree; raises ConfigError with every problem found."""
    check = Checker(source)
    tree = check.mapping(tree, "")
    check.unknown_keys(tree, "", ("mobile_router", "home_agents", "home_agent_ipv4",
                                  "uplinks", "policy", "dataplane", "state_file",
                                  "status_file", "liveness"))
    mr = check.mapping(tree.get("mobile_router") or {}, "mobile_router")
    check.unknown_keys(mr, "mobile_router", ("home_address", "prefixes", "spi", "key",
                                             "key_file", "nai", "lifetime", "explicit_prefixes",
                                             "gre_key", "downlink_key"))
    home = check.get(mr, "mobile_router", "home_address", as_ipv6)
    prefixes = check.get(mr, "mobile_router", "prefixes", list_of(as_prefix), default=())
    spi = check.get(mr, "mobile_router", "spi", bounded_int(256, 0xFFFFFFFF))
    key = None
    if "key" in mr and "key_file" in mr:
        check.fail("mobile_router", "give either key or key_file, not both")
    elif "key_file" in mr:
        key_path = os.path.join(base_dir, str(mr["key_file"]))
        try:
            with open(key_path, encoding="ascii") as handle:
                key = as_hex_key(handle.read())
        except (OSError, ValueError, TypeError) as exc:
            check.fail("mobile_router.key_file", f"{key_path}: {exc}")
    else:
        key = check.get(mr, "mobile_router", "key", as_hex_key, what="MN-HA key in hex")
    nai = check.get(mr, "mobile_router", "nai", as_name, default=None)
    lifetime = check.get(mr, "mobile_router", "lifetime", bounded_int(4, 0xFFFF * 4),
                         default=600)
    explicit = check.get(mr, "mobile_router", "explicit_prefixes", as_bool, default=False)
    gre_key = check.get(mr, "mobile_router", "gre_key", bounded_int(1, 0xFFFFFFFF))
    downlink_key = check.get(mr, "mobile_router", "downlink_key",
                             bounded_int(1, 0xFFFFFFFF), default=None)
    home_agents = check.get(tree, "", "home_agents", list_of(as_ipv6))
    if home_agents == ():
        check.fail("home_agents", "needs at least one home agent address")
    ha4 = check.get(tree, "", "home_agent_ipv4", as_ipv4, default=None)
    raw_uplinks = tree.get("uplinks")
    if not isinstance(raw_uplinks, list) or not raw_uplinks:
        check.fail("uplinks", "must be a non-empty list")
        raw_uplinks = []
    uplinks = [_uplink(check, raw, f"uplinks[{i}]") for i, raw in enumerate(raw_uplinks)]
    valid = [u for u in uplinks if u is not None]
    names = [u.name for u in valid]
    for duplicate in {n for n in names if names.count(n) > 1}:
        check.fail("uplinks", f"name {duplicate!r} is used twice")
    interfaces = [u.interface for u in valid]
    for duplicate in {n for n in interfaces if interfaces.count(n) > 1}:
        check.fail("uplinks", f"interface {duplicate!r} is used twice")
    if ha4 is None:
        for i, uplink in enumerate(uplinks):
            if uplink is not None and any(a.version == 4 for a in uplink.care_of):
                check.fail(f"uplinks[{i}].care_of", "an IPv4 care-of address needs "
                                                    "home_agent_ipv4 (DSMIPv6)")
    policy_tree = check.mapping(tree.get("policy") or {}, "policy")
    check.unknown_keys(policy_tree, "policy", ("mode", "rules"))
    mode = check.get(policy_tree, "policy", "mode", as_name, default="weighted")
    if mode is not None and mode not in POLICY_MODES:
        check.fail("policy.mode", f"{mode!r} is not one of {', '.join(POLICY_MODES)}")
    raw_rules = policy_tree.get("rules") or []
    rules = [_rule(check, raw, f"policy.rules[{i}]") for i, raw in enumerate(raw_rules)]
    for i, rule in enumerate(rules):
        if rule is not None and rule.uplink not in names:
            check.fail(f"policy.rules[{i}].uplink", f"{rule.uplink!r} is not an uplink name")
    dataplane = check.mapping(tree.get("dataplane") or {}, "dataplane")
    state_file = check.get(tree, "", "state_file", path_in(base_dir), default=None)
    status_file = check.get(tree, "", "status_file", path_in(base_dir), default=None)
    liveness = _liveness(check, {} if tree.get("liveness") is None else tree["liveness"])
    if check.problems:
        raise ConfigError(check.problems)
    return MobileRouterAgentConfig(home, tuple(prefixes or ()), tuple(home_agents), spi, key,
                                   tuple(valid), ha4, lifetime, explicit, gre_key,
                                   downlink_key, nai, mode,
                                   tuple(r for r in rules if r is not None), state_file,
                                   status_file, dict(dataplane), source, liveness)


def load_config(path: str) -> MobileRouterAgentConfig:
    """Read and validate an MR agent configuration file."""
    return parse_config(read_yaml(path), path, os.path.dirname(os.path.abspath(path)))
