"""The home agent's core (``HomeAgentCore``) driven like the OpenFlow app drives it.

A :class:`Rig` plays the app: it connects the core to a :class:`FakeSwitch`, applies
every :class:`Work`'s changes to that switch, confirms (or fails) the work and feeds
packet-in frames built with ``mip6``. The clock is fake: ``now`` (monotonic) and
``wall`` (Unix) are passed explicitly. Forwarding is checked by running packets through
the fake switch (where does a packet to the mobile network leave, into which tunnel),
never by comparing flow text.

Tests marked ``xfail(strict=True)`` document behaviour that disagrees with the
module's own documentation; the reason names the disagreement.
"""

from __future__ import annotations

import collections
import copy
import ipaddress
import struct
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

import mip6
from mip6.checksum import internet_checksum, pseudo_header
from mip6.constants import BaStatus, BuFlag
from mip6.packet import SignallingPacket, bu_packet, decode_frame, dsmip_packet
from ryu_apps import statefile
from ryu_apps.config import HomeAgentConfig, parse_config
from ryu_apps.core import Frame, HomeAgentCore, Work
from ryu_apps.pipeline import BASE_COOKIE, DROP_REASONS, Ports, drop_reason
from tests.fakeswitch import CONTROLLER, FakeSwitch

IPv6Address = ipaddress.IPv6Address

# -- the home agent -----------------------------------------------------------------------
HA, HA4 = "2001:db8:ffff::1", "198.51.100.1"
UP, TUN = 1, 2
LOCAL_MAC = "02:00:00:00:00:01"
PORTS = Ports(uplink=UP, tunnel=TUN, local_mac=LOCAL_MAC)
PEER_MAC = "02:00:00:00:aa:01"  # the access router the signalling arrives from
NEXT_HOP = "2001:db8:ffff::fe"
NEXT_HOP_MAC = "02:00:00:00:00:fe"
CN = "2001:db8:cafe::5"

# mr1: prefix 2001:db8:1000::/48, weighted; mr2: 2001:db8:2000::/48, priority
HOA1, HOA2 = "2001:db8:ffff::100", "2001:db8:ffff::200"
KEY1, KEY2 = bytes(range(20)), bytes(range(100, 120))
SPI1, SPI2 = 0x100, 0x101
GRE1, GRE2 = 0x1001, 0x2002
MNP1, MNP2 = "2001:db8:1000::/48", "2001:db8:2000::/48"
HOST1, HOST2 = "2001:db8:1000:1::10", "2001:db8:2000:1::20"
COA1, COA2, COA3 = "2001:db8:a::100", "2001:db8:b::100", "2001:db8:c::100"
COA4 = "192.0.2.10"

ROUTERS = {
    "mr1": {"name": "mr1", "home_address": HOA1, "prefixes": [MNP1], "spi": SPI1,
            "key": KEY1.hex(), "gre_key": GRE1},
    "mr2": {"name": "mr2", "home_address": HOA2, "prefixes": [MNP2], "spi": SPI2,
            "key": KEY2.hex(), "gre_key": GRE2, "policy": "priority"},
}
UNKNOWN_HOA = "2001:db8:ffff::999"  # on the home prefix, but no mobile router's
KEYS = {HOA1: KEY1, HOA2: KEY2, UNKNOWN_HOA: KEY1}
SPIS = {HOA1: SPI1, HOA2: SPI2, UNKNOWN_HOA: SPI1}

AHR = int(BuFlag.A | BuFlag.H | BuFlag.R)
NOW0, WALL0 = 1000.0, 1_700_000_000.0
LIFETIME = 25  # units of 4 s: 100 s


def make_config(routers: Sequence[str] = ("mr1", "mr2"), next_hop_mac: Optional[str] =
                NEXT_HOP_MAC, extra_routers: Sequence[Dict[str, Any]] = ()
                ) -> HomeAgentConfig:
    upstream: Dict[str, Any] = {"next_hop": NEXT_HOP}
    if next_hop_mac is not None:
        upstream["next_hop_mac"] = next_hop_mac
    return parse_config({
        "home_agent": {"addresses": [HA], "ipv4_address": HA4,
                       "home_prefixes": ["2001:db8:ffff::/64"]},
        "datapath": {"uplink_port": "uplink", "tunnel_port": "gre0"},
        "upstream": upstream,
        "limits": {"max_lifetime": 600, "max_care_of_addresses": 4, "replay_window": 7},
        "mobile_routers": [ROUTERS[name] for name in routers] + list(extra_routers),
    }, "test-core.yaml")


# -- frames -------------------------------------------------------------------------------
def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def ethernet(ip_packet: bytes, src: str = PEER_MAC, dst: str = LOCAL_MAC) -> bytes:
    ethertype = b"\x86\xdd" if ip_packet[0] >> 4 == 6 else b"\x08\x00"
    return mac_bytes(dst) + mac_bytes(src) + ethertype + ip_packet


def bid(number: int, coa: Optional[str] = None, priority: int = 1) -> mip6.BindingIdentifier:
    address = ipaddress.ip_address(coa) if coa is not None else None
    return mip6.BindingIdentifier(number, 0, priority, False, address)


