"""Mininet custom file: the RFC 4908 figure-1 lab (real nemo-ha and nemo-mr) in Mininet.

Run from the repository root, as root::

    mn --custom topologies/mininet_fig1.py --topo rfc4908 --test rfc4908   # build, ping, stop
    mn --custom topologies/mininet_fig1.py --topo rfc4908                  # build, Mininet CLI

The topology is the one of ``tests/integration/mr_lab.py``::

    lan1, lan2 -- s1 -- mr [nemo-mr; private OVS: br-mr, br-up1 (CoAs a::100, a::101),
                            |  br-up2 (b::100, b::101)]
                          up1 -- isp1 --+
                          up2 -- isp2 --+-- core -- ha [nemo-ha; private OVS: br-ha]
                                         \\-- cn

Every node is a Mininet host (a network namespace with a shell); ``s1``, the
mobile network's LAN segment, is a plain Linux bridge in its own namespace
(:class:`LanBridge`), so the lab needs neither an OpenFlow controller for
Mininet nor the system's Open vSwitch, and ``--switch``/``--controller`` do
not matter. Mininet's own OVS switches cannot stand in for the HA's or the
MR's datapath: those live in the system OVS in the root namespace, while a
userspace GRE endpoint takes its routes and neighbours from the namespace of
its ovs-vswitchd. So ``ha`` and ``mr`` each run a *private* OVS (ovsdb-server +
ovs-vswitchd) inside their own namespace, exactly as the namespace lab does:
the host's namespace gets a name (``ip netns attach nfXXXX-ha <pid>``) for
the lifetime of the node, and :class:`topologies.lab.Lab` starts OVS and the
agent in it and tears everything down again (run directories under
``/tmp/nemo-fabric/nfXXXX-*``).

``mn`` runs this file with the system Python (``/usr/bin/python3``, where
Debian's ``mininet`` lives); the agents need os-ken and run with the project's
interpreter: ``$NEMO_FABRIC_PYTHON``, else ``<repo>/.venv/bin/python`` (``make
deps``), else the interpreter running ``mn``.

What this file gives ``mn`` (see ``mn --custom``: every top-level name is
handed to mn, so helpers here start with ``_``):

``topos["rfc4908"]``  :class:`RFC4908Topo` (``--topo rfc4908,lans=3`` for more LAN hosts)
``tests["rfc4908"]``  waits for the four bindings, pings CN -> every LAN host and
                      LAN -> CN; prints ``*** rfc4908: PASS`` and otherwise exits 1
``CLI``               Mininet's CLI plus ``nemo`` (bindings, ``nemo log mr``) and IPv6
                      substitution of node names (``cn ping -6 -c 3 lan1``)
``Mininet``           stops the agents (the MR de-registers) before Mininet removes links
"""

import atexit as _atexit
import inspect as _inspect
import json as _json
import os as _os
import signal as _signal
import subprocess as _subprocess
import sys as _sys
import time as _time
from pathlib import Path as _Path

# mn executes this file with exec(), without __file__; the code object knows the path.
_ROOT = _Path(_inspect.currentframe().f_code.co_filename).resolve().parents[1]
if str(_ROOT) not in _sys.path:
    _sys.path.insert(0, str(_ROOT))

from mininet.clean import addCleanupCallback as _add_cleanup_callback  # noqa: E402
from mininet.cli import CLI as _MininetCLI  # noqa: E402
from mininet.log import error as _error, info as _info, output as _output  # noqa: E402
from mininet.net import Mininet as _Mininet  # noqa: E402
from mininet.node import Host as _Host, Switch as _Switch  # noqa: E402
from mininet.topo import Topo as _Topo  # noqa: E402

from topologies.lab import Lab as _Lab  # noqa: E402
from topologies.netns import OFFLOAD_FEATURES as _OFFLOADS, Namespace as _Namespace  # noqa: E402
from topologies.procs import LabError as _LabError  # noqa: E402
from topologies.procs import run as _run, wait_until as _wait_until  # noqa: E402

