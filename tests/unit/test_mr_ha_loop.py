"""End to end without a network: the MR's Binding Update List against the REAL home
agent's signalling handler.

Every :class:`~mr_agent.bul.Send` is turned into the packet the agent would send: the
BU with a Replay Protection option (NTP time of a fake wall clock, strictly increasing
per packet as the HA requires) and the MN-HA Authentication option appended, from the
care-of address with the Home Address option (or, for an IPv4 care-of address, inside
IPv4/UDP 4191 to the HA's IPv4 address), signed, encoded and decoded again. The
:class:`~ryu_apps.signalling.SignallingHandler` decides, its verdict is committed (the
switch confirmation being instantaneous here), and the decoded BA goes back to
``BindingUpdateList.on_ack``. Exchanges take no time; BUs returned together are in
flight together (FIFO). The HA's binding expiry (``BindingCache.expire``) runs at every
step of the fake clock.

The mobile router has two uplinks with two care-of addresses each (one of them IPv4):
BID 1 and 2 on isp-a (priority 1), BID 3 and 4 on isp-b (priority 2).
"""

from __future__ import annotations

import collections
import dataclasses
import ipaddress
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import mip6
from mip6.constants import BaStatus
from mip6.packet import bu_packet, decode_packet, dsmip_packet
from mr_agent.bul import BindingUpdateList, Send
from mr_agent.config import parse_config as parse_mr_config
from ryu_apps.bindings import BindingCache, RouterBinding
from ryu_apps.config import parse_config as parse_ha_config
from ryu_apps.signalling import SignallingHandler

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address
IPv6Network = ipaddress.IPv6Network

HA = "2001:db8:ffff::1"
HA4 = "198.51.100.1"
HOA = "2001:db8:ffff::100"
MNP1, MNP2 = "2001:db8:1000::/48", "2001:db8:1100::/48"
KEY = bytes(range(20))
SPI = 0x100
GRE = 0x1001
MAX_LIFETIME = 40  # s granted by the HA (10 units); its refresh advice: 32 s
WALL0 = 1_700_000_000.0
STEP = 0.25

#: BID -> (care-of address, uplink, priority)
CARE_OF: Dict[int, Tuple[Any, str, int]] = {
    1: (IPv6Address("2001:db8:a::100"), "isp-a", 1),
    2: (IPv6Address("2001:db8:a::101"), "isp-a", 1),
    3: (IPv6Address("2001:db8:b::100"), "isp-b", 2),
    4: (IPv4Address("192.0.2.10"), "isp-b", 2),
}


def ha_tree() -> Dict[str, Any]:
    return {
        "home_agent": {"addresses": [HA], "ipv4_address": HA4,
                       "home_prefixes": ["2001:db8:ffff::/64"]},
        "datapath": {"uplink_port": "uplink", "tunnel_port": "gre0"},
        "upstream": {"next_hop": "2001:db8:fffe::1"},
        "limits": {"max_lifetime": MAX_LIFETIME, "max_care_of_addresses": 4,
                   "replay_window": 7},
        "mobile_routers": [{"name": "mr1", "home_address": HOA, "prefixes": [MNP1, MNP2],
                            "spi": SPI, "key": KEY.hex(), "gre_key": GRE}],
    }


def mr_tree(**mr: Any) -> Dict[str, Any]:
    return {
        "mobile_router": {"home_address": HOA, "prefixes": [MNP1, MNP2], "spi": SPI,
                          "key": KEY.hex(), "gre_key": GRE, "lifetime": 600, **mr},
        "home_agents": [HA],
        "home_agent_ipv4": HA4,
        "uplinks": [
            {"name": "isp-a", "interface": "eth0",
             "care_of": [str(CARE_OF[1][0]), str(CARE_OF[2][0])], "priority": 1},
            {"name": "isp-b", "interface": "eth1",
             "care_of": [str(CARE_OF[3][0]), str(CARE_OF[4][0])], "priority": 2},
        ],
    }


@dataclasses.dataclass
class Exchange:
    """One BU delivered to the home agent and its answer."""

    at: float
    send: Send
    status: int