def mnp(prefix: str) -> mip6.MobileNetworkPrefix:
    net = ipaddress.IPv6Network(prefix)
    return mip6.MobileNetworkPrefix(net.network_address, net.prefixlen)


def na_frame(target: str = NEXT_HOP, mac: str = NEXT_HOP_MAC, dst: str = HA) -> bytes:
    """A solicited Neighbor Advertisement for ``target`` with its link-layer address."""
    src_ip, dst_ip = IPv6Address(target), IPv6Address(dst)
    icmp = bytearray(struct.pack("!BBHI", 136, 0, 0, 0x60000000) + src_ip.packed
                     + b"\x02\x01" + mac_bytes(mac))
    struct.pack_into("!H", icmp, 2, internet_checksum(
        pseudo_header(src_ip, dst_ip, len(icmp), 58) + icmp))
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + src_ip.packed + dst_ip.packed
    return mac_bytes(LOCAL_MAC) + mac_bytes(mac) + b"\x86\xdd" + ip6 + bytes(icmp)


# -- packets through the fake switch ------------------------------------------------------
def down(dst: str) -> Dict[str, Any]:
    """A correspondent's packet to the mobile network, arriving on the uplink."""
    return {"in_port": UP, "eth_type": 0x86DD, "ipv6_src": CN, "ipv6_dst": dst, "ip_proto": 6}


def up(key: int, care_of: str, src: str, dst: str = CN) -> Dict[str, Any]:
    """A decapsulated packet of a mobile router arriving from the tunnel port."""
    return {"in_port": TUN, "eth_type": 0x86DD, "tunnel_id": key, "tun_ipv6_src": care_of,
            "tun_ipv6_dst": HA, "ipv6_src": src, "ipv6_dst": dst, "ip_proto": 6}


# -- the app's part -----------------------------------------------------------------------
class Rig:
    """A core, a fake switch and a fake clock: does what ``home_agent.py`` does."""

    def __init__(self, config: Optional[HomeAgentConfig] = None,
                 switch: Optional[FakeSwitch] = None, now: float = NOW0,
                 wall: float = WALL0) -> None:
        self.config = config or make_config()
        self.core = HomeAgentCore(self.config)
        self.switch = switch or FakeSwitch(tunnel_port=TUN, drop_reasons=DROP_REASONS)
        self.now, self.wall = now, wall

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds
        self.wall += seconds

    def start(self, ready: bool = True) -> Work:
        """Switch connected: reconcile to what it holds, apply, confirm, ready."""
        self.core.connected(PORTS)
        work = self.core.reconcile(copy.deepcopy(self.switch.state))
        self.switch.apply(work.changes)
        frames, follow = self.core.confirmed(work, self.now)
        assert (frames, follow) == ([], [])
        self.core.ready = ready
        return work

    def bu_frame(self, seq: int, coa: str = COA1, hoa: str = HOA1, lifetime: int = LIFETIME,
                 options: Sequence[mip6.MobilityOption] = (), flags: int = AHR,
                 dsmip: bool = False) -> bytes:
        """A signed BU with the sender's clock as replay timestamp (wall must advance)."""
        message = mip6.BindingUpdate(seq, flags, lifetime, list(options) + [
            mip6.ReplayProtection(mip6.ntp_from_unix(self.wall)),
            mip6.Authentication(SPIS[hoa])])
        if dsmip:
            message.options.insert(0, mip6.IPv4CareOfAddress(ipaddress.IPv4Address(coa)))
            packet = dsmip_packet(message, src=hoa, dst=HA, src4=coa, dst4=HA4)
        else:
            packet = bu_packet(message, coa, hoa, HA)
        return ethernet(packet.encode(auth=mip6.MnHaKey(KEYS[hoa], coa, hoa)))

    def packet_in(self, frame: bytes, port: int = UP) -> List[Work]:
        works = self.core.packet_in(frame, port, self.now, self.wall)
        assert all(isinstance(w, Work) for w in works)
        return works

    def send(self, seq: int, **kw: Any) -> Work:
        """Tick one second and send a BU that yields exactly one Work."""
        self.tick()
        works = self.packet_in(self.bu_frame(seq, **kw))
        assert len(works) == 1, works
        return works[0]

    def confirm(self, work: Work) -> Tuple[List[Frame], List[Work]]:
        """The switch takes the work's changes; the barrier reply confirms them."""
        self.switch.apply(work.changes)
        return self.core.confirmed(work, self.now)

    def register(self, seq: int, **kw: Any) -> mip6.BindingAcknowledgement:
        """Send a BU, carry out its work and return the (accepting) BA."""
        work = self.send(seq, **kw)
        frames, follow = self.confirm(work)
        assert follow == []
        (frame,) = frames
        ba = ba_of(frame, kw.get("hoa", HOA1))
        assert ba.status < 128, mip6.status_name(ba.status)
        return ba


