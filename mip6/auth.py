"""RFC 4285 MN-HA authentication: the HMAC-SHA1-96 authenticator.

``Authenticator = first 96 bits of HMAC-SHA1(key, CoA | HoA | MH data)``, where MH
data runs from the first octet of the Mobility Header up to and including the SPI
of the Authentication option, with the checksum field set to zero. The option must
be the last one, followed by padding at most.

For an IPv4 care-of address (RFC 5555) the CoA enters in its IPv4-mapped IPv6 form,
so that both address fields stay 16 octets; RFC 4285 predates IPv4 care-of addresses
and says nothing else (see docs/protocol.md).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Optional

from ._addr import AddressLike, any_ip, packed16
from .constants import AuthSubtype, OptionType

AUTHENTICATOR_LENGTH = 12
#: Octets from the option's Type octet to the end of its SPI.
_SPI_END = 7


@dataclass(frozen=True)
class MnHaKey:
    """What signs or verifies one message: the shared key and the two addresses.

    ``care_of`` is the mobile router's care-of address of this exchange (the BU's
    source, or the IPv4 CoA), ``home`` its home address; both directions (BU and BA)
    use the same order.
    """

    key: bytes
    care_of: AddressLike
    home: AddressLike


def compute_authenticator(key: bytes, care_of: AddressLike, home: AddressLike,
                          mh_data: bytes) -> bytes:
    """The 96-bit authenticator over ``mh_data`` (already cut after the SPI)."""
    mobility_data = packed16(any_ip(care_of)) + packed16(any_ip(home)) + bytes(mh_data)
    return hmac.new(key, mobility_data, hashlib.sha1).digest()[:AUTHENTICATOR_LENGTH]


def find_authentication_option(mh: bytes) -> Optional[int]:
    """Offset of the last option if it is an Authentication option, else None.

    Only padding may follow it. ``mh`` must be a complete, well-formed header
    (as accepted by :func:`mip6.decode`).
    """
    from .messages import options_offset  # the fixed part's length depends on the type

    start = options_offset(mh[2]) if len(mh) > 2 else None
    if start is None:
        return None
    i, last = start, None
    while i < len(mh):
        kind = mh[i]
        if kind == OptionType.PAD1:
            i += 1
            continue
        if i + 1 >= len(mh):
            return None
        if kind != OptionType.PADN:
            last = i
        i += 2 + mh[i + 1]
    if last is None or mh[last] != OptionType.AUTHENTICATION:
        return None
    return last


def sign_in_place(mh: bytearray, option_offset: int, secret: MnHaKey) -> None:
    """Write the authenticator of the option at ``option_offset`` (checksum must be 0)."""
    end = option_offset + _SPI_END
    tag = compute_authenticator(secret.key, secret.care_of, secret.home, mh[:end])
    mh[end:end + AUTHENTICATOR_LENGTH] = tag


def verify_authenticator(mh: bytes, secret: MnHaKey) -> bool:
    """True when ``mh`` ends with an MN-HA Authentication option whose tag is right."""
    offset = find_authentication_option(mh)
    if offset is None or mh[offset + 2] != AuthSubtype.MN_HA:
        return False
    length = mh[offset + 1]
    if length != 5 + AUTHENTICATOR_LENGTH:
        return False
    end = offset + _SPI_END
    data = bytes(mh[:4]) + b"\x00\x00" + bytes(mh[6:end])
    expected = compute_authenticator(secret.key, secret.care_of, secret.home, data)
    return hmac.compare_digest(expected, bytes(mh[end:end + AUTHENTICATOR_LENGTH]))
