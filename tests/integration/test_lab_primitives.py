"""The lab library (topologies.netns, topologies.ovs, topologies.lab) on the real host.

The main test rebuilds the verified data path of the project's lab notes with
the library: two namespaces ``ha`` and ``mr``, each with a private userspace
OVS (``br-phy`` holds the underlay veth and the tunnel endpoint address,
``br-int`` a flow-based L3 GRE port and the host port; a variant uses a single
bridge for both), hosts ``cn`` behind ha and ``lan`` behind mr, and static
OpenFlow 1.3 flows that encapsulate into GRE key 42 and decapsulate (rewriting
the dummy Ethernet header). The other tests
check the building blocks and, above all, that nothing is ever left behind.

Every test that touches the host checks afterwards that no namespace, process
or run directory with its prefix remains.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable, Dict, Iterator, List, TypeVar

import pytest

from topologies.lab import Lab, TeardownError, cleanup_leftovers, default_base_dir
from topologies.netns import (
    InvalidNameError,
    Namespace,
    create_veth,
    list_netns,
    new_prefix,
    validate_ifname,
    validate_prefix,
)
from topologies.ovs import OvsError, OvsInstance
from topologies.procs import CommandError, pids_matching

pytestmark = [pytest.mark.integration]

#: What every test that builds lab nodes needs from the host.
NEEDS_HOST = (
    pytest.mark.requires_root,
    pytest.mark.requires_ovs,
    pytest.mark.requires_tools("ip", "ping", "ethtool", "ovs-ofctl", "ovs-vswitchd", "ovsdb-server"),
)

F = TypeVar("F", bound=Callable[..., object])


def host_test(func: F) -> F:
    """Mark a test with :data:`NEEDS_HOST` (the name checks below run anywhere)."""
    for mark in NEEDS_HOST:
        func = mark(func)
    return func


# ---------------------------------------------------------------------------
# Leftover checks
# ---------------------------------------------------------------------------


def leftovers(prefix: str, base_dir: Path) -> List[str]:
    """Everything with ``prefix`` still on the host: namespaces, processes, run dirs, links."""
    found = ["netns " + n for n in list_netns() if n.startswith(prefix)]
    # Like `pgrep -f <prefix>`, without matching pgrep or this process.
    found += ["pid %d" % p for p in pids_matching(prefix)]
    if base_dir.is_dir():
        found += ["dir " + e.name for e in base_dir.iterdir() if e.name.startswith(prefix)]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found += ["link " + line.split(":")[1].strip() for line in links.splitlines() if prefix in line]
    return found


def assert_clean(prefix: str, base_dir: Path) -> None:
    remaining = leftovers(prefix, base_dir)
    assert remaining == [], "left behind: %s" % remaining
    pgrep = subprocess.run(["pgrep", "-f", prefix], capture_output=True, text=True)
    assert pgrep.returncode == 1, "pgrep -f %s found %s" % (prefix, pgrep.stdout)


@pytest.fixture
def base_dir() -> Path:
    # Not pytest's tmp_path: unix socket paths under it must stay below 108 bytes.
    return default_base_dir()


@pytest.fixture
def lab(base_dir: Path) -> Iterator[Lab]:
    """A Lab that is always torn down; the test fails if anything of it remains."""
    lab = Lab(base_dir=base_dir)
    try:
        with lab:
            yield lab
    finally:
        remaining = leftovers(lab.prefix, base_dir)
        cleanup_leftovers(lab.prefix, base_dir=base_dir)  # never leave anything behind
    assert remaining == [], "lab teardown left behind: %s" % remaining


# ---------------------------------------------------------------------------
# Names (no root needed)
# ---------------------------------------------------------------------------


def test_interface_names_are_checked_before_anything_runs() -> None:
    assert validate_ifname("a" * 15) == "a" * 15
    with pytest.raises(InvalidNameError, match="16 characters long; Linux allows at most 15"):
        validate_ifname("a" * 16)
    for bad in ("", "a/b", "a:b", "a b", ".", ".."):
        with pytest.raises(InvalidNameError):
            validate_ifname(bad)
    # Creating a veth with a too long name fails before any command runs.
    with pytest.raises(InvalidNameError, match="at most 15"):
        create_veth(Namespace("nf0000-x"), "this-is-too-long", Namespace("nf0000-y"), "eth0")


def test_prefixes_and_root_namespace_names() -> None:
    prefix = new_prefix()
    assert validate_prefix(prefix) == prefix and len(prefix) == 7
    for bad in ("nf", "nfzzzz-", "xx1234-", "nf12345-", "nf1234"):
        with pytest.raises(InvalidNameError):
            validate_prefix(bad)
    # An interface in the root namespace must carry a lab prefix.
    with pytest.raises(InvalidNameError, match="root namespace"):
        create_veth(Namespace.root(), "veth0", Namespace("nf0000-y"), "eth0")
    with pytest.raises(InvalidNameError, match="lab prefix"):
        Lab(prefix).veth(Namespace.root(), "nf0000-h", Namespace("nf0000-y"), "eth0")
    with pytest.raises(InvalidNameError):
        cleanup_leftovers("nfs")  # only our family, never a random "nfs..." name
    with pytest.raises(InvalidNameError):
        Namespace("bad/name")


# ---------------------------------------------------------------------------
# The lab-notes data path: CN -> OVS(HA) -> GRE/IPv6 key 42 -> OVS(MR) -> LAN
# ---------------------------------------------------------------------------

GRE_PORT = 10  # ofport_request of gre0 on both sides
HOST_PORT = 1  # ofport_request of the host veth on both sides
UPLINK_PORT = 2  # ofport_request of the underlay veth (single-bridge layout)
GRE_KEY = 42

#: Per side: endpoint on the tunnel bridge, its MAC, host prefix, host address and
#: MAC, the virtual gateway MAC the host sends to (owned by no one; flows use it
#: as eth_src when they deliver to the host).
SIDES: Dict[str, Dict[str, str]] = {
    "ha": dict(endpoint="2001:db8:1::1", phy_mac="02:00:00:00:00:01", host="cn", host_port="cn0",
               prefix="2001:db8:100::/64", host_ip="2001:db8:100::10", host_gw="2001:db8:100::1",
               host_mac="02:00:00:00:01:10", gw_mac="02:00:00:00:01:01"),
    "mr": dict(endpoint="2001:db8:1::2", phy_mac="02:00:00:00:00:02", host="lan", host_port="lan0",
               prefix="2001:db8:ff00:1::/64", host_ip="2001:db8:ff00:1::10", host_gw="2001:db8:ff00:1::1",
               host_mac="02:00:00:00:02:10", gw_mac="02:00:00:00:02:01"),
}


def encap_flow(peer: str) -> str:
    """Host -> GRE toward the peer's endpoint (the match doubles as the strict delete key)."""
    return (
        "table=0,priority=100,in_port=%d,ipv6,ipv6_dst=%s,"
        "actions=set_field:%s->tun_ipv6_dst,set_field:%d->tun_id,output:%d"
        % (HOST_PORT, SIDES[peer]["prefix"], SIDES[peer]["endpoint"], GRE_KEY, GRE_PORT)
    )