def ba_of(frame: Frame, hoa: str = HOA1) -> mip6.BindingAcknowledgement:
    """Decode a BA frame, checking its checksum and MN-HA authenticator."""
    reply = decode_frame(frame.data)
    assert isinstance(reply.message, mip6.BindingAcknowledgement), reply.message
    assert reply.checksum_ok()
    auth = reply.message.options[-1]
    assert isinstance(auth, mip6.Authentication) and auth.spi == SPIS[hoa]
    assert reply.authenticator_ok(reply.auth_key(KEYS[hoa]))
    return reply.message


def flows_of(switch: FakeSwitch, text: str) -> int:
    """How many installed flows mention ``text`` in their match."""
    return sum(1 for f in switch.state.flows.values()
               if any(text in str(value) for _, value in f.match))


@pytest.fixture
def rig() -> Rig:
    rig = Rig()
    rig.start()
    return rig


# -- 1. start-up and a first registration -------------------------------------------------
def test_startup_installs_the_base_pipeline():
    rig = Rig()
    work = rig.start(ready=False)
    assert work.router is None and len(work.changes) > 0
    assert rig.switch.state == rig.core.desired()
    assert rig.core.installed.flows == {k: f for k, f in rig.switch.state.flows.items()
                                        if f.cookie == BASE_COOKIE}
    assert rig.core.installed.meters == rig.switch.state.meters
    bu = {"in_port": UP, "eth_type": 0x86DD, "ip_proto": 135, "ipv6_src": COA1,
          "ipv6_dst": HA}
    assert rig.switch.outputs(bu) == {CONTROLLER}
    assert rig.switch.dropped_by(down(HOST1)) == "no binding for destination"
    # A second reconcile against what the switch now holds sends nothing.
    assert len(rig.core.reconcile(copy.deepcopy(rig.switch.state)).changes) == 0


def test_a_binding_update_is_installed_before_its_ba_leaves(rig):
    rig.tick()
    frame = rig.bu_frame(1)
    works = rig.packet_in(frame, port=UP)
    assert len(works) == 1
    (work,) = works
    assert work.router == "mr1" and len(work.changes) > 0
    assert rig.core.cache.get(IPv6Address(HOA1)) is None  # not before the switch has it
    assert rig.switch.dropped_by(down(HOST1)) == "no binding for destination"

    rig.switch.apply(work.changes)
    for dst in (HOST1, HOA1):
        assert rig.switch.tunnel_destinations(down(dst)) == {(COA1, GRE1)}
    (out,) = rig.switch.process(up(GRE1, COA1, HOST1))
    assert out.port == UP and out.packet["eth_dst"] == NEXT_HOP_MAC
    assert rig.core.cache.get(IPv6Address(HOA1)) is None  # still not confirmed

    frames, follow = rig.core.confirmed(work, rig.now + 0.01)
    assert follow == []
    (ba_frame,) = frames
    assert ba_frame.port == UP
    assert ba_frame.data[0:6] == frame[6:12] == mac_bytes(PEER_MAC)  # back to the sender
    assert ba_frame.data[6:12] == frame[0:6] == mac_bytes(LOCAL_MAC)  # from where it went
    assert ba_frame.data[12:14] == b"\x86\xdd"
    reply = decode_frame(ba_frame.data)
    assert (reply.src, reply.dst, reply.routing_home_address) == (
        IPv6Address(HA), IPv6Address(COA1), IPv6Address(HOA1))
    ba = ba_of(ba_frame)
    assert (ba.status, ba.sequence, ba.lifetime) == (0, 1, LIFETIME)
    entry = rig.core.cache.get(IPv6Address(HOA1))
    assert entry is not None and [str(b.care_of) for b in entry.care_of] == [COA1]
    assert rig.core.dirty
    assert rig.core.counters.statuses == {"ACCEPTED": 1}


def test_a_bu_on_another_port_is_answered_out_of_that_port(rig):
    rig.tick()
    work, = rig.packet_in(rig.bu_frame(1), port=7)
    frames, _ = rig.confirm(work)
    assert [f.port for f in frames] == [7]


def test_a_dsmipv6_bu_gets_an_ipv4_ba_and_an_ipv4_tunnel(rig):
    work = rig.send(1, coa=COA4, dsmip=True)
    frames, _ = rig.confirm(work)
    (frame,) = frames
    assert frame.data[12:14] == b"\x08\x00"
    reply = decode_frame(frame.data)
    assert reply.udp is not None and str(reply.udp.dst) == COA4
    assert ba_of(frame).status == 0
    (out,) = [o for o in rig.switch.process(down(HOST1)) if o.port == TUN]
    assert out.packet["tun_ipv4_dst"] == COA4 and out.packet["tunnel_id"] == GRE1


def test_a_rejected_bu_has_no_changes_and_its_ba_follows_at_once(rig):
    work = rig.send(1, hoa=UNKNOWN_HOA)
    assert len(work.changes) == 0 and work.new_entry is None
    frames, follow = rig.core.confirmed(work, rig.now)
    reply = decode_frame(frames[0].data)
    assert reply.message.status == BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE
    assert follow == [] and len(rig.core.cache) == 0
    rig.tick()
    assert rig.packet_in(rig.bu_frame(1, hoa=UNKNOWN_HOA)) != []  # never queued


