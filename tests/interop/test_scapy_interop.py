"""Our codec (``mip6``) and scapy (with ``scapy_mip6``) agree, in both directions.

* scapy -> mip6: Mobility Headers and whole packets built with scapy field values
  decode with ``mip6.decode`` / ``mip6.packet.decode_packet`` to the same values,
  field by field and option by option; the checksum scapy wrote verifies with our
  ``verify_mh_checksum`` / ``checksum_ok()``, and messages signed by
  ``scapy_mip6.sign_mn_ha`` verify with ``mip6.verify_authenticator``.
* mip6 -> scapy: messages and packets we encode dissect in scapy to the values we
  set, scapy re-serialises them byte for byte, the checksum scapy's side recomputes
  (``scapy_mip6.mh_checksum``; scapy's own recompute gets the HAO case wrong) equals
  ours, and so does the RFC 4285 authenticator (``scapy_mip6.mn_ha_authenticator``).
* A hypothesis property does the second direction for random BUs and BAs.

Comparisons go through two small "views" (``scapy_view`` and ``mip6_view``) that
read each side's own attributes into the same plain shape: a dict of header fields
plus a list of option tuples (padding left out, addresses as ``ipaddress`` objects).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import pytest

pytest.importorskip("scapy", reason="scapy is not installed (pip install '.[test]')")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scapy.compat import raw  # noqa: E402
from scapy.layers import inet6  # noqa: E402
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.inet6 import (  # noqa: E402
    HAO,
    MIP6MH_BA,
    MIP6MH_BE,
    MIP6MH_BRR,
    MIP6MH_BU,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
    MIP6OptAltCoA,
    MIP6OptBindingAuthData,
    MIP6OptBRAdvice,
    MIP6OptMNID,
    MIP6OptMobNetPrefix,
    MIP6OptMsgAuth,
    MIP6OptNonceIndices,
    MIP6OptReplayProtection,
    MIP6OptUnknown,
    Pad1,
    PadN,
    _MobilityHeader,
)
from scapy.packet import Packet, Raw  # noqa: E402

import mip6  # noqa: E402
from mip6 import BaFlag, BuFlag  # noqa: E402
from mip6.packet import (  # noqa: E402
    SignallingPacket,
    ba_packet,
    bu_packet,
    decode_packet,
    dsmip_packet,
)
from tests import strategies  # noqa: E402
from tests.interop import scapy_mip6 as sm  # noqa: E402
from tests.vectors import COA1, COA2, COA4, HA, HA4, HOA  # noqa: E402

pytestmark = pytest.mark.interop

KEY = b"nemo-fabric interop key"
SPI = 0x100
NAI = b"mr1@example.com"
TIMESTAMP = mip6.ntp_from_unix(1_700_000_000.25)
MNP_PREFIX, MNP_LEN = "2001:db8:1000::", 48
MNP2_PREFIX, MNP2_LEN = "2001:db8:2000::", 56
HOA4 = "192.0.2.77"
COA4_2 = "198.51.100.20"
COA4_MAPPED = "::ffff:" + COA4  # RFC 4285 input for an IPv4 CoA (docs/protocol.md)
ALT_HA = "2001:db8:eeee::1"
ALT_HA2 = "2001:db8:dddd::1"
GRE_KEY = 0x01020304
AHR = BuFlag.A | BuFlag.H | BuFlag.R  # 0xC400, scapy letters "AHR"

OptionView = Tuple[Any, ...]
View = Dict[str, Any]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


# --------------------------------------------------------------------------
# Views: each side's own attributes, read into one comparable shape
# --------------------------------------------------------------------------


def ip(value: Any) -> Optional[Address]:
    """An ``ipaddress`` object from a scapy string or a mip6 address (None stays)."""
    if value is None or isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    return ipaddress.ip_address(value)


_SCAPY_OPTIONS: Dict[type, Callable[[Any], OptionView]] = {
    MIP6OptBRAdvice: lambda o: ("BRA", o.rinter),
    MIP6OptAltCoA: lambda o: ("ALT-COA", ip(o.acoa)),
    MIP6OptNonceIndices: lambda o: ("NONCE", o.hni, o.coni),
    MIP6OptBindingAuthData: lambda o: ("BAD", int(o.authenticator).to_bytes(12, "big")),
    MIP6OptMobNetPrefix: lambda o: ("MNP", ip(o.prefix), o.plen),
    MIP6OptMNID: lambda o: ("MN-ID", o.subtype, bytes(o.id)),
    MIP6OptMsgAuth: lambda o: ("AUTH", o.subtype, o.mspi, bytes(o.authdata)),
    MIP6OptReplayProtection: lambda o: ("MESG-ID", int(o.timestamp)),
    sm.MIP6OptIPv4HoA: lambda o: ("IPV4-HOA", ip(o.hoa), o.plen, bool(o.p)),
    sm.MIP6OptIPv4AddrAck: lambda o: ("IPV4-ACK", o.status, ip(o.hoa), o.plen),
    sm.MIP6OptNATDetection: lambda o: ("NAT-DET", bool(o.f), o.refresh),
    sm.MIP6OptIPv4CoA: lambda o: ("IPV4-COA", ip(o.coa)),
    sm.MIP6OptGREKey: lambda o: ("GRE", None if o.olen == 2 else o.grekey),
    sm.MIP6OptBindingId: lambda o: ("BID", o.bid, o.status, bool(o.hflag), o.bidpri, ip(o.coa)),
    MIP6OptUnknown: lambda o: ("UNKNOWN", o.otype, bytes(o.odata)),
}

_MIP6_OPTIONS: Dict[type, Callable[[Any], OptionView]] = {
    mip6.BindingRefreshAdvice: lambda o: ("BRA", o.interval),
    mip6.AlternateCareOfAddress: lambda o: ("ALT-COA", ip(o.address)),
    mip6.NonceIndices: lambda o: ("NONCE", o.home_nonce_index, o.care_of_nonce_index),
    mip6.BindingAuthorizationData: lambda o: ("BAD", bytes(o.authenticator)),
    mip6.MobileNetworkPrefix: lambda o: ("MNP", ip(o.prefix), o.prefix_length),
    mip6.MobileNodeIdentifier: lambda o: ("MN-ID", o.subtype, bytes(o.identifier)),
    mip6.Authentication: lambda o: ("AUTH", o.subtype, o.spi, bytes(o.authenticator)),
    mip6.ReplayProtection: lambda o: ("MESG-ID", o.timestamp),
    mip6.IPv4HomeAddress: lambda o: ("IPV4-HOA", ip(o.address), o.prefix_length,
                                     o.request_prefix),
    mip6.IPv4AddressAcknowledgement: lambda o: ("IPV4-ACK", o.status, ip(o.address),
                                                o.prefix_length),
    mip6.NatDetection: lambda o: ("NAT-DET", o.udp_encapsulation, o.refresh_time),
    mip6.IPv4CareOfAddress: lambda o: ("IPV4-COA", ip(o.address)),
    mip6.GreKey: lambda o: ("GRE", o.key),
    mip6.BindingIdentifier: lambda o: ("BID", o.bid, o.status, o.simultaneous_home, o.priority,
                                       ip(o.care_of_address)),
    mip6.UnknownOption: lambda o: ("UNKNOWN", o.option_type, bytes(o.data)),
}


def scapy_view(mh: Packet) -> View:
    """Header fields and options of a scapy Mobility Header (built or dissected)."""
    if isinstance(mh, MIP6MH_BU):
        view: View = {"type": 5, "sequence": mh.seq, "lifetime": mh.mhtime,
                      "flags": (int(mh.flags) << 9) | (mh.reserved or 0)}
    elif isinstance(mh, MIP6MH_BA):
        view = {"type": 6, "status": mh.status, "sequence": mh.seq, "lifetime": mh.mhtime,
                "flags": (int(mh.flags) << 5) | (mh.res2 or 0)}
    elif isinstance(mh, MIP6MH_BE):
        view = {"type": 7, "status": mh.status, "home_address": ip(mh.ha)}
    elif isinstance(mh, MIP6MH_BRR):
        view = {"type": 0}
    elif isinstance(mh, sm.MIP6MH_HAS):
        view = {"type": 12, "addresses": [ip(a) for a in mh.addresses]}
    else:
        raise TypeError("no view for %s" % type(mh).__name__)
    view["options"] = [_SCAPY_OPTIONS[type(o)](o) for o in mh.options
                       if not isinstance(o, (Pad1, PadN))]
    return view


def mip6_view(msg: mip6.MobilityMessage) -> View:
    """The same shape as :func:`scapy_view`, from one of our message objects."""
    if isinstance(msg, mip6.BindingUpdate):
        view: View = {"type": 5, "sequence": msg.sequence, "lifetime": msg.lifetime,
                      "flags": int(msg.flags)}
    elif isinstance(msg, mip6.BindingAcknowledgement):
        view = {"type": 6, "status": msg.status, "sequence": msg.sequence,
                "lifetime": msg.lifetime, "flags": int(msg.flags)}
    elif isinstance(msg, mip6.BindingError):
        view = {"type": 7, "status": msg.status, "home_address": ip(msg.home_address)}
    elif isinstance(msg, mip6.BindingRefreshRequest):
        view = {"type": 0}
    elif isinstance(msg, mip6.HomeAgentSwitch):
        view = {"type": 12, "addresses": [ip(a) for a in msg.addresses]}
    else:
        raise TypeError("no view for %s" % type(msg).__name__)
    view["options"] = [_MIP6_OPTIONS[type(o)](o) for o in msg.options]
    return view


def mh_layer(pkt: Packet) -> Packet:
    """The Mobility Header layer of a scapy packet."""
    layer = pkt
    while not isinstance(layer, _MobilityHeader):
        if not layer.payload:
            raise AssertionError("no Mobility Header in %r" % pkt)
        layer = layer.payload
    return layer


def scapy_envelope(pkt: Packet) -> View:
    """Addresses around the MH as scapy has them (built or dissected)."""
    mh = mh_layer(pkt)
    env: View = {"home_address": None, "routing_home_address": None, "udp": None}
    layer = mh.underlayer
    while not isinstance(layer, IPv6):
        if isinstance(layer, IPv6ExtHdrDestOpt):
            env["home_address"] = next(ip(o.hoa) for o in layer.options if isinstance(o, HAO))
        elif isinstance(layer, IPv6ExtHdrRouting):
            assert (layer.type, layer.segleft, len(layer.addresses)) == (2, 1, 1)
            env["routing_home_address"] = ip(layer.addresses[0])
        layer = layer.underlayer
    env["src"], env["dst"] = ip(layer.src), ip(layer.dst)
    if UDP in pkt:
        env["udp"] = (ip(pkt[IP].src), ip(pkt[IP].dst), pkt[UDP].sport, pkt[UDP].dport)
    return env


def mip6_envelope(packet: SignallingPacket) -> View:
    """The same shape as :func:`scapy_envelope`, from one of our packets."""
    udp = packet.udp
    return {
        "src": ip(packet.src),
        "dst": ip(packet.dst),
        "home_address": ip(packet.home_address),
        "routing_home_address": ip(packet.routing_home_address),
        "udp": None if udp is None else (ip(udp.src), ip(udp.dst), udp.sport, udp.dport),
    }


def on_ipv6(mh: bytes, src: str, dst: str) -> Packet:
    """Our MH bytes behind a plain IPv6 header, dissected by scapy (it picks the class)."""
    return IPv6(raw(IPv6(src=src, dst=dst, nh=135) / Raw(mh)))


def wire_checksum(mh: bytes) -> int:
    return int.from_bytes(mh[4:6], "big")


def by_id(cases: Sequence[Any], case_id: str) -> Any:
    """The case called ``case_id`` in a table."""
    return next(case for case in cases if case.id == case_id)


# --------------------------------------------------------------------------
# scapy -> mip6: Mobility Headers
# --------------------------------------------------------------------------


def s_mnp(prefix: str = MNP_PREFIX, plen: int = MNP_LEN) -> MIP6OptMobNetPrefix:
    return MIP6OptMobNetPrefix(prefix=prefix, plen=plen)


def s_bu(seq: int, options: Sequence[Packet], flags: Any = "AHR", lifetime: int = 75,
         reserved: int = 0) -> MIP6MH_BU:
    return MIP6MH_BU(seq=seq, flags=flags, reserved=reserved, mhtime=lifetime,
                     options=list(options))


def s_ba(status: int, options: Sequence[Packet], seq: int = 7, flags: Any = "R",
         lifetime: int = 75, res2: int = 0) -> MIP6MH_BA:
    return MIP6MH_BA(status=status, flags=flags, res2=res2, seq=seq, mhtime=lifetime,
                     options=list(options))


def s_auth() -> MIP6OptMsgAuth:
    return MIP6OptMsgAuth(subtype=1, mspi=SPI, authdata=b"\x00" * 12)


@dataclass(frozen=True)
class ScapyCase:
    """A Mobility Header built by scapy, sent ``src`` -> ``dst`` (no extension headers).

    ``sign``: (CoA, HoA) to sign it with :func:`scapy_mip6.sign_mn_ha` (key ``KEY``).
    ``our_layout``: scapy placed every option where our encoder would, so re-encoding
    the decoded message gives the same bytes.
    """

    id: str
    mh: Callable[[], Packet]
    src: str = HOA
    dst: str = HA
    sign: Optional[Tuple[str, str]] = None
    our_layout: bool = True

    def packet(self) -> Packet:
        pkt = IPv6(src=self.src, dst=self.dst) / self.mh()
        if self.sign is not None:
            pkt = sm.sign_mn_ha(pkt, KEY, coa=self.sign[0], hoa=self.sign[1])
        return pkt


def _ba(case_id: str, mh: Callable[[], Packet], **kw: Any) -> ScapyCase:
    return ScapyCase(case_id, mh, src=HA, dst=HOA, **kw)


SCAPY_MH_CASES: List[ScapyCase] = [
    # Binding Updates
    ScapyCase("bu-ahr-mnp", lambda: s_bu(100, [s_mnp()], lifetime=300)),
    ScapyCase("bu-every-flag", lambda: s_bu(0xFFFF, [s_mnp()], flags="AHLKMRP",
                                            reserved=0x1F0, lifetime=0xFFFF)),
    ScapyCase("bu-k-flag-only", lambda: s_bu(1, [], flags="K", lifetime=1)),
    ScapyCase("bu-two-mnps", lambda: s_bu(2, [s_mnp(), s_mnp(MNP2_PREFIX, MNP2_LEN)])),
    ScapyCase("bu-one-bid", lambda: s_bu(3, [s_mnp(), sm.MIP6OptBindingId(bid=1, bidpri=1)])),
    ScapyCase("bu-bids-ipv6-coa", lambda: s_bu(4, [
        s_mnp(),
        sm.MIP6OptBindingId(bid=1, bidpri=1, coa=COA1),
        sm.MIP6OptBindingId(bid=2, bidpri=2, coa=COA2),
    ])),
    ScapyCase("bu-bids-mixed-coa-h-flag", lambda: s_bu(5, [
        s_mnp(),
        sm.MIP6OptBindingId(bid=1, bidpri=0x7F, hflag=1, coa=COA1),
        sm.MIP6OptBindingId(bid=0xFFFF, bidpri=9, coa=COA4),
        sm.MIP6OptBindingId(bid=3, hflag=1),
    ])),
    ScapyCase("bu-bid-v4-coa-after-odd-lead", lambda: s_bu(6, [
        MIP6OptMNID(subtype=1, id=b"abc"),
        sm.MIP6OptBindingId(bid=7, bidpri=4, coa=COA4_2),
    ])),
    ScapyCase("bu-alt-coa-bra", lambda: s_bu(7, [MIP6OptAltCoA(acoa=COA2),
                                                MIP6OptBRAdvice(rinter=60)])),
    ScapyCase("bu-nai-mesg-id", lambda: s_bu(8, [
        s_mnp(), MIP6OptMNID(subtype=1, id=NAI), MIP6OptReplayProtection(timestamp=TIMESTAMP),
    ])),
    ScapyCase("bu-signed", lambda: s_bu(9, [
        s_mnp(), MIP6OptMNID(subtype=1, id=NAI), MIP6OptReplayProtection(timestamp=TIMESTAMP),
        s_auth(),
    ]), sign=(COA1, HOA)),
    ScapyCase("bu-signed-bid-only", lambda: s_bu(10, [sm.MIP6OptBindingId(bid=2), s_auth()]),
              sign=(COA2, HOA)),
    # scapy aligns the auth option at 4n+1: here 17 (8n+1), so PadN follows the
    # authenticator; we would put it at 21 (8n+5), see docs/protocol.md.
    ScapyCase("bu-signed-auth-at-8n+1", lambda: s_bu(10, [MIP6OptBRAdvice(rinter=1), s_auth()]),
              sign=(COA1, HOA), our_layout=False),
    ScapyCase("bu-ipv4-hoa", lambda: s_bu(11, [
        sm.MIP6OptIPv4HoA(plen=24, p=1, hoa=HOA4), sm.MIP6OptIPv4HoA(hoa="0.0.0.0"),
    ])),
    ScapyCase("bu-ipv4-coa", lambda: s_bu(12, [s_mnp(), sm.MIP6OptIPv4CoA(coa=COA4)])),
    ScapyCase("bu-gre-key", lambda: s_bu(13, [s_mnp(), sm.MIP6OptGREKey(grekey=GRE_KEY)])),
    ScapyCase("bu-gre-no-key", lambda: s_bu(14, [sm.MIP6OptGREKey(olen=2)])),
    ScapyCase("bu-gre-both-max", lambda: s_bu(15, [sm.MIP6OptGREKey(grekey=0xFFFFFFFF),
                                                  sm.MIP6OptGREKey(olen=2)])),
    ScapyCase("bu-unknown-option", lambda: s_bu(16, [MIP6OptUnknown(otype=200, odata=b"xyz"),
                                                    s_mnp()])),
    ScapyCase("bu-dereg-one-bid", lambda: s_bu(17, [sm.MIP6OptBindingId(bid=2)], lifetime=0)),
    ScapyCase("bu-dereg-all", lambda: s_bu(18, [], lifetime=0)),
    # Binding Acknowledgements
    _ba("ba-accepted-bra-bid", lambda: s_ba(0, [MIP6OptBRAdvice(rinter=60),
                                               sm.MIP6OptBindingId(bid=1, bidpri=1)])),
    _ba("ba-every-flag", lambda: s_ba(1, [], flags="PRK", res2=0x1E, seq=0xFFFF,
                                      lifetime=0xFFFF)),
    _ba("ba-mcoa-notcomplete", lambda: s_ba(4, [
        sm.MIP6OptBindingId(bid=1, status=0, bidpri=1),
        sm.MIP6OptBindingId(bid=2, status=130, bidpri=2),
        sm.MIP6OptBindingId(bid=3, status=167, hflag=1, coa=COA4),
    ])),
    *[_ba("ba-rejected-%d" % status, lambda status=status: s_ba(status, [], flags=0, lifetime=0))
      for status in (128, 135, 142, 146, 164, 174)],
    _ba("ba-ipv4-ack-nat", lambda: s_ba(0, [
        sm.MIP6OptIPv4AddrAck(status=0, plen=24, hoa=HOA4),
        sm.MIP6OptNATDetection(f=1, refresh=110),
    ])),
    _ba("ba-ipv4-ack-refused-no-nat", lambda: s_ba(0, [
        sm.MIP6OptIPv4AddrAck(status=132, plen=0, hoa="0.0.0.0"),
        sm.MIP6OptNATDetection(f=0, refresh=0xFFFFFFFF),
    ])),
    _ba("ba-gre-key", lambda: s_ba(0, [sm.MIP6OptGREKey(grekey=GRE_KEY)])),
    _ba("ba-signed", lambda: s_ba(0, [sm.MIP6OptBindingId(bid=1, bidpri=1),
                                      MIP6OptReplayProtection(timestamp=TIMESTAMP), s_auth()]),
        sign=(COA1, HOA)),
    # Binding Error, Binding Refresh Request, Home Agent Switch
    ScapyCase("be-unknown-binding", lambda: MIP6MH_BE(status=1, ha=HOA), src=HA, dst=COA1),
    ScapyCase("be-unknown-mh-type", lambda: MIP6MH_BE(status=2, ha=HOA), src=HA, dst=COA1),
    ScapyCase("brr", lambda: MIP6MH_BRR(), src=HA, dst=HOA),
    ScapyCase("has-one", lambda: sm.MIP6MH_HAS(addresses=[ALT_HA]), src=HA, dst=COA1),
    ScapyCase("has-two-with-option", lambda: sm.MIP6MH_HAS(
        addresses=[ALT_HA, ALT_HA2], options=[sm.MIP6OptBindingId(bid=7, bidpri=3)]),
        src=HA, dst=COA1),
]


def _ids(cases: Sequence[Any]) -> List[str]:
    return [case.id for case in cases]


@pytest.mark.parametrize("case", SCAPY_MH_CASES, ids=_ids(SCAPY_MH_CASES))
def test_scapy_mh_decodes_to_the_same_fields(case: ScapyCase) -> None:
    pkt = case.packet()
    scapy_mh = mh_layer(pkt)
    data = sm.mh_bytes(pkt)
    msg = mip6.decode(data)
    assert mip6_view(msg) == scapy_view(scapy_mh)
    # Re-encoding gives scapy's bytes back (same alignment and padding choices).
    assert (msg.encode(case.src, case.dst) == data) is case.our_layout
    assert msg.checksum == wire_checksum(data)
    assert mip6.verify_mh_checksum(data, case.src, case.dst)
    assert not mip6.verify_mh_checksum(data, COA2, case.dst)


@pytest.mark.parametrize("case", [c for c in SCAPY_MH_CASES if c.sign],
                         ids=_ids([c for c in SCAPY_MH_CASES if c.sign]))
def test_scapy_signed_mh_verifies(case: ScapyCase) -> None:
    assert case.sign is not None
    coa, hoa = case.sign
    data = sm.mh_bytes(case.packet())
    assert mip6.verify_authenticator(data, mip6.MnHaKey(KEY, care_of=coa, home=hoa))
    # Anything else fails: key, CoA, HoA, or one bit of the message.
    assert not mip6.verify_authenticator(data, mip6.MnHaKey(KEY + b"x", coa, hoa))
    assert not mip6.verify_authenticator(data, mip6.MnHaKey(KEY, COA4, hoa))
    assert not mip6.verify_authenticator(data, mip6.MnHaKey(KEY, coa, HA))
    flipped = bytearray(data)
    flipped[7] ^= 0x01  # sequence / status octet
    assert not mip6.verify_authenticator(bytes(flipped), mip6.MnHaKey(KEY, coa, hoa))
    # Our signer writes the same authenticator (where it lays the message out alike).
    if case.our_layout:
        msg = mip6.decode(data)
        assert msg.encode(case.src, case.dst, auth=mip6.MnHaKey(KEY, coa, hoa)) == data


@pytest.mark.parametrize("letter", "AHLKMRP")
def test_bu_flag_letters_name_the_same_bits(letter: str) -> None:
    data = sm.mh_bytes(IPv6(src=HOA, dst=HA) / s_bu(1, [], flags=letter))
    assert mip6.decode(data).flags == BuFlag[letter]


@pytest.mark.parametrize("letter", "KRP")
def test_ba_flag_letters_name_the_same_bits(letter: str) -> None:
    data = sm.mh_bytes(IPv6(src=HA, dst=HOA) / s_ba(0, [], flags=letter))
    assert mip6.decode(data).flags == BaFlag[letter]


def test_scapy_mh_checksum_field_is_not_verified_by_decode() -> None:
    """A wrong checksum still decodes (it is not a format error) but does not verify."""
    pkt = IPv6(src=HOA, dst=HA) / s_bu(1, [s_mnp()])
    pkt[MIP6MH_BU].cksum = 0x1234
    data = sm.mh_bytes(pkt)
    assert mip6.decode(data).checksum == 0x1234
    assert not mip6.verify_mh_checksum(data, HOA, HA)


# --------------------------------------------------------------------------
# scapy -> mip6: whole packets
# --------------------------------------------------------------------------


def s_bu_hao(options: Sequence[Packet], coa: str = COA1, seq: int = 20) -> Packet:
    return (IPv6(src=coa, dst=HA) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
            / s_bu(seq, options))


def s_ba_rh2(options: Sequence[Packet], coa: str = COA1, status: int = 0) -> Packet:
    return (IPv6(src=HA, dst=coa) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA])
            / s_ba(status, options, seq=20))


def s_dsmip_bu(options: Sequence[Packet], udp_checksum: Optional[int] = None) -> Packet:
    return sm.dsmip6_packet(COA4, HA4, IPv6(src=HOA, dst=HA) / s_bu(30, options),
                            udp_checksum=udp_checksum)


def s_dsmip_ba(options: Sequence[Packet]) -> Packet:
    return sm.dsmip6_packet(HA4, COA4, IPv6(src=HA, dst=HOA) / s_ba(0, options, seq=30))


@dataclass(frozen=True)
class ScapyPacketCase:
    """A whole packet built by scapy; ``key`` is the (CoA, HoA) it is signed for."""

    id: str
    build: Callable[[], Packet]
    key: Optional[Tuple[str, str]] = None

    def packet(self) -> Packet:
        pkt = self.build()
        if self.key is None:
            return sm.with_correct_mh_checksum(pkt)
        return sm.sign_mn_ha(pkt, KEY, coa=self.key[0], hoa=self.key[1])


SCAPY_PACKET_CASES: List[ScapyPacketCase] = [
    ScapyPacketCase("bu-hao-mnp-bid", lambda: s_bu_hao(
        [s_mnp(), sm.MIP6OptBindingId(bid=1, bidpri=1)])),
    ScapyPacketCase("bu-hao-from-coa2-bulk", lambda: s_bu_hao(
        [s_mnp(), sm.MIP6OptBindingId(bid=1, bidpri=1, coa=COA1),
         sm.MIP6OptBindingId(bid=2, bidpri=2, coa=COA2)], coa=COA2)),
    ScapyPacketCase("bu-hao-signed", lambda: s_bu_hao(
        [s_mnp(), MIP6OptMNID(subtype=1, id=NAI), MIP6OptReplayProtection(timestamp=TIMESTAMP),
         s_auth()]), key=(COA1, HOA)),
    ScapyPacketCase("ba-rh2-bid", lambda: s_ba_rh2([sm.MIP6OptBindingId(bid=1, bidpri=1)])),
    ScapyPacketCase("ba-rh2-rejected", lambda: s_ba_rh2([], coa=COA2, status=135)),
    ScapyPacketCase("ba-rh2-signed", lambda: s_ba_rh2(
        [MIP6OptBRAdvice(rinter=60), MIP6OptReplayProtection(timestamp=TIMESTAMP), s_auth()]),
        key=(COA1, HOA)),
    ScapyPacketCase("dsmip-bu", lambda: s_dsmip_bu(
        [s_mnp(), sm.MIP6OptIPv4HoA(plen=24, hoa=HOA4), sm.MIP6OptIPv4CoA(coa=COA4)])),
    ScapyPacketCase("dsmip-bu-no-udp-checksum", lambda: s_dsmip_bu(
        [s_mnp(), sm.MIP6OptIPv4CoA(coa=COA4)], udp_checksum=0)),
    ScapyPacketCase("dsmip-bu-signed", lambda: s_dsmip_bu(
        [s_mnp(), sm.MIP6OptIPv4CoA(coa=COA4), MIP6OptMNID(subtype=1, id=NAI),
         MIP6OptReplayProtection(timestamp=TIMESTAMP), s_auth()]), key=(COA4_MAPPED, HOA)),
    ScapyPacketCase("dsmip-ba", lambda: s_dsmip_ba(
        [sm.MIP6OptIPv4AddrAck(status=0, plen=24, hoa=HOA4),
         sm.MIP6OptNATDetection(f=1, refresh=110)])),
]


@pytest.mark.parametrize("case", SCAPY_PACKET_CASES, ids=_ids(SCAPY_PACKET_CASES))
def test_scapy_packet_decodes_to_the_same_fields(case: ScapyPacketCase) -> None:
    pkt = case.packet()
    data = raw(pkt)
    ours = decode_packet(data)
    assert mip6_envelope(ours) == scapy_envelope(pkt)
    assert mip6_view(ours.message) == scapy_view(mh_layer(pkt))
    assert ours.mh_bytes == sm.mh_bytes(pkt)
    assert ours.checksum_ok()
    # And our encoder rebuilds the very same packet.
    if ours.udp is not None:
        assert ours.udp.udp_checksum == (pkt[UDP].chksum != 0)
    assert ours.encode_with_mh(ours.message.encode(ours.pseudo_source,
                                                   ours.pseudo_destination)) == data


@pytest.mark.parametrize("case", [c for c in SCAPY_PACKET_CASES if c.key],
                         ids=_ids([c for c in SCAPY_PACKET_CASES if c.key]))
def test_scapy_signed_packet_verifies(case: ScapyPacketCase) -> None:
    assert case.key is not None
    coa, hoa = case.key
    ours = decode_packet(raw(case.packet()))
    assert ours.checksum_ok()
    assert ours.authenticator_ok(mip6.MnHaKey(KEY, care_of=coa, home=hoa))
    assert not ours.authenticator_ok(mip6.MnHaKey(KEY[:-1], care_of=coa, home=hoa))


def test_dsmip_ipv4_coa_signs_as_ipv4_mapped() -> None:
    """scapy signs a DSMIPv6 BU over ::ffff:CoA4; we accept the plain IPv4 CoA for it."""
    ours = decode_packet(raw(by_id(SCAPY_PACKET_CASES, "dsmip-bu-signed").packet()))
    assert ours.udp is not None
    assert ours.authenticator_ok(mip6.MnHaKey(KEY, care_of=ours.udp.src, home=HOA))
    assert ours.authenticator_ok(mip6.MnHaKey(KEY, care_of=COA4, home=HOA))


def test_scapy_hao_packet_checksum_uses_home_address() -> None:
    """The checksum of a BU with HAO covers HoA -> HA: scapy's and ours agree."""
    pkt = by_id(SCAPY_PACKET_CASES, "bu-hao-mnp-bid").packet()
    ours = decode_packet(raw(pkt))
    assert ours.pseudo_source == ipaddress.IPv6Address(HOA)
    assert mip6.verify_mh_checksum(ours.mh_bytes, HOA, HA)
    assert not mip6.verify_mh_checksum(ours.mh_bytes, COA1, HA)


