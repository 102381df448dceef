"""Per care-of address liveness: the pure probe schedule (``mr_agent.liveness``) with a
fake clock, and what the Binding Update List does with a silent path
(``BindingUpdateList.path_failed``): stop using it, de-register it over a survivor on
another uplink, re-register it over its own path with backoff, usable again on a BA.
"""

from __future__ import annotations

import ipaddress
import random
from typing import List, Tuple

import pytest

import mip6
from mip6.constants import BaStatus
from mr_agent.bul import INITIAL_BINDACK_TIMEOUT, BindingUpdateList, State
from mr_agent.liveness import MAX_MISSES, PAYLOAD_SIZE, Dead, Liveness, decode, encode
from tests.unit.test_bul import COA_A, COA_B, COA_C, T0, ack, levels, make_config, one, \
    registered, transmissions_until

IPv6Address = ipaddress.IPv6Address
IV = 0.05
A, B = IPv6Address("2001:db8:a::100"), IPv6Address("2001:db8:b::100")
C = IPv6Address("2001:db8:c::100")


def run(live: Liveness, start: float, end: float, answer=lambda bid, t: True
        ) -> Tuple[List[Tuple[float, int]], List[Tuple[float, Dead]]]:
    """Drive poll() at every deadline; ``answer(bid, t)`` says whether a probe sent at t
    comes back (1 ms later). Returns (sent, dead) with times."""
    sent, dead, pending = [], [], []
    now = start
    while True:
        deadline = live.next_deadline()
        due_replies = [r for r in pending if deadline is None or r[0] <= deadline]
        if due_replies:
            reply = min(due_replies)
            pending.remove(reply)
            if reply[0] > end:
                break
            live.on_reply(reply[1], reply[2], reply[0])
            continue
        if deadline is None or deadline > end:
            break
        now = deadline
        probes, found = live.poll(now)
        dead += [(now, d) for d in found]
        for probe in probes:
            sent.append((now, probe.bid))
            if answer(probe.bid, now):
                pending.append((now + 0.001, probe.bid, probe.sequence))
    return sent, dead


def test_payload_round_trip_and_foreign_data():
    data = encode(7, 123456, 12.5)
    assert len(data) == PAYLOAD_SIZE == 18
    assert decode(data) == (7, 123456)
    assert decode(b"x" * 18) is None and decode(data + b"!") is None


def test_answered_probes_go_out_every_interval_and_nothing_dies():
    live = Liveness(IV, 3)
    live.sync({1: A, 2: B}, T0)
    sent, dead = run(live, T0, T0 + 1.0)
    assert dead == []
    times = [t for t, bid in sent if bid == 1]
    assert times[0] == T0  # a new CoA is probed at once
    assert len(times) == 21 and all(abs(b - a - IV) < 1e-9 for a, b in zip(times, times[1:]))
    status = live.status(1)
    assert status["probing"] and status["misses"] == 0 and status["received"] >= 20
    assert status["rtt_ms"] == pytest.approx(1.0)


@pytest.mark.parametrize("misses", [1, 3, 4])
def test_a_silent_path_dies_after_misses_unanswered_probes(misses):
    live = Liveness(IV, misses)
    live.sync({1: A, 2: B}, T0)
    fail = T0 + 0.5
    sent, dead = run(live, T0, T0 + 2.0, answer=lambda bid, t: bid == 2 or t < fail)
    assert [(d.bid, d.care_of, d.misses) for _, d in dead] == [(1, A, misses)]
    at, found = dead[0]
    # Detected between misses and misses + 1 intervals after the path broke.
    assert misses * IV - 1e-9 <= at - fail <= (misses + 1) * IV + 1e-9
    assert misses * IV * 1000 - 1 <= found.silent_ms <= (misses + 1) * IV * 1000 + 1
    assert 1 not in live.paths and live.failures == {1: 1} and live.dead_total == 1
    assert all(bid == 2 for t, bid in sent if t > at)  # no more probes for the dead one
    assert live.status(1) == {"probing": False, "failures": 1}



