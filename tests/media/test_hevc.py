"""HEVC configuration: hvcC records from x265 (via PyAV's FFmpeg), the SPS picture size
and the RFC 6381 codecs string, byte by byte."""

from __future__ import annotations

import struct

import pytest

from strom.errors import CodecError
from strom.media import hevc
from strom.media.hevc import HevcConfig

# x265 4.x, 320x180 Main (coded 320x184: the conformance window crops 4 rows), level 2.
VPS = bytes.fromhex("40010c01ffff01600000030090000003000003003c959409")
SPS = bytes.fromhex(
    "42010101600000030090000003000003003ca00a080c1f3e595952930b9a020000030002000003003c10"
)
PPS = bytes.fromhex("4401c073c189")
#: the fixed part of x265's record: Main, compatibility 0x60000000, constraints 0x90,
#: level 60, 4:2:0 8 bits, lengthSizeMinusOne 3
_HEADER = bytes.fromhex("0101600000009000000000003cf000fcfdf8f800000f")


def hvcc(*nals: bytes, length_size: int = 4) -> bytes:
    """An hvcC with one array per NAL unit (array_completeness 1)."""
    header = bytearray(_HEADER)
    header[21] = (header[21] & 0xFC) | (length_size - 1)
    arrays = b"".join(
        bytes((0x80 | hevc.nal_type(nal),)) + struct.pack(">HH", 1, len(nal)) + nal for nal in nals
    )
    return bytes(header) + bytes((len(nals),)) + arrays


def test_x265_record() -> None:
    cfg = hevc.parse_hvcc(hvcc(VPS, SPS, PPS))
    assert (cfg.profile_idc, cfg.tier, cfg.level_idc, cfg.length_size) == (1, 0, 60, 4)
    assert (cfg.width, cfg.height) == (320, 180)
    assert hevc.codec_string(cfg) == "hvc1.1.6.L60.90"
    assert hevc.parameter_sets(hvcc(VPS, SPS, PPS)) == [VPS, SPS, PPS]


def test_sps_picture_size_after_the_conformance_window() -> None:
    assert hevc.parse_sps(SPS) == (320, 180)
    with pytest.raises(CodecError, match="not an SPS"):
        hevc.parse_sps(PPS)
    with pytest.raises(CodecError, match="truncated"):
        hevc.parse_sps(SPS[:20])


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        # ISO/IEC 14496-15 E.3's examples: Main 3.1, and Main 10 at high tier 4.0.
        (HevcConfig(0, 0, 1, 0x60000000, b"\xb0" + bytes(5), 93, 4, 0, 0), "hvc1.1.6.L93.B0"),
        (HevcConfig(0, 1, 2, 0x20000000, b"\xb0" + bytes(5), 120, 4, 0, 0), "hvc1.2.4.H120.B0"),
        (HevcConfig(1, 0, 1, 0x60000000, bytes(6), 93, 4, 0, 0), "hvc1.A1.6.L93"),
        (HevcConfig(0, 0, 1, 0x60000000, b"\xb0\x00\x01" + bytes(3), 93, 4, 0, 0),
         "hvc1.1.6.L93.B0.00.01"),
    ],
)  # fmt: skip
def test_codecs_string(cfg: HevcConfig, expected: str) -> None:
    assert hevc.codec_string(cfg) == expected


def test_a_record_without_sps_has_no_size() -> None:
    cfg = hevc.parse_hvcc(hvcc(VPS, PPS))
    assert (cfg.width, cfg.height) == (0, 0)


def test_length_size_is_normalised_to_four_bytes() -> None:
    two = hvcc(VPS, SPS, PPS, length_size=2)
    assert hevc.parse_hvcc(two).length_size == 2
    four = hevc.normalize_hvcc(two)
    assert four == hvcc(VPS, SPS, PPS)
    assert hevc.normalize_hvcc(four) is four


@pytest.mark.parametrize(
    ("record", "error"),
    [
        pytest.param(_HEADER[:10], "truncated", id="short-header"),
        pytest.param(b"\x02" + hvcc(VPS)[1:], "configurationVersion 2", id="version"),
        pytest.param(_HEADER + b"\x01\xa0\x00", "array is truncated", id="array"),
        pytest.param(_HEADER + b"\x01\xa0\x00\x01\x00", "NAL unit is truncated", id="nal"),
        pytest.param(_HEADER + b"\x01\xa0\x00\x01\x00\x09ab", "past the end", id="nal-size"),
        pytest.param(hvcc(SPS[:12]), "truncated", id="sps"),
    ],
)
def test_malformed_records_are_codec_errors(record: bytes, error: str) -> None:
    with pytest.raises(CodecError, match=error):
        hevc.parse_hvcc(record)
