"""IPv6 neighbour discovery for the next hop: build a solicitation, read an advertisement.

The home agent resolves the MAC address of its upstream next hop itself (the switch
sends the solicitation, the advertisement comes back as a packet-in), so it needs no
access to a kernel neighbour table and works with the controller on another host.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Optional, Tuple

from mip6.checksum import internet_checksum, pseudo_header

ICMPV6 = 58
NEIGHBOR_SOLICIT, NEIGHBOR_ADVERT = 135, 136
_ETH_IPV6 = b"\x86\xdd"


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def _mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def solicited_node(address: ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(b"\xff\x02" + bytes(9) + b"\x01\xff" + address.packed[13:])


def solicitation_frame(target: ipaddress.IPv6Address, source: ipaddress.IPv6Address,
                       source_mac: str) -> bytes:
    """An Ethernet frame with a Neighbor Solicitation for ``target`` (RFC 4861 4.3)."""
    group = solicited_node(target)
    group_mac = b"\x33\x33" + group.packed[12:]
    icmp = bytearray(struct.pack("!BBHI", NEIGHBOR_SOLICIT, 0, 0, 0) + target.packed
                     + b"\x01\x01" + _mac_bytes(source_mac))
    struct.pack_into("!H", icmp, 2, internet_checksum(
        pseudo_header(source, group, len(icmp), ICMPV6) + icmp))
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), ICMPV6, 255) + source.packed + group.packed
    return group_mac + _mac_bytes(source_mac) + _ETH_IPV6 + ip6 + bytes(icmp)


def parse_advertisement(frame: bytes) -> Optional[Tuple[ipaddress.IPv6Address, str]]:
    """``(target, mac)`` of a Neighbor Advertisement frame, or None for anything else.

    The MAC is the target link-layer address option, else the frame's source address.
    """
    if len(frame) < 14 + 40 + 24 or frame[12:14] != _ETH_IPV6 or frame[20] != ICMPV6:
        return None
    payload_length = int.from_bytes(frame[18:20], "big")
    icmp = frame[54:54 + payload_length]
    if len(icmp) < 24 or icmp[0] != NEIGHBOR_ADVERT or frame[21] != 255:
        return None
    source, destination = ipaddress.IPv6Address(frame[22:38]), ipaddress.IPv6Address(frame[38:54])
    if internet_checksum(pseudo_header(source, destination, len(icmp), ICMPV6) + icmp):
        return None  # RFC 4861 7.1.2: silently discard
    target = ipaddress.IPv6Address(icmp[8:24])
    mac = _mac_text(frame[6:12])
    i = 24
    while i + 8 <= len(icmp):
        kind, length = icmp[i], icmp[i + 1] * 8
        if length == 0:
            break
        if kind == 2 and length >= 8:
            mac = _mac_text(icmp[i + 2:i + 8])
        i += length
    return target, mac