def test_a_congested_path_losing_most_probes_is_not_declared_dead():
    """A flood loses ~70 % of the probes at random: runs of 3+ losses happen every
    second or so, yet the CoA stays once the misses needed have grown with the loss
    seen. Only around the onset, while the history is still mostly clean, can such a
    run pass for a failure (then the agent re-registers the CoA, here after a second,
    and the loss history carries over)."""
    rng = random.Random(7)
    live = Liveness(IV, 3)
    live.sync({1: A, 2: B}, T0)  # B answers throughout: A could be declared dead
    onset = T0 + 1.0
    congested = lambda bid, t: bid == 2 or t < onset or rng.random() > 0.7
    deaths = []
    start = T0
    while start < T0 + 20.0:
        sent, dead = run(live, start, T0 + 20.0, congested)
        deaths += [at for at, _ in dead]
        if not dead:
            break
        start = dead[-1][0] + 1.0  # re-registered over its own path: probed again
        live.sync({2: B}, start)
        live.sync({1: A, 2: B}, start)
    assert len(deaths) <= 2 and all(at < onset + 3.0 for at in deaths), deaths
    assert live.required_misses(live.paths[1]) > 10


def test_a_path_that_fails_while_congested_is_still_found_dead_within_max_misses():
    rng = random.Random(11)
    live = Liveness(IV, 3)
    live.sync({1: A, 2: B}, T0)
    fail = T0 + 5.0
    answer = lambda bid, t: bid == 2 or (t < fail and (t < T0 + 1.0 or rng.random() > 0.7))
    sent, dead = run(live, T0, T0 + 10.0, answer)
    assert [d.bid for _, d in dead] == [1]
    assert dead[0][0] - fail <= (MAX_MISSES + 1) * IV + 1e-9


def test_a_clean_path_still_dies_after_the_configured_misses():
    live = Liveness(IV, 3)
    live.sync({1: A, 2: B}, T0)
    sent, dead = run(live, T0, T0 + 3.0, lambda bid, t: bid == 2 or t < T0 + 2.0)
    assert [(d.bid, d.misses) for _, d in dead] == [(1, 3)]


def test_a_coa_is_not_declared_dead_when_no_other_one_answers_either():
    """The only CoA going quiet, or all of them at once (the MR's own switch saturated):
    nothing better to switch to, so they are kept and the case is logged once."""
    live = Liveness(IV, 3)
    live.sync({1: A, 2: B}, T0)
    sent, dead = run(live, T0, T0 + 2.0, lambda bid, t: t < T0 + 1.0)
    assert dead == [] and set(live.paths) == {1, 2}
    assert len([e for e in live.events if "no other care-of address answers" in e]) == 2
    # One of them answers again: the other, still silent, is dead next to it.
    sent, dead = run(live, T0 + 2.0, T0 + 3.0, lambda bid, t: bid == 2)
    assert [d.bid for _, d in dead] == [1]


def test_a_late_reply_still_proves_the_path():
    live = Liveness(IV, 3)
    live.sync({1: A}, T0)
    assert live.on_reply(1, live.poll(T0)[0][0].sequence, T0 + 0.001)  # armed
    second = live.poll(T0 + IV)[0][0]
    live.poll(T0 + 2 * IV)  # one miss
    live.poll(T0 + 3 * IV)  # two
    assert live.paths[1].misses == 2 and live.suspects() == [1]
    assert live.on_reply(1, second.sequence, T0 + 3 * IV + 0.01)
    assert live.paths[1].misses == 0 and live.suspects() == []
    assert not live.on_reply(1, second.sequence, T0 + 3 * IV + 0.02)  # twice: ignored
    assert not live.on_reply(9, 1, T0)  # unknown BID


def test_a_late_loop_sends_no_burst_and_blames_no_probe_that_had_no_time():
    live = Liveness(IV, 3)
    live.sync({1: A}, T0)
    assert live.on_reply(1, live.poll(T0)[0][0].sequence, T0 + 0.001)  # armed
    probes, dead = live.poll(T0 + 1.0)  # the loop was stuck for 1 s: one probe, no burst
    assert len(probes) == 1 and dead == [] and live.paths[1].misses == 0
    assert live.next_deadline() == pytest.approx(T0 + 1.0 + IV)
    live.poll(T0 + 1.0 + IV)  # out for a whole interval, unanswered: a miss
    assert live.paths[1].misses == 1
    live.paths[1].next_at = T0 + 1.0 + IV + 0.01  # due again before half an interval
    live.poll(T0 + 1.0 + IV + 0.01)
    assert live.paths[1].misses == 1  # that probe had no time yet


def test_a_stall_does_not_delay_detection_of_a_dead_path():
    """Misses count even when the loop runs late (e.g. busy rewriting the data plane)."""
    live = Liveness(IV, 3)
    live.sync({1: A, 2: B}, T0)
    for probe in live.poll(T0)[0]:
        assert live.on_reply(probe.bid, probe.sequence, T0 + 0.001)
    dead = []
    for now in (T0 + IV, T0 + 2.2 * IV, T0 + 3.5 * IV, T0 + 4.6 * IV):  # irregular, late
        probes, found = live.poll(now)
        dead += found
        for probe in probes:
            if probe.bid == 2:  # B still answers
                live.on_reply(2, probe.sequence, now + 0.001)
    assert [d.bid for d in dead] == [1]


