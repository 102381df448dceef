"""SpacedWriter: one write at a time, in slices, spaced by its own cost, failures reported."""

from __future__ import annotations

from typing import Any, Callable, List

import pytest

from ryu_apps.background import Pause, SpacedWriter, paced


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Deferred:
    """Spawned runs wait here until the test lets them go (like a green thread)."""

    def __init__(self) -> None:
        self.pending: List[Callable[[], Any]] = []

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        self.pending.append(lambda: fn(*args))

    def run_all(self) -> None:
        while self.pending:
            self.pending.pop(0)()


class Yields:
    """The event loop between two slices: other green threads run for ``others`` s."""

    def __init__(self, clock: Clock, others: float = 0.0) -> None:
        self.clock, self.others, self.count = clock, others, 0

    def __call__(self) -> None:
        self.count += 1
        self.clock.now += self.others


def writer(clock: Clock, spawner: Deferred, yields: Any = None, **kwargs: Any
           ) -> SpacedWriter:
    return SpacedWriter("state file", spawner.spawn, clock, yields or Yields(clock), **kwargs)


def sliced(clock: Clock, slices: int, each: float, done: List[int] = None
           ) -> Callable[[Pause], None]:
    """A job of ``slices`` slices of ``each`` seconds, pausing between them."""
    def job(pause: Pause) -> None:
        for i in range(slices):
            if i:
                pause()
            clock.now += each
        if done is not None:
            done.append(1)
    return job


def test_one_write_at_a_time_then_spaced_by_the_minimum_interval():
    clock, spawner, done = Clock(), Deferred(), []
    w = writer(clock, spawner, min_interval=1.0, cost_factor=4.0)
    assert w.due(clock.now)
    w.submit(sliced(clock, 1, 0.01, done), on_error=pytest.fail)
    assert w.busy and not w.due(clock.now)  # in flight: nothing else starts
    with pytest.raises(AssertionError):
        w.submit(lambda pause: None, on_error=pytest.fail)
    spawner.run_all()
    assert done == [1] and not w.busy and w.writes == 1
    assert w.next_allowed == pytest.approx(100.01 + 1.0)  # 4 x 10 ms < 1 s
    assert not w.due(100.5) and w.due(101.02)


def test_an_expensive_write_pushes_the_next_one_further_out():
    clock, spawner = Clock(), Deferred()
    w = writer(clock, spawner, min_interval=1.0, cost_factor=4.0)
    w.submit(sliced(clock, 4, 0.5), on_error=pytest.fail)
    spawner.run_all()
    assert w.last_cost == pytest.approx(2.0) and w.last_duration == pytest.approx(2.0)
    assert w.next_allowed == pytest.approx(102.0 + 8.0)  # cost x factor beats the minimum


def test_the_job_yields_between_slices_and_what_runs_meanwhile_is_not_its_cost():
    """100 slices of 1 ms with 20 ms of Binding Updates between each two: 2.08 s from
    start to end, but the write itself was busy 0.1 s. Spaced by the elapsed time,
    the status file would lag many seconds behind the bindings on a busy HA."""
    clock, spawner = Clock(), Deferred()
    yields = Yields(clock, others=0.02)
    w = writer(clock, spawner, yields, min_interval=1.0, cost_factor=10.0)
    w.submit(sliced(clock, 100, 0.001), on_error=pytest.fail)
    spawner.run_all()
    assert yields.count == 99
    assert w.last_duration == pytest.approx(2.08) and w.last_cost == pytest.approx(0.1)
    assert w.next_allowed == pytest.approx(102.08 + 1.0)


def test_a_failed_write_is_reported_and_frees_the_writer():
    clock, spawner, errors = Clock(), Deferred(), []

    def broken(pause: Pause) -> None:
        pause()
        raise OSError(28, "No space left on device")

    w = writer(clock, spawner)
    w.submit(broken, on_error=errors.append)
    spawner.run_all()
    assert [type(e) for e in errors] == [OSError] and w.failures == 1 and w.writes == 0
    assert not w.busy and w.due(clock.now + w.min_interval)


def test_wait_idle_returns_when_the_write_ends_or_times_out():
    clock, spawner = Clock(), Deferred()
    w = writer(clock, spawner)
    w.submit(lambda pause: None, on_error=pytest.fail)
    sleeps: List[float] = []

    def sleep(seconds: float) -> None:  # the write finishes while we wait
        sleeps.append(seconds)
        spawner.run_all()

    assert w.wait_idle(sleep) and len(sleeps) == 1
    w.submit(lambda pause: None, on_error=pytest.fail)

    def stuck(seconds: float) -> None:
        clock.now += seconds

    assert not w.wait_idle(stuck, timeout=1.0) and w.busy


def test_paced_pauses_after_every_slice_and_never_without_a_pause():
    seen: List[str] = []
    items = (seen.append(f"item {i}") or i for i in range(7))
    assert list(paced(items, 3, lambda: seen.append("pause"))) == list(range(7))
    assert seen == ["item 0", "item 1", "item 2", "pause", "item 3", "item 4", "item 5",
                    "pause", "item 6"]
    assert list(paced(range(7), 3, None)) == list(range(7))
