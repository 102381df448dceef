"""Network namespaces, veth pairs and per-namespace network settings.

Thin, typed wrappers around ``ip``, ``sysctl`` and ``ethtool`` (run through
:func:`topologies.procs.run`, so a failure names the command, its exit code and
its stderr).

Naming policy
-------------
Namespace names are global on the host, so every lab run uses its own prefix
(:func:`new_prefix`, e.g. ``nf3fa9-``) and names its namespaces ``<prefix><node>``
(``nf3fa9-ha``). Leftovers of crashed runs are recognised by the prefix family
(:data:`PREFIX_RE`) and nothing else is ever touched.

Interfaces are created directly inside their namespace (``ip link add ... netns
NS``), never passing through the root namespace, so their names are local to
that namespace and need no prefix (``eth0`` in two lab namespaces never
collide). An interface placed in the root namespace (:meth:`Namespace.root`),
however, must carry a lab prefix. Interface names are checked against the
kernel's rules (at most 15 characters, no ``/``, ``:`` or whitespace) before
any command runs.
"""

from __future__ import annotations

import logging
import re
import secrets
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from topologies.procs import (
    DEFAULT_TIMEOUT,
    LabError,
    kill_pids,
    run,
    stop_popen,
)

log = logging.getLogger(__name__)

#: Every lab prefix starts with this.
PREFIX_FAMILY = "nf"
#: A full run prefix: the family, four hex digits, a dash (``nf3fa9-``).
PREFIX_RE = re.compile(r"^nf[0-9a-f]{4}-")
#: Longest Linux interface name (IFNAMSIZ - 1).
IFNAME_MAX = 15
#: Longest namespace name we accept (a file name under /run/netns).
NETNS_NAME_MAX = 64

_NETNS_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")

#: Offloads turned off on veths that feed a userspace (netdev) OVS bridge.
OFFLOAD_FEATURES = ("tx", "rx", "tso", "gso", "gro")


class InvalidNameError(LabError, ValueError):
    """A namespace, interface or prefix name breaks the naming rules."""