def test_sync_follows_the_carried_care_of_addresses():
    live = Liveness(IV, 3)
    live.sync({1: A, 2: B}, T0)
    live.poll(T0)
    live.sync({2: B, 3: A}, T0 + 0.01)  # 1 gone, 3 new
    assert sorted(live.paths) == [2, 3] and live.next_deadline() == T0 + 0.01
    live.sync({2: A}, T0 + 0.02)  # BID 2 now another address: probed afresh
    assert live.paths[2].care_of == A and live.paths[2].sent == 0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Liveness(0, 3)
    with pytest.raises(ValueError):
        Liveness(IV, 0)


# -- the Binding Update List with a silent path -----------------------------------------------

def three() -> BindingUpdateList:
    bul = BindingUpdateList(make_config())
    registered(bul, 1, COA_A, "isp-a")
    registered(bul, 2, COA_C, "isp-a")
    registered(bul, 3, COA_B, "isp-b", priority=2)
    levels(bul)
    return bul


def test_a_silent_path_stops_being_usable_and_is_deregistered_over_another_uplink():
    bul = three()
    now = T0 + 1
    send = one(bul.path_failed(1, now))
    assert send.purpose == "deregister" and send.bids == (1,) and send.message.lifetime == 0
    assert send.via == COA_B  # not COA_C: same uplink as the silent one (priority is better)
    assert [o.bid for o in send.message.find_all(mip6.BindingIdentifier)] == [1]
    assert [e.bid for e in bul.usable(now)] == [2, 3]
    entry = bul.entries[1]  # kept: it comes back over its own path
    assert entry.state == State.BACKOFF and entry.silent_since == now
    assert entry.path_failures == 1
    assert bul.path_failed(1, now) == []  # already silent


def test_suspects_are_avoided_for_the_deregistration():
    bul = three()
    assert one(bul.path_failed(1, T0 + 1, suspects=[3])).via == COA_C


def test_a_silent_path_is_re_registered_over_its_own_path_with_backoff():
    bul = three()
    now = T0 + 1
    dereg = one(bul.path_failed(1, now))
    assert bul.on_ack(ack(dereg.message.sequence, 1), now + 0.01) == []
    sends, t = [], now
    while True:  # drive the timers for 17.5 s, answering nothing but de-registrations
        t = bul.next_deadline()
        if t > now + 17.5:
            break
        for send in bul.tick(t):
            sends.append((round(t - now, 3), send))
            if send.purpose == "deregister":
                bul.on_ack(ack(send.message.sequence, 1), t + 0.01)
    attempts = [(at, s) for at, s in sends if s.purpose != "deregister"]
    undos = [(at, s) for at, s in sends if s.purpose == "deregister"]
    assert all(s.via == COA_A and s.message.lifetime > 0 and s.bids == (1,)
               for _, s in attempts)
    # first after 1 s (the de-registration goes first), then with doubling backoff
    assert [at for at, _ in attempts] == [1, 2.25, 4.5, 8.75, 17]
    # each unanswered attempt is undone 0.25 s later over the other uplink (a path that
    # fails downstream only lets the BU through: the home agent must not keep it bound,
    # and while it is bound, a share of the downstream traffic is lost)
    assert [at for at, _ in undos] == [1.25, 2.5, 4.75, 9, 17.25]
    assert all(s.via == COA_B and s.message.lifetime == 0 and s.bids == (1,)
               for _, s in undos)
    bound = sum(0.25 for at, _ in attempts if at < 6)
    assert bound / 6 < 0.2  # bound at the home agent for 0.75 s of the first 6 s


def test_a_late_ba_of_an_undone_attempt_widens_the_proof_window_and_retries_at_once():
    bul = three()
    now = T0 + 1
    one(bul.path_failed(1, now))
    attempt = one([s for s in bul.tick(now + 1) if s.purpose != "deregister"])
    undo = one([s for s in bul.tick(now + 1.25) if s.purpose == "deregister"])
    assert undo.message.sequence > attempt.message.sequence
    # 400 ms after the attempt: too late to keep it (undone already), but the path works
    retry = one(bul.on_ack(ack(attempt.message.sequence, 1), now + 1.4))
    assert retry.via == COA_A and retry.bids == (1,) and retry.message.lifetime > 0
    assert retry.message.sequence > undo.message.sequence
    assert [e.bid for e in bul.usable(now + 1.4)] == [2, 3]  # not before its own BA
    assert bul.entries[1].proof_window == pytest.approx(0.8)  # twice the delay seen
    assert "came after 400 ms" in " ".join(e.text for e in bul.drain_events())
    assert [s for s in bul.tick(now + 2.1) if s.purpose == "deregister"] == []  # in time
    bul.on_ack(ack(retry.message.sequence, 1), now + 1.8)
    assert [e.bid for e in bul.usable(now + 1.8)] == [1, 2, 3]