# -- 2. one change in flight per mobile router --------------------------------------------
def test_a_second_bu_of_a_busy_router_waits_for_the_first(rig):
    first = rig.send(1)
    rig.tick()
    assert rig.packet_in(rig.bu_frame(2, coa=COA2)) == []  # queued behind the first
    # Another mobile router is not held back.
    other = rig.send(1, hoa=HOA2, coa=COA3)
    assert other.router == "mr2" and len(other.changes) > 0
    frames, follow = rig.confirm(other)
    assert ba_of(frames[0], HOA2).status == 0 and follow == []

    rig.tick()
    frames, follow = rig.confirm(first)
    assert ba_of(frames[0]).sequence == 1
    (second,) = follow  # the queued BU, handled against the committed cache
    assert second.router == "mr1" and second.verdict.status == 0
    assert [str(b.care_of) for b in second.old_entry.care_of] == [COA1]
    assert rig.packet_in(rig.bu_frame(3, coa=COA3)) == []  # busy again: queued again
    frames, follow = rig.confirm(second)
    ba = ba_of(frames[0])
    assert (ba.status, ba.sequence) == (0, 2)
    assert rig.switch.tunnel_destinations(down(HOST1)) == {(COA2, GRE1)}
    (third,) = follow
    frames, follow = rig.confirm(third)
    assert ba_of(frames[0]).sequence == 3 and follow == []
    assert rig.switch.tunnel_destinations(down(HOST1)) == {(COA3, GRE1)}
    assert rig.switch.tunnel_destinations(down(HOST2)) == {(COA3, GRE2)}


def test_queued_bus_are_released_in_order_past_rejected_ones(rig):
    first = rig.send(1)
    rig.tick()
    assert rig.packet_in(rig.bu_frame(1, coa=COA2)) == []  # stale sequence: will be 135
    rig.tick()
    assert rig.packet_in(rig.bu_frame(5, coa=COA2)) == []
    _, follow = rig.confirm(first)
    assert [w.verdict.status for w in follow] == [BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW, 0]
    stale, fresh = follow
    assert len(stale.changes) == 0 and len(fresh.changes) > 0
    frames, _ = rig.core.confirmed(stale, rig.now)
    assert ba_of(frames[0]).status == BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW
    frames, follow = rig.confirm(fresh)
    assert ba_of(frames[0]).sequence == 5 and follow == []


def test_a_queued_bu_is_counted_once(rig):
    first = rig.send(1)
    rig.tick()
    assert rig.packet_in(rig.bu_frame(2, coa=COA2)) == []
    _, follow = rig.confirm(first)
    assert len(follow) == 1
    assert rig.core.counters.packet_ins["BindingUpdate"] == 2


# -- 3. the switch refuses ----------------------------------------------------------------
@pytest.mark.parametrize("explicit, status", [
    (False, BaStatus.FORWARDING_SETUP_FAILED), (True, BaStatus.INVALID_PREFIX)],
    ids=["implicit-143", "explicit-141"])
def test_a_refused_change_answers_with_a_signed_failure(rig, explicit, status):
    rig.register(1)
    before = rig.core.cache.get(IPv6Address(HOA1))
    options = [mnp(MNP1)] if explicit else []
    work = rig.send(2, coa=COA2, options=options)
    assert work.new_entry.explicit is explicit
    accepted_before = rig.core.counters.statuses["ACCEPTED"]
    frames, follow = rig.core.failed(work, "OFPET_BAD_ACTION", rig.now)
    assert follow == []
    (frame,) = frames
    assert frame.port == UP and frame.data[0:6] == mac_bytes(PEER_MAC)
    assert frame.data[6:12] == mac_bytes(LOCAL_MAC)
    ba = ba_of(frame)  # signed, checksum right
    assert (ba.status, ba.sequence, ba.lifetime) == (status, 2, 0)
    assert ba.find(mip6.ReplayProtection) is not None
    reply = decode_frame(frame.data)
    assert reply.dst == IPv6Address(COA2) and reply.routing_home_address == IPv6Address(HOA1)
    assert rig.core.cache.get(IPv6Address(HOA1)) == before
    assert rig.core.counters.switch_errors == 1
    # Counted as the status the router actually got, not as accepted.
    assert rig.core.counters.statuses[mip6.status_name(status)] == 1
    assert rig.core.counters.statuses["ACCEPTED"] == accepted_before
    # The router is free again: its next BU is handled at once.
    assert rig.send(3, coa=COA2).verdict.status == 0


def test_a_refused_change_releases_the_queued_bus(rig):
    first = rig.send(1)
    rig.tick()
    assert rig.packet_in(rig.bu_frame(2)) == []
    frames, follow = rig.core.failed(first, "error", rig.now)
    assert decode_frame(frames[0].data).message.status == BaStatus.FORWARDING_SETUP_FAILED
    assert rig.core.cache.get(IPv6Address(HOA1)) is None
    (retry,) = follow  # handled against the unchanged (empty) cache
    assert retry.old_entry is None and retry.verdict.status == 0
    frames, _ = rig.confirm(retry)
    assert ba_of(frames[0]).sequence == 2
    assert rig.switch.tunnel_destinations(down(HOST1)) == {(COA1, GRE1)}


