"""Codec configuration records the demuxers build: Opus (OpusHead/dOps, packet
durations), VP8/VP9 frame headers and vpcC, AV1 av1C and sequence headers, ADTS, and the
H.264 VUI reorder depth. Real bitstreams from the MediaRecorder captures where possible."""

from __future__ import annotations

import pytest

from strom.errors import CodecError
from strom.media import aac, av1, h264, opus, tracks, vpx
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.containers.webm import WebmDemuxer
from strom.media.model import Frame, Track
from tests.media.container_media import DATA


def _first(name: str, track_id: int = 1) -> tuple[Track, list[Frame]]:
    demuxer = WebmDemuxer() if name.endswith(".webm") else Mp4Demuxer()
    events = demuxer.feed((DATA / name).read_bytes())
    track = next(e for e in events if isinstance(e, Track) and e.id == track_id)
    return track, [e for e in events if isinstance(e, Frame) and e.track_id == track_id]


# -- Opus -----------------------------------------------------------------------------------


def test_opus_head_becomes_big_endian_dops() -> None:
    head = b"OpusHead" + bytes((1, 2)) + (312).to_bytes(2, "little") + (44100).to_bytes(
        4, "little"
    ) + (-256).to_bytes(2, "little", signed=True) + b"\x00"  # fmt: skip
    dops = opus.dops_from_opus_head(head)
    assert dops == bytes((0, 2, 0x01, 0x38, 0, 0, 0xAC, 0x44, 0xFF, 0x00, 0))
    cfg = opus.parse_dops(dops)
    assert (cfg.channels, cfg.pre_skip, cfg.input_sample_rate, cfg.output_gain) == (
        2, 312, 44100, -256,
    )  # fmt: skip


