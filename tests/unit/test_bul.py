"""The mobile router's Binding Update List (``mr_agent.bul.BindingUpdateList``).

A pure state machine driven with a fake clock: every call gets ``now`` explicitly and
the Binding Updates it returns (:class:`~mr_agent.bul.Send`) are inspected, never sent.
Binding Acknowledgements are built with ``mip6`` as the home agent would send them.

What is checked (protocol digest 1.8, 1.10, 1.13, 3.2): the first BU (flags, lifetime
in 4 s units rounded up, BID option with BID-PRI and no CoA field, IPv4 CoA option,
GRE Key option, MNP options only in explicit mode), the retransmission schedule
(1.5 s for a first registration, 1 s for a re-registration, doubling to 32 s, a new
sequence number for every transmission, modulo 2^16), the switch to the next home
agent, every BA status class, refresh and expiry, the loss of a care-of address,
shutdown, ``usable()`` and ``next_deadline()``.

Tests marked ``xfail(strict=True)`` document behaviour that disagrees with the
protocol digest or with the module's own docstring; the reason names the
disagreement.
"""

from __future__ import annotations

import ipaddress
from typing import Any, List, Optional, Sequence

import pytest

import mip6
from mip6.constants import BaStatus, BuFlag
from mip6.packet import bu_packet, decode_packet
from mr_agent.bul import (DEREGISTRATION_TRIES, BindingUpdateList, Send, State)
from mr_agent.config import MobileRouterAgentConfig, parse_config

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address

HOA = "2001:db8:ffff::100"
HA1 = IPv6Address("2001:db8:ffff::1")
HA2 = IPv6Address("2001:db8:ffff::2")
HA4 = "198.51.100.1"
MNP1, MNP2 = "2001:db8:1000::/48", "2001:db8:1100::/48"
COA_A = IPv6Address("2001:db8:a::100")
COA_B = IPv6Address("2001:db8:b::100")
COA_C = IPv6Address("2001:db8:c::100")
COA_4 = IPv4Address("192.0.2.10")
KEY = bytes(range(20))
AHR = int(BuFlag.A | BuFlag.H | BuFlag.R)
T0 = 100.0  # the fake monotonic clock starts here

FIRST_REGISTRATION = [1.5, 3, 6, 12, 24, 32, 32, 32]
RE_REGISTRATION = [1, 2, 4, 8, 16, 32, 32, 32]


def make_config(home_agents: Sequence[str] = (str(HA1),), **mr: Any
                ) -> MobileRouterAgentConfig:
    tree = {
        "mobile_router": {"home_address": HOA, "prefixes": [MNP1, MNP2], "spi": 0x100,
                          "key": KEY.hex(), "gre_key": 0x1001, **mr},
        "home_agents": list(home_agents),
        "home_agent_ipv4": HA4,
        "uplinks": [{"name": "isp-a", "interface": "eth0"},
                    {"name": "isp-b", "interface": "eth1"},
                    {"name": "lte", "interface": "wwan0"}],
    }
    return parse_config(tree, "mr-test.yaml")


def ack(seq: int, bid: Optional[int] = None, status: int = 0, lifetime: int = 150,
        refresh: Optional[int] = None, bid_status: int = 0) -> mip6.BindingAcknowledgement:
    """A BA as the home agent sends it (lifetime and BRA in units of 4 s)."""
    options: List[mip6.MobilityOption] = []
    if refresh is not None:
        options.append(mip6.BindingRefreshAdvice(refresh))
    if bid is not None:
        options.append(mip6.BindingIdentifier(bid, bid_status))
    flags = 0x40 if status < 128 else 0
    return mip6.BindingAcknowledgement(status, flags, seq, lifetime, options)


def one(sends: List[Send]) -> Send:
    assert len(sends) == 1, sends
    return sends[0]


def registered(bul: BindingUpdateList, bid: int, coa: Any, uplink: str = "isp-a",
               priority: int = 1, now: float = T0, lifetime: int = 150) -> Send:
    """Add a care-of address and acknowledge its first BU at once."""
    send = one(bul.add_care_of(bid, coa, uplink, priority, now))
    assert bul.on_ack(ack(send.message.sequence, bid, lifetime=lifetime), now) == []
    return send