class Loop:
    """A BindingUpdateList wired to a SignallingHandler, one fake clock for both."""

    def __init__(self, next_sequence: int = 0, **mr: Any) -> None:
        self.ha_config = parse_ha_config(ha_tree(), "ha.yaml")
        self.cache = BindingCache()
        self.handler = SignallingHandler(self.ha_config, self.cache)
        self.mr_config = parse_mr_config(mr_tree(**mr), "mr.yaml")
        self.bul = BindingUpdateList(self.mr_config, next_sequence)
        self.now = 0.0
        self.packets = 0
        self.exchanges: List[Exchange] = []

    # -- the wire ----------------------------------------------------------------------------
    def wall(self) -> float:
        return WALL0 + self.now + self.packets * 0.001  # strictly increasing timestamps

    def transmit(self, sends: List[Send]) -> None:
        """Deliver BUs in order; the BUs their answers cause go to the end of the queue."""
        queue = collections.deque(sends)
        while queue:
            queue.extend(self.exchange(queue.popleft()))

    def exchange(self, send: Send) -> List[Send]:
        self.packets += 1
        wall = self.wall()
        home = self.mr_config.home_address
        assert send.home_agent == IPv6Address(HA)
        message = dataclasses.replace(send.message, options=list(send.message.options) + [
            mip6.ReplayProtection(mip6.ntp_from_unix(wall)), mip6.Authentication(SPI)])
        if send.via.version == 4:
            packet = dsmip_packet(message, home, send.home_agent, send.via,
                                  self.ha_config.ipv4_address)
        else:
            packet = bu_packet(message, send.via, home, send.home_agent)
        request = decode_packet(packet.encode(auth=mip6.MnHaKey(KEY, send.via, home)))
        verdict = self.handler.handle(request, self.now, wall)
        assert verdict.action == "reply", verdict.reason
        self.handler.commit(verdict)
        reply = decode_packet(verdict.encoded_reply())
        # the BA goes back to the care-of address the BU came from, signed
        assert reply.checksum_ok()
        if send.via.version == 4:
            assert reply.udp is not None and reply.udp.dst == send.via
        else:
            assert (reply.dst, reply.routing_home_address) == (send.via, home)
        assert reply.authenticator_ok(reply.auth_key(KEY))
        ba = reply.message
        assert isinstance(ba, mip6.BindingAcknowledgement)
        self.exchanges.append(Exchange(self.now, send, ba.status))
        return self.bul.on_ack(ba, self.now)

    # -- the mobile router's side --------------------------------------------------------------
    def add(self, *bids: int, burst: bool = False) -> None:
        """Care-of addresses appear: one at a time, or all before any answer (burst)."""
        sends: List[Send] = []
        for bid in bids:
            coa, uplink, priority = CARE_OF[bid]
            new = self.bul.add_care_of(bid, coa, uplink, priority, self.now)
            if burst:
                sends += new
            else:
                self.transmit(new)
        self.transmit(sends)

    def lose(self, bid: int) -> None:
        self.transmit(self.bul.remove_care_of(bid, self.now))

    def restart(self, next_sequence: int) -> None:
        self.bul = BindingUpdateList(self.mr_config, next_sequence)

    # -- time -----------------------------------------------------------------------------------
    def run_until(self, end: float, mr_ticks: bool = True,
                  check: Optional[Callable[["Loop"], None]] = None) -> None:
        """Advance in fixed steps (robust to a stale next_deadline): HA expiry, MR timers."""
        while self.now < end:
            self.now = min(end, self.now + STEP)
            for old, new in self.cache.expire(self.now):
                self.cache.put(old.home_address, new)
            if mr_ticks:
                self.transmit(self.bul.tick(self.now))
            if check is not None:
                check(self)

    # -- views ----------------------------------------------------------------------------------
    def binding(self) -> Optional[RouterBinding]:
        return self.cache.get(IPv6Address(HOA))

    def ha_bids(self) -> Dict[int, Any]:
        entry = self.binding()
        return {} if entry is None else {b.bid: b.care_of for b in entry.care_of}

    def mr_bids(self) -> List[int]:
        return [e.bid for e in self.bul.usable(self.now)]

    def statuses(self, since: float = -1.0) -> List[int]:
        return [x.status for x in self.exchanges if x.at >= since]


def expected_bids(*bids: int) -> Dict[int, Any]:
    return {bid: CARE_OF[bid][0] for bid in bids}


def registered_loop(burst: bool = False, **mr: Any) -> Loop:
    loop = Loop(**mr)
    loop.add(1, 2, 3, 4, burst=burst)
    return loop


