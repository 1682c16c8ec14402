"""RTP access units (as aiortc's depacketizers give them) → neutral tracks and frames,
and Strom's frames back to Annex B for sending over WebRTC."""

from __future__ import annotations

import struct

import pytest

from strom.errors import CodecError
from strom.media.h264 import annexb_parameter_sets, annexb_to_avcc, avcc_to_annexb, build_avcc
from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID, Codec, Frame, Track
from strom.media.opus import parse_dops
from strom.media.rtp_frames import RtpFrames

#: an SPS and PPS of x264 (High, 320x180)
SPS = bytes.fromhex("6764000dacd941419f9f0110000003001000000303c0f1429960")
PPS = bytes.fromhex("68ef8fcbfdf8f8")

START = b"\x00\x00\x00\x01"
IDR = bytes((0x65, 0x88, 0x84, 0x00, 0x33))
SLICE = bytes((0x41, 0x9A, 0x02, 0x0C))
#: a CELT fullband 20 ms stereo frame's TOC byte, and some payload
OPUS = bytes((0xFC, 0xFF, 0xFE))


def _avcc(*nals: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(n)) + n for n in nals)


def test_keyframe_with_parameter_sets_makes_the_track() -> None:
    frames = RtpFrames()
    items = frames.video(START + SPS + START + PPS + b"\x00\x00\x01" + IDR, 3000)
    track, frame = items
    assert isinstance(track, Track)
    assert track.codec is Codec.H264
    assert (track.width, track.height, track.timescale) == (320, 180, 90_000)
    assert track.codec_string == "avc1.64000d"
    assert frame == Frame(VIDEO_TRACK_ID, 3000, 3000, True, _avcc(SPS, PPS, IDR))
    # the next picture: a frame only, not a keyframe
    assert frames.video(START + SLICE, 6000) == [
        Frame(VIDEO_TRACK_ID, 6000, 6000, False, _avcc(SLICE))
    ]
    # the same parameter sets again (before every IDR): no new track
    again = frames.video(START + SPS + START + PPS + START + IDR, 9000)
    assert [type(i) for i in again] == [Frame]


def test_video_before_its_parameter_sets_is_skipped() -> None:
    frames = RtpFrames()
    assert frames.video(START + SLICE, 0) == []
    assert frames.video(b"no start code", 0) == []
    assert frames.skipped == 2
    assert frames.last_error == "no Annex B start code"


def test_opus_track_is_known_before_its_first_packet() -> None:
    frames = RtpFrames()
    track = frames.expect_audio()
    assert track.id == AUDIO_TRACK_ID
    assert track.codec is Codec.OPUS
    assert (track.sample_rate, track.channels) == (48_000, 2)
    assert parse_dops(track.config).channels == 2
    assert frames.audio(OPUS, 960) == [Frame(AUDIO_TRACK_ID, 960, 960, True, OPUS)]
    assert frames.audio(b"", 1920) == []
    assert frames.skipped == 1


def _vp8_keyframe(width: int, height: int) -> bytes:
    # RFC 6386 9.1: a 3-byte frame tag (bit 0 clear: key frame), the start code, the size
    return bytes((0x50, 0x42, 0x00)) + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)


def test_vp8_keyframes_carry_the_picture_size() -> None:
    frames = RtpFrames()
    assert frames.vp8(b"\x01\x00\x00inter", 0) == []  # nothing to decode it against
    key = _vp8_keyframe(640, 360) + b"data"
    track, frame = frames.vp8(key, 3000)
    assert isinstance(track, Track)
    assert (track.codec, track.width, track.height) == (Codec.VP8, 640, 360)
    assert frame == Frame(VIDEO_TRACK_ID, 3000, 3000, True, key)
    inter = b"\x01\x00\x00inter"
    assert frames.vp8(inter, 6000) == [Frame(VIDEO_TRACK_ID, 6000, 6000, False, inter)]
    # a new size: a new track
    assert isinstance(frames.vp8(_vp8_keyframe(320, 180), 9000)[0], Track)


def test_avcc_back_to_annexb_round_trips() -> None:
    avcc = _avcc(SLICE, IDR)
    annexb = avcc_to_annexb(avcc, annexb_parameter_sets(_record()))
    assert annexb == START + SPS + START + PPS + START + SLICE + START + IDR
    assert annexb_to_avcc(annexb) == _avcc(SPS, PPS, SLICE, IDR)
    with pytest.raises(CodecError):
        avcc_to_annexb(avcc[:-1])


def _record() -> bytes:
    return build_avcc(SPS, PPS)
