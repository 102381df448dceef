"""Hypothesis strategies for valid mip6 messages (shared by unit tests and benchmarks)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import strategies as st

import mip6

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
ipv6 = st.integers(0, (1 << 128) - 1).map(IPv6Address)
ipv4 = st.integers(0, (1 << 32) - 1).map(IPv4Address)
KNOWN_OPTION_TYPES = set(mip6.options.OPTION_CLASSES) | {0, 1}

options = st.one_of(
    st.builds(mip6.BindingRefreshAdvice, u16),
    st.builds(mip6.AlternateCareOfAddress, ipv6),
    st.builds(mip6.NonceIndices, u16, u16),
    st.builds(mip6.BindingAuthorizationData, st.binary(min_size=0, max_size=40)),
    st.builds(mip6.MobileNetworkPrefix, ipv6, st.integers(0, 128)),
    st.builds(mip6.MobileNodeIdentifier, st.binary(max_size=60), u8),
    st.builds(mip6.ReplayProtection, st.integers(0, (1 << 64) - 1)),
    st.builds(mip6.IPv4HomeAddress, ipv4, st.integers(0, 32), st.booleans()),
    st.builds(mip6.IPv4AddressAcknowledgement, u8, ipv4, st.integers(0, 32)),
    st.builds(mip6.NatDetection, st.booleans(), u32),
    st.builds(mip6.IPv4CareOfAddress, ipv4),
    st.builds(mip6.GreKey, st.one_of(st.none(), u32)),
    st.builds(mip6.BindingIdentifier, u16, u8, st.integers(0, 127), st.booleans(),
              st.one_of(st.none(), ipv4, ipv6)),
    st.builds(mip6.UnknownOption,
              u8.filter(lambda t: t not in KNOWN_OPTION_TYPES), st.binary(max_size=40)),
)
authentication = st.builds(mip6.Authentication, u32, st.binary(min_size=0, max_size=20), u8)


@st.composite
def option_lists(draw):
    found = draw(st.lists(options, max_size=8))
    if draw(st.booleans()):
        found.append(draw(authentication))
    return found


messages = st.one_of(
    st.builds(mip6.BindingUpdate, u16, u16, u16, option_lists()),
    st.builds(mip6.BindingAcknowledgement, u8, u8, u16, u16, option_lists()),
    st.builds(mip6.BindingError, u8, ipv6, option_lists()),
    st.builds(mip6.BindingRefreshRequest, option_lists()),
    st.builds(mip6.HomeAgentSwitch, st.lists(ipv6, max_size=4), option_lists()),
    st.builds(mip6.GenericMessage,
              u8.filter(lambda t: t not in mip6.messages.MESSAGE_CLASSES),
              st.integers(0, 20).flatmap(lambda n: st.binary(min_size=8 * n + 2,
                                                             max_size=8 * n + 2))),
)
