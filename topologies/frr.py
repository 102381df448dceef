"""FRR (zebra + bgpd) for the lab's ``bgp`` nodes: configuration from the topology,
the daemons in a node's namespace with private sockets, and ``vtysh`` queries.

Each ``bgp`` node gets a run directory ``<run_dir>/frr-<node>/`` (owned by the ``frr``
user, which the daemons drop to; FRR refuses ``-u root``) holding ``zebra.conf``,
``bgpd.conf``, the pid files, the zserv socket, the vty sockets and the logs::

    zebra -i $D/zebra.pid --vty_socket $D -z $D/zserv.api -f $D/zebra.conf -P 0 -u frr -g frr
    bgpd  -i $D/bgpd.pid  --vty_socket $D -z $D/zserv.api -f $D/bgpd.conf  -P 0 -u frr -g frr
    vtysh --vty_socket $D -c "show bgp summary"

The daemons run in the foreground (no ``-d``) under :meth:`Lab.popen`, so a failed
``up`` stops them like any other lab process; ``down`` stops them by the pids recorded
in the state file (the pid files hold the same pids) and deleting the namespace kills
whatever is left. Debian installs the daemons in ``/usr/lib/frr`` (not on PATH):
:func:`frr_tool` looks there too.

The generated ``bgpd.conf`` of a node: its ASN and router-id, one neighbour per link
marked ``bgp: true`` (the peer's address on that link, the peer's ASN), and in the IPv6
unicast family ``redistribute connected`` (link prefixes, CoA prefixes, HA unicast
prefixes) plus a ``network`` statement per entry of the node's ``networks`` (an HA
site's anycast aggregate, routed to the HA by a kernel route). eBGP without policy is
allowed (``no bgp ebgp-requires-policy``) and the timers are short, for a lab.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from topologies.model import Topology
from topologies.netns import Namespace
from topologies.procs import LabError

#: Where Debian's ``frr`` package puts zebra, bgpd, ... (not on PATH).
FRR_DIRS = ("/usr/lib/frr", "/usr/local/sbin", "/usr/sbin", "/sbin")
FRR_USER = "frr"


class FrrError(LabError):
    """FRR is missing or a daemon did not come up."""


def frr_tool(name: str) -> Optional[str]:
    """Full path of an FRR executable (zebra, bgpd, vtysh), also in /usr/lib/frr."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *FRR_DIRS])
    return shutil.which(name, path=path)


def require_tool(name: str) -> str:
    found = frr_tool(name)
    if found is None:
        raise FrrError("%s not found (PATH, %s): install the Debian package frr"
                       % (name, ", ".join(FRR_DIRS)))
    return found


def zebra_config(topo: Topology, node: str, rundir: Path) -> str:
    return "\n".join([
        "hostname %s" % node,
        "log file %s/zebra.log informational" % rundir,
        "!", ""])


def bgpd_config(topo: Topology, node: str, rundir: Optional[Path] = None) -> str:
    """``bgpd.conf`` of ``node`` (see the module docstring)."""
    s = topo.nodes[node]
    lines = ["hostname %s" % node]
    if rundir is not None:
        lines.append("log file %s/bgpd.log informational" % rundir)
    lines += ["!", "router bgp %d" % s["asn"],
              " bgp router-id %s" % s["router_id"],
              " no bgp ebgp-requires-policy",
              " no bgp default ipv4-unicast",
              " bgp log-neighbor-changes",
              " timers bgp 3 9"]
    sessions = topo.bgp_sessions(node)
    for b in sessions:
        lines += [" neighbor %s remote-as %d" % (b.peer, b.peer_asn),
                  " neighbor %s description %s (link %s)" % (b.peer, b.peer_node, b.link),
                  " neighbor %s update-source %s" % (b.peer, b.local),
                  " neighbor %s timers connect 1" % b.peer,
                  " neighbor %s advertisement-interval 0" % b.peer]
    for family, version in (("ipv6", 6), ("ipv4", 4)):
        mine = [b for b in sessions if b.peer.version == version]
        nets = [n for n in topo.bgp_networks(node) if n.version == version]
        if not mine and not nets:
            continue
        lines.append(" address-family %s unicast" % family)
        lines.append("  redistribute connected")
        lines += ["  network %s" % n for n in nets]
        lines += ["  neighbor %s activate" % b.peer for b in mine]
        lines.append(" exit-address-family")
    lines += ["exit", "!", ""]
    return "\n".join(lines)


