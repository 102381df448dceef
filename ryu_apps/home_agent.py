"""The home agent as an os-ken/Ryu OpenFlow 1.3 application: a thin shell.

It only moves things between the framework and :class:`~ryu_apps.core.HomeAgentCore`:
switch events and packet-ins go in (with the time), flow/group/meter mods, barriers
and packet-outs come out. Timers post events to the app's own queue, so every state
change happens on the app's event thread. Run it with ``nemo-ha --config ha.yaml``,
or ``osken-manager ryu_apps.home_agent`` / ``ryu-manager ryu_apps.home_agent`` with
the configuration path in the ``NEMO_HA_CONFIG`` environment variable.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from typing import Any, Dict

from . import ofmsg, pipeline, statefile
from .background import SpacedWriter, paced
from .config import load_config
from .core import Frame, HomeAgentCore, Work
from .flowmodel import SwitchState
from .framework import (CONFIG_DISPATCHER, DEAD_DISPATCHER, FRAMEWORK, MAIN_DISPATCHER, BaseApp,
                        event, hub, ofp_event, ofproto_v1_3, run_in_thread, set_ev_cls)

CONFIG_ENV = "NEMO_HA_CONFIG"
STATS_EVERY_TICKS = 5
NEIGHBOR_EVERY_TICKS = 2
STATUS_EVERY_SECONDS = 10.0  # the status file is also rewritten after every change
ALL_COOKIE_BITS = 0xFFFFFFFFFFFFFFFF
FLOW_READ_MAX_BITS, FLOW_READ_ROUTERS_PER_SLICE = 6, 128
FULL_COLLECTION_EVERY = 100  # middle-generation collections per full one (default 10)
WRITER_YIELD_S = 0.001  # a background write sleeps this long after each slice
JSON_CHUNKS_PER_SLICE = 256  # status file: encoder chunks written between two pauses
STATUS_COST_FACTOR = 10.0  # the status file is for operators: at most ~10 % of a core


#: Configurations already read and validated by the launcher, by absolute path.
PRELOADED: Dict[str, Any] = {}


class EventTick(event.EventBase):
    """Posted by the timer thread: run expiry and periodic work on the app's thread."""


