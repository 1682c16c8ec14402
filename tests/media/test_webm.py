"""The WebM/Matroska demuxer: real files from ffmpeg and Chromium's MediaRecorder checked
against ffprobe, fed whole and in pieces; hand-built streams for lacing, unknown sizes and
hostile input; and the demuxed stream muxed to fMP4 and decoded by ffmpeg."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest

from strom.errors import LimitExceeded, LocalProtocolError, ProtocolError
from strom.media import opus
from strom.media.containers import ContainerKind, open_demuxer, sniff
from strom.media.containers.webm import WebmDemuxer, WebmError
from strom.media.model import Codec, Frame, Track, TrackKind
from tests.media.container_media import (
    DATA,
    SPLITS,
    Probed,
    decode,
    decoded_counts,
    encode,
    feed,
    frames_of,
    mux,
    probe,
    tracks_of,
)

#: name -> (video codec, audio codec, ffmpeg muxer)
FFMPEG = {
    "vp8-opus.webm": ("vp8", "opus", "webm"),
    "vp9-opus.webm": ("vp9", "opus", "webm"),
    "av1-opus.webm": ("av1", "opus", "webm"),
    "h264-aac.mkv": ("h264", "aac", "matroska"),
}
CHROMIUM = [
    "mediarecorder_vp8_opus.webm",
    "mediarecorder_vp9_opus.webm",
    "mediarecorder_av1_opus.webm",
    "mediarecorder_h264_opus.webm",
]
CODECS = {"h264": Codec.H264, "vp8": Codec.VP8, "vp9": Codec.VP9, "av1": Codec.AV1,
          "opus": Codec.OPUS, "aac": Codec.AAC}  # fmt: skip


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A file by name: made by ffmpeg on first use (skipped without its encoder), or one
    of the MediaRecorder captures in tests/data."""
    tmp = tmp_path_factory.mktemp("webm")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            if name in FFMPEG:
                video, audio, muxer = FFMPEG[name]
                made[name] = encode(tmp / name, video, audio, "-f", muxer)
            else:
                made[name] = DATA / name
        return made[name]

    return get


def _check_against_ffprobe(events: list[Track | Frame], probed: dict[TrackKind, Probed],
                           offset: int) -> None:  # fmt: skip
    tracks = tracks_of(events)
    assert set(tracks) == set(probed)
    for kind, p in probed.items():
        track = tracks[kind]
        frames = frames_of(events, track)
        assert track.codec is CODECS[p.codec]
        assert len(frames) == len(p.packets) > 20
        assert [f.keyframe for f in frames] == [pk.keyframe for pk in p.packets]
        assert frames[0].keyframe
        shift = Fraction(offset)
        if kind is TrackKind.VIDEO:
            assert (track.width, track.height) == (p.stream["width"], p.stream["height"])
        else:
            assert track.channels == p.stream["channels"]
            assert track.sample_rate == int(str(p.stream["sample_rate"]))
            if track.codec is Codec.OPUS:
                # ffmpeg subtracts CodecDelay (the pre-skip) from Opus times; Strom keeps
                # the muxer's times and leaves the pre-skip to the decoder.
                shift += Fraction(opus.parse_dops(track.config).pre_skip * 1000, 48_000)
        slack = 0 if shift.denominator == 1 else 1  # ffprobe rounds a fractional shift
        for frame, packet in zip(frames, p.packets, strict=True):
            assert packet.pts is not None
            assert abs(frame.pts - shift - p.ms(packet.pts)) <= slack
            if packet.dts is not None:
                assert abs(frame.dts - shift - p.ms(packet.dts)) <= slack
            if track.codec is not Codec.H264:  # H.264 may have been Annex B
                assert len(frame.data) == packet.size
        dts = [f.dts for f in frames]
        assert dts == sorted(dts)
        assert all(f.dts <= f.pts for f in frames)


