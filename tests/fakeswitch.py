"""A small typed fake OpenFlow 1.3 switch over :mod:`ryu_apps.flowmodel` values.

Tests ask it behavioural questions ("where does this packet leave, into which tunnels,
why was it dropped") instead of comparing flow text. It models only what the home
agent's pipeline uses and *rejects* the rest, and whatever a real switch would answer
with an OpenFlow error, by raising :class:`Rejected`:

* :meth:`FakeSwitch.apply` applies :class:`~ryu_apps.flowmodel.Changes` in their field
  order, one message at a time (like a switch: messages before a rejected one stay
  applied). Flows may only use known match/set-field names, known action and
  instruction kinds, existing groups and meters, and goto a later table. Groups: add
  only a new id, modify/delete only an existing one, never delete one still used by a
  flow or a bucket (a real switch would silently delete those flows). Stricter than a
  switch, to catch a diverged model: modifying or deleting a missing flow raises (OF 1.3
  ignores it). As in OF 1.3 (and OVS), a flow modify keeps the installed cookie.
* :meth:`FakeSwitch.process` runs a packet (a dict of os-ken field names, e.g.
  ``in_port``, ``eth_type``, ``ipv6_dst``, ``tunnel_id``, ``tun_ipv6_src``; ``hop_limit``
  defaults to 64) from table 0 and returns :class:`Outcome` values: one per output and
  one per drop. A select group is one choice per packet, so every choice is explored:
  outcomes carry ``choices`` ((group id, bucket index) pairs); outcomes with the same
  choices happen together, different choices are alternatives (:meth:`executions`).
  A fast-failover group takes the first bucket whose watch port is live
  (:meth:`set_port_live`). Meters are recorded, never enforced. The reserved port
  ``IN_PORT`` sends a packet back where it came from.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Counter, Dict, List, Mapping, Optional, Set, Tuple, Union

from ryu_apps.flowmodel import Action, Changes, Flow, Group, SwitchState, diff

Port = Union[int, str]
Packet = Mapping[str, Any]
Choices = Tuple[Tuple[int, int], ...]

CONTROLLER = "controller"
OFPP_CONTROLLER = 0xFFFFFFFD
OFPP_IN_PORT = 0xFFFFFFF8
DEFAULT_HOP_LIMIT = 64

MATCH_FIELDS = frozenset({
    "in_port", "eth_type", "eth_src", "eth_dst", "ip_proto", "ipv6_src", "ipv6_dst",
    "ipv4_src", "ipv4_dst", "udp_dst", "udp_src", "icmpv6_type", "tunnel_id", "tun_ipv6_src",
    "tun_ipv4_src"})
SET_FIELDS = frozenset({"tun_ipv6_dst", "tun_ipv4_dst", "tun_ipv6_src", "tun_ipv4_src",
                        "tunnel_id", "eth_src", "eth_dst"})
GROUP_TYPES = frozenset({"all", "select", "indirect", "ff"})
_INSTRUCTION_ORDER = {"meter": 0, "apply": 1, "goto": 2}  # OF 1.3 execution order
#: OF 1.3 match prerequisites (OFPBMC_BAD_PREREQ): field -> (required field, values).
_PREREQUISITES = {"ip_proto": ("eth_type", {0x0800, 0x86DD}),
                  "ipv6_src": ("eth_type", {0x86DD}), "ipv6_dst": ("eth_type", {0x86DD}),
                  "ipv4_src": ("eth_type", {0x0800}), "ipv4_dst": ("eth_type", {0x0800}),
                  "udp_dst": ("ip_proto", {17}), "udp_src": ("ip_proto", {17}),
                  "icmpv6_type": ("ip_proto", {58})}
_ADDRESS_FIELDS = frozenset({"ipv6_src", "ipv6_dst", "ipv4_src", "ipv4_dst", "tun_ipv6_src",
                             "tun_ipv6_dst", "tun_ipv4_src", "tun_ipv4_dst"})


class Rejected(ValueError):
    """The switch refuses a message (a real switch would answer an OpenFlow error)."""


class Ambiguous(AssertionError):
    """Two flows of equal priority match one packet: OpenFlow leaves the result undefined."""


def _as_int(name: str, value: Any) -> int:
    if name in _ADDRESS_FIELDS:
        return int(ipaddress.ip_address(value))
    if name in ("eth_src", "eth_dst"):
        return int(str(value).replace(":", ""), 16)
    return int(value)


def field_matches(name: str, wanted: Any, value: Any) -> bool:
    """Whether a packet field value matches a canonical match value (maybe masked)."""
    if isinstance(wanted, tuple):
        raw, mask = wanted
        return _as_int(name, value) & _as_int(name, mask) == \
            _as_int(name, raw) & _as_int(name, mask)
    return _as_int(name, value) == _as_int(name, wanted)


@dataclass(frozen=True)
class Outcome:
    """A packet leaving (``port`` set) or dropped (``port`` None, ``reason`` says why)."""

    port: Optional[Port]
    packet: Packet
    table: int  # table of the flow that output or dropped it
    priority: Optional[int]  # its priority; None for a table miss
    meters: Tuple[int, ...] = ()
    choices: Choices = ()
    reason: Optional[str] = None

    @property
    def dropped(self) -> bool:
        return self.port is None


class _Choose(Exception):
    def __init__(self, group_id: int, buckets: List[int]) -> None:
        super().__init__(group_id)
        self.group_id, self.buckets = group_id, buckets


@dataclass
class _Run:
    choices: Dict[int, int]
    outcomes: List[Outcome] = field(default_factory=list)
    meters: List[int] = field(default_factory=list)
    table: int = 0
    priority: Optional[int] = None

    def emit(self, port: Optional[Port], packet: Dict[str, Any],
             reason: Optional[str] = None) -> None:
        self.outcomes.append(Outcome(port, MappingProxyType(dict(packet)), self.table,
                                     self.priority, tuple(self.meters),
                                     tuple(sorted(self.choices.items())), reason))


class FakeSwitch:
    """One datapath: its :class:`SwitchState`, port liveness and a message count."""

    def __init__(self, state: Optional[SwitchState] = None, tunnel_port: Optional[int] = None,
                 drop_reasons: Optional[Mapping[Tuple[int, int], str]] = None) -> None:
        self.state, self.tunnel_port = SwitchState(), tunnel_port
        self.drop_reasons = dict(drop_reasons or {})
        self.dead_ports: Set[int] = set()
        self.messages = 0
        self.message_counts: Counter[str] = Counter()
        if state is not None:  # install it: meters, groups, then flows
            self.apply(Changes(meter_adds=list(state.meters.values()),
                               group_adds=list(state.groups.values()),
                               flow_adds=list(state.flows.values())))

    # -- messages -----------------------------------------------------------------------

    def apply(self, changes: Changes) -> None:
        """Apply every message of ``changes`` in order; raises :class:`Rejected`."""
        st = self.state
        for flow in changes.flow_deletes:
            _require(flow.key in st.flows, f"delete of a missing flow {flow}")
            self._done("flow_delete", st.flows.pop(flow.key))
        for meter in changes.meter_adds + changes.meter_modifies:
            new = meter in changes.meter_adds
            _require((meter.meter_id in st.meters) != new, f"meter exists/missing: {meter}")
            self._done("meter_add" if new else "meter_modify", meter)
            st.meters[meter.meter_id] = meter
        for group in changes.group_adds + changes.group_modifies:
            new = group in changes.group_adds
            _require((group.group_id in st.groups) != new, f"group exists/missing: {group}")
            self._check_group(group)
            self._done("group_add" if new else "group_modify", group)
            st.groups[group.group_id] = group
        for flow in changes.flow_adds:
            self._check_flow(flow)
            self._done("flow_add", flow)
            st.flows[flow.key] = flow
        for flow in changes.flow_modifies:
            have = st.flows.get(flow.key)
            _require(have is not None, f"modify of a missing flow {flow}")
            self._check_flow(flow)
            self._done("flow_modify", flow)
            st.flows[flow.key] = replace(flow, cookie=have.cookie)  # type: ignore[union-attr]
        for group in changes.group_deletes:
            gid = group.group_id
            _require(gid in st.groups, f"delete of a missing group {group}")
            users: List[Union[Flow, Group]] = [
                f for f in st.flows.values() if ("group", gid) in _actions_of(f)]
            users += [g for g in st.groups.values() if g.group_id != gid and
                      any(("group", gid) in b.actions for b in g.buckets)]
            _require(not users, f"group {gid} is still used by {users[:1]}")
            self._done("group_delete", st.groups.pop(gid))
        for meter in changes.meter_deletes:
            mid = meter.meter_id
            _require(mid in st.meters, f"delete of a missing meter {meter}")
            _require(not any(("meter", mid) in f.instructions for f in st.flows.values()),
                     f"meter {mid} is still used by a flow")
            self._done("meter_delete", st.meters.pop(mid))

    def sync(self, desired: SwitchState) -> Changes:
        """Apply ``diff(desired, installed)`` and return it (what an app would send)."""
        changes = diff(desired, self.state)
        self.apply(changes)
        return changes

    def _done(self, kind: str, _item: object) -> None:
        self.messages += 1
        self.message_counts[kind] += 1

    def _check_flow(self, flow: Flow) -> None:
        names, values = [name for name, _ in flow.match], dict(flow.match)
        _require(len(set(names)) == len(names), f"duplicate match field in {flow}")
        for name in names:
            _require(name in MATCH_FIELDS, f"unsupported match field {name!r} in {flow}")
            need, allowed = _PREREQUISITES.get(name, (None, ()))
            _require(need is None or values.get(need) in allowed,
                     f"match field {name} needs {need} in {sorted(allowed)}: {flow}")
        kinds = [ins[0] for ins in flow.instructions]
        _require(len(set(kinds)) == len(kinds), f"duplicate instruction in {flow}")
        for ins in flow.instructions:
            _require(ins[0] in _INSTRUCTION_ORDER, f"unsupported instruction {ins!r}")
            if ins[0] == "meter":
                _require(ins[1] in self.state.meters, f"missing meter {ins[1]}: {flow}")
            elif ins[0] == "goto":
                _require(ins[1] > flow.table, f"goto {ins[1]} from table {flow.table}: {flow}")
            else:
                for action in ins[1]:
                    self._check_action(action)

    def _check_action(self, action: Action, in_group: Optional[int] = None) -> None:
        kind, size = (action[0] if action else None), len(action)
        if kind == "group" and size == 2:
            _require(action[1] != in_group, f"group {in_group} refers to itself")
            _require(action[1] in self.state.groups, f"missing group {action[1]}")
        elif kind == "set_field" and size == 3:
            _require(action[1] in SET_FIELDS, f"unsupported set_field {action[1]!r}")
        else:
            _require((kind == "output" and size in (2, 3) and isinstance(action[1], int))
                     or (kind == "controller" and size == 2) or tuple(action) == ("dec_ttl",),
                     f"unsupported action {action!r}")

    def _check_group(self, group: Group) -> None:
        _require(group.type in GROUP_TYPES, f"unknown group type {group.type!r}")
        _require(group.type != "indirect" or len(group.buckets) == 1,
                 f"indirect group {group.group_id} needs exactly one bucket")
        for bucket in group.buckets:  # the rules of OVS's ofputil_check_group_mod
            _require(group.type == "select" or not bucket.weight,
                     f"bucket weight outside a select group: {group}")
            _require(group.type not in ("all", "indirect") or bucket.watch_port is None,
                     f"watch port in an {group.type} group: {group}")
            _require(group.type != "ff" or bucket.watch_port is not None,
                     f"fast-failover bucket without a watch port: {group}")
            for action in bucket.actions:
                self._check_action(action, group.group_id)

    # -- packets ------------------------------------------------------------------------

    def set_port_live(self, port: int, live: bool = True) -> None:
        (self.dead_ports.discard if live else self.dead_ports.add)(port)

    def executions(self, packet: Packet) -> List[Tuple[Choices, List[Outcome]]]:
        """Every possible execution of ``packet``: one per combination of select buckets."""
        pending: List[Choices] = [()]
        done = []
        while pending:
            choices = pending.pop(0)
            run = _Run(dict(choices))
            try:
                self._pipeline(dict(packet), run)
            except _Choose as choose:
                pending.extend(choices + ((choose.group_id, i),) for i in choose.buckets)
                continue
            done.append((choices, run.outcomes))
        return done

    def process(self, packet: Packet) -> List[Outcome]:
        """All outcomes of all executions (see :meth:`executions` to keep them apart)."""
        return [outcome for _, outcomes in self.executions(packet) for outcome in outcomes]

    def outputs(self, packet: Packet) -> Set[Port]:
        """Every port the packet may leave through (``"controller"`` for packet-ins)."""
        return {o.port for o in self.process(packet) if o.port is not None}

    def tunnel_destinations(self, packet: Packet, port: Optional[int] = None
                            ) -> Set[Tuple[Optional[str], Optional[int]]]:
        """``(tunnel destination, key)`` of every way out through the tunnel port.

        Like OVS (``flow_tnl_dst``), a set ``tun_ipv4_dst`` wins over ``tun_ipv6_dst``;
        tunnel metadata of a packet received from a tunnel stays unless overwritten."""
        port = self.tunnel_port if port is None else port
        found = set()
        for out in (o for o in self.process(packet) if o.port == port and port is not None):
            dst = out.packet.get("tun_ipv4_dst")
            if dst is None or int(ipaddress.ip_address(dst)) == 0:
                dst = out.packet.get("tun_ipv6_dst")
            found.add((None if dst is None else str(ipaddress.ip_address(dst)),
                       out.packet.get("tunnel_id")))
        return found

    def dropped_by(self, packet: Packet) -> Optional[str]:
        """Why the packet goes nowhere, or None when it leaves through some port."""
        outcomes = self.process(packet)
        if any(not o.dropped for o in outcomes):
            return None
        return outcomes[0].reason if outcomes else "no outcome"

    def _lookup(self, table: int, packet: Dict[str, Any]) -> Optional[Flow]:
        hits = [flow for flow in self.state.flows.values() if flow.table == table and all(
            name in packet and field_matches(name, want, packet[name])
            for name, want in flow.match)]
        top = max((flow.priority for flow in hits), default=None)
        best = [flow for flow in hits if flow.priority == top]
        if len(best) > 1:
            raise Ambiguous(f"{best[0]} and {best[1]} both match {packet}")
        return best[0] if best else None

    def _pipeline(self, packet: Dict[str, Any], run: _Run) -> None:
        run.table = 0
        while True:
            flow = self._lookup(run.table, packet)
            run.priority = None if flow is None else flow.priority
            if flow is None or not flow.instructions:
                reason = "table miss" if flow is None else self.drop_reasons.get(
                    (flow.table, flow.priority), f"drop flow {flow.table}/{flow.priority}")
                run.emit(None, packet, reason)
                return
            before = len(run.outcomes)
            goto = None
            for ins in sorted(flow.instructions, key=lambda i: _INSTRUCTION_ORDER[i[0]]):
                if ins[0] == "meter":
                    run.meters.append(ins[1])
                elif ins[0] == "apply" and not self._actions(ins[1], packet, run):
                    return
                elif ins[0] == "goto":
                    goto = ins[1]
            if goto is None:
                if len(run.outcomes) == before:
                    run.emit(None, packet, "no output")
                return
            run.table = goto

    def _actions(self, actions: Tuple[Action, ...], packet: Dict[str, Any], run: _Run) -> bool:
        """Execute an action list on ``packet`` in place; False once the packet is dropped."""
        for action in actions:
            kind = action[0]
            if kind == "set_field":
                packet[action[1]] = action[2]
            elif kind == "dec_ttl":
                hop_limit = packet.get("hop_limit", DEFAULT_HOP_LIMIT)
                if hop_limit <= 1:
                    run.emit(None, packet, "hop limit exceeded")
                    return False
                packet["hop_limit"] = hop_limit - 1
            elif kind in ("output", "controller"):
                port = action[1] if kind == "output" else OFPP_CONTROLLER
                if port == OFPP_IN_PORT:
                    port = packet.get("in_port")
                run.emit(CONTROLLER if port == OFPP_CONTROLLER else port, packet)
            elif kind == "group":
                self._group(self.state.groups[action[1]], dict(packet), run)
        return True

    def _group(self, group: Group, packet: Dict[str, Any], run: _Run) -> None:
        indexes = list(range(len(group.buckets)))
        if group.type == "select":
            indexes = [i for i in indexes if group.buckets[i].weight > 0]
            if indexes and group.group_id not in run.choices:
                raise _Choose(group.group_id, indexes)
            indexes = [run.choices[group.group_id]] if indexes else []
        elif group.type == "ff":
            indexes = [i for i in indexes if group.buckets[i].watch_port not in self.dead_ports]
        if group.type != "all":
            indexes = indexes[:1]
        if not indexes:
            run.emit(None, packet, f"group {group.group_id} has no usable bucket")
        for index in indexes:
            self._actions(group.buckets[index].actions, dict(packet), run)


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise Rejected(problem)


def _actions_of(flow: Flow) -> List[Action]:
    return [a for ins in flow.instructions if ins[0] == "apply" for a in ins[1]]