class HomeAgent(BaseApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = logging.getLogger("nemo.ha")
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise SystemExit(f"home_agent: set {CONFIG_ENV} to the configuration file "
                             "(nemo-ha --config does this)")
        self.config = PRELOADED.pop(os.path.abspath(path), None) or load_config(path)
        self.logger.info("home agent app on %s, configuration %s (%d mobile routers)",
                         FRAMEWORK, path, len(self.config.mobile_routers))
        self.core = HomeAgentCore(self.config)
        if self.config.state_file:
            entries, stamps, mac = statefile.load(self.config.state_file, time.monotonic(),
                                                  time.time())
            self.core.restore(entries, stamps, mac,
                              statefile.load_group_ids(self.config.state_file))
            self.logger.info("restored %d binding cache entries from %s", len(entries),
                             self.config.state_file)
        self.datapath: Any = None
        self._reading: Dict[str, Any] = {}
        self._xids: Dict[int, Work] = {}  # message xid -> work
        self._barriers: Dict[int, Work] = {}  # final barrier xid -> work
        self._failed: set = set()
        self._drop_xids: Dict[int, str] = {}  # pending drop-counter replies: xid -> kind
        self._drop_reply: Dict[str, Any] = {}
        self._ticks = 0
        self._status_due = 0.0
        self._state_dirty = self._status_dirty = False
        # State and status files are written in slices between BUs, spaced by their cost
        # (see background.py): at thousands of MRs a write takes up to a second.
        self._state_writer = SpacedWriter("state file", hub.spawn, time.monotonic,
                                          _yield_now)
        self._status_writer = SpacedWriter("status file", hub.spawn, time.monotonic,
                                           _yield_now, cost_factor=STATUS_COST_FACTOR)
        self._stop = hub.Event()
        self._timer = hub.spawn(self._tick_loop)

    # -- timers ----------------------------------------------------------------------
    def _tick_loop(self) -> None:
        while not self._stop.wait(self.config.limits.expiry_interval):
            self.send_event(self.name, EventTick())

    @set_ev_cls(EventTick)
    def _on_tick(self, _ev: EventTick) -> None:
        now = time.monotonic()
        self._ticks += 1
        for work in self.core.expire(now):
            self._send_work(work)
        if self._ticks % NEIGHBOR_EVERY_TICKS == 0:
            frame = self.core.neighbor_solicitation()
            if frame is not None:
                self._packet_out(frame)
        if self._ticks % STATS_EVERY_TICKS == 0 and self.core.ready:
            self._request_drop_stats()
        self._persist(now)

    def _persist(self, now: float) -> None:
        if self.core.dirty:
            self.core.dirty = False
            self._state_dirty = True
        if self.core.status_changed:
            self.core.status_changed = False
            self._status_dirty = True
        path = self.config.state_file
        if path and self._state_dirty and self._state_writer.due(now):
            self._state_dirty = False
            self._state_writer.submit(self._state_job(path, now), self._state_failed)
        # The status lists every binding: rewrite it after changes, else only now and then.
        status = self.config.status_file
        if status and (self._status_dirty or now >= self._status_due) \
                and self._status_writer.due(now):
            self._status_dirty = False
            self._status_due = now + STATUS_EVERY_SECONDS
            build = self.core.status_snapshot(now)
            self._status_writer.submit(lambda pause: _write_json(status, build(pause), pause),
                                       self._status_failed)

    def _state_job(self, path: str, now: float) -> Any:
        """The state as of now (cheap copies), to be encoded and written later: in the
        background when the job is given a ``pause``, in one go (on stop) without."""
        core = self.core
        entries, stamps = list(core.cache), dict(core.handler.last_timestamps)
        mac, groups, wall = core.next_hop_mac, dict(core.group_ids), time.time()
        return lambda pause=None: statefile.save(
            path, entries, stamps, mac, now, wall, groups, pause=pause,
            sync=os.fsync if pause is None else _fsync_in_thread)

    def _state_failed(self, exc: Exception) -> None:
        self._state_dirty = True  # try again when the writer allows
        self.logger.error("cannot write the state file %s: %s (retrying; a restart now "
                          "would lose the newest bindings)", self.config.state_file, exc)

    def _status_failed(self, exc: Exception) -> None:
        self._status_dirty = True
        self.logger.error("cannot write the status file %s: %s", self.config.status_file,
                          exc)

    def close(self) -> None:
        self._stop.set()
        try:
            # Let a background write finish, then write both files as of now, inline.
            for writer in (self._state_writer, self._status_writer):
                if not writer.wait_idle(hub.sleep):
                    self.logger.error("%s: background write still running at exit",
                                      writer.name)
            now = time.monotonic()
            if self.config.state_file:
                self._state_job(self.config.state_file, now)()
            if self.config.status_file:
                _write_json(self.config.status_file, self.core.status(now))
        finally:
            super().close()

    # -- switch connection --------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _on_features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        if self.config.dpid is not None and dp.id != self.config.dpid:
            self.logger.warning("ignoring switch %016x (configured dpid %016x)", dp.id,
                                self.config.dpid)
            return
        self.datapath = dp
        self._read_switch(dp)

    def _read_switch(self, dp: Any) -> None:
        """Ask for ports, flows, groups and meters; :meth:`_start` runs when all arrived."""
        self._xids.clear()
        self._barriers.clear()
        bits = flow_read_bits(len(self.config.mobile_routers))
        self._reading = {"ports": [], "flows": [], "groups": [], "meters": [],
                         "pending": {"ports", "flows", "groups", "meters"},
                         "flow_chunks": [(chunk, (1 << bits) - 1) for chunk in range(1 << bits)]}
        parser = dp.ofproto_parser
        dp.send_msg(parser.OFPPortDescStatsRequest(dp, 0))
        self._request_flow_chunk(dp)
        dp.send_msg(parser.OFPGroupDescStatsRequest(dp, 0))
        dp.send_msg(parser.OFPMeterConfigStatsRequest(dp, 0, dp.ofproto.OFPM_ALL))
        self.logger.info("switch %016x connected: reading its state (flows in %d slices)",
                         dp.id, 1 << bits)

    def _request_flow_chunk(self, dp: Any) -> None:
        """Flows are read in slices by the low bits of their cookie, one request after
        the other: at 10,000 MRs one request returns 170,000 flows that take os-ken ~30 s
        to parse, a silence in which OVS gives up on the connection. Slices keep
        requests (and answers to OVS's probes) flowing, and every flow, whatever its
        cookie, is in exactly one slice."""
        value, mask = self._reading["flow_chunks"].pop(0)
        dp.send_msg(dp.ofproto_parser.OFPFlowStatsRequest(
            dp, table_id=dp.ofproto.OFPTT_ALL, cookie=value, cookie_mask=mask))

    def _collect(self, ev: Any, kind: str) -> None:
        if ev.msg.datapath is not self.datapath or "pending" not in self._reading:
            return
        if kind == "flows":  # converted at once: os-ken's objects take ~5x the memory
            self._reading[kind].extend(ofmsg.read_flow(stat) for stat in ev.msg.body)
        else:
            self._reading[kind].extend(ev.msg.body)
        if not ev.msg.flags & ev.msg.datapath.ofproto.OFPMPF_REPLY_MORE:
            if kind == "flows" and self._reading["flow_chunks"]:
                self._request_flow_chunk(ev.msg.datapath)
                return
            self._reading["pending"].discard(kind)
            if not self._reading["pending"]:
                self._start()

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _on_ports(self, ev: Any) -> None:
        self._collect(ev, "ports")

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _on_flows(self, ev: Any) -> None:
        if self._drop_xids.get(ev.msg.xid) == "flows":  # a drop-counter poll
            flows = self._drop_reply.setdefault("flows", [])
            flows.extend((ofmsg.read_flow(s), s.packet_count) for s in ev.msg.body
                         if not s.instructions)
            if not ev.msg.flags & ev.msg.datapath.ofproto.OFPMPF_REPLY_MORE:
                self._drop_answered(ev.msg.xid)
        elif "pending" in self._reading:
            self._collect(ev, "flows")

    @set_ev_cls(ofp_event.EventOFPAggregateStatsReply, MAIN_DISPATCHER)
    def _on_aggregate(self, ev: Any) -> None:
        reason = self._drop_xids.get(ev.msg.xid)
        if reason is not None and reason != "flows":
            self._drop_reply.setdefault("aggregates", {})[reason] = ev.msg.body.packet_count
            self._drop_answered(ev.msg.xid)

    def _drop_answered(self, xid: int) -> None:
        del self._drop_xids[xid]
        if not self._drop_xids:
            reply, self._drop_reply = self._drop_reply, {}
            if self.core.drop_counters(reply.get("flows", []), reply.get("aggregates", {})):
                self._status_dirty = True

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN_DISPATCHER)
    def _on_groups(self, ev: Any) -> None:
        self._collect(ev, "groups")

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, MAIN_DISPATCHER)
    def _on_meters(self, ev: Any) -> None:
        self._collect(ev, "meters")

    def _start(self) -> None:
        """All of the switch's state is read: find our ports, then reconcile."""
        reading, self._reading = self._reading, {}
        by_name = {p.name.decode() if isinstance(p.name, bytes) else p.name: p
                   for p in reading["ports"]}
        missing = [n for n in (self.config.uplink_port, self.config.tunnel_port)
                   if n not in by_name]
        local = next((p for p in reading["ports"] if p.port_no == pipeline.OFPP_LOCAL), None)
        if missing or local is None:
            self.logger.error("switch %016x lacks port(s) %s (has %s): not programming it",
                              self.datapath.id, ", ".join(missing) or "LOCAL",
                              ", ".join(sorted(by_name)))
            return
        self.core.connected(pipeline.Ports(by_name[self.config.uplink_port].port_no,
                                           by_name[self.config.tunnel_port].port_no,
                                           local.hw_addr))
        installed = SwitchState()
        for flow in reading["flows"]:
            installed.flows[flow.key] = flow
        for desc in reading["groups"]:
            installed.groups[desc.group_id] = ofmsg.read_group(desc)
        for conf in reading["meters"]:
            installed.meters[conf.meter_id] = ofmsg.read_meter(conf)
        self._send_work(self.core.reconcile(installed), startup=True)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _on_dead(self, ev: Any) -> None:
        if ev.datapath is self.datapath:
            self.logger.warning("switch %016x disconnected", ev.datapath.id or 0)
            self.datapath = None
            self.core.disconnected()

    # -- sending work ------------------------------------------------------------------------
    def _send_work(self, work: Work, startup: bool = False) -> None:
        dp = self.datapath
        if dp is None:
            return
        parser = dp.ofproto_parser
        for batch in ofmsg.change_batches(dp, work.changes):
            for msg in batch:
                dp.set_xid(msg)
                self._xids[msg.xid] = work
                work.xids.append(msg.xid)
                if isinstance(msg, ofmsg.Encoded):  # pre-encoded: send_msg minus serialize
                    dp.send(msg.buf)
                else:
                    dp.send_msg(msg)
            dp.send_msg(parser.OFPBarrierRequest(dp))
        barrier = parser.OFPBarrierRequest(dp)
        dp.set_xid(barrier)
        self._barriers[barrier.xid] = work
        work.startup = startup
        dp.send_msg(barrier)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _on_barrier(self, ev: Any) -> None:
        work = self._barriers.pop(ev.msg.xid, None)
        if work is None:
            return
        for xid in work.xids:
            self._xids.pop(xid, None)
        now = time.monotonic()
        if work.work_id in self._failed:
            self._failed.discard(work.work_id)
            frames, follow = self.core.failed(work, "see the error above", now)
            self._resync()
        else:
            if work.startup:
                self.core.ready = True
                self.logger.info("switch %016x programmed; home agent ready", self.datapath.id)
                _freeze_long_lived_objects()
            frames, follow = self.core.confirmed(work, now)
        for frame in frames:
            self._packet_out(frame)
        for item in follow:
            self._send_work(item)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _on_error(self, ev: Any) -> None:
        msg = ev.msg
        work = self._xids.get(msg.xid)
        self.logger.error("switch error type=%d code=%d for xid %d (%s)", msg.type, msg.code,
                          msg.xid, "work %d" % work.work_id if work else "unknown message")
        if work is not None:
            self._failed.add(work.work_id)

    def _resync(self) -> None:
        """After a refused change, read the switch again and reconcile to the cache."""
        if self.datapath is not None:
            self.core.connected(self.core.ports)
            self._read_switch(self.datapath)

    # -- packet-ins and packet-outs ----------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _on_packet_in(self, ev: Any) -> None:
        msg = ev.msg
        if msg.datapath is not self.datapath:
            return
        works = self.core.packet_in(bytes(msg.data), msg.match["in_port"], time.monotonic(),
                                    time.time())
        for work in works:
            if len(work.changes):
                self._send_work(work)
            else:
                frames, follow = self.core.confirmed(work, time.monotonic())
                for frame in frames:
                    self._packet_out(frame)
                for item in follow:
                    self._send_work(item)

    def _packet_out(self, frame: Frame) -> None:
        dp = self.datapath
        if dp is None:
            return
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER,
                                        in_port=ofp.OFPP_CONTROLLER,
                                        actions=[parser.OFPActionOutput(frame.port, 0)],
                                        data=frame.data))

    def _request_drop_stats(self) -> None:
        """Drop counters, cheaply at any scale: the base pipeline's few flows, and one
        aggregate (a packet total) per drop reason of the routers' drop flows."""
        dp = self.datapath
        if dp is None:
            return
        parser, ofp = dp.ofproto_parser, dp.ofproto
        requests = [("flows", parser.OFPFlowStatsRequest(
            dp, table_id=ofp.OFPTT_ALL, cookie=pipeline.BASE_COOKIE,
            cookie_mask=ALL_COOKIE_BITS))]
        for reason, (table, cookie, mask) in pipeline.drop_aggregates().items():
            requests.append((reason, parser.OFPAggregateStatsRequest(
                dp, 0, table, ofp.OFPP_ANY, ofp.OFPG_ANY, cookie, mask, parser.OFPMatch())))
        self._drop_xids.clear()  # a poll left unanswered is superseded
        self._drop_reply = {}
        for kind, request in requests:
            dp.set_xid(request)
            self._drop_xids[request.xid] = kind
            dp.send_msg(request)


