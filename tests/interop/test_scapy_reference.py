"""scapy (with ``scapy_mip6``) reproduces and decodes the reference vectors.

This proves the independent tooling itself: every vector TV1..TV8 of
``tests/data/reference_vectors.json`` is built byte-identically from scapy
field values (MH and, where given, the whole packet), dissecting each vector
gives the documented field values, and the RFC 4285 authenticator of TV7 is
recomputed. Our own codec (``mip6``) is deliberately not imported.
"""

from __future__ import annotations

from typing import Dict, Optional

import pytest

pytest.importorskip("scapy", reason="scapy is not installed (pip install '.[test]')")

from scapy.compat import raw  # noqa: E402
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.inet6 import (  # noqa: E402
    HAO,
    MIP6MH_BA,
    MIP6MH_BU,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
    MIP6OptMNID,
    MIP6OptMobNetPrefix,
    MIP6OptMsgAuth,
    MIP6OptReplayProtection,
    PadN,
)
from scapy.packet import Packet  # noqa: E402

from tests.interop import scapy_mip6 as sm  # noqa: E402
from tests.vectors import COA1, COA2, HA, HOA, TV7_KEY, TV7_SPI, reference_vectors  # noqa: E402

pytestmark = pytest.mark.interop

MNP = "2001:db8:1000::"
V4_COA = "192.0.2.10"
V4_HA = "198.51.100.1"
AUTH_KEY = TV7_KEY
AUTH_SPI = TV7_SPI
TIMESTAMP = 0xE7A1B2C300000000
FLAGS_AHR = "AHR"  # scapy letters for BU flags 0xC400

VECTORS: Dict[str, Dict[str, Optional[bytes]]] = {
    tag: {"mh": mh, "packet": packet} for tag, (mh, packet) in reference_vectors().items()
}


def mnp() -> MIP6OptMobNetPrefix:
    return MIP6OptMobNetPrefix(plen=48, prefix=MNP)


def bu(seq: int, lifetime: int, options: list) -> MIP6MH_BU:
    return MIP6MH_BU(seq=seq, flags=FLAGS_AHR, mhtime=lifetime, options=options)


def mh_only(mh: Packet, src: str, dst: str) -> bytes:
    """MH bytes as built under a plain IPv6 header (pseudo-header src/dst)."""
    return sm.mh_bytes(IPv6(src=src, dst=dst) / mh)


def build_tv1() -> Packet:
    return (
        IPv6(src=COA1, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
        / bu(100, 300, [mnp(), sm.MIP6OptBindingId(bid=1, bidpri=1)])
    )


def build_tv2() -> Packet:
    return (
        IPv6(src=HA, dst=COA1)
        / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA])
        / MIP6MH_BA(
            status=0,
            flags="R",
            seq=100,
            mhtime=300,
            options=[sm.MIP6OptBindingId(bid=1, bidpri=1)],
        )
    )


