"""A probe stream for failover measurements: numbered UDP datagrams at a fixed rate.

    python -m tests.integration.probe send DST PORT RATE SECONDS
    python -m tests.integration.probe recv PORT SECONDS     -> JSON on stdout

The receiver reports how many arrived and the largest gap between two consecutive
arrivals (the outage a failover caused), with the time it started.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time


def send(dst: str, port: int, rate: float, seconds: float) -> None:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    interval, start = 1.0 / rate, time.monotonic()
    count = int(rate * seconds)
    for seq in range(count):
        target = start + seq * interval
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            sock.sendto(struct.pack("!Id", seq, time.time()), (dst, port))
        except OSError:
            pass  # no route for a moment: the receiver sees it as a gap


def receive(port: int, seconds: float) -> dict:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::", port))
    sock.settimeout(0.2)
    end = time.monotonic() + seconds
    arrivals = []
    while time.monotonic() < end:
        try:
            data = sock.recv(64)
        except socket.timeout:
            continue
        arrivals.append((time.time(), struct.unpack("!Id", data[:12])[0]))
    gaps = [(b[0] - a[0], a[0]) for a, b in zip(arrivals, arrivals[1:])]
    largest = max(gaps, default=(0.0, 0.0))
    return {"received": len(arrivals), "max_gap_ms": round(largest[0] * 1000, 1),
            "gap_started": largest[1], "first": arrivals[0][0] if arrivals else None,
            "last": arrivals[-1][0] if arrivals else None}


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    else:
        print(json.dumps(receive(int(sys.argv[2]), float(sys.argv[3]))))
