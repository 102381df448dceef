"""The MR agent's event loop: netlink events, BAs and timers in; BUs and data-plane
updates out. One thread, ``select`` on every socket, the time read once per turn and
passed to the pure parts (:mod:`mr_agent.bul`, :mod:`mr_agent.uplinks`).

Order on a lost uplink or address (the failover path): the de-registration goes out at
once over a surviving care-of address (that moves the downstream traffic at the home
agent), then the care-of address leaves the data plane's outbound group - before any BA
returns. Upstream traffic does not wait for either: the group's buckets watch their
uplink port, so OVS skips a dead uplink by itself.

Silent paths (:mod:`mr_agent.liveness`): every acknowledged care-of address the data
plane carries is probed from this loop (non-blocking UDP sockets, timers from the same
clock); one found dead is handled like a lost address - de-registration over a
survivor first, then the outbound group without it - but stays in the Binding Update
List and is re-registered over its own path until a BA proves the path again.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import time
from typing import Callable, Dict, List, Optional, Tuple

from . import state as statefile
from .bul import BindingUpdateList, Entry, Send
from .config import MobileRouterAgentConfig
from .liveness import Liveness, decode as decode_probe
from .monitor import NetlinkMonitor
from .signalling import CareOf, ProbeSockets, SignallingSockets
from .uplinks import care_of_addresses

LOG = logging.getLogger("nemo.mr")
MAX_WAIT = 1.0  # seconds between turns without any event
STARTUP_GRACE = 3.0  # seconds a (re)started agent leaves the data plane alone for its BAs
HOUSEKEEPING_DELAY = 1.0  # seconds after a silent CoA before deferred data-plane clean-up
STATUS_INTERVAL = 0.25  # seconds between status file writes (unless the outbound set changes)


class DataPlane:
    """What the agent needs from a data-plane backend (see :mod:`mr_agent.dataplane`)."""

    def start(self) -> None:
        raise NotImplementedError

    def address_devices(self) -> Dict[str, str]:
        """Uplink interface -> the device holding its care-of addresses (if another)."""
        return {}

    def sync_care_of(self, care_of: Dict[Tuple[str, CareOf], int]) -> None:
        """Every present (uplink, care-of address) -> BID: paths for its signalling."""

    def program(self, usable: List[Entry]) -> None:
        raise NotImplementedError

    def housekeeping(self) -> None:
        """Deferred clean-up, called on turns where nothing urgent happened."""

    def close(self) -> None:
        pass


class Agent:
    """Registers every care-of address of every uplink and keeps the data plane in step."""

    def __init__(self, config: MobileRouterAgentConfig, dataplane: DataPlane,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.config = config
        self.dataplane = dataplane
        self.clock, self.wall = clock, wall
        self.state = statefile.load(config.state_file)
        self.bul = BindingUpdateList(config, self.state.next_sequence)
        self.sockets = SignallingSockets(config)
        self.devices = dataplane.address_devices()
        watched = {u.interface for u in config.uplinks} | set(self.devices.values())
        self.monitor = NetlinkMonitor(watched)
        self.care_of: Dict[Tuple[str, CareOf], int] = {}  # (uplink, CoA) -> BID
        self._programmed: Optional[List[Tuple[int, str]]] = None
        self._stopping = False
        self._keep_bindings = False
        self._started = 0.0
        self._wake_r, self._wake_w = os.pipe()
        settings = config.liveness
        self.liveness = Liveness(settings.interval_ms / 1000.0, settings.misses) \
            if settings.enabled else None
        self.probes = ProbeSockets(config)
        self.probe_errors = 0
        self._status_at: Optional[float] = None
        self._tidy_at = 0.0  # dataplane.housekeeping() not before (a silent CoA defers it)

    # -- life cycle --------------------------------------------------------------------
    def stop(self, *_args: object) -> None:
        """Ask the loop to de-register everything and return (signal-safe)."""
        self._stopping = True
        os.write(self._wake_w, b"x")

    def stop_keeping_bindings(self, *_args: object) -> None:
        """Return without de-registering (SIGHUP: a restart or an upgrade)."""
        self._keep_bindings = True
        self.stop()

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, self.stop_keeping_bindings)
        self.dataplane.start()
        now = self.clock()
        self._started = now
        self._refresh_care_of(now)
        try:
            while not self._stopping:
                self.turn(self._wait_time())
        finally:
            self._shutdown()

    def _wait_time(self) -> float:
        deadlines = [d for d in (self.bul.next_deadline(),
                                 self.liveness.next_deadline() if self.liveness else None)
                     if d is not None]
        deadline = min(deadlines, default=None)
        if deadline is None:
            return MAX_WAIT
        return min(MAX_WAIT, max(0.0, deadline - self.clock()))

    def turn(self, timeout: float) -> None:
        """Wait for events up to ``timeout`` seconds and handle them."""
        probe_sockets = self.probes.readable()
        readers = [self.monitor, self._wake_r] + self.sockets.readable() + probe_sockets
        ready, _, _ = select.select(readers, [], [], timeout)
        now = self.clock()
        for sock in ready:  # replies first: a reply that is here must not count as a miss
            if sock in probe_sockets:
                for data in self.probes.receive(sock):
                    probe = decode_probe(data)
                    if probe is not None and self.liveness is not None:
                        self.liveness.on_reply(probe[0], probe[1], now)
        if self.monitor in ready and self.monitor.read():
            self._refresh_care_of(now)
        if self._wake_r in ready:
            os.read(self._wake_r, 64)
        for sock in ready:
            if sock in (self.monitor, self._wake_r) or sock in probe_sockets:
                continue
            for ba, problem in self.sockets.receive(sock):
                if problem:
                    LOG.warning("ignored a BA (seq %d): %s", ba.sequence, problem)
                    continue
                self._send(self.bul.on_ack(ba, now))
        self._send(self.bul.tick(now))
        self._program(now)
        self._probe(now)
        self._log_events()

    def _probe(self, now: float) -> None:
        """Probe the care-of addresses the data plane carries; act on the dead ones."""
        if self.liveness is None:
            return
        carried = {bid: coa for bid, coa in (self._programmed or [])}
        probed = self.probes.sync(sorted(carried))
        for problem in self.probes.problems:
            LOG.warning("liveness: %s", problem)
        self.probes.problems.clear()
        entries = self.bul.entries
        self.liveness.sync({bid: entries[bid].care_of for bid in probed
                            if bid in entries}, now)
        probes, dead = self.liveness.poll(now)
        for text in self.liveness.events:
            LOG.warning("liveness: %s", text)
        self.liveness.events.clear()
        for path in dead:
            entry = entries.get(path.bid)
            uplink = entry.uplink if entry else "?"
            LOG.warning("care-of %s (bid %d) silent for %.0f ms: %d probes unanswered on "
                        "%s; not used any more, de-registering it and re-registering over "
                        "its own path until it answers", path.care_of, path.bid,
                        path.silent_ms, path.misses, uplink)
        if dead:  # one de-registration for all of them, then one group rewrite
            self._send(self.bul.path_failed([p.bid for p in dead], now,
                                            self.liveness.suspects()))
            self._program(now)
            self._log_events()
            self._tidy_at = now + HOUSEKEEPING_DELAY
        elif now >= self._tidy_at:  # nothing urgent: clean up what the last changes left
            self.dataplane.housekeeping()
        for probe in probes:
            try:
                self.probes.send(probe.bid, probe.payload)
            except OSError as exc:
                self.probe_errors += 1
                if self.probe_errors in (1, 10, 100) or self.probe_errors % 1000 == 0:
                    LOG.warning("liveness: could not send a probe for BID %d (%d errors "
                                "so far): %s", probe.bid, self.probe_errors, exc)

    def _shutdown(self) -> None:
        now = self.clock()
        if not self._keep_bindings:
            self._send(self.bul.shutdown(now))
        self._log_events()
        self._save()
        self.sockets.close()
        self.probes.close()
        self.monitor.close()
        self.dataplane.close()
        LOG.info("MR agent stopped: %s", "bindings and data plane kept for a restart"
                 if self._keep_bindings else "every binding de-registered")

    # -- care-of addresses ---------------------------------------------------------------
    def _refresh_care_of(self, now: float) -> None:
        usable = care_of_addresses(self.config.uplinks, self.monitor.snapshot, self.devices)
        LOG.debug("links %s; care-of addresses %s", self.monitor.snapshot.operstate,
                  {name: [str(a) for a in found] for name, found in usable.items()})
        current = {(name, coa) for name, addresses in usable.items() for coa in addresses}
        lost = [key for key in self.care_of if key not in current]
        gained = [key for key in sorted(current, key=str) if key not in self.care_of]
        devices = {coa: self.devices.get(self.config.uplink(name).interface,
                                         self.config.uplink(name).interface)
                   for name, coa in current}
        self.sockets.sync(devices)
        # The de-registration goes first: it moves the downstream traffic, at the home
        # agent. Upstream, OVS has already skipped the dead uplink's buckets (they watch
        # its port); the group is then rewritten, still long before any BA returns.
        self._send(self.bul.remove_care_of([self.care_of.pop(key) for key in lost], now)
                   if lost else [])
        if lost:
            self._program(now)
        for name, coa in gained:
            self.care_of[(name, coa)] = self.state.bid_for(name, str(coa))
        if lost or gained:
            self.dataplane.sync_care_of(dict(self.care_of))
        for name, coa in gained:
            uplink = self.config.uplink(name)
            self._send(self.bul.add_care_of(self.care_of[(name, coa)], coa, name,
                                            uplink.priority, now))
        if gained:
            self._save()

    # -- output ------------------------------------------------------------------------------
    def _send(self, sends: List[Send]) -> None:
        wall = self.wall()
        for item in sends:
            try:
                self.sockets.send(item, wall)
                LOG.info("BU %s seq=%d bids=%s via %s to %s lifetime=%ds", item.purpose,
                         item.message.sequence, list(item.bids), item.via, item.home_agent,
                         item.message.lifetime_seconds)
            except OSError as exc:
                LOG.warning("could not send BU seq=%d via %s: %s", item.message.sequence,
                            item.via, exc)
        if sends:
            self.state.next_sequence = (self.bul.sequence + 1) % 65536
            self._save()

    def _program(self, now: float) -> None:
        usable = self.bul.usable(now)
        signature = [(e.bid, str(e.care_of)) for e in usable]
        if not usable and self._programmed is None and now < self._started + STARTUP_GRACE:
            # Just (re)started: keep what the data plane has until the first BAs arrive,
            # so a restart does not interrupt traffic.
            self._write_status(now)
            return
        if signature != self._programmed:
            self.dataplane.program(usable)
            LOG.info("outbound care-of addresses: %s",
                     ", ".join(f"{e.care_of} (BID {e.bid})" for e in usable) or "none")
            self._programmed = signature
            self._status_at = None  # write it now
        self._write_status(now)

    def _save(self) -> None:
        statefile.save(self.config.state_file, self.state)

    def _log_events(self) -> None:
        for event in self.bul.drain_events():
            getattr(LOG, event.level)(event.text)

    def status(self, now: float) -> Dict[str, object]:
        live = self.liveness
        settings = self.config.liveness
        return {
            "home_address": str(self.config.home_address),
            "home_agent": str(self.bul.home_agent),
            "liveness": {"enabled": live is not None, "interval_ms": settings.interval_ms,
                         "misses": settings.misses, "port": settings.port,
                         "silent_paths_detected": live.dead_total if live else 0,
                         "probe_send_errors": self.probe_errors},
            "bindings": [{
                "bid": e.bid, "care_of": str(e.care_of), "uplink": e.uplink,
                "priority": e.priority, "state": e.state.value, "usable": e.usable(now),
                "lifetime_left": round(e.expires_at - now, 1) if e.expires_at else None,
                "last_status": e.last_status,
                "silent_for": round(now - e.silent_since, 1)
                if e.silent_since is not None else None,
                "path_failures": e.path_failures,
                "probe": live.status(e.bid) if live else None,
            } for e in sorted(self.bul.entries.values(), key=lambda e: e.bid)],
        }

    def _write_status(self, now: float) -> None:
        path = self.config.status_file
        # Probes make turns frequent (every few ms with several CoAs): at most 4 writes
        # a second, and at once when the outbound care-of addresses change.
        if self._status_at is not None and now - self._status_at < STATUS_INTERVAL:
            return
        self._status_at = now
        if path:
            tmp = f"{path}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(self.status(now), handle, indent=1)
            os.replace(tmp, path)
