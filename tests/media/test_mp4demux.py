"""The fragmented MP4 demuxer: ffmpeg's fragmenting modes and Chromium's MediaRecorder MP4
checked against ffprobe, fed whole and in pieces; progressive MP4, unsupported codecs and
hostile sizes refused clearly; the demuxed stream muxed back to fMP4 and decoded."""

from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest

from strom.errors import LimitExceeded, LocalProtocolError, ProtocolError
from strom.media.containers import ContainerKind, open_demuxer, sniff
from strom.media.containers.mp4 import Mp4Demuxer, Mp4Error
from strom.media.model import Codec, Track, TrackKind
from tests.media.container_media import (
    DATA,
    SPLITS,
    decode,
    decoded_counts,
    encode,
    feed,
    frames_of,
    mux,
    probe,
    tracks_of,
)

FRAGMENTED = ["-movflags", "frag_keyframe+empty_moov+default_base_moof"]
#: name -> (video codec, audio codec, ffmpeg output options)
FFMPEG: dict[str, tuple[str | None, str | None, list[str]]] = {
    "h264-aac.mp4": ("h264", "aac", ["-f", "mp4", *FRAGMENTED]),
    # a moof per frame, and trun offsets from tfhd's explicit base-data-offset
    "h264-aac-every-frame.mp4": (
        "h264", "aac", ["-f", "mp4", "-movflags", "frag_every_frame+empty_moov"],
    ),
    "h264-opus.mp4": ("h264", "opus", ["-f", "mp4", *FRAGMENTED]),
    "vp9-opus.mp4": ("vp9", "opus", ["-f", "mp4", *FRAGMENTED]),
    "av1-aac.mp4": ("av1", "aac", ["-f", "mp4", *FRAGMENTED]),
    "progressive.mp4": ("h264", "aac", ["-f", "mp4"]),
    "faststart.mp4": ("h264", "aac", ["-f", "mp4", "-movflags", "+faststart"]),
}  # fmt: skip
CHROMIUM = [
    "mediarecorder_h264_opus.mp4",
    "mediarecorder_vp9_opus.mp4",
    "mediarecorder_av1_opus.mp4",
]
CODECS = {"h264": Codec.H264, "vp9": Codec.VP9, "av1": Codec.AV1, "opus": Codec.OPUS,
          "aac": Codec.AAC}  # fmt: skip


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    tmp = tmp_path_factory.mktemp("mp4")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            if name in FFMPEG:
                video, audio, options = FFMPEG[name]
                made[name] = encode(tmp / name, video, audio, *options)
            else:
                made[name] = DATA / name
        return made[name]

    return get


@pytest.mark.e2e
@pytest.mark.parametrize("name", [n for n in FFMPEG if "-" in n] + CHROMIUM)
def test_frames_match_ffprobe_in_any_split(media: Callable[[str], Path], name: str) -> None:
    path = media(name)
    data = path.read_bytes()
    assert sniff(data[:64]) is ContainerKind.MP4
    runs = {split: feed(Mp4Demuxer(), data, split) for split in SPLITS}
    assert all(events == runs["whole"] for events in runs.values())
    events = runs["whole"]
    probed = probe(path)
    tracks = tracks_of(events)
    assert set(tracks) == set(probed)
    for kind, p in probed.items():
        track = tracks[kind]
        frames = frames_of(events, track)
        assert track.codec is CODECS[p.codec]
        assert p.time_base == Fraction(1, track.timescale)  # the mdhd timescale, kept
        assert len(frames) == len(p.packets) > 20
        assert [(f.pts, f.dts) for f in frames] == [(pk.pts, pk.dts) for pk in p.packets]
        assert [f.keyframe for f in frames] == [pk.keyframe for pk in p.packets]
        assert [len(f.data) for f in frames] == [pk.size for pk in p.packets]
        if kind is TrackKind.VIDEO:
            assert (track.width, track.height) == (320, 240)
        else:
            assert track.channels == p.stream["channels"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    "name", ["h264-aac.mp4", "h264-opus.mp4", "vp9-opus.mp4", "av1-aac.mp4", *CHROMIUM]
)
def test_round_trip_through_the_fmp4_muxer_decodes(
    media: Callable[[str], Path], tmp_path: Path, name: str
) -> None:
    events = Mp4Demuxer().feed(media(name).read_bytes())
    errors, counts = decode(mux(events, tmp_path / "out.mp4"))
    assert errors == ""
    assert counts == decoded_counts(events)
    assert counts["video"] > 20
    assert counts["audio"] > 20


