"""Probe streams for the lab: numbered UDP datagrams at a fixed rate, and their receiver.

    python -m topologies.probe send DST[,DST...] PORT RATE SECONDS [SRC[,SRC...]]
    python -m topologies.probe recv PORT SECONDS          -> JSON on stdout

A stream is several flows, one per (source, destination) pair, sent round robin at
``RATE`` packets per second in all. Each datagram carries its flow number, its sequence
number within the flow and the send time. Several flows matter because Open vSwitch's
select groups hash UDP on the addresses only: flows with different address pairs can
take different care-of addresses, one flow always takes one.

The receiver reports, for the whole stream and per flow, how many datagrams arrived, how
many sequence numbers it never saw, and the largest gap between two consecutive arrivals
of one flow (the outage a failover caused) with the wall-clock time the gap started.
Standard library only (it runs inside lab namespaces with any Python 3.9+).
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

_FORMAT = "!HId"  # flow, sequence number, send time
_SIZE = struct.calcsize(_FORMAT)


def send(dsts: Sequence[str], port: int, rate: float, seconds: float,
         srcs: Optional[Sequence[Optional[str]]] = None) -> int:
    """Send ``rate * seconds`` datagrams over the flows ``srcs x dsts``; returns how many left."""
    flows: List[Tuple[socket.socket, str]] = []
    for src in (srcs or [None]):
        sock = socket.socket(socket.AF_INET6 if ":" in dsts[0] else socket.AF_INET,
                             socket.SOCK_DGRAM)
        if src:
            sock.bind((src, 0))
        for dst in dsts:
            flows.append((sock, dst))
    interval, start = 1.0 / rate, time.monotonic()
    seqs = [0] * len(flows)
    sent = 0
    for n in range(int(rate * seconds)):
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        flow = n % len(flows)
        sock, dst = flows[flow]
        try:
            sock.sendto(struct.pack(_FORMAT, flow, seqs[flow], time.time()), (dst, port))
            sent += 1
        except OSError:
            pass  # no route for a moment: the receiver sees it as a gap
        seqs[flow] += 1
    return sent


def collect(port: int, seconds: float) -> Dict[int, List[Tuple[float, int, float]]]:
    """Every probe received on UDP ``port`` (IPv6 and IPv4) for ``seconds``, per flow:
    (arrival time, sequence number, send time)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(("::", port))
    sock.settimeout(0.2)
    end = time.monotonic() + seconds
    arrivals: Dict[int, List[Tuple[float, int, float]]] = {}
    while time.monotonic() < end:
        try:
            data = sock.recv(64)
        except socket.timeout:
            continue
        if len(data) >= _SIZE:
            flow, seq, sent = struct.unpack(_FORMAT, data[:_SIZE])
            arrivals.setdefault(flow, []).append((time.time(), seq, sent))
    return arrivals


def receive(port: int, seconds: float) -> Dict[str, Any]:
    """Receive on UDP ``port`` (IPv6 and IPv4) for ``seconds``; a summary as a dict."""
    arrivals = {flow: [(t, seq) for t, seq, _ in got]
                for flow, got in collect(port, seconds).items()}
    flows = {}
    for flow, got in sorted(arrivals.items()):
        gaps = [(b[0] - a[0], a[0]) for a, b in zip(got, got[1:])]
        largest = max(gaps, default=(0.0, 0.0))
        seqs = {s for _, s in got}
        flows[str(flow)] = {"received": len(got), "missing": max(seqs) + 1 - len(seqs),
                            "max_gap_ms": round(largest[0] * 1000, 1),
                            "gap_started": largest[1]}
    worst = max(flows.values(), key=lambda f: f["max_gap_ms"], default=None)
    return {"received": sum(f["received"] for f in flows.values()),
            "missing": sum(f["missing"] for f in flows.values()),
            "max_gap_ms": worst["max_gap_ms"] if worst else 0.0,
            "gap_started": worst["gap_started"] if worst else None,
            "flows": flows}


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) in (5, 6) and args[0] == "send":
        srcs = args[5].split(",") if len(args) == 6 else None
        send(args[1].split(","), int(args[2]), float(args[3]), float(args[4]), srcs)
        return 0
    if len(args) == 3 and args[0] == "recv":
        print(json.dumps(receive(int(args[1]), float(args[2]))))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
