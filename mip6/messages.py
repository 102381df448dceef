"""Mobility Header messages and the top-level :func:`decode`.

Layout common to every message (RFC 6275 section 6.1.1)::

    0 Payload Proto (59)  1 Header Len ((len+1)*8 octets)  2 MH Type  3 Reserved
    4 Checksum (16)  6 message data, then mobility options, padded to 8 octets

``encode()`` computes Header Len, the alignment padding and (when the pseudo-header
addresses are given) the checksum; it never trusts a length from the caller. The
checksum field stays zero when no addresses are given. ``decode()`` keeps the
received checksum in ``checksum`` (which takes no part in equality).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar, Dict, List, Optional, Type, TypeVar

from ._addr import AddressLike, IPv6Address, ipv6
from .auth import MnHaKey, sign_in_place
from .checksum import fill_mh_checksum
from .constants import IPPROTO_NONE, MhType
from .errors import DecodeError
from .options import (Authentication, BindingIdentifier, MobileNetworkPrefix,
                      MobilityOption, decode_options, encode_options)

_MAX_LENGTH = 256 * 8
_U16 = struct.Struct("!H")
_BU_FIXED = struct.Struct("!HHH")
_BA_FIXED = struct.Struct("!BBHH")

O = TypeVar("O", bound=MobilityOption)

#: MH type -> class, filled by :func:`_register`.
MESSAGE_CLASSES: Dict[int, Type["MobilityMessage"]] = {}


def _register(cls: Type["MobilityMessage"]) -> Type["MobilityMessage"]:
    MESSAGE_CLASSES[cls.mh_type] = cls
    return cls


class MobilityMessage:
    """Base of all Mobility Header messages.

    Subclasses define ``mh_type``, ``fixed_length`` (octets of message data before
    the options), ``_encode_fixed`` and ``_decode_fixed``.
    """

    mh_type: ClassVar[int]
    fixed_length: ClassVar[int] = 0
    options: List[MobilityOption]
    checksum: int

    # -- options -------------------------------------------------------------------
    def find(self, kind: Type[O]) -> Optional[O]:
        """The first option of class ``kind``, or None."""
        for option in self.options:
            if isinstance(option, kind):
                return option
        return None

    def find_all(self, kind: Type[O]) -> List[O]:
        """Every option of class ``kind``, in order."""
        return [option for option in self.options if isinstance(option, kind)]

    # -- encoding ------------------------------------------------------------------
    def _encode_fixed(self) -> bytes:
        raise NotImplementedError

    def _options_start(self) -> int:
        return 6 + self.fixed_length

    def encode(self, src: Optional[AddressLike] = None, dst: Optional[AddressLike] = None,
               auth: Optional[MnHaKey] = None) -> bytes:
        """The message as octets.

        ``src``/``dst``: the pseudo-header addresses (HoA as source when the packet has
        a Home Address option, HoA as destination when it has a Type 2 Routing Header);
        without them the checksum stays zero. ``auth``: sign the last option, which must
        be an :class:`~mip6.options.Authentication` option (its 12-octet authenticator
        is computed here, whatever the object holds).
        """
        try:
            fixed = self._encode_fixed()
        except struct.error as exc:
            raise ValueError(f"{type(self).__name__}: field out of range: {exc}") from None
        out = bytearray(6) + fixed
        options = self.options
        if auth is not None:
            if not options or not isinstance(options[-1], Authentication):
                raise ValueError("signing needs an Authentication option as the last option")
            last = options[-1]
            options = options[:-1] + [Authentication(last.spi, bytes(12), last.subtype)]
        try:
            offsets = encode_options(out, options)
        except struct.error as exc:
            raise ValueError(f"{type(self).__name__}: option field out of range: {exc}") \
                from None
        if len(out) > _MAX_LENGTH:
            raise ValueError(f"{type(self).__name__}: {len(out)} octets exceed the "
                             f"{_MAX_LENGTH}-octet maximum of a Mobility Header")
        out[0] = IPPROTO_NONE
        out[1] = len(out) // 8 - 1
        out[2] = self.mh_type
        if auth is not None:
            sign_in_place(out, offsets[-1], auth)
        if src is not None and dst is not None:
            fill_mh_checksum(out, src, dst)
        elif (src is None) != (dst is None):
            raise ValueError("the checksum needs both pseudo-header addresses (src and dst)")
        return bytes(out)

    # -- decoding ------------------------------------------------------------------
    @classmethod
    def _decode_fixed(cls, data: bytes, length: int) -> "MobilityMessage":
        raise NotImplementedError


@_register
@dataclass
class BindingRefreshRequest(MobilityMessage):
    """RFC 6275 BRR: the home agent asks for a fresh Binding Update."""

    mh_type: ClassVar[int] = MhType.BINDING_REFRESH_REQUEST
    fixed_length: ClassVar[int] = 2
    options: List[MobilityOption] = field(default_factory=list)
    checksum: int = field(default=0, compare=False)

    def _encode_fixed(self) -> bytes:
        return b"\x00\x00"

    @classmethod
    def _decode_fixed(cls, data: bytes, length: int) -> "BindingRefreshRequest":
        return cls()


@_register
@dataclass
class BindingUpdate(MobilityMessage):
    """RFC 6275 Binding Update. ``lifetime`` is in units of 4 seconds (0 deletes).

    ``flags`` is the whole 16-bit flags word (see :class:`~mip6.constants.BuFlag`).
    """

    mh_type: ClassVar[int] = MhType.BINDING_UPDATE
    fixed_length: ClassVar[int] = 6
    sequence: int = 0
    flags: int = 0
    lifetime: int = 0
    options: List[MobilityOption] = field(default_factory=list)
    checksum: int = field(default=0, compare=False)

    @property
    def lifetime_seconds(self) -> int:
        return self.lifetime * 4

    @property
    def prefixes(self) -> List[MobileNetworkPrefix]:
        return self.find_all(MobileNetworkPrefix)

    @property
    def binding_ids(self) -> List[BindingIdentifier]:
        return self.find_all(BindingIdentifier)

    def _encode_fixed(self) -> bytes:
        return _BU_FIXED.pack(self.sequence, self.flags, self.lifetime)

    @classmethod
    def _decode_fixed(cls, data: bytes, length: int) -> "BindingUpdate":
        return cls(*_BU_FIXED.unpack_from(data, 6))


@_register
@dataclass
class BindingAcknowledgement(MobilityMessage):
    """RFC 6275 Binding Acknowledgement. ``status`` < 128 means accepted.

    ``flags`` is the flags octet (see :class:`~mip6.constants.BaFlag`); ``lifetime``
    is the granted lifetime in units of 4 seconds.
    """

    mh_type: ClassVar[int] = MhType.BINDING_ACK
    fixed_length: ClassVar[int] = 6
    status: int = 0
    flags: int = 0
    sequence: int = 0
    lifetime: int = 0
    options: List[MobilityOption] = field(default_factory=list)
    checksum: int = field(default=0, compare=False)

    @property
    def accepted(self) -> bool:
        return self.status < 128

    @property
    def lifetime_seconds(self) -> int:
        return self.lifetime * 4

    @property
    def binding_ids(self) -> List[BindingIdentifier]:
        return self.find_all(BindingIdentifier)

    def _encode_fixed(self) -> bytes:
        return _BA_FIXED.pack(self.status, self.flags, self.sequence, self.lifetime)

    @classmethod
    def _decode_fixed(cls, data: bytes, length: int) -> "BindingAcknowledgement":
        return cls(*_BA_FIXED.unpack_from(data, 6))


@_register
@dataclass
class BindingError(MobilityMessage):
    """RFC 6275 Binding Error (status 1: unknown binding for HAO, 2: unknown MH type)."""

    mh_type: ClassVar[int] = MhType.BINDING_ERROR
    fixed_length: ClassVar[int] = 18
    status: int = 0
    home_address: IPv6Address = IPv6Address(0)
    options: List[MobilityOption] = field(default_factory=list)
    checksum: int = field(default=0, compare=False)

    def _encode_fixed(self) -> bytes:
        return bytes((self.status, 0)) + ipv6(self.home_address).packed

    @classmethod
    def _decode_fixed(cls, data: bytes, length: int) -> "BindingError":
        return cls(data[6], IPv6Address(bytes(data[8:24])))


@_register
@dataclass
class HomeAgentSwitch(MobilityMessage):
    """RFC 5142 Home Agent Switch: the home agents to move to, preferred first."""

    mh_type: ClassVar[int] = MhType.HOME_AGENT_SWITCH
    fixed_length: ClassVar[int] = 2
    addresses: List[IPv6Address] = field(default_factory=list)
    options: List[MobilityOption] = field(default_factory=list)
    checksum: int = field(default=0, compare=False)

    def _options_start(self) -> int:
        return 8 + 16 * len(self.addresses)

    def _encode_fixed(self) -> bytes:
        if len(self.addresses) > 255:
            raise ValueError("HomeAgentSwitch: at most 255 addresses")
        return bytes((len(self.addresses), 0)) + b"".join(ipv6(a).packed
                                                           for a in self.addresses)

    @classmethod
    def _decode_fixed(cls, data: bytes, length: int) -> "HomeAgentSwitch":
        count = data[6]
        if 8 + 16 * count > length:
            raise DecodeError(f"Home Agent Switch lists {count} addresses but the header "
                              f"holds only {length} octets", 6)
        return cls([IPv6Address(bytes(data[8 + 16 * i:24 + 16 * i])) for i in range(count)])


@dataclass
class GenericMessage(MobilityMessage):
    """A message type this codec does not interpret; ``body`` (octet 6 on) is kept raw."""

    message_type: int = 0
    body: bytes = b"\x00\x00"
    checksum: int = field(default=0, compare=False)

    @property
    def mh_type(self) -> int:  # type: ignore[override]
        return self.message_type

    @property
    def options(self) -> List[MobilityOption]:  # type: ignore[override]
        return []

    def encode(self, src: Optional[AddressLike] = None, dst: Optional[AddressLike] = None,
               auth: Optional[MnHaKey] = None) -> bytes:
        if auth is not None:
            raise ValueError("GenericMessage cannot be signed")
        out = bytearray(6) + bytes(self.body)
        if len(out) % 8 or len(out) > _MAX_LENGTH:
            raise ValueError(f"GenericMessage: {len(out)} octets is not a multiple of 8 "
                             f"up to {_MAX_LENGTH}")
        out[0], out[1], out[2] = IPPROTO_NONE, len(out) // 8 - 1, self.message_type
        if src is not None and dst is not None:
            fill_mh_checksum(out, src, dst)
        return bytes(out)


def options_offset(mh_type: int, data: Optional[bytes] = None) -> Optional[int]:
    """Offset of the first option of a message of ``mh_type``; None if unknown.

    For a Home Agent Switch the address count in ``data`` decides.
    """
    cls = MESSAGE_CLASSES.get(mh_type)
    if cls is None:
        return None
    if cls is HomeAgentSwitch:
        return None if data is None else 8 + 16 * data[6]
    return 6 + cls.fixed_length


def decode(data: bytes) -> MobilityMessage:
    """Decode the Mobility Header that starts at ``data[0]`` and fills ``data``.

    Returns a message object (:class:`GenericMessage` for types we do not interpret).
    Raises :class:`~mip6.errors.DecodeError` (a ``ValueError``), and nothing else, for
    any input that is not a well-formed Mobility Header: wrong Payload Proto, a Header
    Len that disagrees with the data, a message too short for its type, or a malformed
    option. The checksum is not verified here (it needs the packet's addresses): see
    :func:`mip6.checksum.verify_mh_checksum` and :mod:`mip6.packet`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    size = len(data)
    if size < 8:
        raise DecodeError(f"a Mobility Header has at least 8 octets, got {size}", 0)
    if data[0] != IPPROTO_NONE:
        raise DecodeError(f"Payload Proto is {data[0]}, must be {IPPROTO_NONE}", 0)
    length = (data[1] + 1) * 8
    if length != size:
        raise DecodeError(f"Header Len {data[1]} announces {length} octets, "
                          f"data has {size}", 1)
    mh_type = data[2]
    cls = MESSAGE_CLASSES.get(mh_type)
    checksum = _U16.unpack_from(data, 4)[0]
    if cls is None:
        return GenericMessage(mh_type, data[6:], checksum)
    start = 6 + cls.fixed_length
    if start > length:
        raise DecodeError(f"{cls.__name__} needs {start} octets before its options, "
                          f"Header Len gives {length}", 1)
    try:
        message = cls._decode_fixed(data, length)
        if cls is HomeAgentSwitch:
            start = 8 + 16 * len(message.addresses)  # type: ignore[attr-defined]
        message.checksum = checksum

        def _partial(options: List[MobilityOption]) -> MobilityMessage:
            message.options = options
            return message

        message.options = decode_options(data, start, length, _partial)
    except DecodeError:
        raise
    except (struct.error, IndexError, ValueError) as exc:  # defensive: never leak these
        raise DecodeError(f"malformed {cls.__name__}: {exc}", 0) from None
    return message
