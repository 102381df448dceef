"""The home agent end to end: real OVS, real nemo-ha, real packets (see ha_lab.py).

One lab serves the whole module (building it and starting the controller takes a few
seconds); the tests run in file order and each states the bindings it expects.
"""

from __future__ import annotations

import re
import subprocess
import time
from typing import Iterator

import pytest

from tests.integration.ha_lab import (CN_HOST, COA4, COAS, GRE_KEY, HA, HOME, LAN_HOST,
                                      HomeAgentLab)
from topologies.lab import Lab
from topologies.procs import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.requires_root,
              pytest.mark.requires_ovs,
              pytest.mark.requires_tools("ip", "ping", "ethtool", "ovs-ofctl", "ovs-vswitchd")]

ALL_COAS = [COAS["a"], COAS["b"], COAS["c"], COA4]


@pytest.fixture(scope="module")
def lab() -> Iterator[HomeAgentLab]:
    with Lab() as raw:
        ha_lab = HomeAgentLab(raw)
        ha_lab.start_ha()
        try:
            yield ha_lab
        finally:
            ha_lab.stop_ha()
            print("---- nemo-ha log (tail) ----\n" + ha_lab.log_text()[-4000:])


def register_all(lab: HomeAgentLab) -> None:
    """BIDs 1-3 from the three IPv6 CoAs (one BU each), BID 4 over IPv4 / UDP 4191."""
    for bid, name in enumerate(("a", "b", "c"), 1):
        ba = lab.signal(COAS[name], bids=[{"bid": bid}])
        assert (ba["type"], ba["status"]) == ("BindingAcknowledgement", 0), ba
    ba = lab.signal(coa4=COA4, bids=[{"bid": 4}])
    assert (ba["type"], ba["status"]) == ("BindingAcknowledgement", 0), ba


def buckets(lab: HomeAgentLab) -> list:
    """The care-of addresses of the group's buckets (not the cleared IPv4 destination)."""
    found = re.findall(r"set_field:([0-9a-f.:]+)->tun_(?:ipv6_)?dst", lab.ha_groups())
    return [address for address in found if address != "0.0.0.0"]


def test_the_pipeline_is_installed_and_the_next_hop_resolved(lab):
    signalling = [f for f in lab.ha_flows(0) if "nw_proto=135" in f]
    assert signalling and "meter:1" in signalling[0] and "CONTROLLER" in signalling[0]
    wait_until(lambda: lab.status()["next_hop_mac"] is not None, 10,
               "the home agent to resolve its next hop by neighbour discovery")
    core_mac = lab.core.link_mac("ha0")
    assert lab.status()["next_hop_mac"] == core_mac
    assert any(core_mac in f for f in lab.ha_flows(3))


def test_four_care_of_addresses_register_and_get_signed_acknowledgements(lab):
    ba = lab.signal(COAS["a"], bids=[{"bid": 1}], lifetime=50)
    assert ba["status"] == 0 and ba["checksum_ok"] and ba["authenticated"]
    assert ba["lifetime"] == 50 and ba["bids"] == [[1, 0]] and ba["home"] == HOME
    assert 0 < ba["refresh"] < 50
    register_all(lab)
    assert sorted(buckets(lab)) == sorted(ALL_COAS)
    assert "type=select" in lab.ha_groups()
    def listed() -> list:
        return [b["care_of"] for e in lab.status()["bindings"] for b in e["care_of"]]
    wait_until(lambda: listed() == ALL_COAS, 5, "the status file to list the four bindings")
    assert re.search(r"BU .*mr=office1 .*status=ACCEPTED .*latency_ms=", lab.log_text())


def spray_and_count(lab: HomeAgentLab, flows: int) -> dict:
    """TCP flows from CN; packets the MR received per CoA (waits for OVS's counters,
    which the userspace datapath updates with a short delay)."""
    before = lab.mr_counters()
    lab.tcp_spray(flows=flows)

    def grew() -> dict:
        after = lab.mr_counters()
        return {coa: after.get(coa, 0) - before.get(coa, 0) for coa in ALL_COAS}
    try:
        wait_until(lambda: sum(grew().values()) >= flows, 5, f"{flows} packets at the MR")
    except Exception as exc:
        raise AssertionError(f"{exc}: per CoA {grew()}") from None
    time.sleep(0.3)
    return grew()


def test_downstream_traffic_uses_all_four_tunnels(lab):
    lab.ping(lab.cn, LAN_HOST, count=2)  # resolve the tunnel next hops first
    grew = spray_and_count(lab, 96)
    assert all(count > 0 for count in grew.values()), grew


def test_ping_and_tcp_both_ways_through_the_tunnels(lab):
    lab.ping(lab.cn, LAN_HOST, count=1)  # warm up neighbour caches
    assert lab.ping(lab.cn, LAN_HOST, count=5).returncode == 0
    assert lab.ping(lab.lan, CN_HOST, count=5).returncode == 0
    server = lab.lan.popen("python3", "-c", (
        "import socket\ns = socket.socket(socket.AF_INET6)\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('::', 5001)); s.listen(1); c, _ = s.accept()\n"
        "c.sendall(c.recv(65536)[::-1]); c.close()\n"))
    try:
        time.sleep(0.3)
        client = lab.cn.run("python3", "-c", (
            "import socket\n"
            f"c = socket.create_connection(('{LAN_HOST}', 5001), timeout=5)\n"
            "c.sendall(b'nemo-fabric' * 100); c.shutdown(socket.SHUT_WR)\n"
            "data = b''\nwhile True:\n    part = c.recv(65536)\n    if not part: break\n"
            "    data += part\nprint(len(data), data[:11].decode())\n"), timeout=20)
        # The server sends the 1100 octets back reversed.
        assert client.stdout.split() == ["1100", "nemo-fabric"[::-1]]
    finally:
        server.kill()
        server.wait()