def option_types(message: mip6.BindingUpdate) -> List[type]:
    return [type(o) for o in message.options]


def levels(bul: BindingUpdateList) -> List[str]:
    return [e.level for e in bul.drain_events()]


STEP = 0.25


def transmissions_until(bul: BindingUpdateList, start: float, end: float) -> List[Send]:
    """Drive tick() at every deadline after ``start`` up to ``end``; what it sent.

    A deadline that is not in the future (next_deadline() can return a stale refresh
    time, see test_next_deadline_after_a_refresh_is_in_the_future) advances the clock
    by STEP instead, so that the loop always ends.
    """
    sends: List[Send] = []
    now = start
    while True:
        deadline = bul.next_deadline()
        if deadline is None:
            return sends
        now = deadline if deadline > now else now + STEP
        if now > end:
            return sends
        sends += bul.tick(now)


# -- the first Binding Update ------------------------------------------------------------
@pytest.mark.parametrize("lifetime,units", [(600, 150), (601, 151), (603, 151), (4, 1),
                                            (5, 2), (0xFFFF * 4, 0xFFFF)])
def test_first_registration_binding_update(lifetime: int, units: int) -> None:
    bul = BindingUpdateList(make_config(lifetime=lifetime))
    send = one(bul.add_care_of(7, COA_A, "isp-a", 3, T0))
    assert (send.via, send.home_agent, send.bids, send.purpose) == (COA_A, HA1, (7,),
                                                                    "register")
    bu = send.message
    assert isinstance(bu, mip6.BindingUpdate)
    assert bu.flags == AHR  # A, H and R, nothing else
    assert bu.lifetime == units  # 4 s units, rounded up
    # one BID option with BID-PRI, no CoA field (the packet source is the CoA), and
    # nothing else: implicit mode, no downlink key
    assert bu.options == [mip6.BindingIdentifier(7, 0, 3, False, None)]
    # it encodes and decodes as a signalling packet from that CoA
    packet = bu_packet(bu, send.via, HOA, send.home_agent)
    assert decode_packet(packet.encode()).message.binding_ids == bu.options
    assert bul.entries[7].state == State.REGISTERING
    assert not bul.usable(T0)
    assert bul.drain_events()[0].level == "info"


def test_ipv4_care_of_adds_the_ipv4_care_of_address_option() -> None:
    bul = BindingUpdateList(make_config())
    bu = one(bul.add_care_of(2, COA_4, "isp-b", 1, T0)).message
    assert bu.find(mip6.IPv4CareOfAddress) == mip6.IPv4CareOfAddress(COA_4)
    (bid_option,) = bu.binding_ids
    assert (bid_option.bid, bid_option.care_of_address) == (2, None)


def test_downlink_key_adds_a_gre_key_option() -> None:
    bul = BindingUpdateList(make_config(downlink_key=0x2002))
    bu = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0)).message
    assert bu.find_all(mip6.GreKey) == [mip6.GreKey(0x2002)]
    assert BindingUpdateList(make_config()).add_care_of(1, COA_A, "isp-a", 1, T0)[0] \
        .message.find(mip6.GreKey) is None


def test_explicit_mode_sends_every_prefix() -> None:
    bul = BindingUpdateList(make_config(explicit_prefixes=True))
    bu = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0)).message
    assert [o.network for o in bu.prefixes] == [ipaddress.IPv6Network(MNP1),
                                               ipaddress.IPv6Network(MNP2)]
    assert len(bu.binding_ids) == 1


def test_implicit_mode_sends_no_prefix() -> None:
    bul = BindingUpdateList(make_config(explicit_prefixes=False))
    assert one(bul.add_care_of(1, COA_A, "isp-a", 1, T0)).message.prefixes == []


def test_adding_the_same_care_of_twice_sends_once() -> None:
    bul = BindingUpdateList(make_config())
    one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    assert bul.add_care_of(1, COA_A, "isp-a", 1, T0 + 0.5) == []


def test_a_new_care_of_for_a_bid_registers_it_again() -> None:
    bul = BindingUpdateList(make_config())
    registered(bul, 1, COA_A)
    send = one(bul.add_care_of(1, COA_C, "isp-a", 1, T0 + 5))
    assert send.via == COA_C and send.bids == (1,)