# --------------------------------------------------------------------------
# mip6 -> scapy: Mobility Headers
# --------------------------------------------------------------------------


def mnp(prefix: str = MNP_PREFIX, plen: int = MNP_LEN) -> mip6.MobileNetworkPrefix:
    return mip6.MobileNetworkPrefix(ipaddress.IPv6Address(prefix), plen)


def bid(number: int, **kw: Any) -> mip6.BindingIdentifier:
    coa = kw.pop("coa", None)
    return mip6.BindingIdentifier(number, care_of_address=ip(coa), **kw)


def auth_option() -> mip6.Authentication:
    return mip6.Authentication(SPI)


def bu(seq: int, options: Sequence[mip6.MobilityOption], flags: int = AHR,
       lifetime: int = 75) -> mip6.BindingUpdate:
    return mip6.BindingUpdate(seq, flags, lifetime, list(options))


def ba(status: int, options: Sequence[mip6.MobilityOption], seq: int = 7,
       flags: int = BaFlag.R, lifetime: int = 75) -> mip6.BindingAcknowledgement:
    return mip6.BindingAcknowledgement(status, flags, seq, lifetime, list(options))


@dataclass(frozen=True)
class OurCase:
    """One of our messages, encoded for ``src`` -> ``dst``; ``key`` = (CoA, HoA) signs it."""

    id: str
    message: mip6.MobilityMessage
    scapy_class: type
    src: str = HOA
    dst: str = HA
    key: Optional[Tuple[str, str]] = None

    @property
    def auth(self) -> Optional[mip6.MnHaKey]:
        return None if self.key is None else mip6.MnHaKey(KEY, self.key[0], self.key[1])


