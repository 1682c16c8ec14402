from __future__ import annotations

import random

import pytest

from strom.errors import LimitExceeded, RtmpError
from strom.media.rtmp.chunk import (
    CHUNK_COST,
    ChunkReader,
    ChunkStream,
    ChunkWriter,
    RtmpMessage,
    basic_header,
    encode_message,
)
from strom.media.rtmp.messages import Acknowledgement, MessageType


def read_both(data: bytes, **limits: int) -> list[RtmpMessage]:
    """Messages from ``data`` fed in one lump; asserts byte-at-a-time gives the same."""
    lump = ChunkReader(**limits).receive_data(data)
    reader = ChunkReader(**limits)
    trickle: list[RtmpMessage] = []
    for i in range(len(data)):
        trickle += reader.receive_data(data[i : i + 1])
    assert trickle == lump
    return lump


def header0(csid: int, ts: int, length: int, mtype: int, sid: int) -> bytes:
    field = min(ts, 0xFFFFFF)
    ext = ts.to_bytes(4, "big") if ts >= 0xFFFFFF else b""
    return (
        basic_header(0, csid)
        + field.to_bytes(3, "big")
        + length.to_bytes(3, "big")
        + bytes((mtype,))
        + sid.to_bytes(4, "little")
        + ext
    )


def header1(csid: int, delta: int, length: int, mtype: int) -> bytes:
    field = min(delta, 0xFFFFFF)
    ext = delta.to_bytes(4, "big") if delta >= 0xFFFFFF else b""
    return (
        basic_header(1, csid)
        + field.to_bytes(3, "big")
        + length.to_bytes(3, "big")
        + bytes((mtype,))
        + ext
    )


def header2(csid: int, delta: int) -> bytes:
    return basic_header(2, csid) + min(delta, 0xFFFFFF).to_bytes(3, "big")


def test_type0_message_in_one_chunk() -> None:
    data = header0(3, 1234, 5, 20, 0) + b"hello"
    assert read_both(data) == [RtmpMessage(3, 20, 0, 1234, b"hello")]


def test_all_four_header_types_and_timestamp_deltas() -> None:
    data = (
        header0(6, 1000, 4, 9, 1)
        + b"AAAA"
        + header1(6, 33, 2, 8)  # new length and type; stream id kept
        + b"BB"
        + header2(6, 40)  # same length and type, new delta
        + b"CC"
        + basic_header(3, 6)  # a new message: same delta again (spec 5.3.1.2.4)
        + b"DD"
    )
    assert read_both(data) == [
        RtmpMessage(6, 9, 1, 1000, b"AAAA"),
        RtmpMessage(6, 8, 1, 1033, b"BB"),
        RtmpMessage(6, 8, 1, 1073, b"CC"),
        RtmpMessage(6, 8, 1, 1113, b"DD"),
    ]


def test_type3_after_type0_uses_the_type0_timestamp_as_delta() -> None:
    data = header0(4, 25, 1, 8, 1) + b"a" + basic_header(3, 4) + b"b"
    assert [m.timestamp for m in read_both(data)] == [25, 50]


@pytest.mark.parametrize("csid", [2, 63, 64, 319, 320, 1000, 65599])
def test_basic_header_forms(csid: int) -> None:
    expected_size = 1 if csid < 64 else 2 if csid < 320 else 3
    assert len(basic_header(0, csid)) == expected_size
    data = encode_message(csid, 9, 1, 7, b"x" * 300, 128)
    assert read_both(data) == [RtmpMessage(csid, 9, 1, 7, b"x" * 300)]


def test_basic_header_rejects_reserved_ids() -> None:
    with pytest.raises(ValueError, match="chunk stream id"):
        basic_header(0, 1)
    with pytest.raises(ValueError, match="chunk stream id"):
        basic_header(0, 65600)