# -- 4. a refresh -------------------------------------------------------------------------
def test_a_refresh_with_the_same_care_of_address_changes_nothing_on_the_switch(rig):
    rig.register(1, options=[bid(1)])
    before = rig.core.cache.get(IPv6Address(HOA1)).care_of[0]
    messages = rig.switch.messages
    rig.tick(40)
    work = rig.send(2, options=[bid(1)])
    assert len(work.changes) == 0 and work.router == "mr1"
    rig.tick()
    assert rig.packet_in(rig.bu_frame(3, options=[bid(1)])) == []  # still one in flight
    frames, follow = rig.confirm(work)
    assert ba_of(frames[0]).status == 0 and len(follow) == 1
    after = rig.core.cache.get(IPv6Address(HOA1)).care_of[0]
    assert (after.bid, after.care_of, after.sequence) == (1, before.care_of, 2)
    assert after.expires_at == before.expires_at + 41  # moved by the time between the BUs
    assert after.registered_at == before.registered_at
    assert rig.switch.messages == messages


# -- 5. expiry ----------------------------------------------------------------------------
def test_bindings_expire_one_bucket_then_the_whole_router(rig):
    rig.register(1, options=[bid(1)], coa=COA1, lifetime=25)  # 100 s
    t0 = rig.now
    rig.register(2, options=[bid(2)], coa=COA2, lifetime=50)  # 200 s from t0 + 1
    rig.register(1, hoa=HOA2, coa=COA3, lifetime=150)  # mr2 stays bound throughout
    assert rig.switch.tunnel_destinations(down(HOST1)) == {(COA1, GRE1), (COA2, GRE1)}
    gid = rig.core.group_ids["mr1"]

    assert rig.core.expire(t0 + 90) == []
    (work,) = rig.core.expire(t0 + 100)
    assert work.router == "mr1" and work.verdict is None
    assert [g.group_id for g in work.changes.group_modifies] == [gid]
    assert len(work.changes.group_modifies[0].buckets) == 1
    assert not (work.changes.group_deletes or work.changes.flow_adds)
    assert all(COA1 in str(f.match) for f in work.changes.flow_deletes)
    assert rig.core.expire(t0 + 101) == []  # in flight: not again
    rig.switch.apply(work.changes)
    assert rig.switch.tunnel_destinations(down(HOST1)) == {(COA2, GRE1)}
    assert rig.switch.dropped_by(up(GRE1, COA1, HOST1)) == "unregistered care-of address"
    assert flows_of(rig.switch, COA1) == 0
    frames, follow = rig.core.confirmed(work, t0 + 101)
    assert (frames, follow) == ([], [])
    assert [b.bid for b in rig.core.cache.get(IPv6Address(HOA1)).care_of] == [2]

    assert rig.core.expire(t0 + 200) == []
    (last,) = rig.core.expire(t0 + 201)
    assert [g.group_id for g in last.changes.group_deletes] == [gid]
    assert last.changes.flow_deletes and not last.changes.group_modifies
    rig.switch.apply(last.changes)
    assert gid not in rig.switch.state.groups
    assert rig.switch.dropped_by(down(HOST1)) == "no binding for destination"
    assert rig.switch.dropped_by(down(HOA1)) == "no binding for destination"
    assert rig.switch.dropped_by(up(GRE1, COA2, HOST1)) == "unknown GRE key"
    assert rig.switch.tunnel_destinations(down(HOST2)) == {(COA3, GRE2)}  # mr2 untouched
    rig.core.confirmed(last, t0 + 201)
    assert rig.core.cache.get(IPv6Address(HOA1)) is None
    assert [e.router for e in rig.core.cache] == ["mr2"]
    assert rig.core.expire(t0 + 202) == []
    assert rig.switch.state == rig.core.desired()


def test_expiry_skips_a_router_with_a_change_in_flight(rig):
    rig.register(1)
    expires = rig.core.cache.get(IPv6Address(HOA1)).care_of[0].expires_at
    rig.tick(90)
    refresh = rig.send(2, coa=COA2)
    assert rig.core.expire(expires + 1) == []  # busy: next tick
    rig.core.failed(refresh, "error", expires + 1)  # the refresh did not happen
    (work,) = rig.core.expire(expires + 1)
    rig.switch.apply(work.changes)
    rig.core.confirmed(work, expires + 1)
    assert len(rig.core.cache) == 0
    assert rig.switch.dropped_by(down(HOST1)) == "no binding for destination"


def test_a_bu_arriving_during_an_expiry_waits_and_sees_the_expired_cache(rig):
    rig.register(1)
    expires = rig.core.cache.get(IPv6Address(HOA1)).care_of[0].expires_at
    rig.now, rig.wall = expires, rig.wall + (expires - rig.now)
    (work,) = rig.core.expire(rig.now)
    rig.tick()
    assert rig.packet_in(rig.bu_frame(2, coa=COA2)) == []
    frames, follow = rig.confirm(work)
    assert frames == [] and len(follow) == 1
    (bu,) = follow
    assert bu.old_entry is None  # a new registration after the expiry
    assert [g.group_id for g in bu.changes.group_adds] == [rig.core.group_ids["mr1"]]
    frames, _ = rig.confirm(bu)
    assert ba_of(frames[0]).status == 0
    assert rig.switch.tunnel_destinations(down(HOST1)) == {(COA2, GRE1)}