def build_tv3() -> Packet:
    return (
        IPv6(src=COA1, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
        / bu(
            101,
            300,
            [
                mnp(),
                sm.MIP6OptBindingId(bid=1, bidpri=1, coa=COA1),
                sm.MIP6OptBindingId(bid=2, bidpri=2, coa=COA2),
            ],
        )
    )


def build_tv4() -> MIP6MH_BA:
    return MIP6MH_BA(
        status=4,
        flags="R",
        seq=101,
        mhtime=300,
        options=[
            sm.MIP6OptBindingId(bid=1, status=0, bidpri=1),
            sm.MIP6OptBindingId(bid=2, status=130, bidpri=2),
        ],
    )


def build_tv7(authdata: bytes = b"\x00" * 12) -> MIP6MH_BU:
    return bu(
        104,
        300,
        [
            mnp(),
            MIP6OptMNID(subtype=1, id=b"mr1@example.com"),
            MIP6OptReplayProtection(timestamp=TIMESTAMP),
            MIP6OptMsgAuth(subtype=1, mspi=AUTH_SPI, authdata=authdata),
        ],
    )


def build_tv8() -> Packet:
    inner = IPv6(src=HOA, dst=HA) / bu(105, 300, [mnp(), sm.MIP6OptIPv4CoA(coa=V4_COA)])
    return sm.dsmip6_packet(V4_COA, V4_HA, inner, udp_checksum=0)


# --------------------------------------------------------------------------
# Building: byte-identical
# --------------------------------------------------------------------------


@pytest.mark.parametrize("tag,build", [("TV1", build_tv1), ("TV2", build_tv2), ("TV3", build_tv3)])
def test_full_ipv6_packets_build_identically(tag: str, build) -> None:
    pkt = build()
    assert raw(pkt) == VECTORS[tag]["packet"]
    assert sm.mh_bytes(pkt) == VECTORS[tag]["mh"]


def test_tv8_dsmipv6_packet_builds_identically() -> None:
    pkt = build_tv8()
    assert raw(pkt) == VECTORS["TV8"]["packet"]
    assert sm.mh_bytes(pkt) == VECTORS["TV8"]["mh"]


@pytest.mark.parametrize(
    "tag,mh,src,dst",
    [
        ("TV4", build_tv4(), HA, HOA),
        ("TV5", bu(102, 0, [sm.MIP6OptBindingId(bid=2)]), HOA, HA),
        ("TV6", bu(103, 0, []), HOA, HA),
    ],
)
def test_mh_only_vectors_build_identically(tag: str, mh: Packet, src: str, dst: str) -> None:
    assert mh_only(mh, src, dst) == VECTORS[tag]["mh"]


def test_tv7_signed_build_identically() -> None:
    pkt = IPv6(src=HOA, dst=HA) / build_tv7()
    signed = sm.sign_mn_ha(pkt, AUTH_KEY, coa=COA1, hoa=HOA)
    assert sm.mh_bytes(signed) == VECTORS["TV7"]["mh"]


def test_tv7_authenticator_recomputed() -> None:
    mh = VECTORS["TV7"]["mh"]
    assert sm.mn_ha_authenticator(AUTH_KEY, COA1, HOA, mh) == mh[-12:]
    # Any other key, CoA or HoA gives a different value.
    assert sm.mn_ha_authenticator(bytes(20), COA1, HOA, mh) != mh[-12:]
    assert sm.mn_ha_authenticator(AUTH_KEY, COA2, HOA, mh) != mh[-12:]


def test_sign_mn_ha_defaults_coa_and_hoa_from_hao() -> None:
    """On a BU with HAO, CoA = outer source and HoA = HAO address by default."""
    pkt = IPv6(src=COA1, dst=HA) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)]) / build_tv7()
    signed = sm.sign_mn_ha(pkt, AUTH_KEY)
    # Same MH as TV7: the authenticator does not depend on the pseudo-header,
    # and the checksum uses HoA -> HA either way.
    assert sm.mh_bytes(signed) == VECTORS["TV7"]["mh"]


# --------------------------------------------------------------------------
# Dissection: documented field values
# --------------------------------------------------------------------------


def _mh(tag: str) -> Packet:
    return (
        IPv6(src=HOA, dst=HA) / MIP6MH_BU(VECTORS[tag]["mh"])
        if VECTORS[tag]["mh"][2] == 5
        else IPv6(src=HA, dst=HOA) / MIP6MH_BA(VECTORS[tag]["mh"])
    )


def _opts(pkt: Packet, cls: type) -> list:
    layer = pkt[MIP6MH_BU] if MIP6MH_BU in pkt else pkt[MIP6MH_BA]
    return [o for o in layer.options if isinstance(o, cls)]


def _bu_flags_word(layer: MIP6MH_BU) -> int:
    return (int(layer.flags) << 9) | int(layer.reserved)


def test_tv1_dissects() -> None:
    pkt = IPv6(VECTORS["TV1"]["packet"])
    assert pkt[IPv6ExtHdrDestOpt].options[-1].hoa == HOA
    b = pkt[MIP6MH_BU]
    assert (b.seq, _bu_flags_word(b), b.mhtime, b.cksum) == (100, 0xC400, 300, 0x3547)
    (prefix,) = _opts(pkt, MIP6OptMobNetPrefix)
    assert (prefix.prefix, prefix.plen) == (MNP, 48)
    (bid,) = _opts(pkt, sm.MIP6OptBindingId)
    assert (bid.olen, bid.bid, bid.status, bid.hflag, bid.bidpri, bid.coa) == (4, 1, 0, 0, 1, None)


def test_tv2_dissects() -> None:
    pkt = IPv6(VECTORS["TV2"]["packet"])
    assert (pkt[IPv6ExtHdrRouting].type, pkt[IPv6ExtHdrRouting].addresses) == (2, [HOA])
    a = pkt[MIP6MH_BA]
    assert (a.status, a.flags.R, a.flags.K, a.seq, a.mhtime) == (0, True, False, 100, 300)
    (bid,) = _opts(pkt, sm.MIP6OptBindingId)
    assert (bid.bid, bid.status, bid.bidpri) == (1, 0, 1)


