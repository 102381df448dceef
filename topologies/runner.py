"""Run a lab topology: build it from a topology file, record it, drive it, tear it down.

:class:`Runner` builds a :mod:`topologies.model` topology with the :class:`~topologies.lab.Lab`
primitives: one namespace per node, veths with addresses, static routes (computed from
the graph), forwarding on routers and the MR, a Linux bridge for the MR's LAN, a private
OVS for every ``ha`` and ``mr`` node, the HA bridge with ``nemo-ha`` and ``nemo-mr``
(configurations written from the topology), and the care-of addresses on ``br-upN`` once
the MR agent has created those bridges (as an ISP's autoconfiguration would). A ``bgp``
node runs FRR (zebra + bgpd, :mod:`topologies.frr`, run folder ``<run>/frr-<node>/``);
``up`` waits until every session is Established and the routes converged before it
starts the MR agents. ``up("scale", mrs=N)`` builds the generated topology of
:mod:`topologies.scale`.

Everything lives under a base directory (``$NEMO_FABRIC_LAB_DIR``, default
``/tmp/nemo-lab``)::

    <base>/current               pointer: {"prefix": ..., "run_dir": ...} of the last `up`
    <base>/<prefix>run/          the run folder: state.json, ha.yaml, mr.yaml, <node>.log,
                                 ha-status.json, mr-status.json, ...
    <base>/<prefix><node>-ovs/   private OVS of node <node> (its own logs)

``state.json`` records what was built (namespaces, OVS run directories, processes with
their pids), so :meth:`Runner.down` works from another process (``nemo-lab down``), and
it is written before anything is built, so ``down`` also cleans up after a crashed ``up``
(``cleanup_leftovers`` for the run's own prefix only).

    runner = Runner()
    runner.up("fig1")             # returns the state; waits until every CoA is bound
    runner.exec("lan1", ["ping", "-c1", "2001:db8:100::10"])
    runner.fail("mr-isp1"); runner.heal("mr-isp1")
    runner.status()
    runner.down()
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import yaml

from topologies.lab import BASE_DIR_ENV, Lab, cleanup_leftovers
from topologies import frr
from topologies.model import (Topology, bgp_static_routes, default_routes, load, parse,
                              router_routes)
from topologies.netns import Namespace, list_netns, validate_prefix
from topologies.ovs import OvsInstance
from topologies.procs import LabError, kill_pids, pid_cmdline, wait_until

log = logging.getLogger(__name__)

#: Default base directory when ``$NEMO_FABRIC_LAB_DIR`` is not set.
DEFAULT_BASE = Path("/tmp/nemo-lab")
#: Repository root (put on the PYTHONPATH of the daemons, for a non-installed checkout).
ROOT = Path(__file__).resolve().parents[1]
#: ovs-vswitchd pushes datapath flow statistics to the OpenFlow flows at most this often
#: (ms; OVS's default is 500): the demo samples the per-CoA counters every 100 ms.
MAX_REVALIDATOR_MS = 100
#: Inside the HA's own namespace the controller port is always free.
# A home agent restarting with thousands of MRs reads all their flows before it can
# answer OVS's echo requests (docs/ha.md, "Scale").
HA_INACTIVITY_PROBE_MS = 60_000
OPENFLOW_PORT = 6653
HA_BRIDGE_MAC = "02:00:00:00:01:01"


class RunnerError(LabError):
    """A lab operation failed (the message says what and, for daemons, shows their log)."""


def default_base() -> Path:
    env = os.environ.get(BASE_DIR_ENV)
    return Path(env) if env else DEFAULT_BASE


class Runner:
    """Builds and drives one lab run under ``base_dir`` (see the module docstring)."""

    def __init__(self, base_dir: Union[str, Path, None] = None) -> None:
        self.base = Path(base_dir) if base_dir is not None else default_base()
        self.pointer = self.base / "current"

    # -- the state file ------------------------------------------------------------
    def current_prefix(self) -> Optional[str]:
        try:
            return json.loads(self.pointer.read_text())["prefix"]
        except (OSError, ValueError, KeyError):
            return None

    def run_dir(self, prefix: str) -> Path:
        return self.base / ("%srun" % prefix)

    def state(self, prefix: Optional[str] = None) -> Dict[str, Any]:
        """The state of run ``prefix`` (default: the current one); RunnerError if none."""
        prefix = prefix or self.current_prefix()
        if prefix is None:
            raise RunnerError("no lab is up under %s (no %s)" % (self.base, self.pointer))
        path = self.run_dir(prefix) / "state.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RunnerError("lab %s: cannot read %s: %s (crashed? `nemo-lab down` cleans "
                              "it up)" % (prefix, path, exc)) from None

    def _save(self, state: Dict[str, Any]) -> None:
        path = Path(state["run_dir"]) / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, path)

    # -- up ----------------------------------------------------------------------------
    def up(self, topology: Union[str, Path, Topology], *, prefix: Optional[str] = None,
           wait: bool = True, timeout: float = 30.0, **params: Any) -> Dict[str, Any]:
        """Build ``topology`` (a name like ``fig1``, a file, or a loaded Topology;
        ``scale`` is generated, with ``params`` such as ``mrs=10``: see
        :mod:`topologies.scale`).

        With ``wait`` it returns once the HA has bound every care-of address of the
        topology (``registration_s`` in the state: from the MR agent's start). On any
        failure everything built so far is torn down and a RunnerError (with the tail of
        the daemons' logs) is raised.
        """
        topo = topology if isinstance(topology, Topology) else load_topology(topology, **params)
        current = self.current_prefix()
        if current is not None and any(n.startswith(current) for n in list_netns()):
            raise RunnerError("lab %s is already up under %s: `nemo-lab down` first"
                              % (current, self.base))
        lab = Lab(validate_prefix(prefix) if prefix else None, base_dir=self.base)
        run_dir = self.run_dir(lab.prefix)
        run_dir.mkdir(parents=True)
        self.pointer.write_text(json.dumps({"prefix": lab.prefix, "run_dir": str(run_dir)}))
        state: Dict[str, Any] = {
            "prefix": lab.prefix, "base_dir": str(self.base), "run_dir": str(run_dir),
            "topology": topo.name, "source": str(topo.source), "phase": "building",
            "started": time.time(), "namespaces": {}, "ovs": {}, "processes": {},
            "kinds": {n: s["kind"] for n, s in topo.nodes.items()}, "failed_links": [],
            "care_of": topo.all_care_of(), "ha_nodes": topo.nodes_of("ha"),
            "mr_nodes": topo.nodes_of("mr"),
            "ha_bridges": {ha: topo.nodes[ha]["bridge"] for ha in topo.nodes_of("ha")},
            "bgp": {},
        }
        (run_dir / "topology.yaml").write_text(yaml.safe_dump(topo.raw, sort_keys=False))
        self._save(state)
        try:
            self._build(lab, topo, state, run_dir)
            if wait:
                self.wait_bound(state, timeout=timeout)
                state["registration_s"] = round(time.time() - state["mr_started"], 3)
            state["phase"] = "up"
            self._save(state)
        except BaseException as exc:
            tails = self._log_tails(state)
            log.error("lab %s: up failed (%s); tearing down", lab.prefix, exc)
            try:
                lab.close()
            except Exception:
                log.exception("lab %s: teardown after a failed up", lab.prefix)
            self._forget(lab.prefix)
            if isinstance(exc, Exception):
                raise RunnerError("lab up failed: %s\n%s" % (exc, tails)) from exc
            raise
        # Success: the lab stays up after this process is gone; `down` tears it down
        # from the state file (the Lab object's records are dropped on purpose).
        return state

    def _build(self, lab: Lab, topo: Topology, state: Dict[str, Any], run_dir: Path) -> None:
        ns: Dict[str, Namespace] = {}
        for node in topo.nodes:
            ns[node] = lab.namespace(node)
            state["namespaces"][node] = ns[node].name
        self._save(state)
        for node in topo.nodes_of("router") + topo.nodes_of("bgp") + topo.nodes_of("mr"):
            ns[node].enable_forwarding()
        for mr in topo.nodes_of("mr"):
            lan = topo.nodes[mr].get("lan")
            if lan:
                dev = lan["interface"]
                ns[mr].run("ip", "link", "add", dev, "type", "bridge", "mcast_snooping", "0")
                ns[mr].set_mtu(dev, lan.get("mtu", 1500))
        for link in topo.links:
            a, b = link.ends
            mtu = None
            for end in link.ends:
                if end.bridge is not None:
                    mtu = topo.nodes[end.node]["lan"].get("mtu")
            lab.veth(ns[a.node], a.interface, ns[b.node], b.interface, mtu=mtu)
            for end in link.ends:
                for address in end.addresses:
                    ns[end.node].add_addr(end.interface, str(address))
                if end.bridge is not None:
                    ns[end.node].run("ip", "link", "set", "dev", end.interface, "master",
                                     end.bridge)
        for mr in topo.nodes_of("mr"):
            lan = topo.nodes[mr].get("lan")
            if lan:
                ns[mr].link_up(lan["interface"])
                ns[mr].add_addr(lan["interface"], lan["address"])
        static = {**router_routes(topo), **default_routes(topo), **bgp_static_routes(topo)}
        for node, routes in static.items():
            if topo.kind(node) == "ha":
                continue  # after its bridge exists
            for route in routes:
                ns[node].add_route(route.dst, via=route.via, dev=route.dev)
        for node in topo.nodes_of("bgp"):
            self._start_bgp(lab, topo, node, ns[node], state, run_dir)
        for ha in topo.nodes_of("ha"):
            self._start_ha(lab, topo, ha, ns[ha], state, run_dir)
        if topo.nodes_of("bgp"):
            self.wait_bgp(topo, state, timeout=30)
        # Start every MR agent, then wait for their bridges (many MRs start in parallel).
        finish = [self._start_mr(lab, topo, mr, ns[mr], state, run_dir)
                  for mr in topo.nodes_of("mr")]
        for step in finish:
            step()

    # -- FRR --------------------------------------------------------------------------------
    def _start_bgp(self, lab: Lab, topo: Topology, node: str, ns: Namespace,
                   state: Dict[str, Any], run_dir: Path) -> None:
        """zebra + bgpd in ``node``'s namespace, private sockets in ``<run>/frr-<node>/``."""
        rundir = run_dir / ("frr-%s" % node)
        frr.prepare_rundir(rundir, topo, node)
        state["bgp"][node] = str(rundir)
        self._save(state)
        for daemon, ready in (("zebra", "zserv.api"), ("bgpd", "bgpd.vty")):
            argv = frr.daemon_argv(daemon, rundir)
            proc = self._process(lab, ns, "%s.%s" % (node, daemon), argv,
                                 run_dir / ("%s.%s.log" % (node, daemon)), state)
            frr.wait_file(rundir / ready, 15, proc, "%s on %s" % (daemon, node))

    def wait_bgp(self, topo: Topology, state: Dict[str, Any], timeout: float = 30.0) -> float:
        """Wait until every BGP session is Established and every bgp node has a route to
        every announced network and HA address (converged); returns the seconds waited."""
        start = time.monotonic()
        wanted = sorted({str(n) for b in topo.nodes_of("bgp") for n in topo.bgp_networks(b)}
                        | {str(topo.ha_address(ha).network) for ha in topo.nodes_of("ha")})

        def converged() -> bool:
            for node in topo.nodes_of("bgp"):
                peers = self.bgp_summary(node, state)
                if len(peers) != len(topo.bgp_sessions(node)) or any(
                        p.get("state") != "Established" for p in peers.values()):
                    return False
                ns = self.namespace(node, state)
                for prefix in wanted:
                    out = ns.run("ip", "-6" if ":" in prefix else "-4", "route", "show",
                                 "match", prefix, check=False).stdout
                    if not any(line.split()[0] == prefix for line in out.splitlines()
                               if line.strip()):
                        return False
            return True
        wait_until(converged, timeout, "the BGP sessions to establish and the routes to "
                   "converge (see `nemo-lab vtysh NODE show bgp summary`)")
        state["bgp_converged_s"] = round(time.monotonic() - start, 3)
        self._save(state)
        return time.monotonic() - start

    def _frr_node(self, node: str, state: Optional[Dict[str, Any]]) -> Tuple[Namespace, Path]:
        state = state or self.state()
        if node not in state.get("bgp", {}):
            raise RunnerError("node %s is not a bgp node (bgp nodes: %s)"
                              % (node, ", ".join(state.get("bgp", {})) or "none"))
        return self.namespace(node, state), Path(state["bgp"][node])

    def vtysh(self, node: str, command: str, state: Optional[Dict[str, Any]] = None) -> str:
        """``vtysh -c COMMAND`` against the FRR daemons of bgp node ``node``."""
        return frr.vtysh(*self._frr_node(node, state), command)

    def bgp_summary(self, node: str, state: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Peer address -> FRR's summary of the session (``state``, ``pfxRcd``...)."""
        return frr.bgp_summary(*self._frr_node(node, state))

    def bgp_route(self, node: str, prefix: str, state: Optional[Dict[str, Any]] = None
                  ) -> Dict[str, Any]:
        """bgpd's best path to ``prefix`` at ``node`` (as_path, next_hop, number of paths)."""
        return frr.bgp_route(*self._frr_node(node, state), prefix)

    def _start_ha(self, lab: Lab, topo: Topology, ha: str, ns: Namespace,
                  state: Dict[str, Any], run_dir: Path) -> None:
        s = topo.nodes[ha]
        ovs = lab.ovs(ns)
        state["ovs"][ha] = str(ovs.rundir)
        self._save(state)
        ovs.vsctl("set", "Open_vSwitch", ".", "other_config:max-revalidator=%d" % MAX_REVALIDATOR_MS)
        bridge = s["bridge"]
        uplink = topo.link(s["uplink"]).end(ha).interface
        port = int(s.get("openflow_port", OPENFLOW_PORT))
        ovs.add_bridge(bridge, secure=True, hwaddr=HA_BRIDGE_MAC,
                       controller="tcp:127.0.0.1:%d" % port,
                       inactivity_probe_ms=HA_INACTIVITY_PROBE_MS)
        ovs.add_port(bridge, uplink)
        ovs.add_gre_port(bridge, "gre0")
        ns.add_addr(bridge, s["address"])
        for route in default_routes(topo)[ha]:
            ns.add_route(route.dst, via=route.via, dev=route.dev)
        routers = []
        for mr in topo.nodes_of("mr"):
            m = topo.nodes[mr]
            if m["home_agent"] != ha:
                continue
            routers.append({"name": mr, "home_address": str(m["home_address"]),
                            "prefixes": [str(p) for p in m["prefixes"]], "spi": m["spi"],
                            "key": m["key"], "gre_key": m["gre_key"],
                            "policy": m.get("ha_policy", "weighted")})
        limits = dict(s.get("limits") or {})
        config = {
            "home_agent": {"addresses": [str(topo.ha_address(ha).ip)],
                           "home_prefixes": [str(p) for p in s["home_prefixes"]],
                           "state_file": str(run_dir / ("%s-state.json" % ha)),
                           "status_file": str(run_dir / ("%s-status.json" % ha))},
            "datapath": {"uplink_port": uplink, "tunnel_port": "gre0"},
            "openflow": {"listen_host": "127.0.0.1", "listen_port": port},
            "upstream": {"next_hop": str(topo.ha_next_hop(ha))},
            "limits": limits,
            "mobile_routers": routers,
        }
        config_path = run_dir / ("%s.yaml" % ha)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        proc = self._daemon(lab, ns, ha, "ryu_apps.launcher", config_path, state, run_dir)
        log_path = run_dir / ("%s.log" % ha)
        wait_until(lambda: "home agent ready" in _read(log_path) or proc.poll() is not None,
                   30, "nemo-ha on %s to program %s" % (ha, bridge))
        if proc.poll() is not None:
            raise RunnerError("nemo-ha on %s exited with %s" % (ha, proc.returncode))

    def _start_mr(self, lab: Lab, topo: Topology, mr: str, ns: Namespace,
                  state: Dict[str, Any], run_dir: Path) -> Callable[[], None]:
        """Start the MR's OVS and agent; returns the step that waits for its bridges and
        adds the care-of addresses."""
        m = topo.nodes[mr]
        ovs = lab.ovs(ns)
        state["ovs"][mr] = str(ovs.rundir)
        self._save(state)
        ovs.vsctl("set", "Open_vSwitch", ".", "other_config:max-revalidator=%d" % MAX_REVALIDATOR_MS)
        rundir = str(ovs.rundir)
        uplinks = topo.uplinks(mr)
        config = {
            "mobile_router": {"home_address": str(m["home_address"]),
                              "prefixes": [str(p) for p in m["prefixes"]], "spi": m["spi"],
                              "key": m["key"], "lifetime": m.get("lifetime", 60),
                              "gre_key": m["gre_key"]},
            "home_agents": [str(topo.ha_address(m["home_agent"]).ip)],
            "uplinks": [{"name": l.uplink.name, "interface": l.end(mr).interface,
                         "gateway": str(topo.uplink_gateway(l, mr)),
                         "priority": l.uplink.priority, "weight": l.uplink.weight}
                        for l in uplinks],
            "policy": {"mode": m.get("policy", "weighted")},
            "state_file": str(run_dir / ("%s-state.json" % mr)),
            "status_file": str(run_dir / ("%s-status.json" % mr)),
            "dataplane": {"backend": "ovs", "vsctl": ["ovs-vsctl", "--db=unix:%s/db.sock" % rundir],
                          "ofctl": ["ovs-ofctl"], "ofctl_target": "unix:%s/{bridge}.mgmt" % rundir,
                          "appctl": ["ovs-appctl", "-t", "%s/vswitchd.ctl" % rundir]},
        }
        config_path = run_dir / ("%s.yaml" % mr)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        state.setdefault("mr_started", time.time())
        proc = self._daemon(lab, ns, mr, "mr_agent.cli", config_path, state, run_dir)
        bridges = ["br-up%d" % (i + 1) for i in range(len(uplinks))]

        def finish() -> None:
            wait_until(lambda: all(ns.link_exists(b) for b in bridges) or proc.poll() is not None,
                       30, "nemo-mr on %s to create %s" % (mr, ", ".join(bridges)))
            if proc.poll() is not None:
                raise RunnerError("nemo-mr on %s exited with %s" % (mr, proc.returncode))
            # As an ISP's autoconfiguration would: the CoAs appear on the uplink bridges.
            for bridge, link in zip(bridges, uplinks):
                plen = next(a.network.prefixlen for a in link.peer(mr).addresses
                            if a.version == link.uplink.care_of[0].version)
                for coa in link.uplink.care_of:
                    ns.add_addr(bridge, "%s/%d" % (coa, plen))
            state.setdefault("uplink_bridges", {})[mr] = {
                l.name: {"bridge": b, "uplink": l.uplink.name,
                         "care_of": [str(c) for c in l.uplink.care_of]}
                for b, l in zip(bridges, uplinks)}
            self._save(state)
        return finish

    def _daemon(self, lab: Lab, ns: Namespace, node: str, module: str, config: Path,
                state: Dict[str, Any], run_dir: Path) -> "subprocess.Popen[bytes]":
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
        argv = [sys.executable, "-m", module, "--config", str(config), "--log-level", "DEBUG"]
        return self._process(lab, ns, node, argv, run_dir / ("%s.log" % node), state, env=env)

    def _process(self, lab: Lab, ns: Namespace, key: str, argv: List[str], log_path: Path,
                 state: Dict[str, Any], env: Optional[Dict[str, str]] = None
                 ) -> "subprocess.Popen[bytes]":
        """Start ``argv`` in ``ns`` (stopped by the Lab on a failed up) and record it in the
        state (``down`` stops it from there)."""
        with open(log_path, "ab") as handle:
            proc = lab.popen(ns, *argv, stdout=handle, stderr=subprocess.STDOUT, env=env)
        state["processes"][key] = {"pid": proc.pid, "argv": argv, "log": str(log_path),
                                   "namespace": ns.name}
        self._save(state)
        return proc

    # -- waiting and observing ---------------------------------------------------------------
    def wait_bound(self, state: Optional[Dict[str, Any]] = None, coas: Optional[Sequence[str]] = None,
                   timeout: float = 30.0) -> float:
        """Wait until the HA's bound CoAs are exactly ``coas`` (default: all); seconds waited."""
        state = state or self.state()
        want = sorted(coas if coas is not None else state["care_of"])
        start = time.monotonic()
        wait_until(lambda: self.ha_care_of(state) == want, timeout,
                   "the home agent to bind %s (bound: %s)" % (want, "see status"))
        return time.monotonic() - start

    def ha_status(self, state: Optional[Dict[str, Any]] = None, ha: Optional[str] = None) -> Dict[str, Any]:
        state = state or self.state()
        ha = ha or state["ha_nodes"][0]
        return _json(Path(state["run_dir"]) / ("%s-status.json" % ha), {"bindings": []})

    def mr_status(self, state: Optional[Dict[str, Any]] = None, mr: Optional[str] = None) -> Dict[str, Any]:
        state = state or self.state()
        mr = mr or state["mr_nodes"][0]
        return _json(Path(state["run_dir"]) / ("%s-status.json" % mr), {"bindings": []})

    def ha_care_of(self, state: Optional[Dict[str, Any]] = None) -> List[str]:
        """Sorted CoAs bound at every HA of the run (from their status files)."""
        state = state or self.state()
        return sorted(b["care_of"] for ha in state["ha_nodes"]
                      for e in self.ha_status(state, ha)["bindings"] for b in e["care_of"])

    def mr_usable(self, state: Optional[Dict[str, Any]] = None) -> List[str]:
        state = state or self.state()
        return sorted(b["care_of"] for mr in state["mr_nodes"]
                      for b in self.mr_status(state, mr)["bindings"] if b["usable"])

    def ovs(self, node: str, state: Optional[Dict[str, Any]] = None) -> OvsInstance:
        """The private OVS of ``node`` (an ha or mr node) of the run."""
        state = state or self.state()
        if node not in state["ovs"]:
            raise RunnerError("node %s has no private OVS (nodes with one: %s)"
                              % (node, ", ".join(state["ovs"])))
        return OvsInstance(Namespace(state["namespaces"][node]), state["ovs"][node])

    def counters(self, state: Optional[Dict[str, Any]] = None) -> Dict[str, Dict[str, int]]:
        """Packets per CoA: ``downstream`` from the MRs' decapsulation flows in br-mr
        (``tun_ipv6_dst=<CoA>``), ``upstream`` from the HAs' accepting upstream flows in
        table 2 (``tun_ipv6_src=<CoA>``). CoAs without flows are left out."""
        state = state or self.state()
        down: Dict[str, int] = {}
        up: Dict[str, int] = {}
        for mr in state["mr_nodes"]:
            for line in self.ovs(mr, state).dump_flows("br-mr"):
                m = re.search(r"tun_(?:ipv6_)?dst=([0-9a-fA-F:.]+)", line)
                if m and "tp_src=" not in line:  # not the liveness probes' replies
                    down[m.group(1)] = down.get(m.group(1), 0) + _packets(line)
        for ha in state["ha_nodes"]:
            ovs = self.ovs(ha, state)
            for line in ovs.dump_flows(state["ha_bridges"][ha], "table=2"):
                m = re.search(r"tun_(?:ipv6_|ipv4_)?src=([0-9a-fA-F:.]+)", line)
                if m and "goto_table" in line:
                    up[m.group(1)] = up.get(m.group(1), 0) + _packets(line)
        return {"downstream": down, "upstream": up}

    # -- operations ------------------------------------------------------------------------------
    def namespace(self, node: str, state: Optional[Dict[str, Any]] = None) -> Namespace:
        state = state or self.state()
        if node not in state["namespaces"]:
            raise RunnerError("lab %s has no node %r (nodes: %s)"
                              % (state["prefix"], node, ", ".join(state["namespaces"])))
        return Namespace(state["namespaces"][node])

    def exec(self, node: str, argv: Sequence[str], *, capture: bool = True, check: bool = False,
             timeout: Optional[float] = 60.0) -> "subprocess.CompletedProcess[str]":
        """Run ``argv`` in ``node``'s namespace (``ip netns exec``)."""
        if not argv:
            raise RunnerError("exec %s: no command given" % node)
        cmd = self.namespace(node).argv(argv)
        return subprocess.run(cmd, capture_output=capture, text=True, check=check,
                              timeout=timeout)

    def popen(self, node: str, argv: Sequence[str], **kwargs: Any) -> "subprocess.Popen[bytes]":
        """Start ``argv`` in ``node``'s namespace in the background (caller stops it)."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen(self.namespace(node).argv(argv), **kwargs)

    def _link_end(self, link: str, state: Dict[str, Any]):
        raw = yaml.safe_load(Path(state["run_dir"], "topology.yaml").read_text())
        topo = parse(raw, state["source"])
        try:
            found = topo.link(link)
        except KeyError as exc:
            raise RunnerError(exc.args[0]) from None
        return next((e for e in found.ends if topo.kind(e.node) == "mr"), found.ends[0])

    def fail(self, link: str) -> str:
        """``ip link set down`` on the MR side of ``link`` (else its first end)."""
        return self._set_link(link, "down")

    def heal(self, link: str) -> str:
        """``ip link set up`` on the end :meth:`fail` took down."""
        return self._set_link(link, "up")

    def _set_link(self, link: str, how: str) -> str:
        state = self.state()
        end = self._link_end(link, state)
        ns = self.namespace(end.node, state)
        (ns.link_down if how == "down" else ns.link_up)(end.interface)
        failed = set(state.get("failed_links", []))
        (failed.add if how == "down" else failed.discard)(link)
        state["failed_links"] = sorted(failed)
        self._save(state)
        return "%s: %s %s %s" % (link, end.node, end.interface, how)

    def status(self, prefix: Optional[str] = None) -> Dict[str, Any]:
        """Nodes, daemons alive, HA and MR bindings of the run."""
        state = self.state(prefix)
        present = set(list_netns())
        marker = state["run_dir"] + "/"
        procs = {}
        for node, info in state["processes"].items():
            procs[node] = {"pid": info["pid"],
                           "alive": marker in (pid_cmdline(info["pid"]) or "")}
        ovs = {}
        for node in state["ovs"]:
            try:
                ovs[node] = self.ovs(node, state).running()
            except LabError:
                ovs[node] = False
        return {
            "prefix": state["prefix"], "topology": state["topology"], "phase": state["phase"],
            "run_dir": state["run_dir"], "registration_s": state.get("registration_s"),
            "failed_links": state.get("failed_links", []),
            "nodes": {n: {"kind": state["kinds"][n], "namespace": name,
                          "exists": name in present}
                      for n, name in state["namespaces"].items()},
            "processes": procs, "ovs": ovs,
            "ha": {ha: self.ha_status(state, ha) for ha in state["ha_nodes"]},
            "mr": {mr: self.mr_status(state, mr) for mr in state["mr_nodes"]},
            "bgp": {node: self._bgp_status(node, state) for node in state.get("bgp", {})},
        }

    def _bgp_status(self, node: str, state: Dict[str, Any]) -> Dict[str, Any]:
        try:
            return {peer: {"state": info.get("state"), "prefixes_received": info.get("pfxRcd"),
                           "remote_as": info.get("remoteAs")}
                    for peer, info in self.bgp_summary(node, state).items()}
        except LabError as exc:
            return {"error": str(exc).splitlines()[0]}

    # -- down ---------------------------------------------------------------------------------
    def down(self, prefix: Optional[str] = None, timeout: float = 5.0) -> List[str]:
        """Tear down run ``prefix`` (default: the current one), also after a crash.

        The MR agent gets SIGTERM first (it de-registers), then the HA; then the OVS
        instances stop, the namespaces go, and ``cleanup_leftovers`` sweeps whatever
        still carries the run's prefix (this prefix only). Returns what was done.
        """
        prefix = prefix or self.current_prefix()
        if prefix is None:
            return []
        validate_prefix(prefix)
        done: List[str] = []
        try:
            state = self.state(prefix)
        except RunnerError as exc:
            log.warning("%s: sweeping by prefix only", exc)
            state = None
        if state is not None:
            marker = state["run_dir"] + "/"
            order = sorted(state["processes"], key=lambda n: state["kinds"].get(n) != "mr")
            for node in order:
                pid = state["processes"][node]["pid"]
                if kill_pids([pid], must_contain=marker, timeout=timeout):
                    done.append("%s (pid %d) survived SIGKILL" % (node, pid))
                else:
                    done.append("stopped %s (pid %d)" % (node, pid))
            for node, rundir in state.get("bgp", {}).items():
                # The daemons' own pid files (the same pids as above, unless a daemon
                # restarted itself): anything left is stopped here.
                pids = [p for p in (frr.read_pid(Path(rundir) / ("%s.pid" % d))
                                    for d in ("bgpd", "zebra")) if p is not None]
                if kill_pids(pids, must_contain=marker, timeout=timeout):
                    done.append("FRR of %s survived SIGKILL" % node)
            for node, rundir in state["ovs"].items():
                try:
                    OvsInstance(Namespace(state["namespaces"][node]), rundir).stop()
                    done.append("stopped OVS of %s" % node)
                except LabError as exc:
                    done.append("OVS of %s: %s" % (node, exc))
            present = set(list_netns())
            for node, name in state["namespaces"].items():
                if name in present:
                    Namespace(name).delete()
                    done.append("deleted namespace %s" % name)
        done += cleanup_leftovers(prefix, base_dir=self.base)
        self._forget(prefix)
        return done

    def _forget(self, prefix: str) -> None:
        shutil.rmtree(self.run_dir(prefix), ignore_errors=True)
        if self.current_prefix() == prefix:
            try:
                self.pointer.unlink()
            except OSError:
                pass

    def _log_tails(self, state: Dict[str, Any], lines: int = 25) -> str:
        parts = []
        for node, info in state.get("processes", {}).items():
            text = _read(Path(info["log"])).splitlines()
            if text:
                parts.append("--- %s (last %d lines)\n%s" % (info["log"], lines,
                                                             "\n".join(text[-lines:])))
        return "\n".join(parts)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _json(path: Path, default: Dict[str, Any]) -> Dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return dict(default)


def _packets(flow: str) -> int:
    m = re.search(r"n_packets=(\d+)", flow)
    return int(m.group(1)) if m else 0


def load_topology(name: Union[str, Path], **params: Any) -> Topology:
    """A topology by name or file; ``scale`` is generated (``params``: mrs, uplinks...)."""
    if str(name) == "scale":
        from topologies.scale import scale_topology
        return scale_topology(**params)
    if params:
        raise RunnerError("topology %s takes no parameters (got %s)" % (name, ", ".join(params)))
    return load(name)
