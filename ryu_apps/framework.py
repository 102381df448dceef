"""Import shim: the same app runs on os-ken (Python 3.10+) and on Ryu 4.34 (Python 3.9).

os-ken kept Ryu's programming model under new names; everything the home agent needs
from the framework is imported here, once, so no other module names either.
"""

from __future__ import annotations

try:  # os-ken, the maintained fork (default)
    from os_ken import cfg
    from os_ken.base import app_manager
    from os_ken.controller import event, ofp_event
    from os_ken.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER,
                                           MAIN_DISPATCHER, set_ev_cls)
    from os_ken.lib import hub
    from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

    BaseApp = app_manager.OSKenApp
    FRAMEWORK = "os-ken"
    PROJECT = "os_ken"
except ImportError:  # pragma: no cover - exercised by the Ryu/Python 3.9 run
    from ryu import cfg  # type: ignore[no-redef]
    from ryu.base import app_manager  # type: ignore[no-redef]
    from ryu.controller import event, ofp_event  # type: ignore[no-redef]
    from ryu.controller.handler import (CONFIG_DISPATCHER,  # type: ignore[no-redef]
                                        DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls)
    from ryu.lib import hub  # type: ignore[no-redef]
    from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser  # type: ignore[no-redef]

    BaseApp = app_manager.RyuApp
    FRAMEWORK = "ryu"
    PROJECT = "ryu"



def run_in_thread(job, *args):  # type: ignore[no-untyped-def]
    """Run ``job(*args)`` in a real OS thread; the calling green thread waits cooperatively.

    For blocking system calls only (``fsync``): Python code there would hold the
    interpreter lock against the event thread (see background.py). Both frameworks run
    on eventlet, whose ``tpool`` keeps un-patched threads for this.
    """
    from eventlet import tpool

    return tpool.execute(job, *args)


__all__ = ["BaseApp", "CONFIG_DISPATCHER", "DEAD_DISPATCHER", "FRAMEWORK", "MAIN_DISPATCHER",
           "PROJECT", "app_manager", "cfg", "event", "hub", "ofp_event", "ofproto_v1_3",
           "ofproto_v1_3_parser", "run_in_thread", "set_ev_cls"]