def test_multi_chunk_message_interleaved_with_another_chunk_stream() -> None:
    video = encode_message(6, 9, 1, 0, bytes(range(200)), 128)
    audio = encode_message(4, 8, 1, 0, b"audio", 128)
    first_chunk = 12 + 128
    data = video[:first_chunk] + audio + video[first_chunk:]
    assert read_both(data) == [
        RtmpMessage(4, 8, 1, 0, b"audio"),
        RtmpMessage(6, 9, 1, 0, bytes(range(200))),
    ]


EXT_TS = 0x01234567  # beyond 24 bits: needs the extended timestamp field


def _continuations(first: bytes, payload: bytes, csid: int, ext: bytes) -> bytes:
    """A 3-chunk message at chunk size 128, continuations carrying ``ext`` or not."""
    out = first + payload[:128]
    for offset in range(128, len(payload), 128):
        out += basic_header(3, csid) + ext + payload[offset : offset + 128]
    return out


@pytest.mark.parametrize("repeat", [True, False], ids=["librtmp-style", "no-repeat"])
def test_extended_timestamp_on_continuation_chunks(repeat: bool) -> None:
    payload = bytes(range(256)) + b"tail"
    ext = EXT_TS.to_bytes(4, "big") if repeat else b""
    data = _continuations(header0(6, EXT_TS, len(payload), 9, 1), payload, 6, ext)
    if repeat:
        assert data == encode_message(6, 9, 1, EXT_TS, payload, 128)
    assert read_both(data) == [RtmpMessage(6, 9, 1, EXT_TS, payload)]


@pytest.mark.parametrize("repeat", [True, False], ids=["librtmp-style", "no-repeat"])
def test_extended_delta_on_type1_continuations(repeat: bool) -> None:
    delta = 0x01000000
    payload = b"p" * 300
    ext = delta.to_bytes(4, "big") if repeat else b""
    data = header0(6, 5, 1, 9, 1) + b"a"
    data += _continuations(header1(6, delta, len(payload), 9), payload, 6, ext)
    assert read_both(data)[1] == RtmpMessage(6, 9, 1, 5 + delta, payload)


def test_type3_new_message_after_extended_timestamp() -> None:
    # The type-3 chunk of a new message repeats the extended field (the delta).
    data = header0(4, EXT_TS, 1, 8, 1) + b"a"
    data += basic_header(3, 4) + EXT_TS.to_bytes(4, "big") + b"b"
    assert [m.timestamp for m in read_both(data)] == [EXT_TS, (2 * EXT_TS) & 0xFFFFFFFF]


def test_set_chunk_size_mid_stream() -> None:
    big = bytes(range(256)) * 20  # 5120 bytes
    data = (
        encode_message(6, 9, 1, 0, big, 128)
        + encode_message(2, 1, 0, 0, (4096).to_bytes(4, "big"), 128)
        + encode_message(6, 9, 1, 40, big, 4096)
        + encode_message(2, 1, 0, 0, (1).to_bytes(4, "big"), 4096)
        + encode_message(6, 9, 1, 80, b"tiny", 1)
    )
    messages = read_both(data, min_chunk_size=1)  # the spec's minimum, not the default
    assert [m.payload for m in messages if m.message_type == 9] == [big, big, b"tiny"]
    reader = ChunkReader(min_chunk_size=1)
    reader.receive_data(data)
    assert reader.chunk_size == 1


def test_abort_drops_the_partial_message() -> None:
    partial = encode_message(6, 9, 1, 0, b"x" * 300, 128)[: 12 + 128]
    abort = encode_message(2, 2, 0, 0, (6).to_bytes(4, "big"), 128)
    data = partial + abort + encode_message(6, 9, 1, 33, b"fresh", 128)
    messages = read_both(data)
    assert [m.message_type for m in messages] == [2, 9]
    assert messages[1].payload == b"fresh"


def test_new_header_while_a_message_is_unfinished_is_an_error() -> None:
    partial = encode_message(6, 9, 1, 0, b"x" * 300, 128)[: 12 + 128]
    with pytest.raises(RtmpError, match="unfinished"):
        ChunkReader().receive_data(partial + header0(6, 0, 1, 9, 1) + b"y")


