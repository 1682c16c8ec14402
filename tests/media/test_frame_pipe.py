"""The ladder's pipe format, byte by byte: tracks and frames round-trip whole, however
the bytes arrive; what does not parse is refused."""

from __future__ import annotations

import struct

import pytest

from strom.errors import ProtocolError
from strom.media import frame_pipe
from strom.media.model import Codec, Frame, Track, TrackKind

VIDEO = Track(1, TrackKind.VIDEO, Codec.H264, 1000, b"\x01\x64\x00\x1f", "avc1.64001f", 1280, 720)
AUDIO = Track(2, TrackKind.AUDIO, Codec.AAC, 44100, b"\x12\x10", "mp4a.40.2", sample_rate=44100,
              channels=2)  # fmt: skip
ITEMS: list[tuple[int, Track | Frame]] = [
    (0, VIDEO),
    (0, AUDIO),
    (2, Frame(1, -33, 0, True, b"\x00\x00\x00\x02\x65\x88")),
    (1, Frame(2, 1 << 40, (1 << 40) + 5, False, b"")),
]


def test_messages_round_trip_in_one_lump_and_byte_by_byte() -> None:
    wire = b"".join(frame_pipe.encode(item, lane) for lane, item in ITEMS)
    expected = [frame_pipe.PipeMessage(lane, item) for lane, item in ITEMS]
    assert frame_pipe.PipeReader().feed(wire) == expected
    reader = frame_pipe.PipeReader()
    got = [m for i in range(len(wire)) for m in reader.feed(wire[i : i + 1])]
    assert got == expected
    assert reader.pending == 0


def test_a_frame_message_is_its_header_and_its_data() -> None:
    wire = frame_pipe.encode(Frame(1, 10, 20, True, b"abc"), lane=3)
    assert wire == struct.pack(">IBBBBqq", 2 + 18 + 3, ord("F"), 3, 1, 1, 10, 20) + b"abc"


@pytest.mark.parametrize(
    "wire",
    [
        struct.pack(">IBB", 1 << 30, ord("F"), 0),  # too long
        struct.pack(">IBB", 1, ord("F"), 0),  # shorter than its own header
        struct.pack(">IBB", 4, ord("X"), 0) + b"ab",  # unknown kind
        struct.pack(">IBB", 5, ord("F"), 0) + b"abc",  # frame too short
        struct.pack(">IBB", 4, ord("T"), 0) + b"ab",  # track too short
        frame_pipe.encode(VIDEO).replace(b"\x04h264", b"\x04h266"),  # unknown codec
    ],
)
def test_what_does_not_parse_is_refused(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        frame_pipe.PipeReader().feed(wire)
