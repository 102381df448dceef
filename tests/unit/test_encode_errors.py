"""Encoding refuses values that do not fit the wire format, with a ValueError."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

import mip6


@pytest.mark.parametrize("message,needle", [
    (mip6.BindingUpdate(sequence=70000), "out of range"),
    (mip6.BindingUpdate(options=[mip6.GreKey(1 << 32)]), "out of range"),
    (mip6.BindingUpdate(options=[mip6.MobileNetworkPrefix(IPv6Address(0), 129)]), "0..128"),
    (mip6.BindingUpdate(options=[mip6.BindingIdentifier(1, priority=128)]), "0..127"),
    (mip6.BindingUpdate(options=[mip6.UnknownOption(99, bytes(256))]), "255"),
    (mip6.BindingUpdate(options=[mip6.MobileNodeIdentifier(bytes(255))]), "255"),
    (mip6.BindingUpdate(options=[mip6.UnknownOption(99, bytes(250))] * 9), "2048"),
    (mip6.GenericMessage(11, b"\x00"), "multiple of 8"),
])
def test_values_that_do_not_fit(message, needle):
    with pytest.raises(ValueError, match=needle):
        message.encode()


def test_signing_needs_a_trailing_authentication_option():
    with pytest.raises(ValueError, match="Authentication"):
        mip6.BindingUpdate().encode(auth=mip6.MnHaKey(b"k", "2001:db8::1", "2001:db8::2"))


def test_checksum_needs_both_addresses():
    with pytest.raises(ValueError, match="both"):
        mip6.BindingUpdate().encode(src="2001:db8::1")