def test_zero_length_message() -> None:
    data = header0(3, 0, 0, 20, 0) + header0(3, 0, 1, 20, 0) + b"z"
    assert [m.payload for m in read_both(data)] == [b"", b"z"]


@pytest.mark.parametrize(
    ("size", "error", "match"),
    [
        (0, RtmpError, "invalid chunk size"),
        (0x80000000, RtmpError, "invalid chunk size"),
        ((1 << 20) + 1, LimitExceeded, "chunk size"),
    ],
)
def test_set_chunk_size_bounds(size: int, error: type[Exception], match: str) -> None:
    data = encode_message(2, 1, 0, 0, size.to_bytes(4, "big"), 128)
    with pytest.raises(error, match=match):
        ChunkReader(max_chunk_size=1 << 20).receive_data(data)


def test_set_chunk_size_spec_maximum_is_accepted_when_allowed() -> None:
    data = encode_message(2, 1, 0, 0, (0x7FFFFFFF).to_bytes(4, "big"), 128)
    reader = ChunkReader(max_chunk_size=0x7FFFFFFF)
    reader.receive_data(data)
    assert reader.chunk_size == 0x7FFFFFFF


def test_message_above_the_bound_is_refused_at_its_header() -> None:
    with pytest.raises(LimitExceeded, match="message of"):
        ChunkReader(max_message_size=1000).receive_data(header0(6, 0, 1001, 9, 1))


def test_too_many_chunk_streams() -> None:
    data = b"".join(encode_message(csid, 9, 1, 0, b"x", 128) for csid in range(3, 10))
    assert len(ChunkReader(max_chunk_streams=7).receive_data(data)) == 7
    with pytest.raises(LimitExceeded, match="chunk streams"):
        ChunkReader(max_chunk_streams=6).receive_data(data)


def test_unfinished_messages_are_bounded_in_total() -> None:
    data = b"".join(
        encode_message(csid, 9, 1, 0, b"x" * 1000, 128)[: 12 + 128] for csid in range(3, 13)
    )
    with pytest.raises(LimitExceeded, match="unfinished"):
        ChunkReader(max_pending_bytes=1000).receive_data(data)


@pytest.mark.parametrize("size", [1, 2, 64, 127])
def test_a_chunk_size_below_the_floor_is_refused(size: int) -> None:
    # Issue 11: 1-byte chunks cost the server ~130 times the work per byte.
    data = encode_message(2, 1, 0, 0, size.to_bytes(4, "big"), 128)
    with pytest.raises(LimitExceeded, match="below the 128 byte minimum"):
        ChunkReader().receive_data(data)


def test_the_spec_default_chunk_size_is_the_floor() -> None:
    reader = ChunkReader()
    reader.receive_data(encode_message(2, 1, 0, 0, (128).to_bytes(4, "big"), 128))
    assert reader.chunk_size == 128


def _mixed_stream() -> bytes:
    big = bytes(range(256)) * 40  # 10 KiB: 80 chunks of 128
    out = bytearray()
    for i in range(20):
        out += encode_message(6, 9, 1, i * 33, big, 128)
        out += encode_message(4, 8, 1, i * 21, b"a" * (i % 3), 128)
    return bytes(out)


def test_a_budget_bounds_each_call_and_loses_nothing() -> None:
    data = _mixed_stream()
    whole = ChunkReader().receive_data(data)
    reader = ChunkReader()
    got = reader.receive_data(data, max_bytes=4096)
    works = [reader.work]
    while reader.stopped_early:
        before = reader.work
        got += reader.receive_data(max_bytes=4096)
        works.append(reader.work - before)
    assert got == whole
    assert len(works) > 20
    # a call stops at the first chunk that reaches the budget: less than one more chunk
    assert max(works) < 4096 + CHUNK_COST + 18
    assert reader.buffered == 0