def test_spoofed_sources_unknown_care_of_addresses_and_keys_are_dropped(lab):
    spoofed, unknown_coa, unknown_key = (lab.drop_count(2, 200), lab.drop_count(2, 100),
                                         lab.drop_count(2, 0))
    lab.raw_gre(outer_src=COAS["a"], inner_src="2001:db8:dead::1")
    lab.mr.add_addr("br-mr", "2001:db8:c::200/64")
    lab.raw_gre(outer_src="2001:db8:c::200", inner_src=LAN_HOST)
    lab.raw_gre(outer_src=COAS["a"], inner_src=LAN_HOST, key=GRE_KEY + 1)
    def counted() -> tuple:
        return (lab.drop_count(2, 200) - spoofed, lab.drop_count(2, 100) - unknown_coa,
                lab.drop_count(2, 0) - unknown_key)
    try:
        # Link-local traffic of the LAN (ND) is also "spoofed" for the filter: at least 5.
        wait_until(lambda: counted()[0] >= 5 and counted()[1:] == (5, 5), 5,
                   "5 packets on each drop counter")
    except Exception:
        raise AssertionError(f"drops (spoofed, unknown CoA, unknown key): {counted()}\n"
                             + "\n".join(lab.ha_flows(2))) from None
    # The home agent polls the same counters (routers' drop flows by aggregate requests,
    # the base ones by their cookie) into its status file: they agree with OVS.
    def reported() -> tuple:
        drops = lab.status().get("counters", {}).get("drops", {})
        return (drops.get("spoofed inner source"), drops.get("unregistered care-of address"),
                drops.get("unknown GRE key"))
    wait_until(lambda: reported() == (lab.drop_count(2, 200), lab.drop_count(2, 100),
                                      lab.drop_count(2, 0)), 10,
               "the status file's drop counters to match OVS's")


def test_bad_updates_are_answered_and_change_nothing(lab):
    groups = lab.ha_groups()
    wrong_key = lab.signal(COAS["a"], bids=[{"bid": 1}], key=bytes(20))
    assert wrong_key["status"] == 146 and not wrong_key["authenticated"]
    stale = lab.signal(COAS["a"], bids=[{"bid": 1}], seq=1)
    assert stale["status"] == 135 and stale["authenticated"]
    skewed = lab.signal(COAS["a"], bids=[{"bid": 1}], skew=3600)
    assert skewed["status"] == 145
    foreign = lab.signal(COAS["a"], bids=[{"bid": 1}], spi=0x999)
    assert foreign["status"] == 144
    assert lab.ha_groups() == groups


def test_deregistering_one_care_of_address_stops_its_traffic(lab):
    ba = lab.signal(COAS["a"], bids=[{"bid": 3}], lifetime=0)
    assert (ba["status"], ba["bids"]) == (0, [[3, 0]])
    assert sorted(buckets(lab)) == sorted([COAS["a"], COAS["b"], COA4])
    grew = spray_and_count(lab, 64)
    assert grew[COAS["c"]] == 0, grew


def test_an_expired_binding_loses_its_bucket_and_its_traffic(lab):
    ba = lab.signal(COAS["c"], bids=[{"bid": 3}], lifetime=1)  # 4 seconds
    assert ba["status"] == 0 and ba["lifetime"] == 1
    assert COAS["c"] in buckets(lab)
    wait_until(lambda: COAS["c"] not in buckets(lab), 8, "binding 3 to expire")
    assert "binding expired: mr=office1 bids=[3]" in lab.log_text()
    grew = spray_and_count(lab, 32)
    assert grew[COAS["c"]] == 0, grew


def test_a_controller_restart_loses_no_packet(lab):
    pinger = lab.cn.popen("ping", "-6", "-n", "-q", "-i", "0.01", "-c", "500", LAN_HOST,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(0.8)
    lab.stop_ha()
    time.sleep(0.5)
    lab.start_ha()
    output = pinger.communicate(timeout=30)[0].decode()
    assert " 0% packet loss" in output, output
    assert lab.log_text().rstrip().count("reconcile: 0 changes") >= 1
    assert "restored 1 binding cache entries" in lab.log_text()
    # 301 configured routers: the flows were read in 4 cookie slices, none missed.
    assert "reading its state (flows in 4 slices)" in lab.log_text()


def test_deregistering_everything_removes_the_routers_flows(lab):
    ba = lab.signal(COAS["a"], lifetime=0)
    assert ba["status"] == 0
    assert lab.ha_groups().count("group_id") == 0
    assert not [f for f in lab.ha_flows(1) if "ipv6_dst=2001:db8:ff00:1::/64" in f]
    assert lab.ping(lab.cn, LAN_HOST, count=2, interval=0.2).returncode != 0
    assert lab.drop_count(1, 0) > 0  # counted as "no binding for destination"
