"""Whole signalling packets: IPv6 (+ Home Address option / Type 2 Routing Header) + MH,
and the Dual-Stack MIPv6 form inside IPv4/UDP port 4191 (RFC 5555).

    BU from a CoA:  IPv6(src=CoA, dst=HA) / DestOpts(PadN, HAO=HoA) / MH
    BA to a CoA:    IPv6(src=HA, dst=CoA) / RH type 2 (HoA)          / MH
    DSMIPv6 BU:     IPv4(src=CoA4, dst=HA4) / UDP(dport 4191) / IPv6(src=HoA, dst=HA) / MH

The Mobility Header checksum uses the end-to-end addresses: HoA as source when a Home
Address option is present, HoA as destination when a Type 2 Routing Header is present
(:attr:`SignallingPacket.pseudo_source` / :attr:`~SignallingPacket.pseudo_destination`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Optional, Union

from ._addr import AddressLike, IPv4Address, IPv6Address, ipv4, ipv6
from .auth import MnHaKey, verify_authenticator
from .checksum import internet_checksum, ones_complement_sum, verify_mh_checksum
from .constants import DSMIP_UDP_PORT, HOME_ADDRESS_OPTION, IPPROTO_MH
from .errors import DecodeError
from .messages import MobilityMessage, decode
from .options import IPv4CareOfAddress

IPPROTO_HOPOPTS = 0
IPPROTO_UDP = 17
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_DSTOPTS = 60
ETH_P_IPV6 = 0x86DD
ETH_P_IP = 0x0800
_ETH_P_VLAN = (0x8100, 0x88A8)

_IPV6_HEADER = struct.Struct("!IHBB16s16s")
_IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
_UDP_HEADER = struct.Struct("!HHHH")


@dataclass
class UdpIPv4:
    """The outer IPv4/UDP headers of a DSMIPv6 signalling packet."""

    src: IPv4Address
    dst: IPv4Address
    sport: int = DSMIP_UDP_PORT
    dport: int = DSMIP_UDP_PORT
    ttl: int = 64
    identification: int = 0
    udp_checksum: bool = True  # False sends zero (legal over IPv4)


@dataclass
class SignallingPacket:
    """An IPv6 packet carrying one Mobility Header (optionally inside IPv4/UDP)."""

    src: IPv6Address
    dst: IPv6Address
    message: MobilityMessage
    home_address: Optional[IPv6Address] = None  # Home Address destination option
    routing_home_address: Optional[IPv6Address] = None  # Type 2 Routing Header
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0
    udp: Optional[UdpIPv4] = None
    #: The Mobility Header exactly as received (set by decode_packet), for checks.
    mh_bytes: bytes = field(default=b"", compare=False, repr=False)

    @property
    def pseudo_source(self) -> IPv6Address:
        return self.home_address if self.home_address is not None else self.src

    @property
    def pseudo_destination(self) -> IPv6Address:
        return (self.routing_home_address if self.routing_home_address is not None
                else self.dst)

    @property
    def is_binding_update(self) -> bool:
        return self.message.mh_type == 5

    @property
    def mobile_home_address(self) -> IPv6Address:
        """The mobile node's home address: HAO, RH2, else the inner IPv6 end (DSMIPv6)."""
        if self.home_address is not None:
            return self.home_address
        if self.routing_home_address is not None:
            return self.routing_home_address
        return self.src if self.is_binding_update else self.dst

    @property
    def care_of_address(self) -> Union[IPv6Address, IPv4Address]:
        """The care-of address of this exchange: the BU's source / the BA's destination.

        For DSMIPv6 it is the IPv4 address of the mobile node's side: a BU's IPv4
        Care-of Address option (what the node itself knows, also behind a NAT), else
        the outer source; a BA's outer destination.
        """
        if self.udp is not None:
            if not self.is_binding_update:
                return self.udp.dst
            option = self.message.find(IPv4CareOfAddress)
            return option.address if option is not None else self.udp.src
        return self.src if self.is_binding_update else self.dst

    def auth_key(self, key: bytes) -> MnHaKey:
        """The RFC 4285 signing context of this packet for the shared ``key``."""
        return MnHaKey(key, self.care_of_address, self.mobile_home_address)

    def checksum_ok(self) -> bool:
        """Whether the received Mobility Header checksum is right."""
        return verify_mh_checksum(self.mh_bytes, self.pseudo_source, self.pseudo_destination)

    def authenticator_ok(self, key: MnHaKey) -> bool:
        """Whether the received message carries a valid RFC 4285 MN-HA authenticator."""
        return verify_authenticator(self.mh_bytes, key)

    def encode(self, auth: Optional[MnHaKey] = None) -> bytes:
        """The packet's octets, from the IPv6 (or outer IPv4) header on."""
        mh = self.message.encode(self.pseudo_source, self.pseudo_destination, auth)
        return self.encode_with_mh(mh)

    def encode_with_mh(self, mh: bytes) -> bytes:
        """The packet around an already encoded Mobility Header."""
        ext = b""
        nh = IPPROTO_MH
        if self.home_address is not None:
            # PadN(2) puts the option at 8n+6 as RFC 6275 asks, as Linux does.
            ext = (bytes((nh, 2, 1, 2, 0, 0, HOME_ADDRESS_OPTION, 16))
                   + ipv6(self.home_address).packed)
            nh = IPPROTO_DSTOPTS
        if self.routing_home_address is not None:
            ext = (bytes((nh, 2, 2, 1, 0, 0, 0, 0)) + ipv6(self.routing_home_address).packed
                   + ext)
            nh = IPPROTO_ROUTING
        payload = ext + mh
        first = (6 << 28) | (self.traffic_class << 20) | self.flow_label
        ip6 = _IPV6_HEADER.pack(first, len(payload), nh, self.hop_limit,
                                ipv6(self.src).packed, ipv6(self.dst).packed) + payload
        if self.udp is None:
            return ip6
        return _wrap_udp4(self.udp, ip6)


