"""Hand-derived hex for every message and option type, both directions.

Each vector was worked out from the RFC layouts and alignment rules (not produced by
our encoder): fixed BU part ``seq=1, flags=A|H|R, lifetime=16`` and BA part
``status=0, flags=R, seq=1, lifetime=16``, so the first option sits at octet 12.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

import mip6

BU_HEAD = "3b{hl}0500 0000 0001 c400 0010"
BA_HEAD = "3b{hl}0600 0000 00 40 0001 0010"


def bu(*options):
    return mip6.BindingUpdate(1, 0xC400, 16, list(options))


def ba(*options):
    return mip6.BindingAcknowledgement(0, 0x40, 1, 16, list(options))


CASES = [
    # name, message, expected hex (spaces are cosmetic)
    ("refresh advice 2n", bu(mip6.BindingRefreshAdvice(0x0102)),
     BU_HEAD.format(hl="01") + "0202 0102"),
    ("alternate coa 8n+6", bu(mip6.AlternateCareOfAddress(IPv6Address("2001:db8::1"))),
     BU_HEAD.format(hl="03") + "0100 0310 20010db8000000000000000000000001"),
    ("nonce indices 2n", bu(mip6.NonceIndices(1, 2)),
     BU_HEAD.format(hl="02") + "0404 0001 0002 0104 00000000"),
    ("authorization data 8n+2", bu(mip6.BindingAuthorizationData(b"\xaa" * 12)),
     BU_HEAD.format(hl="03") + "0104 00000000 050c" + "aa" * 12),
    ("mobile network prefix 8n+4",
     bu(mip6.MobileNetworkPrefix(IPv6Address("2001:db8:1000::"), 48)),
     BU_HEAD.format(hl="03") + "0612 0030 20010db8100000000000000000000000"),
    ("mn identifier no alignment", bu(mip6.MobileNodeIdentifier(b"a@b")),
     BU_HEAD.format(hl="02") + "0804 01 614062 0104 00000000"),
    ("authentication 8n+5", bu(mip6.Authentication(0x100, bytes(12))),
     BU_HEAD.format(hl="03") + "00 0911 01 00000100" + "00" * 12),
    ("replay protection 8n+2", bu(mip6.ReplayProtection(0x0102030405060708)),
     BU_HEAD.format(hl="03") + "0104 00000000 0a08 0102030405060708 0102 0000"),
    ("ipv4 home address 4n",
     bu(mip6.IPv4HomeAddress(IPv4Address("192.0.2.1"), 24, request_prefix=True)),
     BU_HEAD.format(hl="02") + "1d06 6200 c0000201 0102 0000"),
    ("ipv4 address ack 4n",
     ba(mip6.IPv4AddressAcknowledgement(0, IPv4Address("192.0.2.1"), 24)),
     BA_HEAD.format(hl="02") + "1e06 00 60 c0000201 0102 0000"),
    ("nat detection 4n", ba(mip6.NatDetection(True, 3600)),
     BA_HEAD.format(hl="02") + "1f06 8000 00000e10 0102 0000"),
    ("ipv4 care-of address 4n", bu(mip6.IPv4CareOfAddress(IPv4Address("192.0.2.10"))),
     BU_HEAD.format(hl="02") + "2006 0000 c000020a 0102 0000"),
    ("gre key 4n+2", bu(mip6.GreKey(0x12345678)),
     BU_HEAD.format(hl="02") + "0100 2106 0000 12345678 0100"),
    ("gre key without a key", bu(mip6.GreKey(None)),
     BU_HEAD.format(hl="02") + "0100 2102 0000 0104 00000000"),
    ("binding id without coa 2n, H and priority",
     bu(mip6.BindingIdentifier(7, priority=5, simultaneous_home=True)),
     BU_HEAD.format(hl="02") + "2304 0007 00 85 0104 00000000"),
    ("binding id with ipv4 coa 8n+2",
     bu(mip6.BindingIdentifier(3, priority=2, care_of_address=IPv4Address("192.0.2.10"))),
     BU_HEAD.format(hl="03") + "0104 00000000 2308 0003 00 02 c000020a 0102 0000"),
    ("binding id status in a BA", ba(mip6.BindingIdentifier(2, status=130, priority=2)),
     BA_HEAD.format(hl="02") + "2304 0002 82 02 0104 00000000"),
    ("unknown option kept raw", bu(mip6.UnknownOption(200, b"\xde\xad")),
     BU_HEAD.format(hl="01") + "c802 dead"),
    ("binding refresh request", mip6.BindingRefreshRequest(), "3b00 0000 0000 0000"),
    ("binding error", mip6.BindingError(2, IPv6Address("2001:db8::1")),
     "3b02 0700 0000 02 00 20010db8000000000000000000000001"),
    ("home agent switch", mip6.HomeAgentSwitch([IPv6Address("2001:db8:eeee::1")]),
     "3b02 0c00 0000 01 00 20010db8eeee00000000000000000001"),
    ("unknown message kept raw", mip6.GenericMessage(11, bytes.fromhex("0102030405060708090a")),
     "3b01 0b00 0000 0102030405060708090a"),
]


@pytest.mark.parametrize("name,message,expected", CASES, ids=[c[0] for c in CASES])
def test_encode_matches_hand_derived_bytes(name, message, expected):
    assert message.encode().hex() == expected.replace(" ", "")


@pytest.mark.parametrize("name,message,expected", CASES, ids=[c[0] for c in CASES])
def test_decode_gives_back_the_message(name, message, expected):
    data = bytes.fromhex(expected.replace(" ", ""))
    assert mip6.decode(data) == message
    assert mip6.decode(data).encode() == data


def test_home_agent_switch_checksum_vector():
    """RFC 5142 example from the digest: HA 2001:db8:ffff::1 -> CoA1."""
    data = bytes.fromhex("3b020c003e38010020010db8eeee00000000000000000001")
    message = mip6.decode(data)
    assert message.addresses == [IPv6Address("2001:db8:eeee::1")]
    assert mip6.verify_mh_checksum(data, "2001:db8:ffff::1", "2001:db8:a::100")
    assert message.encode("2001:db8:ffff::1", "2001:db8:a::100") == data


def test_every_registered_option_type_has_a_vector():
    covered = {type(option) for _, message, _ in CASES for option in message.options}
    assert set(mip6.options.OPTION_CLASSES.values()) - covered == set()


def test_padding_options_are_consumed_not_returned():
    # Pad1, Pad1, PadN(0), refresh advice, PadN(2): only the advice is an option.
    data = bytes.fromhex(BU_HEAD.format(hl="02").replace(" ", "") + "0000 0100 0202 0005 0102 0000"
                         .replace(" ", ""))
    assert mip6.decode(data).options == [mip6.BindingRefreshAdvice(5)]


def test_explicit_padding_in_the_option_list_is_encoded_verbatim():
    message = bu(mip6.PadN(0), mip6.BindingRefreshAdvice(1))
    assert message.encode().hex() == (BU_HEAD.format(hl="02") + "0100 0202 0001 0104 00000000"
                                      ).replace(" ", "")


def test_mnp_host_bits_survive_and_are_reported():
    option = mip6.MobileNetworkPrefix(IPv6Address("2001:db8:1000::1"), 48)
    decoded = mip6.decode(bu(option).encode())
    assert decoded.prefixes[0].prefix == IPv6Address("2001:db8:1000::1")
    assert decoded.prefixes[0].host_bits_set


def test_from_network_and_nai_helpers():
    assert mip6.MobileNetworkPrefix.from_network("2001:db8:ff00:1::/64") == \
        mip6.MobileNetworkPrefix(IPv6Address("2001:db8:ff00:1::"), 64)
    assert mip6.MobileNodeIdentifier.nai("mr@x").identifier == b"mr@x"
