"""The MR agent end to end against the real home agent (see mr_lab.py)."""

from __future__ import annotations

import json
import re
import sys
from typing import Iterator

import pytest

from tests.integration.mr_lab import ALL_COAS, CN_HOST, LAN_HOST, ROOT, MobileRouterLab
from topologies.lab import Lab
from topologies.procs import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.requires_root,
              pytest.mark.requires_ovs,
              pytest.mark.requires_tools("ip", "ping", "ethtool", "ovs-ofctl", "ovs-vswitchd")]


@pytest.fixture(scope="module")
def lab() -> Iterator[MobileRouterLab]:
    with Lab() as raw:
        mr_lab = MobileRouterLab(raw)
        mr_lab.start_ha()
        mr_lab.start_mr()
        try:
            yield mr_lab
        finally:
            mr_lab.stop(mr_lab.mr_proc)
            mr_lab.stop(mr_lab.ha_proc)
            print("---- nemo-mr log (tail) ----\n" + mr_lab.log("mr.log")[-5000:])
            print("---- nemo-ha log (tail) ----\n" + mr_lab.log("ha.log")[-3000:])


def test_four_care_of_addresses_on_two_uplinks_register(lab):
    lab.add_care_of_addresses()
    wait_until(lambda: lab.ha_care_of() == sorted(ALL_COAS), 15,
               "the home agent to bind the four care-of addresses")
    wait_until(lambda: lab.mr_usable() == sorted(ALL_COAS), 5,
               "the MR agent to use the four care-of addresses")
    status = lab.mr_status()
    assert sorted(b["bid"] for b in status["bindings"]) == [1, 2, 3, 4]


def test_status_command_shows_the_bindings(lab):
    cli = ["env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "mr_agent.cli", "status",
           "--config", str(lab.dir / "mr.yaml")]
    table = lab.ns["mr"].run(*cli).stdout
    for coa in ALL_COAS:
        assert re.search(rf"\d+\s+{re.escape(coa)}\s+isp\d\s+registered\s+yes", table), table
    as_json = json.loads(lab.ns["mr"].run(*cli, "--json").stdout)
    assert sorted(b["care_of"] for b in as_json["bindings"]) == sorted(ALL_COAS)


def test_traffic_flows_both_ways(lab):
    lab.ns["cn"].run("ping", "-6", "-c", "1", "-W", "2", LAN_HOST, check=False)
    assert lab.ns["cn"].run("ping", "-6", "-n", "-q", "-c", "5", "-i", "0.2", "-W", "1",
                            LAN_HOST, check=False).returncode == 0
    assert lab.ns["lan"].run("ping", "-6", "-n", "-q", "-c", "5", "-i", "0.2", "-W", "1",
                             CN_HOST, check=False).returncode == 0


TCP_ECHO_SERVER = ("import socket\ns = socket.socket(socket.AF_INET6)\n"
                   "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                   "s.bind(('::', 5001)); s.listen(1); c, _ = s.accept()\n"
                   "data = b''\nwhile not data.endswith(b'END'):\n"
                   "    part = c.recv(65536)\n    if not part: break\n    data += part\n"
                   "c.sendall(data); c.close()\n")


@pytest.mark.parametrize("server, client, address", [("lan", "cn", LAN_HOST),
                                                     ("cn", "lan", CN_HOST)],
                         ids=["cn-to-lan", "lan-to-cn"])
def test_tcp_both_ways(lab, server, client, address):
    listener = lab.ns[server].popen(sys.executable, "-c", TCP_ECHO_SERVER)
    try:
        wait_until(lambda: "5001" in lab.ns[server].run("ss", "-ltn").stdout, 5, "the server")
        out = lab.ns[client].run(sys.executable, "-c", (
            "import socket\n"
            f"c = socket.create_connection(('{address}', 5001), timeout=5)\n"
            "c.sendall(b'x' * 200000 + b'END')\ndata = b''\n"
            "while True:\n    part = c.recv(65536)\n    if not part: break\n"
            "    data += part\nprint(len(data))\n"), timeout=30)
        assert out.stdout.strip() == "200003"
    finally:
        listener.kill()
        listener.wait()


