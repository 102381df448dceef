"""Write snapshots (state file, status file) in slices between Binding Updates, spaced by cost.

Binding cache entries are immutable, so a snapshot is a cheap list copy. Turning it into
JSON takes far longer at thousands of MRs (about a second at 10,000), and done in one go
it stalls every Binding Update behind it. A worker thread is no cure in CPython: while it
computes it holds the interpreter lock, and the event thread, which gives the lock up at
every system call, waits up to a switch interval each time it wants it back - a 16-ms
state write made the BA p99 at 1,000 MRs 20-80 ms. So a write runs in a green thread of
its own, on the event thread, and yields (``pause``) every few entries: a BU that arrives
meanwhile waits for one slice (a fraction of a millisecond), never for the whole write.
Only the blocking system call at the end (``fsync``) goes to a real thread.

A :class:`SpacedWriter` runs one write at a time and spaces writes by their own cost:
the next may start ``cost_factor`` times the time the last one was busy (its slices, not
the time other green threads ran between them) after it ended, and never sooner than
``min_interval``. The writer is plain Python with the spawner, clock and yield passed in,
so tests drive it directly.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Iterator, Optional, TypeVar

LOG = logging.getLogger("nemo.ha")

Pause = Callable[[], None]
Job = Callable[[Pause], None]
T = TypeVar("T")


def paced(items: Iterable[T], every: int, pause: Optional[Pause]) -> Iterator[T]:
    """``items``, with ``pause`` called after every ``every`` of them (a write's slices;
    no pauses without one: a write in one go, e.g. on stop)."""
    if pause is None:
        yield from items
        return
    for count, item in enumerate(items, 1):
        yield item
        if count % every == 0:
            pause()


class SpacedWriter:
    """At most one write in flight; the next one waits in proportion to the last's cost."""

    def __init__(self, name: str, spawn: Callable[..., object], clock: Callable[[], float],
                 yield_now: Callable[[], None], min_interval: float = 1.0,
                 cost_factor: float = 4.0) -> None:
        self.name = name
        self._spawn = spawn
        self._clock = clock
        self._yield_now = yield_now
        self.min_interval = min_interval
        self.cost_factor = cost_factor
        self.busy = False
        self.next_allowed = 0.0
        self.last_duration: Optional[float] = None  # start to end, for the log
        self.last_cost: Optional[float] = None  # its slices only: what the spacing follows
        self.writes = 0
        self.failures = 0
        self._cost = 0.0
        self._resumed = 0.0

    def due(self, now: float) -> bool:
        """Whether a write may start now."""
        return not self.busy and now >= self.next_allowed

    def submit(self, job: Job, on_error: Callable[[Exception], None]) -> None:
        """Run ``job(pause)`` in the background (the caller checked :meth:`due`); the job
        calls ``pause`` every few entries to let Binding Updates through."""
        assert not self.busy, f"{self.name}: a write is already in flight"
        self.busy = True
        self._spawn(self._run, job, on_error)

    def _pause(self) -> None:
        self._cost += self._clock() - self._resumed
        self._yield_now()
        self._resumed = self._clock()

    def _run(self, job: Job, on_error: Callable[[Exception], None]) -> None:
        started = self._resumed = self._clock()
        self._cost = 0.0
        try:
            job(self._pause)
            self.writes += 1
        except Exception as exc:  # reported, and the caller retries later
            self.failures += 1
            on_error(exc)
        finally:
            ended = self._clock()
            self.last_cost = self._cost + (ended - self._resumed)
            self.last_duration = ended - started
            self.next_allowed = ended + max(self.min_interval,
                                            self.cost_factor * self.last_cost)
            self.busy = False
            if self.last_cost > 0.5:
                LOG.info("%s written in %.2f s, busy %.2f s of it (next in %.1f s at the "
                         "earliest)", self.name, self.last_duration, self.last_cost,
                         self.next_allowed - ended)

    def wait_idle(self, sleep: Callable[[float], None], timeout: float = 30.0) -> bool:
        """Wait (cooperatively) for the write in flight; False if it did not end in time."""
        deadline = self._clock() + timeout
        while self.busy and self._clock() < deadline:
            sleep(0.05)
        return not self.busy