def _our_ba(case_id: str, message: mip6.MobilityMessage, **kw: Any) -> OurCase:
    return OurCase(case_id, message, MIP6MH_BA, src=HA, dst=HOA, **kw)


OUR_MH_CASES: List[OurCase] = [
    OurCase("bu-mnp-bid", bu(100, [mnp(), bid(1, priority=1)]), MIP6MH_BU),
    OurCase("bu-every-flag", bu(0xFFFF, [mnp()], flags=0xFFF0, lifetime=0xFFFF), MIP6MH_BU),
    OurCase("bu-reserved-bits", bu(1, [], flags=0x000F, lifetime=1), MIP6MH_BU),
    OurCase("bu-bulk-v6-v4-coa", bu(101, [
        mnp(), mnp(MNP2_PREFIX, MNP2_LEN),
        bid(1, priority=1, coa=COA1), bid(2, priority=2, simultaneous_home=True, coa=COA2),
        bid(3, priority=0x7F, coa=COA4),
    ]), MIP6MH_BU),
    OurCase("bu-option-mix", bu(102, [
        mip6.AlternateCareOfAddress(ip(COA2)), mip6.BindingRefreshAdvice(0xFFFF),
        mip6.MobileNodeIdentifier(NAI), mip6.ReplayProtection(TIMESTAMP),
        mip6.IPv4HomeAddress(ip(HOA4), 24, True), mip6.IPv4CareOfAddress(ip(COA4)),
        mip6.GreKey(GRE_KEY), mip6.GreKey(None), mip6.NonceIndices(1, 2),
        mip6.UnknownOption(200, b"xyz"),
    ]), MIP6MH_BU),
    OurCase("bu-dereg-one-bid", bu(103, [bid(2)], lifetime=0), MIP6MH_BU),
    OurCase("bu-dereg-all", bu(104, [], lifetime=0), MIP6MH_BU),
    OurCase("bu-signed", bu(105, [
        mnp(), mip6.MobileNodeIdentifier(NAI), mip6.ReplayProtection(TIMESTAMP), auth_option(),
    ]), MIP6MH_BU, key=(COA1, HOA)),
    OurCase("bu-signed-ipv4-coa", bu(106, [mip6.IPv4CareOfAddress(ip(COA4)), auth_option()]),
            MIP6MH_BU, key=(COA4, HOA)),
    _our_ba("ba-accepted-bra-bid", ba(0, [mip6.BindingRefreshAdvice(60), bid(1, priority=1)])),
    _our_ba("ba-every-flag", ba(1, [], flags=0xFE, seq=0xFFFF, lifetime=0xFFFF)),
    _our_ba("ba-mcoa-notcomplete", ba(4, [
        bid(1, priority=1), bid(2, status=130, priority=2),
        bid(3, status=167, simultaneous_home=True, coa=COA1),
    ])),
    *[_our_ba("ba-rejected-%d" % status, ba(status, [], flags=0, lifetime=0))
      for status in (135, 142, 146, 164)],
    _our_ba("ba-ipv4-ack-nat", ba(0, [mip6.IPv4AddressAcknowledgement(0, ip(HOA4), 24),
                                      mip6.NatDetection(True, 110)])),
    _our_ba("ba-gre-key", ba(0, [mip6.GreKey(GRE_KEY)])),
    _our_ba("ba-signed", ba(0, [bid(1, priority=1), mip6.ReplayProtection(TIMESTAMP),
                                auth_option()]), key=(COA1, HOA)),
    OurCase("be-status-1", mip6.BindingError(1, ip(HOA)), MIP6MH_BE, src=HA, dst=COA1),
    OurCase("be-status-2", mip6.BindingError(2, ip(HOA)), MIP6MH_BE, src=HA, dst=COA1),
    OurCase("brr", mip6.BindingRefreshRequest(), MIP6MH_BRR, src=HA, dst=HOA),
    OurCase("has-two-with-option", mip6.HomeAgentSwitch(
        [ip(ALT_HA), ip(ALT_HA2)], [bid(7, priority=3)]), sm.MIP6MH_HAS, src=HA, dst=COA1),
]


