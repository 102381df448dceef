"""Sequence arithmetic, the RFC 4285 authenticator and NTP timestamps."""

from __future__ import annotations

import pytest

import mip6
from mip6.auth import find_authentication_option
from tests.vectors import COA1, HA, HOA, TV7_KEY, reference_vectors

TV7 = reference_vectors()["TV7"][0]


def test_window_example_from_rfc_6275():
    """Last accepted 15: 0..15 and 32784..65535 are stale, 16..32783 fresh."""
    stale = list(range(0, 16)) + list(range(32784, 65536))
    fresh = range(16, 32784)
    assert not any(mip6.seq_is_newer(n, 15) for n in stale)
    assert all(mip6.seq_is_newer(n, 15) for n in fresh)


def test_window_wraps_around():
    assert mip6.seq_is_newer(0, 65535)
    assert mip6.seq_is_newer(5, 65000)
    assert not mip6.seq_is_newer(65000, 5)
    assert mip6.seq_add(65535) == 0 and mip6.seq_add(65530, 10) == 4


def test_tampered_or_wrongly_keyed_messages_fail_verification():
    key = mip6.MnHaKey(TV7_KEY, COA1, HOA)
    assert mip6.verify_authenticator(TV7, key)
    assert not mip6.verify_authenticator(TV7, mip6.MnHaKey(b"x" * 20, COA1, HOA))
    assert not mip6.verify_authenticator(TV7, mip6.MnHaKey(TV7_KEY, "2001:db8:b::100", HOA))
    for index in (7, 20, 60, 70):  # sequence, prefix, timestamp, SPI
        tampered = bytearray(TV7)
        tampered[index] ^= 0x01
        assert not mip6.verify_authenticator(bytes(tampered), key)


def test_checksum_field_does_not_enter_the_authenticator():
    key = mip6.MnHaKey(TV7_KEY, COA1, HOA)
    changed = bytearray(TV7)
    changed[4:6] = b"\x12\x34"
    assert mip6.verify_authenticator(bytes(changed), key)


def test_unsigned_messages_do_not_verify():
    mh = reference_vectors()["TV1"][0]
    assert find_authentication_option(mh) is None
    assert not mip6.verify_authenticator(mh, mip6.MnHaKey(TV7_KEY, COA1, HOA))


def test_authentication_must_be_the_last_option():
    message = mip6.BindingUpdate(1, 0xC400, 1, [mip6.Authentication(7), mip6.GreKey(1)])
    assert find_authentication_option(message.encode()) is None


@pytest.mark.parametrize("care_of", [COA1, "192.0.2.10"])
def test_sign_then_verify_both_directions(care_of):
    key = mip6.MnHaKey(b"secret", care_of, HOA)
    bu = mip6.BindingUpdate(9, 0xC400, 10, [mip6.GreKey(5), mip6.Authentication(42)])
    ba = mip6.BindingAcknowledgement(0, 0x40, 9, 10, [mip6.Authentication(42)])
    for data in (bu.encode(HOA, HA, auth=key), ba.encode(HA, HOA, auth=key)):
        assert mip6.verify_authenticator(data, key)
        assert len(data) % 8 == 0
        assert data[-19] == 9  # option at 8n+5 ends the header: no padding after it


def test_ntp_timestamps():
    assert mip6.ntp_from_unix(0) == 2_208_988_800 << 32
    assert mip6.ntp_from_unix(1.5) & 0xFFFFFFFF == 1 << 31
    now = 1_796_000_000.25
    assert abs(mip6.unix_from_ntp(mip6.ntp_from_unix(now)) - now) < 1e-6