@pytest.mark.e2e
def test_mediarecorder_vp9_level_0_is_replaced(media: Callable[[str], Path]) -> None:
    """Chromium records vpcC level 0, and its own Media Source refuses vp09.00.00.08."""
    events = Mp4Demuxer().feed(media("mediarecorder_vp9_opus.mp4").read_bytes())
    video = tracks_of(events)[TrackKind.VIDEO]
    assert video.codec_string == "vp09.00.20.08"  # 320x240: level 2
    assert video.config[1] == 20


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("progressive.mp4", "'mdat' before 'moov'.*frag_keyframe"),
        ("faststart.mp4", "no 'mvex'.*frag_keyframe"),
    ],
)
def test_progressive_mp4_is_refused_with_advice(
    media: Callable[[str], Path], name: str, message: str
) -> None:
    with pytest.raises(Mp4Error, match=message):
        open_demuxer(ContainerKind.MP4).feed(media(name).read_bytes())


def _patched(data: bytes, old: bytes, new: bytes, after: bytes = b"stsd") -> bytes:
    at = data.index(old, data.index(after))
    return data[:at] + new + data[at + len(old) :]


@pytest.mark.e2e
def test_unsupported_codecs_are_named(media: Callable[[str], Path]) -> None:
    data = media("h264-aac.mp4").read_bytes()
    with pytest.raises(Mp4Error, match=r"unsupported video codec HEVC with in-band .* \('hev1'\)"):
        Mp4Demuxer().feed(_patched(data, b"avc1", b"hev1"))
    with pytest.raises(Mp4Error, match="unsupported audio codec 'alac'"):
        Mp4Demuxer().feed(_patched(data, b"mp4a", b"alac"))
    # esds objectTypeIndication 0x40 (MPEG-4 audio) -> 0x6B (MPEG-1 audio, MP3): it follows
    # the DecoderConfigDescriptor's tag (4) and its 4-byte size in ffmpeg's esds
    oti = data.index(b"\x04\x80\x80\x80", data.index(b"esds")) + 5
    assert data[oti] == 0x40
    with pytest.raises(Mp4Error, match="MP3"):
        Mp4Demuxer().feed(data[:oti] + b"\x6b" + data[oti + 1 :])


@pytest.mark.e2e
def test_hostile_sizes(media: Callable[[str], Path]) -> None:
    data = media("h264-aac.mp4").read_bytes()
    moov = data.index(b"moov") - 4
    huge_moov = data[:moov] + struct.pack(">I", 0x7FFFFFFF) + data[moov + 4 :]
    with pytest.raises(LimitExceeded, match="'moov' of 2147483647 bytes"):
        Mp4Demuxer().feed(huge_moov[: moov + 100])  # refused before it is buffered
    with pytest.raises(LimitExceeded, match="sample of"):
        Mp4Demuxer(max_sample_size=1000).feed(data)
    with pytest.raises(LimitExceeded, match="more than 10 samples"):
        Mp4Demuxer(max_fragment_samples=10).feed(data)
    trun = data.index(b"trun")
    many = data[: trun + 8] + struct.pack(">I", 0x7FFFFFFF) + data[trun + 12 :]
    with pytest.raises(Mp4Error, match="shorter than its sample count"):
        Mp4Demuxer().feed(many)
    traf = data.index(b"traf")
    overrun = data[: traf - 4] + struct.pack(">I", 100_000) + data[traf:]
    with pytest.raises(Mp4Error, match="runs past its parent"):
        Mp4Demuxer().feed(overrun)


def test_not_mp4_and_moof_before_moov() -> None:
    with pytest.raises(Mp4Error, match="not an MP4 stream"):
        Mp4Demuxer().feed(struct.pack(">I4s", 16, b"wide") + bytes(8))
    demuxer = Mp4Demuxer()
    with pytest.raises(Mp4Error, match="'moof' before 'moov'"):
        demuxer.feed(struct.pack(">I4s", 8, b"moof"))
    with pytest.raises(LocalProtocolError):
        demuxer.feed(b"")


def test_moov_without_tracks_strom_carries() -> None:
    moov = struct.pack(">I4s", 8, b"mvex")
    with pytest.raises(Mp4Error, match="no audio or video track"):
        Mp4Demuxer().feed(struct.pack(">I4s", 8 + len(moov), b"moov") + moov)


@pytest.mark.e2e
def test_corrupted_files_raise_only_protocol_errors(media: Callable[[str], Path]) -> None:
    data = media("mediarecorder_h264_opus.mp4").read_bytes()
    rng = random.Random(11)
    for _ in range(200):
        damaged = bytearray(data)
        for _ in range(rng.choice((1, 3, 10))):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        with contextlib.suppress(ProtocolError):
            Mp4Demuxer().feed(bytes(damaged))


@pytest.mark.e2e
def test_tracks_come_first_and_once(media: Callable[[str], Path]) -> None:
    events = Mp4Demuxer().feed(media("h264-aac.mp4").read_bytes())
    assert [type(e) for e in events[:2]] == [Track, Track]
    assert sum(isinstance(e, Track) for e in events) == 2
