"""HEVC configuration: hvcC records from x265 (via PyAV's FFmpeg), the SPS picture size
and the RFC 6381 codecs string, byte by byte."""

from __future__ import annotations

import pytest

from strom.errors import CodecError
from strom.media import hevc
from strom.media.hevc import HevcConfig
from tests.media.hevc_records import HEADER, PPS, SPS, VPS, hvcc


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
        pytest.param(HEADER[:10], "truncated", id="short-header"),
        pytest.param(b"\x02" + hvcc(VPS)[1:], "configurationVersion 2", id="version"),
        pytest.param(HEADER + b"\x01\xa0\x00", "array is truncated", id="array"),
        pytest.param(HEADER + b"\x01\xa0\x00\x01\x00", "NAL unit is truncated", id="nal"),
        pytest.param(HEADER + b"\x01\xa0\x00\x01\x00\x09ab", "past the end", id="nal-size"),
        pytest.param(hvcc(SPS[:12]), "truncated", id="sps"),
    ],
)
def test_malformed_records_are_codec_errors(record: bytes, error: str) -> None:
    with pytest.raises(CodecError, match=error):
        hevc.parse_hvcc(record)
