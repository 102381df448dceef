"""Mobility options: one class per option type, a registry, and the TLV walker.

Every option class knows its type, how to encode its data and how to decode it,
and its alignment rule ``(x, y)``: the option's Type octet must sit at an offset
``x*n + y`` from the first octet of the Mobility Header. The message encoder inserts
Pad1/PadN to satisfy it. Unknown option types decode to :class:`UnknownOption` and
are re-encoded unchanged.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Callable, ClassVar, Dict, List, Optional, Tuple, Type, Union

from ._addr import AnyAddress, IPv4Address, IPv6Address, any_ip, ipv4, ipv6
from .constants import AuthSubtype, BaStatus, MnIdSubtype, OptionType
from .errors import DecodeError

Alignment = Tuple[int, int]

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")

#: Option type -> class, filled by :func:`_register`.
OPTION_CLASSES: Dict[int, Type["MobilityOption"]] = {}


def _register(cls: Type["MobilityOption"]) -> Type["MobilityOption"]:
    OPTION_CLASSES[cls.type] = cls
    return cls


class MobilityOption:
    """Base class of all mobility options (a Type-Length-Value triple)."""

    type: ClassVar[int]
    alignment: ClassVar[Alignment] = (1, 0)

    def align(self) -> Alignment:
        """The alignment rule of this option instance (some depend on content)."""
        return self.alignment

    def encode_data(self) -> bytes:
        """The option's data octets (without Type and Length)."""
        raise NotImplementedError

    def encode(self) -> bytes:
        """Type, Length and data; Length is computed here, never taken from a field."""
        data = self.encode_data()
        if len(data) > 255:
            raise ValueError(f"{type(self).__name__}: {len(data)} data octets exceed 255")
        return bytes((self.type, len(data))) + data

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "MobilityOption":
        """Build the option from its data octets; ``offset`` locates errors."""
        raise NotImplementedError


def _expect_length(cls: type, data: bytes, offset: int, *allowed: int,
                   status: Optional[int] = None) -> None:
    if len(data) not in allowed:
        want = " or ".join(str(n) for n in allowed)
        raise DecodeError(f"{cls.__name__} option has length {len(data)}, expected {want}",
                          offset + 1, status)


@dataclass
class Pad1(MobilityOption):
    """One octet of padding (the only option without a Length field)."""

    type: ClassVar[int] = OptionType.PAD1

    def encode(self) -> bytes:
        return b"\x00"


@dataclass
class PadN(MobilityOption):
    """``length`` zero data octets of padding (the option is ``length + 2`` octets)."""

    type: ClassVar[int] = OptionType.PADN
    length: int = 0

    def encode_data(self) -> bytes:
        return bytes(self.length)


def padding(count: int) -> bytes:
    """Exactly ``count`` octets of padding: Pad1 for one, PadN otherwise."""
    if count == 0:
        return b""
    if count == 1:
        return b"\x00"
    return bytes((OptionType.PADN, count - 2)) + bytes(count - 2)


@_register
@dataclass
class BindingRefreshAdvice(MobilityOption):
    """RFC 6275: suggested refresh interval, in units of 4 seconds."""

    type: ClassVar[int] = OptionType.BINDING_REFRESH_ADVICE
    alignment: ClassVar[Alignment] = (2, 0)
    interval: int = 0

    def encode_data(self) -> bytes:
        return _U16.pack(self.interval)

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "BindingRefreshAdvice":
        _expect_length(cls, data, offset, 2)
        return cls(_U16.unpack(data)[0])


@_register
@dataclass
class AlternateCareOfAddress(MobilityOption):
    """RFC 6275: the care-of address to bind, instead of the packet's source."""

    type: ClassVar[int] = OptionType.ALTERNATE_COA
    alignment: ClassVar[Alignment] = (8, 6)
    address: IPv6Address = IPv6Address(0)

    def encode_data(self) -> bytes:
        return ipv6(self.address).packed

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "AlternateCareOfAddress":
        _expect_length(cls, data, offset, 16)
        return cls(IPv6Address(data))


@_register
@dataclass
class NonceIndices(MobilityOption):
    """RFC 6275 return routability nonce indices (never valid in a home registration)."""

    type: ClassVar[int] = OptionType.NONCE_INDICES
    alignment: ClassVar[Alignment] = (2, 0)
    home_nonce_index: int = 0
    care_of_nonce_index: int = 0

    def encode_data(self) -> bytes:
        return struct.pack("!HH", self.home_nonce_index, self.care_of_nonce_index)

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "NonceIndices":
        _expect_length(cls, data, offset, 4)
        return cls(*struct.unpack("!HH", data))