def test_opus_surround_mapping_table_is_kept() -> None:
    mapping = bytes((4, 2, 0, 4, 1, 2, 3, 5))  # 6 channels: 4 streams, 2 coupled
    head = b"OpusHead" + bytes((1, 6)) + bytes(8) + b"\x01" + mapping
    cfg = opus.parse_dops(opus.dops_from_opus_head(head))
    assert (cfg.mapping_family, cfg.mapping) == (1, mapping)
    with pytest.raises(CodecError, match="mapping table"):
        opus.parse_opus_head(head[:-1])


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"OpusTags" + bytes(11), "not an OpusHead"),
        (b"OpusHead" + bytes((0x10, 2)) + bytes(9), "version"),
        (b"OpusHead" + bytes((1, 0)) + bytes(9), "no channels"),
        (b"OpusHead" + bytes((1, 3)) + bytes(9), "at most 2 channels"),
    ],
)
def test_bad_opus_heads(head: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        opus.parse_opus_head(head)


@pytest.mark.parametrize(
    ("packet", "samples"),
    [
        (bytes((0x00 << 3,)), 480),  # SILK NB 10 ms
        (bytes((0x03 << 3,)), 2880),  # SILK NB 60 ms
        (bytes((13 << 3,)), 960),  # hybrid FB 20 ms
        (bytes((16 << 3,)), 120),  # CELT NB 2.5 ms
        (bytes((31 << 3 | 1,)), 1920),  # CELT FB 20 ms, two frames (code 1)
        (bytes((31 << 3 | 3, 0x03)), 2880),  # code 3: three 20 ms frames
    ],
)
def test_opus_packet_durations(packet: bytes, samples: int) -> None:
    assert opus.packet_samples(packet) == samples


def test_opus_packets_beyond_120_ms_are_invalid() -> None:
    with pytest.raises(CodecError):
        opus.packet_samples(bytes((3 << 3 | 3, 3)))  # three 60 ms frames
    with pytest.raises(CodecError):
        opus.packet_samples(b"")


# -- VP8, VP9 -------------------------------------------------------------------------------


def test_vp8_key_frames_and_size_from_chromium() -> None:
    _, frames = _first("mediarecorder_vp8_opus.webm")
    assert vpx.vp8_is_keyframe(frames[0].data)
    assert vpx.vp8_picture_size(frames[0].data) == (320, 240)
    assert not vpx.vp8_is_keyframe(frames[1].data)
    with pytest.raises(CodecError):
        vpx.vp8_picture_size(frames[1].data)


def test_vp9_header_from_chromium() -> None:
    _, frames = _first("mediarecorder_vp9_opus.webm")
    header = vpx.parse_vp9_header(frames[0].data)
    assert header == vpx.Vp9Header(0, True, 8, 2, True, (1, 1), 320, 240)  # BT.709, full
    assert not vpx.parse_vp9_header(frames[1].data).keyframe
    vpcc = vpx.build_vpcc(header)
    assert vpcc == bytes((0, 20, 0x81, 2, 2, 1, 0, 0))  # level 2, full range, BT.709
    assert vpx.vp9_codec_string(vpcc) == "vp09.00.20.08"


def test_vp9_profile_2_ten_bit_key_frame() -> None:
    # frame_marker 2, profile 2 (low 0, high 1), show_existing 0, key frame, show, no
    # error resilience, sync code, 10 bits, BT.709, studio range, 1280x720
    bits = "10010010" + f"{0x498342:024b}" + "00100"
    bits += f"{1279:016b}{719:016b}"
    frame = int(bits.ljust(-(-len(bits) // 8) * 8, "0"), 2).to_bytes(-(-len(bits) // 8), "big")
    header = vpx.parse_vp9_header(frame)
    assert (header.profile, header.bit_depth, header.width, header.height) == (2, 10, 1280, 720)
    assert vpx.vp9_codec_string(vpx.build_vpcc(header)) == "vp09.02.31.10"


def test_vp9_levels_and_matroska_features() -> None:
    assert vpx.vp9_level(320, 240) == 20
    assert vpx.vp9_level(1920, 1080) == 40
    assert vpx.vp9_level(3840, 2160) == 50
    assert vpx.matroska_vp9_level(bytes((1, 1, 0, 2, 1, 31))) == 31
    assert vpx.matroska_vp9_level(b"") is None
    with pytest.raises(CodecError, match="frame marker"):
        vpx.parse_vp9_header(b"\x00" * 10)


def test_an_invalid_vpcc_level_is_replaced_for_the_picture_size() -> None:
    track = tracks.vp9_track(bytes((0, 0, 0x80, 2, 2, 2, 0, 0)), 1280, 720, 1000)
    assert track.codec_string == "vp09.00.31.08"


# -- AV1 ------------------------------------------------------------------------------------


def test_av1_sequence_header_gives_chromiums_own_av1c() -> None:
    """Strom's av1C from the key frame's sequence header is byte for byte the one
    Chromium's MP4 muxer writes."""
    track, frames = _first("mediarecorder_av1_opus.mp4")
    cfg = av1.config_from_temporal_unit(frames[0].data)
    assert cfg is not None
    assert (cfg.width, cfg.height) == (320, 240)
    assert av1.build_av1c(cfg) == track.config
    assert av1.codec_string(cfg) == "av01.0.00M.08"
    assert av1.config_from_temporal_unit(frames[1].data) is None  # no sequence header


def test_av1c_round_trip_and_errors() -> None:
    cfg = av1.Av1Config(profile=2, level=13, tier=1, bit_depth=12, subsampling_y=0)
    record = av1.build_av1c(cfg)
    assert av1.parse_av1c(record) == cfg
    assert av1.codec_string(cfg) == "av01.2.13H.12"
    with pytest.raises(CodecError, match="marker"):
        av1.parse_av1c(b"\x01\x00\x00\x00")
    with pytest.raises(CodecError, match="runs past"):
        av1.obus(b"\x0a\x05\x00")  # a sequence header OBU claiming 5 bytes, holding 1


# -- AAC in ADTS, H.264 ---------------------------------------------------------------------


def test_adts_header() -> None:
    # AAC-LC, 48 kHz (index 3), stereo, no CRC, 200-byte frame
    header = bytes((0xFF, 0xF1, 0x4C, 0x80, 200 >> 3, (200 & 7) << 5 | 0x1F, 0xFC))
    adts = aac.parse_adts_header(header + bytes(193))
    assert (adts.object_type, adts.header_size, adts.frame_size) == (2, 7, 200)
    assert aac.adts_audio_specific_config(adts) == b"\x11\x90"
    with pytest.raises(CodecError, match="syncword"):
        aac.parse_adts_header(b"\x00" * 7)
    with pytest.raises(CodecError, match="channel configuration 0"):
        aac.parse_adts_header(bytes((0xFF, 0xF1, 0x4C, 0x00)) + header[4:])


def test_h264_reorder_depth_and_access_unit_scan() -> None:
    track, frames = _first("mediarecorder_h264_opus.webm")
    sps = h264.parse_avcc(track.config).sps[0]
    assert h264.parse_sps(sps).max_num_reorder_frames == 0  # Chromium: no B-frames
    scan = h264.scan_access_unit(frames[0].data)
    assert scan.idr
    assert scan.sps == sps
    assert not h264.scan_access_unit(frames[1].data).idr
