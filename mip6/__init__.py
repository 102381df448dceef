"""mip6: a pure-Python codec for Mobile IPv6 / NEMO signalling.

Mobility Header messages and options (RFC 6275, 3963, 5648, 5555, 4285, 5845, 5142),
the pseudo-header checksum, the RFC 4285 authenticator, sequence-number arithmetic,
and whole signalling packets (IPv6 with a Home Address option or a Type 2 Routing
Header, and DSMIPv6 over IPv4/UDP 4191). No I/O and no framework: bytes in, objects
out, and back.

    >>> import mip6
    >>> msg = mip6.decode(data)          # a Mobility Header, from its first octet
    >>> msg.encode(src=hoa, dst=ha)      # bytes, checksum filled for those addresses

Every decoding failure raises :class:`DecodeError` (a ``ValueError``).
"""

from .auth import MnHaKey, compute_authenticator, verify_authenticator
from .checksum import mh_checksum, verify_mh_checksum
from .constants import (DSMIP_UDP_PORT, IPPROTO_MH, BaFlag, BaStatus, BeStatus, BuFlag,
                        MhType, OptionType, status_name)
from .errors import DecodeError
from .messages import (BindingAcknowledgement, BindingError, BindingRefreshRequest,
                       BindingUpdate, GenericMessage, HomeAgentSwitch, MobilityMessage,
                       decode)
from .options import (AlternateCareOfAddress, Authentication, BindingAuthorizationData,
                      BindingIdentifier, BindingRefreshAdvice, GreKey, IPv4AddressAcknowledgement,
                      IPv4CareOfAddress, IPv4HomeAddress, MobileNetworkPrefix,
                      MobileNodeIdentifier, MobilityOption, NatDetection, NonceIndices, Pad1,
                      PadN, ReplayProtection, UnknownOption)
from .sequence import seq_add, seq_is_newer
from .timestamp import ntp_from_unix, unix_from_ntp

__all__ = [
    "AlternateCareOfAddress", "Authentication", "BaFlag", "BaStatus", "BeStatus",
    "BindingAcknowledgement", "BindingAuthorizationData", "BindingError",
    "BindingIdentifier", "BindingRefreshAdvice", "BindingRefreshRequest", "BindingUpdate",
    "BuFlag", "DSMIP_UDP_PORT", "DecodeError", "GenericMessage", "GreKey",
    "HomeAgentSwitch", "IPPROTO_MH", "IPv4AddressAcknowledgement", "IPv4CareOfAddress",
    "IPv4HomeAddress", "MhType", "MnHaKey", "MobileNetworkPrefix", "MobileNodeIdentifier",
    "MobilityMessage", "MobilityOption", "NatDetection", "NonceIndices", "OptionType",
    "Pad1", "PadN", "ReplayProtection", "UnknownOption", "compute_authenticator", "decode",
    "mh_checksum", "ntp_from_unix", "seq_add", "seq_is_newer", "status_name",
    "unix_from_ntp", "verify_authenticator", "verify_mh_checksum",
]
