"""The signalling baseline: a trivial os-ken app that echoes every packet-in.

On connection it installs a table-miss flow to the controller (no buffering) and, after
a barrier, logs ``echo ready``; each packet-in is answered with a packet-out of the same
frame back out of its in_port. Started like the home agent (``nemo-ha``): the
framework's AppManager in-process, the same event loop and OpenFlow stack::

    python -m bench.echo_app --port 6653 [--host 127.0.0.1]
"""

import sys

APP_MODULE = "bench.echo_app"

_app_manager = None
if __name__ != "__main__":  # loaded by AppManager, after the event library is patched
    from os_ken.base import app_manager as _app_manager
    from os_ken.controller import ofp_event as _ofp_event
    from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
    from os_ken.ofproto import ofproto_v1_3 as _ofproto

if _app_manager is not None:
    import logging

    class EchoApp(_app_manager.OSKenApp):
        OFP_VERSIONS = [_ofproto.OFP_VERSION]

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.log = logging.getLogger("nemo.echo")
            self.echoed = 0

        @set_ev_cls(_ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
        def _on_features(self, ev):
            dp = ev.msg.datapath
            ofp, parser = dp.ofproto, dp.ofproto_parser
            dp.send_msg(parser.OFPFlowMod(dp, table_id=0, priority=0, match=parser.OFPMatch(),
                                          instructions=[parser.OFPInstructionActions(
                                              ofp.OFPIT_APPLY_ACTIONS,
                                              [parser.OFPActionOutput(ofp.OFPP_CONTROLLER,
                                                                      ofp.OFPCML_NO_BUFFER)])]))
            dp.send_msg(parser.OFPBarrierRequest(dp))

        @set_ev_cls(_ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
        def _on_barrier(self, ev):
            self.log.info("echo ready on switch %016x", ev.msg.datapath.id)

        @set_ev_cls(_ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
        def _on_packet_in(self, ev):
            msg = ev.msg
            dp = msg.datapath
            ofp, parser = dp.ofproto, dp.ofproto_parser
            dp.send_msg(parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER,
                                            in_port=ofp.OFPP_CONTROLLER,
                                            actions=[parser.OFPActionOutput(
                                                msg.match["in_port"], 0)],
                                            data=msg.data))
            self.echoed += 1


def main(argv=None):
    from ryu_apps.launcher import patch_event_library, serve

    hub = patch_event_library()
    import argparse
    import logging

    parser = argparse.ArgumentParser(prog="python -m bench.echo_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6653)
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        level=logging.WARNING)
    logging.getLogger("nemo").setLevel(logging.INFO)
    serve(hub, APP_MODULE, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
