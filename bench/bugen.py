"""Binding Update load generator, run inside the generator namespace.

    python -m bench.bugen MRS.json

Reads the mobile routers (home address, key, SPI, care-of addresses) from the JSON
file, then takes one JSON command per line on stdin and answers with one JSON line on
stdout. Every command first *pre-builds* all the signed BU frames it will send (not
timed: RFC 4285 timestamps fresh and strictly increasing per MR, sequence numbers +1
per MR), then injects them over an AF_PACKET socket on ``iface`` towards ``dst_mac``
and captures what comes back on the same socket, matching each reply to its BU by
(home address, sequence number):

* ``{"cmd": "closed", "iface", "dst_mac", "count", "window", "mrs": [i...]|null}``:
  closed loop, ``window`` BUs outstanding, a new one sent per reply; rate = replies /
  time from first send to last reply. The MRs are taken round robin.
* ``{"cmd": "open", ..., "rate", "count"}``: open loop, BUs sent at a fixed rate.

A reply is either a Binding Acknowledgement (IPv6 + Type 2 Routing Header, from the
home agent) or the BU frame itself, unchanged (the echo baseline). Answers: counts,
rate, latency percentiles (ms), BA statuses, replies lost (none within 2 s).

Latency runs from the wall clock read just before each BU is sent to the kernel's
receive timestamp of its reply (``SO_TIMESTAMPNS``, the same clock), so the time this
process took to get a core and read the reply (2 shared cores) does not count. (The
socket never sees its own outgoing frames, so the send side cannot be a kernel stamp.)
Without a timestamp, the time the reply was read counts instead.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import select
import socket
import struct
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import mip6
from mip6.packet import bu_packet, decode_frame

ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4
LOST_AFTER = 2.0
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value
TIMESTAMP_SPACE = socket.CMSG_SPACE(16)  # struct timespec


def kernel_time(ancdata: List[Tuple[int, int, bytes]]) -> Optional[float]:
    """The receive timestamp (seconds) of a frame, if the kernel attached one."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds + nanoseconds / 1e9
    return None


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def percentile(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[index]


class Generator:
    def __init__(self, mrs: List[Dict[str, Any]], ha: str, lifetime: int) -> None:
        self.mrs = mrs
        self.ha = ha
        self.lifetime = lifetime
        self.seq = [0] * len(mrs)
        self.last_ts = [0] * len(mrs)
        self.keys = [bytes.fromhex(m["key"]) for m in mrs]
        self.homes = [ipaddress.IPv6Address(m["home"]) for m in mrs]
        self.sockets: Dict[str, socket.socket] = {}
        self.kernel_timed = 0  # replies of this command timed by kernel timestamps

    def socket(self, iface: str) -> socket.socket:
        if iface not in self.sockets:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.bind((iface, 0))
            self.sockets[iface] = sock
        return self.sockets[iface]

    def build(self, index: int, my_mac: bytes, dst_mac: bytes) -> Tuple[bytes, bytes]:
        """A signed BU frame of MR ``index`` and its match key (home address + sequence)."""
        mr = self.mrs[index]
        self.seq[index] = (self.seq[index] + 1) & 0xFFFF
        seq = self.seq[index]
        stamp = max(mip6.ntp_from_unix(time.time()), self.last_ts[index] + 1)
        self.last_ts[index] = stamp
        coas = [ipaddress.ip_address(c) for c in mr["coas"]]
        flags = mip6.BuFlag.A | mip6.BuFlag.H | mip6.BuFlag.R
        if len(coas) > 1:
            flags |= mip6.BuFlag.B
        options: List[Any] = [mip6.BindingIdentifier(i, priority=i, care_of_address=coa)
                              for i, coa in enumerate(coas, 1)]
        options.append(mip6.ReplayProtection(stamp))
        options.append(mip6.Authentication(mr["spi"]))
        bu = mip6.BindingUpdate(seq, int(flags), self.lifetime, options)
        source = str(coas[0])
        key = mip6.MnHaKey(self.keys[index], source, self.homes[index])
        packet = bu_packet(bu, source, self.homes[index], self.ha).encode(auth=key)
        frame = dst_mac + my_mac + ETH_P_IPV6.to_bytes(2, "big") + packet
        return frame, self.homes[index].packed + seq.to_bytes(2, "big")

    def frames(self, request: Dict[str, Any], sock: socket.socket) -> List[Tuple[bytes, bytes]]:
        my_mac = sock.getsockname()[4]
        dst = _mac(request["dst_mac"])
        chosen = request.get("mrs") or list(range(len(self.mrs)))
        return [self.build(chosen[n % len(chosen)], my_mac, dst)
                for n in range(request["count"])]

    # -- replies ----------------------------------------------------------------------
    @staticmethod
    def reply_key(frame: bytes) -> Tuple[bytes, int]:
        """(home address + sequence, BA status or -1 for an echoed BU) of a received frame."""
        if len(frame) < 90 or frame[12:14] != b"\x86\xdd":
            return b"", -2
        nh = frame[20]
        if nh == 43:  # routing header type 2: a BA to the home address
            mh = 54 + (frame[55] + 1) * 8
            if frame[mh + 2] != 6:  # MH type 6 = BA
                return b"", -2
            return frame[62:78] + frame[mh + 8:mh + 10], frame[mh + 6]
        if nh == 60:  # destination options with the Home Address option: the BU echoed
            mh = 54 + (frame[55] + 1) * 8
            if frame[mh + 2] != 5:
                return b"", -2
            return frame[62:78] + frame[mh + 6:mh + 8], -1
        return b"", -2

    def _drain(self, sock: socket.socket, sent_at: Dict[bytes, float], latencies: List[float],
               statuses: collections.Counter) -> int:
        got = 0
        while True:
            try:
                frame, ancdata, _, addr = sock.recvmsg(65535, TIMESTAMP_SPACE,
                                                       socket.MSG_DONTWAIT)
            except BlockingIOError:
                return got
            if addr[2] == PACKET_OUTGOING:
                continue
            key, status = self.reply_key(frame)
            start = sent_at.pop(key, None)
            if start is None:
                continue
            stamp = kernel_time(ancdata)
            if stamp is not None:
                latencies.append(stamp - start)
                self.kernel_timed += 1
            else:
                latencies.append(time.time() - start)
            statuses[status] += 1
            got += 1

    def closed(self, request: Dict[str, Any]) -> Dict[str, Any]:
        sock = self.socket(request["iface"])
        built = self.frames(request, sock)
        self._flush(sock)
        self.kernel_timed = 0
        window = request["window"]
        sent_at: Dict[bytes, float] = {}
        latencies: List[float] = []
        statuses: collections.Counter = collections.Counter()
        total, nxt, done, lost = len(built), 0, 0, 0
        start = last = time.monotonic()
        while nxt < total and nxt < window:
            frame, key = built[nxt]
            sent_at[key] = time.time()
            sock.send(frame)
            nxt += 1
        while done + lost < total:
            ready, _, _ = select.select([sock], [], [], 0.1)
            now = time.monotonic()
            if not ready:
                if now - last > LOST_AFTER:  # give up on what is outstanding, refill
                    lost += len(sent_at)
                    sent_at.clear()
                    last = now
                    while nxt < total and len(sent_at) < window:
                        frame, key = built[nxt]
                        sent_at[key] = time.time()
                        sock.send(frame)
                        nxt += 1
                continue
            got = self._drain(sock, sent_at, latencies, statuses)
            if got:
                done += got
                last = time.monotonic()
                while nxt < total and len(sent_at) < window:
                    frame, key = built[nxt]
                    sent_at[key] = time.time()
                    sock.send(frame)
                    nxt += 1
        elapsed = (last if done else time.monotonic()) - start
        return dict(self._answer(done, lost, elapsed, latencies, statuses),
                    kernel_timed=self.kernel_timed)

    def open(self, request: Dict[str, Any]) -> Dict[str, Any]:
        sock = self.socket(request["iface"])
        built = self.frames(request, sock)
        self._flush(sock)
        self.kernel_timed = 0
        interval = 1.0 / request["rate"]
        sent_at: Dict[bytes, float] = {}
        latencies: List[float] = []
        statuses: collections.Counter = collections.Counter()
        total, nxt, done = len(built), 0, 0
        start = time.monotonic()
        last = start
        while nxt < total or (sent_at and time.monotonic() - last < LOST_AFTER):
            now = time.monotonic()
            while nxt < total and start + nxt * interval <= now:
                frame, key = built[nxt]
                sent_at[key] = time.time()
                sock.send(frame)
                nxt += 1
            wait = max(0.0, start + nxt * interval - time.monotonic()) if nxt < total else 0.1
            ready, _, _ = select.select([sock], [], [], wait)
            if ready:
                got = self._drain(sock, sent_at, latencies, statuses)
                if got:
                    done += got
                    last = time.monotonic()
        sending = (total - 1) * interval
        answer = self._answer(done, len(sent_at), last - start, latencies, statuses)
        answer["kernel_timed"] = self.kernel_timed
        answer["offered_rate"] = request["rate"]
        answer["achieved_send_rate"] = total / max(sending, 1e-9) if total > 1 else None
        return answer

    @staticmethod
    def _flush(sock: socket.socket) -> None:
        while True:
            try:
                sock.recv(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return

    @staticmethod
    def _answer(done: int, lost: int, elapsed: float, latencies: List[float],
                statuses: collections.Counter) -> Dict[str, Any]:
        ms = [x * 1000 for x in latencies]
        return {"replies": done, "lost": lost, "seconds": elapsed,
                "rate": done / elapsed if elapsed > 0 else 0.0,
                "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
                "max_ms": max(ms) if ms else float("nan"),
                "statuses": {str(k): v for k, v in statuses.items()}}

    def check(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """One BU of MR 0, its reply decoded with mip6 (checks the fixed offsets above)."""
        sock = self.socket(request["iface"])
        self._flush(sock)
        frame, key = self.build(request.get("mr", 0), sock.getsockname()[4],
                                _mac(request["dst_mac"]))
        sock.send(frame)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], 0.2)
            if not ready:
                continue
            reply, addr = sock.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            got, status = self.reply_key(reply)
            if got != key:
                continue
            packet = decode_frame(reply)
            message = packet.message
            return {"ok": True, "type": type(message).__name__, "status": status,
                    "decoded_status": getattr(message, "status", None),
                    "decoded_sequence": message.sequence,
                    "sequence": int.from_bytes(key[16:], "big")}
        return {"ok": False}


def main() -> int:
    spec = json.loads(open(sys.argv[1]).read())
    gen = Generator(spec["mrs"], spec["ha"], spec["lifetime"])
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = getattr(gen, request["cmd"])(request)
        except Exception as exc:  # report, keep serving
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