# -- the lab's addresses (documentation prefixes only; same as tests/integration/mr_lab.py) --
_HA, _HA_GW = "2001:db8:ffff::1", "2001:db8:ffff::fe"
_HOME, _HOME_PREFIX = "2001:db8:f000::100", "2001:db8:f000::/64"
_MNP, _LAN_GW = "2001:db8:ff00:1::/64", "2001:db8:ff00:1::1"
_CN, _CN_GW = "2001:db8:100::10", "2001:db8:100::1"
_SPI, _KEY, _GRE_KEY = 0x100, bytes(range(1, 21)), 100
#: uplink name -> (MR interface, ISP gateway, care-of addresses the "ISP" hands out)
_UPLINKS = {"isp1": ("up1", "2001:db8:a::1", ["2001:db8:a::100", "2001:db8:a::101"]),
            "isp2": ("up2", "2001:db8:b::1", ["2001:db8:b::100", "2001:db8:b::101"])}
_ALL_COAS = sorted(c for _, _, coas in _UPLINKS.values() for c in coas)
#: The tunnels add 48 octets of GRE/IPv6 and userspace OVS drops what does not fit.
_LAN_MTU = 1400
#: nemo-ha's OpenFlow listener, on the loopback of the ha node's own namespace.
_OF_PORT = 6653

_live_nodes = []  # NemoDaemonNodes whose lab is open (stopped by mn's cleanup and atexit)


def _agent_python():
    """The interpreter for nemo-ha/nemo-mr (it must import os_ken)."""
    explicit = _os.environ.get("NEMO_FABRIC_PYTHON")
    if explicit:
        return explicit
    venv = _ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else _sys.executable


# -- nodes -----------------------------------------------------------------------------

class NemoRouter(_Host):
    """A Mininet host configured for IPv6 only, from its topology parameters.

    ``v6={"eth0": ["2001:db8::1/64"]}``, ``routes=[("default", "2001:db8::fe")]``,
    ``forwarding=True``, ``mtu={"eth0": 1400}``. Use ``ip=None`` (no Mininet
    IPv4 address). DAD is off (addresses usable at once) and so are checksum and
    segmentation offloads, which a userspace OVS bridge on the path needs.
    """

    def config(self, v6=None, routes=(), forwarding=False, mtu=None, **params):
        result = super().config(**params)
        for key in ("all", "default"):
            self.sh("sysctl", "-qw", "net.ipv6.conf.%s.accept_dad=0" % key)
        for intf in self.intfNames():
            if intf != "lo":
                self.sh("ethtool", "-K", intf, *[w for f in _OFFLOADS for w in (f, "off")])
        for intf, value in (mtu or {}).items():
            self.sh("ip", "link", "set", "dev", intf, "mtu", str(value))
        if forwarding:
            self.sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        for intf, addrs in (v6 or {}).items():
            for addr in addrs:
                self.sh("ip", "-6", "addr", "add", addr, "dev", intf, "nodad")
        self.add_routes(routes)
        return result

    def add_routes(self, routes):
        for dst, via in routes:
            self.sh("ip", "-6", "route", "add", dst, "via", via)

    def sh(self, *argv):
        """Run ``argv`` in the node; raise with its error output if it fails."""
        out, err, code = self.pexec(list(argv))
        if code != 0:
            raise RuntimeError("%s: %s failed (%d): %s"
                               % (self.name, " ".join(argv), code, (err or out).strip()))
        return out

    def ipv6(self):
        """The node's first configured global IPv6 address (None if it has none)."""
        for addrs in (self.params.get("v6") or {}).values():
            for addr in addrs:
                return addr.split("/")[0]
        return None


