"""Minimal classic-libpcap writer for interop tests (no scapy dependency).

``write_pcap(path, packets)`` stores IP packets (bytes starting at the IPv6 or
IPv4 header) as frames that tshark and tcpdump read:

* ``LINKTYPE_ETHERNET`` (default): each packet gets a dummy Ethernet header
  (02:00:00:00:00:02 <- 02:00:00:00:00:01) whose EtherType (0x86DD or 0x0800)
  follows the packet's version nibble;
* ``LINKTYPE_RAW``: the packet is stored as is (the reader looks at the
  version nibble itself).

Timestamps are 1 s apart from ``start`` so frame numbers and times line up.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Iterable, Union

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101

PCAP_MAGIC = 0xA1B2C3D4
SNAPLEN = 65535
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
DST_MAC = bytes.fromhex("020000000002")
SRC_MAC = bytes.fromhex("020000000001")


def ethertype_for(packet: bytes) -> int:
    """EtherType for an IP packet, from its version nibble."""
    if not packet:
        raise ValueError("empty packet")
    version = packet[0] >> 4
    if version == 6:
        return ETHERTYPE_IPV6
    if version == 4:
        return ETHERTYPE_IPV4
    raise ValueError("not an IPv4/IPv6 packet (version nibble %d)" % version)


def ethernet_frame(packet: bytes) -> bytes:
    """``packet`` behind a dummy Ethernet II header."""
    return DST_MAC + SRC_MAC + struct.pack("!H", ethertype_for(packet)) + packet


def global_header(linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """The 24-byte pcap file header (v2.4, microsecond timestamps, UTC)."""
    return struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, linktype)


def record(frame: bytes, ts_sec: int, ts_usec: int = 0) -> bytes:
    """One pcap record (header + frame), never truncated."""
    return struct.pack("<IIII", ts_sec, ts_usec, len(frame), len(frame)) + frame


def write_stream(
    out: BinaryIO,
    packets: Iterable[bytes],
    linktype: int = LINKTYPE_ETHERNET,
    start: int = 1_700_000_000,
) -> int:
    """Write a pcap to an open binary stream; returns the number of packets."""
    if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_RAW):
        raise ValueError("unsupported linktype %r" % linktype)
    out.write(global_header(linktype))
    count = 0
    for count, packet in enumerate(packets, start=1):
        if linktype == LINKTYPE_ETHERNET:
            frame = ethernet_frame(packet)
        else:
            ethertype_for(packet)  # validate the version nibble
            frame = packet
        out.write(record(frame, start + count - 1))
    return count


def write_pcap(
    path: Union[str, Path],
    packets: Iterable[bytes],
    linktype: int = LINKTYPE_ETHERNET,
    start: int = 1_700_000_000,
) -> Path:
    """Write ``packets`` (IP packets as bytes) to a pcap file at ``path``."""
    path = Path(path)
    with path.open("wb") as out:
        write_stream(out, packets, linktype=linktype, start=start)
    return path