def test_expiry_waits_for_ready(rig):
    rig.register(1)
    rig.core.ready = False
    assert rig.core.expire(rig.now + 1000) == []


def test_deregistration_removes_the_router(rig):
    rig.register(1)
    work = rig.send(2, lifetime=0)
    assert work.changes.group_deletes
    frames, _ = rig.confirm(work)
    assert ba_of(frames[0]).status == 0
    assert len(rig.core.cache) == 0
    assert rig.switch.dropped_by(down(HOST1)) == "no binding for destination"
    assert rig.switch.state == rig.core.desired()


# -- 6. restart ---------------------------------------------------------------------------
def _bound_rig() -> Rig:
    rig = Rig()
    rig.start()
    rig.register(1, options=[bid(1, priority=2)])
    rig.register(2, coa=COA2, options=[bid(2, priority=1)])
    rig.register(1, hoa=HOA2, coa=COA3, options=[bid(1)])
    rig.register(2, hoa=HOA2, coa=COA4, dsmip=True, options=[bid(2)], lifetime=50)
    return rig


def _restart(rig: Rig, tmp_path, config: HomeAgentConfig, now: float, wall: float
             ) -> HomeAgentCore:
    path = str(tmp_path / "ha-state.json")
    statefile.save(path, list(rig.core.cache), rig.core.handler.last_timestamps,
                   rig.core.next_hop_mac, rig.now, rig.wall, rig.core.group_ids)
    core = HomeAgentCore(config)
    core.restore(*statefile.load(path, now, wall), statefile.load_group_ids(path))
    core.connected(PORTS)
    return core


def test_a_restarted_home_agent_sends_nothing(tmp_path):
    rig = _bound_rig()
    messages = rig.switch.messages
    # The new process has another monotonic clock; 3 s passed on the wall clock.
    core = _restart(rig, tmp_path, make_config(), now=5.0, wall=rig.wall + 3)
    assert [(e.router, len(e.care_of)) for e in core.cache] == [("mr1", 2), ("mr2", 2)]
    work = core.reconcile(copy.deepcopy(rig.switch.state))
    assert len(work.changes) == 0
    assert rig.switch.messages == messages
    core.confirmed(work, 5.0)
    core.ready = True
    remaining = {(b["bid"], b["remaining"]) for e in core.status(5.0)["bindings"]
                 for b in e["care_of"] if e["router"] == "mr1"}
    assert remaining == {(1, LIFETIME * 4 - 3 - 3), (2, LIFETIME * 4 - 2 - 3)}
    # Expiry runs on the new process's clock.
    assert core.expire(5.0 + 93.5) == []
    (expiry,) = core.expire(5.0 + 94)
    assert expiry.router == "mr1" and [b.bid for b in expiry.new_entry.care_of] == [2]
    core.failed(expiry, "not carried out in this test", 5.0 + 94)
    # The replay state came along: a fresh sequence with mr1's last accepted timestamp
    # (from its BU at WALL0 + 2) is refused as a replay.
    rig.wall = WALL0 + 2
    stale = rig.bu_frame(3, coa=COA2, options=[bid(2, priority=1)])
    rig.wall = WALL0 + 4
    (reply,) = core.packet_in(stale, UP, 6.0, rig.wall + 4)
    assert reply.verdict.status == BaStatus.MIPV6_MESG_ID_REQD and len(reply.changes) == 0


def test_a_router_dropped_from_the_configuration_is_removed_after_a_restart(tmp_path):
    rig = _bound_rig()
    gid = rig.core.group_ids["mr2"]
    core = _restart(rig, tmp_path, make_config(routers=("mr1",)), now=5.0,
                    wall=rig.wall + 3)
    assert [e.router for e in core.cache] == ["mr1"]
    work = core.reconcile(copy.deepcopy(rig.switch.state))
    assert [g.group_id for g in work.changes.group_deletes] == [gid]
    assert not (work.changes.flow_adds or work.changes.flow_modifies
                or work.changes.group_adds or work.changes.group_modifies)
    rig.switch.apply(work.changes)
    assert rig.switch.dropped_by(down(HOST2)) == "no binding for destination"
    assert rig.switch.dropped_by(up(GRE2, COA3, HOST2)) == "unknown GRE key"
    assert rig.switch.tunnel_destinations(down(HOST1)) == {(COA1, GRE1), (COA2, GRE1)}
    assert rig.switch.state == core.desired()


