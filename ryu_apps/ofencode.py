"""Direct OpenFlow 1.3 wire encoding of flow-mods and group-mods from flowmodel values.

Building these messages through the framework's generic API (``OFPMatch(**fields)``
with its per-field type lookups and netaddr conversions, then ``MsgBase.serialize``)
was about a third of the home agent's busy CPU while MRs register. This module writes
the same bytes with ``struct`` and ``ipaddress`` only, memoising the parts that repeat
(one OXM TLV per field value, one action list or instruction list per distinct value).

Scope is exactly what :mod:`ryu_apps.pipeline` emits; everything else raises
:class:`ValueError` naming what is unsupported, and the caller falls back to the
framework (:mod:`ryu_apps.ofmsg`). The byte layout follows os-ken's encoding, which the
oracle test (``tests/unit/test_ofencode.py``) checks byte for byte, including its
quirks: OXM fields are ordered by OXM type (class, then field number), so the Nicira
NXM_1 fields (class 0x0001) come before the OpenFlow-basic ones (class 0x8000); a
masked value is sent with the mask applied; add/modify flow-mods carry out_port and
out_group 0, delete-strict ones ANY.

Framework-free and Python 3.9 compatible: the app also runs on Ryu 4.34.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import struct
from typing import TYPE_CHECKING, Dict, Tuple

if TYPE_CHECKING:  # annotations only: flowmodel is as pure as this module
    from .flowmodel import Flow, Group

OFP_VERSION = 0x04
OFPT_FLOW_MOD, OFPT_GROUP_MOD = 14, 15
OFP_NO_BUFFER = 0xFFFFFFFF
OFPP_ANY = 0xFFFFFFFF
OFPG_ANY = 0xFFFFFFFF
OFPMT_OXM = 1
OFPIT_GOTO_TABLE, OFPIT_APPLY_ACTIONS, OFPIT_METER = 1, 4, 6
OFPAT_OUTPUT, OFPAT_GROUP, OFPAT_DEC_NW_TTL, OFPAT_SET_FIELD = 0, 22, 24, 25

FLOW_COMMANDS: Dict[str, int] = {"add": 0, "modify": 2, "delete": 4}  # modify/delete strict
GROUP_COMMANDS: Dict[str, int] = {"add": 0, "modify": 1, "delete": 2}
GROUP_TYPES: Dict[str, int] = {"all": 0, "select": 1, "indirect": 2, "ff": 3}

_BASIC, _NXM_1 = 0x8000, 0x0001
# name -> (OXM class, field number, value kind, value size). Nicira tun_* fields use the
# NXM_1 class with the ordinary 32-bit OXM header, as os-ken and OVS do.
_OXM: Dict[str, Tuple[int, int, str, int]] = {
    "in_port": (_BASIC, 0, "int", 4),
    "eth_dst": (_BASIC, 3, "mac", 6),
    "eth_src": (_BASIC, 4, "mac", 6),
    "eth_type": (_BASIC, 5, "int", 2),
    "ip_proto": (_BASIC, 10, "int", 1),
    "ipv4_src": (_BASIC, 11, "ipv4", 4),
    "ipv4_dst": (_BASIC, 12, "ipv4", 4),
    "udp_dst": (_BASIC, 16, "int", 2),
    "ipv6_src": (_BASIC, 26, "ipv6", 16),
    "ipv6_dst": (_BASIC, 27, "ipv6", 16),
    "icmpv6_type": (_BASIC, 29, "int", 1),
    "tunnel_id": (_BASIC, 38, "int", 8),
    "tun_ipv4_src": (_NXM_1, 31, "ipv4", 4),
    "tun_ipv4_dst": (_NXM_1, 32, "ipv4", 4),
    "tun_ipv6_src": (_NXM_1, 109, "ipv6", 16),
    "tun_ipv6_dst": (_NXM_1, 110, "ipv6", 16),
}
#: Fields the encoder accepts in a match / in a set_field action (what pipeline emits).
MATCH_FIELDS = frozenset(("in_port", "eth_type", "eth_src", "eth_dst", "ip_proto",
                          "ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst", "udp_dst",
                          "icmpv6_type", "tunnel_id", "tun_ipv6_src", "tun_ipv4_src"))
SET_FIELDS = frozenset(("eth_src", "eth_dst", "tunnel_id", "tun_ipv4_dst", "tun_ipv6_dst"))

_HEADER = struct.Struct("!BBHI")
_FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")
_GROUP_MOD = struct.Struct("!HBxI")
_BUCKET = struct.Struct("!HHII4x")
_OXM_HEADER = struct.Struct("!I")
_MATCH_HEADER = struct.Struct("!HH")
_ACTION_HEADER = struct.Struct("!HH")
_ACTION_OUTPUT = struct.Struct("!HHIH6x")
_ACTION_GROUP = struct.Struct("!HHI")
_INSTRUCTION_METER = struct.Struct("!HHI")
_INSTRUCTION_GOTO = struct.Struct("!HHB3x")
_INSTRUCTION_ACTIONS = struct.Struct("!HH4x")
_DEC_NW_TTL = struct.pack("!HH4x", OFPAT_DEC_NW_TTL, 8)
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z")
_CACHE = 1 << 16


def _pad8(length: int) -> int:
    return (length + 7) // 8 * 8


@functools.lru_cache(maxsize=_CACHE)
def _packed_address(kind: str, text: str) -> bytes:
    # Memoised apart from the field: a care-of address is matched as tun_ipv6_src and set
    # as tun_ipv6_dst, and ipaddress parsing is the largest cost of a cold encoding.
    if "%" in text:  # ipaddress (3.9+) takes a scope id the wire cannot carry
        raise ValueError(f"scoped address {text!r}")
    try:
        return (ipaddress.IPv4Address if kind == "ipv4" else ipaddress.IPv6Address)(text).packed
    except ipaddress.AddressValueError as exc:
        raise ValueError(str(exc)) from None


def _value_bytes(name: str, kind: str, size: int, value: object) -> bytes:
    if kind == "int":
        if type(value) is not int or not 0 <= value < 1 << (8 * size):  # noqa: E721 - no bool
            raise ValueError(f"{name}: {value!r} is not an unsigned {8 * size}-bit integer")
        return value.to_bytes(size, "big")
    if not isinstance(value, str):
        raise ValueError(f"{name}: {value!r} is not an address string")
    if kind == "mac":
        if not _MAC.match(value):
            raise ValueError(f"{name}: {value!r} is not a MAC address xx:xx:xx:xx:xx:xx")
        return bytes.fromhex(value.replace(":", ""))
    try:
        return _packed_address(kind, value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _oxm(name: str, value: object) -> Tuple[int, bytes]:
    """(OXM type, for ordering; TLV bytes) of one field value."""
    oxm_class, number, kind, size = _OXM[name]
    oxm_type = oxm_class << 7 | number
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(f"{name}: masked value {value!r} is not (value, mask)")
        raw = _value_bytes(name, kind, size, value[0])
        mask = _value_bytes(name, kind, size, value[1])
        raw = bytes(a & b for a, b in zip(raw, mask))  # the switch stores it masked
        return oxm_type, _OXM_HEADER.pack(oxm_type << 9 | 1 << 8 | 2 * size) + raw + mask
    return oxm_type, _OXM_HEADER.pack(oxm_type << 9 | size) + _value_bytes(name, kind, size,
                                                                           value)


# Memoised per (field, value): the same key, care-of address or prefix recurs in several
# flows of a registration, and in every later change of that MR. ``typed`` keeps 1 and
# True (or 1.0) apart.
@functools.lru_cache(maxsize=_CACHE, typed=True)
def _match_oxm(name: str, value: object) -> Tuple[int, bytes]:
    if name not in MATCH_FIELDS:
        raise ValueError(f"unsupported match field {name!r}")
    return _oxm(name, value)


@functools.lru_cache(maxsize=_CACHE, typed=True)
def _set_field_oxm(name: str, value: object) -> bytes:
    if name not in SET_FIELDS:
        raise ValueError(f"unsupported set_field field {name!r}")
    if isinstance(value, tuple):
        raise ValueError(f"set_field {name}: masked value {value!r}")
    return _oxm(name, value)[1]


def encode_match(match: Tuple[Tuple[str, object], ...]) -> bytes:
    """ofp_match (OXM) of a canonical flowmodel match, padded to 8 octets."""
    try:
        fields = [_match_oxm(name, value) for name, value in match]
    except TypeError:  # an unhashable value (a list): not a flowmodel value
        raise ValueError(f"unsupported match value in {match!r}") from None
    fields.sort()  # os-ken's order: by OXM type (class << 7 | field)
    for before, after in zip(fields, fields[1:]):
        if before[0] == after[0]:
            raise ValueError(f"a match field is given twice in {match!r}")
    body = b"".join([tlv for _, tlv in fields])
    length = 4 + len(body)
    return _MATCH_HEADER.pack(OFPMT_OXM, length) + body + bytes(_pad8(length) - length)


def _action(action: tuple) -> bytes:
    kind = action[0] if action else None
    if kind == "output" and len(action) in (2, 3):
        max_len = action[2] if len(action) == 3 else 0
        return _ACTION_OUTPUT.pack(OFPAT_OUTPUT, 16, action[1], max_len)
    if kind == "group" and len(action) == 2:
        return _ACTION_GROUP.pack(OFPAT_GROUP, 8, action[1])
    if kind == "dec_ttl" and len(action) == 1:
        return _DEC_NW_TTL
    if kind == "set_field" and len(action) == 3:
        try:
            tlv = _set_field_oxm(action[1], action[2])
        except TypeError:
            raise ValueError(f"unsupported set_field value in {action!r}") from None
        length = _pad8(4 + len(tlv))
        return _ACTION_HEADER.pack(OFPAT_SET_FIELD, length) + tlv + bytes(length - 4 - len(tlv))
    raise ValueError(f"unsupported action {action!r}")


@functools.lru_cache(maxsize=_CACHE)
def encode_actions(actions: Tuple[tuple, ...]) -> bytes:
    """An action list (every action is a multiple of 8 octets long)."""
    try:
        return b"".join(_action(tuple(a)) for a in actions)
    except struct.error as exc:
        raise ValueError(f"action value out of range in {actions!r}: {exc}") from None


@functools.lru_cache(maxsize=_CACHE)
def encode_instructions(instructions: Tuple[tuple, ...]) -> bytes:
    """Instructions in the given order (flowmodel keeps meter, apply, goto)."""
    out = []
    try:
        for instruction in instructions:
            kind = instruction[0] if instruction else None
            if kind == "meter" and len(instruction) == 2:
                out.append(_INSTRUCTION_METER.pack(OFPIT_METER, 8, instruction[1]))
            elif kind == "apply" and len(instruction) == 2:
                actions = encode_actions(tuple(instruction[1]))
                out.append(_INSTRUCTION_ACTIONS.pack(OFPIT_APPLY_ACTIONS, 8 + len(actions))
                           + actions)
            elif kind == "goto" and len(instruction) == 2:
                out.append(_INSTRUCTION_GOTO.pack(OFPIT_GOTO_TABLE, 8, instruction[1]))
            else:
                raise ValueError(f"unsupported instruction {instruction!r}")
    except struct.error as exc:
        raise ValueError(f"instruction value out of range in {instructions!r}: {exc}") from None
    return b"".join(out)


def _message(msg_type: int, body: bytes, xid: int) -> bytes:
    length = 8 + len(body)
    try:
        return _HEADER.pack(OFP_VERSION, msg_type, length, xid) + body
    except struct.error as exc:
        raise ValueError(f"message length {length} or xid {xid!r} out of range: {exc}") \
            from None


def flow_mod(flow: Flow, command: str, xid: int) -> bytes:
    """OFPT_FLOW_MOD for a flowmodel ``Flow``: ``command`` "add", "modify" (strict) or
    "delete" (strict); cookie, table and priority from the flow, timeouts 0, no buffer,
    flags 0. Raises ValueError for anything outside the supported subset."""
    try:
        code = FLOW_COMMANDS[command]
    except KeyError:
        raise ValueError(f"unsupported flow-mod command {command!r}") from None
    try:
        match_bytes = encode_match(flow.match)
        instructions = b""
        if command == "delete":
            out_port, out_group = OFPP_ANY, OFPG_ANY
        else:  # what the framework sends for add/modify (the switch ignores them there)
            out_port, out_group = 0, 0
            instructions = encode_instructions(flow.instructions)
    except TypeError:
        raise ValueError(f"unsupported match or instructions in {flow!r}") from None
    try:
        fixed = _FLOW_MOD.pack(flow.cookie, 0, flow.table, code, 0, 0, flow.priority,
                               OFP_NO_BUFFER, out_port, out_group, 0)
    except struct.error as exc:
        raise ValueError(f"cookie, table or priority out of range in {flow!r}: {exc}") \
            from None
    return _message(OFPT_FLOW_MOD, fixed + match_bytes + instructions, xid)


def group_mod(group: Group, command: str, xid: int) -> bytes:
    """OFPT_GROUP_MOD for a flowmodel ``Group``: ``command`` "add", "modify" or "delete"
    (a delete carries no buckets). Raises ValueError outside the supported subset."""
    try:
        code = GROUP_COMMANDS[command]
        group_type = GROUP_TYPES[group.type]
    except KeyError:
        raise ValueError(f"unsupported group-mod command {command!r} or group type "
                         f"{getattr(group, 'type', None)!r}") from None
    parts = []
    try:
        parts.append(_GROUP_MOD.pack(code, group_type, group.group_id))
        if command != "delete":
            for bucket in group.buckets:
                actions = encode_actions(tuple(bucket.actions))
                watch = OFPP_ANY if bucket.watch_port is None else bucket.watch_port
                parts.append(_BUCKET.pack(16 + len(actions), bucket.weight, watch, OFPG_ANY)
                             + actions)
    except struct.error as exc:
        raise ValueError(f"group value out of range in {group!r}: {exc}") from None
    except TypeError:
        raise ValueError(f"unsupported bucket actions in {group!r}") from None
    return _message(OFPT_GROUP_MOD, b"".join(parts), xid)


def set_xid(buf: bytearray, xid: int) -> None:
    """Write ``xid`` into an encoded message's header (assigned when it is sent)."""
    struct.pack_into("!I", buf, 4, xid)
