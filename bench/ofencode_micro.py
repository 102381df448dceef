"""Micro benchmark: OpenFlow messages of N MR registrations, os-ken against ofencode.

``python -m bench.ofencode_micro [N]`` (default 1,000 MRs, 4 care-of addresses each:
three IPv6 and one IPv4, one prefix; 17 flow-mods + 1 group-mod per registration, as
the home agent sends for a first registration). Compilation is done beforehand; timed
is only "changes -> bytes ready for the socket, with xids from the datapath":

* os-ken: ``ofmsg.change_batches(fast=False)``, then ``set_xid`` + ``serialize`` for
  every message (what ``Datapath.send_msg`` does);
* ofencode: ``ofmsg.change_batches()`` (pre-encoded messages), then ``set_xid``.

The encoder's memo caches are cleared before every cold sample (each MR registers with
values never seen before, as in the field); warm samples repeat the same registrations.
Not a test: it prints the times and the ratio, nothing is asserted.
"""

from __future__ import annotations

import ipaddress
import statistics
import sys
import time
from typing import Any, Callable, List

from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from bench.halab import make_mrs
from ryu_apps import ofencode, ofmsg
from ryu_apps.bindings import CareOfBinding, RouterBinding
from ryu_apps.config import parse_config
from ryu_apps.flowmodel import Changes, SwitchState, diff_partial
from ryu_apps.pipeline import Ports, allocate_group_ids, compile_router

PORTS = Ports(uplink=1, tunnel=10, local_mac="02:00:00:00:00:01")


class Datapath:
    ofproto, ofproto_parser, id = ofproto_v1_3, ofproto_v1_3_parser, 1

    def __init__(self) -> None:
        self.xid = 0

    def set_xid(self, msg: Any) -> int:
        self.xid = (self.xid + 1) & self.ofproto.MAX_XID
        msg.set_xid(self.xid)
        return self.xid


def registrations(count: int) -> List[Changes]:
    mrs = make_mrs(count, coas=4)
    config = parse_config({
        "home_agent": {"addresses": ["2001:db8:ffff::1"],
                       "home_prefixes": ["2001:db8:f000::/48"]},
        "datapath": {"uplink_port": "up0", "tunnel_port": "gre0"},
        "upstream": {"next_hop": "2001:db8:ffff::fe"},
        "mobile_routers": [{"name": m["name"], "home_address": m["home"],
                            "prefixes": [m["prefix"]], "spi": m["spi"], "key": m["key"],
                            "gre_key": m["gre_key"]} for m in mrs]})
    gids = allocate_group_ids(r.name for r in config.mobile_routers)
    out = []
    for i, (router, mr) in enumerate(zip(config.mobile_routers, mrs)):
        coas = mr["coas"][:3] + [f"198.{18 + (i >> 16)}.{(i >> 8) & 0xFF}.{i & 0xFF}"]
        care_of = tuple(CareOfBinding(bid, ipaddress.ip_address(c), 0, 1, 0.0, 600.0)
                        for bid, c in enumerate(coas, 1))
        entry = RouterBinding(router.name, router.home_address, router.prefixes, True, True,
                              0x10000 + i, 1, care_of)
        out.append(diff_partial(compile_router(router, entry, gids[router.name], PORTS),
                                SwitchState()))
    return out


def via_os_ken(work: List[Changes]) -> int:
    dp, octets = Datapath(), 0
    for changes in work:
        for batch in ofmsg.change_batches(dp, changes, fast=False):
            for msg in batch:
                dp.set_xid(msg)
                msg.serialize()
                octets += len(msg.buf)
    return octets


def via_ofencode(work: List[Changes]) -> int:
    dp, octets = Datapath(), 0
    for changes in work:
        for batch in ofmsg.change_batches(dp, changes):
            for msg in batch:
                dp.set_xid(msg)
                octets += len(msg.buf)
    return octets


def clear_caches() -> None:
    for cached in (ofencode._packed_address, ofencode._match_oxm, ofencode._set_field_oxm,
                   ofencode.encode_actions, ofencode.encode_instructions):
        cached.cache_clear()


def sample(run: Callable[[List[Changes]], int], work: List[Changes], cold: bool) -> float:
    if cold:
        clear_caches()
    started = time.perf_counter()
    run(work)
    return time.perf_counter() - started


def main(count: int = 1000, repeats: int = 7) -> None:
    work = registrations(count)
    messages = sum(len(c.flow_adds) + len(c.group_adds) for c in work)
    assert via_os_ken(work) == via_ofencode(work)  # same octets (the unit test checks bytes)
    times = {"os-ken": [], "ofencode cold": [], "ofencode warm": []}
    for _ in range(repeats):  # interleaved, so machine noise hits all alike
        times["os-ken"].append(sample(via_os_ken, work, False))
        times["ofencode cold"].append(sample(via_ofencode, work, True))
        times["ofencode warm"].append(sample(via_ofencode, work, False))
    print(f"{count} MR registrations x 4 CoAs: {messages} messages "
          f"(Python {sys.version.split()[0]})")
    base = statistics.median(times["os-ken"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:14} median {median * 1000:8.1f} ms  (min {min(values) * 1000:.1f}, "
              f"max {max(values) * 1000:.1f})  {median / count * 1e6:6.1f} us/MR  "
              f"speed-up {base / median:5.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