def expected_view(msg: mip6.MobilityMessage, mh: bytes,
                  key: Optional[Tuple[str, str]]) -> View:
    """What scapy must show for ``msg``; a signed message carries the authenticator
    scapy's side computes independently (our object holds a placeholder)."""
    view = mip6_view(msg)
    if key is not None:
        coa = key[0] if ":" in key[0] else "::ffff:" + key[0]
        kind, subtype, spi, _placeholder = view["options"][-1]
        assert kind == "AUTH"
        view["options"][-1] = (kind, subtype, spi,
                               sm.mn_ha_authenticator(KEY, coa, key[1], mh))
    return view


@pytest.mark.parametrize("case", OUR_MH_CASES, ids=_ids(OUR_MH_CASES))
def test_our_mh_dissects_in_scapy(case: OurCase) -> None:
    data = case.message.encode(case.src, case.dst, auth=case.auth)
    pkt = on_ipv6(data, case.src, case.dst)
    layer = mh_layer(pkt)
    assert type(layer) is case.scapy_class
    assert scapy_view(layer) == expected_view(case.message, data, case.key)
    assert layer.cksum == wire_checksum(data) == sm.mh_checksum(pkt)
    assert not isinstance(layer.payload, Raw)  # scapy consumed the whole header
    assert sm.mh_bytes(pkt) == data
    assert raw(pkt)[40:] == data  # scapy re-serialises our bytes unchanged