@_register
@dataclass
class BindingAuthorizationData(MobilityOption):
    """RFC 6275 return routability authenticator (never valid in a home registration)."""

    type: ClassVar[int] = OptionType.BINDING_AUTHORIZATION_DATA
    alignment: ClassVar[Alignment] = (8, 2)
    authenticator: bytes = bytes(12)

    def encode_data(self) -> bytes:
        return bytes(self.authenticator)

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "BindingAuthorizationData":
        return cls(bytes(data))


@_register
@dataclass
class MobileNetworkPrefix(MobilityOption):
    """RFC 3963: one prefix of the mobile network behind the mobile router.

    The prefix is kept as sent (all 128 bits), so bits beyond ``prefix_length`` survive
    a round trip; :attr:`network` gives the prefix as a network and :attr:`host_bits_set`
    tells a receiver that wants to answer 141 (Invalid Prefix).
    """

    type: ClassVar[int] = OptionType.MOBILE_NETWORK_PREFIX
    alignment: ClassVar[Alignment] = (8, 4)
    prefix: IPv6Address = IPv6Address(0)
    prefix_length: int = 0

    @classmethod
    def from_network(cls, network: Union[str, ipaddress.IPv6Network]) -> "MobileNetworkPrefix":
        """An option from a network such as ``"2001:db8:1000::/48"``."""
        net = ipaddress.IPv6Network(network)
        return cls(net.network_address, net.prefixlen)

    @property
    def network(self) -> ipaddress.IPv6Network:
        return ipaddress.IPv6Network((self.prefix, self.prefix_length), strict=False)

    @property
    def host_bits_set(self) -> bool:
        return self.network.network_address != ipv6(self.prefix)

    def encode_data(self) -> bytes:
        if not 0 <= self.prefix_length <= 128:
            raise ValueError(f"MobileNetworkPrefix: prefix length {self.prefix_length} "
                             "is not in 0..128")
        return bytes((0, self.prefix_length)) + ipv6(self.prefix).packed

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "MobileNetworkPrefix":
        _expect_length(cls, data, offset, 18, status=BaStatus.INVALID_PREFIX)
        if data[1] > 128:
            raise DecodeError(f"MobileNetworkPrefix option has prefix length {data[1]} > 128",
                              offset + 3, BaStatus.INVALID_PREFIX)
        return cls(IPv6Address(data[2:18]), data[1])


@_register
@dataclass
class MobileNodeIdentifier(MobilityOption):
    """RFC 4283: the mobile node's identity, normally an NAI such as ``mr1@example.com``."""

    type: ClassVar[int] = OptionType.MN_IDENTIFIER
    identifier: bytes = b""
    subtype: int = MnIdSubtype.NAI

    @classmethod
    def nai(cls, nai: str) -> "MobileNodeIdentifier":
        return cls(nai.encode("utf-8"), MnIdSubtype.NAI)

    @property
    def text(self) -> str:
        return self.identifier.decode("utf-8", errors="replace")

    def encode_data(self) -> bytes:
        return bytes((self.subtype,)) + bytes(self.identifier)

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "MobileNodeIdentifier":
        if len(data) < 1:
            raise DecodeError("MobileNodeIdentifier option has no subtype", offset + 1)
        return cls(bytes(data[1:]), data[0])


@_register
@dataclass
class Authentication(MobilityOption):
    """RFC 4285 Mobility Message Authentication option; must be the last option.

    The RFC asks for 4n+1; we place it at 8n+5 (which satisfies 4n+1) so that a
    12-octet authenticator ends the header exactly and no padding follows it.
    """

    type: ClassVar[int] = OptionType.AUTHENTICATION
    alignment: ClassVar[Alignment] = (8, 5)
    spi: int = 0
    authenticator: bytes = bytes(12)
    subtype: int = AuthSubtype.MN_HA

    def encode_data(self) -> bytes:
        return bytes((self.subtype,)) + _U32.pack(self.spi) + bytes(self.authenticator)

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "Authentication":
        if len(data) < 5:
            raise DecodeError(f"Authentication option has length {len(data)}, at least 5 "
                              "needed (subtype and SPI)", offset + 1)
        return cls(_U32.unpack_from(data, 1)[0], bytes(data[5:]), data[0])


