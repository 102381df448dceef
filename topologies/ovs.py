"""A private Open vSwitch (ovsdb-server + ovs-vswitchd) inside one network namespace.

The lab runs one OVS per node namespace (Home Agent, Mobile Router, ...), so
each node has its own bridges, ports and, for the userspace datapath, its own
tunnel routing and neighbour tables learnt from its namespace. Everything an
instance owns lives in its run directory::

    <rundir>/conf.db          database (ovsdb-tool create ... vswitch.ovsschema)
    <rundir>/db.sock          ovsdb-server remote (ovs-vsctl --db=unix:...)
    <rundir>/ovsdb.{pid,ctl,log}, <rundir>/vswitchd.{pid,ctl,log}
    <rundir>/<bridge>.mgmt    OpenFlow management socket of each bridge (ovs-ofctl)

Only the userspace datapath exists on the lab machines (no kernel module), so
every bridge is created with ``datapath_type=netdev``; its internal port is a
tap device in the namespace.

Typical use (normally through :class:`topologies.lab.Lab`)::

    ovs = OvsInstance.start(ns, Path("/tmp/nemo-fabric/nf3fa9-ha-ovs"))
    ovs.add_bridge("br-int", secure=True, controller="tcp:127.0.0.1:6653")
    ovs.add_gre_port("br-int", "gre0", ofport=10)
    ovs.add_flow("br-int", "priority=0,actions=drop")
    ovs.stop()
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from topologies.netns import Namespace, validate_ifname, validate_mac
from topologies.procs import (
    CommandError,
    CommandTimeout,
    LabError,
    kill_pids,
    pid_cmdline,
    pids_matching,
    run,
    wait_until,
)

log = logging.getLogger(__name__)

#: OVS database schema shipped by Debian's openvswitch-common.
VSWITCH_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
#: Longest path of a unix socket (sun_path is 108 bytes with the NUL).
UNIX_PATH_MAX = 107
#: Room left in the run directory path for "/<15-char bridge>.mgmt".
_SOCKET_SUFFIX_MAX = 1 + 15 + len(".snoop")

#: Default OpenFlow version of bridges and of ovs-ofctl.
OPENFLOW13 = "OpenFlow13"

_DAEMONS = ("ovs-vswitchd", "ovsdb-server")


class OvsError(LabError):
    """An OVS instance failed to start, stop or configure."""


class OvsInstance:
    """One private ovsdb-server + ovs-vswitchd pair running in namespace ``ns``.

    Construct with :meth:`start`. All helpers talk to this instance only,
    through the sockets in :attr:`rundir`.
    """

    def __init__(self, ns: Namespace, rundir: Union[str, Path]) -> None:
        self.ns = ns
        self.rundir = Path(rundir).absolute()
        if len(str(self.rundir)) + _SOCKET_SUFFIX_MAX > UNIX_PATH_MAX:
            raise OvsError(
                "OVS run directory %s is too long for unix sockets (%d characters; at most %d)"
                % (self.rundir, len(str(self.rundir)), UNIX_PATH_MAX - _SOCKET_SUFFIX_MAX)
            )

    def __repr__(self) -> str:
        return "OvsInstance(ns=%r, rundir=%r)" % (self.ns.name, str(self.rundir))

    # -- paths ---------------------------------------------------------------

    @property
    def db_file(self) -> Path:
        return self.rundir / "conf.db"

    @property
    def db_socket(self) -> Path:
        return self.rundir / "db.sock"

    @property
    def db_target(self) -> str:
        """The database remote for ``ovs-vsctl --db=``."""
        return "unix:%s" % self.db_socket

    def pidfile(self, daemon: str) -> Path:
        return self.rundir / ("%s.pid" % _short(daemon))

    def ctl_socket(self, daemon: str) -> Path:
        """The unixctl socket of ``daemon`` ("ovs-vswitchd" or "ovsdb-server") for ovs-appctl."""
        return self.rundir / ("%s.ctl" % _short(daemon))

    def log_file(self, daemon: str) -> Path:
        return self.rundir / ("%s.log" % _short(daemon))

    def mgmt_socket(self, bridge: str) -> Path:
        """The OpenFlow management socket of ``bridge``."""
        return self.rundir / ("%s.mgmt" % validate_ifname(bridge))

    def mgmt_target(self, bridge: str) -> str:
        """``unix:<rundir>/<bridge>.mgmt``, the switch argument of ``ovs-ofctl``."""
        return "unix:%s" % self.mgmt_socket(bridge)

    # -- life cycle ----------------------------------------------------------

    @classmethod
    def start(
        cls,
        ns: Namespace,
        rundir: Union[str, Path],
        *,
        timeout: float = 10.0,
        schema: Path = VSWITCH_SCHEMA,
    ) -> "OvsInstance":
        """Create ``rundir`` and a fresh database, start both daemons in ``ns``, wait until ready.

        ``rundir`` must not exist yet (a leftover of a crashed run is reported,
        not reused). Ready means: ``ovs-vsctl show`` answers, ovs-vswitchd's
        control socket answers, and ovs-vswitchd has applied a database change.
        On failure everything started so far is stopped and the run directory
        removed; the error includes the tail of the daemons' logs.
        """
        ovs = cls(ns, rundir)
        if ovs.rundir.exists():
            raise OvsError(
                "OVS run directory %s already exists (a leftover run? see "
                "topologies.lab.cleanup_leftovers)" % ovs.rundir
            )
        ovs.rundir.parent.mkdir(parents=True, exist_ok=True)
        ovs.rundir.mkdir()
        try:
            ovs._start(timeout, schema)
        except Exception as exc:
            tail = ovs.log_tail()
            try:
                ovs.stop()
            except Exception:  # keep the original error
                log.exception("cleanup after failed OVS start in %s", ovs.rundir)
            if isinstance(exc, LabError) and tail:
                raise OvsError("%s\n%s" % (exc, tail)) from exc
            raise
        return ovs

    def _start(self, timeout: float, schema: Path) -> None:
        run(["ovsdb-tool", "create", str(self.db_file), str(schema)])
        env = ["env", "OVS_RUNDIR=%s" % self.rundir]
        self._spawn(
            "ovsdb-server",
            env
            + [
                "ovsdb-server",
                str(self.db_file),
                "--remote=punix:%s" % self.db_socket,
                "--pidfile=%s" % self.pidfile("ovsdb-server"),
                "--unixctl=%s" % self.ctl_socket("ovsdb-server"),
                "--log-file=%s" % self.log_file("ovsdb-server"),
                "--detach",
            ],
            timeout,
        )
        wait_until(
            lambda: self._vsctl_ok("--no-wait", "show"),
            timeout,
            "ovsdb-server in %s to answer on %s" % (self.ns.name, self.db_socket),
        )
        self.vsctl("init", wait=False)
        self._spawn(
            "ovs-vswitchd",
            env
            + [
                "ovs-vswitchd",
                self.db_target,
                "--pidfile=%s" % self.pidfile("ovs-vswitchd"),
                "--unixctl=%s" % self.ctl_socket("ovs-vswitchd"),
                "--log-file=%s" % self.log_file("ovs-vswitchd"),
                "--detach",
            ],
            timeout,
        )
        wait_until(
            lambda: run(["ovs-appctl", "-t", str(self.ctl_socket("ovs-vswitchd")), "version"],
                        check=False, timeout=timeout).returncode == 0,
            timeout,
            "ovs-vswitchd in %s to answer on %s" % (self.ns.name, self.ctl_socket("ovs-vswitchd")),
        )
        # A change that ovs-vsctl waits for: proves vswitchd reads the database.
        self.vsctl(
            "set", "Open_vSwitch", ".",
            "external_ids:nemo-fabric-rundir=%s" % json.dumps(str(self.rundir)),
            timeout=timeout,
        )

    def _spawn(self, daemon: str, cmd: List[str], timeout: float) -> None:
        # stderr goes to a file, not a pipe: a detached daemon keeps inherited
        # pipes open, and reading them would block until it exits.
        argv = self.ns.argv(cmd)
        errfile = self.rundir / ("%s.stderr" % _short(daemon))
        log.debug("spawn: %s", " ".join(argv))
        with errfile.open("w") as err:
            try:
                proc = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, timeout=timeout
                )
            except subprocess.TimeoutExpired:
                raise CommandTimeout(argv, timeout) from None
        if proc.returncode != 0:
            raise CommandError(proc.returncode, argv, "", errfile.read_text())

    def daemon_pids(self) -> List[int]:
        """Pids of this instance's daemons (from pidfiles and from command lines)."""
        marker = str(self.rundir) + "/"
        pids = set(pids_matching(marker))
        for daemon in _DAEMONS:
            try:
                pid = int(self.pidfile(daemon).read_text().strip())
            except (OSError, ValueError):
                continue
            cmdline = pid_cmdline(pid)
            if cmdline is not None and marker in cmdline:
                pids.add(pid)
        return sorted(pids)

    def running(self) -> bool:
        """True while any daemon of this instance runs."""
        return bool(self.daemon_pids())

    def stop(self, timeout: float = 5.0) -> None:
        """Stop ovs-vswitchd, then ovsdb-server, and remove the run directory. Idempotent.

        Each daemon is asked to leave (``ovs-appctl exit``); one still running
        after ``timeout`` gets SIGTERM, then SIGKILL (found by pidfile and by
        command line, which names the run directory).
        """
        marker = str(self.rundir) + "/"
        problems = []
        for daemon in _DAEMONS:
            pids = [p for p in self.daemon_pids() if daemon in (pid_cmdline(p) or "")]
            if not pids:
                continue
            ctl = self.ctl_socket(daemon)
            if ctl.exists():
                try:
                    run(["ovs-appctl", "-t", str(ctl), "exit"], check=False, timeout=timeout)
                except LabError as exc:  # a hung daemon: the signals below deal with it
                    log.warning("ovs-appctl exit for %s %s: %s", daemon, pids, exc)
            try:
                wait_until(
                    lambda: not any(marker in (pid_cmdline(p) or "") for p in pids),
                    timeout,
                    "%s %s to exit" % (daemon, pids),
                )
            except LabError:
                log.warning("%s %s did not exit on request: killing", daemon, pids)
                survivors = kill_pids(pids, must_contain=marker, timeout=timeout)
                if survivors:
                    problems.append("%s %s survived SIGKILL" % (daemon, survivors))
        if self.rundir.exists():
            shutil.rmtree(self.rundir, ignore_errors=True)
            if self.rundir.exists():
                problems.append("could not remove %s" % self.rundir)
        if problems:
            raise OvsError("stopping OVS in %s: %s" % (self.rundir, "; ".join(problems)))

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of each daemon's log and stderr file (for error messages)."""
        parts = []
        for daemon in _DAEMONS:
            for path in (self.log_file(daemon), self.rundir / ("%s.stderr" % _short(daemon))):
                try:
                    text = path.read_text(errors="replace").splitlines()
                except OSError:
                    continue
                if text:
                    parts.append("--- %s (last %d lines)\n%s" % (path, lines, "\n".join(text[-lines:])))
        return "\n".join(parts)

    # -- the three command-line tools -------------------------------------------

    def vsctl(self, *args: str, timeout: float = 10.0, wait: bool = True) -> str:
        """Run ``ovs-vsctl --db=unix:<rundir>/db.sock <args>`` and return its stdout (stripped).

        With ``wait`` (the default) ovs-vsctl waits until ovs-vswitchd has
        applied the change, at most ``timeout`` seconds.
        """
        argv = ["ovs-vsctl", "--db=%s" % self.db_target, "--timeout=%d" % math.ceil(timeout)]
        if not wait:
            argv.append("--no-wait")
        return run(argv + list(args), timeout=timeout + 5).stdout.strip()

    def _vsctl_ok(self, *args: str) -> bool:
        argv = ["ovs-vsctl", "--db=%s" % self.db_target, "--timeout=1"] + list(args)
        return run(argv, check=False, timeout=5).returncode == 0

    def ofctl(
        self,
        command: str,
        bridge: str,
        *args: str,
        protocols: Optional[str] = OPENFLOW13,
        input: Optional[str] = None,
        timeout: float = 30.0,
    ) -> str:
        """Run ``ovs-ofctl -O <protocols> <command> unix:<rundir>/<bridge>.mgmt <args>``; return stdout."""
        argv = ["ovs-ofctl"]
        if protocols:
            argv += ["-O", protocols]
        argv += [command, self.mgmt_target(bridge)] + list(args)
        return run(argv, input=input, timeout=timeout).stdout

    def appctl(self, *args: str, daemon: str = "ovs-vswitchd", timeout: float = 10.0) -> str:
        """Run ``ovs-appctl -t <rundir>/<daemon>.ctl <args>`` and return its stdout."""
        argv = ["ovs-appctl", "-t", str(self.ctl_socket(daemon)), "--timeout=%d" % math.ceil(timeout)]
        return run(argv + list(args), timeout=timeout + 5).stdout

    # -- bridges and ports ---------------------------------------------------------

    def add_bridge(
        self,
        name: str,
        *,
        hwaddr: Optional[str] = None,
        secure: bool = False,
        protocols: Sequence[str] = (OPENFLOW13,),
        controller: Optional[str] = None,
        other_config: Optional[Mapping[str, str]] = None,
        up: bool = True,
        inactivity_probe_ms: Optional[int] = None,
    ) -> None:
        """Add a userspace bridge (``datapath_type=netdev``).

        ``hwaddr`` fixes the bridge MAC (``other-config:hwaddr``), ``secure``
        sets ``fail_mode=secure`` (no NORMAL flow when no controller is
        connected), ``protocols`` the OpenFlow versions, ``controller`` a
        target like ``tcp:127.0.0.1:6653`` (note: the address is resolved in
        this OVS's namespace). ``up`` brings the bridge's internal port up in
        the namespace. ``inactivity_probe_ms`` sets how long OVS lets the
        controller stay silent before it probes and drops the connection
        (OVS default 5 s; a controller reading tens of thousands of flows at
        start-up needs longer).
        """
        validate_ifname(name)
        settings = ["datapath_type=netdev", "protocols=%s" % ",".join(protocols)]
        if secure:
            settings.append("fail_mode=secure")
        config = dict(other_config or {})
        if hwaddr is not None:
            config["hwaddr"] = validate_mac(hwaddr)
        settings += ["other-config:%s=%s" % (k, json.dumps(v)) for k, v in config.items()]
        args = ["add-br", name, "--", "set", "Bridge", name] + settings
        if controller is not None:
            args += ["--", "set-controller", name, controller]
        self.vsctl(*args)
        if controller is not None:
            self.vsctl("set", "Controller", name, "connection-mode=out-of-band")
            if inactivity_probe_ms is not None:
                self.vsctl("set", "Controller", name,
                           "inactivity_probe=%d" % int(inactivity_probe_ms))
        if up:
            self.ns.link_up(name)

    def set_controller(self, bridge: str, target: Optional[str]) -> None:
        """Point ``bridge`` at controller ``target`` (None removes the controller)."""
        if target is None:
            self.vsctl("del-controller", bridge)
        else:
            self.vsctl("set-controller", bridge, target)
            self.vsctl("set", "Controller", bridge, "connection-mode=out-of-band")

    def del_bridge(self, name: str) -> None:
        self.vsctl("--if-exists", "del-br", name)

    def add_port(
        self,
        bridge: str,
        port: str,
        *,
        ofport: Optional[int] = None,
        iface_type: Optional[str] = None,
        options: Optional[Mapping[str, str]] = None,
    ) -> int:
        """Add ``port`` (by default an existing device such as a veth end) to ``bridge``.

        ``ofport`` requests a fixed OpenFlow port number (``ofport_request``),
        ``iface_type`` and ``options`` set the interface type and options.
        Returns the OpenFlow port number; raises :class:`OvsError` with OVS's
        own error text when the interface could not be opened.
        """
        validate_ifname(port)
        args = ["add-port", bridge, port]
        settings = _iface_settings(ofport, iface_type, options)
        if settings:
            args += ["--", "set", "Interface", port] + settings
        self.vsctl(*args)
        return self.ofport(port)

    def add_gre_port(
        self,
        bridge: str,
        port: str = "gre0",
        *,
        ofport: Optional[int] = None,
        remote_ip: str = "flow",
        key: str = "flow",
        packet_type: Optional[str] = "legacy_l3",
        options: Optional[Mapping[str, str]] = None,
    ) -> int:
        """Add a GRE port, by default flow-based and L3 (carries IP packets without Ethernet).

        Defaults give ``type=gre options:remote_ip=flow options:key=flow
        options:packet_type=legacy_l3``: flows choose the remote endpoint
        (``set_field:<ip>->tun_ipv6_dst`` or ``tun_dst``) and the key
        (``set_field:<n>->tun_id``). Returns the OpenFlow port number.
        """
        opts = {"remote_ip": remote_ip, "key": key}
        if packet_type is not None:
            opts["packet_type"] = packet_type
        opts.update(options or {})
        return self.add_port(bridge, port, ofport=ofport, iface_type="gre", options=opts)

    def add_patch_pair(
        self,
        bridge_a: str,
        port_a: str,
        bridge_b: str,
        port_b: str,
        *,
        ofport_a: Optional[int] = None,
        ofport_b: Optional[int] = None,
    ) -> Tuple[int, int]:
        """Connect two bridges of this instance with patch ports; return both port numbers."""
        validate_ifname(port_a)
        validate_ifname(port_b)
        args: List[str] = []
        for bridge, port, peer, ofport in (
            (bridge_a, port_a, port_b, ofport_a),
            (bridge_b, port_b, port_a, ofport_b),
        ):
            args += ["--", "add-port", bridge, port, "--", "set", "Interface", port]
            args += _iface_settings(ofport, "patch", {"peer": peer})
        self.vsctl(*args[1:])
        return self.ofport(port_a), self.ofport(port_b)

    def del_port(self, port: str) -> None:
        self.vsctl("--if-exists", "del-port", port)

    def ofport(self, port: str) -> int:
        """The OpenFlow port number of interface ``port``; :class:`OvsError` if it has none."""
        value = self.vsctl("get", "Interface", port, "ofport")
        if value.lstrip("-").isdigit() and int(value) > 0:
            return int(value)
        error = self.vsctl("get", "Interface", port, "error")
        raise OvsError("interface %s has no OpenFlow port (ofport=%s, error=%s)" % (port, value, error))

    # -- flows -----------------------------------------------------------------

    def add_flow(self, bridge: str, flow: str) -> None:
        """``ovs-ofctl add-flow`` one flow (OpenFlow 1.3)."""
        self.ofctl("add-flow", bridge, flow)

    def add_flows(self, bridge: str, flows: Iterable[str]) -> None:
        """Add many flows in one ``ovs-ofctl add-flows`` call (flows on stdin)."""
        text = "".join(f.strip() + "\n" for f in flows)
        if text:
            self.ofctl("add-flows", bridge, "-", input=text)

    def del_flows(self, bridge: str, match: Optional[str] = None, *, strict: bool = False) -> None:
        """Delete the flows matching ``match`` (all flows if None); ``strict`` also matches priority."""
        args = ["--strict"] if strict else []
        if match is not None:
            args.append(match)
        elif strict:
            raise ValueError("del_flows(strict=True) needs a match")
        self.ofctl("del-flows", bridge, *args)

    def dump_flows(self, bridge: str, match: Optional[str] = None, *, stats: bool = True) -> List[str]:
        """The flows of ``bridge`` (one string each, without the reply header)."""
        args = [] if stats else ["--no-stats"]
        if match is not None:
            args.append(match)
        out = self.ofctl("dump-flows", bridge, *args)
        return [line.strip() for line in out.splitlines() if line.strip() and not line.startswith("OFPST_")]

    # -- userspace tunnelling tables ----------------------------------------------

    def tnl_neigh_set(self, bridge: str, ip: str, mac: str) -> None:
        """Pre-set a tunnel neighbour (``ovs-appctl tnl/neigh/set``), so the first
        encapsulated packet is not dropped while OVS resolves the remote endpoint."""
        self.appctl("tnl/neigh/set", bridge, ip, validate_mac(mac))

    def tnl_neigh_show(self) -> str:
        return self.appctl("tnl/neigh/show")

    def route_show(self) -> str:
        """OVS's tunnel routing table (``ovs/route/show``), learnt from the namespace."""
        return self.appctl("ovs/route/show")


def _short(daemon: str) -> str:
    if daemon not in _DAEMONS:
        raise ValueError("unknown OVS daemon %r (expected one of %s)" % (daemon, ", ".join(_DAEMONS)))
    return "vswitchd" if daemon == "ovs-vswitchd" else "ovsdb"


def _iface_settings(
    ofport: Optional[int], iface_type: Optional[str], options: Optional[Mapping[str, str]]
) -> List[str]:
    settings = []
    if iface_type is not None:
        settings.append("type=%s" % iface_type)
    for key, value in (options or {}).items():
        settings.append("options:%s=%s" % (key, json.dumps(str(value))))
    if ofport is not None:
        if not 1 <= int(ofport) <= 0xFEFF:
            raise ValueError("ofport %r out of range 1..65279" % (ofport,))
        settings.append("ofport_request=%d" % int(ofport))
    return settings