@pytest.mark.e2e
@pytest.mark.parametrize("name", [*FFMPEG, *CHROMIUM])
def test_frames_match_ffprobe_in_any_split(media: Callable[[str], Path], name: str) -> None:
    path = media(name)
    data = path.read_bytes()
    assert sniff(data[:64]) is ContainerKind.WEBM
    runs = {}
    for split in SPLITS:
        demuxer = WebmDemuxer()
        runs[split] = feed(demuxer, data, split)
        offset = demuxer.timestamp_offset
    assert all(events == runs["whole"] for events in runs.values())
    _check_against_ffprobe(runs["whole"], probe(path), offset)


@pytest.mark.e2e
def test_h264_b_frames_get_monotonic_decode_times(media: Callable[[str], Path]) -> None:
    """Matroska keeps presentation times only; with B-frames the decode times are rebuilt
    (the SPS says 2 frames of reordering) and every timestamp moves by the offset."""
    demuxer = WebmDemuxer()
    events = demuxer.feed(media("h264-aac.mkv").read_bytes())
    video = frames_of(events, tracks_of(events)[TrackKind.VIDEO])
    assert demuxer.timestamp_offset == 2 * 34  # 2 frames of DefaultDuration 33.3 ms, ceiled
    assert any(f.pts > f.dts for f in video)
    assert len({f.dts for f in video}) == len(video)


@pytest.mark.e2e
def test_mediarecorder_h264_without_codec_private(media: Callable[[str], Path]) -> None:
    """Chromium's ``video/webm;codecs=h264`` has no CodecPrivate: the avcC comes from the
    first key frame's SPS/PPS and the Annex B frames become length-prefixed."""
    events = open_demuxer(ContainerKind.WEBM).feed(media(CHROMIUM[3]).read_bytes())
    video = tracks_of(events)[TrackKind.VIDEO]
    assert video.codec_string.startswith("avc1.42")  # Chromium's encoder: Baseline
    first = frames_of(events, video)[0]
    assert first.keyframe
    assert int.from_bytes(first.data[:4], "big") + 4 <= len(first.data)  # a NAL length


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["vp9-opus.webm", "av1-opus.webm", "h264-aac.mkv", *CHROMIUM[1:]])
def test_round_trip_through_the_fmp4_muxer_decodes(
    media: Callable[[str], Path], tmp_path: Path, name: str
) -> None:
    events = WebmDemuxer().feed(media(name).read_bytes())
    errors, counts = decode(mux(events, tmp_path / "out.mp4"))
    assert errors == ""
    assert counts == decoded_counts(events)
    assert counts["video"] > 20
    assert counts["audio"] > 20


# -- hand-built streams ---------------------------------------------------------------------


def _size(n: int | None) -> bytes:
    if n is None:
        return b"\x01\xff\xff\xff\xff\xff\xff\xff"  # unknown size
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return ((1 << (7 * length)) | n).to_bytes(length, "big")
    raise ValueError(n)


