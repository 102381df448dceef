"""Running commands and stopping processes for the namespace lab.

Every external command of the lab (``ip``, ``ethtool``, ``ovs-vsctl``, ...) goes
through :func:`run`, which captures the output and, on failure, raises
:class:`CommandError` naming the command, its exit code and its stderr. The
helpers below stop processes the same careful way everywhere: ask politely
(SIGTERM), wait with a timeout, then SIGKILL.

No third-party dependencies; Python 3.9 compatible.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence

log = logging.getLogger(__name__)

#: Default timeout of one lab command, in seconds.
DEFAULT_TIMEOUT = 30.0


class LabError(Exception):
    """Base class of every error raised by the lab library."""


class CommandError(LabError, subprocess.CalledProcessError):
    """A lab command exited with a non-zero status.

    Carries ``cmd``, ``returncode``, ``stdout`` and ``stderr`` like
    :class:`subprocess.CalledProcessError`; ``str()`` shows all of them.
    """

    def __str__(self) -> str:
        cmd = self.cmd if isinstance(self.cmd, str) else shlex.join(self.cmd)
        text = "command failed (exit code %s): %s" % (self.returncode, cmd)
        stderr = (self.stderr or "").strip()
        stdout = (self.stdout or "").strip()
        if stderr:
            text += "\n  stderr: " + stderr.replace("\n", "\n          ")
        if stdout:
            text += "\n  stdout: " + stdout[:2000].replace("\n", "\n          ")
        return text


class CommandTimeout(LabError):
    """A lab command did not finish within its timeout (it was killed)."""

    def __init__(self, cmd: Sequence[str], timeout: float) -> None:
        self.cmd = list(cmd)
        self.timeout = timeout
        super().__init__("command timed out after %.1f s: %s" % (timeout, shlex.join(self.cmd)))


def run(
    cmd: Sequence[str],
    *,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    input: Optional[str] = None,
) -> "subprocess.CompletedProcess[str]":
    """Run ``cmd`` (no shell), capture its output as text and return it.

    Raises :class:`CommandError` on a non-zero exit status when ``check`` is
    true, and :class:`CommandTimeout` when it runs longer than ``timeout``.
    """
    argv = [str(a) for a in cmd]
    log.debug("run: %s", shlex.join(argv))
    try:
        proc = subprocess.run(
            argv,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise CommandTimeout(argv, timeout) from None
    except FileNotFoundError as exc:
        raise LabError("command not found: %s (%s)" % (argv[0], exc)) from None
    if check and proc.returncode != 0:
        raise CommandError(proc.returncode, argv, proc.stdout, proc.stderr)
    return proc


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.01,
) -> None:
    """Poll ``predicate`` until it returns true; raise :class:`LabError` after ``timeout``.

    The poll interval starts at ``interval`` and doubles up to 0.1 s, so quick
    conditions cost little and slow ones do not spin.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise LabError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)
        interval = min(interval * 2, 0.1)


# --------------------------------------------------------------------------
# Processes we started (Popen) and processes we only know by pid.
# --------------------------------------------------------------------------


def stop_popen(proc: "subprocess.Popen[bytes]", timeout: float = 3.0) -> Optional[int]:
    """Stop a process started by the lab (in its own session): SIGTERM, wait, SIGKILL.

    Signals go to the whole process group when the process leads one (the lab
    starts background processes with ``start_new_session=True``), so helpers it
    forked stop too. Returns the exit status (None if it could not be reaped).
    """
    if proc.poll() is None:
        _signal_popen(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("pid %d ignored SIGTERM for %.1f s: SIGKILL", proc.pid, timeout)
            _signal_popen(proc, signal.SIGKILL)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("pid %d survived SIGKILL", proc.pid)
                return None
    # Leftovers of its process group (children that outlived the leader).
    _signal_group(proc.pid, signal.SIGKILL)
    return proc.returncode


def _signal_popen(proc: "subprocess.Popen[bytes]", sig: int) -> None:
    if not _signal_group(proc.pid, sig):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def _signal_group(pid: int, sig: int) -> bool:
    """Signal the process group led by ``pid``; False if ``pid`` leads none."""
    try:
        if os.getpgid(pid) != pid:
            return False
        os.killpg(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def pid_cmdline(pid: int) -> Optional[str]:
    """Command line of ``pid`` with NULs turned into spaces; None if it is gone or a zombie."""
    try:
        raw = Path("/proc/%d/cmdline" % pid).read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not raw:  # zombie or kernel thread
        return None
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


def pids_matching(substring: str) -> List[int]:
    """Pids (other than ours) whose command line contains ``substring`` (like ``pgrep -f``)."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == me:
            continue
        cmdline = pid_cmdline(pid)
        if cmdline is not None and substring in cmdline:
            found.append(pid)
    return sorted(found)


def kill_pids(pids: Iterable[int], must_contain: Optional[str] = None, timeout: float = 3.0) -> List[int]:
    """SIGTERM ``pids``, wait up to ``timeout`` for them to go, then SIGKILL the rest.

    A pid whose command line no longer contains ``must_contain`` (given) is left
    alone: it exited and the number was reused. Returns the pids still alive
    at the end (normally empty).
    """

    def ours(pid: int) -> bool:
        cmdline = pid_cmdline(pid)
        return cmdline is not None and (must_contain is None or must_contain in cmdline)

    targets = [p for p in pids if ours(p)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in targets:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while True:
            targets = [p for p in targets if ours(p)]
            if not targets or time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        if not targets:
            return []
        if sig == signal.SIGTERM:
            log.warning("pids %s ignored SIGTERM for %.1f s: SIGKILL", targets, timeout)
    return targets