@_register
@dataclass
class ReplayProtection(MobilityOption):
    """RFC 4285 Mobility Message Replay Protection: a 64-bit NTP-format timestamp."""

    type: ClassVar[int] = OptionType.REPLAY_PROTECTION
    alignment: ClassVar[Alignment] = (8, 2)
    timestamp: int = 0

    def encode_data(self) -> bytes:
        return _U64.pack(self.timestamp)

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "ReplayProtection":
        _expect_length(cls, data, offset, 8)
        return cls(_U64.unpack(data)[0])


@_register
@dataclass
class IPv4HomeAddress(MobilityOption):
    """RFC 5555 IPv4 Home Address request (0.0.0.0 asks the HA to assign one)."""

    type: ClassVar[int] = OptionType.IPV4_HOME_ADDRESS
    alignment: ClassVar[Alignment] = (4, 0)
    address: IPv4Address = IPv4Address(0)
    prefix_length: int = 0
    request_prefix: bool = False  # the P flag

    def encode_data(self) -> bytes:
        if not 0 <= self.prefix_length <= 32:
            raise ValueError(f"IPv4HomeAddress: prefix length {self.prefix_length} not in 0..32")
        word = (self.prefix_length << 10) | (0x0200 if self.request_prefix else 0)
        return _U16.pack(word) + ipv4(self.address).packed

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "IPv4HomeAddress":
        _expect_length(cls, data, offset, 6)
        word = _U16.unpack_from(data)[0]
        return cls(IPv4Address(data[2:6]), word >> 10, bool(word & 0x0200))


@_register
@dataclass
class IPv4AddressAcknowledgement(MobilityOption):
    """RFC 5555 answer to an IPv4 Home Address request."""

    type: ClassVar[int] = OptionType.IPV4_ADDRESS_ACK
    alignment: ClassVar[Alignment] = (4, 0)
    status: int = 0
    address: IPv4Address = IPv4Address(0)
    prefix_length: int = 0

    def encode_data(self) -> bytes:
        if not 0 <= self.prefix_length <= 32:
            raise ValueError(f"IPv4AddressAcknowledgement: prefix length {self.prefix_length} "
                             "not in 0..32")
        return bytes((self.status, self.prefix_length << 2)) + ipv4(self.address).packed

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "IPv4AddressAcknowledgement":
        _expect_length(cls, data, offset, 6)
        return cls(data[0], IPv4Address(data[2:6]), data[1] >> 2)


@_register
@dataclass
class NatDetection(MobilityOption):
    """RFC 5555: NAT found between MN and HA (F: UDP encapsulation required)."""

    type: ClassVar[int] = OptionType.NAT_DETECTION
    alignment: ClassVar[Alignment] = (4, 0)
    udp_encapsulation: bool = False  # the F flag
    refresh_time: int = 0xFFFFFFFF  # seconds; all ones means no keepalive needed

    def encode_data(self) -> bytes:
        return _U16.pack(0x8000 if self.udp_encapsulation else 0) + _U32.pack(self.refresh_time)

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "NatDetection":
        _expect_length(cls, data, offset, 6)
        return cls(bool(data[0] & 0x80), _U32.unpack_from(data, 2)[0])


@_register
@dataclass
class IPv4CareOfAddress(MobilityOption):
    """RFC 5555: the IPv4 care-of address of a BU sent over IPv4/UDP."""

    type: ClassVar[int] = OptionType.IPV4_COA
    alignment: ClassVar[Alignment] = (4, 0)
    address: IPv4Address = IPv4Address(0)

    def encode_data(self) -> bytes:
        return b"\x00\x00" + ipv4(self.address).packed

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "IPv4CareOfAddress":
        _expect_length(cls, data, offset, 6)
        return cls(IPv4Address(data[2:6]))


@_register
@dataclass
class GreKey(MobilityOption):
    """RFC 5845: the GRE key the sender wants to receive tunnelled packets with.

    ``key`` None sends the option without a key (length 2), which asks for GRE
    encapsulation without keys.
    """

    type: ClassVar[int] = OptionType.GRE_KEY
    alignment: ClassVar[Alignment] = (4, 2)
    key: Optional[int] = 0

    def encode_data(self) -> bytes:
        if self.key is None:
            return b"\x00\x00"
        return b"\x00\x00" + _U32.pack(self.key)

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "GreKey":
        _expect_length(cls, data, offset, 2, 6)
        return cls(_U32.unpack_from(data, 2)[0] if len(data) == 6 else None)