# -- registration --------------------------------------------------------------------------
@pytest.mark.parametrize("burst", [False, True], ids=["one-by-one", "burst"])
@pytest.mark.parametrize("explicit", [False, True], ids=["implicit", "explicit"])
def test_two_uplinks_with_two_care_of_each_all_register(burst: bool, explicit: bool) -> None:
    loop = registered_loop(burst=burst, explicit_prefixes=explicit, downlink_key=0x2002)
    assert loop.statuses() == [0, 0, 0, 0]
    entry = loop.binding()
    assert entry is not None
    assert loop.ha_bids() == expected_bids(1, 2, 3, 4)
    assert {b.bid: b.priority for b in entry.care_of} == {1: 1, 2: 1, 3: 2, 4: 2}
    assert entry.prefixes == (IPv6Network(MNP1), IPv6Network(MNP2))
    assert entry.explicit == explicit and entry.mobile_router
    assert entry.downlink_key == 0x2002
    assert all(b.expires_at == MAX_LIFETIME for b in entry.care_of)  # clipped by the HA
    assert loop.mr_bids() == [1, 2, 3, 4]
    for mr_entry in loop.bul.usable(loop.now):
        assert mr_entry.granted == MAX_LIFETIME
    assert all(e.level != "error" for e in loop.bul.drain_events())


# -- losing care-of addresses --------------------------------------------------------------
@pytest.mark.parametrize("lost", [1, 2, 3, 4])
def test_losing_one_care_of_deregisters_exactly_that_bid(lost: int) -> None:
    loop = registered_loop()
    loop.run_until(5.0)
    before = loop.binding()
    usable_before = {e.bid: e.care_of for e in loop.bul.usable(loop.now)}
    start = len(loop.exchanges)
    loop.lose(lost)
    (dereg,) = loop.exchanges[start:]
    assert dereg.status == 0
    assert dereg.send.bids == (lost,) and dereg.send.message.lifetime == 0
    assert dereg.send.via != CARE_OF[lost][0]  # never through the lost address
    assert dereg.send.via in [coa for bid, coa in usable_before.items() if bid != lost]
    survivors = [b for b in (1, 2, 3, 4) if b != lost]
    assert loop.ha_bids() == expected_bids(*survivors)
    after = loop.binding()
    assert after is not None and before is not None
    # the other bindings are untouched
    assert [b for b in after.care_of] == [b for b in before.care_of if b.bid != lost]
    assert loop.mr_bids() == survivors
    # nothing more about the lost BID: no retry, no re-registration
    loop.run_until(60.0)
    assert all(x.send.bids != (lost,) for x in loop.exchanges[start + 1:])
    assert loop.ha_bids() == expected_bids(*survivors)
    assert loop.mr_bids() == survivors


def test_losing_care_of_addresses_down_to_the_last() -> None:
    """Each loss is signalled through a survivor (the last one over IPv4); the last
    address cannot be de-registered and its binding expires at the HA."""
    loop = registered_loop()
    for step, lost in enumerate((1, 2, 3)):
        loop.run_until(loop.now + 3)
        start = len(loop.exchanges)
        loop.lose(lost)
        (dereg,) = loop.exchanges[start:]
        assert dereg.status == 0 and dereg.send.via == CARE_OF[lost + 1][0]
    assert loop.exchanges[-1].send.via.version == 4  # de-registration over DSMIPv6
    assert loop.ha_bids() == expected_bids(4)
    start = len(loop.exchanges)
    loop.bul.drain_events()
    loop.lose(4)
    assert loop.exchanges[start:] == []
    assert any("no care-of address left" in e.text for e in loop.bul.drain_events())
    assert loop.ha_bids() == expected_bids(4)  # the HA still has it ...
    loop.run_until(loop.now + MAX_LIFETIME)
    assert loop.binding() is None  # ... until it expires
    assert loop.mr_bids() == []


# -- refreshes -----------------------------------------------------------------------------
def agrees(loop: Loop) -> None:
    """Both sides hold all four bindings; the MR never counts on one the HA has dropped."""
    assert loop.ha_bids() == expected_bids(1, 2, 3, 4), loop.now
    assert loop.mr_bids() == [1, 2, 3, 4], loop.now
    ha = {b.bid: b for b in loop.binding().care_of}
    for entry in loop.bul.usable(loop.now):
        assert entry.expires_at <= ha[entry.bid].expires_at


