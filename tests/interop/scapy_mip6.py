"""Test-only scapy extensions for the Mobility Header features scapy 2.8 lacks.

scapy is GPL-2.0-only: this module lives under ``tests/`` and must never be
imported by an installed package (``mip6``, ``ryu_apps``, ``mr_agent``,
``topologies``). It is an *independent* encoder/decoder used to cross-check our
own codec, so it deliberately does not import ``mip6``.

Importing it registers, in scapy's own dispatch tables:

* mobility options (``scapy.layers.inet6.moboptcls``):

  ====  ==========================  ===========================  =============
  type  class                       layout after Type/Length     alignment
  ====  ==========================  ===========================  =============
  29    ``MIP6OptIPv4HoA``          plen:6 P:1 res:9, IPv4 HoA   4n
  30    ``MIP6OptIPv4AddrAck``      status, plen:6 res:2, IPv4   4n
  31    ``MIP6OptNATDetection``     F:1 res:15, refresh (u32)    4n
  32    ``MIP6OptIPv4CoA``          reserved (u16), IPv4 CoA     4n
  33    ``MIP6OptGREKey``           reserved (u16), [GRE key]    4n+2
  35    ``MIP6OptBindingId``        BID, status, H:1 PRI:7,      2n, or 8n+2
                                    [CoA: 4 or 16 bytes]         with a CoA
  ====  ==========================  ===========================  =============

  The 29-32 alignments are the digest's assumption (4n); the GRE key one (4n+2)
  could not be checked against the RFC 5845 text. Receivers must not care.
  A GRE Key option of length 2 carries no key (RFC 5845 keyless negotiation).
* the Home Agent Switch message, MH type 12 (RFC 5142), ``MIP6MH_HAS``;
* UDP port 4191 (RFC 5555 DSMIPv6): dissected as IPv6 or IPv4 by version
  nibble, and ``UDP()/IPv6()`` defaults to destination port 4191.

Helpers (see each docstring): ``mh_checksum_raw``, ``mh_checksum``,
``pseudo_header_addresses``,
``mh_bytes``, ``with_correct_mh_checksum``, ``mn_ha_authenticator``,
``sign_mn_ha``, ``dsmip6_packet``.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import struct
from typing import Any, Callable, Optional, Tuple, Union

from scapy.compat import raw
from scapy.fields import (
    BitField,
    ByteEnumField,
    ByteField,
    ConditionalField,
    Field,
    FieldLenField,
    IntField,
    IPField,
    ShortField,
    XShortField,
)
from scapy.layers import inet6
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import (
    HAO,
    IP6ListField,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
    MIP6OptMsgAuth,
    MIP6OptUnknown,
    _MIP6OptAlign,
    _MobilityHeader,
    _OptionsField,
    _PhantomAutoPadField,
    ipv6nh,
)
from scapy.packet import NoPayload, Packet, bind_bottom_up, bind_top_down

DSMIP6_PORT = 4191
MH_PROTO = 135

# IANA Binding Acknowledgement statuses scapy's ``bastatus`` lacks (RFC 5648,
# RFC 5845, RFC 4285 ...); merged into a private copy for the BID option.
_EXTRA_BA_STATUS = {
    2: "GRE_KEY_OPTION_NOT_REQUIRED",
    3: "GRE_TUNNELING_BUT_TLV_HEADER_NOT_SUPPORTED",
    4: "MCOA NOTCOMPLETE",
    5: "MCOA RETURNHOME WO/NDP",
    163: "GRE_KEY_OPTION_REQUIRED",
    164: "MCOA MALFORMED",
    165: "MCOA NON-MCOA BINDING EXISTS",
    166: "MCOA PROHIBITED",
    167: "MCOA UNKNOWN COA",
    168: "MCOA BULK REGISTRATION PROHIBITED",
    169: "MCOA SIMULTANEOUS HOME AND FOREIGN PROHIBITED",
    174: "Invalid Care-of Address",
}
BA_STATUS = {**inet6.bastatus, **_EXTRA_BA_STATUS}

IPV4_ACK_STATUS = {
    0: "Success",
    128: "Failure, reason unspecified",
    129: "Administratively prohibited",
    130: "Incorrect IPv4 home address",
    131: "Invalid IPv4 address",
    132: "Dynamic IPv4 home address assignment not available",
    133: "Prefix allocation unauthorized",
}

_OPTION_NAMES = {
    29: "IPv4 Home Address (RFC5555)",
    30: "IPv4 Address Acknowledgement (RFC5555)",
    31: "NAT Detection (RFC5555)",
    32: "IPv4 Care-of Address (RFC5555)",
    33: "GRE Key (RFC5845)",
    35: "Binding Identifier (RFC5648)",
}


def _alignment_delta(x: int, y: int, curpos: int) -> int:
    """Bytes of padding needed so that an option starts at ``x*n + y``."""
    if x == 0:
        return 0
    return (y - curpos) % x


class _AddrByLenField(Field):  # type: ignore[type-arg]
    """An optional IPv4 or IPv6 address whose size comes from the option length.

    Internal value: ``None`` (absent), a dotted-quad string, an IPv6 string, or
    raw ``bytes`` when the wire size is neither 4 nor 16 (malformed input).
    """

    __slots__ = ["length_from"]
    islist = 0

    def __init__(
        self, name: str, default: Optional[str], length_from: Callable[[Packet], int]
    ) -> None:
        Field.__init__(self, name, default)
        self.length_from = length_from

    def i2m(self, pkt: Optional[Packet], x: Union[None, str, bytes]) -> bytes:
        if x is None:
            return b""
        if isinstance(x, bytes):
            return x
        if ":" in x:
            return socket.inet_pton(socket.AF_INET6, x)
        return socket.inet_pton(socket.AF_INET, x)

    def m2i(self, pkt: Optional[Packet], x: bytes) -> Union[None, str, bytes]:
        if not x:
            return None
        if len(x) == 4:
            return socket.inet_ntop(socket.AF_INET, x)
        if len(x) == 16:
            return socket.inet_ntop(socket.AF_INET6, x)
        return x

    def any2i(self, pkt: Optional[Packet], x: Any) -> Any:
        return x

    def i2len(self, pkt: Packet, x: Any) -> int:
        return len(self.i2m(pkt, x))

    def addfield(self, pkt: Packet, s: bytes, val: Any) -> bytes:
        return s + self.i2m(pkt, val)

    def getfield(self, pkt: Packet, s: bytes) -> Tuple[bytes, Union[None, str, bytes]]:
        size = max(0, self.length_from(pkt))
        return s[size:], self.m2i(pkt, s[:size])


class MIP6OptBindingId(_MIP6OptAlign):
    """Binding Identifier option, type 35 (RFC 5648, byte 5 as in RFC 6089).

    ``hflag`` is the H bit (0x80 of byte 5), ``bidpri`` the 7-bit BID-PRI.
    ``coa`` is ``None`` (length 4), an IPv4 (length 8) or IPv6 (length 20)
    address. Alignment: 2n without a CoA, 8n+2 with one.
    """

    name = "MIPv6 Option - Binding Identifier"
    fields_desc = [
        ByteEnumField("otype", 35, _OPTION_NAMES),
        FieldLenField("olen", None, length_of="coa", fmt="B", adjust=lambda pkt, x: x + 4),
        ShortField("bid", 0),
        ByteEnumField("status", 0, BA_STATUS),
        BitField("hflag", 0, 1),
        BitField("bidpri", 0, 7),
        _AddrByLenField("coa", None, length_from=lambda pkt: pkt.olen - 4),
    ]
    x = 2
    y = 0

    def alignment_delta(self, curpos: int) -> int:
        if self.coa is None:
            return _alignment_delta(2, 0, curpos)
        return _alignment_delta(8, 2, curpos)


class MIP6OptIPv4HoA(_MIP6OptAlign):
    """IPv4 Home Address option, type 29 (RFC 5555). ``p`` is the 0x0200 bit."""

    name = "MIPv6 Option - IPv4 Home Address"
    fields_desc = [
        ByteEnumField("otype", 29, _OPTION_NAMES),
        ByteField("olen", 6),
        BitField("plen", 0, 6),
        BitField("p", 0, 1),
        BitField("reserved", 0, 9),
        IPField("hoa", "0.0.0.0"),
    ]
    x = 4
    y = 0


class MIP6OptIPv4AddrAck(_MIP6OptAlign):
    """IPv4 Address Acknowledgement option, type 30 (RFC 5555)."""

    name = "MIPv6 Option - IPv4 Address Acknowledgement"
    fields_desc = [
        ByteEnumField("otype", 30, _OPTION_NAMES),
        ByteField("olen", 6),
        ByteEnumField("status", 0, IPV4_ACK_STATUS),
        BitField("plen", 0, 6),
        BitField("reserved", 0, 2),
        IPField("hoa", "0.0.0.0"),
    ]
    x = 4
    y = 0


class MIP6OptNATDetection(_MIP6OptAlign):
    """NAT Detection option, type 31 (RFC 5555). ``f`` is the 0x8000 bit."""

    name = "MIPv6 Option - NAT Detection"
    fields_desc = [
        ByteEnumField("otype", 31, _OPTION_NAMES),
        ByteField("olen", 6),
        BitField("f", 0, 1),
        BitField("reserved", 0, 15),
        IntField("refresh", 0),
    ]
    x = 4
    y = 0


class MIP6OptIPv4CoA(_MIP6OptAlign):
    """IPv4 Care-of Address option, type 32 (RFC 5555)."""

    name = "MIPv6 Option - IPv4 Care-of Address"
    fields_desc = [
        ByteEnumField("otype", 32, _OPTION_NAMES),
        ByteField("olen", 6),
        ShortField("reserved", 0),
        IPField("coa", "0.0.0.0"),
    ]
    x = 4
    y = 0


class MIP6OptGREKey(_MIP6OptAlign):
    """GRE Key option, type 33 (RFC 5845). ``olen=2`` omits the key."""

    name = "MIPv6 Option - GRE Key"
    fields_desc = [
        ByteEnumField("otype", 33, _OPTION_NAMES),
        ByteField("olen", 6),
        ShortField("reserved", 0),
        ConditionalField(IntField("grekey", 0), lambda pkt: pkt.olen != 2),
    ]
    x = 4
    y = 2


class MIP6MH_HAS(_MobilityHeader):
    """Home Agent Switch message, MH type 12 (RFC 5142)."""

    name = "IPv6 Mobility Header - Home Agent Switch"
    fields_desc = [
        ByteEnumField("nh", 59, ipv6nh),
        ByteField("len", None),
        ByteEnumField("mhtype", 12, inet6.mhtypes),
        ByteField("res", None),
        XShortField("cksum", None),
        FieldLenField("naddrs", None, count_of="addresses", fmt="B"),
        ByteField("reserved", 0),
        IP6ListField("addresses", [], count_from=lambda pkt: pkt.naddrs),
        _PhantomAutoPadField("autopad", 1),
        # 8 + 16*n is 0 mod 8, so curpos 8 gives the right alignment for any n.
        _OptionsField(
            "options",
            [],
            MIP6OptUnknown,
            8,
            length_from=lambda pkt: 8 * (pkt.len + 1) - 8 - 16 * pkt.naddrs,
        ),
    ]
    overload_fields = {IPv6: {"nh": MH_PROTO}}


class _DSMIP6Inner(Packet):
    """Dissection dispatcher for UDP/4191: IPv6 or IPv4 by the version nibble."""

    name = "DSMIPv6 payload"

    @classmethod
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any, **kargs: Any) -> type:
        if _pkt and (_pkt[0] >> 4) == 4:
            return IP
        return IPv6


NEW_OPTIONS = {
    29: MIP6OptIPv4HoA,
    30: MIP6OptIPv4AddrAck,
    31: MIP6OptNATDetection,
    32: MIP6OptIPv4CoA,
    33: MIP6OptGREKey,
    35: MIP6OptBindingId,
}


def _register() -> None:
    for otype, cls in NEW_OPTIONS.items():
        inet6.moboptcls[otype] = cls
        inet6._mobopttypes.setdefault(otype, _OPTION_NAMES[otype])
    inet6.mhtypes.setdefault(12, "HAS")
    inet6._mip6_mhtype2cls[12] = MIP6MH_HAS
    for port_field in ("sport", "dport"):
        bind_bottom_up(UDP, _DSMIP6Inner, **{port_field: DSMIP6_PORT})
    bind_top_down(UDP, IPv6, dport=DSMIP6_PORT)


_register()


# --------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------


def _inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def mh_checksum_raw(mh: bytes, src: str, dst: str) -> int:
    """RFC 6275 MH checksum of ``mh`` (its checksum field is ignored).

    ``src``/``dst`` are the pseudo-header addresses: HoA as source when an HAO
    is present, HoA (RH2 address) as destination when a type 2 RH is present.
    """
    body = mh[:4] + b"\x00\x00" + mh[6:]
    pseudo = (
        socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + struct.pack("!I3xB", len(body), MH_PROTO)
    )
    return _inet_checksum(pseudo + body)


def _mh_layer(pkt: Packet) -> _MobilityHeader:
    layer = pkt
    while isinstance(layer, Packet) and not isinstance(layer, NoPayload):
        if isinstance(layer, _MobilityHeader):
            return layer
        layer = layer.payload
    raise ValueError("packet has no Mobility Header layer")


def pseudo_header_addresses(pkt: Packet) -> Tuple[str, str]:
    """(source, destination) for the MH pseudo-header of ``pkt``.

    Unlike scapy's ``in6_pseudoheader`` this finds the HAO among any number of
    options (a dissected Destination Options header is ``[PadN, HAO]``), and
    takes the RH2 address as destination whatever Segments Left says.
    """
    mh = _mh_layer(pkt)
    src = dst = None
    layer = mh.underlayer
    while layer is not None and not isinstance(layer, IPv6):
        if isinstance(layer, IPv6ExtHdrDestOpt) and src is None:
            for opt in layer.options:
                if isinstance(opt, HAO):
                    src = opt.hoa
        elif isinstance(layer, IPv6ExtHdrRouting) and dst is None and layer.addresses:
            if layer.type == 2:
                dst = layer.addresses[0]
            elif layer.segleft:
                dst = layer.addresses[-1]
        layer = layer.underlayer
    if layer is None:
        raise ValueError("Mobility Header has no IPv6 underlayer")
    return (src or layer.src, dst or layer.dst)


def mh_bytes(pkt: Packet) -> bytes:
    """The Mobility Header of ``pkt`` as bytes (as scapy builds it)."""
    mh = _mh_layer(pkt)
    data = raw(mh)
    return data[: (data[1] + 1) * 8]


def mh_checksum(pkt: Packet) -> int:
    """Correct MH checksum for ``pkt`` (built or dissected), see module doc."""
    src, dst = pseudo_header_addresses(pkt)
    return mh_checksum_raw(mh_bytes(pkt), src, dst)


def with_correct_mh_checksum(pkt: Packet) -> Packet:
    """Copy of ``pkt`` whose MH checksum field holds ``mh_checksum(pkt)``."""
    out = pkt.copy()
    mh = _mh_layer(out)
    mh.cksum = mh_checksum(out)
    return out


# --------------------------------------------------------------------------
# RFC 4285 MN-HA authentication
# --------------------------------------------------------------------------


def _auth_spi_end(mh: bytes) -> int:
    """Offset just past the Mobility SPI of the (last) type 9 option in ``mh``."""
    # Where the options start, per MH type: BRR, BU, BA, BE, HAS.
    start = {0: 8, 5: 12, 6: 12, 7: 24, 12: 8 + 16 * mh[6] if len(mh) > 6 else 8}.get(mh[2])
    if start is None:
        raise ValueError("no option walker for MH type %d" % mh[2])
    end = (mh[1] + 1) * 8
    pos, found = start, None
    while pos < end:
        otype = mh[pos]
        if otype == 0:
            pos += 1
            continue
        if otype == 9:
            found = pos + 7  # type, length, subtype, 4-byte SPI
        pos += 2 + mh[pos + 1]
    if found is None:
        raise ValueError("no Mobility Message Authentication option")
    return found


def mn_ha_authenticator(key: bytes, coa: str, hoa: str, mh: bytes) -> bytes:
    """RFC 4285 MN-HA authenticator (HMAC-SHA1-96).

    HMAC-SHA1(key, CoA || HoA || MH from its first byte up to and including the
    SPI of the authentication option, checksum zeroed), first 12 bytes. ``mh``
    must already carry its final Header Len.
    """
    end = _auth_spi_end(mh)
    data = mh[:4] + b"\x00\x00" + mh[6:end]
    msg = socket.inet_pton(socket.AF_INET6, coa) + socket.inet_pton(socket.AF_INET6, hoa) + data
    return hmac.new(key, msg, hashlib.sha1).digest()[:12]


def _default_coa_hoa(pkt: Packet) -> Tuple[str, str]:
    """(CoA, HoA) as seen in a BU (HAO) or a BA (RH2); falls back to src/dst."""
    mh = _mh_layer(pkt)
    ipv6 = mh.underlayer
    while ipv6 is not None and not isinstance(ipv6, IPv6):
        ipv6 = ipv6.underlayer
    if ipv6 is None:
        raise ValueError("Mobility Header has no IPv6 underlayer")
    src, dst = pseudo_header_addresses(pkt)
    if src != ipv6.src:  # HAO present: MN -> HA
        return ipv6.src, src
    if dst != ipv6.dst:  # RH2 present: HA -> MN
        return ipv6.dst, dst
    return ipv6.src, ipv6.src


def sign_mn_ha(
    pkt: Packet,
    key: bytes,
    coa: Optional[str] = None,
    hoa: Optional[str] = None,
) -> Packet:
    """Copy of ``pkt`` with the RFC 4285 authenticator filled in, then the MH
    checksum recomputed (``mh_checksum``).

    The MH must end with a ``MIP6OptMsgAuth`` (its ``mspi``/``subtype`` set by
    the caller; ``authdata`` is overwritten). CoA/HoA default to the outer
    source and the HAO address (BU) or the outer destination and the RH2
    address (BA); pass them explicitly for anything else (e.g. an MH-only
    wrapper, or a DSMIPv6 BU without HAO).
    """
    out = pkt.copy()
    mh = _mh_layer(out)
    auth = [o for o in mh.options if isinstance(o, MIP6OptMsgAuth)]
    if not auth:
        raise ValueError("Mobility Header has no MIP6OptMsgAuth option")
    auth[-1].authdata = b"\x00" * 12
    if coa is None or hoa is None:
        dcoa, dhoa = _default_coa_hoa(out)
        coa = coa or dcoa
        hoa = hoa or dhoa
    auth[-1].authdata = mn_ha_authenticator(key, coa, hoa, mh_bytes(out))
    mh.cksum = mh_checksum(out)
    return out


# --------------------------------------------------------------------------
# DSMIPv6 (RFC 5555)
# --------------------------------------------------------------------------


def dsmip6_packet(
    v4_src: str,
    v4_dst: str,
    inner: Packet,
    sport: int = DSMIP6_PORT,
    dport: int = DSMIP6_PORT,
    udp_checksum: Optional[int] = None,
    ip_id: int = 0,
    ttl: int = 64,
) -> Packet:
    """IPv4/UDP/``inner`` (normally IPv6/MH) as RFC 5555 sends signalling.

    ``udp_checksum=None`` lets scapy compute it; 0 means "no checksum" (legal
    over IPv4).
    """
    return (
        IP(src=v4_src, dst=v4_dst, id=ip_id, ttl=ttl, flags=0)
        / UDP(sport=sport, dport=dport, chksum=udp_checksum)
        / inner
    )