def flow_read_bits(routers: int) -> int:
    """Cookie bits to slice the start-up flow read by: one request for small
    deployments, up to 64 (~2,700 flows each) at 10,000 MRs."""
    return min(FLOW_READ_MAX_BITS, (routers // FLOW_READ_ROUTERS_PER_SLICE).bit_length())


def _freeze_long_lived_objects() -> None:
    """Keep the garbage collector's full collections short and rare.

    Everything alive once the switch is programmed (configuration, compiled pipeline,
    framework) lives as long as the process; a full collection walked all of it - at
    1,000 MRs ~50 ms, every few seconds under steady refreshes, stalling every BU
    behind it (the signalling p99). Frozen objects are left out of collections; the
    garbage that frees by reference counting still does. The collector's own gate for
    a full collection (a quarter more long-lived objects than last time) counts only
    unfrozen objects, so after the freeze it would open far more often: at 10,000 MRs
    every few seconds, each still ~100 ms (the bindings made since, spread over a large
    heap). Ten times fewer full collections keep the pauses rare.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


def _yield_now() -> None:
    """Let Binding Updates go first (see background.py): not ``sleep(0)``, which resumes
    the write at the next turn of the event loop, between the hops a BU takes through
    it (receive, dispatch, send), so a long write (10,000 MRs) slowed BUs below the
    offered rate and they queued for over 100 ms. A millisecond of sleep leaves the
    loop to the BUs and caps the write at a fifth of the core or so."""
    hub.sleep(WRITER_YIELD_S)


def _fsync_in_thread(fd: int) -> None:
    """fsync blocks the whole process under eventlet: a real thread waits for it."""
    run_in_thread(os.fsync, fd)


def _write_json(path: str, data: Dict[str, Any], pause: Any = None) -> None:
    """Write ``data`` atomically; ``pause`` is called every few hundred chunks when this
    is a background write (see background.py)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        encoder = json.JSONEncoder(indent=1, default=str)
        for chunk in paced(encoder.iterencode(data), JSON_CHUNKS_PER_SLICE, pause):
            handle.write(chunk)
    os.replace(tmp, path)