# -- retransmission ----------------------------------------------------------------------------
def schedule(bul: BindingUpdateList, first: Send, start: float, count: int
             ) -> List[float]:
    """Intervals between the next ``count`` retransmissions, checking each one."""
    times, sends = [start], [first]
    for _ in range(count):
        deadline = bul.entries[first.bids[0]].retransmit_at
        assert deadline is not None
        assert bul.tick(deadline - 0.01) == []  # nothing early
        send = one(bul.tick(deadline))
        assert send.purpose == "retransmit"
        assert (send.via, send.bids, send.home_agent) == (first.via, first.bids,
                                                          first.home_agent)
        times.append(deadline)
        sends.append(send)
    sequences = [s.message.sequence for s in sends]
    assert all(b == mip6.seq_add(a, 1) for a, b in zip(sequences, sequences[1:])), sequences
    assert len(set(sequences)) == len(sequences)  # a new sequence number every time
    return [round(b - a, 6) for a, b in zip(times, times[1:])]


def test_first_registration_retransmission_schedule() -> None:
    bul = BindingUpdateList(make_config())  # one home agent: it is never switched
    first = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    assert schedule(bul, first, T0, len(FIRST_REGISTRATION)) == FIRST_REGISTRATION
    assert not bul.usable(T0 + 200)


def test_re_registration_retransmission_schedule() -> None:
    bul = BindingUpdateList(make_config())
    registered(bul, 1, COA_A, lifetime=0xFFFF)  # far expiry: only retransmissions matter
    refresh_at = bul.entries[1].refresh_at
    assert refresh_at == pytest.approx(T0 + 0.95 * 0xFFFF * 4)
    refresh = one(bul.tick(refresh_at))
    assert refresh.purpose == "refresh"
    intervals = schedule(bul, refresh, refresh_at, len(RE_REGISTRATION))
    assert intervals == RE_REGISTRATION
    assert bul.usable(refresh_at + sum(RE_REGISTRATION))  # still within the lifetime


@pytest.mark.parametrize("start", [65534, 65535])
def test_sequence_numbers_wrap_modulo_2_16(start: int) -> None:
    bul = BindingUpdateList(make_config(), next_sequence=start)
    first = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    schedule(bul, first, T0, 4)  # consecutive modulo 2^16 and all distinct
    second = one(bul.add_care_of(2, COA_B, "isp-b", 2, T0 + 50))
    assert second.message.sequence == mip6.seq_add(bul.entries[1].sequence, 1) \
        == bul.sequence
    assert all(0 <= s < 65536 for s in (first.message.sequence, second.message.sequence))


@pytest.mark.parametrize("start", [0, 65535])
def test_first_bu_uses_next_sequence(start: int) -> None:
    bul = BindingUpdateList(make_config(), next_sequence=start)
    first = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    assert first.message.sequence == start
    assert one(bul.tick(T0 + 1.5)).message.sequence == mip6.seq_add(start, 1)


# -- switching home agents ----------------------------------------------------------------------
def test_three_unanswered_transmissions_switch_to_the_second_home_agent() -> None:
    bul = BindingUpdateList(make_config(home_agents=[str(HA1), str(HA2)]))
    sends = bul.add_care_of(1, COA_A, "isp-a", 1, T0)
    sends += transmissions_until(bul, T0, T0 + 10.4)
    assert [(s.home_agent, s.purpose) for s in sends] == \
        [(HA1, "register"), (HA1, "retransmit"), (HA1, "retransmit")]
    bul.drain_events()
    switched = one(bul.tick(T0 + 10.5))  # the third transmission went unanswered
    assert (switched.home_agent, switched.via, switched.bids) == (HA2, COA_A, (1,))
    assert bul.home_agent == HA2
    assert switched.message.sequence not in [s.message.sequence for s in sends]
    events = bul.drain_events()
    assert any(e.level == "warning" and str(HA2) in e.text for e in events), events
    # the second home agent answers: registered there
    assert bul.on_ack(ack(switched.message.sequence, 1), T0 + 10.6) == []
    assert [e.bid for e in bul.usable(T0 + 11)] == [1]
    # a late answer of the first home agent to an old BU is ignored
    assert bul.on_ack(ack(sends[0].message.sequence, 1, status=146), T0 + 11) == []
    assert [e.bid for e in bul.usable(T0 + 11)] == [1]