def new_prefix() -> str:
    """A fresh run prefix: ``nf`` + 4 random hex digits + ``-`` (7 characters)."""
    return "%s%s-" % (PREFIX_FAMILY, secrets.token_hex(2))


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a full run prefix (``nfXXXX-``), else raise."""
    if not PREFIX_RE.fullmatch(prefix):
        raise InvalidNameError(
            "lab prefix %r must look like 'nf' + 4 lowercase hex digits + '-' (e.g. %r)"
            % (prefix, new_prefix())
        )
    return prefix


def validate_ifname(name: str) -> str:
    """Return ``name`` if the kernel accepts it as an interface name, else raise.

    Linux limits interface names to 15 characters and forbids ``/``, ``:``,
    whitespace and the names ``.`` and ``..``.
    """
    if not isinstance(name, str) or not name:
        raise InvalidNameError("interface name must be a non-empty string, got %r" % (name,))
    if len(name) > IFNAME_MAX:
        raise InvalidNameError(
            "interface name %r is %d characters long; Linux allows at most %d"
            % (name, len(name), IFNAME_MAX)
        )
    if name in (".", "..") or any(c in name for c in "/:") or any(c.isspace() for c in name):
        raise InvalidNameError(
            "interface name %r is invalid (no '/', ':', whitespace, '.' or '..')" % name
        )
    return name


def validate_netns_name(name: str) -> str:
    """Return ``name`` if it is a safe namespace name (letters, digits, ``_.-``), else raise."""
    if (
        not isinstance(name, str)
        or not _NETNS_NAME_RE.match(name)
        or name in (".", "..")
        or len(name) > NETNS_NAME_MAX
    ):
        raise InvalidNameError(
            "namespace name %r is invalid (1-%d of A-Z a-z 0-9 _ . -)" % (name, NETNS_NAME_MAX)
        )
    return name


def validate_mac(mac: str) -> str:
    """Return ``mac`` if it looks like ``02:00:00:00:00:01``, else raise ValueError."""
    if not _MAC_RE.match(mac):
        raise ValueError("invalid MAC address %r (expected xx:xx:xx:xx:xx:xx)" % (mac,))
    return mac.lower()


def list_netns() -> List[str]:
    """Names of all named network namespaces on the host (``ip netns list``)."""
    out = run(["ip", "netns", "list"]).stdout
    # Lines look like "name" or "name (id: 3)".
    return [line.split()[0] for line in out.splitlines() if line.strip()]


class Namespace:
    """A named network namespace, or the root namespace (:meth:`root`).

    Create one with :meth:`create` (or :meth:`topologies.lab.Lab.namespace`,
    which also tears it down). Commands run in it with ``ip netns exec``;
    background processes started with :meth:`popen` are tracked and stopped by
    :meth:`stop_processes` and :meth:`delete`.
    """

    def __init__(self, name: Optional[str]) -> None:
        if name is not None:
            validate_netns_name(name)
        self.name = name
        self.processes: List["subprocess.Popen[bytes]"] = []

    def __repr__(self) -> str:
        return "Namespace(%r)" % (self.name,)

    # -- life cycle ----------------------------------------------------------

    @classmethod
    def root(cls) -> "Namespace":
        """The host's root namespace (commands run without ``ip netns exec``)."""
        return cls(None)

    @classmethod
    def create(cls, name: str, *, ipv6_dad: bool = False) -> "Namespace":
        """Create namespace ``name``, bring its loopback up, and return it.

        With ``ipv6_dad`` false (the default) duplicate address detection is
        off for every interface of the namespace (``accept_dad=0`` for ``all``
        and ``default``), so addresses, including link-local ones of interfaces
        created later (veths, OVS internal ports), are usable at once.
        """
        ns = cls(name)
        run(["ip", "netns", "add", name])
        try:
            ns.link_up("lo")
            if not ipv6_dad:
                ns.sysctl("net.ipv6.conf.all.accept_dad", "0")
                ns.sysctl("net.ipv6.conf.default.accept_dad", "0")
        except Exception:
            ns.delete()
            raise
        return ns

    @property
    def is_root(self) -> bool:
        return self.name is None

    def exists(self) -> bool:
        """True if the namespace exists (always true for the root namespace)."""
        return self.name is None or self.name in list_netns()

    def pids(self) -> List[int]:
        """Pids of every process running in the namespace (``ip netns pids``)."""
        if self.name is None:
            raise LabError("pids() of the root namespace is not supported")
        proc = run(["ip", "netns", "pids", self.name], check=False)
        return [int(p) for p in proc.stdout.split() if p.isdigit()]

    def delete(self, timeout: float = 3.0) -> None:
        """Stop every process in the namespace, then delete it. Idempotent.

        Stops the tracked background processes first, then any other process
        still inside (for example an OVS daemon nobody stopped): a namespace
        only disappears when its last process is gone.
        """
        if self.name is None:
            raise LabError("refusing to delete the root namespace")
        self.stop_processes(timeout)
        if self.name not in list_netns():
            return
        survivors = kill_pids(self.pids(), timeout=timeout)
        if survivors:
            log.error("processes %s in namespace %s survived SIGKILL", survivors, self.name)
        run(["ip", "netns", "delete", self.name])

    # -- commands ------------------------------------------------------------

    def argv(self, cmd: Sequence[str]) -> List[str]:
        """``cmd`` wrapped in ``ip netns exec <name>`` (unchanged for the root namespace)."""
        argv = [str(c) for c in cmd]
        if self.name is None:
            return argv
        return ["ip", "netns", "exec", self.name] + argv

    def run(
        self,
        *cmd: str,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: Optional[str] = None,
    ) -> "subprocess.CompletedProcess[str]":
        """Run ``cmd`` in the namespace; see :func:`topologies.procs.run`."""
        return run(self.argv(cmd), check=check, timeout=timeout, input=input)

    def popen(self, *cmd: str, **kwargs: object) -> "subprocess.Popen[bytes]":
        """Start ``cmd`` in the background in the namespace and track it.

        Keyword arguments go to :class:`subprocess.Popen`; stdin, stdout and
        stderr default to ``/dev/null``. The process gets its own session so
        that :meth:`stop_processes` can stop it together with its children.
        """
        for stream in ("stdin", "stdout", "stderr"):
            kwargs.setdefault(stream, subprocess.DEVNULL)
        kwargs.setdefault("start_new_session", True)
        proc: "subprocess.Popen[bytes]" = subprocess.Popen(self.argv(cmd), **kwargs)  # type: ignore[call-overload]
        log.debug("started pid %d in %s: %s", proc.pid, self.name or "root", " ".join(cmd))
        self.processes.append(proc)
        return proc

    def stop_processes(self, timeout: float = 3.0) -> None:
        """Stop the tracked background processes, newest first (SIGTERM, wait, SIGKILL)."""
        while self.processes:
            stop_popen(self.processes.pop(), timeout)

    # -- links ---------------------------------------------------------------

    def _ip(self, *args: str) -> "subprocess.CompletedProcess[str]":
        if self.name is None:
            return run(["ip"] + list(args))
        return run(["ip", "-n", self.name] + list(args))

    def link_exists(self, dev: str) -> bool:
        if self.name is not None and not self.exists():
            return False
        argv = ["ip", "link", "show", "dev", dev]
        if self.name is not None:
            argv[1:1] = ["-n", self.name]
        return run(argv, check=False).returncode == 0

    def link_up(self, dev: str) -> None:
        self._ip("link", "set", "dev", dev, "up")

    def link_down(self, dev: str) -> None:
        self._ip("link", "set", "dev", dev, "down")

    def set_mtu(self, dev: str, mtu: int) -> None:
        self._ip("link", "set", "dev", dev, "mtu", str(int(mtu)))

    def set_mac(self, dev: str, mac: str) -> None:
        self._ip("link", "set", "dev", dev, "address", validate_mac(mac))

    def link_mac(self, dev: str) -> str:
        """The MAC address of ``dev``."""
        out = self._ip("-br", "link", "show", "dev", dev).stdout.split()
        # "<name>@<peer> <state> <mac> <flags>"
        return out[2]

    def link_mtu(self, dev: str) -> int:
        """The MTU of ``dev``."""
        out = self._ip("-o", "link", "show", "dev", dev).stdout
        match = re.search(r" mtu (\d+) ", out)
        if match is None:
            raise LabError("no MTU in 'ip link show dev %s' output: %r" % (dev, out))
        return int(match.group(1))

    def delete_link(self, dev: str) -> None:
        """Delete ``dev`` (for a veth this removes both ends)."""
        self._ip("link", "delete", "dev", dev)

    # -- addresses, routes, neighbours -----------------------------------------

    def add_addr(self, dev: str, cidr: str, *, nodad: bool = True) -> None:
        """Add ``cidr`` (IPv4 or IPv6, e.g. ``2001:db8::1/64``) to ``dev``.

        IPv6 addresses get ``nodad`` by default so they are usable at once.
        """
        args = ["addr", "add", cidr, "dev", dev]
        if nodad and ":" in cidr:
            args.append("nodad")
        self._ip(*args)

    def del_addr(self, dev: str, cidr: str) -> None:
        self._ip("addr", "del", cidr, "dev", dev)

    def addresses(self, dev: str) -> List[str]:
        """Addresses on ``dev`` as ``addr/len`` strings (both families, all scopes)."""
        out = self._ip("-br", "addr", "show", "dev", dev).stdout.split()
        return out[2:]

    def add_route(
        self,
        dst: str,
        *,
        via: Optional[str] = None,
        dev: Optional[str] = None,
        metric: Optional[int] = None,
        replace: bool = False,
    ) -> None:
        """Add (or with ``replace`` set, replace) a route to ``dst`` (``default`` works).

        The family follows ``dst`` (or ``via`` for ``default``).
        """
        if via is None and dev is None:
            raise ValueError("add_route(%r) needs via= or dev=" % dst)
        family = "-6" if ":" in dst or (via is not None and ":" in via) else "-4"
        args = [family, "route", "replace" if replace else "add", dst]
        if via is not None:
            args += ["via", via]
        if dev is not None:
            args += ["dev", dev]
        if metric is not None:
            args += ["metric", str(int(metric))]
        self._ip(*args)

    def del_route(self, dst: str, *, ipv6: Optional[bool] = None) -> None:
        v6 = (":" in dst) if ipv6 is None else ipv6
        self._ip("-6" if v6 else "-4", "route", "del", dst)

    def add_neigh(self, ip: str, mac: str, dev: str) -> None:
        """Add (or replace) a permanent neighbour entry ``ip -> mac`` on ``dev``."""
        self._ip("neigh", "replace", ip, "lladdr", validate_mac(mac), "dev", dev, "nud", "permanent")

    # -- kernel settings ---------------------------------------------------------

    def sysctl(self, key: str, value: str) -> None:
        """Set a (per-namespace) sysctl, e.g. ``net.ipv6.conf.all.forwarding``."""
        self.run("sysctl", "-q", "-w", "%s=%s" % (key, value))

    def enable_forwarding(self, *, ipv6: bool = True, ipv4: bool = True) -> None:
        """Turn on IPv6 and/or IPv4 forwarding in the namespace."""
        if ipv6:
            self.sysctl("net.ipv6.conf.all.forwarding", "1")
        if ipv4:
            self.sysctl("net.ipv4.ip_forward", "1")

    def disable_offloads(self, dev: str) -> None:
        """``ethtool -K dev tx off rx off tso off gso off gro off``.

        Needed on veths that feed a userspace (netdev) OVS bridge: with
        checksum/segmentation offload on, TCP stalls through such a bridge.
        """
        args = ["ethtool", "-K", dev]
        for feature in OFFLOAD_FEATURES:
            args += [feature, "off"]
        self.run(*args)

    def offloads(self, dev: str) -> Dict[str, bool]:
        """Current ``ethtool -k`` features of ``dev`` (name -> on), without the fixed flag."""
        out = self.run("ethtool", "-k", dev).stdout
        features = {}
        for line in out.splitlines()[1:]:
            name, _, rest = line.strip().partition(":")
            if rest:
                features[name] = rest.split()[0] == "on"
        return features


