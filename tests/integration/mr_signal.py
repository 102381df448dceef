"""A test mobile router's signalling, run inside the MR namespace as a subprocess.

    python -m tests.integration.mr_signal '{"seq": 5, "lifetime": 30, ...}'

Sends one signed Binding Update built with the ``mip6`` codec and prints the decoded
Binding Acknowledgement as JSON. IPv6 CoAs: the whole packet (IPv6 + Home Address
option + MH) goes out through a raw socket from the CoA; the BA, which carries a Type 2
Routing Header this kernel drops, is captured with an AF_PACKET socket on the bridge
port. IPv4 CoA: DSMIPv6 over a UDP socket bound to the CoA and port 4191.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import time
from typing import Any, Dict, List

import mip6
from mip6.packet import bu_packet, decode_frame, decode_packet, dsmip_packet

ETH_P_IPV6 = 0x86DD


def build_bu(request: Dict[str, Any]) -> mip6.BindingUpdate:
    options: List[mip6.MobilityOption] = []
    for bid in request.get("bids", []):
        coa = bid.get("coa")
        options.append(mip6.BindingIdentifier(
            bid["bid"], priority=bid.get("priority", bid["bid"]),
            care_of_address=ipaddress.ip_address(coa) if coa else None))
    if request.get("ipv4_coa"):
        options.append(mip6.IPv4CareOfAddress(ipaddress.IPv4Address(request["ipv4_coa"])))
    if request.get("gre_key"):
        options.append(mip6.GreKey(request["gre_key"]))
    options.append(mip6.ReplayProtection(mip6.ntp_from_unix(time.time()
                                                            + request.get("skew", 0))))
    options.append(mip6.Authentication(request["spi"]))
    flags = mip6.BuFlag.A | mip6.BuFlag.H | mip6.BuFlag.R
    return mip6.BindingUpdate(request["seq"], int(flags), request["lifetime"], options)


def result(packet: mip6.packet.SignallingPacket, key: bytes, started: float) -> Dict[str, Any]:
    ba = packet.message
    return {
        "elapsed_ms": round((time.monotonic() - started) * 1000, 2),
        "type": type(ba).__name__, "status": getattr(ba, "status", None),
        "sequence": getattr(ba, "sequence", None), "lifetime": getattr(ba, "lifetime", None),
        "bids": [[b.bid, b.status] for b in ba.find_all(mip6.BindingIdentifier)],
        "refresh": ba.find(mip6.BindingRefreshAdvice).interval
        if ba.find(mip6.BindingRefreshAdvice) else None,
        "checksum_ok": packet.checksum_ok(),
        "authenticated": packet.authenticator_ok(packet.auth_key(key)),
        "home": str(packet.mobile_home_address),
    }


def signal_ipv6(request: Dict[str, Any], bu: mip6.BindingUpdate, key: bytes) -> Dict[str, Any]:
    coa, home, ha = request["coa"], request["home"], request["ha"]
    raw = bu_packet(bu, coa, home, ha).encode(auth=mip6.MnHaKey(key, coa, home))
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
    sniff.bind((request["capture_dev"], 0))
    sniff.settimeout(0.2)
    out = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    started = time.monotonic()
    out.sendto(raw, (ha, 0))
    deadline = started + request.get("timeout", 3.0)
    while time.monotonic() < deadline:
        try:
            frame = sniff.recv(65535)
        except socket.timeout:
            continue
        if len(frame) < 62 or frame[20] != 43:  # next header: routing
            continue
        try:
            packet = decode_frame(frame)
        except mip6.DecodeError:
            continue
        if packet.dst == ipaddress.IPv6Address(coa) and \
                isinstance(packet.message, mip6.BindingAcknowledgement):
            return result(packet, key, started)
    return {"type": None, "error": "no Binding Acknowledgement"}


def signal_ipv4(request: Dict[str, Any], bu: mip6.BindingUpdate, key: bytes) -> Dict[str, Any]:
    coa4, home, ha, ha4 = request["coa4"], request["home"], request["ha"], request["ha4"]
    packet = dsmip_packet(bu, home, ha, coa4, ha4)
    inner = packet.encode(auth=packet.auth_key(key))[28:]  # the kernel adds IPv4/UDP
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((coa4, mip6.DSMIP_UDP_PORT))
    sock.settimeout(request.get("timeout", 3.0))
    started = time.monotonic()
    sock.sendto(inner, (ha4, mip6.DSMIP_UDP_PORT))
    try:
        data, peer = sock.recvfrom(65535)
    except socket.timeout:
        return {"type": None, "error": "no Binding Acknowledgement"}
    reply = decode_packet(data)  # the inner IPv6 packet: HA -> HoA
    reply.udp = mip6.packet.UdpIPv4(ipaddress.IPv4Address(peer[0]),
                                    ipaddress.IPv4Address(coa4), peer[1], mip6.DSMIP_UDP_PORT)
    return result(reply, key, started)


def main() -> int:
    request = json.loads(sys.argv[1])
    key = bytes.fromhex(request["key"])
    bu = build_bu(request)
    answer = signal_ipv4(request, bu, key) if request.get("coa4") else \
        signal_ipv6(request, bu, key)
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