def test_with_one_home_agent_it_keeps_trying_the_same() -> None:
    bul = BindingUpdateList(make_config())
    sends = bul.add_care_of(1, COA_A, "isp-a", 1, T0)
    sends += transmissions_until(bul, T0, T0 + 200)
    assert len(sends) > 6
    assert {s.home_agent for s in sends} == {HA1}


def test_first_registration_at_the_second_home_agent_waits_1_5_s() -> None:
    bul = BindingUpdateList(make_config(home_agents=[str(HA1), str(HA2)]))
    bul.add_care_of(1, COA_A, "isp-a", 1, T0)
    transmissions_until(bul, T0, T0 + 10.4)
    switched = one(bul.tick(T0 + 10.5))
    assert switched.home_agent == HA2
    assert bul.next_deadline() == pytest.approx(T0 + 10.5 + 1.5)


# -- accepted BA, refresh, expiry ------------------------------------------------------------
@pytest.mark.parametrize("refresh_units,refresh_after", [
    (None, 0.95 * 600),  # no advice: 95 % of the granted lifetime
    (120, 480.0),  # advice earlier than 95 %: the advice
    (149, 0.95 * 600),  # advice later than 95 %: 95 %
])
def test_accepted_ba_makes_the_entry_usable(refresh_units: Optional[int],
                                            refresh_after: float) -> None:
    bul = BindingUpdateList(make_config())
    send = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    now = T0 + 0.2
    assert bul.on_ack(ack(send.message.sequence, 1, lifetime=150, refresh=refresh_units),
                      now) == []
    entry = bul.entries[1]
    assert entry.state == State.REGISTERED
    assert entry.granted == 600
    # The lifetime counts from when the BU left (RFC 6275 11.7.3), not from the BA.
    assert entry.refresh_at == pytest.approx(T0 + refresh_after)
    assert entry.expires_at == pytest.approx(T0 + 600)
    assert entry.retransmit_at is None
    assert bul.usable(now) == [entry]
    assert bul.next_deadline() == pytest.approx(T0 + refresh_after)
    assert bul.tick(now + 10) == []  # no retransmission once acknowledged
    assert "info" in levels(bul)


def test_granted_lifetime_shorter_than_requested() -> None:
    bul = BindingUpdateList(make_config(lifetime=600))
    send = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    bul.on_ack(ack(send.message.sequence, 1, lifetime=10), T0)
    assert bul.entries[1].expires_at == T0 + 40
    assert bul.entries[1].refresh_at == pytest.approx(T0 + 38)


def test_refresh_is_sent_at_the_refresh_time_and_the_entry_stays_usable() -> None:
    bul = BindingUpdateList(make_config())
    first = registered(bul, 1, COA_A, lifetime=150)
    refresh_at, expires_at = bul.entries[1].refresh_at, bul.entries[1].expires_at
    assert bul.tick(refresh_at - 0.01) == []
    refresh = one(bul.tick(refresh_at))
    assert (refresh.purpose, refresh.via, refresh.bids) == ("refresh", COA_A, (1,))
    assert refresh.message.lifetime == 150
    assert refresh.message.binding_ids == first.message.binding_ids
    assert refresh.message.sequence != first.message.sequence
    assert bul.usable(refresh_at) and bul.usable(expires_at - 0.01)
    # the answer to the refresh extends the lifetime, from when the refresh left
    later = refresh_at + 0.3
    bul.on_ack(ack(refresh.message.sequence, 1, lifetime=150), later)
    assert bul.entries[1].expires_at == pytest.approx(refresh_at + 600)
    assert bul.usable(expires_at + 1)


def test_without_an_answer_the_entry_stops_being_usable_at_expiry() -> None:
    bul = BindingUpdateList(make_config())
    registered(bul, 1, COA_A, lifetime=150)
    expires_at = bul.entries[1].expires_at
    sends = transmissions_until(bul, T0, expires_at - 0.01)
    assert [s.purpose for s in sends][:1] == ["refresh"]
    assert all(s.purpose == "retransmit" for s in sends[1:])
    assert bul.usable(expires_at - 0.01)
    bul.drain_events()
    bul.tick(expires_at)
    assert not bul.usable(expires_at)
    assert bul.usable(expires_at + 1) == []
    assert "warning" in levels(bul)
    # still trying to get it back
    assert transmissions_until(bul, expires_at, expires_at + 64)


