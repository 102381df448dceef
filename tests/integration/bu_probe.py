"""Send one signed (bulk) Binding Update over AF_PACKET and wait for its Binding Acknowledgement.

Runs as a small program inside a lab namespace (the test starts it with
``ip netns exec``), because an AF_PACKET socket belongs to the namespace it is
created in::

    python tests/integration/bu_probe.py --iface up0 --ha-mac 02:..:01 \\
        --ha 2001:db8:ffff::1 --home 2001:db8:ffff::100 --key 0001...13 --spi 256 \\
        --seq 1 --coa 2001:db8:a::100 --coa 2001:db8:b::100 --coa 192.0.2.10

The BU goes from the first care-of address with a Home Address option, flags
A|H|R (plus B when more than one care-of address is registered), one Binding
Identifier per care-of address (BID i, priority i), a Replay Protection option
with the current time and an RFC 4285 authenticator. The BA is picked off the
wire by shape (IPv6, next header 43 = routing header, from the HA's MAC) — the
kernel here cannot receive a BA with a Type 2 Routing Header (lab notes) —
decoded with :mod:`mip6`, and printed as one JSON object on stdout. Exit status
0 when a BA arrived, 1 on timeout.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import mip6  # noqa: E402
from mip6.packet import bu_packet, decode_frame  # noqa: E402

ETH_P_IPV6 = 0x86DD


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def build_bu(args: argparse.Namespace) -> bytes:
    coas = [ipaddress.ip_address(c) for c in args.coa]
    flags = mip6.BuFlag.A | mip6.BuFlag.H | mip6.BuFlag.R
    if len(coas) > 1:
        flags |= mip6.BuFlag.B
    options: List[mip6.MobilityOption] = [
        mip6.BindingIdentifier(i, priority=i, care_of_address=coa) for i, coa in enumerate(coas, 1)
    ]
    options.append(mip6.ReplayProtection(mip6.ntp_from_unix(time.time())))
    options.append(mip6.Authentication(args.spi))
    bu = mip6.BindingUpdate(args.seq, int(flags), args.lifetime, options)
    source = str(coas[0])
    key = mip6.MnHaKey(bytes.fromhex(args.key), source, args.home)
    return bu_packet(bu, source, args.home, args.ha).encode(auth=key)


def exchange(args: argparse.Namespace) -> Dict[str, Any]:
    ha_mac = _mac(args.ha_mac)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
    sock.bind((args.iface, 0))
    my_mac = sock.getsockname()[4]
    packet = build_bu(args)
    start = time.monotonic()
    sock.send(ha_mac + my_mac + ETH_P_IPV6.to_bytes(2, "big") + packet)
    deadline = start + args.timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"ba": False, "error": "no BA within %.1f s" % args.timeout}
        sock.settimeout(left)
        try:
            frame = sock.recv(65535)
        except socket.timeout:
            continue
        if frame[6:12] != ha_mac or len(frame) <= 60 or frame[20] != 43:
            continue  # not from the HA, or not IPv6 with a routing header
        elapsed = (time.monotonic() - start) * 1000
        reply = decode_frame(frame)
        ba = reply.message
        return {
            "ba": True,
            "ms": round(elapsed, 1),
            "type": type(ba).__name__,
            "status": getattr(ba, "status", None),
            "sequence": getattr(ba, "sequence", None),
            "lifetime_seconds": getattr(ba, "lifetime_seconds", None),
            "bids": [[b.bid, b.status] for b in getattr(ba, "binding_ids", [])],
            "src": str(reply.src),
            "dst": str(reply.dst),
            "routing_home_address": str(reply.routing_home_address),
            "checksum_ok": reply.checksum_ok(),
            "authenticator_ok": reply.authenticator_ok(reply.auth_key(bytes.fromhex(args.key))),
        }


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iface", required=True)
    parser.add_argument("--ha-mac", required=True)
    parser.add_argument("--ha", required=True, help="home agent address")
    parser.add_argument("--home", required=True, help="mobile router's home address")
    parser.add_argument("--key", required=True, help="MN-HA key in hex")
    parser.add_argument("--spi", type=int, required=True)
    parser.add_argument("--seq", type=int, default=1)
    parser.add_argument("--lifetime", type=int, default=30, help="units of 4 s")
    parser.add_argument("--coa", action="append", required=True, help="care-of address (repeat)")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    result = exchange(args)
    print(json.dumps(result))
    return 0 if result["ba"] else 1


if __name__ == "__main__":
    sys.exit(main())
