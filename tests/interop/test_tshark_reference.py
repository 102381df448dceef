"""tshark decodes the reference vectors cleanly and with the documented values.

This proves the tshark tooling (``pcap.py`` + ``tshark.py``): every vector of
``tests/data/reference_vectors.json`` goes into one pcap (MH-only vectors are
wrapped in a bare IPv6 header whose addresses match the pseudo-header the
vector's checksum was computed with: HoA -> HA for BUs, HA -> HoA for BAs),
tshark reports no malformation, warning, error or bad checksum, and its field
values match. It also pins the tshark 4.0 quirks the interop tests must know.
Neither scapy nor our codec (``mip6``) is used.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Dict, List

import pytest

from tests.interop import tshark
from tests.vectors import COA1, COA2, HA, HOA, reference_vectors

pytestmark = [pytest.mark.interop, pytest.mark.requires_tshark]


TAGS = ["TV%d" % i for i in range(1, 9)]
VECTORS: Dict[str, Dict[str, bytes]] = {
    tag: {"mh": mh, "packet": packet or b""} for tag, (mh, packet) in reference_vectors().items()
}


def ipv6_mh(src: str, dst: str, mh: bytes) -> bytes:
    """A bare IPv6 header (NH 135, hop limit 64) followed by ``mh``."""
    return (
        struct.pack("!IHBB", 6 << 28, len(mh), 135, 64)
        + socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + mh
    )


def vector_packet(tag: str) -> bytes:
    vec = VECTORS[tag]
    if vec["packet"]:
        return vec["packet"]
    mh = vec["mh"]
    return ipv6_mh(HA, HOA, mh) if mh[2] == 6 else ipv6_mh(HOA, HA, mh)


def bu_mh(options: bytes, seq: int = 7, src: str = HOA, dst: str = HA) -> bytes:
    """BU (A|H|R, lifetime 10) with ``options`` (already aligned), padded to
    8n with PadN/Pad1, Header Len and checksum filled in."""
    body = struct.pack("!HHH", seq, 0xC400, 10) + options
    pad = (-(6 + len(body))) % 8
    body += b"\x00" if pad == 1 else (bytes([1, pad - 2]) + bytes(pad - 2) if pad else b"")
    mh = bytes([59, (6 + len(body)) // 8 - 1, 5, 0, 0, 0]) + body
    return mh[:4] + struct.pack("!H", tshark.mh_checksum(mh, src, dst)) + mh[6:]


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, tshark.TsharkPacket]:
    frames = tshark.dissect(
        [vector_packet(t) for t in TAGS], workdir=tmp_path_factory.mktemp("tv")
    )
    assert len(frames) == len(TAGS)
    return dict(zip(TAGS, frames))


@pytest.mark.parametrize("tag", TAGS)
def test_vector_decodes_clean(decoded: Dict[str, tshark.TsharkPacket], tag: str) -> None:
    pkt = decoded[tag]
    tshark.assert_clean(pkt)
    assert pkt.raws("mipv6") == [VECTORS[tag]["mh"]]
    assert pkt.mh_checksums() == [(int.from_bytes(VECTORS[tag]["mh"][4:6], "big"),) * 2]


def test_tv1_bu_fields(decoded: Dict[str, tshark.TsharkPacket]) -> None:
    pkt = decoded["TV1"]
    assert pkt.value("ipv6.opt.mipv6.home_address") == HOA
    assert pkt.value("mip6.mhtype") == "5"
    assert pkt.value("mip6.csum") == "0x3547"
    assert pkt.value("mip6.bu.seqnr") == "100"
    assert [pkt.value("mip6.bu.%s_flag" % f) for f in "ahlk"] == ["1", "1", "0", "0"]
    assert pkt.value("mip6.nemo.bu.r_flag") == "1"
    assert pkt.value("mip6.bu.lifetime") == "300"
    assert pkt.value("mip6.nemo.mnp.pfl") == "48"
    assert pkt.value("mip6.nemo.mnp.mnp") == "2001:db8:1000::"
    assert (
        pkt.value("mip6.bi.bid"),
        pkt.value("mip6.bi.status"),
        pkt.value("mip6.bi.h_flag"),
    ) == ("1", "0", "0")
    assert pkt.values("mip6.bi.coa_ipv6") == []
    assert pkt.bid_priorities() == [1]
    assert [name for name, _ in pkt.options()] == [
        "mip6.options.mnp",
        "mip6.options.bi",
        "mip6.options.padn",
    ]


def test_tv2_ba_fields(decoded: Dict[str, tshark.TsharkPacket]) -> None:
    pkt = decoded["TV2"]
    assert pkt.value("ipv6.routing.type") == "2"
    assert pkt.value("ipv6.routing.mipv6.home_address") == HOA
    assert pkt.value("mip6.ba.status") == "0"
    assert (pkt.value("mip6.ba.k_flag"), pkt.value("mip6.nemo.ba.r_flag")) == ("0", "1")
    assert (pkt.value("mip6.ba.seqnr"), pkt.value("mip6.ba.lifetime")) == ("100", "300")
    assert pkt.value("mip6.bi.bid") == "1"
    assert pkt.bid_priorities() == [1]


def test_tv3_bulk_bids_with_ipv6_coa(decoded: Dict[str, tshark.TsharkPacket]) -> None:
    pkt = decoded["TV3"]
    assert pkt.values("mip6.bi.bid") == ["1", "2"]
    assert pkt.values("mip6.bi.coa_ipv6") == [COA1, COA2]
    assert pkt.values("mip6.mobility_opt.len")[-1] == "20"
    assert pkt.bid_priorities() == [1, 2]


def test_tv4_per_bid_status(decoded: Dict[str, tshark.TsharkPacket]) -> None:
    pkt = decoded["TV4"]
    assert pkt.value("mip6.ba.status") == "4"
    assert pkt.values("mip6.bi.bid") == ["1", "2"]
    assert pkt.values("mip6.bi.status") == ["0", "130"]
    assert pkt.bid_priorities() == [1, 2]


def test_tv5_tv6_deregistrations(decoded: Dict[str, tshark.TsharkPacket]) -> None:
    tv5, tv6 = decoded["TV5"], decoded["TV6"]
    assert (tv5.value("mip6.bu.seqnr"), tv5.value("mip6.bu.lifetime")) == ("102", "0")
    assert tv5.values("mip6.bi.bid") == ["2"]
    assert (tv6.value("mip6.bu.seqnr"), tv6.value("mip6.bu.lifetime")) == ("103", "0")
    assert tv6.values("mip6.bi.bid") == []
    assert [name for name, _ in tv6.options()] == ["mip6.options.padn"]


def test_tv7_nai_mesg_id_auth(decoded: Dict[str, tshark.TsharkPacket]) -> None:
    pkt = decoded["TV7"]
    mh = VECTORS["TV7"]["mh"]
    assert (pkt.value("mip6.mnid.subtype"), pkt.value("mip6.mnid.identifier")) == (
        "1",
        "mr1@example.com",
    )
    assert pkt.mesg_id_timestamps() == [0xE7A1B2C300000000]
    assert (pkt.value("mip6.auth.subtype"), pkt.value("mip6.auth.mobility_spi")) == ("1", "256")
    assert pkt.authenticators() == [mh[-12:]]
    assert pkt.options()[-1][0] == "mip6.options.auth"


def test_tv8_dsmipv6_over_udp_4191(decoded: Dict[str, tshark.TsharkPacket]) -> None:
    pkt = decoded["TV8"]
    assert (pkt.value("udp.srcport"), pkt.value("udp.dstport")) == ("4191", "4191")
    assert pkt.value("ip.checksum.status") == "1"  # Good
    assert pkt.value("udp.checksum.status") == "3"  # Not present (0 over IPv4)
    assert pkt.value("mip6.bu.seqnr") == "105"
    assert pkt.value("mip6.ipv4coa.addr") == "192.0.2.10"
    assert pkt.values("ipv6.src")[-1] == HOA


# --------------------------------------------------------------------------
# Other options (hand-made bytes, same wire as the scapy tests)
# --------------------------------------------------------------------------


def test_dsmipv6_gre_and_bid_ipv4_options(tmp_path: Path) -> None:
    options = bytes.fromhex(
        "01040000 0000"  # PadN 6 -> BID with CoA at 8n+2 (offset 18)
        "230800010085c000020a"  # BID 1, H=1, PRI=5, IPv4 CoA 192.0.2.10
        "1d066200c0000201"  # IPv4 HoA /24, P=1, 192.0.2.1 (offset 28, 4n)
        "0100"  # PadN 2 -> GRE key at 4n+2 (offset 38)
        "2106000001020304"  # GRE key 0x01020304
        "21020000"  # GRE key option without key
        "0100"  # PadN 2 -> IPv4 CoA at 4n (offset 52)
        "20060000c000020a"  # IPv4 CoA 192.0.2.10
    )
    (pkt,) = tshark.dissect([ipv6_mh(HOA, HA, bu_mh(options))], workdir=tmp_path)
    tshark.assert_clean(pkt)
    assert (pkt.value("mip6.bi.h_flag"), pkt.value("mip6.bi.coa_ipv4")) == ("1", "192.0.2.10")
    assert pkt.bid_priorities() == [5]
    assert (pkt.value("mip6.ipv4ha.preflen"), pkt.value("mip6.ipv4ha.p_flag")) == ("24", "1")
    assert pkt.value("mip6.ipv4ha.ha") == "192.0.2.1"
    assert pkt.values("mip6.gre_key") == [str(0x01020304)]
    assert [len(raw) for name, raw in pkt.options() if name == "mip6.options.grek"] == [8, 4]
    assert pkt.value("mip6.ipv4coa.addr") == "192.0.2.10"


def test_ba_ipv4_ack_and_nat_detection(tmp_path: Path) -> None:
    body = struct.pack("!BBHH", 0, 0x40, 7, 10) + bytes.fromhex(
        "1e068260c0000201"  # IPv4 Address Ack: status 130, /24, 192.0.2.1
        "1f0680000000006e"  # NAT detection: F=1, refresh 110 s
        "01020000"  # PadN 4 -> 32 bytes
    )
    mh = bytes([59, 3, 6, 0, 0, 0]) + body
    mh = mh[:4] + struct.pack("!H", tshark.mh_checksum(mh, HA, HOA)) + mh[6:]
    (pkt,) = tshark.dissect([ipv6_mh(HA, HOA, mh)], workdir=tmp_path)
    tshark.assert_clean(pkt)
    assert pkt.value("mip6.ipv4aa.sts") == "130"
    assert (pkt.value("mip6.ipv4ha.preflen"), pkt.value("mip6.ipv4ha.ha")) == ("24", "192.0.2.1")
    assert (pkt.value("mip6.natd.f_flag"), pkt.value("mip6.natd.refresh_t")) == ("1", "110")


# --------------------------------------------------------------------------
# tshark 4.0 quirks the interop tests rely on (fail here when tshark changes)
# --------------------------------------------------------------------------


def test_quirk_mh_checksum_not_validated_by_tshark(tmp_path: Path) -> None:
    """tshark says nothing about a wrong MH checksum; our recomputation does."""
    bad = bytearray(vector_packet("TV6"))
    bad[40 + 4] ^= 0xFF
    (pkt,) = tshark.dissect([bytes(bad)], workdir=tmp_path)
    assert pkt.experts == [] and not pkt.malformed
    assert tshark.problems(pkt, check_mh_checksum=False) == []
    with pytest.raises(AssertionError, match="MH checksum"):
        tshark.assert_clean(pkt)


def test_quirk_auth_data_shown_truncated(decoded: Dict[str, tshark.TsharkPacket]) -> None:
    shown = decoded["TV7"].value("mip6.auth.auth_data").replace(":", "")
    assert shown == VECTORS["TV7"]["mh"][-12:-2].hex()  # 10 of 12 bytes


def test_quirk_mesg_id_shown_as_unix_time(decoded: Dict[str, tshark.TsharkPacket]) -> None:
    # 0xE7A1B2C3 NTP seconds is Feb 23, 2023; tshark prints it as Unix time.
    assert decoded["TV7"].value("mip6.mseg_id.timestamp").startswith("Feb 22, 2093")


def test_quirk_no_bid_pri_field(decoded: Dict[str, tshark.TsharkPacket]) -> None:
    names = {name for name, _ in decoded["TV3"].mip6_fields()}
    assert {n for n in names if n.startswith("mip6.bi.")} == {
        "mip6.bi.bid",
        "mip6.bi.status",
        "mip6.bi.h_flag",
        "mip6.bi.coa_ipv6",
    }


def test_quirk_has_options_parsed_six_bytes_early(tmp_path: Path) -> None:
    """The digest's HAS example is valid (RFC 5142) but tshark 4.0 warns."""
    has = bytes.fromhex("3b020c003e38010020010db8eeee00000000000000000001")
    (pkt,) = tshark.dissect([ipv6_mh(HA, COA1, has)], workdir=tmp_path)
    assert pkt.value("mip6.has.num_addrs") == "1"
    assert pkt.values("mip6.has.address") == ["2001:db8:eeee::1"]
    assert pkt.mh_checksums() == [(0x3E38, 0x3E38)]
    found = tshark.problems(pkt)
    assert found and all("past end of options" in p for p in found)


def test_malformed_and_bad_ip_checksum_are_reported(tmp_path: Path) -> None:
    truncated = vector_packet("TV1")[:90]
    bad_ip = bytearray(vector_packet("TV8"))
    bad_ip[10] ^= 0xFF
    bad_len = bytearray(vector_packet("TV1"))
    bad_len[64 + 13] = 19  # MNP option length 19 instead of 18
    frames: List[tshark.TsharkPacket] = tshark.dissect(
        [truncated, bytes(bad_ip), bytes(bad_len)], workdir=tmp_path
    )
    assert frames[0].malformed
    assert any("ip.checksum.status=0" in p for p in tshark.problems(frames[1]))
    assert any("mip6.opt.len.invalid" in p for p in tshark.problems(frames[2]))
    for pkt in frames:
        with pytest.raises(AssertionError):
            tshark.assert_clean(pkt)