def test_an_expired_registered_entry_is_registered_again() -> None:
    """tick() not called at the refresh time (e.g. a suspended host): re-register."""
    bul = BindingUpdateList(make_config())
    registered(bul, 1, COA_A, lifetime=150)
    expires_at = bul.entries[1].expires_at
    send = one(bul.tick(expires_at + 5))
    assert (send.purpose, send.bids) == ("register", (1,))
    assert not bul.usable(expires_at + 5)
    assert bul.entries[1].retransmit_at == pytest.approx(expires_at + 5 + 1.0)  # 1 s


def test_lifetime_counts_from_the_binding_update() -> None:
    bul = BindingUpdateList(make_config())
    send = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    bul.on_ack(ack(send.message.sequence, 1, lifetime=150), T0 + 2)
    assert bul.entries[1].expires_at == T0 + 600


# -- BA statuses ---------------------------------------------------------------------------
def test_135_resynchronises_and_resends_at_once() -> None:
    bul = BindingUpdateList(make_config(), next_sequence=10)
    send = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    bul.drain_events()
    resend = one(bul.on_ack(ack(5000, status=BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
                                lifetime=0), T0 + 0.1))
    assert resend.bids == (1,) and resend.via == COA_A
    assert mip6.seq_is_newer(resend.message.sequence, 5000)
    assert mip6.seq_add(5000, 1) <= resend.message.sequence <= mip6.seq_add(5000, 2)
    assert "warning" in levels(bul)
    assert bul.on_ack(ack(send.message.sequence, 1), T0 + 0.2) == []  # the old BU: ignored
    assert not bul.usable(T0 + 0.2)
    bul.on_ack(ack(resend.message.sequence, 1), T0 + 0.3)
    assert [e.bid for e in bul.usable(T0 + 0.3)] == [1]
    # later BUs go on from there
    nxt = one(bul.add_care_of(2, COA_B, "isp-b", 2, T0 + 1))
    assert nxt.message.sequence == mip6.seq_add(resend.message.sequence, 1)


def test_135_resends_with_the_ba_sequence_plus_one() -> None:
    bul = BindingUpdateList(make_config(), next_sequence=10)
    bul.add_care_of(1, COA_A, "isp-a", 1, T0)
    resend = one(bul.on_ack(ack(5000, status=BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
                                lifetime=0), T0 + 0.1))
    assert resend.message.sequence == 5001


def test_two_135s_never_reuse_a_sequence_number() -> None:
    bul = BindingUpdateList(make_config(), next_sequence=10)
    sends = bul.add_care_of(1, COA_A, "isp-a", 1, T0)
    sends += bul.add_care_of(2, COA_B, "isp-b", 2, T0)
    stale = ack(5000, status=BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW, lifetime=0)
    sends += bul.on_ack(stale, T0 + 0.1)  # the answer to the first BU
    sends += bul.on_ack(stale, T0 + 0.1)  # the answer to the second BU
    sequences = [s.message.sequence for s in sends]
    assert len(sequences) == len(set(sequences)), sequences


def test_partial_mcoa_success_retries_only_the_failed_bid() -> None:
    bul = BindingUpdateList(make_config())
    first = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    second = one(bul.add_care_of(2, COA_B, "isp-b", 2, T0))
    # status 4 with BID 1 refused (164) and BID 2 accepted
    partial = mip6.BindingAcknowledgement(
        BaStatus.MCOA_NOTCOMPLETE, 0x40, first.message.sequence, 150,
        [mip6.BindingIdentifier(1, BaStatus.MCOA_MALFORMED), mip6.BindingIdentifier(2, 0)])
    assert bul.on_ack(partial, T0 + 0.1) == []
    assert bul.entries[1].state == State.BACKOFF
    assert bul.entries[1].last_status == BaStatus.MCOA_MALFORMED
    assert bul.entries[2].state == State.REGISTERING  # its own BU is still out
    bul.on_ack(ack(second.message.sequence, 2), T0 + 0.2)
    assert [e.bid for e in bul.usable(T0 + 0.2)] == [2]
    retry = one(transmissions_until(bul, T0 + 0.2, T0 + 1.7))  # backoff 1.5 s
    assert retry.bids == (1,) and retry.via == COA_A
    assert bul.entries[2].state == State.REGISTERED


