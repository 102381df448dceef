#!/usr/bin/env bash
# Install the Debian packages nemo-fabric's tests and lab need, but only the
# ones that are missing.
#
#   * Each package is checked with dpkg-query; nothing is done when all are
#     installed, so this is cheap to run before every `make test`.
#   * As root: `apt-get update` once, then a non-interactive install of exactly
#     the missing packages. A failing install is an error.
#   * Not root: print which packages are missing and how to install them, then
#     exit 0. Tests that need a missing tool skip with a reason (or fail when
#     CI=true, see tests/conftest.py).
#
# It also checks that "$PYTHON -m venv" works when the virtual environment
# ("$VENV") does not exist yet; if it does not, python3-venv is added to the
# missing packages.
#
# Environment:
#   PYTHON        interpreter the Makefile will build the venv with (python3)
#   VENV          path of the virtual environment (.venv)
#   DEB_PACKAGES  override the package list (space separated), e.g. for testing
set -euo pipefail

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

# openvswitch-switch: OVS datapath + ovsdb for the Home Agent's switch
# tshark:             independent Mobility Header dissector for interop tests
# iproute2:           ip netns / veth / ip -6 route for the namespace lab
# iputils-ping:       ping for reachability checks in the lab
# tcpdump:            packet capture in the lab
# iperf3:             traffic for the multihoming/failover benchmarks
# ethtool:            offload settings on veth pairs
# mininet:            `mn --custom topologies/mininet_fig1.py` (tests/integration/test_mininet_fig1.py)
# frr:                zebra + bgpd + vtysh for the lab's bgp nodes (fig2: anycast HA sites)
DEFAULT_PACKAGES="openvswitch-switch tshark iproute2 iputils-ping tcpdump iperf3 ethtool mininet frr"
read -r -a packages <<<"${DEB_PACKAGES:-$DEFAULT_PACKAGES}"

log() { printf 'install-deps: %s\n' "$*" >&2; }

if ! command -v dpkg-query >/dev/null 2>&1; then
    log "dpkg-query not found: not a Debian system, skipping system packages."
    log "Install the equivalents of: ${packages[*]}"
    exit 0
fi

is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for pkg in "${packages[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

# A Debian python3 without python3-venv cannot create a venv with pip in it.
# Try it for real, but only when the project venv still has to be created.
# (An interpreter older than 3.10 is left to the Makefile, which rejects it.)
if [ ! -x "$VENV/bin/python" ] \
    && "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
    probe=$(mktemp -d)
    if ! "$PYTHON" -m venv "$probe/venv" >/dev/null 2>&1; then
        log "'$PYTHON -m venv' does not work here; it is needed to create $VENV."
        is_installed python3-venv || missing+=(python3-venv)
        # python3-venv only covers Debian's default python3; add the versioned
        # package for the interpreter actually used when Debian has one.
        pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
        if [ -n "$pyver" ] && ! is_installed "python$pyver-venv" \
            && apt-cache show "python$pyver-venv" >/dev/null 2>&1; then
            missing+=("python$pyver-venv")
        fi
        if is_installed python3-venv && [ ${#missing[@]} -eq 0 ]; then
            log "  no Debian package would fix it; is PYTHON=$PYTHON a complete Python?"
        fi
    fi
    rm -rf "$probe"
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    log "WARNING: missing Debian packages: ${missing[*]}"
    log "  install them with: sudo apt-get install --no-install-recommends ${missing[*]}"
    log "  continuing; tests that need them will be skipped (they fail when CI=true)."
    exit 0
fi

log "installing missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark pulls in wireshark-common, whose debconf asks whether non-root users
# may capture. Answer it explicitly (no: captures in this project run as root)
# so the install never waits for input, whatever the frontend.
if printf '%s\n' "${missing[@]}" | grep -qx tshark; then
    echo "wireshark-common wireshark-common/install-setuid boolean false" \
        | debconf-set-selections
fi
if ! apt-get update -q </dev/null; then
    log "ERROR: apt-get update failed"
    exit 1
fi
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null; then
    log "ERROR: apt-get install failed for: ${missing[*]}"
    exit 1
fi

# Verify: apt-get may succeed and still leave a virtual/renamed package absent.
still=()
for pkg in "${missing[@]}"; do
    is_installed "$pkg" || still+=("$pkg")
done
if [ ${#still[@]} -ne 0 ]; then
    log "ERROR: still not installed after apt-get: ${still[*]}"
    exit 1
fi
log "done"
