"""Translate between the flow model and OpenFlow 1.3 messages of the framework.

The only module that builds or reads framework message objects: flow/group/meter mods
from :mod:`ryu_apps.flowmodel` values, and flowmodel values from flow-stats,
group-desc and meter-config replies (so that a reconnect compares like with like).

Flow-mods and group-mods are normally not built as framework objects at all:
:func:`change_batches` encodes them directly (:mod:`ryu_apps.ofencode`, the same bytes,
several times faster) as :class:`Encoded` messages, and falls back to the framework for
anything the encoder does not cover (and for meter-mods, which are few).
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Tuple, Union

from . import ofencode
from .flowmodel import (Bucket, Changes, Flow, Group, Meter, canonical_action,
                        canonical_match)

LOG = logging.getLogger(__name__)

OFPP_CONTROLLER = 0xFFFFFFFD
OFPP_ANY = 0xFFFFFFFF
OFPG_ANY = 0xFFFFFFFF
_GROUP_TYPES = {"all": 0, "select": 1, "indirect": 2, "ff": 3}
_GROUP_NAMES = {v: k for k, v in _GROUP_TYPES.items()}
_INSTRUCTION_ORDER = {"meter": 0, "apply": 1, "goto": 2}


def _actions(parser: Any, actions: Tuple) -> List[Any]:
    out = []
    for action in actions:
        kind = action[0]
        if kind == "output":
            max_len = action[2] if len(action) > 2 else 0
            out.append(parser.OFPActionOutput(action[1], max_len))
        elif kind == "group":
            out.append(parser.OFPActionGroup(action[1]))
        elif kind == "set_field":
            value = action[2]
            out.append(parser.OFPActionSetField(**{action[1]: value}))
        elif kind == "dec_ttl":
            out.append(parser.OFPActionDecNwTtl())
        else:
            raise ValueError(f"unknown action {action!r}")
    return out


def _instructions(dp: Any, flow: Flow) -> List[Any]:
    parser, ofp = dp.ofproto_parser, dp.ofproto
    out = []
    for instruction in flow.instructions:
        kind = instruction[0]
        if kind == "meter":
            out.append(parser.OFPInstructionMeter(instruction[1], ofp.OFPIT_METER))
        elif kind == "apply":
            out.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                    _actions(parser, instruction[1])))
        elif kind == "goto":
            out.append(parser.OFPInstructionGotoTable(instruction[1]))
        else:
            raise ValueError(f"unknown instruction {instruction!r}")
    return out


def flow_mod(dp: Any, flow: Flow, command: str) -> Any:
    """An OFPFlowMod: ``command`` is "add", "modify" (strict) or "delete" (strict)."""
    parser, ofp = dp.ofproto_parser, dp.ofproto
    match = parser.OFPMatch(**dict(flow.match))
    if command == "delete":
        return parser.OFPFlowMod(dp, cookie=flow.cookie, table_id=flow.table,
                                 command=ofp.OFPFC_DELETE_STRICT, priority=flow.priority,
                                 out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=match)
    code = ofp.OFPFC_ADD if command == "add" else ofp.OFPFC_MODIFY_STRICT
    return parser.OFPFlowMod(dp, cookie=flow.cookie, table_id=flow.table, command=code,
                             priority=flow.priority, match=match,
                             instructions=_instructions(dp, flow))


def group_mod(dp: Any, group: Group, command: str) -> Any:
    parser, ofp = dp.ofproto_parser, dp.ofproto
    code = {"add": ofp.OFPGC_ADD, "modify": ofp.OFPGC_MODIFY, "delete": ofp.OFPGC_DELETE}[command]
    buckets = [parser.OFPBucket(weight=b.weight,
                                watch_port=b.watch_port if b.watch_port is not None else OFPP_ANY,
                                watch_group=OFPG_ANY, actions=_actions(parser, b.actions))
               for b in group.buckets] if command != "delete" else []
    return parser.OFPGroupMod(dp, code, _GROUP_TYPES[group.type], group.group_id, buckets)


def meter_mod(dp: Any, meter: Meter, command: str) -> Any:
    parser, ofp = dp.ofproto_parser, dp.ofproto
    code = {"add": ofp.OFPMC_ADD, "modify": ofp.OFPMC_MODIFY, "delete": ofp.OFPMC_DELETE}[command]
    flags = ofp.OFPMF_PKTPS | ofp.OFPMF_STATS | (ofp.OFPMF_BURST if meter.burst else 0)
    bands = [parser.OFPMeterBandDrop(rate=meter.rate, burst_size=meter.burst)]
    return parser.OFPMeterMod(dp, command=code, flags=flags, meter_id=meter.meter_id,
                              bands=bands if command != "delete" else [])


class Encoded:
    """A flow-mod or group-mod already encoded by :mod:`ryu_apps.ofencode`.

    It takes its xid like a framework message (``dp.set_xid(msg)`` calls
    ``msg.set_xid``), so xids keep coming from the datapath's own counter and errors and
    barriers match as before; it is then sent with ``dp.send(msg.buf)``, which is all
    ``Datapath.send_msg`` does after serialising (os-ken 3.x and Ryu 4.34 alike).
    """

    __slots__ = ("buf", "xid")

    def __init__(self, buf: bytes) -> None:
        self.buf = bytearray(buf)
        self.xid: Optional[int] = None

    def set_xid(self, xid: int) -> None:
        self.xid = xid
        ofencode.set_xid(self.buf, xid)

    def __repr__(self) -> str:
        return f"Encoded(xid={self.xid}, {len(self.buf)} octets)"


Message = Union[Encoded, Any]


def _fast_flow_mod(dp: Any, flow: Flow, command: str) -> Message:
    try:
        return Encoded(ofencode.flow_mod(flow, command, 0))
    except ValueError as exc:  # outside the encoder's subset: the framework knows more
        LOG.debug("flow-mod built by the framework: %s", exc)
        return flow_mod(dp, flow, command)


def _fast_group_mod(dp: Any, group: Group, command: str) -> Message:
    try:
        return Encoded(ofencode.group_mod(group, command, 0))
    except ValueError as exc:
        LOG.debug("group-mod built by the framework: %s", exc)
        return group_mod(dp, group, command)


def change_batches(dp: Any, changes: Changes, fast: bool = True) -> List[List[Message]]:
    """Messages for ``changes`` in batches to be separated by barriers.

    With ``fast`` (and an OpenFlow 1.3 datapath) flow-mods and group-mods are
    :class:`Encoded` messages where the encoder covers them, else framework messages.
    """
    fast = fast and getattr(dp.ofproto, "OFP_VERSION", None) == ofencode.OFP_VERSION
    fmod = _fast_flow_mod if fast else flow_mod
    gmod = _fast_group_mod if fast else group_mod
    batches = [
        [fmod(dp, f, "delete") for f in changes.flow_deletes],
        [meter_mod(dp, m, "add") for m in changes.meter_adds]
        + [meter_mod(dp, m, "modify") for m in changes.meter_modifies]
        + [gmod(dp, g, "add") for g in changes.group_adds]
        + [gmod(dp, g, "modify") for g in changes.group_modifies],
        [fmod(dp, f, "add") for f in changes.flow_adds]
        + [fmod(dp, f, "modify") for f in changes.flow_modifies],
        [gmod(dp, g, "delete") for g in changes.group_deletes]
        + [meter_mod(dp, m, "delete") for m in changes.meter_deletes],
    ]
    return [batch for batch in batches if batch]


# -- reading the switch -------------------------------------------------------------------
def _read_actions(actions: List[Any]) -> Tuple:
    out = []
    for action in actions:
        name = type(action).__name__
        if name == "OFPActionOutput":
            if action.port == OFPP_CONTROLLER:
                out.append(("output", action.port, action.max_len))
            else:
                out.append(("output", action.port))
        elif name == "OFPActionGroup":
            out.append(("group", action.group_id))
        elif name == "OFPActionSetField":
            out.append(canonical_action(("set_field", action.key, action.value)))
        elif name == "OFPActionDecNwTtl":
            out.append(("dec_ttl",))
        else:
            out.append(("unknown", name))
    return tuple(out)


def read_flow(stat: Any) -> Flow:
    """A flowmodel Flow from one OFPFlowStats entry."""
    instructions = []
    for inst in stat.instructions:
        name = type(inst).__name__
        if name == "OFPInstructionMeter":
            instructions.append(("meter", inst.meter_id))
        elif name == "OFPInstructionActions":
            instructions.append(("apply", _read_actions(inst.actions)))
        elif name == "OFPInstructionGotoTable":
            instructions.append(("goto", inst.table_id))
        else:
            instructions.append(("unknown", name))
    instructions.sort(key=lambda i: _INSTRUCTION_ORDER.get(i[0], 9))
    return Flow(stat.table_id, stat.priority, canonical_match(stat.match.items()),
                tuple(instructions), stat.cookie)


def read_group(desc: Any) -> Group:
    group_type = _GROUP_NAMES.get(desc.type, str(desc.type))
    buckets = []
    for bucket in desc.buckets:
        watch = bucket.watch_port if group_type == "ff" else None
        weight = bucket.weight if group_type == "select" else 0
        buckets.append(Bucket(_read_actions(bucket.actions), weight, watch))
    return Group(desc.group_id, group_type, tuple(buckets))


def read_meter(config: Any) -> Meter:
    band = config.bands[0] if config.bands else None
    return Meter(config.meter_id, band.rate if band else 0, band.burst_size if band else 0)
