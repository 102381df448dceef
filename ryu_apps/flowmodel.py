"""Framework-free model of OpenFlow 1.3 state: flows, groups, meters, and their diff.

The flow compiler produces a :class:`SwitchState` (what the switch should hold); the
OpenFlow edge reads what it does hold into the same form; :func:`diff` gives the
smallest ordered set of changes between the two. Everything is a hashable value in a
canonical form, so an unchanged switch compares equal and needs zero messages.

Canonical forms (they must match what OVS reports back):

* a match is a sorted tuple of ``(field, value)``; a masked value is ``(value, mask)``;
  a full mask is dropped (``/128`` is an exact match); addresses are compressed strings;
* actions are tuples: ``("output", port)`` (``("output", port, max_len)`` for the
  controller port), ``("group", id)``, ``("set_field", field, value)``, ``("dec_ttl",)``;
* instructions are ``("meter", id)``, ``("apply", actions)``, ``("goto", table)``, in
  that order (the OpenFlow 1.3 execution order).
"""

from __future__ import annotations

import functools
import ipaddress
import sys
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple, Union

# Millions of these at 10,000 MRs: slots halve their size (dataclass slots need 3.10+;
# the Ryu run on Python 3.9 goes without).
SLOTS = {"slots": True} if sys.version_info >= (3, 10) else {}

MatchValue = Union[int, str, Tuple[Union[int, str], Union[int, str]]]
Match = Tuple[Tuple[str, MatchValue], ...]
Action = Tuple
Instruction = Tuple

_IP_FIELDS = {"ipv6_src", "ipv6_dst", "ipv4_src", "ipv4_dst", "tun_ipv6_src", "tun_ipv6_dst",
              "tun_ipv4_src", "tun_ipv4_dst", "ipv6_nd_target"}
_MAC_FIELDS = {"eth_src", "eth_dst"}


# Canonical forms are memoised: the compiler asks for the same few addresses of an MR
# over and over (old and new state, every table), and ``ipaddress`` text conversion is
# the largest cost of compiling a registration. The cached strings are shared, too.
_CACHE_SIZE = 1 << 18


@functools.lru_cache(maxsize=_CACHE_SIZE)
def prefix_value(network: Union[str, ipaddress.IPv4Network, ipaddress.IPv6Network]
                 ) -> MatchValue:
    """The canonical match value of a prefix: exact for a host route, else (net, mask)."""
    net = network if isinstance(network, (ipaddress.IPv4Network, ipaddress.IPv6Network)) \
        else ipaddress.ip_network(network, strict=False)
    if net.prefixlen == net.max_prefixlen:
        return address_text(net.network_address)
    return (address_text(net.network_address), address_text(net.netmask))


def _canonical_value(name: str, value: MatchValue) -> MatchValue:
    try:
        return _canonical_cached(name, value)
    except TypeError:  # an unhashable value (e.g. a list read from a switch)
        return _canonical_uncached(name, value)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _canonical_cached(name: str, value: MatchValue) -> MatchValue:
    return _canonical_uncached(name, value)


def _canonical_uncached(name: str, value: MatchValue) -> MatchValue:
    if isinstance(value, tuple):
        raw, mask = value
        if name in _MAC_FIELDS:
            raw_bytes = bytes(int(x, 16) for x in str(raw).split(":"))
            mask_bytes = bytes(int(x, 16) for x in str(mask).split(":"))
            masked = ":".join(f"{a & b:02x}" for a, b in zip(raw_bytes, mask_bytes))
            mask_text = ":".join(f"{b:02x}" for b in mask_bytes)
            return masked if mask_text == "ff:ff:ff:ff:ff:ff" else (masked, mask_text)
        if name in _IP_FIELDS:
            addr, netmask = ipaddress.ip_address(raw), ipaddress.ip_address(mask)
            bits = bin(int(netmask)).count("1")
            return prefix_value(f"{ipaddress.ip_address(int(addr) & int(netmask))}/{bits}")
        if isinstance(raw, int) and isinstance(mask, int) and mask + 1 == 1 << mask.bit_length() \
                and mask.bit_length() in (8, 16, 32, 48, 64):
            return raw  # an all-ones mask is an exact match
        return (raw, mask)
    if name in _MAC_FIELDS:
        return str(value).lower()
    if name in _IP_FIELDS:
        if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return address_text(value)
        return str(ipaddress.ip_address(value))
    return value


@functools.lru_cache(maxsize=_CACHE_SIZE)
def address_text(address: Union[ipaddress.IPv4Address, ipaddress.IPv6Address]) -> str:
    """``str(address)``, memoised (the compiler converts the same addresses repeatedly)."""
    return str(address)


def match(**fields: MatchValue) -> Match:
    """A canonical match from keyword fields (os-ken field names)."""
    return tuple(sorted((name, _canonical_value(name, value))
                        for name, value in fields.items()))


def canonical_match(items: Iterable[Tuple[str, MatchValue]]) -> Match:
    """A canonical match from ``(field, value)`` pairs, e.g. as read from a switch."""
    return tuple(sorted((name, _canonical_value(name, value)) for name, value in items))


def canonical_action(action: Action) -> Action:
    if action[0] == "set_field":
        return ("set_field", action[1], _canonical_value(action[1], action[2]))
    return tuple(action)