def test_partial_mcoa_success_accepts_the_bids_that_succeeded() -> None:
    bul = BindingUpdateList(make_config())
    send = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    bul.on_ack(ack(send.message.sequence, 1, status=BaStatus.MCOA_NOTCOMPLETE, bid_status=0),
               T0)
    assert bul.entries[1].state == State.REGISTERED and bul.usable(T0)


@pytest.mark.parametrize("status", [BaStatus.MIPV6_AUTH_FAIL, BaStatus.MIPV6_ID_MISMATCH,
                                    BaStatus.MIPV6_MESG_ID_REQD])
def test_authentication_refusals_back_off_doubling_and_log_errors(status: int) -> None:
    bul = BindingUpdateList(make_config())
    send = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    bul.drain_events()
    now, retries = T0, []
    for _ in range(5):
        assert bul.on_ack(ack(send.message.sequence, 1, status=status, lifetime=0), now) == []
        assert bul.entries[1].state == State.BACKOFF and not bul.usable(now)
        events = bul.drain_events()
        assert [e.level for e in events] == ["error"], events
        assert mip6.status_name(status) in events[0].text
        deadline = bul.next_deadline()
        assert bul.tick(deadline - 0.01) == []
        retries.append(round(deadline - now, 6))
        now = deadline
        send = one(bul.tick(now))
        assert send.purpose == "retransmit" and send.bids == (1,)
    assert retries == [1.5, 3, 6, 12, 24]


@pytest.mark.parametrize("status", [BaStatus.ADMINISTRATIVELY_PROHIBITED,
                                    BaStatus.MCOA_MALFORMED,
                                    BaStatus.NOT_AUTHORIZED_FOR_PREFIX])
def test_other_refusals_back_off_with_a_warning(status: int) -> None:
    bul = BindingUpdateList(make_config())
    send = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    bul.drain_events()
    assert bul.on_ack(ack(send.message.sequence, 1, status=status, lifetime=0), T0) == []
    assert bul.entries[1].state == State.BACKOFF
    assert levels(bul) == ["warning"]
    assert bul.next_deadline() == pytest.approx(T0 + 1.5)


@pytest.mark.parametrize("status", [BaStatus.NOT_HOME_SUBNET,
                                    BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE])
def test_wrong_home_agent_statuses_try_the_next_home_agent(status: int) -> None:
    bul = BindingUpdateList(make_config(home_agents=[str(HA1), str(HA2)]))
    registered(bul, 1, COA_A)
    send = one(bul.add_care_of(2, COA_B, "isp-b", 2, T0 + 1))
    sends = bul.on_ack(ack(send.message.sequence, 2, status=status, lifetime=0), T0 + 1.1)
    assert bul.home_agent == HA2
    assert sorted(s.bids for s in sends) == [(1,), (2,)]  # every entry moves
    assert {s.home_agent for s in sends} == {HA2}
    assert {s.via for s in sends} == {COA_A, COA_B}
    assert bul.usable(T0 + 1.1)[0].bid == 1  # still bound at the first until it expires
    assert any(e.level == "warning" and str(HA2) in e.text for e in bul.drain_events())


def test_133_with_one_home_agent_does_not_resend_at_once() -> None:
    bul = BindingUpdateList(make_config())
    send = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    sends = bul.on_ack(ack(send.message.sequence, 1,
                           status=BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE, lifetime=0),
                       T0 + 0.01)
    assert sends == []


