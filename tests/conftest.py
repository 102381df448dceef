"""Shared test configuration: requirement markers that become skips.

Tests state what they need from the host with markers; this conftest registers
the markers and checks them once, when the tests are collected:

``@pytest.mark.requires_root``
    the test needs root (network namespaces, OVS datapath, raw sockets).
``@pytest.mark.requires_tshark``
    ``tshark`` must be on PATH (Debian package ``tshark``).
``@pytest.mark.requires_ovs``
    ``ovs-vsctl`` and ``ovsdb-tool`` must be on PATH (``openvswitch-switch``).
``@pytest.mark.requires_tools("ip", "iperf3", ...)``
    every named executable must be on PATH; the reason names its Debian package.

Markers combine and work on a test, a class or a whole module
(``pytestmark = [pytest.mark.interop, pytest.mark.requires_tshark]``). They
only check the host; the category markers ``slow``, ``integration`` and
``interop`` (setup.cfg) only select tests, so an integration test carries both,
e.g. ``integration`` + ``requires_root`` + ``requires_ovs``.

When a requirement is not met the test is skipped with a reason (printed by
``-ra``). With ``CI`` set to a true value (CI runs with ``CI=true``) the same
test fails instead, so CI never passes while silently skipping tests.
"""

import os
import shutil

import pytest

# Executable -> Debian package that provides it (for the skip reason).
DEBIAN_PACKAGE = {
    "tshark": "tshark",
    "ovs-vsctl": "openvswitch-switch",
    "ovs-ofctl": "openvswitch-switch",
    "ovs-vswitchd": "openvswitch-switch",
    "ovsdb-server": "openvswitch-switch",
    "ovsdb-tool": "openvswitch-switch",
    "ip": "iproute2",
    "ping": "iputils-ping",
    "tcpdump": "tcpdump",
    "iperf3": "iperf3",
    "ethtool": "ethtool",
    "mn": "mininet",
    "mnexec": "mininet",
    "zebra": "frr",
    "bgpd": "frr",
    "vtysh": "frr",
}

OVS_TOOLS = ("ovs-vsctl", "ovsdb-tool")

# Unmet requirements of a test collected under CI, failed at its setup.
_CI_FAILURE = pytest.StashKey[str]()

# Administrative tools live in sbin, which a normal user's PATH may lack; Debian's
# frr package puts its daemons (zebra, bgpd) in /usr/lib/frr, never on PATH (the lab
# looks there too: topologies.frr.frr_tool).
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", os.defpath), "/usr/local/sbin", "/usr/sbin", "/sbin",
     "/usr/lib/frr"]
)


def in_ci():
    """True when the CI environment variable is set to a true value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def find_tool(name):
    """Full path of executable ``name`` (also looking in sbin), or None."""
    return shutil.which(name, path=_SEARCH_PATH)


def _missing_tools_reason(tools):
    missing = [t for t in tools if find_tool(t) is None]
    if not missing:
        return None
    reason = "needs %s on PATH" % ", ".join(missing)
    packages = sorted({DEBIAN_PACKAGE[t] for t in missing if t in DEBIAN_PACKAGE})
    if packages:
        reason += " (Debian package: %s)" % ", ".join(packages)
    return reason


def _unmet_requirements(item):
    reasons = []
    if item.get_closest_marker("requires_root") is not None and os.geteuid() != 0:
        reasons.append("needs root")
    tools = []
    if item.get_closest_marker("requires_tshark") is not None:
        tools.append("tshark")
    if item.get_closest_marker("requires_ovs") is not None:
        tools.extend(OVS_TOOLS)
    for marker in item.iter_markers(name="requires_tools"):
        tools.extend(marker.args)
    # Keep order, drop duplicates.
    reason = _missing_tools_reason(list(dict.fromkeys(tools)))
    if reason:
        reasons.append(reason)
    return reasons


def pytest_configure(config):
    for line in (
        "requires_root: skip (fail in CI) unless running as root",
        "requires_tshark: skip (fail in CI) unless tshark is installed",
        "requires_ovs: skip (fail in CI) unless ovs-vsctl and ovsdb-tool are installed",
        "requires_tools(*names): skip (fail in CI) unless every named executable is installed",
    ):
        config.addinivalue_line("markers", line)


def pytest_collection_modifyitems(config, items):
    # Requirements are static (uid, PATH), so they are checked once here. A skip
    # marker makes -ra report the test's own file and line.
    ci = in_ci()
    for item in items:
        reasons = _unmet_requirements(item)
        if not reasons:
            continue
        reason = "; ".join(reasons)
        if ci:
            item.stash[_CI_FAILURE] = reason
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    reason = item.stash.get(_CI_FAILURE, None)
    if reason is not None:
        pytest.fail(
            "%s (CI is set: a missing requirement fails instead of skipping)" % reason,
            pytrace=False,
        )


def pytest_report_header(config):
    tools = ["tshark"] + list(OVS_TOOLS)
    found = ", ".join(
        "%s=%s" % (t, "yes" if find_tool(t) else "MISSING") for t in tools
    )
    return "nemo-fabric: root=%s, CI=%s, %s" % (
        "yes" if os.geteuid() == 0 else "no",
        "yes" if in_ci() else "no",
        found,
    )
