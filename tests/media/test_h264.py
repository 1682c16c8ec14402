"""H.264 configuration parsing against records made by real ffmpeg/x264."""

from __future__ import annotations

import json
import random
import struct
import subprocess
from pathlib import Path

import pytest

from strom.errors import CodecError
from strom.media.h264 import (
    annexb_to_avcc,
    build_avcc,
    codec_string,
    normalize_avcc,
    parse_avcc,
    parse_sps,
    to_length_prefixed,
)
from tests.helpers import need_tool


def _encode(path: Path, size: str, *args: str, fmt: str = "mp4", frames: int = 2) -> None:
    subprocess.run(
        [
            need_tool("ffmpeg"), "-v", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc2=size={size}:rate=30", "-frames:v", str(frames),
            "-c:v", "libx264", "-preset", "veryfast", *args, "-f", fmt, str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip


def _avcc_of(mp4: Path) -> bytes:
    """The avcC record in an ffmpeg-written MP4 (the payload of its one avcC box)."""
    data = mp4.read_bytes()
    at = data.index(b"avcC")
    (size,) = struct.unpack(">I", data[at - 4 : at])
    return data[at + 4 : at - 4 + size]


def _probe_size(path: Path) -> tuple[int, int]:
    out = subprocess.run(
        [
            need_tool("ffprobe"), "-v", "error", "-show_entries", "stream=width,height",
            "-of", "json", str(path),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout  # fmt: skip
    stream = json.loads(out)["streams"][0]
    return stream["width"], stream["height"]


# ffmpeg/x264 settings -> (profile_idc, picture size): each exercises a different SPS path.
ENCODINGS = {
    "high-720p": ("1280x720", ["-profile:v", "high"], 100, (1280, 720)),
    "high-1080p-cropped": ("1920x1080", [], 100, (1920, 1080)),
    "baseline": ("640x360", ["-profile:v", "baseline"], 66, (640, 360)),
    "interlaced": ("1920x1080", ["-x264-params", "interlaced=1"], 100, (1920, 1080)),
    "scaling-lists": ("640x360", ["-x264-params", "cqm=jvt"], 100, (640, 360)),
    "high422-10bit": ("640x360", ["-pix_fmt", "yuv422p10le"], 122, (640, 360)),
    "high444-odd-crop": ("326x182", ["-pix_fmt", "yuv444p"], 244, (326, 182)),
}


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, tuple[int, int]]]:
    out = {}
    tmp = tmp_path_factory.mktemp("h264")
    for name, (size, args, _, _) in ENCODINGS.items():
        path = tmp / f"{name}.mp4"
        _encode(path, size, *args)
        out[name] = (_avcc_of(path), _probe_size(path))
    return out


@pytest.mark.parametrize("name", ENCODINGS)
def test_parse_avcc_matches_ffprobe(
    records: dict[str, tuple[bytes, tuple[int, int]]], name: str
) -> None:
    record, probed = records[name]
    _, _, profile, size = ENCODINGS[name]
    cfg = parse_avcc(record)
    assert (cfg.width, cfg.height) == probed == size
    assert cfg.profile_idc == profile
    assert cfg.length_size == 4
    assert len(cfg.sps) == 1
    assert cfg.sps[0][0] & 0x1F == 7
    assert len(cfg.pps) == 1
    assert cfg.pps[0][0] & 0x1F == 8


def test_codec_string_for_high_720p(records: dict[str, tuple[bytes, tuple[int, int]]]) -> None:
    # x264 picks level 3.1 for 720p30 High: what MSE's isTypeSupported is asked about.
    assert codec_string(parse_avcc(records["high-720p"][0])) == "avc1.64001f"
    assert codec_string(parse_avcc(records["baseline"][0])).startswith("avc1.42")


@pytest.mark.parametrize("name", ["high-720p", "baseline", "high422-10bit", "interlaced"])
def test_build_avcc_reproduces_ffmpeg_record(
    records: dict[str, tuple[bytes, tuple[int, int]]], name: str
) -> None:
    record = records[name][0]
    cfg = parse_avcc(record)
    assert build_avcc(cfg.sps[0], cfg.pps[0]) == record


def test_sps_fields_of_10_bit_422(records: dict[str, tuple[bytes, tuple[int, int]]]) -> None:
    sps = parse_sps(parse_avcc(records["high422-10bit"][0]).sps[0])
    assert (sps.chroma_format_idc, sps.bit_depth_luma, sps.bit_depth_chroma) == (2, 10, 10)


def test_every_truncation_is_a_codec_error(
    records: dict[str, tuple[bytes, tuple[int, int]]],
) -> None:
    record = records["high-720p"][0]
    cfg = parse_avcc(record)
    end_of_pps = 6 + 2 + len(cfg.sps[0]) + 1 + 2 + len(cfg.pps[0])
    for cut in range(end_of_pps):
        with pytest.raises(CodecError):
            parse_avcc(record[:cut])


def test_corrupted_records_only_raise_codec_error(
    records: dict[str, tuple[bytes, tuple[int, int]]],
) -> None:
    rng = random.Random(1234)
    record = records["scaling-lists"][0]
    for _ in range(2000):
        mutated = bytearray(record)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            cfg = parse_avcc(bytes(mutated))
        except CodecError:
            continue
        assert cfg.width > 0
        assert cfg.height > 0


def _record(sps: bytes, pps: bytes, *, version: int = 1, length_byte: int = 0xFF) -> bytes:
    return (
        bytes((version, sps[1], sps[2], sps[3], length_byte, 0xE1))
        + struct.pack(">H", len(sps))
        + sps
        + b"\x01"
        + struct.pack(">H", len(pps))
        + pps
    )


# A real SPS/PPS pair (x264, High, 320x180), for records assembled by hand below.
SPS = bytes.fromhex("6764000dacd941419f9f0110000003001000000303c0f1429960")
PPS = bytes.fromhex("68ef8fcbfdf8f800")


def test_hand_assembled_record_parses() -> None:
    cfg = parse_avcc(_record(SPS, PPS))
    assert (cfg.width, cfg.height, cfg.profile_idc, cfg.level_idc) == (320, 180, 100, 13)
    assert codec_string(cfg) == "avc1.64000d"


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(b"", id="empty"),
        pytest.param(_record(SPS, PPS, version=0), id="version-0"),
        pytest.param(_record(SPS, PPS, length_byte=0xFE), id="3-byte-lengths"),
        pytest.param(_record(SPS, PPS)[:5] + b"\xe0\x00", id="no-sps"),
        pytest.param(_record(PPS, PPS), id="pps-in-sps-list"),
        pytest.param(_record(SPS, SPS), id="sps-in-pps-list"),
        pytest.param(_record(SPS[:6], PPS), id="sps-cut-short"),
    ],
)
def test_malformed_records(record: bytes) -> None:
    with pytest.raises(CodecError):
        parse_avcc(record)


