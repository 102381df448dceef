"""Netlink monitor: keeps a :class:`~mr_agent.uplinks.Snapshot` current from kernel
events (no polling of ``ip`` output).

The events come on a netlink socket of our own, subscribed to link and address
changes and non-blocking, so the agent's ``select`` loop sees every event: pyroute2's
``IPRoute.get()`` buffers messages internally, which ``select`` cannot see (found here:
address events went missing). pyroute2 still parses the messages and dumps the state
the monitor starts from.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Dict, Set

from .uplinks import Snapshot

RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR = 0x1, 0x10, 0x100


class NetlinkMonitor:
    """Links and addresses of the interfaces we care about."""

    def __init__(self, interfaces: Set[str]) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.rtnl.marshal import MarshalRtnl

        self.interfaces = set(interfaces)
        self.snapshot = Snapshot()
        self._names: Dict[int, str] = {}
        self._marshal = MarshalRtnl()
        self._events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                     0)  # NETLINK_ROUTE
        self._events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._events.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
        self._events.setblocking(False)
        with IPRoute() as dump:  # the state before the first event
            for message in dump.get_links():
                self._link(message)
            for message in dump.get_addr():
                self._address(message, present=True)

    def fileno(self) -> int:
        return self._events.fileno()

    def read(self) -> bool:
        """Apply pending events; True when a link or address we watch changed."""
        before = (dict(self.snapshot.operstate),
                  {k: dict(v) for k, v in self.snapshot.addresses.items()})
        messages = []
        while True:
            try:
                messages.extend(self._marshal.parse(self._events.recv(1 << 16)))
            except (BlockingIOError, InterruptedError):
                break
        for message in messages:
            event = message.get("event")
            if event in ("RTM_NEWLINK", "RTM_DELLINK"):
                self._link(message, deleted=event == "RTM_DELLINK")
            elif event in ("RTM_NEWADDR", "RTM_DELADDR"):
                self._address(message, present=event == "RTM_NEWADDR")
        after = (self.snapshot.operstate, self.snapshot.addresses)
        return before != after

    def close(self) -> None:
        self._events.close()

    def _link(self, message, deleted: bool = False) -> None:
        name = message.get("IFLA_IFNAME") or self._names.get(message["index"])
        if name is None:
            return
        self._names[message["index"]] = name
        if name not in self.interfaces:
            return
        if deleted:
            self.snapshot.operstate.pop(name, None)
            self.snapshot.addresses.pop(name, None)
        else:
            state = message.get("IFLA_OPERSTATE") or "UNKNOWN"
            if not message["flags"] & 0x1:  # IFF_UP cleared: administratively down
                state = "DOWN"
            self.snapshot.operstate[name] = state

    def _address(self, message, present: bool) -> None:
        name = self._names.get(message["index"])
        if name not in self.interfaces:
            return
        raw = message.get("IFA_ADDRESS")
        if raw is None:
            return
        address = ipaddress.ip_address(raw)
        flags = message.get("IFA_FLAGS") or message["flags"]
        table = self.snapshot.addresses.setdefault(name, {})
        if present:
            table[address] = flags
        else:
            table.pop(address, None)