@pytest.mark.parametrize("case", [c for c in OUR_MH_CASES if c.key],
                         ids=_ids([c for c in OUR_MH_CASES if c.key]))
def test_our_authenticator_matches_scapy(case: OurCase) -> None:
    assert case.key is not None
    coa, hoa = case.key
    data = case.message.encode(case.src, case.dst, auth=case.auth)
    scapy_coa = coa if ":" in coa else "::ffff:" + coa
    assert sm.mn_ha_authenticator(KEY, scapy_coa, hoa, data) == data[-12:]
    # scapy's signer over the same message produces our bytes exactly.
    unsigned = case.message.encode()
    resigned = sm.sign_mn_ha(on_ipv6(unsigned, case.src, case.dst), KEY, coa=scapy_coa, hoa=hoa)
    assert sm.mh_bytes(resigned) == data


# --------------------------------------------------------------------------
# mip6 -> scapy: whole packets
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class OurPacketCase:
    id: str
    packet: SignallingPacket
    key: Optional[Tuple[str, str]] = None  # (CoA as scapy signs it, HoA)

    @property
    def auth(self) -> Optional[mip6.MnHaKey]:
        if self.key is None:
            return None
        coa = self.key[0][len("::ffff:"):] if self.key[0].startswith("::ffff:") else self.key[0]
        return mip6.MnHaKey(KEY, coa, self.key[1])


