"""Properties over random input: valid messages round-trip; hostile bytes only ever
raise DecodeError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import mip6
from mip6.packet import SignallingPacket, UdpIPv4, decode_frame, decode_packet
from tests.strategies import ipv4, ipv6, messages
from tests.vectors import reference_vectors

VECTORS = reference_vectors()
VALID_MH = [mh for mh, _ in VECTORS.values()]
VALID_PACKETS = [packet for _, packet in VECTORS.values() if packet]


def option_offsets(data: bytes, start: int):
    """(type, offset) of every non-padding option, walked independently of the codec."""
    i, found = start, []
    while i < len(data):
        if data[i] == 0:
            i += 1
            continue
        if data[i] != 1:
            found.append((data[i], i))
        i += 2 + data[i + 1]
    assert i == len(data)
    return found


@given(messages)
def test_encode_then_decode_gives_the_same_message(message):
    data = message.encode()
    assert len(data) % 8 == 0 and data[1] == len(data) // 8 - 1
    assert mip6.decode(data) == message
    assert mip6.decode(data).encode() == data


@given(messages)
def test_every_option_sits_on_its_alignment(message):
    data = message.encode()
    start = mip6.messages.options_offset(data[2], data)
    if start is None:
        return
    for option, (kind, offset) in zip(message.options, option_offsets(data, start)):
        assert kind == option.type
        x, y = option.align()
        assert offset % x == y % x


@given(messages, ipv6, ipv6)
def test_checksum_verifies_for_the_addresses_used(message, src, dst):
    data = message.encode(src, dst)
    assert mip6.verify_mh_checksum(data, src, dst)
    assert mip6.mh_checksum(data, src, dst) == int.from_bytes(data[4:6], "big")


@given(st.binary(max_size=300))
@settings(max_examples=3000)
def test_random_bytes_decode_or_raise_decode_error(data):
    try:
        mip6.decode(data)
    except mip6.DecodeError:
        return
    assert len(data) % 8 == 0


def framed(mh_type: int, body: bytes) -> bytes:
    """A header with a consistent Header Len around a random body of 8k+2 octets."""
    return bytes((59, (len(body) + 6) // 8 - 1, mh_type, 0, 0, 0)) + body


@given(st.builds(framed, st.sampled_from(sorted(mip6.messages.MESSAGE_CLASSES)),
                 st.integers(0, 12).flatmap(lambda k: st.binary(min_size=8 * k + 2,
                                                                max_size=8 * k + 2))))
@settings(max_examples=3000)
def test_random_bodies_behind_a_valid_header(data):
    """Reaches the option walker of every known message type with random options."""
    try:
        message = mip6.decode(data)
    except mip6.DecodeError:
        return
    assert mip6.decode(message.encode()) == message


@given(st.sampled_from(VALID_MH), st.data())
def test_truncated_headers_raise_decode_error(mh, data):
    cut = data.draw(st.integers(0, len(mh) - 1))
    try:
        mip6.decode(mh[:cut])
    except mip6.DecodeError:
        return
    raise AssertionError("a truncated header decoded")


@given(st.sampled_from(VALID_MH), st.integers(0, 10**6), st.integers(1, 255))
@settings(max_examples=3000)
def test_corrupted_headers_decode_or_raise_decode_error(mh, position, xor):
    corrupted = bytearray(mh)
    corrupted[position % len(mh)] ^= xor
    try:
        mip6.decode(bytes(corrupted))
    except mip6.DecodeError:
        pass


@given(st.sampled_from(VALID_PACKETS), st.integers(0, 10**6), st.integers(1, 255),
       st.integers(0, 200))
@settings(max_examples=3000)
def test_corrupted_or_truncated_packets_decode_or_raise_decode_error(packet, position, xor,
                                                                     cut):
    corrupted = bytearray(packet)
    corrupted[position % len(packet)] ^= xor
    for candidate in (bytes(corrupted), packet[:cut], bytes(corrupted)[:cut]):
        for decoder in (decode_packet, decode_frame):
            try:
                decoder(candidate)
            except mip6.DecodeError:
                pass


@given(st.binary(max_size=200))
@settings(max_examples=2000)
def test_random_packets_decode_or_raise_decode_error(data):
    for prefix in (b"", b"\x60", b"\x45"):
        try:
            decode_packet(prefix + data)
        except mip6.DecodeError:
            pass


@given(messages, ipv6, ipv6, st.one_of(st.none(), ipv6), st.one_of(st.none(), ipv6),
       st.one_of(st.none(), st.builds(UdpIPv4, ipv4, ipv4, st.integers(0, 0xFFFF),
                                      st.just(4191), st.integers(1, 255),
                                      st.integers(0, 0xFFFF), st.booleans())))
def test_packets_round_trip(message, src, dst, hao, rh2, udp):
    packet = SignallingPacket(src, dst, message, hao, rh2, udp=udp)
    data = packet.encode()
    decoded = decode_packet(data)
    assert decoded == packet
    assert decoded.checksum_ok()
    assert decoded.encode() == data