def test_expired_bindings_are_not_restored(tmp_path):
    rig = _bound_rig()
    # 150 s later every binding but mr2's DSMIPv6 one (200 s) has expired.
    core = _restart(rig, tmp_path, make_config(), now=5.0, wall=rig.wall + 150)
    assert [(e.router, [b.bid for b in e.care_of]) for e in core.cache] == [("mr2", [2])]
    work = core.reconcile(copy.deepcopy(rig.switch.state))
    rig.switch.apply(work.changes)
    assert rig.switch.dropped_by(down(HOST1)) == "no binding for destination"
    assert rig.switch.tunnel_destinations(down(HOST2)) == {(COA4, GRE2)}
    assert rig.switch.state == core.desired()


def test_adding_a_colliding_router_keeps_a_restart_hitless(tmp_path, monkeypatch):
    monkeypatch.setattr(zlib, "crc32", lambda data: 7)  # every name collides
    rig = Rig(make_config(routers=("mr1",)))
    monkeypatch.undo()
    rig.start()
    rig.register(1)
    newcomer = dict(ROUTERS["mr2"], name="mr0", home_address="2001:db8:ffff::50",
                    prefixes=["2001:db8:5000::/48"], spi=0x150, gre_key=0x5005)
    monkeypatch.setattr(zlib, "crc32", lambda data: 7)
    config = make_config(routers=("mr1",), extra_routers=[newcomer])
    core = _restart(rig, tmp_path, config, now=5.0, wall=rig.wall + 1)
    monkeypatch.undo()
    assert len(core.reconcile(copy.deepcopy(rig.switch.state)).changes) == 0


# -- 7. the next hop ----------------------------------------------------------------------
def test_the_next_hop_is_resolved_by_neighbour_discovery():
    rig = Rig(make_config(next_hop_mac=None))
    rig.start(ready=False)
    assert rig.core.neighbor_solicitation() is None  # not before ready
    rig.core.ready = True
    rig.register(1)
    assert rig.switch.dropped_by(up(GRE1, COA1, HOST1)) == "next hop unresolved"

    ns = rig.core.neighbor_solicitation()
    assert ns is not None and ns.port == UP
    data = ns.data
    group = IPv6Address("ff02::1:ff00:fe")  # solicited-node group of ...::fe
    assert data[0:6] == b"\x33\x33" + group.packed[12:]
    assert mac_text(data[6:12]) == LOCAL_MAC and data[12:14] == b"\x86\xdd"
    ip6, icmp = data[14:54], data[54:]
    assert ip6[6] == 58 and ip6[7] == 255  # ICMPv6, hop limit 255
    assert IPv6Address(ip6[8:24]) == IPv6Address(HA) and IPv6Address(ip6[24:40]) == group
    assert icmp[0] == 135 and IPv6Address(icmp[8:24]) == IPv6Address(NEXT_HOP)
    assert icmp[24:26] == b"\x01\x01" and mac_text(icmp[26:32]) == LOCAL_MAC
    assert internet_checksum(pseudo_header(IPv6Address(HA), group, len(icmp), 58)
                             + icmp) == 0

    (work,) = rig.packet_in(na_frame())
    assert work.router is None and len(work.changes) > 0
    rig.switch.apply(work.changes)
    assert rig.core.confirmed(work, rig.now) == ([], [])
    (out,) = rig.switch.process(up(GRE1, COA1, HOST1))
    assert out.port == UP
    assert out.packet["eth_dst"] == NEXT_HOP_MAC and out.packet["eth_src"] == LOCAL_MAC
    assert rig.core.next_hop_mac == NEXT_HOP_MAC and rig.core.dirty
    assert rig.switch.tunnel_destinations(down(HOST1)) == {(COA1, GRE1)}  # untouched
    # Advertisements no longer reach the controller; the switch is what the core wants.
    na = {"in_port": UP, "eth_type": 0x86DD, "ip_proto": 58, "icmpv6_type": 136,
          "ipv6_src": NEXT_HOP, "ipv6_dst": HA}
    assert CONTROLLER not in rig.switch.outputs(na)
    assert rig.switch.state == rig.core.desired()
    assert rig.packet_in(na_frame()) == []  # the same again: nothing to do
    assert rig.core.neighbor_solicitation() is None
    assert rig.core.counters.packet_ins["neighbor advertisement"] == 2


def test_an_advertisement_with_a_bad_checksum_is_ignored():
    rig = Rig(make_config(next_hop_mac=None))
    rig.start()
    frame = bytearray(na_frame())
    frame[56] ^= 0x01  # the ICMPv6 checksum
    assert rig.packet_in(bytes(frame)) == []
    assert rig.core.next_hop_mac is None


def test_advertisements_of_other_nodes_or_with_a_configured_mac_are_ignored(rig):
    assert rig.core.neighbor_solicitation() is None  # next_hop_mac configured
    assert rig.packet_in(na_frame(mac="02:00:00:00:00:77")) == []
    assert rig.core.next_hop_mac == NEXT_HOP_MAC
    unresolved = Rig(make_config(next_hop_mac=None))
    unresolved.start()
    assert unresolved.packet_in(na_frame(target="2001:db8:ffff::77")) == []
    assert unresolved.core.next_hop_mac is None


