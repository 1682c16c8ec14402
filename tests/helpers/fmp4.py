"""Reading back what the fragment muxer wrote (box by box), and hand-made H.264/AAC tracks."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from strom.media.model import (
    AUDIO_TRACK_ID,
    VIDEO_TRACK_ID,
    Codec,
    Track,
    TrackKind,
)

#: Containers, and how many bytes of their payload precede the child boxes.
CONTAINERS = {
    b"moov": 0,
    b"trak": 0,
    b"mdia": 0,
    b"minf": 0,
    b"dinf": 0,
    b"stbl": 0,
    b"mvex": 0,
    b"moof": 0,
    b"traf": 0,
    b"dref": 8,  # version/flags, entry_count
    b"stsd": 8,
    b"avc1": 78,  # VisualSampleEntry fields
    b"vp09": 78,
    b"av01": 78,
    b"hvc1": 78,
    b"mp4a": 28,  # AudioSampleEntry fields
    b"Opus": 28,
}


@dataclass
class Box:
    kind: bytes
    payload: bytes
    children: list[Box] = field(default_factory=list)

    def find(self, path: str) -> list[Box]:
        """Boxes at a slash-separated path of types below this one."""
        first, _, rest = path.partition("/")
        found = [c for c in self.children if c.kind == first.encode()]
        return [b for c in found for b in c.find(rest)] if rest else found

    def one(self, path: str) -> Box:
        (box,) = self.find(path)
        return box


def parse_boxes(data: bytes) -> list[Box]:
    """Split ``data`` into boxes; every size must tile the data exactly."""
    boxes = []
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 8, "a box header is cut short"
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert 8 <= size <= len(data) - pos, f"{kind!r} size {size} overruns its parent"
        payload = data[pos + 8 : pos + size]
        box = Box(kind, payload)
        if kind in CONTAINERS:
            box.children = parse_boxes(payload[CONTAINERS[kind] :])
        boxes.append(box)
        pos += size
    return boxes


def root(data: bytes) -> Box:
    return Box(b"", data, parse_boxes(data))


def _tfdt(chunk: Box) -> int:
    payload = chunk.one("moof/traf/tfdt").payload
    assert payload[0] == 1  # version 1: 64-bit decode time
    return int(struct.unpack_from(">Q", payload, 4)[0])


@dataclass
class Sample:
    sequence: int
    track_id: int
    decode_time: int
    duration: int
    size: int
    flags: int
    composition_offset: int
    data: bytes


def parse_chunk(chunk: bytes) -> Sample:
    top = root(chunk)
    assert [b.kind for b in top.children] == [b"moof", b"mdat"]
    moof = top.children[0]
    assert [b.kind for b in moof.children] == [b"mfhd", b"traf"]
    traf = moof.children[1]
    assert [b.kind for b in traf.children] == [b"tfhd", b"tfdt", b"trun"]
    (sequence,) = struct.unpack_from(">I", moof.children[0].payload, 4)
    tfhd_flags, track_id = struct.unpack_from(">II", traf.children[0].payload)
    assert tfhd_flags & 0x020000  # default-base-is-moof
    trun = traf.children[2].payload
    version_flags, count, data_offset = struct.unpack_from(">IIi", trun)
    assert version_flags >> 24 == 1
    assert count == 1
    duration, size, flags, offset = struct.unpack_from(">IIIi", trun, 12)
    mdat_payload_at = 8 + len(moof.payload) + 8
    assert data_offset == mdat_payload_at
    data = chunk[data_offset : data_offset + size]
    assert data == top.children[1].payload
    return Sample(sequence, track_id, _tfdt(top), duration, size, flags, offset, data)


SPS = bytes.fromhex("6764000dacd941419f9f0110000003001000000303c0f1429960")


PPS = bytes.fromhex("68ef8fcbfdf8f800")


AVCC = (
    bytes((1, 0x64, 0, 0x0D, 0xFF, 0xE1))
    + struct.pack(">H", len(SPS))
    + SPS
    + b"\x01"
    + struct.pack(">H", len(PPS))
    + PPS
)


VIDEO = Track(VIDEO_TRACK_ID, TrackKind.VIDEO, Codec.H264, 1000, AVCC, "avc1.64000d", 320, 180)


AUDIO = Track(
    AUDIO_TRACK_ID,
    TrackKind.AUDIO,
    Codec.AAC,
    1000,
    b"\x12\x10",
    "mp4a.40.2",
    sample_rate=44100,
    channels=2,
)