class NemoDaemonNode(NemoRouter):
    """A router whose namespace also runs a private OVS and a nemo-fabric agent.

    The node's namespace is named ``nfXXXX-<node>`` while it runs, so that the
    namespace lab's :class:`~topologies.lab.Lab` and
    :class:`~topologies.ovs.OvsInstance` work unchanged; :meth:`nemo_stop`
    stops the agent and OVS and removes the name (the namespace itself belongs
    to Mininet and goes when Mininet stops the node).
    """

    agent_module = ""
    agent_log = ""

    def config(self, **params):
        result = super().config(**params)
        if getattr(self, "lab", None) is None:
            self.agent = None
            self.lab = _Lab()
            _live_nodes.append(self)
            self.nemo_error = None
            try:
                self._open()
                self.nemo_start()
            except Exception as exc:  # noqa: BLE001
                # Not raised: an exception out of the build makes mn run its global
                # cleanup (mn -c: every ping, OVS bridge and Mininet on the machine).
                # The node stays up without its agent; the test and `nemo` report it.
                self.nemo_error = "%s: %s" % (type(exc).__name__, exc)
                _error("*** %s: start failed: %s\n--- agent log (tail):\n%s\n"
                       % (self.name, self.nemo_error, self.log_tail()))
                self.nemo_stop()
        return result

    def _open(self):
        lab = self.lab
        name = lab.name(self.name)
        _run(["ip", "netns", "attach", name, str(self.pid)])
        lab.add_cleanup("netns name %s" % name, lambda: _run(["ip", "netns", "delete", name]))
        self.ns = _Namespace(name)
        self.rundir = lab.base_dir / ("%s%s-run" % (lab.prefix, self.name))
        self.rundir.mkdir(parents=True)
        lab.add_cleanup("run dir %s" % self.rundir,
                        lambda: _subprocess.run(["rm", "-rf", str(self.rundir)], check=False))

    def nemo_start(self):
        raise NotImplementedError

    def start_agent(self, config):
        path = self.rundir / (self.agent_module.split(".")[0] + ".yaml")
        path.write_text(_json.dumps(config, indent=2) + "\n")  # JSON is YAML
        env = dict(_os.environ, PYTHONPATH=str(_ROOT))
        with open(self.rundir / self.agent_log, "a") as handle:
            self.agent = self.lab.popen(self.ns, _agent_python(), "-m", self.agent_module,
                                        "--config", str(path), stdout=handle,
                                        stderr=_subprocess.STDOUT, env=env)
        _info("*** %s: %s running (pid %d, log %s)\n"
              % (self.name, self.agent_module, self.agent.pid, self.rundir / self.agent_log))

    def check_agent(self):
        if self.agent.poll() is not None:
            raise RuntimeError("%s exited with status %s (interpreter %s; set NEMO_FABRIC_PYTHON "
                               "to one that has the project's dependencies)"
                               % (self.agent_module, self.agent.returncode, _agent_python()))

    def log_tail(self, chars=3000):
        """The end of the agent's log (kept in memory once the run directory is gone)."""
        try:
            return (self.rundir / self.agent_log).read_text(errors="replace")[-chars:]
        except (AttributeError, OSError):
            return getattr(self, "last_log", "")[-chars:]

    def status(self):
        """The agent's status file (JSON), or None before it wrote one."""
        try:
            return _json.loads((self.rundir / "status.json").read_text())
        except (AttributeError, OSError, ValueError):
            return None

    def nemo_stop(self, timeout=10.0):
        """Stop the agent (SIGTERM, so the MR de-registers), then OVS; idempotent."""
        lab, self.lab = getattr(self, "lab", None), None
        if lab is None:
            return
        if self in _live_nodes:
            _live_nodes.remove(self)
        agent = getattr(self, "agent", None)
        if agent is not None and agent.poll() is None:
            agent.send_signal(_signal.SIGTERM)
            try:
                agent.wait(timeout=timeout)
            except _subprocess.TimeoutExpired:
                _error("*** %s: agent did not stop in %.0f s; killing it\n" % (self.name, timeout))
        self.last_log = self.log_tail(100000)
        try:
            lab.close()
        except _LabError as exc:
            _error("*** %s: teardown: %s\n" % (self.name, exc))

    def terminate(self):
        self.nemo_stop()
        super().terminate()