def test_a_ba_whose_sequence_matches_nothing_is_ignored() -> None:
    bul = BindingUpdateList(make_config())
    send = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    for ba in (ack(mip6.seq_add(send.message.sequence, 7), 1),
               ack(mip6.seq_add(send.message.sequence, 7), 1, status=146, lifetime=0),
               ack(mip6.seq_add(send.message.sequence, 7), 1, status=133, lifetime=0)):
        assert bul.on_ack(ba, T0 + 0.1) == []
    assert bul.entries[1].state == State.REGISTERING and not bul.usable(T0 + 0.1)
    assert bul.home_agent == HA1
    # an answer to a BU that has since been retransmitted is ignored too
    retransmit = one(bul.tick(T0 + 1.5))
    assert bul.on_ack(ack(send.message.sequence, 1), T0 + 1.6) == []
    assert not bul.usable(T0 + 1.6)
    bul.on_ack(ack(retransmit.message.sequence, 1), T0 + 1.7)
    assert bul.usable(T0 + 1.7)
    # and a duplicate of an answer already processed
    assert bul.on_ack(ack(retransmit.message.sequence, 1, status=146, lifetime=0),
                      T0 + 1.8) == []
    assert bul.entries[1].state == State.REGISTERED


# -- losing a care-of address ----------------------------------------------------------------
def two_registered(**config: Any) -> BindingUpdateList:
    bul = BindingUpdateList(make_config(**config))
    registered(bul, 1, COA_A, "isp-a", priority=1)
    registered(bul, 2, COA_B, "isp-b", priority=2)
    bul.drain_events()
    return bul


@pytest.mark.parametrize("lost,survivor", [(1, COA_B), (2, COA_A)])
def test_lost_care_of_is_deregistered_through_a_survivor(lost: int, survivor: Any) -> None:
    bul = two_registered(explicit_prefixes=True, downlink_key=0x2002)
    lost_coa = bul.entries[lost].care_of
    send = one(bul.remove_care_of(lost, T0 + 10))
    assert [e.bid for e in bul.usable(T0 + 10)] == [3 - lost]  # unusable at once
    assert (send.via, send.home_agent, send.bids, send.purpose) == (survivor, HA1, (lost,),
                                                                    "deregister")
    assert send.via != lost_coa
    bu = send.message
    assert bu.lifetime == 0 and bu.flags == AHR
    # only the BID option, without a CoA field: no prefixes, no GRE key
    assert bu.options == [mip6.BindingIdentifier(lost, 0, 0, False, None)]
    assert "warning" in levels(bul)
    # answered: no retries
    assert bul.on_ack(ack(bu.sequence, lost, lifetime=0), T0 + 10.1) == []
    assert transmissions_until(bul, T0 + 10.1, T0 + 100) == []


def test_deregistration_is_retried_without_a_ba_then_given_up() -> None:
    bul = two_registered()
    first = one(bul.remove_care_of(1, T0 + 10))
    sends = [first] + transmissions_until(bul, T0 + 10, T0 + 60)
    assert len(sends) == DEREGISTRATION_TRIES == 3
    assert all((s.via, s.bids, s.purpose, s.message.lifetime) == (COA_B, (1,), "deregister", 0)
               for s in sends)
    assert len({s.message.sequence for s in sends}) == 3
    assert transmissions_until(bul, T0 + 60, T0 + 120) == []
    assert [e.bid for e in bul.usable(T0 + 60)] == [2]


def test_deregistration_never_goes_through_the_lost_care_of() -> None:
    bul = two_registered()
    sends = bul.remove_care_of(2, T0 + 10) + bul.remove_care_of(1, T0 + 10.5)
    sends += transmissions_until(bul, T0 + 10.5, T0 + 30)
    assert [(s.via, s.bids) for s in sends] == [(COA_A, (2,))]  # then none survives
    assert bul.usable(T0 + 11) == []


def test_no_surviving_care_of_sends_nothing_and_logs() -> None:
    bul = BindingUpdateList(make_config())
    registered(bul, 1, COA_A)
    bul.drain_events()
    assert bul.remove_care_of(1, T0 + 10) == []
    events = bul.drain_events()
    assert any("no care-of address left" in e.text for e in events), events
    assert bul.usable(T0 + 10) == []
    assert transmissions_until(bul, T0 + 10, T0 + 100) == []


def test_a_survivor_that_is_not_registered_yet_is_not_used() -> None:
    bul = BindingUpdateList(make_config())
    registered(bul, 1, COA_A)
    one(bul.add_care_of(2, COA_B, "isp-b", 2, T0 + 5))  # unanswered
    assert bul.remove_care_of(1, T0 + 5.1) == []