def test_a_late_refusal_of_an_undone_attempt_changes_nothing():
    bul = three()
    now = T0 + 1
    one(bul.path_failed(1, now))
    attempt = one([s for s in bul.tick(now + 1) if s.purpose != "deregister"])
    one([s for s in bul.tick(now + 1.25) if s.purpose == "deregister"])
    refusal = ack(attempt.message.sequence, 1, status=BaStatus.ADMINISTRATIVELY_PROHIBITED)
    assert bul.on_ack(refusal, now + 1.4) == []
    assert bul.entries[1].proof_window == pytest.approx(0.25)
    # and a second copy of the late BA is ignored too
    assert bul.on_ack(ack(attempt.message.sequence, 1), now + 1.5) == []


def test_a_ba_over_the_healed_path_makes_it_usable_again():
    bul = three()
    now = T0 + 1
    one(bul.path_failed(1, now))  # its BA is lost
    retry = one([s for s in bul.tick(now + INITIAL_BINDACK_TIMEOUT) if 1 in s.bids
                 and s.purpose != "deregister"])
    later = now + INITIAL_BINDACK_TIMEOUT + 0.01
    bul.on_ack(ack(retry.message.sequence, 1), later)
    assert [e.bid for e in bul.usable(later)] == [1, 2, 3]
    assert bul.entries[1].silent_since is None
    assert any("answers again" in e.text for e in bul.drain_events())
    # the pending de-registration is dropped: it would undo the new binding
    assert [s for s in transmissions_until(bul, later, later + 5) if s.purpose == "deregister"] == []


def test_silent_retries_do_not_switch_the_home_agent():
    bul = BindingUpdateList(make_config(home_agents=["2001:db8:ffff::1", "2001:db8:ffff::2"]))
    registered(bul, 1, COA_A, "isp-a")
    registered(bul, 3, COA_B, "isp-b")
    bul.path_failed(1, T0 + 1)
    transmissions_until(bul, T0 + 1, T0 + 30)
    assert bul.ha_index == 0


def test_the_only_care_of_address_going_silent_has_no_one_to_deregister_through():
    bul = BindingUpdateList(make_config())
    registered(bul, 1, COA_A, "isp-a")
    assert bul.path_failed(1, T0 + 1) == []
    assert bul.usable(T0 + 1) == []
    assert "no care-of address left" in " ".join(e.text for e in bul.drain_events())


def test_a_care_of_address_that_never_answered_is_not_declared_dead_but_warned_about():
    """A home agent that does not reflect the probes must not make the MR drop its CoAs."""
    live = Liveness(IV, 3)
    live.sync({1: A}, T0)
    sent, dead = run(live, T0, T0 + 2.0, answer=lambda bid, t: False)
    assert dead == [] and len(sent) > 20
    assert len(live.events) == 1 and "no answer to 20 liveness probes" in live.events[0]
    assert live.status(1)["armed"] is False


def test_care_of_addresses_share_one_schedule_and_die_together():
    live = Liveness(IV, 3)
    live.sync({1: A, 3: C}, T0)
    live.poll(T0)
    live.sync({1: A, 2: B, 3: C}, T0 + 0.013)  # acknowledged later: probed at once...
    assert [p.bid for p in live.poll(T0 + 0.013)[0]] == [2]
    assert live.paths[2].next_at == pytest.approx(T0 + IV)  # ...then with BID 1
    fail = T0 + 0.2
    sent, dead = run(live, T0 + 0.014, T0 + 1.0, answer=lambda bid, t: bid == 3 or t < fail)
    assert sorted(d.bid for _, d in dead) == [1, 2]
    assert len({t for t, _ in dead}) == 1  # in the same poll


def test_several_silent_paths_are_deregistered_in_one_binding_update():
    bul = three()
    send = one(bul.path_failed([1, 2], T0 + 1))
    assert send.bids == (1, 2) and send.via == COA_B
    assert [e.bid for e in bul.usable(T0 + 1)] == [3]
