"""The internal pull's wire format, byte by byte: a real broadcast (ffmpeg's media through
the real hub) round-trips exactly, and malformed or oversized input is refused."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from strom.cluster import wire
from strom.delivery.rtmp_play import rtmp_message
from strom.errors import LimitExceeded, ProtocolError
from strom.live.channel import Channel, Subscriber
from strom.live.chunk import Chunk
from strom.media.model import Codec, Track, TrackKind
from tests.helpers import MediaFile
from tests.helpers.hub import feed, read_flv

VIDEO = Track(1, TrackKind.VIDEO, Codec.H264, 1000, b"\x01\x64\x00\x1f", "avc1.64001f", 640, 360)
AUDIO = Track(2, TrackKind.AUDIO, Codec.AAC, 1000, b"\x12\x10", "mp4a.40.2", 0, 0, 44100, 2)


class Recorder(Subscriber):
    def __init__(self) -> None:
        self.init: bytes | None = None
        self.tracks: tuple[Track, ...] = ()
        self.chunks: list[Chunk] = []

    def on_live(self, channel: Channel) -> None:
        self.init = channel.init_segment
        self.tracks = tuple(sorted(channel.tracks.values(), key=lambda t: t.id))

    def on_chunk(self, chunk: Chunk) -> None:
        self.chunks.append(chunk)

    def on_end(self) -> None:
        return


async def broadcast(media: MediaFile) -> Recorder:
    channel = Channel("alice")
    seen = Recorder()
    channel.subscribe(seen)
    channel.claim(object())  # type: ignore[arg-type]
    feed(channel, read_flv(media.path))
    return seen


def messages(seen: Recorder) -> list[bytes]:
    assert seen.init is not None
    out = [wire.encode_start("alice", 7, 1700000000.5, seen.tracks, seen.init)]
    for chunk in seen.chunks:
        out += [wire.chunk_header(chunk), chunk.data]
    return out


async def test_a_real_broadcast_round_trips_exactly(av_media: MediaFile) -> None:
    seen = await broadcast(av_media)
    assert any(len(c.frames) > 1 for c in seen.chunks)  # coalesced audio travels too
    decoder = wire.PullDecoder()
    events = [e for m in messages(seen) for e in [decoder.receive_message(m)] if e is not None]

    start = events[0]
    assert isinstance(start, wire.Start)
    assert (start.channel, start.broadcast_id, start.started_at) == ("alice", 7, 1700000000.5)
    assert start.tracks == seen.tracks  # every field of every track
    assert start.init_segment == seen.init
    got = [e.chunk for e in events[1:] if isinstance(e, wire.ChunkArrived)]
    assert len(got) == len(events) - 1 == len(seen.chunks)
    for mine, theirs in zip(got, seen.chunks, strict=True):
        assert mine.data == theirs.data
        assert (mine.keyframe, mine.time, mine.end, mine.received) == (
            theirs.keyframe, theirs.time, theirs.end, theirs.received,
        )  # fmt: skip
        assert mine.track == theirs.track
        assert mine.frames == theirs.frames  # tracks, times, flags and sample bytes
        # so RTMP play on the pulling node sends what it sends on the ingest node
        assert rtmp_message(mine, 1, 4096) == rtmp_message(theirs, 1, 4096)


def test_state_messages_are_one_byte() -> None:
    assert wire.encode_state(wire.Kind.STALL) == b"\x03"
    assert wire.encode_state(wire.Kind.RESUME) == b"\x04"
    assert wire.encode_state(wire.Kind.END) == b"\x05"
    decoder = wire.PullDecoder()
    assert decoder.receive_message(b"\x05") == wire.StateChanged(wire.Kind.END)
    with pytest.raises(ValueError, match="not a state"):
        wire.encode_state(wire.Kind.CHUNK)


def test_start_layout() -> None:
    data = wire.encode_start("ab", 3, 2.0, [AUDIO], b"INIT")
    assert data == (
        b"\x01" + struct.pack(">Qd", 3, 2.0) + b"\x01" + b"\x00\x02ab"
        + struct.pack(">BBBIIIIB", 2, 2, 2, 1000, 0, 0, 44100, 2)
        + b"\x00\x09mp4a.40.2" + b"\x00\x00\x00\x02\x12\x10"
        + b"\x00\x00\x00\x04INIT"
    )  # fmt: skip
    start = wire.PullDecoder().receive_message(data)
    assert start == wire.Start("ab", 3, 2.0, (AUDIO,), b"INIT")


def test_every_codec_crosses_the_wire_with_its_number_for_good() -> None:
    # Nodes of different versions pull from each other: a codec's number never changes.
    numbers = {}
    for codec in Codec:
        track = dataclasses.replace(VIDEO, codec=codec)
        data = wire.encode_start("ab", 3, 2.0, [track], b"INIT")
        numbers[codec] = data[24]  # after kind, id, time, count, name, track id and kind
        assert wire.PullDecoder().receive_message(data) == wire.Start(
            "ab", 3, 2.0, (track,), b"INIT"
        )
    assert numbers[Codec.H264] == 1
    assert numbers[Codec.AAC] == 2
    assert numbers[Codec.OPUS] == 6
    assert len(set(numbers.values())) == len(Codec)


def test_every_truncation_of_a_start_is_refused() -> None:
    data = wire.encode_start("alice", 1, 0.0, [VIDEO, AUDIO], b"ftyp-moov")
    for n in range(1, len(data)):
        with pytest.raises(ProtocolError):
            wire.PullDecoder().receive_message(data[:n])
    with pytest.raises(wire.PullProtocolError, match="trailing"):
        wire.PullDecoder().receive_message(data + b"\x00")


def chunk_message(size: int, frames: list[tuple[int, int, int]]) -> bytes:
    head = b"\x02\x01\x01" + struct.pack(">dddIH", 1.0, 1.1, 2.0, size, len(frames))
    return head + b"".join(struct.pack(">BBqiII", t, 1, 0, 0, o, n) for t, o, n in frames)


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([b""], "empty"),
        ([b"\x09"], "unknown message kind"),
        ([b"\x04\x00"], "trailing"),
        ([chunk_message(4, [])], "before the start"),
        (["start", chunk_message(4, [(1, 0, 4)]), b"abc"], "payload of 3 bytes"),
        (["start", chunk_message(4, [(1, 2, 4)])], "outside its chunk"),
        (["start", chunk_message(4, [(9, 0, 4)])], "unknown track"),
        (["start", chunk_message(1 << 30, [])], "1073741824 bytes"),
        ([wire.encode_start("a", 1, 0, [VIDEO, VIDEO], b"")], "two tracks"),
        ([wire.encode_start("a", 1, 0, [VIDEO] * 9, b"")], "9 tracks"),
        ([wire.encode_start("a", 1, 0, [VIDEO], b"x" * (2 << 20))], "past the limit"),
        ([b"\x01" + bytes(16) + b"\x01\x00\x02\xff\xfe"], "UTF-8"),
    ],
)
def test_malformed_input_is_a_protocol_error(messages: list[bytes | str], error: str) -> None:
    decoder = wire.PullDecoder()
    start = wire.encode_start("a", 1, 0, [VIDEO], b"init")
    *before, last = [start if m == "start" else m for m in messages]
    for message in before:
        assert isinstance(message, bytes)
        decoder.receive_message(message)
    assert isinstance(last, bytes)
    with pytest.raises(wire.PullProtocolError, match=error):
        decoder.receive_message(last)


def test_limits_are_limit_errors() -> None:
    decoder = wire.PullDecoder(wire.WireLimits(max_init_bytes=3))
    with pytest.raises(LimitExceeded):
        decoder.receive_message(wire.encode_start("a", 1, 0, [VIDEO], b"init"))


def test_a_chunk_whose_samples_do_not_match_its_frames_is_not_sent() -> None:
    moof_mdat = struct.pack(">I4s", 8, b"moof") + struct.pack(">I4s", 9, b"mdat") + b"x"
    assert wire.sample_ranges(moof_mdat, [1]) == [(16, 1)]
    # one moof for several frames: their samples lie in the mdat in frame order
    two = struct.pack(">I4s", 8, b"moof") + struct.pack(">I4s", 11, b"mdat") + b"xyz"
    assert wire.sample_ranges(two, [1, 2]) == [(16, 1), (17, 2)]
    for sizes in ([1], [2, 2], [1, 1, 1, 1]):
        with pytest.raises(wire.PullProtocolError, match="do not match"):
            wire.sample_ranges(two, sizes)
    with pytest.raises(wire.PullProtocolError, match="bad size"):
        wire.sample_ranges(moof_mdat[:-1], [1])
    with pytest.raises(wire.PullProtocolError, match="inside a box header"):
        wire.sample_ranges(moof_mdat + b"\x00", [1])
