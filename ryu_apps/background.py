"""Write snapshots (state file, status file) off the app's event thread, spaced by cost.

Binding cache entries are immutable, so a snapshot is a cheap list copy taken on the
event thread; turning it into JSON and writing it takes far longer at thousands of MRs
(about a second at 10,000) and, done inline, stalls every Binding Update behind it. A
:class:`SpacedWriter` runs one write at a time through ``run_in_thread`` (eventlet's
``tpool`` in the app: a real OS thread, so the event thread keeps answering) and spaces
writes by their own cost: the next may start ``cost_factor`` times the CPU time the last
one took after it ended, and never sooner than ``min_interval``. CPU time, not elapsed
time: on a loaded machine a small write can wait a long while for the interpreter lock
and a core, and spacing by that wait kept the status file seconds out of date while it
cost next to nothing. The writer is plain Python with the thread runner, spawner and
clocks passed in, so tests drive it directly.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

LOG = logging.getLogger("nemo.ha")

Job = Callable[[], None]


class SpacedWriter:
    """At most one write in flight; the next one waits in proportion to the last's cost."""

    def __init__(self, name: str, run_in_thread: Callable[[Job], None],
                 spawn: Callable[..., object], clock: Callable[[], float],
                 min_interval: float = 1.0, cost_factor: float = 4.0,
                 cpu_clock: Callable[[], float] = time.thread_time) -> None:
        self.name = name
        self._cpu_clock = cpu_clock  # read in the worker thread: that thread's CPU time
        self._run_in_thread = run_in_thread
        self._spawn = spawn
        self._clock = clock
        self.min_interval = min_interval
        self.cost_factor = cost_factor
        self.busy = False
        self.next_allowed = 0.0
        self.last_duration: Optional[float] = None  # elapsed, for the log
        self.last_cpu: Optional[float] = None  # what the spacing follows
        self.writes = 0
        self.failures = 0

    def due(self, now: float) -> bool:
        """Whether a write may start now."""
        return not self.busy and now >= self.next_allowed

    def submit(self, job: Job, on_error: Callable[[Exception], None]) -> None:
        """Run ``job`` in the background (the caller checked :meth:`due`)."""
        assert not self.busy, f"{self.name}: a write is already in flight"
        self.busy = True
        self._spawn(self._run, job, on_error)

    def _run(self, job: Job, on_error: Callable[[Exception], None]) -> None:
        started = self._clock()
        cpu = [0.0]

        def timed() -> None:
            begun = self._cpu_clock()
            try:
                job()
            finally:
                cpu[0] = self._cpu_clock() - begun

        try:
            self._run_in_thread(timed)
            self.writes += 1
        except Exception as exc:  # reported, and the caller retries later
            self.failures += 1
            on_error(exc)
        finally:
            ended = self._clock()
            self.last_duration = ended - started
            self.last_cpu = cpu[0]
            self.next_allowed = ended + max(self.min_interval,
                                            self.cost_factor * self.last_cpu)
            self.busy = False
            if self.last_duration > 0.5:
                LOG.info("%s written in %.2f s, %.2f s of CPU (next in %.1f s at the "
                         "earliest)", self.name, self.last_duration, self.last_cpu,
                         self.next_allowed - ended)

    def wait_idle(self, sleep: Callable[[float], None], timeout: float = 30.0) -> bool:
        """Wait (cooperatively) for the write in flight; False if it did not end in time."""
        deadline = self._clock() + timeout
        while self.busy and self._clock() < deadline:
            sleep(0.05)
        return not self.busy