def test_tv3_dissects_bulk_bids_with_coa() -> None:
    pkt = IPv6(VECTORS["TV3"]["packet"])
    assert pkt[MIP6MH_BU].seq == 101
    bids = _opts(pkt, sm.MIP6OptBindingId)
    assert [(b.olen, b.bid, b.bidpri, b.coa) for b in bids] == [
        (20, 1, 1, COA1),
        (20, 2, 2, COA2),
    ]


def test_tv4_dissects_per_bid_status() -> None:
    pkt = _mh("TV4")
    a = pkt[MIP6MH_BA]
    assert (a.status, a.flags.R, a.seq, a.mhtime) == (4, True, 101, 300)
    bids = _opts(pkt, sm.MIP6OptBindingId)
    assert [(b.bid, b.status, b.bidpri) for b in bids] == [(1, 0, 1), (2, 130, 2)]


def test_tv5_tv6_dissect_deregistrations() -> None:
    tv5, tv6 = _mh("TV5"), _mh("TV6")
    assert (tv5[MIP6MH_BU].seq, tv5[MIP6MH_BU].mhtime) == (102, 0)
    assert [b.bid for b in _opts(tv5, sm.MIP6OptBindingId)] == [2]
    assert (tv6[MIP6MH_BU].seq, tv6[MIP6MH_BU].mhtime) == (103, 0)
    assert _opts(tv6, sm.MIP6OptBindingId) == []
    assert [type(o) for o in tv6[MIP6MH_BU].options] == [PadN]


def test_tv7_dissects_nai_mesg_id_auth() -> None:
    pkt = _mh("TV7")
    assert pkt[MIP6MH_BU].seq == 104
    (nai,) = _opts(pkt, MIP6OptMNID)
    assert (nai.subtype, nai.id) == (1, b"mr1@example.com")
    (ts,) = _opts(pkt, MIP6OptReplayProtection)
    assert ts.timestamp == TIMESTAMP
    (auth,) = _opts(pkt, MIP6OptMsgAuth)
    assert (auth.subtype, auth.mspi, len(auth.authdata)) == (1, AUTH_SPI, 12)
    assert pkt[MIP6MH_BU].options[-1] is auth


def test_tv8_dissects_through_udp_4191() -> None:
    pkt = IP(VECTORS["TV8"]["packet"])
    assert (pkt[UDP].sport, pkt[UDP].dport, pkt[UDP].chksum) == (4191, 4191, 0)
    assert (pkt[IPv6].src, pkt[IPv6].dst) == (HOA, HA)
    assert pkt[MIP6MH_BU].seq == 105
    (coa,) = _opts(pkt, sm.MIP6OptIPv4CoA)
    assert coa.coa == V4_COA


# --------------------------------------------------------------------------
# Checksum helper (scapy's HAO-after-dissection bug)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["TV1", "TV2", "TV3"])
def test_mh_checksum_of_dissected_packets(tag: str) -> None:
    pkt = IPv6(VECTORS[tag]["packet"])
    mh = VECTORS[tag]["mh"]
    assert sm.mh_checksum(pkt) == int.from_bytes(mh[4:6], "big")
    assert raw(sm.with_correct_mh_checksum(pkt)) == VECTORS[tag]["packet"]


def test_scapy_alone_gets_dissected_hao_checksum_wrong() -> None:
    """Documents the scapy bug the helper works around (digest 1.7)."""
    pkt = IPv6(VECTORS["TV1"]["packet"])
    pkt[MIP6MH_BU].cksum = None
    assert pkt[IPv6ExtHdrDestOpt].options[0].__class__ is PadN
    assert IPv6(raw(pkt))[MIP6MH_BU].cksum == 0x353D  # CoA-based, wrong
    assert sm.mh_checksum(pkt) == 0x3547  # HoA-based, right


def test_mh_checksum_raw_pseudo_header_choice() -> None:
    mh = VECTORS["TV1"]["mh"]
    assert sm.mh_checksum_raw(mh, HOA, HA) == 0x3547
    assert sm.mh_checksum_raw(mh, COA1, HA) == 0x353D


# --------------------------------------------------------------------------
# The new option classes and the HAS message
# --------------------------------------------------------------------------


def test_has_example_from_digest() -> None:
    """RFC 5142 HAS, digest 6.4: one address, src HA, dst CoA1."""
    expected = bytes.fromhex("3b020c003e38010020010db8eeee00000000000000000001")
    pkt = IPv6(src=HA, dst=COA1) / sm.MIP6MH_HAS(addresses=["2001:db8:eeee::1"])
    assert sm.mh_bytes(pkt) == expected
    back = IPv6(raw(pkt))
    assert isinstance(back.payload, sm.MIP6MH_HAS)
    assert (back.naddrs, back.addresses) == (1, ["2001:db8:eeee::1"])