@_register
@dataclass
class BindingIdentifier(MobilityOption):
    """RFC 5648 Binding Identifier, byte 5 in its RFC 6089 form (H flag, BID-PRI).

    ``care_of_address`` is present in bulk registrations (IPv4 or IPv6) and absent
    otherwise. ``status`` is meaningful in a BA only (0 means "see the BA status").
    Alignment: 2n without a care-of address, 8n+2 with one, so that the address
    starts on an 8-octet boundary.
    """

    type: ClassVar[int] = OptionType.BINDING_IDENTIFIER
    bid: int = 0
    status: int = 0
    priority: int = 0
    simultaneous_home: bool = False  # the H flag
    care_of_address: Optional[AnyAddress] = None

    def align(self) -> Alignment:
        return (2, 0) if self.care_of_address is None else (8, 2)

    def encode_data(self) -> bytes:
        if not 0 <= self.priority <= 0x7F:
            raise ValueError(f"BindingIdentifier: priority {self.priority} not in 0..127")
        head = _U16.pack(self.bid) + bytes((self.status,
                                            (0x80 if self.simultaneous_home else 0)
                                            | self.priority))
        if self.care_of_address is None:
            return head
        return head + any_ip(self.care_of_address).packed

    @classmethod
    def decode_data(cls, data: bytes, offset: int) -> "BindingIdentifier":
        _expect_length(cls, data, offset, 4, 8, 20, status=BaStatus.MCOA_MALFORMED)
        coa: Optional[AnyAddress] = None
        if len(data) == 8:
            coa = IPv4Address(data[4:8])
        elif len(data) == 20:
            coa = IPv6Address(data[4:20])
        flags = data[3]
        return cls(_U16.unpack_from(data)[0], data[2], flags & 0x7F, bool(flags & 0x80), coa)


@dataclass
class UnknownOption(MobilityOption):
    """An option type this codec does not interpret, kept as raw data."""

    option_type: int = 0
    data: bytes = b""

    @property
    def type(self) -> int:  # type: ignore[override]
        return self.option_type

    def encode(self) -> bytes:
        if len(self.data) > 255:
            raise ValueError(f"UnknownOption {self.option_type}: {len(self.data)} octets > 255")
        return bytes((self.option_type, len(self.data))) + bytes(self.data)


def decode_options(data: bytes, start: int, end: int,
                   on_error: Optional[Callable[[List[MobilityOption]], object]] = None
                   ) -> List[MobilityOption]:
    """Decode the options in ``data[start:end]``; padding is consumed, not returned.

    ``on_error`` receives the options decoded so far when a defect is found; its
    result becomes the error's ``partial``.
    """
    options: List[MobilityOption] = []
    i = start
    classes = OPTION_CLASSES
    try:
        while i < end:
            kind = data[i]
            if kind == 0:
                i += 1
                continue
            if i + 2 > end:
                raise DecodeError(f"option type {kind} is cut off before its length octet", i)
            nxt = i + 2 + data[i + 1]
            if nxt > end:
                raise DecodeError(f"option type {kind} with length {data[i + 1]} runs past "
                                  f"the end of the header ({end} octets)", i + 1)
            if kind != OptionType.PADN:
                cls = classes.get(kind)
                if cls is None:
                    options.append(UnknownOption(kind, bytes(data[i + 2:nxt])))
                else:
                    options.append(cls.decode_data(data[i + 2:nxt], i))
            i = nxt
    except DecodeError as exc:
        if on_error is not None and exc.partial is None:
            exc.partial = on_error(options)
        raise
    return options


def encode_options(out: bytearray, options: List[MobilityOption]) -> List[int]:
    """Append ``options`` to ``out`` with alignment padding; returns each option's offset.

    Offsets count from the first octet of ``out`` (the Mobility Header). The header
    is then padded to a multiple of 8 octets.
    """
    offsets = []
    for option in options:
        x, y = option.align()
        if x > 1:
            out += padding((y - len(out)) % x)
        offsets.append(len(out))
        out += option.encode()
    out += padding(-len(out) % 8)
    return offsets
