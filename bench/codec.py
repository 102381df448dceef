"""Codec benchmark: decode + encode of a realistic Binding Update, mip6 against scapy.

The message: a signed bulk-capable home registration as our MR agent sends it, with a
Mobile Network Prefix, four Binding Identifier options (one per CoA) and the RFC 4285
authentication option (80 octets). One operation is "bytes in -> message object ->
bytes out": for mip6 ``decode`` then ``encode`` with the checksum computed; for scapy,
dissecting the same bytes and building the same message from fresh field values
(scapy returns cached bytes for a packet it dissected, so re-serialising the dissected
packet would measure nothing). Target: mip6 at least 20x scapy.
"""

from __future__ import annotations

from ipaddress import IPv6Address
from typing import Callable, Dict

import mip6
from bench.timing import compare_rates

HOME_AGENT = IPv6Address("2001:db8:ffff::1")
HOME = IPv6Address("2001:db8:ffff::100")
CARE_OF = IPv6Address("2001:db8:a::100")
TARGET_RATIO = 20.0


def realistic_bu() -> mip6.BindingUpdate:
    return mip6.BindingUpdate(
        sequence=4711, flags=mip6.BuFlag.A | mip6.BuFlag.H | mip6.BuFlag.R, lifetime=300,
        options=[mip6.MobileNetworkPrefix.from_network("2001:db8:1000::/48")]
        + [mip6.BindingIdentifier(bid, priority=bid) for bid in range(1, 5)]
        + [mip6.Authentication(spi=0x100)])


def mip6_operation(data: bytes) -> Callable[[], bytes]:
    def run() -> bytes:
        return mip6.decode(data).encode(HOME, HOME_AGENT)
    return run


def scapy_operation(data: bytes) -> Callable[[], bytes]:
    from scapy.layers.inet6 import MIP6MH_BU, MIP6OptMobNetPrefix, MIP6OptMsgAuth
    from tests.interop.scapy_mip6 import MIP6OptBindingId

    def run() -> bytes:
        dissected = MIP6MH_BU(data)
        options = dissected.options
        rebuilt = MIP6MH_BU(
            seq=dissected.seq, flags=dissected.flags, mhtime=dissected.mhtime,
            options=[MIP6OptMobNetPrefix(plen=48, prefix=str(options[0].prefix))]
            + [MIP6OptBindingId(bid=o.bid, bidpri=o.bidpri) for o in options[1:5]]
            + [MIP6OptMsgAuth(mspi=0x100, authdata=bytes(12))])
        return bytes(rebuilt)
    return run


def run(quick: bool = False) -> Dict[str, object]:
    """Measure both and return the section's results."""
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # "no IPv6 underlayer"
    import scapy

    key = mip6.MnHaKey(bytes(range(20)), CARE_OF, HOME)
    data = realistic_bu().encode(HOME, HOME_AGENT, auth=key)
    assert mip6.verify_authenticator(data, key)
    ours, theirs = mip6_operation(data), scapy_operation(data)
    assert mip6.decode(ours()) == mip6.decode(data)
    assert len(theirs()) == len(data)
    rates = compare_rates({"mip6": ours, "scapy": theirs},
                          repeats=3 if quick else 7, sample_seconds=0.1 if quick else 0.3)
    ratio = rates["mip6"].median / rates["scapy"].median
    return {
        "section": "codec",
        "title": "Codec: decode + encode of a realistic BU",
        "message_octets": len(data),
        "scapy_version": scapy.VERSION,
        "rates": {name: rate.as_dict() for name, rate in rates.items()},
        "ratio": ratio,
        "target": f">= {TARGET_RATIO:g}x scapy",
        "met": ratio >= TARGET_RATIO,
        "ratio_min": rates["mip6"].minimum / rates["scapy"].maximum,
        "ratio_max": rates["mip6"].maximum / rates["scapy"].minimum,
    }


def markdown(result: Dict[str, object]) -> str:
    """The section of docs/benchmarks.md for these results."""
    rates = result["rates"]
    ours, theirs = rates["mip6"], rates["scapy"]
    verdict = "met" if result["met"] else "**missed**"
    return "\n".join([
        f"## {result['title']}",
        "",
        f"One operation: {result['message_octets']}-octet signed BU (MNP, four BID "
        "options, RFC 4285 authentication) from bytes to a message object and back to "
        "bytes (mip6: `decode` + `encode` with checksum; scapy "
        f"{result['scapy_version']}: dissect + build the same message from field values). "
        "Samples alternate between the two.",
        "",
        "| implementation | min ops/s | median ops/s | max ops/s |",
        "|---|---:|---:|---:|",
        f"| mip6 | {ours['min']:,.0f} | {ours['median']:,.0f} | {ours['max']:,.0f} |",
        f"| scapy (baseline) | {theirs['min']:,.0f} | {theirs['median']:,.0f} | "
        f"{theirs['max']:,.0f} |",
        "",
        f"**Ratio (median/median): {result['ratio']:.1f}x** (range "
        f"{result['ratio_min']:.1f}x-{result['ratio_max']:.1f}x); target "
        f"{result['target']}: {verdict}.",
        "",
    ])