@dataclass(frozen=True, **SLOTS)
class Flow:
    """One flow entry; ``(table, priority, match)`` identifies it in a table."""

    table: int
    priority: int
    match: Match
    instructions: Tuple[Instruction, ...] = ()
    cookie: int = 0

    @property
    def key(self) -> Tuple[int, int, Match]:
        return (self.table, self.priority, self.match)


@dataclass(frozen=True, **SLOTS)
class Bucket:
    actions: Tuple[Action, ...]
    weight: int = 0
    watch_port: Optional[int] = None


@dataclass(frozen=True, **SLOTS)
class Group:
    group_id: int
    type: str  # "all", "select", "indirect", "ff"
    buckets: Tuple[Bucket, ...]


@dataclass(frozen=True, **SLOTS)
class Meter:
    meter_id: int
    rate: int  # packets per second
    burst: int = 0


@dataclass
class SwitchState:
    """Flows (by key), groups (by id) and meters (by id) of one datapath."""

    flows: Dict[Tuple[int, int, Match], Flow] = field(default_factory=dict)
    groups: Dict[int, Group] = field(default_factory=dict)
    meters: Dict[int, Meter] = field(default_factory=dict)

    def add_flow(self, flow: Flow) -> None:
        if flow.key in self.flows and self.flows[flow.key] != flow:
            raise ValueError(f"two different flows for one key: {flow} / {self.flows[flow.key]}")
        self.flows[flow.key] = flow

    def add_group(self, group: Group) -> None:
        if group.group_id in self.groups and self.groups[group.group_id] != group:
            raise ValueError(f"group id {group.group_id} allocated twice")
        self.groups[group.group_id] = group

    def merge(self, other: "SwitchState") -> None:
        for flow in other.flows.values():
            self.add_flow(flow)
        for group in other.groups.values():
            self.add_group(group)
        self.meters.update(other.meters)


@dataclass
class Changes:
    """Ordered switch changes: apply the fields in declaration order (Faucet's order:
    deletes that free things first, then meters and groups before the flows that use
    them, group deletions last)."""

    flow_deletes: List[Flow] = field(default_factory=list)
    meter_adds: List[Meter] = field(default_factory=list)
    meter_modifies: List[Meter] = field(default_factory=list)
    group_adds: List[Group] = field(default_factory=list)
    group_modifies: List[Group] = field(default_factory=list)
    flow_adds: List[Flow] = field(default_factory=list)
    flow_modifies: List[Flow] = field(default_factory=list)
    group_deletes: List[Group] = field(default_factory=list)
    meter_deletes: List[Meter] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(getattr(self, name)) for name in self.__dataclass_fields__)

    def extend(self, other: "Changes") -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


def diff(desired: SwitchState, installed: SwitchState,
         manage_foreign: bool = True) -> Changes:
    """The changes that turn ``installed`` into ``desired``.

    A flow present on both sides with the same key but other instructions or cookie is
    modified in place (never deleted and re-added, so traffic keeps flowing); a group is
    modified likewise. ``manage_foreign=False`` keeps flows, groups and meters that the
    desired state does not mention (used for partial, per-MR diffs).
    """
    changes = Changes()
    for key, flow in desired.flows.items():
        have = installed.flows.get(key)
        if have is None or have.cookie != flow.cookie:
            # An OpenFlow modify keeps the installed cookie: a new cookie needs an add,
            # which replaces the flow of the same match and priority in place.
            changes.flow_adds.append(flow)
        elif have != flow:
            changes.flow_modifies.append(flow)
    for gid, group in desired.groups.items():
        have = installed.groups.get(gid)
        if have is None:
            changes.group_adds.append(group)
        elif have != group:
            changes.group_modifies.append(group)
    for mid, meter in desired.meters.items():
        have = installed.meters.get(mid)
        if have is None:
            changes.meter_adds.append(meter)
        elif have != meter:
            changes.meter_modifies.append(meter)
    if manage_foreign:
        changes.flow_deletes = [f for k, f in installed.flows.items() if k not in desired.flows]
        changes.group_deletes = [g for i, g in installed.groups.items()
                                 if i not in desired.groups]
        changes.meter_deletes = [m for i, m in installed.meters.items()
                                 if i not in desired.meters]
    return changes


def diff_partial(new: SwitchState, old: SwitchState) -> Changes:
    """Changes from one part of the switch (e.g. one MR's flows) to its new version."""
    changes = diff(new, old, manage_foreign=False)
    changes.flow_deletes = [f for k, f in old.flows.items() if k not in new.flows]
    changes.group_deletes = [g for i, g in old.groups.items() if i not in new.groups]
    changes.meter_deletes = [m for i, m in old.meters.items() if i not in new.meters]
    return changes


def apply_changes(state: SwitchState, changes: Changes) -> None:
    """Update ``state`` as the switch will be once ``changes`` are applied."""
    for flow in changes.flow_deletes:
        state.flows.pop(flow.key, None)
    for meter in changes.meter_adds + changes.meter_modifies:
        state.meters[meter.meter_id] = meter
    for group in changes.group_adds + changes.group_modifies:
        state.groups[group.group_id] = group
    for flow in changes.flow_adds + changes.flow_modifies:
        state.flows[flow.key] = flow
    for group in changes.group_deletes:
        state.groups.pop(group.group_id, None)
    for meter in changes.meter_deletes:
        state.meters.pop(meter.meter_id, None)
