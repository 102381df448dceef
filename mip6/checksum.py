"""Internet checksum and the IPv6 pseudo-header checksum of the Mobility Header.

Which addresses enter the pseudo-header (RFC 6275 section 6.1.1 and RFC 8200's
"final destination"): the source is the Home Address when the packet carries a
Home Address option, and the destination is the Home Address when it carries a
Type 2 Routing Header. Callers pass those end-to-end addresses.
"""

from __future__ import annotations

import array
import struct
import sys

from ._addr import AddressLike, ipv6
from .constants import IPPROTO_MH

_LITTLE_ENDIAN = sys.byteorder == "little"


def ones_complement_sum(data: bytes) -> int:
    """16-bit one's complement sum of ``data`` (odd lengths padded with a zero octet)."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = sum(array.array("H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    # The sum is byte-order independent (RFC 1071): computed in host order, swap once.
    if _LITTLE_ENDIAN:
        total = ((total & 0xFF) << 8) | (total >> 8)
    return total


def internet_checksum(data: bytes) -> int:
    """The RFC 1071 checksum of ``data``."""
    return ~ones_complement_sum(data) & 0xFFFF


def pseudo_header(src: AddressLike, dst: AddressLike, length: int,
                  next_header: int = IPPROTO_MH) -> bytes:
    """The IPv6 upper-layer pseudo-header (RFC 8200 section 8.1)."""
    return ipv6(src).packed + ipv6(dst).packed + struct.pack("!I3xB", length, next_header)


def mh_checksum(mh: bytes, src: AddressLike, dst: AddressLike) -> int:
    """Checksum of a Mobility Header, computed as if its checksum field were zero."""
    body = bytes(mh[:4]) + b"\x00\x00" + bytes(mh[6:])
    return internet_checksum(pseudo_header(src, dst, len(mh)) + body)


def verify_mh_checksum(mh: bytes, src: AddressLike, dst: AddressLike) -> bool:
    """True when the checksum carried in ``mh`` is right for these addresses."""
    return ones_complement_sum(pseudo_header(src, dst, len(mh)) + bytes(mh)) == 0xFFFF


def fill_mh_checksum(mh: bytearray, src: AddressLike, dst: AddressLike) -> None:
    """Write the checksum into octets 4-5 of an encoded Mobility Header."""
    mh[4:6] = b"\x00\x00"
    struct.pack_into("!H", mh, 4, internet_checksum(pseudo_header(src, dst, len(mh)) + mh))
