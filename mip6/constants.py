"""IANA code points of the Mobility Header (RFC 6275 and the RFCs that extend it)."""

from __future__ import annotations

import enum

#: IPv6 Next Header value of the Mobility Header.
IPPROTO_MH = 135
#: Payload Proto value every Mobility Header carries (IPPROTO_NONE).
IPPROTO_NONE = 59
#: UDP port of Dual-Stack MIPv6 signalling (RFC 5555).
DSMIP_UDP_PORT = 4191
#: Home Address destination option type (RFC 6275 section 6.3).
HOME_ADDRESS_OPTION = 0xC9
#: Maximum lifetime field value: 0xFFFF units of 4 seconds.
MAX_LIFETIME_UNITS = 0xFFFF
#: The Binding Update / Acknowledgement lifetime unit, in seconds.
LIFETIME_UNIT_SECONDS = 4


class MhType(enum.IntEnum):
    """Mobility Header types."""

    BINDING_REFRESH_REQUEST = 0
    HOME_TEST_INIT = 1
    CARE_OF_TEST_INIT = 2
    HOME_TEST = 3
    CARE_OF_TEST = 4
    BINDING_UPDATE = 5
    BINDING_ACK = 6
    BINDING_ERROR = 7
    EXPERIMENTAL = 11
    HOME_AGENT_SWITCH = 12
    HEARTBEAT = 13
    BINDING_REVOCATION = 16


class OptionType(enum.IntEnum):
    """Mobility option types."""

    PAD1 = 0
    PADN = 1
    BINDING_REFRESH_ADVICE = 2
    ALTERNATE_COA = 3
    NONCE_INDICES = 4
    BINDING_AUTHORIZATION_DATA = 5
    MOBILE_NETWORK_PREFIX = 6
    MN_IDENTIFIER = 8
    AUTHENTICATION = 9
    REPLAY_PROTECTION = 10
    IPV4_HOME_ADDRESS = 29
    IPV4_ADDRESS_ACK = 30
    NAT_DETECTION = 31
    IPV4_COA = 32
    GRE_KEY = 33
    BINDING_IDENTIFIER = 35


class BuFlag(enum.IntFlag):
    """Flags of the Binding Update (masks on its 16-bit flags word)."""

    A = 0x8000  # acknowledgement requested
    H = 0x4000  # home registration
    L = 0x2000  # link-local address compatibility
    K = 0x1000  # key management mobility capability
    M = 0x0800  # MAP registration (RFC 5380)
    R = 0x0400  # mobile router (RFC 3963)
    P = 0x0200  # proxy registration (RFC 5213)
    F = 0x0100  # force UDP encapsulation (RFC 5555)
    T = 0x0080  # TLV-header format (RFC 5845)
    B = 0x0040  # bulk binding update (RFC 6602)
    S = 0x0020  # multicast subscription (RFC 7161)
    D = 0x0010  # distributed mobility management (RFC 8885)


class BaFlag(enum.IntFlag):
    """Flags of the Binding Acknowledgement (masks on its flags octet)."""

    K = 0x80
    R = 0x40
    P = 0x20
    T = 0x10
    B = 0x08
    S = 0x04
    D = 0x02


class BaStatus(enum.IntEnum):
    """Binding Acknowledgement status codes; below 128 means accepted."""

    ACCEPTED = 0
    ACCEPTED_PREFIX_DISCOVERY_NECESSARY = 1
    GRE_KEY_OPTION_NOT_REQUIRED = 2
    GRE_TUNNELING_BUT_TLV_HEADER_NOT_SUPPORTED = 3
    MCOA_NOTCOMPLETE = 4
    MCOA_RETURNHOME_WO_NDP = 5
    PBU_ACCEPTED_TB_IGNORED_SETTINGSMISMATCH = 6
    REASON_UNSPECIFIED = 128
    ADMINISTRATIVELY_PROHIBITED = 129
    INSUFFICIENT_RESOURCES = 130
    HOME_REGISTRATION_NOT_SUPPORTED = 131
    NOT_HOME_SUBNET = 132
    NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE = 133
    DUPLICATE_ADDRESS_DETECTION_FAILED = 134
    SEQUENCE_NUMBER_OUT_OF_WINDOW = 135
    EXPIRED_HOME_NONCE_INDEX = 136
    EXPIRED_CARE_OF_NONCE_INDEX = 137
    EXPIRED_NONCES = 138
    REGISTRATION_TYPE_CHANGE_DISALLOWED = 139
    MOBILE_ROUTER_OPERATION_NOT_PERMITTED = 140
    INVALID_PREFIX = 141
    NOT_AUTHORIZED_FOR_PREFIX = 142
    FORWARDING_SETUP_FAILED = 143
    MIPV6_ID_MISMATCH = 144
    MIPV6_MESG_ID_REQD = 145
    MIPV6_AUTH_FAIL = 146
    PERMANENT_HOME_KEYGEN_TOKEN_UNAVAILABLE = 147
    CGA_AND_SIGNATURE_VERIFICATION_FAILED = 148
    PERMANENT_HOME_KEYGEN_TOKEN_EXISTS = 149
    NON_NULL_HOME_NONCE_INDEX_EXPECTED = 150
    SERVICE_AUTHORIZATION_FAILED = 151
    GRE_KEY_OPTION_REQUIRED = 163
    MCOA_MALFORMED = 164
    MCOA_NON_MCOA_BINDING_EXISTS = 165
    MCOA_PROHIBITED = 166
    MCOA_UNKNOWN_COA = 167
    MCOA_BULK_REGISTRATION_PROHIBITED = 168
    MCOA_SIMULTANEOUS_HOME_AND_FOREIGN_PROHIBITED = 169
    INVALID_CARE_OF_ADDRESS = 174

    @property
    def accepted(self) -> bool:
        return self.value < 128


class BeStatus(enum.IntEnum):
    """Binding Error status codes."""

    UNKNOWN_BINDING_FOR_HOME_ADDRESS_OPTION = 1
    UNRECOGNIZED_MH_TYPE = 2


class AuthSubtype(enum.IntEnum):
    """Subtypes of the Mobility Message Authentication option (RFC 4285)."""

    MN_HA = 1
    MN_AAA = 2


class MnIdSubtype(enum.IntEnum):
    """Subtypes of the Mobile Node Identifier option (RFC 4283)."""

    NAI = 1


def status_name(status: int) -> str:
    """A readable name for a BA status, also for codes we have no name for."""
    try:
        return BaStatus(status).name
    except ValueError:
        return f"STATUS_{status}"