def test_has_with_two_addresses_and_option() -> None:
    pkt = IPv6(src=HA, dst=COA1) / sm.MIP6MH_HAS(
        addresses=["2001:db8:eeee::1", "2001:db8:dddd::1"],
        options=[sm.MIP6OptBindingId(bid=7, bidpri=3)],
    )
    data = sm.mh_bytes(pkt)
    assert len(data) % 8 == 0 and data[6] == 2
    back = IPv6(raw(pkt))[sm.MIP6MH_HAS]
    assert back.addresses == ["2001:db8:eeee::1", "2001:db8:dddd::1"]
    assert [o.bid for o in back.options if isinstance(o, sm.MIP6OptBindingId)] == [7]
    assert sm.mh_checksum(IPv6(raw(pkt))) == back.cksum


@pytest.mark.parametrize(
    "opt,wire",
    [
        (sm.MIP6OptBindingId(bid=3, status=167, hflag=1, bidpri=0x7F), "23040003a7ff"),
        (sm.MIP6OptBindingId(bid=1, bidpri=5, coa=V4_COA), "230800010005c000020a"),
        (sm.MIP6OptIPv4HoA(plen=24, p=1, hoa="192.0.2.1"), "1d066200c0000201"),
        (sm.MIP6OptIPv4AddrAck(status=130, plen=24, hoa="192.0.2.1"), "1e068260c0000201"),
        (sm.MIP6OptNATDetection(f=1, refresh=110), "1f0680000000006e"),
        (sm.MIP6OptIPv4CoA(coa=V4_COA), "20060000c000020a"),
        (sm.MIP6OptGREKey(grekey=0x01020304), "2106000001020304"),
        (sm.MIP6OptGREKey(olen=2), "21020000"),
    ],
)
def test_option_encoding_and_round_trip(opt: Packet, wire: str) -> None:
    assert raw(opt) == bytes.fromhex(wire)
    back = type(opt)(bytes.fromhex(wire))
    assert raw(back) == bytes.fromhex(wire)
    for name in opt.fields:
        assert getattr(back, name) == getattr(opt, name), name


def _option_offsets(mh: bytes) -> Dict[int, int]:
    """{option type: offset of its first occurrence} (skips Pad1/PadN)."""
    pos, end, out = 12, (mh[1] + 1) * 8, {}
    while pos < end:
        if mh[pos] == 0:
            pos += 1
            continue
        if mh[pos] != 1:
            out.setdefault(mh[pos], pos)
        pos += 2 + mh[pos + 1]
    assert pos == end
    return out


@pytest.mark.parametrize(
    "opt,x,y",
    [
        (sm.MIP6OptBindingId(bid=1), 2, 0),
        (sm.MIP6OptBindingId(bid=1, coa=COA1), 8, 2),
        (sm.MIP6OptBindingId(bid=1, coa=V4_COA), 8, 2),
        (sm.MIP6OptIPv4HoA(), 4, 0),
        (sm.MIP6OptIPv4AddrAck(), 4, 0),
        (sm.MIP6OptNATDetection(), 4, 0),
        (sm.MIP6OptIPv4CoA(), 4, 0),
        (sm.MIP6OptGREKey(), 4, 2),
    ],
)
@pytest.mark.parametrize("lead_len", [0, 1, 2, 3, 5])
def test_option_alignment_after_odd_lead(opt: Packet, x: int, y: int, lead_len: int) -> None:
    """Auto-padding puts each new option at its x*n+y from any start offset."""
    lead = [MIP6OptMNID(id=b"a" * lead_len)] if lead_len else []
    data = mh_only(bu(1, 1, lead + [opt]), HOA, HA)
    otype = raw(opt)[0]
    offset = _option_offsets(data)[otype]
    assert offset % x == y
    assert len(data) % 8 == 0
    back = [o for o in MIP6MH_BU(data).options if type(o) is type(opt)]
    assert [raw(o) for o in back] == [raw(opt)]


def test_bid_with_odd_coa_length_is_kept_raw() -> None:
    """A malformed BID (length 6) still dissects, with the CoA bytes raw."""
    opt = sm.MIP6OptBindingId(bytes.fromhex("230600010001abcd"))
    assert (opt.olen, opt.bid, opt.coa) == (6, 1, b"\xab\xcd")
    assert raw(opt) == bytes.fromhex("230600010001abcd")