def decap_flow(side: str) -> str:
    """GRE (legacy_l3: a dummy Ethernet header) -> host, with the real MACs."""
    s = SIDES[side]
    return (
        "table=0,priority=100,in_port=%d,tun_id=%d,ipv6,ipv6_dst=%s,"
        "actions=set_field:%s->eth_src,set_field:%s->eth_dst,output:%d"
        % (GRE_PORT, GRE_KEY, s["prefix"], s["gw_mac"], s["host_mac"], HOST_PORT)
    )


#: Single-bridge layout: the underlay veth and the bridge's LOCAL port (which
#: holds the endpoint address) are wired together by two flows; OVS pushes the
#: tunnel header and re-enters the same bridge from LOCAL, and terminates
#: tunnel packets that reach LOCAL.
UNDERLAY_FLOWS = (
    "table=0,priority=50,in_port=%d,actions=LOCAL" % UPLINK_PORT,
    "table=0,priority=50,in_port=LOCAL,actions=output:%d" % UPLINK_PORT,
)


def build_gre_lab(lab: Lab, layout: str, preseed_neigh: bool) -> Dict[str, object]:
    """cn -- [OVS ha] == GRE/IPv6 == [OVS mr] -- lan; returns namespaces, OVS instances, tunnel bridge."""
    ns = {name: lab.namespace(name) for name in ("ha", "mr", "cn", "lan")}
    ovs = {side: lab.ovs(ns[side]) for side in ("ha", "mr")}
    # Underlay: one veth between the two OVS namespaces (offloads off, as for every lab veth).
    lab.veth(ns["ha"], "up0", ns["mr"], "up0")
    tnl_bridge = "br-phy" if layout == "two-bridge" else "br0"
    for side, peer in (("ha", "mr"), ("mr", "ha")):
        s, o, node = SIDES[side], ovs[side], ns[side]
        host = ns[s["host"]]
        lab.veth(host, "eth0", node, s["host_port"], a_mac=s["host_mac"])
        if layout == "two-bridge":
            # br-phy: standalone (NORMAL switching) between the uplink and its LOCAL port.
            o.add_bridge("br-phy", hwaddr=s["phy_mac"])
            o.add_port("br-phy", "up0")
            o.add_bridge("br-int", secure=True)
            flow_bridge = "br-int"
        else:
            o.add_bridge("br0", hwaddr=s["phy_mac"], secure=True)
            assert o.add_port("br0", "up0", ofport=UPLINK_PORT) == UPLINK_PORT
            o.add_flows("br0", UNDERLAY_FLOWS)
            flow_bridge = "br0"
        node.add_addr(tnl_bridge, s["endpoint"] + "/64")  # tunnel endpoint on the internal port
        assert o.add_gre_port(flow_bridge, "gre0", ofport=GRE_PORT) == GRE_PORT
        assert o.add_port(flow_bridge, s["host_port"], ofport=HOST_PORT) == HOST_PORT
        o.add_flows(flow_bridge, [encap_flow(peer), decap_flow(side)])
        if preseed_neigh:
            o.tnl_neigh_set(tnl_bridge, SIDES[peer]["endpoint"], SIDES[peer]["phy_mac"])
        # Host: address, default route via a virtual gateway with a static neighbour
        # entry (the flow bridge is fail_mode=secure and answers no solicitation).
        host.add_addr("eth0", s["host_ip"] + "/64")
        host.add_route("default", via=s["host_gw"], dev="eth0")
        host.add_neigh(s["host_gw"], s["gw_mac"], "eth0")
    return {"ns": ns, "ovs": ovs, "tnl_bridge": tnl_bridge, "flow_bridge": flow_bridge}