OUR_PACKET_CASES: List[OurPacketCase] = [
    OurPacketCase("bu-hao-coa1", bu_packet(bu(200, [mnp(), bid(1, priority=1)]),
                                           care_of=COA1, home=HOA, home_agent=HA)),
    OurPacketCase("bu-hao-coa2-signed", bu_packet(
        bu(201, [mnp(), bid(2, priority=2), mip6.MobileNodeIdentifier(NAI),
                 mip6.ReplayProtection(TIMESTAMP), auth_option()]),
        care_of=COA2, home=HOA, home_agent=HA), key=(COA2, HOA)),
    OurPacketCase("ba-rh2-bra-bid", ba_packet(
        ba(0, [mip6.BindingRefreshAdvice(60), bid(1, priority=1)], seq=200),
        home_agent=HA, care_of=COA1, home=HOA)),
    OurPacketCase("ba-rh2-signed", ba_packet(
        ba(0, [bid(2, priority=2), mip6.ReplayProtection(TIMESTAMP), auth_option()], seq=201),
        home_agent=HA, care_of=COA2, home=HOA), key=(COA2, HOA)),
    OurPacketCase("dsmip-bu", dsmip_packet(
        bu(300, [mnp(), mip6.IPv4HomeAddress(ip(HOA4), 24), mip6.IPv4CareOfAddress(ip(COA4)),
                 mip6.GreKey(GRE_KEY)]), HOA, HA, COA4, HA4)),
    OurPacketCase("dsmip-bu-signed", dsmip_packet(
        bu(301, [mnp(), mip6.IPv4CareOfAddress(ip(COA4)), mip6.MobileNodeIdentifier(NAI),
                 mip6.ReplayProtection(TIMESTAMP), auth_option()]), HOA, HA, COA4, HA4),
        key=(COA4_MAPPED, HOA)),
    OurPacketCase("dsmip-ba", dsmip_packet(
        ba(0, [mip6.IPv4AddressAcknowledgement(0, ip(HOA4), 24), mip6.NatDetection(True, 110),
               mip6.GreKey(GRE_KEY)], seq=300), HA, HOA, HA4, COA4)),
]


