"""SpacedWriter: one write at a time, spaced by its own cost, failures reported."""

from __future__ import annotations

from typing import Any, Callable, List

import pytest

from ryu_apps.background import SpacedWriter


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


def writer(clock: Clock, spawner: Deferred, cost: float = 0.0, waited: float = 0.0,
           **kwargs: Any) -> SpacedWriter:
    """A writer whose jobs take ``cost`` seconds of CPU after ``waited`` seconds of waiting
    (for the interpreter lock or a core)."""
    cpu = Clock()

    def in_thread(job: Callable[[], None]) -> None:
        job()

    w = SpacedWriter("state file", in_thread, spawner.spawn, clock, cpu_clock=cpu, **kwargs)
    submit = w.submit

    def costly_submit(job: Callable[[], None], on_error: Callable[[Exception], None]) -> None:
        def costly() -> None:
            clock.now += waited
            clock.now += cost
            cpu.now += cost
            job()
        submit(costly, on_error)

    w.submit = costly_submit  # type: ignore[method-assign]
    return w


def test_one_write_at_a_time_then_spaced_by_the_minimum_interval():
    clock, spawner, done = Clock(), Deferred(), []
    w = writer(clock, spawner, cost=0.01, min_interval=1.0, cost_factor=4.0)
    assert w.due(clock.now)
    w.submit(lambda: done.append(1), on_error=pytest.fail)
    assert w.busy and not w.due(clock.now)  # in flight: nothing else starts
    with pytest.raises(AssertionError):
        w.submit(lambda: None, on_error=pytest.fail)
    spawner.run_all()
    assert done == [1] and not w.busy and w.writes == 1
    assert w.next_allowed == pytest.approx(100.01 + 1.0)  # 4 x 10 ms < 1 s
    assert not w.due(100.5) and w.due(101.02)


def test_an_expensive_write_pushes_the_next_one_further_out():
    clock, spawner = Clock(), Deferred()
    w = writer(clock, spawner, cost=2.0, min_interval=1.0, cost_factor=4.0)
    w.submit(lambda: None, on_error=pytest.fail)
    spawner.run_all()
    assert w.last_duration == pytest.approx(2.0) and w.last_cpu == pytest.approx(2.0)
    assert w.next_allowed == pytest.approx(102.0 + 8.0)  # cost x factor beats the minimum


def test_time_spent_waiting_for_a_core_does_not_push_the_next_write_out():
    """A small write on a loaded machine: 3 s elapsed, 10 ms of CPU. Spaced by the
    elapsed time, the status file would lag 30 s behind the bindings."""
    clock, spawner = Clock(), Deferred()
    w = writer(clock, spawner, cost=0.01, waited=3.0, min_interval=1.0, cost_factor=10.0)
    w.submit(lambda: None, on_error=pytest.fail)
    spawner.run_all()
    assert w.last_duration == pytest.approx(3.01) and w.last_cpu == pytest.approx(0.01)
    assert w.next_allowed == pytest.approx(103.01 + 1.0)


def test_a_failed_write_is_reported_and_frees_the_writer():
    clock, spawner, errors = Clock(), Deferred(), []

    def broken() -> None:
        raise OSError(28, "No space left on device")

    w = writer(clock, spawner, cost=0.0)
    w.submit(broken, on_error=errors.append)
    spawner.run_all()
    assert [type(e) for e in errors] == [OSError] and w.failures == 1 and w.writes == 0
    assert not w.busy and w.due(clock.now + w.min_interval)


def test_wait_idle_returns_when_the_write_ends_or_times_out():
    clock, spawner = Clock(), Deferred()
    w = writer(clock, spawner)
    w.submit(lambda: None, on_error=pytest.fail)
    sleeps: List[float] = []

    def sleep(seconds: float) -> None:  # the write finishes while we wait
        sleeps.append(seconds)
        spawner.run_all()

    assert w.wait_idle(sleep) and len(sleeps) == 1
    w.submit(lambda: None, on_error=pytest.fail)

    def stuck(seconds: float) -> None:
        clock.now += seconds

    assert not w.wait_idle(stuck, timeout=1.0) and w.busy
