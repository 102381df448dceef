"""``nemo-ha``: start the home agent in-process, or check its configuration.

    nemo-ha --config ha.yaml            run (OpenFlow listener from the config)
    nemo-ha --check ha.yaml             validate only: exit 0, or 1 with every problem

Running uses the framework's AppManager directly (load the app, create contexts,
instantiate, join the services, close on exit) rather than ``osken-manager``, so it
also works where that command no longer exists (os-ken 4.x). The event library is
patched before logging or argparse are imported, as the framework requires.
"""

import os
import sys

APP_MODULE = "ryu_apps.home_agent"


def _arguments(argv):
    import argparse

    parser = argparse.ArgumentParser(
        prog="nemo-ha", description="NEMO / multiple care-of address home agent on "
                                    "Open vSwitch (an os-ken or Ryu OpenFlow application).")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--config", metavar="FILE", help="run with this YAML configuration")
    mode.add_argument("--check", metavar="FILE",
                      help="validate this configuration and exit (0: valid, 1: problems)")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="log level of the home agent (default INFO)")
    parser.add_argument("--log-file", metavar="FILE", help="log here instead of stderr")
    return parser.parse_args(argv)


def check(path):
    """Validate ``path``; print the result; return the exit status."""
    from ryu_apps.config import ConfigError, load_config
    from ryu_apps.validate import print_problems

    try:
        config = load_config(path)
    except ConfigError as exc:
        print_problems(path, exc)
        return 1
    print(f"{path}: valid ({len(config.mobile_routers)} mobile routers, "
          f"OpenFlow on {config.listen_host}:{config.listen_port})")
    return 0


def patch_event_library():
    """Patch the framework's event library; call it before importing anything else.

    Returns the framework's ``hub``. eventlet's own deprecation notice is silenced
    (os-ken 4 moves away from it).
    """
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    try:
        from os_ken.lib import hub
    except ImportError:  # Ryu on Python 3.9
        from ryu.lib import hub
    hub.patch(thread=False)
    return hub


def serve(hub, app_module, host, port, on_started=None):
    """Run ``app_module`` with an OpenFlow listener until SIGINT/SIGTERM, then close it.

    The framework's AppManager is driven directly (load, create contexts, instantiate,
    join the services, close) - not ``run_apps``, which fails on Ctrl-C on os-ken 4.
    """
    import signal

    from ryu_apps.framework import PROJECT, app_manager, cfg

    cfg.CONF(args=["--ofp-listen-host", host, "--ofp-tcp-listen-port", str(port)],
             project=PROJECT, default_config_files=[])
    manager = app_manager.AppManager.get_instance()
    manager.load_apps([app_module])
    contexts = manager.create_contexts()
    services = list(manager.instantiate_apps(**contexts))
    if on_started is not None:
        on_started()

    def _terminate(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        hub.joinall(services)
    except KeyboardInterrupt:
        pass
    finally:
        manager.close()


def run(path, log_level, log_file):
    """Run the home agent until interrupted (SIGINT/SIGTERM)."""
    hub = patch_event_library()
    import logging

    from ryu_apps.config import ConfigError, load_config
    from ryu_apps.validate import print_problems

    try:
        config = load_config(path)
    except ConfigError as exc:
        print_problems(path, exc)
        return 1
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("nemo").setLevel(log_level)
    log = logging.getLogger("nemo.ha")
    os.environ["NEMO_HA_CONFIG"] = os.path.abspath(path)
    # The app would read the file again: hand it the configuration just validated
    # (seconds at 10,000 MRs).
    from ryu_apps import home_agent

    home_agent.PRELOADED[os.path.abspath(path)] = config
    serve(hub, APP_MODULE, config.listen_host, config.listen_port,
          on_started=lambda: log.info("nemo-ha running: OpenFlow on %s:%d, config %s",
                                      config.listen_host, config.listen_port, path))
    log.info("nemo-ha stopping")
    return 0


def main(argv=None):
    args = _arguments(sys.argv[1:] if argv is None else argv)
    if args.check:
        return check(args.check)
    return run(args.config, args.log_level, args.log_file)


if __name__ == "__main__":
    sys.exit(main())
