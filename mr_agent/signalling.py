"""The MR agent's signalling sockets: send signed Binding Updates, receive BAs.

IPv6 care-of addresses: the whole IPv6 packet (Home Address option, MH) is written to a
raw socket *bound to the care-of address* (the kernel routes by the socket's source,
so with per-CoA policy rules the BU leaves through that CoA's uplink). The BA carries a
Type 2 Routing Header that kernels without Mobile IPv6 drop, so it is read from an
AF_PACKET socket on the device that holds the care-of addresses. IPv4 care-of
addresses: DSMIPv6 over a UDP socket bound to the CoA and port 4191.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Dict, List, Optional, Tuple, Union

import mip6
from mip6.packet import SignallingPacket, UdpIPv4, bu_packet, decode_frame, decode_packet, \
    dsmip_packet

from .bul import Send
from .config import MobileRouterAgentConfig

CareOf = Union[ipaddress.IPv6Address, ipaddress.IPv4Address]
ETH_P_IPV6 = 0x86DD
IPPROTO_ROUTING = 43


class SignallingSockets:
    """Sockets per care-of address and per capture device; everything non-blocking."""

    def __init__(self, config: MobileRouterAgentConfig) -> None:
        self.config = config
        self._last_timestamp = 0
        self._raw: Dict[CareOf, socket.socket] = {}
        self._udp: Dict[CareOf, socket.socket] = {}
        self._capture: Dict[str, socket.socket] = {}

    # -- sockets follow the care-of addresses ------------------------------------------
    def sync(self, care_of: Dict[CareOf, str]) -> None:
        """Open sockets for these care-of addresses (-> capture device), close the rest."""
        for address in list(self._raw) + list(self._udp):
            if address not in care_of:
                self._close(address)
        for address, device in care_of.items():
            if address.version == 6 and address not in self._raw:
                raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
                raw.bind((str(address), 0))
                self._raw[address] = raw
                if device not in self._capture:
                    capture = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                            socket.htons(ETH_P_IPV6))
                    capture.bind((device, 0))
                    capture.setblocking(False)
                    self._capture[device] = capture
            elif address.version == 4 and address not in self._udp:
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                udp.bind((str(address), mip6.DSMIP_UDP_PORT))
                udp.setblocking(False)
                self._udp[address] = udp

    def _close(self, address: CareOf) -> None:
        sock = self._raw.pop(address, None) or self._udp.pop(address, None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        for sock in list(self._raw.values()) + list(self._udp.values()) \
                + list(self._capture.values()):
            sock.close()
        self._raw.clear(), self._udp.clear(), self._capture.clear()

    def readable(self) -> List[socket.socket]:
        return list(self._capture.values()) + list(self._udp.values())

    # -- sending ------------------------------------------------------------------------
    def send(self, item: Send, wall: float) -> None:
        """Sign ``item`` (replay timestamp = ``wall``) and send it from its care-of address."""
        config = self.config
        message = item.message
        message.options = [o for o in message.options
                           if not isinstance(o, (mip6.ReplayProtection, mip6.Authentication))]
        # Strictly increasing: the home agent refuses a timestamp it has seen (145).
        timestamp = max(mip6.ntp_from_unix(wall), self._last_timestamp + 1)
        self._last_timestamp = timestamp
        message.options += [mip6.ReplayProtection(timestamp), mip6.Authentication(config.spi)]
        if item.via.version == 6:
            packet = bu_packet(message, item.via, config.home_address, item.home_agent)
            sock = self._raw.get(item.via)
            if sock is None:
                raise OSError(f"no socket for care-of address {item.via}")
            sock.sendto(packet.encode(auth=packet.auth_key(config.key)),
                        (str(item.home_agent), 0))
            return
        if config.home_agent_ipv4 is None:
            raise OSError("an IPv4 care-of address needs home_agent_ipv4")
        packet = dsmip_packet(message, config.home_address, item.home_agent, item.via,
                              config.home_agent_ipv4)
        inner = packet.encode(auth=packet.auth_key(config.key))[28:]  # the kernel adds IPv4/UDP
        self._udp[item.via].sendto(inner, (str(config.home_agent_ipv4), mip6.DSMIP_UDP_PORT))

    # -- receiving ------------------------------------------------------------------------
    def receive(self, sock: socket.socket) -> List[Tuple[mip6.BindingAcknowledgement, str]]:
        """BAs waiting on ``sock`` that verify (checksum, authenticator); (BA, note) pairs.

        A BA that does not verify is returned with ``None`` replaced by a note and
        skipped by the caller; the note explains it for the log.
        """
        found: List[Tuple[mip6.BindingAcknowledgement, str]] = []
        while True:
            try:
                data, peer = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return found
            packet = self._parse(sock, data, peer)
            if packet is None:
                continue
            if not isinstance(packet.message, mip6.BindingAcknowledgement):
                continue
            if not packet.checksum_ok():
                found.append((packet.message, "bad checksum"))
            elif not packet.authenticator_ok(packet.auth_key(self.config.key)):
                found.append((packet.message, "authentication failed"))
            else:
                found.append((packet.message, ""))

    def _parse(self, sock: socket.socket, data: bytes, peer) -> Optional[SignallingPacket]:
        home = self.config.home_address
        try:
            if sock.family == socket.AF_PACKET:
                if len(data) < 62 or data[12:14] != b"\x86\xdd" or data[20] != IPPROTO_ROUTING:
                    return None
                packet = decode_frame(data)
                if packet.routing_home_address != home or packet.dst not in self._raw:
                    return None
                return packet
            packet = decode_packet(data)  # the inner IPv6 packet of DSMIPv6
            local = ipaddress.IPv4Address(sock.getsockname()[0])
            packet.udp = UdpIPv4(ipaddress.IPv4Address(peer[0]), local, peer[1],
                                 mip6.DSMIP_UDP_PORT)
            return packet if packet.dst == home else None
        except (mip6.DecodeError, ValueError):
            return None


class ProbeSockets:
    """Liveness probes (:mod:`mr_agent.liveness`): one UDP socket per probed BID, bound to
    the home address and port ``liveness.port + BID``, connected to the home agent's
    liveness port. The source port tells the data plane which care-of address's tunnel
    to force the probe into; the data plane hands the reflected probe back to the same
    socket (addresses and ports swapped). Non-blocking, read in the agent's loop."""

    def __init__(self, config: MobileRouterAgentConfig) -> None:
        self.config = config
        self._by_bid: Dict[int, socket.socket] = {}
        self.problems: List[str] = []  # for the log: sockets that could not be opened

    @staticmethod
    def source_port(config: MobileRouterAgentConfig, bid: int) -> Optional[int]:
        port = config.liveness.port + bid
        return port if port <= 0xFFFF else None

    def sync(self, bids: List[int]) -> List[int]:
        """Sockets for exactly these BIDs; returns the BIDs that have one."""
        for bid in [b for b in self._by_bid if b not in bids]:
            self._by_bid.pop(bid).close()
        for bid in bids:
            if bid in self._by_bid:
                continue
            port = self.source_port(self.config, bid)
            if port is None:
                self.problems.append(f"BID {bid}: no probe source port (liveness.port + BID "
                                     "> 65535); not probed")
                continue
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((str(self.config.home_address), port))
                sock.connect((str(self.config.home_agents[0]), self.config.liveness.port))
                sock.setblocking(False)
            except OSError as exc:
                sock.close()
                self.problems.append(f"BID {bid}: cannot open the probe socket "
                                     f"[{self.config.home_address}]:{port}: {exc}; not probed")
                continue
            self._by_bid[bid] = sock
        return [b for b in bids if b in self._by_bid]

    def readable(self) -> List[socket.socket]:
        return list(self._by_bid.values())

    def send(self, bid: int, payload: bytes) -> None:
        sock = self._by_bid.get(bid)
        if sock is None:
            raise OSError(f"no probe socket for BID {bid}")
        sock.send(payload)

    def receive(self, sock: socket.socket) -> List[bytes]:
        found = []
        while True:
            try:
                found.append(sock.recv(2048))
            except (BlockingIOError, InterruptedError):
                return found
            except OSError:  # e.g. an ICMP error queued on the connected socket
                continue

    def close(self) -> None:
        for sock in self._by_bid.values():
            sock.close()
        self._by_bid.clear()