def test_tiny_messages_each_count_as_a_chunk() -> None:
    # 1000 one-byte messages, 2 bytes each on the wire (a type-3 header repeats the
    # previous one's): a budget of ten chunks reads ten of them.
    data = encode_message(3, 19, 0, 0, b"x", 128) + (b"\xc3" + b"x") * 999
    reader = ChunkReader()
    assert len(reader.receive_data(data, max_bytes=10 * CHUNK_COST)) == 10
    assert reader.stopped_early
    assert reader.buffered == len(data) - 13 - 9 * 2


def test_reading_pauses_after_a_message_type_so_limits_can_change() -> None:
    # A server reads up to the publish command, accepts it, raises the message limit,
    # and only then reads the keyframe behind it.
    data = encode_message(3, 20, 1, 0, b"publish", 128) + encode_message(
        6, 9, 1, 0, bytes(5000), 128
    )
    reader = ChunkReader(max_message_size=1000)
    assert [m.payload for m in reader.receive_data(data, pause_after={20})] == [b"publish"]
    assert reader.stopped_early
    reader.max_message_size = 8000
    assert [len(m.payload) for m in reader.receive_data(pause_after={20})] == [5000]
    assert not reader.stopped_early


def _random_messages(rng: random.Random, count: int) -> list[RtmpMessage]:
    clock = {4: 0, 6: 0, 5: 0}
    out = []
    for _ in range(count):
        csid = rng.choice([4, 6, 5, 400])
        clock.setdefault(csid, 0)
        clock[csid] += rng.choice([0, 23, 23, 33, 33, 0x1000000])
        size = rng.choice([0, 1, 10, 10, 127, 128, 129, 700])
        mtype = 8 if csid == 4 else rng.choice([9, 18])
        out.append(RtmpMessage(csid, mtype, 1, clock[csid] & 0xFFFFFFFF, rng.randbytes(size)))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_compressing_writer_round_trips_through_the_reader(seed: int) -> None:
    rng = random.Random(seed)
    messages = _random_messages(rng, 60)
    writer = ChunkWriter(128, compress=True)
    data = b"".join(
        writer.write(m.csid, m.message_type, m.stream_id, m.timestamp, m.payload) for m in messages
    )
    assert read_both(data) == messages
    # Compression is real: fewer bytes than type-0 headers everywhere.
    plain = b"".join(
        encode_message(m.csid, m.message_type, m.stream_id, m.timestamp, m.payload, 128)
        for m in messages
    )
    assert len(data) < len(plain)


def test_chunk_stream_acknowledges_after_each_window() -> None:
    stream = ChunkStream(ChunkReader(), ChunkWriter())
    stream.receive_data(
        encode_message(2, MessageType.WINDOW_ACK_SIZE, 0, 0, (500).to_bytes(4, "big"), 128)
    )
    assert stream.take_outgoing() == b""  # 16 bytes so far, below the window
    media = encode_message(6, 9, 1, 0, b"v" * 100, 128)  # 112 bytes
    acks: list[int] = []
    for _ in range(10):
        stream.receive_data(media)
        out = stream.take_outgoing()
        if out:
            (ack,) = ChunkReader().receive_data(out)
            assert ack.message_type == MessageType.ACKNOWLEDGEMENT
            acks.append(Acknowledgement.parse(ack.payload).sequence_number)
    assert acks == [16 + 112 * 5, 16 + 112 * 10]


def test_chunk_stream_answers_set_peer_bandwidth_with_its_window() -> None:
    stream = ChunkStream(ChunkReader(), ChunkWriter())
    spb = (5000).to_bytes(4, "big") + b"\x02"
    stream.receive_data(encode_message(2, MessageType.SET_PEER_BANDWIDTH, 0, 0, spb, 128))
    (reply,) = ChunkReader().receive_data(stream.take_outgoing())
    assert reply.message_type == MessageType.WINDOW_ACK_SIZE
    assert int.from_bytes(reply.payload, "big") == 5000
    # The same bandwidth again needs no answer (spec 5.4.5).
    stream.receive_data(encode_message(2, MessageType.SET_PEER_BANDWIDTH, 0, 0, spb, 128))
    assert stream.take_outgoing() == b""
