"""The :class:`Lab` context manager: build lab nodes and always tear them down.

A :class:`Lab` owns one run prefix (``nfXXXX-``). Everything it creates carries
that prefix (namespace names, OVS run directories, interfaces in the root
namespace) and is recorded; leaving the ``with`` block tears it all down in
reverse order, also when the body raised and also when a teardown step fails
(the failure is logged and the remaining steps still run). A final sweep with
:func:`cleanup_leftovers` for the lab's own prefix catches anything the records
missed.

:func:`cleanup_leftovers` removes what crashed runs left behind (namespaces,
OVS daemons, run directories, root-namespace interfaces), recognising them by
the prefix family only::

    with Lab() as lab:
        ha = lab.namespace("ha")                  # namespace "nf3fa9-ha"
        ovs = lab.ovs(ha)                         # /tmp/nemo-fabric/nf3fa9-ha-ovs/
        cn = lab.namespace("cn")
        lab.veth(cn, "eth0", ha, "cn0")
        ovs.add_bridge("br-int", secure=True)
        ovs.add_port("br-int", "cn0", ofport=1)
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Callable, List, Optional, Tuple, Type, Union

from topologies.netns import (
    PREFIX_FAMILY,
    PREFIX_RE,
    InvalidNameError,
    Namespace,
    Veth,
    create_veth,
    list_netns,
    new_prefix,
    validate_prefix,
)
from topologies.ovs import OvsInstance
from topologies.procs import LabError, kill_pids, pid_cmdline, pids_matching, run, stop_popen

log = logging.getLogger(__name__)

#: Environment variable that overrides :func:`default_base_dir`.
BASE_DIR_ENV = "NEMO_FABRIC_LAB_DIR"

# A partial prefix accepted by cleanup_leftovers: "nf", "nf3", ..., "nf3fa9-".
_PARTIAL_PREFIX_RE = re.compile(r"^nf([0-9a-f]{0,4}|[0-9a-f]{4}-)$")


def default_base_dir() -> Path:
    """Parent of the OVS run directories: ``$NEMO_FABRIC_LAB_DIR`` or ``<tmp>/nemo-fabric``."""
    env = os.environ.get(BASE_DIR_ENV)
    return Path(env) if env else Path(tempfile.gettempdir()) / "nemo-fabric"


class TeardownError(LabError):
    """One or more teardown steps failed (each was logged; the others still ran)."""

    def __init__(self, failures: List[Tuple[str, BaseException]]) -> None:
        self.failures = failures
        super().__init__(
            "lab teardown had %d failure(s):\n%s"
            % (len(failures), "\n".join("  %s: %s" % (what, exc) for what, exc in failures))
        )


class Lab:
    """Creates namespaces, veths, private OVS instances and processes; tears them all down.

    Use as a context manager (or call :meth:`close`). ``prefix`` defaults to
    a fresh :func:`~topologies.netns.new_prefix`; ``base_dir`` holds the OVS
    run directories (default :func:`default_base_dir`).
    """

    def __init__(self, prefix: Optional[str] = None, *, base_dir: Union[str, Path, None] = None) -> None:
        self.prefix = validate_prefix(prefix) if prefix is not None else new_prefix()
        self.base_dir = Path(base_dir) if base_dir is not None else default_base_dir()
        self._teardown: List[Tuple[str, Callable[[], object]]] = []
        self.closed = False

    def __repr__(self) -> str:
        return "Lab(prefix=%r)" % self.prefix

    def __enter__(self) -> "Lab":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc_type is None:
            self.close()  # a failed teardown is an error of the block
            return
        try:
            self.close()
        except TeardownError:
            log.error("lab %s: teardown failed while handling %s", self.prefix, exc_type.__name__)

    # -- names -------------------------------------------------------------

    def name(self, local: str) -> str:
        """``local`` with the lab prefix (``ha`` -> ``nf3fa9-ha``)."""
        return self.prefix + local

    # -- resources -----------------------------------------------------------

    def add_cleanup(self, what: str, func: Callable[[], object]) -> None:
        """Register ``func`` to run at teardown (in reverse order with everything else)."""
        if self.closed:
            raise LabError("lab %s is closed" % self.prefix)
        self._teardown.append((what, func))

    def namespace(self, name: str, *, ipv6_dad: bool = False) -> Namespace:
        """Create namespace ``<prefix><name>`` (see :meth:`Namespace.create`)."""
        if self.closed:
            raise LabError("lab %s is closed" % self.prefix)
        ns = Namespace.create(self.name(name), ipv6_dad=ipv6_dad)
        self.add_cleanup("namespace %s" % ns.name, ns.delete)
        return ns

    def ovs(self, ns: Namespace, name: Optional[str] = None, *, timeout: float = 10.0) -> OvsInstance:
        """Start a private OVS in ``ns``, run directory ``<base_dir>/<prefix><name>-ovs``.

        ``name`` defaults to the namespace's name without the prefix; it is
        required for the root namespace.
        """
        if name is None:
            if ns.name is None or not ns.name.startswith(self.prefix):
                raise InvalidNameError("lab.ovs(%r) needs name= (namespace is not one of this lab's)" % ns)
            name = ns.name[len(self.prefix):]
        if self.closed:
            raise LabError("lab %s is closed" % self.prefix)
        ovs = OvsInstance.start(ns, self.base_dir / ("%s%s-ovs" % (self.prefix, name)), timeout=timeout)
        self.add_cleanup("OVS %s" % ovs.rundir, ovs.stop)
        return ovs

    def veth(
        self,
        a_ns: Namespace,
        a: str,
        b_ns: Namespace,
        b: str,
        *,
        a_mac: Optional[str] = None,
        b_mac: Optional[str] = None,
        mtu: Optional[int] = None,
        up: bool = True,
        offloads: bool = False,
    ) -> Veth:
        """Create a veth pair (see :func:`~topologies.netns.create_veth`; offloads off by default).

        An end in the root namespace must carry this lab's prefix.
        """
        for ns, dev in ((a_ns, a), (b_ns, b)):
            if ns.is_root and not dev.startswith(self.prefix):
                raise InvalidNameError(
                    "interface %r in the root namespace must start with the lab prefix %r "
                    "(use lab.name(...))" % (dev, self.prefix)
                )
        if self.closed:
            raise LabError("lab %s is closed" % self.prefix)
        veth = create_veth(a_ns, a, b_ns, b, a_mac=a_mac, b_mac=b_mac, mtu=mtu, up=up, offloads=offloads)
        self.add_cleanup("veth %s:%s -- %s:%s" % (a_ns.name, a, b_ns.name, b), veth.delete)
        return veth

    def popen(self, ns: Namespace, *cmd: str, **kwargs: object) -> "subprocess.Popen[bytes]":
        """Start ``cmd`` in the background in ``ns`` (:meth:`Namespace.popen`); stopped at teardown."""
        if self.closed:
            raise LabError("lab %s is closed" % self.prefix)
        proc = ns.popen(*cmd, **kwargs)

        def stop() -> None:
            stop_popen(proc)
            if proc in ns.processes:
                ns.processes.remove(proc)

        self.add_cleanup("process %d (%s)" % (proc.pid, " ".join(cmd)), stop)
        return proc

    # -- teardown ------------------------------------------------------------

    def close(self) -> None:
        """Tear everything down in reverse order of creation. Idempotent.

        Every step runs even if an earlier one failed; failures are logged and
        raised together as :class:`TeardownError` at the end.
        """
        self.closed = True
        failures: List[Tuple[str, BaseException]] = []
        while self._teardown:
            what, func = self._teardown.pop()
            try:
                func()
            except Exception as exc:
                log.exception("lab %s: teardown of %s failed", self.prefix, what)
                failures.append((what, exc))
        try:
            swept = cleanup_leftovers(self.prefix, base_dir=self.base_dir)
        except Exception as exc:
            log.exception("lab %s: final sweep failed", self.prefix)
            failures.append(("final sweep", exc))
        else:
            if swept:
                log.warning("lab %s: final sweep removed %s", self.prefix, swept)
        if failures:
            raise TeardownError(failures)


def cleanup_leftovers(
    prefix: str = PREFIX_FAMILY,
    *,
    base_dir: Union[str, Path, None] = None,
    timeout: float = 3.0,
) -> List[str]:
    """Remove what lab runs with names starting with ``prefix`` left behind.

    ``prefix`` is the family ``nf`` (every run), a full run prefix (``nf3fa9-``)
    or anything in between. A name is touched only if it starts with ``prefix``
    *and* has the shape of a lab name (``nf`` + 4 hex digits + ``-``), so
    unrelated namespaces such as ``nfs`` are never touched. In order: OVS and
    other processes whose command line names a matching run directory under
    ``base_dir``; matching interfaces in the root namespace; matching namespaces
    (with every process inside them); matching run directories. Returns a
    description of each removal.

    With the bare family (``nf``) this also removes the resources of lab runs
    that are still alive: use it for crashed runs, not next to running tests.
    """
    if not _PARTIAL_PREFIX_RE.match(prefix):
        raise InvalidNameError(
            "cleanup prefix %r must be 'nf', a full run prefix like 'nf3fa9-', or in between" % prefix
        )
    base = Path(base_dir) if base_dir is not None else default_base_dir()

    def ours(name: str) -> bool:
        return name.startswith(prefix) and PREFIX_RE.match(name) is not None

    done: List[str] = []

    # 1. Daemons of our run directories (found by command line, like pgrep -f).
    dir_re = re.compile(re.escape(str(base) + "/") + r"(nf[0-9a-f]{4}-[^/\s]*)/")
    candidates = pids_matching(str(base) + "/" + prefix)
    for pid in candidates:
        cmdline = pid_cmdline(pid)
        names = dir_re.findall(cmdline or "")
        if names and all(ours(n) for n in names):
            marker = str(base / names[0]) + "/"
            survivors = kill_pids([pid], must_contain=marker, timeout=timeout)
            done.append("killed pid %d (%s)%s" % (pid, cmdline, " [SURVIVED]" if survivors else ""))

    # 2. Interfaces in the root namespace ("name@peer" in ip -o output),
    # before the namespaces, whose deletion removes veth peers only asynchronously.
    out = run(["ip", "-o", "link", "show"]).stdout
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 3:
            continue
        dev = parts[1].strip().split("@")[0]
        if ours(dev):
            proc = run(["ip", "link", "delete", "dev", dev], check=False)
            if proc.returncode == 0:
                done.append("deleted root-namespace link %s" % dev)

    # 3. Namespaces, with whatever still runs inside them.
    for name in list_netns():
        if ours(name):
            Namespace(name).delete(timeout)
            done.append("deleted namespace %s" % name)

    # 4. Run directories.
    if base.is_dir():
        for entry in sorted(base.iterdir()):
            if entry.is_dir() and ours(entry.name):
                shutil.rmtree(entry, ignore_errors=True)
                done.append("removed %s" % entry)
    return done