def ping(ns: Namespace, dst: str, count: int = 3, wait: float = 2, size: int = 56) -> "subprocess.CompletedProcess[str]":
    return ns.run(
        "ping", "-6", "-n", "-c", str(count), "-W", str(wait), "-i", "0.2", "-s", str(size), "-M", "do",
        dst, check=False,
    )


@host_test
@pytest.mark.parametrize(
    "layout, preseed_neigh",
    [("two-bridge", True), ("two-bridge", False), ("single-bridge", True)],
    ids=["two-bridge,tnl-neigh-preset", "two-bridge,tnl-neigh-learnt", "single-bridge,tnl-neigh-preset"],
)
def test_gre_data_path_between_two_private_ovs(lab: Lab, layout: str, preseed_neigh: bool) -> None:
    topo = build_gre_lab(lab, layout, preseed_neigh)
    ns: Dict[str, Namespace] = topo["ns"]  # type: ignore[assignment]
    ovs: Dict[str, OvsInstance] = topo["ovs"]  # type: ignore[assignment]
    tnl_bridge, flow_bridge = str(topo["tnl_bridge"]), str(topo["flow_bridge"])
    cn_ip, lan_ip = SIDES["ha"]["host_ip"], SIDES["mr"]["host_ip"]

    # Underlay sanity: the two tunnel endpoints reach each other.
    assert ping(ns["ha"], SIDES["mr"]["endpoint"], count=1).returncode == 0

    result = ping(ns["cn"], lan_ip)
    assert result.returncode == 0, result.stdout + result.stderr
    if preseed_neigh:
        # No packet waits for neighbour resolution of the tunnel endpoint.
        assert " 0% packet loss" in result.stdout, result.stdout
    # OVS knows the remote endpoint's MAC (set, or snooped from the underlay ND)
    # and routes the underlay prefix through the tunnel bridge (learnt from the namespace).
    assert SIDES["mr"]["phy_mac"] in ovs["ha"].tnl_neigh_show()
    assert "2001:db8:1::/64 dev %s" % tnl_bridge in ovs["ha"].route_show()

    # The other direction, started at the LAN side.
    back = ping(ns["lan"], cn_ip)
    assert back.returncode == 0, back.stdout + back.stderr

    # Largest inner packet over a 1500-byte underlay: 1500 - 48 (IPv6 + GRE with key).
    assert ping(ns["cn"], lan_ip, count=1, size=1452 - 48).returncode == 0

    # The packets really went through the tunnel flows.
    encap = ovs["ha"].dump_flows(flow_bridge, "in_port=%d" % HOST_PORT)
    assert any("n_packets=0," not in line and "tun_ipv6_dst" in line for line in encap), encap

    # Tear the HA's encapsulation flow down: CN -> LAN stops.
    ovs["ha"].del_flows(flow_bridge, encap_flow("mr").split(",actions=")[0], strict=True)
    assert ovs["ha"].dump_flows(flow_bridge, "in_port=%d" % HOST_PORT) == []
    cut = ping(ns["cn"], lan_ip, count=1, wait=0.5)
    assert cut.returncode != 0, cut.stdout

    # And put it back: traffic flows again.
    ovs["ha"].add_flow(flow_bridge, encap_flow("mr"))
    assert ping(ns["cn"], lan_ip, count=1).returncode == 0


