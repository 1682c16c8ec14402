"""FLV payloads and streams, checked against files and packet lists from real ffmpeg."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from strom.errors import CodecError, FlvError, LimitExceeded, LocalProtocolError
from strom.media.flv import (
    TAG_AUDIO,
    TAG_SCRIPT,
    TAG_VIDEO,
    FlvDemuxer,
    FlvReader,
    FlvTag,
    PayloadTooLarge,
    audio_frame,
    audio_sequence_header,
    metadata,
    video_frame,
    video_sequence_header,
)
from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID, Codec, Frame, Track, TrackKind
from tests.helpers import make_media, need_tool


def _packets(path: Path, stream: str) -> list[dict[str, Any]]:
    """ffprobe's packet list for one stream of ``path``: the reference demuxer."""
    out = subprocess.run(
        [
            need_tool("ffprobe"), "-v", "error", "-select_streams", stream, "-show_packets",
            "-show_entries", "packet=pts,dts,size,flags", "-of", "json", str(path),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout  # fmt: skip
    packets: list[dict[str, Any]] = json.loads(out)["packets"]
    return packets


@pytest.fixture(scope="module")
def av_flv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of 320x180 30 fps H.264 High with B-frames (-bf 2, -g 30) + AAC 44.1 kHz."""
    return make_media(tmp_path_factory.mktemp("flv") / "av.flv", seconds=3, size="320x180").path


def _demux(tags: list[FlvTag], demuxer: FlvDemuxer | None = None) -> list[Track | Frame]:
    demuxer = demuxer or FlvDemuxer()
    events: list[Track | Frame] = []
    for tag in tags:
        if tag.tag_type == TAG_VIDEO:
            events += demuxer.video(tag.timestamp, tag.payload)
        elif tag.tag_type == TAG_AUDIO:
            events += demuxer.audio(tag.timestamp, tag.payload)
    return events


# -- FlvReader ---------------------------------------------------------------------------


def test_reader_gives_the_same_tags_whole_and_byte_by_byte(av_flv: Path) -> None:
    data = av_flv.read_bytes()
    whole = FlvReader()
    tags = whole.feed(data)
    assert whole.header is not None
    assert (whole.header.has_audio, whole.header.has_video) == (True, True)
    assert tags[0].tag_type == TAG_SCRIPT  # onMetaData comes first
    reader = FlvReader()
    trickled = [tag for i in range(len(data)) for tag in reader.feed(data[i : i + 1])]
    assert trickled == tags
    # Every byte of the file is in a header, a tag or a PreviousTagSize.
    assert 9 + 4 + sum(11 + len(t.payload) + 4 for t in tags) == len(data)


def test_reader_rejects_what_is_not_flv() -> None:
    with pytest.raises(FlvError):
        FlvReader().feed(b"GET / HTTP/1.1\r\n")
    reader = FlvReader()
    assert reader.feed(b"F") == []
    with pytest.raises(FlvError):
        reader.feed(b"X")


HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + bytes(4)


def _tag(tag_type: int, timestamp: int, payload: bytes, previous: int | None = None) -> bytes:
    header = struct.pack(">I", tag_type << 24 | len(payload))
    header += struct.pack(">I", (timestamp & 0xFFFFFF) << 8 | timestamp >> 24) + bytes(3)
    return header + payload + struct.pack(">I", 11 + len(payload) if previous is None else previous)


def test_reader_extended_timestamps() -> None:
    tags = FlvReader().feed(HEADER + _tag(TAG_AUDIO, 0x12345678, b"\xaf\x01x"))
    assert tags == [FlvTag(TAG_AUDIO, 0x12345678, b"\xaf\x01x")]


def test_reader_bounds_the_tag_size_before_buffering_it() -> None:
    reader = FlvReader(max_tag_size=1000)
    assert reader.feed(HEADER + _tag(TAG_VIDEO, 0, bytes(1000))) != []
    with pytest.raises(LimitExceeded):
        reader.feed(_tag(TAG_VIDEO, 0, bytes(1001))[:11])
    with pytest.raises(LocalProtocolError):
        reader.feed(b"more")


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param(_tag(TAG_VIDEO, 0, b"\x17\x02\x00\x00\x00", previous=7), id="previous-size"),
        pytest.param(_tag(7, 0, b"x"), id="unknown-type"),
        pytest.param(_tag(TAG_VIDEO | 0x20, 0, b"x"), id="encrypted"),
    ],
)
def test_reader_rejects_broken_tags(tag: bytes) -> None:
    with pytest.raises(FlvError):
        FlvReader().feed(HEADER + tag)


# -- FlvDemuxer against ffprobe ----------------------------------------------------------


def test_demuxer_frames_match_ffprobe_packets(av_flv: Path) -> None:
    demuxer = FlvDemuxer()
    events = _demux(FlvReader().feed(av_flv.read_bytes()), demuxer)
    tracks = [e for e in events if isinstance(e, Track)]
    video = [e for e in events if isinstance(e, Frame) and e.track_id == VIDEO_TRACK_ID]
    audio = [e for e in events if isinstance(e, Frame) and e.track_id == AUDIO_TRACK_ID]
    assert [t.id for t in tracks] == [VIDEO_TRACK_ID, AUDIO_TRACK_ID]
    v, a = tracks
    assert (v.kind, v.codec, v.timescale, v.width, v.height) == (
        TrackKind.VIDEO,
        Codec.H264,
        1000,
        320,
        180,
    )
    assert v.codec_string.startswith("avc1.64")
    assert (a.kind, a.codec, a.sample_rate, a.codec_string) == (
        TrackKind.AUDIO,
        Codec.AAC,
        44100,
        "mp4a.40.2",
    )
    assert demuxer.skipped_frames == 0

    probed = _packets(av_flv, "v")
    assert len(video) == len(probed) == 90
    assert [(f.dts, f.pts, f.keyframe, len(f.data)) for f in video] == [
        (int(p["dts"]), int(p["pts"]), "K" in str(p["flags"]), int(p["size"])) for p in probed
    ]
    assert sum(f.keyframe for f in video) == 3  # -g 30 over 90 frames
    assert any(f.pts != f.dts for f in video)  # B-frames reorder
    probed = _packets(av_flv, "a")
    assert [(f.dts, len(f.data)) for f in audio] == [
        (int(p["dts"]), int(p["size"])) for p in probed
    ]


def test_round_trip_through_the_muxing_functions(av_flv: Path) -> None:
    events = _demux(FlvReader().feed(av_flv.read_bytes()))
    tracks = {e.id: e for e in events if isinstance(e, Track)}
    replay = FlvDemuxer()
    assert replay.video(0, video_sequence_header(tracks[VIDEO_TRACK_ID])) == [
        tracks[VIDEO_TRACK_ID]
    ]
    assert replay.audio(0, audio_sequence_header(tracks[AUDIO_TRACK_ID])) == [
        tracks[AUDIO_TRACK_ID]
    ]
    for frame in events:
        if isinstance(frame, Frame) and frame.track_id == VIDEO_TRACK_ID:
            assert replay.video(frame.dts, video_frame(frame)) == [frame]
        elif isinstance(frame, Frame):
            assert replay.audio(frame.dts, audio_frame(tracks[AUDIO_TRACK_ID], frame)) == [frame]


def test_sequence_headers_repeat_and_change(av_flv: Path) -> None:
    tags = FlvReader().feed(av_flv.read_bytes())
    header = next(t.payload for t in tags if t.tag_type == TAG_VIDEO)
    demuxer = FlvDemuxer()
    first = demuxer.video(0, header)
    assert len(first) == 1
    assert demuxer.video(500, header) == []  # a repeat (e.g. on reconnect) is not news
    level_bumped = header[:8] + b"\x1f" + header[9:]  # avcC AVCLevelIndication
    changed = demuxer.video(600, level_bumped)
    assert len(changed) == 1
    assert changed != first


def test_frames_before_the_sequence_header_are_counted(av_flv: Path) -> None:
    tags = [t for t in FlvReader().feed(av_flv.read_bytes()) if t.tag_type != TAG_SCRIPT]
    demuxer = FlvDemuxer()
    headers = tags[:2]  # ffmpeg writes both sequence headers first
    assert _demux(tags[2:12], demuxer) == []
    assert demuxer.skipped_frames == 10
    events = _demux(headers + tags[12:], demuxer)
    assert all(isinstance(e, Track) for e in events[:2])


def test_end_of_sequence_and_command_frames_yield_nothing(av_flv: Path) -> None:
    tags = FlvReader().feed(av_flv.read_bytes())
    assert tags[-1].payload[:2] == b"\x17\x02"  # ffmpeg ends with an AVC end of sequence
    demuxer = FlvDemuxer()
    assert demuxer.video(0, tags[-1].payload) == []
    assert demuxer.video(0, b"\x57\x00") == []  # frame type 5: video info/command
    assert demuxer.audio(0, b"") == []
    assert demuxer.video(0, b"") == []


# -- hand-made payloads ------------------------------------------------------------------

SPS = bytes.fromhex("6764000dacd941419f9f0110000003001000000303c0f1429960")
PPS = bytes.fromhex("68ef8fcbfdf8f800")


def _avcc(length_size: int = 4) -> bytes:
    return (
        bytes((1, 0x64, 0, 0x0D, 0xFC | (length_size - 1), 0xE1))
        + struct.pack(">H", len(SPS))
        + SPS
        + b"\x01"
        + struct.pack(">H", len(PPS))
        + PPS
    )


def _primed(length_size: int = 4) -> FlvDemuxer:
    demuxer = FlvDemuxer()
    assert len(demuxer.video(0, b"\x17\x00\x00\x00\x00" + _avcc(length_size))) == 1
    assert len(demuxer.audio(0, b"\xaf\x00\x12\x10")) == 1
    return demuxer


def test_negative_composition_time() -> None:
    frames = _primed().video(100, b"\x27\x01\xff\xff\xf6" + b"\x00\x00\x00\x01\x41")
    assert frames == [Frame(VIDEO_TRACK_ID, 100, 90, False, b"\x00\x00\x00\x01\x41")]


def test_two_byte_nal_lengths_are_normalised() -> None:
    demuxer = FlvDemuxer()
    (track,) = demuxer.video(0, b"\x17\x00\x00\x00\x00" + _avcc(2))
    assert isinstance(track, Track)
    assert track.config[4] & 3 == 3  # the record now declares the 4-byte lengths of frames
    (frame,) = demuxer.video(40, b"\x17\x01\x00\x00\x00" + b"\x00\x02\x65\x88\x00\x01\x06")
    assert isinstance(frame, Frame)
    assert frame.data == b"\x00\x00\x00\x02\x65\x88\x00\x00\x00\x01\x06"
    assert frame.keyframe


def test_timestamps_continue_across_the_32_bit_wrap() -> None:
    # RTMP 1.0 section 4: timestamps wrap after 2^32 ms; the timeline must not jump back.
    demuxer = _primed()
    near_end = 0xFFFFFFFF - 9
    dts = [
        frame.dts
        for stamp in (near_end, 5, near_end + 3)  # the last one arrives late, pre-wrap
        for frame in demuxer.audio(stamp, b"\xaf\x01a")
        if isinstance(frame, Frame)
    ]
    assert dts == [near_end, 0x100000005, near_end + 3]


def test_enhanced_rtmp_avc1_matches_legacy() -> None:
    legacy, enhanced = FlvDemuxer(), FlvDemuxer()
    # Ex-header byte: IsExHeader | FrameType << 4 | PacketType, then the FourCC.
    assert enhanced.video(0, b"\x90avc1" + _avcc()) == legacy.video(
        0, b"\x17\x00\x00\x00\x00" + _avcc()
    )
    nal = b"\x00\x00\x00\x02\x65\x88"
    assert enhanced.video(40, b"\x91avc1\x00\x00\x21" + nal) == legacy.video(
        40, b"\x17\x01\x00\x00\x21" + nal
    )
    assert enhanced.video(80, b"\xa3avc1" + nal) == [Frame(VIDEO_TRACK_ID, 80, 80, False, nal)]


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        pytest.param(b"\x22\x00\x00", "codec id 2 (Sorenson H.263)", id="h263"),
        pytest.param(b"\x14\x00\x00", "codec id 4 (On2 VP6)", id="vp6"),
        pytest.param(b"\x1d\x00\x00\x00\x00", "codec id 13", id="av1-legacy-id"),
        pytest.param(b"\x90vp09\x01\x00", "'vp09' (VP9", id="enhanced-vp9"),
        pytest.param(b"\x91XY\x00Z\x00", "unknown", id="enhanced-unknown"),
    ],
)
def test_unsupported_video_codecs_are_named(payload: bytes, named: str) -> None:
    with pytest.raises(FlvError, match="unsupported video codec") as info:
        FlvDemuxer().video(0, payload)
    assert named in str(info.value)


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        pytest.param(b"\x2f\xff\xfb", "MP3", id="mp3"),
        pytest.param(b"\xb6\x00", "Speex", id="speex"),
        pytest.param(b"\x3f\x00\x00", "Linear PCM", id="pcm"),
        pytest.param(b"\x90fLaC\x00", "'fLaC' (FLAC", id="enhanced-flac"),
    ],
)
def test_unsupported_audio_codecs_are_named(payload: bytes, named: str) -> None:
    with pytest.raises(FlvError, match="unsupported audio codec") as info:
        FlvDemuxer().audio(0, payload)
    assert named in str(info.value)


def test_ffmpeg_default_flv_codecs_are_refused(tmp_path: Path) -> None:
    # Plain `ffmpeg -f flv` picks Sorenson H.263 and MP3: a clear refusal, not garbage.
    path = tmp_path / "default.flv"
    subprocess.run(
        [
            need_tool("ffmpeg"), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x90",
            "-f", "lavfi", "-i", "sine", "-t", "0.5", "-c:a", "libmp3lame", str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    tags = FlvReader().feed(path.read_bytes())
    video = next(t for t in tags if t.tag_type == TAG_VIDEO)
    audio = next(t for t in tags if t.tag_type == TAG_AUDIO)
    with pytest.raises(FlvError, match=r"Sorenson H\.263"):
        FlvDemuxer().video(video.timestamp, video.payload)
    with pytest.raises(FlvError, match="MP3"):
        FlvDemuxer().audio(audio.timestamp, audio.payload)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\x17", id="no-packet-type"),
        pytest.param(b"\x17\x01\x00", id="no-composition-time"),
        pytest.param(b"\x17\x01\x00\x00\x00\x00\x00\x00\x09\x65", id="nal-overruns"),
        pytest.param(b"\x17\x01\x00\x00\x00\x00\x00", id="partial-length"),
        pytest.param(b"\x17\x09\x00\x00\x00", id="unknown-packet-type"),
        pytest.param(b"\x91avc1\x00", id="enhanced-no-composition-time"),
        pytest.param(b"\x91av", id="enhanced-no-fourcc"),
    ],
)
def test_truncated_video_payloads(payload: bytes) -> None:
    with pytest.raises(FlvError):
        _primed().video(0, payload)


def test_truncated_audio_payload() -> None:
    with pytest.raises(FlvError):
        _primed().audio(0, b"\xaf")


def test_malformed_sequence_headers_are_codec_errors() -> None:
    with pytest.raises(CodecError):
        FlvDemuxer().video(0, b"\x17\x00\x00\x00\x00\x01\x64")
    with pytest.raises(CodecError):
        FlvDemuxer().audio(0, b"\xaf\x00\x00")


def test_oversized_payloads() -> None:
    demuxer = FlvDemuxer(max_payload_size=100)
    demuxer.video(0, b"\x17\x00\x00\x00\x00" + _avcc())
    with pytest.raises(PayloadTooLarge) as info:
        demuxer.video(0, b"\x17\x01\x00\x00\x00" + struct.pack(">I", 100) + bytes(100))
    assert isinstance(info.value, FlvError)
    assert isinstance(info.value, LimitExceeded)
    with pytest.raises(PayloadTooLarge):
        demuxer.audio(0, b"\xaf\x01" + bytes(200))


def test_metadata_for_players() -> None:
    (video,) = FlvDemuxer().video(0, b"\x17\x00\x00\x00\x00" + _avcc())
    (audio,) = FlvDemuxer().audio(0, b"\xaf\x00\x11\x88")  # AAC-LC 48 kHz mono
    assert isinstance(video, Track)
    assert isinstance(audio, Track)
    values = metadata([video, audio])
    assert values["width"] == 320
    assert values["height"] == 180
    assert values["videocodecid"] == 7
    assert values["audiocodecid"] == 10
    assert values["audiosamplerate"] == 48000
    assert values["stereo"] is False
    assert "audiocodecid" not in metadata([video])
