"""AudioSpecificConfig parsing: configs from real ffmpeg and hand-assembled edge cases."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from strom.errors import CodecError
from strom.media.aac import AacConfig, codec_string, parse_audio_specific_config
from tests.helpers import need_tool


def _asc(*fields: tuple[int, int]) -> bytes:
    """Pack (value, bit width) fields MSB first, zero-padded to whole bytes."""
    value = bits = 0
    for field, width in fields:
        assert 0 <= field < 1 << width
        value = value << width | field
        bits += width
    pad = -bits % 8
    return (value << pad).to_bytes((bits + pad) // 8, "big")


GA = ((0, 1), (0, 1), (0, 1))  # GASpecificConfig: 1024-sample frames, no core coder, no ext


def _ffmpeg_asc(tmp_path: Path, rate: int, channels: int) -> bytes:
    """The AudioSpecificConfig ffmpeg's AAC encoder writes, read back with ffprobe."""
    path = tmp_path / f"{rate}-{channels}.m4a"
    subprocess.run(
        [
            need_tool("ffmpeg"), "-v", "error", "-y",
            "-f", "lavfi", "-i", f"sine=sample_rate={rate}",
            "-t", "0.1", "-ac", str(channels), "-c:a", "aac", str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    dump = subprocess.run(
        [
            need_tool("ffprobe"), "-v", "error", "-show_entries", "stream=extradata", "-show_data",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout  # fmt: skip
    # Hex dump lines: "00000000: 1190 56e5 00    ..V..".
    hexes = re.findall(r"^[0-9a-f]{8}: ((?:[0-9a-f]{2,4} )+)", dump, re.MULTILINE)
    return bytes.fromhex("".join(hexes).replace(" ", ""))


@pytest.mark.parametrize(
    ("rate", "channels", "expected"),
    [(44100, 2, AacConfig(2, 44100, 2)), (48000, 1, AacConfig(2, 48000, 1))],
)
def test_configs_from_ffmpeg(tmp_path: Path, rate: int, channels: int, expected: AacConfig) -> None:
    cfg = parse_audio_specific_config(_ffmpeg_asc(tmp_path, rate, channels))
    assert cfg == expected
    assert codec_string(cfg) == "mp4a.40.2"


def test_lc_44100_stereo() -> None:
    assert parse_audio_specific_config(b"\x12\x10") == AacConfig(2, 44100, 2, 1024)


def test_he_aac_reports_the_sbr_output_rate() -> None:
    # Object type 5, core 24 kHz stereo, SBR at 48 kHz, core object type AAC-LC.
    asc = _asc((5, 5), (6, 4), (2, 4), (3, 4), (2, 5), *GA)
    cfg = parse_audio_specific_config(asc)
    assert cfg == AacConfig(object_type=5, sample_rate=48000, channels=2, samples_per_frame=2048)
    assert codec_string(cfg) == "mp4a.40.5"


def test_he_aac_v2_parametric_stereo_outputs_two_channels() -> None:
    asc = _asc((29, 5), (6, 4), (1, 4), (3, 4), (2, 5), *GA)
    cfg = parse_audio_specific_config(asc)
    assert (cfg.object_type, cfg.sample_rate, cfg.channels) == (29, 48000, 2)
    assert codec_string(cfg) == "mp4a.40.29"


def test_backward_compatible_sbr_signalling() -> None:
    # AAC-LC 22.05 kHz stereo, then sync extension 0x2b7: SBR present at 44.1 kHz.
    asc = _asc((2, 5), (7, 4), (2, 4), *GA, (0x2B7, 11), (5, 5), (1, 1), (4, 4))
    cfg = parse_audio_specific_config(asc)
    assert cfg == AacConfig(object_type=2, sample_rate=44100, channels=2, samples_per_frame=2048)


def test_escaped_object_type_and_explicit_frequency() -> None:
    # Object type 31 escapes to 32 + 6 bits; frequency index 15 carries 24 bits.
    asc = _asc((31, 5), (42 - 32, 6), (15, 4), (37800, 24), (2, 4))
    cfg = parse_audio_specific_config(asc)
    assert (cfg.object_type, cfg.sample_rate, cfg.channels) == (42, 37800, 2)


def test_960_sample_frames() -> None:
    asc = _asc((2, 5), (3, 4), (1, 4), (1, 1), (0, 1), (0, 1))
    assert parse_audio_specific_config(asc).samples_per_frame == 960


def test_channel_configuration_7_is_eight_channels() -> None:
    assert parse_audio_specific_config(_asc((2, 5), (3, 4), (7, 4), *GA)).channels == 8


def test_program_config_element_counts_channels() -> None:
    # channelConfiguration 0: a PCE with front C + L/R (SCE, CPE), back L/R (CPE) and LFE.
    pce = (
        (0, 4),  # element_instance_tag
        (1, 2),  # object_type
        (3, 4),  # sampling_frequency_index
        (2, 4),  # num_front_channel_elements
        (0, 4),  # num_side_channel_elements
        (1, 4),  # num_back_channel_elements
        (1, 2),  # num_lfe_channel_elements
        (0, 3),  # num_assoc_data_elements
        (0, 4),  # num_valid_cc_elements
        (0, 1),  # mono_mixdown_present
        (0, 1),  # stereo_mixdown_present
        (0, 1),  # matrix_mixdown_idx_present
        (0, 1),  # front 0: SCE
        (0, 4),
        (1, 1),  # front 1: CPE
        (0, 4),
        (1, 1),  # back 0: CPE
        (1, 4),
    )
    asc = _asc((2, 5), (3, 4), (0, 4), *GA, *pce)
    assert parse_audio_specific_config(asc).channels == 6


@pytest.mark.parametrize(
    "asc",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x12", id="one-byte"),
        pytest.param(_asc((0, 5), (4, 4), (2, 4), *GA), id="null-object-type"),
        pytest.param(_asc((2, 5), (13, 4), (2, 4), *GA), id="reserved-frequency-index"),
        pytest.param(_asc((2, 5), (15, 4), (0, 24), (2, 4), *GA), id="zero-explicit-rate"),
        pytest.param(_asc((2, 5), (4, 4), (8, 4), *GA), id="reserved-channel-config"),
        pytest.param(_asc((2, 5), (4, 4), (0, 4), *GA), id="pce-missing"),
        pytest.param(_asc((5, 5), (6, 4), (2, 4)), id="he-aac-truncated"),
    ],
)
def test_malformed_configs(asc: bytes) -> None:
    with pytest.raises(CodecError):
        parse_audio_specific_config(asc)
