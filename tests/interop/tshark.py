"""Run tshark as an independent Mobility Header decoder (no scapy, no ``mip6``).

``dissect(packets)`` writes IP packets to a pcap (``pcap.py``), runs
``tshark -n -r FILE -T json -x`` and returns one ``TsharkPacket`` per frame:
every field in tree order (options repeat, so fields are a list), the raw bytes
of each field (``-x`` gives frame offsets), expert infos with their severity,
and whether ``_ws.malformed`` appeared. ``assert_clean(pkt)`` fails on a
malformed marker, an expert info of severity Warning or Error, a bad IP/UDP
checksum status, or a wrong MH checksum (see below).

tshark settings used (``TSHARK_PREFS``, ``DECODE_AS``):

* ``-o ip.check_checksum:TRUE -o udp.check_checksum:TRUE`` (both off by default);
* ``-d udp.port==4191,ipv6``: tshark 4.0 has no dissector on UDP 4191 (DSMIPv6);
* ``-n`` and an empty ``WIRESHARK_CONFIG_DIR`` so personal prefs do not leak in.

tshark 4.0 has **no** Mobile IPv6 preference and does **not** validate the MH
checksum (``mip6.csum`` is a plain number). ``mh_checksums()`` therefore
recomputes it from the MH bytes tshark located, with the pseudo-header taken
from tshark's own decode: source = HAO (``ipv6.opt.mipv6.home_address``) if
present, else ``ipv6.src``; destination = RH2 address
(``ipv6.routing.mipv6.home_address``) if present, else ``ipv6.dst``.

Field names (tshark 4.0.17; layer name ``mipv6``, field prefix ``mip6``):

======================  ==========================================================
what                    fields
======================  ==========================================================
MH header               mip6.proto, mip6.hlen, mip6.mhtype, mip6.reserved, mip6.csum
BU                      mip6.bu.seqnr, mip6.bu.{a,h,l,k,m,p,f,t,b}_flag,
                        mip6.nemo.bu.r_flag, mip6.bu.lifetime
BA                      mip6.ba.status, mip6.ba.{k,p,t,b}_flag, mip6.nemo.ba.r_flag,
                        mip6.ba.seqnr, mip6.ba.lifetime
BE                      mip6.be.status, mip6.be.haddr
HAS (type 12)           mip6.has.num_addrs, mip6.has.reserved, mip6.has.address
whole option (bytes)    mip6.options.{pad1,padn,bra,acoa,mnp,mnid,auth,mseg_id,
                        ipv4ha,ipv4aa,natd,ipv4coa,grek,bi}; length of each:
                        mip6.mobility_opt.len; unknown type: mip6.mobility_opt
MNP                     mip6.nemo.mnp.pfl, mip6.nemo.mnp.mnp
BID                     mip6.bi.bid, mip6.bi.status, mip6.bi.h_flag,
                        mip6.bi.coa_ipv4 (length 8), mip6.bi.coa_ipv6 (length 20);
                        BID-PRI is NOT decoded: use ``bid_priorities()``
IPv4 HoA (29)           mip6.ipv4ha.preflen, mip6.ipv4ha.p_flag, mip6.ipv4ha.ha
IPv4 Addr Ack (30)      mip6.ipv4aa.sts, mip6.ipv4ha.preflen, mip6.ipv4ha.ha
NAT Detection (31)      mip6.natd.f_flag, mip6.natd.reserved, mip6.natd.refresh_t
IPv4 CoA (32)           mip6.ipv4coa.reserved, mip6.ipv4coa.addr
GRE Key (33)            mip6.ipv4dra.reserved (sic), mip6.gre_key (absent if len 2)
NAI (MN-ID, 8)          mip6.mnid.subtype, mip6.mnid.identifier
MESG-ID (10)            mip6.mseg_id.timestamp: shown as if Unix seconds (70 years
                        late); use ``mesg_id_timestamps()`` for the 64-bit value
AUTH (9)                mip6.auth.subtype, mip6.auth.mobility_spi,
                        mip6.auth.auth_data: only the first 10 of 12 bytes; use
                        ``authenticators()``
BRA / AltCoA            mip6.bra.interval / mip6.acoa.acoa
HAO / RH2               ipv6.opt.mipv6.home_address / ipv6.routing.type,
                        ipv6.routing.mipv6.home_address
expert fields           mip6.opt.len.invalid, mip6.bogus_header_length,
                        mip6.ie_not_dissected, _ws.malformed
======================  ==========================================================

Known tshark 4.0 quirk: HAS options are parsed from 6 bytes too early (inside
the last address), so every HAS gets spurious options and a Warning (or is
Malformed with no address). Check HAS fields, not ``assert_clean``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import pcap

TSHARK_PREFS: Dict[str, str] = {"ip.check_checksum": "TRUE", "udp.check_checksum": "TRUE"}
DECODE_AS: Tuple[str, ...] = ("udp.port==4191,ipv6",)

SEVERITIES = {
    0x00100000: "Comment",
    0x00200000: "Chat",
    0x00400000: "Note",
    0x00600000: "Warning",
    0x00800000: "Error",
}
GROUPS = {
    0x01000000: "Checksum",
    0x05000000: "Undecoded",
    0x07000000: "Malformed",
    0x09000000: "Protocol",
    0x0A000000: "Security",
}
# ``*.checksum.status`` values: 0 Bad, 1 Good, 2 Unverified, 3 Not present, 4 Illegal.
_BAD_CHECKSUM_STATUS = {"0", "4"}
_FAILING = {"Warning", "Error"}

Pairs = List[Tuple[str, Any]]


@dataclass(frozen=True)
class Field:
    """One decoded field: tshark name, shown value, raw bytes (``-x``) if any."""

    name: str
    value: str
    raw: Optional[bytes] = None


@dataclass(frozen=True)
class Expert:
    """One expert info: the expert field, its message, severity and group names."""

    field: str
    message: str
    severity: str
    group: str


@dataclass
class TsharkPacket:
    """A frame as tshark decoded it (see the module docstring)."""

    number: int
    frame: bytes
    fields: List[Field] = field(default_factory=list)
    experts: List[Expert] = field(default_factory=list)
    malformed: bool = False
    _mh_contexts: List[Dict[str, Any]] = field(default_factory=list, repr=False)

    def values(self, name: str) -> List[str]:
        """All shown values of field ``name``, in tree order."""
        return [f.value for f in self.fields if f.name == name]

    def value(self, name: str) -> str:
        """The single shown value of ``name`` (error if absent or repeated)."""
        found = self.values(name)
        if len(found) != 1:
            raise KeyError("%s occurs %d times in frame %d" % (name, len(found), self.number))
        return found[0]

    def raws(self, name: str) -> List[bytes]:
        """Raw bytes of every occurrence of ``name``."""
        return [f.raw for f in self.fields if f.name == name and f.raw is not None]

    def mip6_fields(self) -> List[Tuple[str, str]]:
        """(name, value) of every ``mip6.*`` field, in tree order."""
        return [(f.name, f.value) for f in self.fields if f.name.startswith("mip6.")]

    def options(self) -> List[Tuple[str, bytes]]:
        """(``mip6.options.X`` name, whole option bytes) in wire order."""
        return [
            (f.name, f.raw)
            for f in self.fields
            if f.name.startswith("mip6.options.") and f.raw is not None
        ]

    def _option_bytes(self, name: str) -> List[bytes]:
        return [raw for opt, raw in self.options() if opt == name]

    def bid_priorities(self) -> List[int]:
        """BID-PRI (low 7 bits of byte 5) of each BID option; tshark omits it."""
        return [raw[5] & 0x7F for raw in self._option_bytes("mip6.options.bi")]

    def authenticators(self) -> List[bytes]:
        """Full authenticator of each auth option (tshark shows 10 bytes only)."""
        return [raw[7:] for raw in self._option_bytes("mip6.options.auth")]

    def mesg_id_timestamps(self) -> List[int]:
        """64-bit NTP timestamp of each MESG-ID option."""
        return [
            int.from_bytes(raw[2:10], "big") for raw in self._option_bytes("mip6.options.mseg_id")
        ]

    def mh_checksums(self) -> List[Tuple[int, int]]:
        """(checksum on the wire, checksum recomputed) for each MH in the frame."""
        return [(ctx["stored"], ctx["computed"]) for ctx in self._mh_contexts]

    def checksum_failures(self) -> List[str]:
        """Fields whose checksum status is Bad or Illegal (ip/udp/icmpv6...)."""
        return [
            "%s=%s" % (f.name, f.value)
            for f in self.fields
            if f.name.endswith(".checksum.status") and f.value in _BAD_CHECKSUM_STATUS
        ]


# --------------------------------------------------------------------------
# Running tshark
# --------------------------------------------------------------------------


def tshark_path() -> Optional[str]:
    """Path of the tshark executable, or None."""
    return shutil.which("tshark")


def tshark_version() -> str:
    """First line of ``tshark -v`` (e.g. ``TShark (Wireshark) 4.0.17 ...``)."""
    out = subprocess.run([_require_tshark(), "-v"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0]


def _require_tshark() -> str:
    path = tshark_path()
    if path is None:
        raise FileNotFoundError("tshark is not installed (Debian package: tshark)")
    return path


def _command(path: Path, prefs: Dict[str, str], decode_as: Iterable[str]) -> List[str]:
    cmd = [_require_tshark(), "-n", "-r", str(path), "-T", "json", "-x"]
    for key, val in prefs.items():
        cmd += ["-o", "%s:%s" % (key, val)]
    for rule in decode_as:
        cmd += ["-d", rule]
    return cmd


def dissect_pcap(
    path: Union[str, Path],
    prefs: Optional[Dict[str, str]] = None,
    decode_as: Optional[Iterable[str]] = None,
) -> List[TsharkPacket]:
    """Run tshark on a pcap file and parse its JSON output."""
    prefs = dict(TSHARK_PREFS if prefs is None else prefs)
    cmd = _command(Path(path), prefs, DECODE_AS if decode_as is None else decode_as)
    with tempfile.TemporaryDirectory(prefix="tshark-conf-") as conf:
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=conf)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError("tshark failed (%d): %s" % (proc.returncode, proc.stderr.strip()))
    frames = json.loads(proc.stdout, object_pairs_hook=lambda pairs: pairs)
    return [_parse_frame(number, frame) for number, frame in enumerate(frames, start=1)]


def dissect(
    packets: Sequence[bytes],
    workdir: Union[None, str, Path] = None,
    linktype: int = pcap.LINKTYPE_ETHERNET,
    **kwargs: Any,
) -> List[TsharkPacket]:
    """Write ``packets`` (IP packets) to a pcap and dissect them with tshark.

    The pcap stays in ``workdir`` (e.g. pytest's ``tmp_path``) when given.
    """
    if workdir is not None:
        path = pcap.write_pcap(Path(workdir) / "tshark-input.pcap", packets, linktype=linktype)
        return dissect_pcap(path, **kwargs)
    with tempfile.TemporaryDirectory(prefix="tshark-pcap-") as tmp:
        path = pcap.write_pcap(Path(tmp) / "input.pcap", packets, linktype=linktype)
        return dissect_pcap(path, **kwargs)


# --------------------------------------------------------------------------
# JSON walking
# --------------------------------------------------------------------------


def _is_tree(val: Any) -> bool:
    return isinstance(val, list) and all(isinstance(x, tuple) for x in val)


def _lookup(pairs: Pairs, key: str) -> Any:
    for k, v in pairs:
        if k == key:
            return v
    raise KeyError(key)


def _parse_frame(number: int, frame_obj: Pairs) -> TsharkPacket:
    layers = _lookup(_lookup(frame_obj, "_source"), "layers")
    frame_hex = _lookup(layers, "frame_raw")[0]
    pkt = TsharkPacket(number=number, frame=bytes.fromhex(frame_hex))
    _walk(layers, pkt)
    _find_mh(layers, pkt)
    return pkt


def _raw_bytes(pkt: TsharkPacket, raw: Any) -> Optional[bytes]:
    # ``X_raw`` is [hex, frame offset, length, bitmask, type]; take frame bytes.
    if not (isinstance(raw, list) and len(raw) >= 3 and isinstance(raw[1], int)):
        return None
    pos, size = raw[1], raw[2]
    if pos < 0 or size <= 0 or pos + size > len(pkt.frame):
        return None
    return pkt.frame[pos : pos + size]


def _expert(pairs: Pairs) -> Expert:
    info = dict(pairs)
    name = next((k for k, _ in pairs if not k.startswith("_ws.expert.")), "")
    sev = int(info.get("_ws.expert.severity", "0"))
    grp = int(info.get("_ws.expert.group", "0"))
    return Expert(
        name,
        info.get("_ws.expert.message", ""),
        SEVERITIES.get(sev, hex(sev)),
        GROUPS.get(grp, hex(grp)),
    )


def _walk(pairs: Pairs, pkt: TsharkPacket) -> None:
    pending: Dict[str, Any] = {}
    for key, val in pairs:
        if key.endswith("_raw"):
            pending[key[:-4]] = val
        elif key == "_ws.expert" and _is_tree(val):
            pkt.experts.append(_expert(val))
        elif _is_tree(val):
            if key == "_ws.malformed":
                pkt.malformed = True
            if key in pending:  # a protocol layer such as "mipv6"
                pkt.fields.append(Field(key, "", _raw_bytes(pkt, pending.pop(key))))
            _walk(val, pkt)
        else:
            if key == "_ws.malformed":
                pkt.malformed = True
            for item in val if isinstance(val, list) else [val]:
                pkt.fields.append(Field(key, str(item), _raw_bytes(pkt, pending.pop(key, None))))


def _first_leaf(pairs: Pairs, key: str, skip: str = "mipv6") -> Optional[str]:
    for k, v in pairs:
        if k == key and not _is_tree(v):
            return str(v)
        if _is_tree(v) and k != skip:
            found = _first_leaf(v, key, skip)
            if found is not None:
                return found
    return None


def _find_mh(pairs: Pairs, pkt: TsharkPacket) -> None:
    """Record, for each IPv6 layer carrying an MH, its checksum check."""
    for key, val in pairs:
        if not _is_tree(val):
            continue
        if key == "ipv6" and any(k == "mipv6_raw" for k, _ in val):
            mh = _raw_bytes(pkt, _lookup(val, "mipv6_raw"))
            src = _first_leaf(val, "ipv6.opt.mipv6.home_address") or _lookup(val, "ipv6.src")
            dst = _first_leaf(val, "ipv6.routing.mipv6.home_address") or _lookup(val, "ipv6.dst")
            if mh is not None and len(mh) >= 6:
                pkt._mh_contexts.append(
                    {
                        "stored": int.from_bytes(mh[4:6], "big"),
                        "computed": mh_checksum(mh, src, dst),
                    }
                )
        _find_mh(val, pkt)


def mh_checksum(mh: bytes, src: str, dst: str) -> int:
    """RFC 6275 MH checksum over an IPv6 pseudo-header (checksum field zeroed)."""
    data = (
        socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + struct.pack("!I3xB", len(mh), 135)
        + mh[:4]
        + b"\x00\x00"
        + mh[6:]
    )
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


# --------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------


def problems(
    pkt: TsharkPacket,
    ignore: Sequence[str] = (),
    check_mh_checksum: bool = True,
) -> List[str]:
    """Everything ``assert_clean`` objects to; ``ignore`` holds regexes matched
    against expert messages (a matching "Malformed" one also clears the flag)."""
    found: List[str] = []
    ignored_malformed = False
    for exp in pkt.experts:
        if any(re.search(pattern, exp.message) for pattern in ignore):
            ignored_malformed |= exp.field == "_ws.malformed.expert"
            continue
        if exp.severity in _FAILING:
            found.append(
                "expert %s/%s [%s]: %s" % (exp.severity, exp.group, exp.field, exp.message)
            )
    if pkt.malformed and not ignored_malformed:
        found.append("_ws.malformed present")
    found += ["bad checksum status: %s" % bad for bad in pkt.checksum_failures()]
    if check_mh_checksum:
        for stored, computed in pkt.mh_checksums():
            if stored != computed:
                found.append("MH checksum 0x%04x, expected 0x%04x" % (stored, computed))
    return found


def assert_clean(
    pkt: TsharkPacket,
    ignore: Sequence[str] = (),
    check_mh_checksum: bool = True,
) -> None:
    """Fail unless tshark saw no malformation, no Warning/Error expert info, no
    bad checksum status, and (``check_mh_checksum``) the MH checksum is right."""
    found = problems(pkt, ignore=ignore, check_mh_checksum=check_mh_checksum)
    if found:
        raise AssertionError("frame %d is not clean:\n  %s" % (pkt.number, "\n  ".join(found)))