def test_refreshes_keep_the_bindings_alive_across_several_lifetimes() -> None:
    loop = registered_loop()
    loop.run_until(6 * MAX_LIFETIME, check=agrees)
    refreshes = [x for x in loop.exchanges if x.send.purpose == "refresh"]
    # the HA's refresh advice (80 % of 40 s) sets the pace: about every 32 s per BID
    per_bid = collections.Counter(x.send.bids for x in refreshes)
    assert per_bid == {(1,): 7, (2,): 7, (3,): 7, (4,): 7}
    assert set(loop.statuses()) == {0}
    assert all(x.send.purpose in ("register", "refresh") for x in loop.exchanges)
    sequences = [x.send.message.sequence for x in loop.exchanges]
    assert sequences == sorted(set(sequences))


def test_without_refreshes_both_sides_drop_the_bindings_at_expiry() -> None:
    loop = registered_loop()
    loop.run_until(MAX_LIFETIME - STEP, mr_ticks=False)
    assert loop.ha_bids() == expected_bids(1, 2, 3, 4) and len(loop.mr_bids()) == 4
    loop.run_until(MAX_LIFETIME, mr_ticks=False)
    assert loop.binding() is None and loop.mr_bids() == []


# -- restart with a lower sequence number --------------------------------------------------
def test_restart_with_a_lower_sequence_gets_135_once_and_recovers() -> None:
    loop = registered_loop(next_sequence=1000)
    loop.run_until(50.0)
    last = loop.binding().last_sequence
    loop.restart(next_sequence=0)
    restart_at = loop.now
    loop.add(1, 2, 3, 4)
    assert loop.statuses(restart_at).count(BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW) == 1
    assert loop.statuses(restart_at)[0] == BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW
    assert loop.mr_bids() == [1, 2, 3, 4]
    assert loop.ha_bids() == expected_bids(1, 2, 3, 4)
    assert mip6.seq_is_newer(loop.binding().last_sequence, last)
    loop.run_until(loop.now + 3 * MAX_LIFETIME, check=agrees)
    assert loop.statuses(restart_at).count(BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW) == 1
    assert set(loop.statuses(restart_at)[1:]) == {0}


def test_restart_with_all_care_of_addresses_at_once_recovers() -> None:
    """All four BUs are in flight together, so each gets its 135; then all register."""
    loop = registered_loop(next_sequence=1000)
    loop.run_until(50.0)
    loop.restart(next_sequence=0)
    restart_at = loop.now
    loop.add(1, 2, 3, 4, burst=True)
    assert loop.mr_bids() == [1, 2, 3, 4]
    assert loop.ha_bids() == expected_bids(1, 2, 3, 4)
    settled = len(loop.exchanges)
    loop.run_until(loop.now + 3 * MAX_LIFETIME, check=agrees)
    assert set(x.status for x in loop.exchanges[settled:]) == {0}
    assert BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW in loop.statuses(restart_at)


def test_restart_with_all_care_of_addresses_at_once_reuses_no_sequence_number() -> None:
    loop = registered_loop(next_sequence=1000)
    loop.run_until(50.0)
    loop.restart(next_sequence=0)
    start = len(loop.exchanges)
    loop.add(1, 2, 3, 4, burst=True)
    sequences = [x.send.message.sequence for x in loop.exchanges[start:]]
    assert len(sequences) == len(set(sequences)), sequences
    assert loop.statuses(loop.exchanges[start].at).count(
        BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW) <= 4


# -- shutdown ------------------------------------------------------------------------------
@pytest.mark.parametrize("lost_first", [None, 1, 4])
def test_shutdown_removes_everything_at_the_home_agent(lost_first: Optional[int]) -> None:
    loop = registered_loop()
    loop.run_until(40.0)
    if lost_first is not None:
        loop.lose(lost_first)
    start = len(loop.exchanges)
    loop.transmit(loop.bul.shutdown(loop.now))
    (bye,) = loop.exchanges[start:]
    assert bye.status == 0 and bye.send.bids == () and bye.send.message.lifetime == 0
    assert bye.send.via != (CARE_OF[lost_first][0] if lost_first else None)
    assert loop.binding() is None and len(loop.cache) == 0
    assert loop.mr_bids() == []
    loop.run_until(loop.now + 100)
    assert len(loop.exchanges) == start + 1  # nothing after the shutdown
