"""Address helpers shared by the codec modules (bytes <-> ipaddress objects)."""

from __future__ import annotations

import ipaddress
from typing import Union

IPv4Address = ipaddress.IPv4Address
IPv6Address = ipaddress.IPv6Address
AnyAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
AddressLike = Union[str, bytes, int, ipaddress.IPv4Address, ipaddress.IPv6Address]

_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"


def ipv6(value: AddressLike) -> IPv6Address:
    """An IPv6Address from a string, 16 bytes, int or address object."""
    if isinstance(value, IPv6Address):
        return value
    return IPv6Address(value)


def ipv4(value: AddressLike) -> IPv4Address:
    """An IPv4Address from a string, 4 bytes, int or address object."""
    if isinstance(value, IPv4Address):
        return value
    return IPv4Address(value)


def any_ip(value: AddressLike) -> AnyAddress:
    """An IPv4 or IPv6 address object; strings and bytes decide by their form."""
    if isinstance(value, (IPv4Address, IPv6Address)):
        return value
    return ipaddress.ip_address(value)


def packed16(value: AnyAddress) -> bytes:
    """16 octets for an address: IPv6 as is, IPv4 in its IPv4-mapped IPv6 form."""
    if isinstance(value, IPv4Address):
        return _V4_MAPPED + value.packed
    return value.packed