class NemoHomeAgent(NemoDaemonNode):
    """The Home Agent: private OVS bridge br-ha (uplink up0, flow-based GRE port gre0) + nemo-ha."""

    agent_module, agent_log = "ryu_apps.launcher", "ha.log"

    def nemo_start(self):
        p = self.params
        ovs = self.lab.ovs(self.ns)
        ovs.add_bridge("br-ha", secure=True, hwaddr="02:00:00:00:01:01",
                       controller="tcp:127.0.0.1:%d" % _OF_PORT)
        ovs.add_port("br-ha", "up0")
        ovs.add_gre_port("br-ha", "gre0")
        self.sh("ip", "-6", "addr", "add", "%s/64" % _HA, "dev", "br-ha", "nodad")
        self.add_routes([("default", _HA_GW)])
        self.start_agent({
            "home_agent": {"addresses": [_HA], "home_prefixes": [_HOME_PREFIX],
                           "state_file": str(self.rundir / "state.json"),
                           "status_file": str(self.rundir / "status.json")},
            "datapath": {"uplink_port": "up0", "tunnel_port": "gre0"},
            "openflow": {"listen_host": "127.0.0.1", "listen_port": _OF_PORT},
            "upstream": {"next_hop": _HA_GW},
            "limits": {"expiry_interval": 0.5},
            "mobile_routers": [{"name": "office1", "home_address": _HOME,
                                "prefixes": [p.get("mnp", _MNP)], "spi": _SPI,
                                "key": _KEY.hex(), "gre_key": _GRE_KEY,
                                "policy": "priority"}],
        })
        _wait_until(lambda: "home agent ready" in self.log_tail(100000)
                    or self.agent.poll() is not None, 30, "nemo-ha in %s" % self.name)
        self.check_agent()

    def care_of(self):
        status = self.status() or {"bindings": []}
        return sorted(b["care_of"] for e in status["bindings"] for b in e["care_of"])


class NemoMobileRouter(NemoDaemonNode):
    """The Mobile Router: nemo-mr creates br-mr, br-up1, br-up2 in its private OVS;
    then the care-of addresses appear on br-up1/br-up2 (as an ISP's autoconfiguration
    would) and the agent registers them with the HA."""

    agent_module, agent_log = "mr_agent.cli", "mr.log"

    def nemo_start(self):
        p = self.params
        ovs = self.lab.ovs(self.ns)
        run = str(ovs.rundir)
        self.start_agent({
            "mobile_router": {"home_address": _HOME, "prefixes": [p.get("mnp", _MNP)],
                              "spi": _SPI, "key": _KEY.hex(), "lifetime": 60,
                              "gre_key": _GRE_KEY},
            "home_agents": [_HA],
            "uplinks": [{"name": name, "interface": iface, "gateway": gw, "priority": i + 1}
                        for i, (name, (iface, gw, _)) in enumerate(_UPLINKS.items())],
            "policy": {"mode": "active-backup"},
            "state_file": str(self.rundir / "state.json"),
            "status_file": str(self.rundir / "status.json"),
            "dataplane": {"backend": "ovs", "vsctl": ["ovs-vsctl", "--db=unix:%s/db.sock" % run],
                          "ofctl": ["ovs-ofctl"], "ofctl_target": "unix:%s/{bridge}.mgmt" % run,
                          "appctl": ["ovs-appctl", "-t", "%s/vswitchd.ctl" % run]},
        })
        _wait_until(lambda: self.ns.link_exists("br-up2") or self.agent.poll() is not None,
                    30, "nemo-mr in %s to create its bridges" % self.name)
        self.check_agent()
        for index, (_, _, coas) in enumerate(_UPLINKS.values(), 1):
            for coa in coas:
                self.sh("ip", "-6", "addr", "add", "%s/64" % coa, "dev", "br-up%d" % index,
                        "nodad")

    def usable(self):
        status = self.status() or {"bindings": []}
        return sorted(b["care_of"] for b in status["bindings"] if b["usable"])