def test_a_moved_next_hop_is_followed():
    rig = Rig(make_config(next_hop_mac=None))
    rig.start()
    for mac in (NEXT_HOP_MAC, "02:00:00:00:00:fd"):
        (work,) = rig.packet_in(na_frame(mac=mac))
        rig.confirm(work)
        rig.register(1 if mac == NEXT_HOP_MAC else 2)
        (out,) = rig.switch.process(up(GRE1, COA1, HOST1))
        assert out.packet["eth_dst"] == mac
    assert rig.switch.state == rig.core.desired()


# -- 8. malformed and unexpected frames ---------------------------------------------------
def test_packet_ins_before_ready_are_counted_and_ignored():
    rig = Rig()
    rig.start(ready=False)
    rig.tick()
    assert rig.packet_in(rig.bu_frame(1)) == []
    assert rig.packet_in(na_frame()) == []
    assert rig.core.counters.packet_ins == {"before ready": 2}
    assert len(rig.core.cache) == 0 and rig.core.handler.last_timestamps == {}
    rig.core.ready = True
    assert rig.send(1).verdict.status == 0  # the same BU now counts


def _ba_to_the_ha() -> bytes:
    ba = mip6.BindingAcknowledgement(0, 0, 1, LIFETIME, [])
    return ethernet(SignallingPacket(IPv6Address(COA1), IPv6Address(HA), ba).encode())


@pytest.mark.parametrize("frame, key", [
    (b"", "malformed"),
    (b"\x00" * 13, "malformed"),
    (bytes(range(200)), "malformed"),
    (mac_bytes(LOCAL_MAC) + mac_bytes(PEER_MAC) + b"\x08\x06" + bytes(28), "malformed"),
    (mac_bytes(LOCAL_MAC) + mac_bytes(PEER_MAC) + b"\x86\xdd" + bytes(39), "malformed"),
    ("truncated", "malformed"),
    ("bad-checksum", "dropped: bad checksum"),
    ("ba", "dropped: unexpected BindingAcknowledgement"),
], ids=["empty", "short", "garbage", "arp", "short-ipv6", "truncated-bu", "bad-checksum",
        "ba-to-ha"])
def test_malformed_and_unexpected_frames_make_no_work(rig, frame, key):
    rig.tick()
    if frame == "truncated":
        frame = rig.bu_frame(1)[:-9]
    elif frame == "bad-checksum":
        raw = bytearray(rig.bu_frame(1))
        raw[-1] ^= 0xFF  # inside the authenticator: the checksum no longer adds up
        frame = bytes(raw)
    elif frame == "ba":
        frame = _ba_to_the_ha()
    assert rig.packet_in(frame) == []
    assert rig.core.counters.packet_ins[key] == 1
    assert rig.core.counters.statuses == {}
    assert len(rig.core.cache) == 0 and rig.core._busy == {}


def test_an_unknown_mobility_message_gets_a_binding_error(rig):
    message = mip6.GenericMessage(42, b"\x00" * 2)
    frame = ethernet(SignallingPacket(IPv6Address(COA1), IPv6Address(HA), message).encode())
    (work,) = rig.packet_in(frame)
    assert len(work.changes) == 0 and work.router is None
    frames, _ = rig.core.confirmed(work, rig.now)
    reply = decode_frame(frames[0].data)
    assert isinstance(reply.message, mip6.BindingError) and reply.checksum_ok()
    assert reply.dst == IPv6Address(COA1) and frames[0].data[0:6] == mac_bytes(PEER_MAC)


# -- 9. status and counters ---------------------------------------------------------------
def test_status_lists_bindings_remaining_lifetimes_and_counters(rig):
    rig.register(1, options=[bid(1, priority=3)])
    t_registered = rig.now
    rig.register(1, hoa=HOA2, coa=COA4, dsmip=True)
    rig.packet_in(b"junk")
    rig.core.drop_counters([(f, 4) for f in rig.switch.state.flows.values()])
    status = rig.core.status(t_registered + 10.04)
    assert status["ready"] is True and status["next_hop_mac"] == NEXT_HOP_MAC
    by_router = {b["router"]: b for b in status["bindings"]}
    assert by_router["mr1"] == {
        "router": "mr1", "home_address": HOA1, "prefixes": [MNP1], "mode": "implicit",
        "care_of": [{"bid": 1, "care_of": COA1, "priority": 3,
                     "remaining": LIFETIME * 4 - 10.0}]}
    assert by_router["mr2"]["care_of"] == [{"bid": 0, "care_of": COA4, "priority": 0,
                                            "remaining": LIFETIME * 4 - 9.0}]
    counters = status["counters"]
    assert counters["packet_ins"] == {"BindingUpdate": 2, "malformed": 1}
    assert counters["statuses"] == {"ACCEPTED": 2}
    assert counters["switch_errors"] == 0
    expected = collections.Counter(drop_reason(f) for f in rig.switch.state.flows.values())
    del expected[None]
    assert counters["drops"] == {r: 4 * n for r, n in expected.items()}
    assert counters["drops"]["spoofed inner source"] == 4 * 2  # one flow per care-of address
    assert rig.core.status(t_registered + 500)["bindings"][0]["care_of"][0]["remaining"] == 0