# ---------------------------------------------------------------------------
# Cleanup
# ---------------------------------------------------------------------------


@host_test
def test_lab_cleans_up_after_an_exception(base_dir: Path) -> None:
    prefix = new_prefix()
    try:
        with pytest.raises(RuntimeError, match="boom"):
            with Lab(prefix, base_dir=base_dir) as lab:
                a = lab.namespace("a")
                b = lab.namespace("b")
                ovs = lab.ovs(a)
                ovs.add_bridge("br0", secure=True)
                lab.veth(a, "p0", b, "eth0")
                ovs.add_port("br0", "p0")
                host_end = lab.name("h")
                lab.veth(Namespace.root(), host_end, b, "eth1")
                sleeper = lab.popen(b, "sleep", "300")
                assert leftovers(prefix, base_dir) != []
                raise RuntimeError("boom")
        assert sleeper.returncode is not None
        assert_clean(prefix, base_dir)
        assert not lab._teardown and lab.closed
        with pytest.raises(Exception, match="closed"):
            lab.namespace("again")
    finally:
        cleanup_leftovers(prefix, base_dir=base_dir)


@host_test
def test_teardown_runs_every_step_even_when_one_fails(base_dir: Path) -> None:
    prefix = new_prefix()
    ran: List[str] = []

    def fail() -> None:
        raise OSError("nope")

    try:
        with pytest.raises(TeardownError, match="broken step"):
            with Lab(prefix, base_dir=base_dir) as lab:
                lab.namespace("a")
                lab.add_cleanup("broken step", fail)
                lab.add_cleanup("last step", lambda: ran.append("last"))
        assert ran == ["last"]
        assert_clean(prefix, base_dir)
        # A failing teardown does not hide the body's own exception.
        with pytest.raises(KeyError):
            with Lab(prefix, base_dir=base_dir) as lab:
                lab.namespace("b")
                lab.add_cleanup("broken step", fail)
                raise KeyError("body")
        assert_clean(prefix, base_dir)
    finally:
        cleanup_leftovers(prefix, base_dir=base_dir)