def test_an_uplink_failure_moves_traffic_to_the_other_uplink(lab):
    def fail() -> None:
        lab.ns["mr"].link_down("up1")
    gaps = lab.probe(3.0, fail)
    print(f"\nfailover on link down: upstream (LAN->CN) largest gap "
          f"{gaps['upstream']['max_gap_ms']} ms, downstream (CN->LAN) "
          f"{gaps['downstream']['max_gap_ms']} ms")
    for direction, result in gaps.items():
        assert result["received"] > 2000, (direction, result)
        assert result["max_gap_ms"] < 1000, (direction, result)  # it resumed; see the bench
    wait_until(lambda: lab.ha_care_of() == ["2001:db8:b::100", "2001:db8:b::101"], 5,
               "the home agent to drop the two care-of addresses of the failed uplink")
    assert lab.mr_usable() == ["2001:db8:b::100", "2001:db8:b::101"]
    # One BU de-registers both care-of addresses of the failed uplink, over the other one.
    assert re.search(r"BU deregister seq=\d+ bids=\[1, 2\] via 2001:db8:b::",
                     lab.log("mr.log"))


def test_a_recovered_uplink_is_registered_and_used_again(lab):
    lab.ns["mr"].link_up("up1")
    wait_until(lambda: lab.ha_care_of() == sorted(ALL_COAS), 10,
               "the care-of addresses of the recovered uplink to be bound again")
    wait_until(lambda: lab.mr_usable() == sorted(ALL_COAS), 5, "the MR to use them")
    assert lab.ns["lan"].run("ping", "-6", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1",
                             CN_HOST, check=False).returncode == 0


def test_losing_one_care_of_address_keeps_the_other_on_its_uplink_working(lab):
    """The address OVS chose as the source of the uplink's tunnel routes disappears: the
    agent must renew the routes of the care-of addresses left (a::101 was added last)."""
    lab.ns["mr"].del_addr("br-up1", "2001:db8:a::101/64")
    wait_until(lambda: "2001:db8:a::101" not in lab.ha_care_of(), 5,
               "the home agent to drop 2001:db8:a::101")
    for name in ("lan", "cn"):
        target = CN_HOST if name == "lan" else LAN_HOST
        assert lab.ns[name].run("ping", "-6", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1",
                                target, check=False).returncode == 0
    lab.ns["mr"].add_addr("br-up1", "2001:db8:a::101/64")
    wait_until(lambda: lab.ha_care_of() == sorted(ALL_COAS), 10, "a::101 to be bound again")


def test_an_agent_restart_keeps_the_bids_and_the_traffic(lab):
    bids = {b["care_of"]: b["bid"] for b in lab.mr_status()["bindings"]}

    def restart() -> None:
        lab.stop(lab.mr_proc, "HUP")  # stop keeping the bindings
        lab.start_mr()
    gaps = lab.probe(3.0, restart, rate=200)
    print(f"\nagent restart: largest gap upstream {gaps['upstream']['max_gap_ms']} ms, "
          f"downstream {gaps['downstream']['max_gap_ms']} ms")
    for direction, result in gaps.items():
        assert result["received"] >= 595, (direction, result)  # 200/s for 3 s: no loss
    wait_until(lambda: lab.mr_usable() == sorted(ALL_COAS), 10, "the restarted agent")
    assert {b["care_of"]: b["bid"] for b in lab.mr_status()["bindings"]} == bids


def test_stopping_the_agent_deregisters_everything(lab):
    lab.stop(lab.mr_proc)
    wait_until(lambda: lab.ha_care_of() == [], 5, "the home agent to drop every binding")
    assert "every binding de-registered" in lab.log("mr.log")
