"""The pcap writer produces classic libpcap files (no tshark or scapy needed)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.interop import pcap

pytestmark = pytest.mark.interop

IPV6 = bytes([0x60]) + bytes(39)
IPV4 = bytes([0x45]) + bytes(19)


def test_ethernet_file_layout(tmp_path: Path) -> None:
    path = pcap.write_pcap(tmp_path / "x.pcap", [IPV6, IPV4])
    data = path.read_bytes()
    magic, major, minor, _, _, snaplen, linktype = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, snaplen, linktype) == (0xA1B2C3D4, 2, 4, 65535, 1)
    ts, _, incl, orig = struct.unpack("<IIII", data[24:40])
    assert incl == orig == 14 + len(IPV6)
    assert data[40 + 12 : 40 + 14] == b"\x86\xdd"
    second = 40 + incl
    ts2, _, incl2, _ = struct.unpack("<IIII", data[second : second + 16])
    assert (ts2 - ts, incl2) == (1, 14 + len(IPV4))
    assert data[second + 16 + 12 : second + 16 + 14] == b"\x08\x00"
    assert len(data) == second + 16 + incl2


def test_raw_linktype_keeps_packets_as_is(tmp_path: Path) -> None:
    data = pcap.write_pcap(tmp_path / "r.pcap", [IPV6], linktype=pcap.LINKTYPE_RAW).read_bytes()
    assert struct.unpack("<I", data[20:24])[0] == 101
    assert data[40:] == IPV6


def test_rejects_non_ip(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        pcap.write_pcap(tmp_path / "bad.pcap", [b"\x10\x00"])