@host_test
def test_cleanup_leftovers_removes_a_crashed_run_and_nothing_else(base_dir: Path) -> None:
    crashed, other = new_prefix(), new_prefix()
    while other == crashed:
        other = new_prefix()
    try:
        # A "crashed" run: created without any teardown record.
        ns = Namespace.create(crashed + "ha")
        ovs = OvsInstance.start(ns, base_dir / (crashed + "ha-ovs"))
        ovs.add_bridge("br0")
        create_veth(Namespace.root(), crashed + "h", ns, "eth0")
        ns.popen("sleep", "300")
        stray_dir = base_dir / (crashed + "stray")
        stray_dir.mkdir(parents=True)
        # A run that is alive and must not be touched.
        survivor = Namespace.create(other + "x")

        removed = cleanup_leftovers(crashed, base_dir=base_dir)
        assert_clean(crashed, base_dir)
        assert any("deleted namespace %sha" % crashed in r for r in removed), removed
        assert any("killed pid" in r and "ovs-vswitchd" in r for r in removed), removed
        assert survivor.exists()
        assert cleanup_leftovers(crashed, base_dir=base_dir) == []  # idempotent
    finally:
        cleanup_leftovers(crashed, base_dir=base_dir)
        cleanup_leftovers(other, base_dir=base_dir)
    assert_clean(other, base_dir)


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------