class LanBridge(_Switch):
    """The LAN segment: a plain Linux bridge in its own namespace (no controller, no OVS)."""

    def __init__(self, name, mtu=None, **params):
        params["inNamespace"] = True
        self.mtu = mtu
        super().__init__(name, **params)

    def _sh(self, *argv):
        out, err, code = self.pexec(list(argv))
        if code != 0:
            raise RuntimeError("%s: %s failed: %s" % (self.name, " ".join(argv), err or out))

    def start(self, _controllers):
        for key in ("all", "default"):
            self._sh("sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % key)
        self._sh("ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        for intf in self.intfNames():
            if intf == "lo":
                continue
            if self.mtu:
                self._sh("ip", "link", "set", "dev", intf, "mtu", str(self.mtu))
            self._sh("ethtool", "-K", intf, *[w for f in _OFFLOADS for w in (f, "off")])
            self._sh("ip", "link", "set", "dev", intf, "master", "br0", "up")
        self._sh("ip", "link", "set", "dev", "br0", "up")

    def stop(self, deleteIntfs=True):
        self.pexec(["ip", "link", "del", "br0"])
        super().stop(deleteIntfs)

    def connected(self):
        return True


# -- topology ----------------------------------------------------------------------------

class RFC4908Topo(_Topo):
    """RFC 4908 figure 1: CN, core, two ISPs, HA, MR and ``lans`` hosts on the MR's LAN."""

    def build(self, lans=2):
        lans = int(lans)
        if not 1 <= lans <= 200:
            raise ValueError("rfc4908: lans must be 1..200, got %d" % lans)
        router = dict(cls=NemoRouter, ip=None)
        cn = self.addHost("cn", v6={"eth0": ["%s/64" % _CN]}, routes=[("default", _CN_GW)],
                          **router)
        core = self.addHost("core", forwarding=True, v6={
            "ha0": ["2001:db8:ffff::fe/64"], "cn0": ["2001:db8:100::1/64"],
            "isp1": ["2001:db8:1a::1/64"], "isp2": ["2001:db8:1b::1/64"]}, routes=[
            (_MNP, _HA), (_HOME_PREFIX, _HA),
            ("2001:db8:a::/64", "2001:db8:1a::2"), ("2001:db8:b::/64", "2001:db8:1b::2")],
            **router)
        isps = {}
        for isp, net, sub in (("isp1", "2001:db8:a::1/64", "2001:db8:1a::2/64"),
                              ("isp2", "2001:db8:b::1/64", "2001:db8:1b::2/64")):
            isps[isp] = self.addHost(isp, forwarding=True, v6={"mr0": [net], "core0": [sub]},
                                     routes=[("default", sub.split("/")[0][:-1] + "1")],
                                     **router)
        ha = self.addHost("ha", cls=NemoHomeAgent, ip=None)
        mr = self.addHost("mr", cls=NemoMobileRouter, ip=None, forwarding=True,
                          v6={"lan0": ["%s/64" % _LAN_GW]}, mtu={"lan0": _LAN_MTU})
        s1 = self.addSwitch("s1", cls=LanBridge, mtu=_LAN_MTU)
        self.addLink(ha, core, intfName1="up0", intfName2="ha0")
        self.addLink(cn, core, intfName1="eth0", intfName2="cn0")
        for isp, node in isps.items():
            self.addLink(node, core, intfName1="core0", intfName2=isp)
        self.addLink(mr, isps["isp1"], intfName1="up1", intfName2="mr0")
        self.addLink(mr, isps["isp2"], intfName1="up2", intfName2="mr0")
        self.addLink(mr, s1, intfName1="lan0")
        for i in range(1, lans + 1):
            host = self.addHost("lan%d" % i, v6={"eth0": ["2001:db8:ff00:1::%x/64" % (0xf + i)]},
                                routes=[("default", _LAN_GW)], mtu={"eth0": _LAN_MTU}, **router)
            self.addLink(host, s1, intfName1="eth0")


# -- stopping, the test, the CLI -------------------------------------------------------------

def _nemo_nodes(net, cls):
    return [h for h in net.hosts if isinstance(h, cls)]


def _stop_agents(net=None):
    """Stop MRs first (they de-register with the HA), then the HAs."""
    nodes = list(_live_nodes) if net is None else _nemo_nodes(net, NemoDaemonNode)
    for node in sorted(nodes, key=lambda n: not isinstance(n, NemoMobileRouter)):
        node.nemo_stop()


class NemoMininet(_Mininet):
    """Mininet that stops the nemo-fabric agents before it removes the links."""

    def stop(self):
        _stop_agents(self)
        super().stop()


def _ping(node, address, count=5):
    node.pexec(["ping", "-6", "-n", "-c", "1", "-W", "2", address])  # neighbour discovery
    out, _, code = node.pexec(["ping", "-6", "-n", "-q", "-c", str(count), "-i", "0.2",
                               "-W", "1", address])
    summary = [line for line in out.splitlines() if "packets transmitted" in line]
    return code == 0, summary[0].strip() if summary else out.strip()


def _exit_failed():
    _stop_agents()
    _sys.stdout.flush()
    _sys.stderr.flush()
    _os._exit(1)


def _test_rfc4908(net, timeout=30):
    """mn --test rfc4908: bindings up, then CN -> each LAN host and LAN -> CN ping.

    ``--test rfc4908,timeout=60`` waits longer for the bindings.
    """
    started = _time.time()
    has, mrs = _nemo_nodes(net, NemoHomeAgent), _nemo_nodes(net, NemoMobileRouter)
    if len(has) != 1 or len(mrs) != 1:
        _error("*** rfc4908: FAIL: needs --topo rfc4908 (one HA, one MR)\n")
        _atexit.register(_exit_failed)
        return
    ha, mr = has[0], mrs[0]
    failures = ["%s did not start: %s" % (n.name, n.nemo_error) for n in (ha, mr) if n.nemo_error]
    if not failures:
        try:
            _wait_until(lambda: ha.care_of() == _ALL_COAS and mr.usable() == _ALL_COAS,
                        float(timeout),
                        "the HA to bind and the MR to use %s" % ", ".join(_ALL_COAS))
        except _LabError as exc:
            failures.append(str(exc))
        else:
            _output("*** rfc4908: %d bindings after %.1f s: %s\n"
                    % (len(_ALL_COAS), _time.time() - started, ", ".join(_ALL_COAS)))
    if not failures:
        cn = net["cn"]
        lans = [h for h in net.hosts if h.name.startswith("lan")]
        for src, dst in [(cn, lan) for lan in lans] + [(lans[0], cn)]:
            ok, summary = _ping(src, dst.ipv6())
            _output("*** rfc4908: %s -> %s (%s): %s\n" % (src.name, dst.name, dst.ipv6(), summary))
            if not ok:
                failures.append("ping %s -> %s failed" % (src.name, dst.name))
    if failures:
        for node in (mr, ha):
            _error("*** %s log (tail):\n%s\n" % (node.name, node.log_tail()))
        _error("*** rfc4908: FAIL: %s\n" % "; ".join(failures))
        _atexit.register(_exit_failed)  # mn itself always exits 0: make the failure visible
    else:
        _output("*** rfc4908: PASS (%.1f s)\n" % (_time.time() - started))


class NemoCLI(_MininetCLI):
    """Mininet's CLI with ``nemo`` and IPv6 substitution of node names."""

    def do_nemo(self, line):
        """nemo: bindings and logs of the RFC 4908 lab; nemo log ha|mr [CHARS]: agent log tail."""
        args = line.split()
        nodes = {n.name: n for n in _nemo_nodes(self.mn, NemoDaemonNode)}
        if args[:1] == ["log"] and len(args) >= 2 and args[1] in nodes:
            chars = int(args[2]) if len(args) > 2 else 3000
            _output(nodes[args[1]].log_tail(chars) + "\n")
            return
        for node in nodes.values():
            _output("%s: log %s\n" % (node.name, getattr(node, "rundir", "?")))
            if isinstance(node, NemoHomeAgent):
                _output("  bound care-of addresses: %s\n" % (", ".join(node.care_of()) or "none"))
            else:
                for b in (node.status() or {"bindings": []})["bindings"]:
                    _output("  bid %s  %-20s usable=%s\n" % (b.get("bid"), b.get("care_of"),
                                                           b.get("usable")))
        for host in self.mn.hosts:
            if isinstance(host, NemoRouter) and host.ipv6():
                _output("%-6s %s\n" % (host.name, host.ipv6()))

    def default(self, line):
        # "cn ping -6 lan1": Mininet substitutes IPv4 addresses; use the IPv6 one instead.
        words = line.split(" ")
        if words and words[0] in self.mn:
            words[1:] = [self.mn[w].ipv6() or w
                         if w in self.mn and isinstance(self.mn[w], NemoRouter) else w
                         for w in words[1:]]
        super().default(" ".join(words))


_add_cleanup_callback(_stop_agents)  # mn's own cleanup after an exception
_atexit.register(_stop_agents)

# -- what mn --custom picks up ------------------------------------------------------------
topos = {"rfc4908": RFC4908Topo}
tests = {"rfc4908": _test_rfc4908}
CLI = NemoCLI
Mininet = NemoMininet