def test_normalize_avcc_declares_4_byte_lengths() -> None:
    two = _record(SPS, PPS, length_byte=0xFD)
    assert parse_avcc(two).length_size == 2
    four = normalize_avcc(two)
    assert parse_avcc(four).length_size == 4
    assert four[:4] == two[:4]
    assert four[5:] == two[5:]
    assert normalize_avcc(four) is four


# -- sample data -------------------------------------------------------------------------

NALS = [b"\x09\xf0", b"\x65" + bytes(range(256)) * 2, b"\x41\x9a"]
FOUR = b"".join(struct.pack(">I", len(n)) + n for n in NALS)


@pytest.mark.parametrize("length_size", [1, 2, 4])
def test_to_length_prefixed(length_size: int) -> None:
    nals = [n[:255] for n in NALS] if length_size == 1 else NALS
    data = b"".join(len(n).to_bytes(length_size, "big") + n for n in nals)
    expected = b"".join(struct.pack(">I", len(n)) + n for n in nals)
    assert to_length_prefixed(data, length_size) == expected


def test_to_length_prefixed_returns_4_byte_data_without_copying() -> None:
    assert to_length_prefixed(FOUR, 4) is FOUR
    assert to_length_prefixed(b"", 4) == b""


@pytest.mark.parametrize("length_size", [1, 2, 4])
def test_to_length_prefixed_rejects_overruns(length_size: int) -> None:
    data = (200).to_bytes(length_size, "big") + bytes(100)
    with pytest.raises(CodecError):
        to_length_prefixed(data, length_size)
    with pytest.raises(CodecError):
        to_length_prefixed(data[: length_size - 1] if length_size > 1 else b"\x05", length_size)


def test_to_length_prefixed_rejects_3_byte_lengths() -> None:
    with pytest.raises(CodecError):
        to_length_prefixed(b"\x00\x00\x01\x65", 3)


def test_annexb_to_avcc_handles_start_code_forms() -> None:
    stream = (
        b"\x00\x00\x00\x00\x01"  # leading zero_byte before a 4-byte start code
        + NALS[0]
        + b"\x00\x00"  # trailing_zero_8bits
        + b"\x00\x00\x01"
        + NALS[1]
        + b"\x00\x00\x01"  # an empty NAL unit
        + b"\x00\x00\x00\x01"
        + NALS[2]
    )
    assert annexb_to_avcc(stream) == FOUR


@pytest.mark.parametrize("stream", [b"", b"\x65\x88\x84", b"\x01\x00\x00\x01\x65"])
def test_annexb_to_avcc_rejects_garbage(stream: bytes) -> None:
    with pytest.raises(CodecError):
        annexb_to_avcc(stream)


def test_annexb_from_x264(tmp_path: Path) -> None:
    path = tmp_path / "o.h264"
    _encode(path, "320x180", "-bsf:v", "h264_mp4toannexb", fmt="h264", frames=3)
    stream = path.read_bytes()
    avcc = annexb_to_avcc(stream)
    nals = []
    pos = 0
    while pos < len(avcc):
        (size,) = struct.unpack_from(">I", avcc, pos)
        nals.append(avcc[pos + 4 : pos + 4 + size])
        pos += 4 + size
    assert [n[0] & 0x1F for n in nals[:4]] == [7, 8, 6, 5]  # SPS, PPS, SEI, IDR slice
    assert sum(1 for n in nals if n[0] & 0x1F in (1, 5)) == 3  # one slice per frame
    sps = parse_sps(nals[0])
    assert (sps.width, sps.height) == (320, 180)
    # Every byte is accounted for: payloads plus the start codes that were removed.
    four_byte = stream.count(b"\x00\x00\x00\x01")
    three_byte = stream.count(b"\x00\x00\x01") - four_byte
    assert four_byte + three_byte == len(nals)
    assert sum(len(n) for n in nals) == len(stream) - 4 * four_byte - 3 * three_byte
    assert to_length_prefixed(avcc, 4) is avcc