@dataclass(frozen=True)
class Veth:
    """Both ends of a veth pair: ``a`` in ``a_ns``, ``b`` in ``b_ns``."""

    a_ns: Namespace
    a: str
    b_ns: Namespace
    b: str

    def delete(self) -> None:
        """Delete the pair if it still exists (deleting one end removes both)."""
        for ns, dev in ((self.a_ns, self.a), (self.b_ns, self.b)):
            if ns.link_exists(dev):
                ns.delete_link(dev)
                return


def _check_end(ns: Namespace, dev: str) -> None:
    validate_ifname(dev)
    if ns.is_root and not PREFIX_RE.match(dev):
        raise InvalidNameError(
            "interface %r would live in the root namespace: its name must start with a "
            "lab prefix (nfXXXX-), so that cleanup can tell it is ours" % dev
        )


def create_veth(
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
    """Create a veth pair with end ``a`` in ``a_ns`` and end ``b`` in ``b_ns``.

    Each end is created directly in its namespace. Optional fixed MACs and MTU
    (both ends). ``up`` brings both ends up; ``offloads=False`` (the default)
    turns checksum and segmentation offloads off on both ends
    (:meth:`Namespace.disable_offloads`), as a userspace OVS bridge needs.
    """
    _check_end(a_ns, a)
    _check_end(b_ns, b)
    if a_ns.name == b_ns.name and a == b:
        raise InvalidNameError("both veth ends are called %r in the same namespace" % a)
    argv = ["ip", "link", "add", "name", a]
    if a_ns.name is not None:
        argv += ["netns", a_ns.name]
    if a_mac is not None:
        argv += ["address", validate_mac(a_mac)]
    if mtu is not None:
        argv += ["mtu", str(int(mtu))]
    argv += ["type", "veth", "peer", "name", b]
    if b_ns.name is not None:
        argv += ["netns", b_ns.name]
    if b_mac is not None:
        argv += ["address", validate_mac(b_mac)]
    if mtu is not None:
        argv += ["mtu", str(int(mtu))]
    run(argv)
    veth = Veth(a_ns, a, b_ns, b)
    try:
        for ns, dev in ((a_ns, a), (b_ns, b)):
            if not offloads:
                ns.disable_offloads(dev)
            if up:
                ns.link_up(dev)
    except Exception:
        veth.delete()
        raise
    return veth