@pytest.mark.parametrize("case", OUR_PACKET_CASES, ids=_ids(OUR_PACKET_CASES))
def test_our_packet_dissects_in_scapy(case: OurPacketCase) -> None:
    data = case.packet.encode(auth=case.auth)
    pkt = IP(data) if case.packet.udp is not None else IPv6(data)
    assert scapy_envelope(pkt) == mip6_envelope(case.packet)
    mh = sm.mh_bytes(pkt)
    assert scapy_view(mh_layer(pkt)) == expected_view(case.packet.message, mh, case.key)
    assert mh_layer(pkt).cksum == sm.mh_checksum(pkt)
    assert raw(pkt) == data
    if case.packet.udp is not None:
        # scapy's own IPv4 / UDP checksums agree with the ones we wrote.
        rebuilt = pkt.copy()
        del rebuilt[IP].chksum
        del rebuilt[UDP].chksum
        assert raw(rebuilt) == data
    if case.key is not None:
        assert sm.mn_ha_authenticator(KEY, case.key[0], case.key[1], mh) == mh[-12:]


# --------------------------------------------------------------------------
# Property: random BUs/BAs of ours re-serialise byte for byte in scapy
# --------------------------------------------------------------------------


def scapy_compatible(option: mip6.MobilityOption) -> mip6.MobilityOption:
    """``option``, or a close variant that scapy reads into a class of the same layout.

    scapy knows some types we keep raw (7 and 11-16: link-layer address and the
    RFC 4866 CGA options), with fixed layouts random data does not fit: those move
    to type + 100, unknown to both. scapy's Binding Authorization Data is a fixed
    96 bits (ours any length): cut or zero-fill to 12 octets. (Mapping rather than
    filtering keeps hypothesis from rejecting draws.)
    """
    if isinstance(option, mip6.UnknownOption) and option.option_type in inet6.moboptcls:
        return mip6.UnknownOption(option.option_type + 100, option.data)
    if isinstance(option, mip6.BindingAuthorizationData):
        return mip6.BindingAuthorizationData((bytes(option.authenticator) + bytes(12))[:12])
    return option