@host_test
def test_namespace_commands_links_and_settings(lab: Lab) -> None:
    a, b = lab.namespace("a"), lab.namespace("b")

    # A failing command names itself, its exit code and its stderr.
    with pytest.raises(CommandError) as info:
        a.run("ip", "link", "show", "dev", "nosuchdev")
    text = str(info.value)
    assert "exit code 1" in text and "nosuchdev" in text and "ip netns exec %s" % a.name in text
    assert "does not exist" in text  # ip's stderr
    assert a.run("true").returncode == 0
    assert a.run("false", check=False).returncode == 1

    # veth with fixed MACs and MTU, offloads off, up.
    lab.veth(a, "v-a", b, "v-b", a_mac="02:aa:00:00:00:01", b_mac="02:bb:00:00:00:01", mtu=1400)
    assert a.link_mac("v-a") == "02:aa:00:00:00:01" and b.link_mac("v-b") == "02:bb:00:00:00:01"
    assert a.link_mtu("v-a") == 1400 and b.link_mtu("v-b") == 1400
    features = a.offloads("v-a")
    for name in ("rx-checksumming", "tx-checksumming", "tcp-segmentation-offload",
                 "generic-segmentation-offload", "generic-receive-offload"):
        assert features[name] is False, name
    assert "UP" in a.run("ip", "link", "show", "dev", "v-a").stdout

    # Addresses (IPv6 nodad: usable at once; IPv4), routes, forwarding.
    a.add_addr("v-a", "2001:db8:5::1/64")
    a.add_addr("v-a", "192.0.2.1/24")
    b.add_addr("v-b", "2001:db8:5::2/64")
    b.add_addr("v-b", "192.0.2.2/24")
    assert {"2001:db8:5::1/64", "192.0.2.1/24"} <= set(a.addresses("v-a"))
    assert "tentative" not in a.run("ip", "-6", "addr", "show", "dev", "v-a").stdout
    assert a.run("ping", "-6", "-c", "1", "-W", "2", "2001:db8:5::2", check=False).returncode == 0
    assert a.run("ping", "-4", "-c", "1", "-W", "2", "192.0.2.2", check=False).returncode == 0
    b.add_addr("lo", "2001:db8:6::1/128")
    a.add_route("2001:db8:6::/64", via="2001:db8:5::2")
    b.add_addr("lo", "198.51.100.1/32")
    a.add_route("198.51.100.0/24", via="192.0.2.2", dev="v-a")
    assert a.run("ping", "-6", "-c", "1", "-W", "2", "2001:db8:6::1", check=False).returncode == 0
    assert a.run("ping", "-4", "-c", "1", "-W", "2", "198.51.100.1", check=False).returncode == 0
    a.del_route("2001:db8:6::/64")
    a.del_addr("v-a", "192.0.2.1/24")
    assert "192.0.2.1/24" not in a.addresses("v-a")
    a.enable_forwarding()
    assert a.run("sysctl", "-n", "net.ipv6.conf.all.forwarding").stdout.strip() == "1"
    assert a.run("sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    # Forwarding is per namespace.
    assert b.run("sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"

    a.link_down("v-a")
    assert a.run("ping", "-6", "-c", "1", "-W", "1", "2001:db8:5::2", check=False).returncode != 0
    a.link_up("v-a")

    # Background processes: tracked, stopped at teardown (checked by the fixture).
    proc = lab.popen(a, "sleep", "300")
    assert proc.poll() is None and proc.pid in a.pids()

    # Interface names: 15 characters at most.
    with pytest.raises(InvalidNameError, match="at most 15"):
        lab.veth(a, "x" * 16, b, "y")


@host_test
def test_private_ovs_helpers_and_stop(lab: Lab) -> None:
    node = lab.namespace("n")
    ovs = lab.ovs(node)
    assert ovs.running() and ovs.db_socket.exists() and ovs.ctl_socket("ovs-vswitchd").exists()
    assert "Open vSwitch" in ovs.appctl("version")
    assert ovs.appctl("version", daemon="ovsdb-server").strip()

    ovs.add_bridge("br-a", hwaddr="02:00:00:00:0a:01", secure=True, controller="tcp:127.0.0.1:6653")
    ovs.add_bridge("br-b", protocols=("OpenFlow13", "OpenFlow14"))
    assert ovs.vsctl("get", "Bridge", "br-a", "datapath_type") == "netdev"
    assert ovs.vsctl("get", "Bridge", "br-a", "fail_mode") == "secure"
    assert ovs.vsctl("get", "Bridge", "br-a", "protocols") == "[OpenFlow13]"
    assert ovs.vsctl("get-controller", "br-a") == "tcp:127.0.0.1:6653"
    assert node.link_mac("br-a") == "02:00:00:00:0a:01"  # the internal port (a tap) is in the namespace
    assert ovs.mgmt_socket("br-a").exists()

    assert ovs.add_patch_pair("br-a", "pa", "br-b", "pb", ofport_a=7, ofport_b=8) == (7, 8)
    assert ovs.add_gre_port("br-a", "gre0", ofport=10) == 10
    assert ovs.vsctl("get", "Interface", "gre0", "options:packet_type") == "legacy_l3"
    with pytest.raises(OvsError, match="nosuchdev"):
        ovs.add_port("br-a", "nosuchdev")

    ovs.add_flows("br-a", ["priority=10,in_port=7,actions=output:10", "priority=0,actions=drop"])
    flows = ovs.dump_flows("br-a", stats=False)
    assert len(flows) == 2 and any("in_port=7" in f for f in flows), flows
    ovs.del_flows("br-a", "in_port=7")
    assert [f for f in ovs.dump_flows("br-a") if "in_port" in f] == []
    with pytest.raises(CommandError, match="ovs-ofctl"):
        ovs.add_flow("br-a", "this is not a flow")

    ovs.stop()
    assert not ovs.running() and not ovs.rundir.exists()
    ovs.stop()  # idempotent


@host_test
def test_ovs_start_refuses_a_leftover_rundir(lab: Lab) -> None:
    node = lab.namespace("n")
    rundir = lab.base_dir / (lab.prefix + "n-ovs")
    rundir.mkdir(parents=True)
    try:
        with pytest.raises(OvsError, match="already exists"):
            OvsInstance.start(node, rundir)
    finally:
        rundir.rmdir()
    with pytest.raises(OvsError, match="too long"):
        OvsInstance(node, "/tmp/" + "x" * 100)