def test_removing_an_unknown_bid_does_nothing() -> None:
    bul = two_registered()
    assert bul.remove_care_of(9, T0 + 1) == []
    assert len(bul.usable(T0 + 1)) == 2


def test_a_care_of_lost_before_its_ba_is_still_deregistered() -> None:
    bul = BindingUpdateList(make_config())
    registered(bul, 1, COA_A)
    pending = one(bul.add_care_of(2, COA_B, "isp-b", 2, T0 + 5))
    sends = bul.remove_care_of(2, T0 + 5.1)
    sends += bul.on_ack(ack(pending.message.sequence, 2), T0 + 5.2)  # the HA did bind it
    sends += transmissions_until(bul, T0 + 5.2, T0 + 10)
    assert [(s.via, s.bids, s.message.lifetime) for s in sends][:1] == [(COA_A, (2,), 0)]


# -- shutdown ---------------------------------------------------------------------------------
def test_shutdown_deregisters_everything_with_one_bu() -> None:
    bul = two_registered(explicit_prefixes=True, downlink_key=0x2002)
    send = one(bul.shutdown(T0 + 10))
    assert (send.via, send.home_agent, send.bids, send.purpose) == (COA_A, HA1, (),
                                                                    "deregister")
    bu = send.message
    assert (bu.lifetime, bu.flags) == (0, AHR)
    assert bu.options == []  # no BID (= all bindings), no prefixes, no GRE key
    assert bul.usable(T0 + 10) == [] and bul.entries == {}
    assert bul.next_deadline() is None
    assert bul.tick(T0 + 1000) == []
    assert bul.on_ack(ack(bu.sequence, lifetime=0), T0 + 10.1) == []


def test_shutdown_uses_any_care_of_when_none_is_usable() -> None:
    bul = BindingUpdateList(make_config())
    bul.add_care_of(3, COA_C, "lte", 5, T0)
    bul.add_care_of(2, COA_B, "isp-b", 2, T0)
    assert one(bul.shutdown(T0 + 0.5)).via == COA_B


def test_shutdown_without_care_of_sends_nothing() -> None:
    assert BindingUpdateList(make_config()).shutdown(T0) == []


# -- usable() and next_deadline() ----------------------------------------------------------
def test_usable_is_ordered_by_priority_then_bid() -> None:
    bul = BindingUpdateList(make_config())
    registered(bul, 5, COA_A, "isp-a", priority=3)
    registered(bul, 9, COA_B, "isp-b", priority=1)
    registered(bul, 4, COA_C, "lte", priority=3)
    registered(bul, 2, COA_4, "isp-b", priority=2)
    assert [e.bid for e in bul.usable(T0 + 1)] == [9, 2, 4, 5]
    one(bul.add_care_of(1, IPv6Address("2001:db8:d::100"), "lte", 1, T0 + 1))  # unanswered
    assert [e.bid for e in bul.usable(T0 + 1)] == [9, 2, 4, 5]


def test_next_deadline() -> None:
    bul = BindingUpdateList(make_config())
    assert bul.next_deadline() is None
    first = one(bul.add_care_of(1, COA_A, "isp-a", 1, T0))
    assert bul.next_deadline() == T0 + 1.5
    bul.add_care_of(2, COA_B, "isp-b", 2, T0 + 1)
    assert bul.next_deadline() == T0 + 1.5  # the earliest of all entries
    bul.on_ack(ack(first.message.sequence, 1, lifetime=150, refresh=120), T0 + 1)
    assert bul.next_deadline() == T0 + 2.5  # BID 2's retransmission
    bul.remove_care_of(2, T0 + 2)  # its BU went out: it is de-registered over BID 1
    assert bul.next_deadline() == T0 + 3  # the de-registration's retransmission


def test_next_deadline_after_a_refresh_is_in_the_future() -> None:
    bul = BindingUpdateList(make_config())
    registered(bul, 1, COA_A, lifetime=150)
    refresh_at = bul.entries[1].refresh_at
    one(bul.tick(refresh_at))
    assert bul.next_deadline() == pytest.approx(refresh_at + 1.0)


def test_events_are_drained_once() -> None:
    bul = BindingUpdateList(make_config())
    bul.add_care_of(1, COA_A, "isp-a", 1, T0)
    assert bul.drain_events()
    assert bul.drain_events() == []