def prepare_rundir(rundir: Path, topo: Topology, node: str) -> None:
    """Write the configurations and hand the folder to the frr user (the daemons drop to it)."""
    try:
        user = pwd.getpwnam(FRR_USER)
    except KeyError:
        raise FrrError("no user %r: install the Debian package frr" % FRR_USER) from None
    rundir.mkdir(parents=True, exist_ok=True)
    (rundir / "zebra.conf").write_text(zebra_config(topo, node, rundir))
    (rundir / "bgpd.conf").write_text(bgpd_config(topo, node, rundir))
    for path in [rundir, *rundir.iterdir()]:
        os.chown(path, user.pw_uid, user.pw_gid)
    # The frr user must be able to reach the folder: add search (x) permission for
    # others on the parents we created (a mkdtemp base is 0700).
    for parent in list(rundir.parents)[:3]:
        if parent.stat().st_uid == os.geteuid():
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, (mode & 0o7777) | 0o001)


def daemon_argv(daemon: str, rundir: Path) -> List[str]:
    return [require_tool(daemon), "-i", str(rundir / ("%s.pid" % daemon)),
            "--vty_socket", str(rundir), "-z", str(rundir / "zserv.api"),
            "-f", str(rundir / ("%s.conf" % daemon)), "-P", "0",
            "-u", FRR_USER, "-g", FRR_USER]


def vtysh(ns: Namespace, rundir: Path, command: str, timeout: float = 10.0) -> str:
    """Output of ``vtysh -c COMMAND`` against the node's daemons."""
    return ns.run(require_tool("vtysh"), "--vty_socket", str(rundir), "-c", command,
                  timeout=timeout).stdout


def bgp_summary(ns: Namespace, rundir: Path) -> Dict[str, Dict[str, Any]]:
    """Peer address -> {state, pfxRcd, ...} over every address family."""
    out = vtysh(ns, rundir, "show bgp summary json")
    try:
        tree = json.loads(out)
    except ValueError:
        raise FrrError("unexpected output of show bgp summary json: %r" % out[:300]) from None
    peers: Dict[str, Dict[str, Any]] = {}
    for family in tree.values():
        if isinstance(family, dict):
            for peer, info in (family.get("peers") or {}).items():
                peers[peer] = info
    return peers


def bgp_route(ns: Namespace, rundir: Path, prefix: str) -> Dict[str, Any]:
    """The best path to ``prefix`` in bgpd: {"prefix", "as_path", "next_hop", "paths"}."""
    family = "ipv6" if ":" in prefix else "ipv4"
    tree = json.loads(vtysh(ns, rundir, "show bgp %s unicast %s json" % (family, prefix)) or "{}")
    paths = tree.get("paths") or []
    best = next((p for p in paths if (p.get("bestpath") or {}).get("overall")), None)
    if best is None:
        return {"prefix": prefix, "as_path": None, "next_hop": None, "paths": len(paths)}
    hops = best.get("nexthops") or [{}]
    return {"prefix": prefix, "as_path": (best.get("aspath") or {}).get("string", ""),
            "next_hop": hops[0].get("ip"), "paths": len(paths)}


def wait_file(path: Path, timeout: float, proc: Any, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise FrrError("%s exited with %s" % (what, proc.returncode))
        if time.monotonic() > deadline:
            raise FrrError("%s: no %s after %.0f s" % (what, path, timeout))
        time.sleep(0.02)


def read_pid(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


__all__ = ["FRR_DIRS", "FrrError", "bgp_route", "bgp_summary", "bgpd_config", "daemon_argv",
           "frr_tool", "prepare_rundir", "read_pid", "require_tool", "vtysh", "wait_file",
           "zebra_config"]
