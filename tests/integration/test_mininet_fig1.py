"""The Mininet variant of the figure-1 lab (topologies/mininet_fig1.py), end to end.

Runs the documented command non-interactively::

    mn --custom topologies/mininet_fig1.py --topo rfc4908 --test rfc4908

with one difference: ``mn`` is started through a small wrapper that replaces
Mininet's *crash* cleanup. When something raises inside ``mn``, Mininet calls
``mininet.clean.cleanup()`` -- the same as ``mn -c`` -- which kills every
``ping`` and ``ryu-manager`` on the machine, deletes every bridge of the
system OVS, every ``*-ethN`` link and ``/tmp/*.log``. A test suite must not do
that to its neighbours, so the wrapper stops only the nodes of this run (and
the custom file's own teardown). On the normal path nothing changes: Mininet
stops its nodes, the custom file stops nemo-mr, nemo-ha and their private OVS.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from topologies.lab import cleanup_leftovers, default_base_dir
from topologies.netns import list_netns
from topologies.procs import pids_matching

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.requires_root,
              pytest.mark.requires_ovs,
              pytest.mark.requires_tools("mn", "mnexec", "ip", "ping", "ethtool",
                                         "ovs-vswitchd", "ovsdb-server")]

ROOT = Path(__file__).resolve().parents[2]
MN_ARGS = ["--custom", "topologies/mininet_fig1.py", "--topo", "rfc4908", "--test", "rfc4908"]

# argv: <path of mn> <mn arguments...>
SAFE_MN = r"""
import runpy, sys
import mininet.clean, mininet.node

nodes = []
_init = mininet.node.Node.__init__

def _track(self, *args, **kwargs):
    nodes.append(self)
    _init(self, *args, **kwargs)

def _this_run_only():
    print("*** test wrapper: stopping this run's nodes only (instead of mn -c)", flush=True)
    for callback in list(mininet.clean.Cleanup.callbacks):
        callback()
    for node in nodes:
        try:
            node.terminate()
        except Exception as exc:
            print("*** test wrapper: terminate %s: %s" % (node, exc), flush=True)

mininet.node.Node.__init__ = _track
mininet.clean.cleanup = _this_run_only
mininet.clean.Cleanup.cleanup = classmethod(lambda cls: _this_run_only())
mn = sys.argv[1]
sys.argv = ["mn"] + sys.argv[2:]
runpy.run_path(mn, run_name="__main__")
"""


def mn_interpreter(mn: str) -> str:
    """The interpreter of the ``mn`` script (Debian: /usr/bin/python3, where mininet lives)."""
    first = Path(mn).read_text().splitlines()[0]
    return first[2:].strip().split()[0] if first.startswith("#!") else "python3"


def test_cn_pings_the_lan_hosts_through_the_tunnels():
    mn = shutil.which("mn", path=os.environ.get("PATH", os.defpath) + ":/usr/sbin:/sbin")
    env = dict(os.environ, NEMO_FABRIC_PYTHON=sys.executable)  # the agents need os-ken
    proc = subprocess.Popen([mn_interpreter(mn), "-c", SAFE_MN, mn] + MN_ARGS, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        out, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # mn stops and cleans up (through the wrapper)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        out += "\n(test: mn timed out)"
    print(out[-8000:])
    prefixes = sorted(set(re.findall(r"/(nf[0-9a-f]{4}-)(?:ha|mr)-run", out)))
    try:
        assert proc.returncode == 0, "mn exited with %s" % proc.returncode
        assert "*** rfc4908: PASS" in out
        for pair in ("cn -> lan1", "cn -> lan2", "lan1 -> cn"):
            assert re.search(re.escape(pair) + r" .*: 5 packets transmitted, 5 received", out), pair
        # The run left nothing behind: no named namespace, OVS daemon or run directory.
        assert len(prefixes) == 2, prefixes  # one Lab each for ha and mr
        base = default_base_dir()
        for prefix in prefixes:
            assert not [n for n in list_netns() if n.startswith(prefix)]
            assert not pids_matching(str(base / prefix))
            assert not list(base.glob(prefix + "*"))
    finally:
        for prefix in prefixes:
            cleanup_leftovers(prefix)
