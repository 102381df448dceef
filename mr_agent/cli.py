"""``nemo-mr``: run the MR agent, check its configuration, or show its status.

    nemo-mr --config mr.yaml            run until SIGTERM / Ctrl-C (then de-register all);
                                        SIGHUP stops it keeping the bindings (restart)
    nemo-mr --check mr.yaml             validate: exit 0, or 1 with every problem
    nemo-mr status --config mr.yaml     the bindings as a table (--json for JSON)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import List, Optional

from ryu_apps.validate import print_problems

from .config import ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nemo-mr", description="Mobile router agent: registers every care-of address "
                                    "of every uplink with the home agent (NEMO + multiple "
                                    "care-of addresses) and drives the local data plane.")
    parser.add_argument("command", nargs="?", choices=("run", "status"), default="run",
                        help="run the agent (default) or show the status of a running one")
    parser.add_argument("--config", metavar="FILE", help="the YAML configuration")
    parser.add_argument("--check", metavar="FILE", help="validate this configuration, exit")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--log-file", metavar="FILE", help="log here instead of stderr")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    path = args.check or args.config
    if path is None:
        _parser().error("give --config FILE (or --check FILE)")
    try:
        config = load_config(path)
    except ConfigError as exc:
        print_problems(path, exc)
        return 1
    if args.check:
        print(f"{path}: valid ({len(config.uplinks)} uplinks, home agents "
              f"{', '.join(str(a) for a in config.home_agents)})")
        return 0
    if args.command == "status":
        return _status(config, args.json)
    handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger("nemo").setLevel(args.log_level)
    from .agent import Agent
    from .dataplane import backend_for

    agent = Agent(config, backend_for(config))
    logging.getLogger("nemo.mr").info("MR agent for %s started (%d uplinks)",
                                      config.home_address, len(config.uplinks))
    agent.run()
    return 0


def _status(config, as_json: bool) -> int:
    if not config.status_file:
        print("status needs status_file in the configuration", file=sys.stderr)
        return 1
    try:
        with open(config.status_file, encoding="utf-8") as handle:
            status = json.load(handle)
    except (OSError, ValueError) as exc:
        print(f"{config.status_file}: no status ({exc}); is the agent running?",
              file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(status, indent=1))
        return 0
    print(f"home address {status['home_address']}, home agent {status['home_agent']}")
    live = status.get("liveness") or {}
    if live.get("enabled"):
        print(f"liveness: probes every {live['interval_ms']} ms to port {live['port']}, dead "
              f"after {live['misses']} misses; silent paths detected: "
              f"{live['silent_paths_detected']}")
    else:
        print("liveness: off")
    print(f"{'BID':>4}  {'care-of address':<24} {'uplink':<10} {'state':<14} "
          f"{'usable':<6} {'left':>7}  {'probes':<16} {'silent':>6}")
    for b in status["bindings"]:
        left = "-" if b["lifetime_left"] is None else f"{b['lifetime_left']:.0f}s"
        probe = b.get("probe") or {}
        if b.get("silent_for") is not None:
            probes = f"silent {b['silent_for']:.0f}s"
        elif probe.get("probing"):
            rtt = "-" if probe.get("rtt_ms") is None else f"{probe['rtt_ms']:.1f}ms"
            probes = f"{probe['received']}/{probe['sent']} {rtt}"
        else:
            probes = "-"
        print(f"{b['bid']:>4}  {b['care_of']:<24} {b['uplink']:<10} {b['state']:<14} "
              f"{'yes' if b['usable'] else 'no':<6} {left:>7}  {probes:<16} "
              f"{b.get('path_failures', 0):>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
