"""Which care-of addresses are usable now, from what the kernel says about the uplinks.

Pure: :func:`care_of_addresses` takes a snapshot of links and addresses (as the netlink
monitor keeps it) and the configured uplinks and returns the usable care-of addresses
per uplink. A care-of address counts while its uplink is up (operstate UP, or UNKNOWN
for devices without carrier reporting) and it is a global unicast address that is not
tentative, deprecated or failed DAD. Listed care-of addresses count only while they are
present on the interface.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Dict, List, Set, Tuple, Union

from .config import Uplink

CareOf = Union[ipaddress.IPv6Address, ipaddress.IPv4Address]
# IFA_F_* flags that make an address unusable as a care-of address
IFA_F_TENTATIVE, IFA_F_DADFAILED, IFA_F_DEPRECATED = 0x40, 0x08, 0x20
_UNUSABLE = IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED


@dataclass
class Snapshot:
    """Links by name (operstate) and the addresses on each (address -> flags)."""

    operstate: Dict[str, str] = field(default_factory=dict)
    addresses: Dict[str, Dict[CareOf, int]] = field(default_factory=dict)

    def link_up(self, name: str) -> bool:
        return self.operstate.get(name) in ("UP", "UNKNOWN")


def _eligible(address: CareOf, flags: int) -> bool:
    return not (flags & _UNUSABLE or address.is_link_local or address.is_loopback
                or address.is_multicast or address.is_unspecified)


def care_of_addresses(uplinks: Tuple[Uplink, ...], snapshot: Snapshot,
                      address_bridges: Dict[str, str]) -> Dict[str, List[CareOf]]:
    """Usable care-of addresses per uplink name.

    ``address_bridges`` maps an uplink's interface to the device its addresses live
    on, when that is another one (the OVS bridge port holding the tunnel endpoint).
    """
    usable: Dict[str, List[CareOf]] = {}
    for uplink in uplinks:
        holder = address_bridges.get(uplink.interface, uplink.interface)
        if not snapshot.link_up(uplink.interface):
            usable[uplink.name] = []
            continue
        present = {a: f for a, f in snapshot.addresses.get(holder, {}).items()
                   if _eligible(a, f)}
        wanted: Set[CareOf] = set(uplink.care_of) if uplink.care_of else set(present)
        usable[uplink.name] = sorted((a for a in wanted if a in present),
                                     key=lambda a: (a.version, int(a)))
    return usable