@st.composite
def scapy_option_lists(draw: st.DrawFn) -> List[mip6.MobilityOption]:
    found = draw(st.lists(strategies.options.map(scapy_compatible), max_size=8))
    if draw(st.booleans()):
        found.append(draw(strategies.authentication))
    return found


# ``tests.strategies.messages`` restricted to BU/BA, built from the same pieces
# (filtering the whole message strategy would reject most draws).
bu_or_ba = st.one_of(
    st.builds(mip6.BindingUpdate, strategies.u16, strategies.u16, strategies.u16,
              scapy_option_lists()),
    st.builds(mip6.BindingAcknowledgement, strategies.u8, strategies.u8, strategies.u16,
              strategies.u16, scapy_option_lists()),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msg=bu_or_ba)
def test_property_scapy_reserialises_our_bytes(msg: mip6.MobilityMessage) -> None:
    data = msg.encode(HOA, HA)
    scapy_class = MIP6MH_BU if isinstance(msg, mip6.BindingUpdate) else MIP6MH_BA
    dissected = scapy_class(data)
    assert not isinstance(dissected.payload, Raw)
    assert raw(dissected) == data  # autopad on: scapy finds our alignment acceptable
    assert scapy_view(dissected) == mip6_view(msg)
    assert sm.mh_checksum_raw(data, HOA, HA) == dissected.cksum == wire_checksum(data)