def el(ident: int, *parts: bytes, size: int | str | None = "auto") -> bytes:
    body = b"".join(parts)
    length = len(body) if size == "auto" else size
    assert not isinstance(length, str)
    return ident.to_bytes((ident.bit_length() + 7) // 8, "big") + _size(length) + body


def uint(ident: int, value: int) -> bytes:
    return el(ident, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


HEADER = el(0x1A45DFA3, el(0x4282, b"webm"), uint(0x4285, 2))
OPUS_HEAD = b"OpusHead" + bytes((1, 2)) + (312).to_bytes(2, "little") + bytes(7)
OPUS_TRACK = el(0xAE, uint(0xD7, 2), uint(0x83, 2), el(0x86, b"A_OPUS"),
                el(0x63A2, OPUS_HEAD), el(0xE1, uint(0x9F, 2)))  # fmt: skip
AV1C = bytes((0x81, 0x00, 0x0C, 0x00))  # Main profile, level 2.0, 8-bit 4:2:0
AV1_TRACK = el(0xAE, uint(0xD7, 1), uint(0x83, 1), el(0x86, b"V_AV1"), el(0x63A2, AV1C),
               el(0xE0, uint(0xB0, 320), uint(0xBA, 240)))  # fmt: skip
OPUS_20MS = b"\xfc" + bytes(20)  # TOC: CELT fullband 20 ms, one frame
OPUS_10MS = b"\xf4" + bytes(10)  # CELT fullband 10 ms


def block(track: int, time: int, flags: int, payload: bytes) -> bytes:
    return bytes((0x80 | track,)) + time.to_bytes(2, "big", signed=True) + bytes((flags,)) + payload


def stream(*cluster_parts: bytes, scale: int | None = None, tracks: bytes = OPUS_TRACK) -> bytes:
    info = el(0x1549A966, uint(0x2AD7B1, scale)) if scale else b""
    return HEADER + el(
        0x18538067,
        info,
        el(0x1654AE6B, tracks),
        el(0x1F43B675, uint(0xE7, 1000), *cluster_parts, size=None),
        size=None,
    )


def _frames(data: bytes, **kwargs: int) -> list[Frame]:
    events = WebmDemuxer(**kwargs).feed(data)
    return [e for e in events if isinstance(e, Frame)]


@pytest.mark.parametrize(
    ("flags", "lace"),
    [
        (0x82, bytes((2, 21, 11))),  # Xiph: two sizes, the last implied
        # EBML: first size 21 as a vint, then the difference -10 (bias 63 in one byte)
        (0x86, bytes((2, 0x80 | 21, 0x80 | (63 - 10)))),
    ],
)
def test_laced_opus_frames_get_their_own_times(flags: int, lace: bytes) -> None:
    payload = lace + OPUS_20MS + OPUS_10MS + OPUS_20MS
    frames = _frames(stream(el(0xA3, block(2, 5, flags, payload))))
    assert [f.pts for f in frames] == [1005, 1025, 1035]
    assert [f.data for f in frames] == [OPUS_20MS, OPUS_10MS, OPUS_20MS]


def test_fixed_size_lacing() -> None:
    payload = bytes((1,)) + OPUS_20MS + OPUS_20MS
    frames = _frames(stream(el(0xA3, block(2, 0, 0x84, payload))))
    assert [(f.pts, f.data) for f in frames] == [(1000, OPUS_20MS), (1020, OPUS_20MS)]


def test_lace_sizes_past_the_block_are_refused() -> None:
    payload = bytes((1, 200)) + OPUS_20MS
    with pytest.raises(WebmError, match="past the block"):
        _frames(stream(el(0xA3, block(2, 0, 0x82, payload))))


def test_block_group_keyframe_is_the_absence_of_reference_block() -> None:
    data = stream(
        el(0xA0, el(0xA1, block(1, 0, 0, b"\x12\x00\x0a\x01key"))),
        el(0xA0, el(0xA1, block(1, 33, 0, b"\x12\x00\x0a\x01inter")), el(0xFB, b"\xdf")),
        tracks=AV1_TRACK,
    )
    frames = _frames(data)
    assert [(f.pts, f.keyframe) for f in frames] == [(1000, True), (1033, False)]


def test_timestamp_scale_converts_to_milliseconds() -> None:
    # 100 µs ticks: cluster 1000 = 100 ms, block +255 = 25.5 ms -> 125 ms (rounded down)
    frames = _frames(stream(el(0xA3, block(2, 255, 0x80, OPUS_20MS)), scale=100_000))
    assert frames[0].pts == 125


def test_unknown_sized_cluster_ends_at_the_next_top_level_element() -> None:
    cues = el(0x1C53BB6B, bytes(50))
    second = el(0x1F43B675, uint(0xE7, 2000), el(0xA3, block(2, 0, 0x80, OPUS_20MS)), size=None)
    data = stream(el(0xA3, block(2, 0, 0x80, OPUS_20MS))) + cues + second
    assert [f.pts for f in _frames(data)] == [1000, 2000]


def test_large_skipped_elements_are_not_held() -> None:
    """Cues, Tags, Void stream past: a 2 MB Void goes through a demuxer that holds at most
    64 KB, fed in small pieces."""
    void = el(0xEC, bytes(2_000_000))
    data = stream(void, el(0xA3, block(2, 0, 0x80, OPUS_20MS)))
    demuxer = WebmDemuxer(max_element_size=65536)
    events = []
    for pos in range(0, len(data), 50_000):
        events += demuxer.feed(data[pos : pos + 50_000])
    assert [e.pts for e in events if isinstance(e, Frame)] == [1000]


def test_a_second_stream_after_the_first_keeps_tracks_unless_they_change() -> None:
    first = stream(el(0xA3, block(2, 0, 0x80, OPUS_20MS)))
    events = WebmDemuxer().feed(first + first)
    assert sum(isinstance(e, Track) for e in events) == 1
    assert sum(isinstance(e, Frame) for e in events) == 2


def test_only_the_first_track_of_a_kind_counts() -> None:
    """A second video track in a codec Strom cannot carry is ignored, with its blocks."""
    hevc = el(0xAE, uint(0xD7, 3), uint(0x83, 1), el(0x86, b"V_MPEGH/ISO/HEVC"))
    data = stream(
        el(0xA3, block(3, 0, 0x80, b"hevc")),
        el(0xA3, block(1, 0, 0x80, b"av1")),
        tracks=AV1_TRACK + hevc,
    )
    frames = _frames(data)
    assert [(f.track_id, f.data) for f in frames] == [(1, b"av1")]


def test_absurd_block_size_is_refused_before_buffering() -> None:
    huge = b"\xa3" + _size(1 << 40)
    with pytest.raises(LimitExceeded, match="exceeds the limit"):
        WebmDemuxer().feed(stream() + huge)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RIFF" + bytes(60), "not a WebM"),
        (el(0x1A45DFA3, el(0x4282, b"mkv3d")), "DocType"),
        (stream().replace(b"\xe7\x82\x03\xe8", b"\xec\x82\x03\xe8"),
         "before its Cluster's Timestamp"),
        (stream(tracks=OPUS_TRACK.replace(b"A_OPUS", b"A_FLAC")),
         "unsupported audio codec 'A_FLAC'"),
        (stream(tracks=AV1_TRACK.replace(b"V_AV1", b"V_VP7")),
         "unsupported video codec 'V_VP7'"),
        (stream(tracks=OPUS_TRACK.replace(b"OpusHead", b"OpusTail")), "OpusHead"),
        (HEADER + el(0x18538067, el(0x1654AE6B, el(0xAE, bytes((0xD7, 0x88)))), size=None),
         "runs past"),
        (HEADER + b"\x00\x81\x00", "invalid EBML element ID"),
    ],
)  # fmt: skip
def test_malformed_streams_are_refused_clearly(data: bytes, message: str) -> None:
    demuxer = WebmDemuxer()
    with pytest.raises(WebmError, match=message):
        demuxer.feed(data + el(0xA3, block(2, 0, 0x80, OPUS_20MS)))
    with pytest.raises(LocalProtocolError):
        demuxer.feed(b"\x00")


@pytest.mark.e2e
def test_corrupted_files_raise_only_protocol_errors(media: Callable[[str], Path]) -> None:
    """Random byte damage anywhere: a clean ProtocolError or frames, never another error."""
    data = media("mediarecorder_vp9_opus.webm").read_bytes()
    rng = random.Random(7)
    for _ in range(200):
        damaged = bytearray(data)
        for _ in range(rng.choice((1, 3, 10))):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        with contextlib.suppress(ProtocolError):
            WebmDemuxer().feed(bytes(damaged))
