"""Malformed input gets one clear error: DecodeError, saying what and where."""

from __future__ import annotations

import pytest

import mip6
from mip6.packet import decode_frame, decode_packet
from tests.vectors import reference_vectors

VECTORS = reference_vectors()
TV1_MH, TV1_PACKET = VECTORS["TV1"]
_, TV8_PACKET = VECTORS["TV8"]


def error_of(data, decoder=mip6.decode) -> mip6.DecodeError:
    with pytest.raises(mip6.DecodeError) as info:
        decoder(data)
    assert isinstance(info.value, ValueError)
    return info.value


def test_short_input():
    assert "at least 8 octets" in error_of(b"\x3b\x00\x05").what


def test_payload_proto_must_be_59():
    err = error_of(b"\x06" + TV1_MH[1:])
    assert err.offset == 0 and "Payload Proto" in err.what


def test_header_len_must_match_the_data():
    assert error_of(TV1_MH[:-8]).offset == 1  # announces 40, has 32
    assert error_of(TV1_MH + bytes(8)).offset == 1  # trailing octets


def test_binding_update_needs_its_fixed_part():
    err = error_of(bytes.fromhex("3b00050000000000"))
    assert "BindingUpdate" in err.what


def test_option_running_past_the_header():
    data = bytearray(TV1_MH)
    data[33] = 200  # BID option length
    err = error_of(bytes(data))
    assert err.offset == 33 and "runs past" in err.what


def test_option_cut_before_its_length_octet():
    data = bytes.fromhex("3b010500 0000 0001 c400 0010 000000 21")
    assert "cut off" in error_of(data).what


def test_bad_binding_identifier_length_suggests_mcoa_malformed_and_keeps_the_sequence():
    data = bytes.fromhex("3b020500 0000 1234 c400 0010 2306 0001 0001 0000 0102 0000")
    err = error_of(data)
    assert err.status == mip6.BaStatus.MCOA_MALFORMED
    assert isinstance(err.partial, mip6.BindingUpdate) and err.partial.sequence == 0x1234


def test_bad_mnp_length_suggests_invalid_prefix():
    data = bytes.fromhex("3b020500 0000 0001 c400 0010 0604 0030 2001 0104 00000000")
    assert error_of(data).status == mip6.BaStatus.INVALID_PREFIX


def test_prefix_length_above_128():
    data = bytearray(TV1_MH)
    data[15] = 129
    assert error_of(bytes(data)).status == mip6.BaStatus.INVALID_PREFIX


def test_home_agent_switch_address_count_beyond_header():
    assert "addresses" in error_of(bytes.fromhex("3b000c0000000500")).what


@pytest.mark.parametrize("value", ["text", None, 42, [1, 2]])
def test_non_bytes_input(value):
    error_of(value)


def test_packet_errors_point_into_the_packet():
    bad = bytearray(TV1_PACKET)
    bad[40 + 24 + 33] = 200  # the BID option length, inside the MH
    err = error_of(bytes(bad), decode_packet)
    assert err.offset == 40 + 24 + 33
    assert "at octet 97" in str(err)


@pytest.mark.parametrize("mutate,needle", [
    (lambda p: p[:30], "shorter than its header"),
    (lambda p: p[:4] + b"\xff\xff" + p[6:], "payload length"),
    (lambda p: b"\x50" + p[1:], "neither 4 nor 6"),
    (lambda p: p[:6] + b"\x2c" + p[7:], "fragmented"),
    (lambda p: p[:6] + b"\x11" + p[7:], "no Mobility Header"),
])
def test_ipv6_packet_defects(mutate, needle):
    assert needle in error_of(mutate(TV1_PACKET), decode_packet).what


def test_routing_header_other_than_type_2():
    _, ba = VECTORS["TV2"]
    bad = bytearray(ba)
    bad[42] = 0
    assert "not type 2" in error_of(bytes(bad), decode_packet).what


@pytest.mark.parametrize("offset,needle", [(10, "IPv4 header checksum"), (9, "IPv4 header")])
def test_ipv4_header_defects(offset, needle):
    bad = bytearray(TV8_PACKET)
    bad[offset] ^= 0x01
    assert needle in error_of(bytes(bad), decode_packet).what


def test_udp_port_must_be_4191():
    bad = bytearray(TV8_PACKET)
    bad[20:24] = b"\x00\x35\x00\x35"
    bad[10:12] = b"\x00\x00"
    bad[10:12] = mip6.checksum.internet_checksum(bytes(bad[:20])).to_bytes(2, "big")
    assert "4191" in error_of(bytes(bad), decode_packet).what


def test_wrong_udp_checksum_is_rejected_and_a_right_one_accepted():
    packet = decode_packet(TV8_PACKET)
    packet.udp.udp_checksum = True
    good = packet.encode()
    assert decode_packet(good).udp.udp_checksum
    bad = bytearray(good)
    bad[27] ^= 0xFF
    assert "UDP checksum" in error_of(bytes(bad), decode_packet).what


def test_frames_with_and_without_vlan_tag():
    eth = b"\x02" * 12 + b"\x86\xdd"
    assert decode_frame(eth + TV1_PACKET).home_address is not None
    tagged = b"\x02" * 12 + b"\x81\x00\x00\x05\x86\xdd"
    assert decode_frame(tagged + TV1_PACKET).message.sequence == 100
    assert "ethertype" in error_of(b"\x02" * 12 + b"\x88\xcc" + TV1_PACKET, decode_frame).what
    bad = bytearray(eth + TV1_PACKET)
    bad[14 + 40 + 24] = 6
    assert error_of(bytes(bad), decode_frame).offset == 14 + 40 + 24


def test_bad_checksum_is_reported_not_raised():
    bad = bytearray(TV1_PACKET)
    bad[40 + 24 + 4] ^= 0x01
    assert not decode_packet(bytes(bad)).checksum_ok()
