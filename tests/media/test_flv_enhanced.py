"""Enhanced RTMP in FLV: HEVC, AV1 and Opus from PyAV's FFmpeg 8 (its FLV muxer writes
the extended header), checked against FFmpeg's own demuxer and decoded from Strom's fMP4;
and the ModEx and multitrack layouts byte by byte."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import av
import pytest

from strom.errors import ProtocolError
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.flv import TAG_AUDIO, TAG_VIDEO, FlvDemuxer, FlvReader, UnsupportedFlvCodec
from strom.media.fmp4 import FragmentMuxer
from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID, Codec, Frame, Track
from tests.helpers.enhanced_rtmp import write_flv
from tests.media.hevc_records import PPS, SPS, VPS, hvcc

SECONDS = 1.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("enhanced")
    made = {}
    for name, video, audio in (("hevc", "libx265", "libopus"), ("av1", "libsvtav1", "aac")):
        made[name] = folder / f"{name}.flv"
        write_flv(str(made[name]), video, audio, seconds=SECONDS)
    return made


def _demux(data: bytes, demuxer: FlvDemuxer | None = None) -> tuple[list[Track], list[Frame]]:
    demuxer = demuxer or FlvDemuxer()
    found_tracks: list[Track] = []
    frames: list[Frame] = []
    for tag in FlvReader().feed(data):
        if tag.tag_type == TAG_VIDEO:
            items = demuxer.video(tag.timestamp, tag.payload)
        elif tag.tag_type == TAG_AUDIO:
            items = demuxer.audio(tag.timestamp, tag.payload)
        else:
            continue
        for item in items:
            (found_tracks if isinstance(item, Track) else frames).append(item)  # type: ignore[arg-type]
    return found_tracks, frames


@pytest.mark.parametrize(
    ("name", "video", "audio"),
    [("hevc", "hvc1.1.6.L60.90", "opus"), ("av1", "av01.0.00M.08", "mp4a.40.2")],
)
def test_frames_match_ffmpeg_and_decode_from_fmp4(
    clips: dict[str, Path], name: str, video: str, audio: str
) -> None:
    data = clips[name].read_bytes()
    found, frames = _demux(data)
    assert [t.codec_string for t in found] == [video, audio]
    assert (found[0].width, found[0].height) == (320, 240)
    # FFmpeg's demuxer (PyAV's 8.x reads Enhanced RTMP) is the reference.
    with av.open(str(clips[name])) as reference:
        packets = [
            (p.stream.type, p.dts, p.pts, p.is_keyframe)
            for p in reference.demux()
            if p.size and p.stream.type == "video"
        ]
    ours = [("video", f.dts, f.pts, f.keyframe) for f in frames if f.track_id == VIDEO_TRACK_ID]
    assert ours == packets
    assert any(f.track_id == AUDIO_TRACK_ID for f in frames)
    # Into CMAF as sent (hvc1+hvcC / av01+av1C, Opus / mp4a), and FFmpeg decodes every picture.
    muxer = FragmentMuxer(found)
    fmp4 = muxer.init_segment() + b"".join(muxer.add_frame(f) for f in frames)
    with av.open(io.BytesIO(fmp4)) as played:
        pictures = sum(1 for _ in played.decode(video=0))
    assert pictures == int(SECONDS * 30)


# -- hand-made payloads ------------------------------------------------------------------

NALS = struct.pack(">I", 3) + b"\x26\x01\xaf"  # one 3-byte NAL unit (an IDR slice header)
HEVC_START = b"\x90hvc1" + hvcc(VPS, SPS, PPS)


def _hevc() -> FlvDemuxer:
    demuxer = FlvDemuxer()
    [track] = demuxer.video(0, HEVC_START)
    assert isinstance(track, Track)
    assert track.codec is Codec.HEVC
    return demuxer


def test_hevc_composition_time_only_in_coded_frames() -> None:
    demuxer = _hevc()
    # CodedFrames: SI24 composition time (-33 here), then the NAL units.
    assert demuxer.video(100, b"\x91hvc1\xff\xff\xdf" + NALS) == [
        Frame(VIDEO_TRACK_ID, 100, 67, True, NALS)
    ]
    # CodedFramesX: no composition time.
    assert demuxer.video(133, b"\xa3hvc1" + NALS) == [Frame(VIDEO_TRACK_ID, 133, 133, False, NALS)]
    # The same record again, SequenceEnd and a command frame (metadata) yield nothing.
    assert demuxer.video(150, HEVC_START) == []
    assert demuxer.video(150, b"\x92hvc1") == []
    assert demuxer.video(150, b"\xd4hvc1\x02\x00\x09colorInfo\x03\x00\x00\x09") == []


def test_hevc_as_legacy_codec_id_12_matches_enhanced() -> None:
    # Encoders sent HEVC as codec id 12 with AVC's layout before Enhanced RTMP.
    legacy, enhanced = FlvDemuxer(), _hevc()
    assert legacy.video(0, b"\x1c\x00\x00\x00\x00" + hvcc(VPS, SPS, PPS)) == FlvDemuxer().video(
        0, HEVC_START
    )
    assert legacy.video(40, b"\x1c\x01\x00\x00\x21" + NALS) == enhanced.video(
        40, b"\x91hvc1\x00\x00\x21" + NALS
    )


def test_hevc_frames_before_the_sequence_start_are_skipped() -> None:
    demuxer = FlvDemuxer()
    assert demuxer.video(0, b"\xa3hvc1" + NALS) == []
    assert demuxer.skipped_frames == 1


def test_hevc_two_byte_lengths_are_normalised() -> None:
    demuxer = FlvDemuxer()
    [track] = demuxer.video(0, b"\x90hvc1" + hvcc(VPS, SPS, PPS, length_size=2))
    assert isinstance(track, Track)
    assert track.config == hvcc(VPS, SPS, PPS)
    [frame] = demuxer.video(0, b"\x93hvc1\x00\x03\x26\x01\xaf")
    assert isinstance(frame, Frame)
    assert frame.data == NALS


def test_hevc_size_from_metadata_when_the_record_has_no_sps() -> None:
    demuxer = FlvDemuxer()
    demuxer.declared_size = (640, 360)
    [track] = demuxer.video(0, b"\x90hvc1" + hvcc(VPS, PPS))
    assert isinstance(track, Track)
    assert (track.width, track.height) == (640, 360)


# AV1: an av1C without configOBUs (so no size), and a key frame: a temporal delimiter, a
# sequence header (320x240, Main, level 0) and a frame OBU stand-in.
AV1C = bytes.fromhex("81000c00")
SEQUENCE_HEADER = bytes.fromhex("0a0b000000043cffbc02f80040")
AV1_KEY = b"\x12\x00" + SEQUENCE_HEADER + b"\x32\x01\x00"


def test_av1_waits_for_the_key_frame_sequence_header() -> None:
    demuxer = FlvDemuxer()
    assert demuxer.video(0, b"\x90av01" + AV1C) == []
    assert demuxer.video(0, b"\xa1av01" + b"\x32\x01\x00") == []  # not a key frame
    # CodedFrames of av01 have no composition time; the temporal delimiter is dropped.
    track, frame = demuxer.video(33, b"\x91av01" + AV1_KEY)
    assert isinstance(track, Track)
    assert track.codec_string == "av01.0.00M.08"
    assert (track.width, track.height) == (320, 240)
    assert frame == Frame(VIDEO_TRACK_ID, 33, 33, True, AV1_KEY[2:])


def test_av1_record_with_its_sequence_header() -> None:
    [track] = FlvDemuxer().video(0, b"\x90av01" + AV1C + SEQUENCE_HEADER)
    assert isinstance(track, Track)
    assert (track.width, track.height) == (320, 240)


OPUS_HEAD = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"


def test_opus_and_aac_by_fourcc() -> None:
    demuxer = FlvDemuxer()
    [opus] = demuxer.audio(0, b"\x90Opus" + OPUS_HEAD)
    assert isinstance(opus, Track)
    assert (opus.codec_string, opus.channels) == ("opus", 2)
    assert demuxer.audio(0, b"\x94Opus\x01\x02\x00\x00\x00\x03") == []  # channel layout
    assert demuxer.audio(20, b"\x91Opus\xfc\xff\xfe") == [
        Frame(AUDIO_TRACK_ID, 20, 20, True, b"\xfc\xff\xfe")
    ]
    legacy = FlvDemuxer()
    assert FlvDemuxer().audio(0, b"\x90mp4a\x12\x10") == legacy.audio(0, b"\xaf\x00\x12\x10")


def test_modex_wrapper_is_skipped() -> None:
    demuxer = _hevc()
    # ModEx: [size-1 = 2] three bytes of data, [ModExType 0 | CodedFramesX].
    assert demuxer.video(0, b"\x97\x02\x00\x01\x02\x03hvc1" + NALS) == [
        Frame(VIDEO_TRACK_ID, 0, 0, True, NALS)
    ]


def _track(track_id: int, body: bytes, fourcc: bytes = b"") -> bytes:
    return fourcc + bytes((track_id,)) + len(body).to_bytes(3, "big") + body


def test_multitrack_keeps_the_default_track() -> None:
    demuxer = FlvDemuxer()
    # OneTrack (0 << 4) | SequenceStart, then the FourCC and track id 0.
    [track] = demuxer.video(0, b"\x96\x00hvc1\x00" + hvcc(VPS, SPS, PPS))
    assert isinstance(track, Track)
    # ManyTracks (1 << 4) | CodedFramesX: tracks 1 and 0, each with its size.
    payload = b"\x96\x13hvc1" + _track(1, b"\x00\x00\x00\x01\x02") + _track(0, NALS)
    assert demuxer.video(40, payload) == [Frame(VIDEO_TRACK_ID, 40, 40, True, NALS)]
    # ManyTracksManyCodecs (2 << 4): a FourCC per track.
    payload = b"\x96\x23" + _track(2, b"\x12\x00", b"av01") + _track(0, NALS, b"hvc1")
    assert demuxer.video(80, payload) == [Frame(VIDEO_TRACK_ID, 80, 80, True, NALS)]
    assert demuxer.notices == [
        "video track 1 ('hvc1') is ignored: Strom takes the default track (0) of a"
        " multitrack stream",
        "video track 2 ('av01') is ignored: Strom takes the default track (0) of a"
        " multitrack stream",
    ]


def test_multitrack_audio_keeps_the_default_track() -> None:
    demuxer = FlvDemuxer()
    payload = b"\x95\x10Opus" + _track(0, OPUS_HEAD) + _track(1, OPUS_HEAD)
    [track] = demuxer.audio(0, payload)
    assert isinstance(track, Track)
    assert track.codec is Codec.OPUS
    assert len(demuxer.notices) == 1


@pytest.mark.parametrize(
    ("kind", "payload", "error"),
    [
        pytest.param("video", b"\x90hvc", "no FourCC", id="fourcc"),
        pytest.param("video", b"\x91hvc1\x00", "truncated", id="cts"),
        pytest.param("video", b"\x97\x05\x00", "ModEx data is truncated", id="modex"),
        pytest.param("video", b"\x97" + b"\x00\x00\x07" * 5, "nests more", id="modex-chain"),
        pytest.param("video", b"\x96", "multitrack video payload is truncated", id="mt"),
        pytest.param("video", b"\x96\x36hvc1", "type 3 is unknown", id="mt-type"),
        pytest.param("video", b"\x96\x16hvc1", "packet type 6 is invalid", id="mt-nested"),
        pytest.param("video", b"\x96\x13hvc1\x00\x00\x00\x09ab", "runs past", id="mt-size"),
        pytest.param("video", b"\x96\x13hvc1\x00\x00", "truncated", id="mt-short"),
        pytest.param("video", b"\x98hvc1", "packet type 8", id="video-type"),
        pytest.param("audio", b"\x95\x10mp4a\x00", "truncated", id="audio-mt"),
        pytest.param("audio", b"\x96mp4a", "packet type 6", id="audio-type"),
        pytest.param("audio", b"\x90Opus" + OPUS_HEAD[:10], "OpusHead", id="opus-head"),
    ],
)
def test_malformed_enhanced_payloads(kind: str, payload: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):  # FlvError, or CodecError for a record
        getattr(FlvDemuxer(), kind)(0, payload)


def test_refused_codecs_are_unsupported_media() -> None:
    with pytest.raises(UnsupportedFlvCodec, match=r"'vp09' \(VP9, Enhanced RTMP\); Strom accepts"):
        FlvDemuxer().video(0, b"\x90vp09\x01\x00")
    with pytest.raises(UnsupportedFlvCodec, match=r"'ac-3' \(AC-3"):
        FlvDemuxer().audio(0, b"\x90ac-3\x00")


def test_hevc_fragmented_mp4_shares_the_hevc_track(clips: dict[str, Path]) -> None:
    # The browser and HTTP ingests' MP4 demuxer builds the same track from an hvc1 entry.
    found, frames = _demux(clips["hevc"].read_bytes())
    muxer = FragmentMuxer(found[:1])
    fmp4 = muxer.init_segment() + b"".join(
        muxer.add_frame(f) for f in frames if f.track_id == VIDEO_TRACK_ID
    )
    items = Mp4Demuxer().feed(fmp4)
    [track] = [i for i in items if isinstance(i, Track)]
    assert (track.codec_string, track.config) == (found[0].codec_string, found[0].config)
    assert sum(isinstance(i, Frame) for i in items) == int(SECONDS * 30)