def _wrap_udp4(udp: UdpIPv4, payload: bytes) -> bytes:
    src, dst = ipv4(udp.src).packed, ipv4(udp.dst).packed
    length = 8 + len(payload)
    segment = bytearray(_UDP_HEADER.pack(udp.sport, udp.dport, length, 0) + payload)
    if udp.udp_checksum:
        pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_UDP, length)
        value = internet_checksum(pseudo + segment) or 0xFFFF
        struct.pack_into("!H", segment, 6, value)
    header = bytearray(_IPV4_HEADER.pack(0x45, 0, 20 + length, udp.identification, 0,
                                         udp.ttl, IPPROTO_UDP, 0, src, dst))
    struct.pack_into("!H", header, 10, internet_checksum(header))
    return bytes(header) + bytes(segment)


def decode_packet(data: bytes) -> SignallingPacket:
    """Decode an IPv6 signalling packet, or a DSMIPv6 one in IPv4/UDP 4191.

    Raises :class:`~mip6.errors.DecodeError` (offsets count from ``data[0]``) for
    anything else: truncation, a bad IPv4 header or UDP checksum, a fragment, a
    routing header other than type 2, or no Mobility Header at the end of the chain.
    The Mobility Header checksum is *not* a decode error: ask :meth:`checksum_ok`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise DecodeError("empty packet", 0)
    version = data[0] >> 4
    if version == 6:
        return _decode_ipv6(data, 0, None)
    if version == 4:
        return _decode_udp4(data)
    raise DecodeError(f"IP version {version} is neither 4 nor 6", 0)


def decode_frame(frame: bytes) -> SignallingPacket:
    """Decode a signalling packet inside an Ethernet frame (one VLAN tag allowed)."""
    if len(frame) < 14:
        raise DecodeError(f"Ethernet frame of {len(frame)} octets is too short", 0)
    offset, ethertype = 14, struct.unpack_from("!H", frame, 12)[0]
    if ethertype in _ETH_P_VLAN:
        if len(frame) < 18:
            raise DecodeError("VLAN-tagged frame is too short", 12)
        offset, ethertype = 18, struct.unpack_from("!H", frame, 16)[0]
    if ethertype not in (ETH_P_IPV6, ETH_P_IP):
        raise DecodeError(f"ethertype 0x{ethertype:04x} carries no IP", offset - 2)
    try:
        return decode_packet(frame[offset:])
    except DecodeError as exc:
        exc.offset += offset
        raise


def _decode_udp4(data: bytes) -> SignallingPacket:
    if len(data) < 28:
        raise DecodeError(f"IPv4/UDP packet of {len(data)} octets is too short", 0)
    (vihl, _tos, total, ident, frag, ttl, proto, _ck, src,
     dst) = _IPV4_HEADER.unpack_from(data)
    ihl = (vihl & 0x0F) * 4
    if ihl < 20 or total > len(data) or total < ihl + 8:
        raise DecodeError(f"IPv4 header length {ihl} / total length {total} do not fit "
                          f"{len(data)} octets", 0)
    if ones_complement_sum(data[:ihl]) != 0xFFFF:
        raise DecodeError("IPv4 header checksum is wrong", 10)
    if frag & 0x3FFF:
        raise DecodeError("fragmented IPv4 signalling is not supported", 6)
    if proto != IPPROTO_UDP:
        raise DecodeError(f"IPv4 protocol {proto} is not UDP", 9)
    sport, dport, ulen, uck = _UDP_HEADER.unpack_from(data, ihl)
    if ulen != total - ihl:
        raise DecodeError(f"UDP length {ulen} disagrees with IPv4 total length {total}",
                          ihl + 4)
    if DSMIP_UDP_PORT not in (sport, dport):
        raise DecodeError(f"UDP ports {sport}->{dport}: neither is {DSMIP_UDP_PORT}", ihl)
    segment = data[ihl:total]
    if uck:
        pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_UDP, ulen)
        if ones_complement_sum(pseudo + segment) != 0xFFFF:
            raise DecodeError("UDP checksum is wrong", ihl + 6)
    outer = UdpIPv4(IPv4Address(src), IPv4Address(dst), sport, dport, ttl, ident, bool(uck))
    inner = data[ihl + 8:total]
    if not inner or inner[0] >> 4 != 6:
        raise DecodeError("UDP 4191 payload is not an IPv6 packet", ihl + 8)
    return _decode_ipv6(inner, ihl + 8, outer)


def _decode_ipv6(data: bytes, base: int, outer: Optional[UdpIPv4]) -> SignallingPacket:
    if len(data) < 40:
        raise DecodeError(f"IPv6 packet of {len(data)} octets is shorter than its header",
                          base)
    first, plen, nh, hop_limit, src, dst = _IPV6_HEADER.unpack_from(data)
    end = 40 + plen
    if end > len(data):
        raise DecodeError(f"IPv6 payload length {plen} runs past the {len(data)} octets "
                          "received", base + 4)
    hao: Optional[IPv6Address] = None
    rh2: Optional[IPv6Address] = None
    i = 40
    while nh != IPPROTO_MH:
        if nh not in (IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_ROUTING):
            if nh == IPPROTO_FRAGMENT:
                raise DecodeError("fragmented signalling is not supported", base + i)
            raise DecodeError(f"next header {nh} at octet {i}: no Mobility Header", base + i)
        if i + 8 > end:
            raise DecodeError("extension header cut off", base + i)
        hlen = (data[i + 1] + 1) * 8
        if i + hlen > end:
            raise DecodeError(f"extension header of {hlen} octets runs past the payload",
                              base + i + 1)
        if nh == IPPROTO_ROUTING:
            if data[i + 2] != 2:
                raise DecodeError(f"routing header type {data[i + 2]} is not type 2",
                                  base + i + 2)
            if hlen != 24 or data[i + 3] != 1:
                raise DecodeError("a Type 2 Routing Header has one address and "
                                  "segments left 1", base + i + 1)
            rh2 = IPv6Address(data[i + 8:i + 24])
        elif nh == IPPROTO_DSTOPTS:
            found = _home_address_option(data, i + 2, i + hlen, base)
            if found is not None:
                hao = found
        nh = data[i]
        i += hlen
    message = decode_with_offset(data[i:end], base + i)
    return SignallingPacket(IPv6Address(src), IPv6Address(dst), message, hao, rh2,
                            hop_limit, (first >> 20) & 0xFF, first & 0xFFFFF, outer,
                            data[i:end])


def _home_address_option(data: bytes, start: int, end: int, base: int
                         ) -> Optional[IPv6Address]:
    i, found = start, None
    while i < end:
        kind = data[i]
        if kind == 0:
            i += 1
            continue
        if i + 2 > end or i + 2 + data[i + 1] > end:
            raise DecodeError("destination option runs past its header", base + i)
        if kind == HOME_ADDRESS_OPTION:
            if data[i + 1] != 16:
                raise DecodeError(f"Home Address option has length {data[i + 1]}, not 16",
                                  base + i + 1)
            found = IPv6Address(data[i + 2:i + 18])
        i += 2 + data[i + 1]
    return found


def decode_with_offset(mh: bytes, offset: int) -> MobilityMessage:
    """:func:`mip6.decode`, with error offsets shifted to count from the packet start."""
    try:
        return decode(mh)
    except DecodeError as exc:
        exc.offset += offset
        exc.args = (f"{exc.what} (at octet {exc.offset})",)
        raise


def bu_packet(message: MobilityMessage, care_of: AddressLike, home: AddressLike,
              home_agent: AddressLike) -> SignallingPacket:
    """A BU sent from an IPv6 care-of address, with the Home Address option."""
    return SignallingPacket(ipv6(care_of), ipv6(home_agent), message, home_address=ipv6(home))


def ba_packet(message: MobilityMessage, home_agent: AddressLike, care_of: AddressLike,
              home: AddressLike) -> SignallingPacket:
    """A BA sent to an IPv6 care-of address, with the Type 2 Routing Header."""
    return SignallingPacket(ipv6(home_agent), ipv6(care_of), message,
                            routing_home_address=ipv6(home))


def dsmip_packet(message: MobilityMessage, src: AddressLike, dst: AddressLike,
                 src4: AddressLike, dst4: AddressLike, sport: int = DSMIP_UDP_PORT,
                 dport: int = DSMIP_UDP_PORT) -> SignallingPacket:
    """A DSMIPv6 message: IPv6 (``src`` -> ``dst``, no HAO/RH2) inside IPv4/UDP."""
    return SignallingPacket(ipv6(src), ipv6(dst), message,
                            udp=UdpIPv4(ipv4(src4), ipv4(dst4), sport, dport))
