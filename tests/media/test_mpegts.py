"""The MPEG-TS demuxer: ffmpeg's transport streams checked against ffprobe, fed whole and
in pieces; the 33-bit clock wrap; lost packets, lost sync and codecs Strom refuses; and
the demuxed stream muxed to fMP4 and decoded."""

from __future__ import annotations

import contextlib
import itertools
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from strom.errors import LimitExceeded, LocalProtocolError, ProtocolError
from strom.media.containers import ContainerKind, open_demuxer, sniff
from strom.media.containers.mpegts import PACKET_SIZE, TsDemuxer, TsError
from strom.media.model import Codec, Frame, Track, TrackKind
from tests.media.container_media import (
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

#: 2^33 ticks of 90 kHz, in seconds: where the transport stream clock wraps
WRAP_SECONDS = (1 << 33) / 90_000
FFMPEG: dict[str, tuple[str, str, list[str]]] = {
    "h264-aac.ts": ("h264", "aac", ["-f", "mpegts"]),
    # starts 1 s before the 33-bit clock wraps (ffmpeg adds its usual 1.4 s mux delay)
    "wrap.ts": ("h264", "aac", ["-output_ts_offset", str(WRAP_SECONDS - 2.4), "-f", "mpegts"]),
    "h264-mp2.ts": ("h264", "mp2", ["-f", "mpegts"]),
}
VIDEO_PID = 0x100  # ffmpeg's first elementary stream PID


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    tmp = tmp_path_factory.mktemp("ts")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            video, audio, options = FFMPEG[name]
            made[name] = encode(tmp / name, video, audio, *options)
        return made[name]

    return get


def _packets(data: bytes) -> list[bytes]:
    return [data[i : i + PACKET_SIZE] for i in range(0, len(data), PACKET_SIZE)]


def _pid(packet: bytes) -> int:
    return (packet[1] & 0x1F) << 8 | packet[2]


@pytest.mark.e2e
def test_frames_match_ffprobe_in_any_split(media: Callable[[str], Path]) -> None:
    path = media("h264-aac.ts")
    data = path.read_bytes()
    assert sniff(data[:4096]) is ContainerKind.MPEGTS
    assert sniff(data[:300]) is None  # not enough packets to tell yet
    runs = {split: feed(TsDemuxer(), data, split) for split in SPLITS}
    assert all(events == runs["whole"] for events in runs.values())
    events = runs["whole"]
    probed = probe(path)
    tracks = tracks_of(events)
    video, audio = tracks[TrackKind.VIDEO], tracks[TrackKind.AUDIO]
    assert (video.codec, video.timescale, video.width, video.height) == (
        Codec.H264,
        90_000,
        320,
        240,
    )
    assert (audio.codec, audio.sample_rate, audio.timescale) == (Codec.AAC, 48_000, 48_000)
    assert audio.channels == probed[TrackKind.AUDIO].stream["channels"]

    frames = frames_of(events, video)
    packets = probed[TrackKind.VIDEO].packets
    assert len(frames) == len(packets) == 60
    assert [(f.pts, f.dts, f.keyframe) for f in frames] == [
        (p.pts, p.dts, p.keyframe) for p in packets
    ]
    assert any(f.pts > f.dts for f in frames)  # B-frames

    frames = frames_of(events, audio)
    packets = probed[TrackKind.AUDIO].packets
    assert len(frames) == len(packets) > 90
    for frame, packet in zip(frames, packets, strict=True):
        assert packet.pts is not None
        # ffprobe places ADTS frames on the 90 kHz clock; Strom counts samples
        assert abs(frame.pts * 1000 / 48_000 - packet.pts / 90) <= 1
        assert len(frame.data) + 7 == packet.size  # the ADTS header is gone
    assert [f.dts for f in frames] == [frames[0].dts + 1024 * i for i in range(len(frames))]


@pytest.mark.e2e
def test_the_last_video_frame_waits_for_flush(media: Callable[[str], Path]) -> None:
    """A video PES has no length: it ends when the next one starts, or at flush()."""
    demuxer = TsDemuxer()
    events = demuxer.feed(media("h264-aac.ts").read_bytes())
    video = tracks_of(events)[TrackKind.VIDEO]
    assert len(frames_of(events, video)) == 59
    assert [type(e) for e in demuxer.flush()] == [Frame]


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["h264-aac.ts", "wrap.ts"])
def test_round_trip_through_the_fmp4_muxer_decodes(
    media: Callable[[str], Path], tmp_path: Path, name: str
) -> None:
    demuxer = TsDemuxer()
    events = demuxer.feed(media(name).read_bytes()) + demuxer.flush()
    errors, counts = decode(mux(events, tmp_path / "out.mp4"))
    assert errors == ""
    assert counts == decoded_counts(events) == {"video": 60, "audio": counts["audio"]}


@pytest.mark.e2e
def test_timestamps_run_on_across_the_33_bit_wrap(media: Callable[[str], Path]) -> None:
    demuxer = TsDemuxer()
    events = demuxer.feed(media("wrap.ts").read_bytes()) + demuxer.flush()
    tracks = tracks_of(events)
    video = frames_of(events, tracks[TrackKind.VIDEO])
    audio = frames_of(events, tracks[TrackKind.AUDIO])
    raw = probe(media("wrap.ts"))[TrackKind.VIDEO].packets
    assert any(p.dts is not None and p.dts < 90_000 for p in raw)  # the file did wrap
    assert video[-1].dts > 1 << 33
    dts = [f.dts for f in video]
    assert all(0 < b - a <= 3003 for a, b in itertools.pairwise(dts))
    times = [f.dts for f in audio]
    assert all(b - a == 1024 for a, b in itertools.pairwise(times))


@pytest.mark.e2e
def test_a_lost_packet_costs_one_frame(media: Callable[[str], Path]) -> None:
    packets = _packets(media("h264-aac.ts").read_bytes())
    video = [i for i, p in enumerate(packets) if _pid(p) == VIDEO_PID and not p[1] & 0x40]
    lost = video[len(video) // 2]  # the middle of some access unit, not its start
    demuxer = TsDemuxer()
    events = demuxer.feed(b"".join(packets[:lost] + packets[lost + 1 :])) + demuxer.flush()
    assert len(frames_of(events, tracks_of(events)[TrackKind.VIDEO])) == 59
    assert demuxer.skipped_frames == 1


@pytest.mark.e2e
def test_a_duplicated_packet_is_ignored(media: Callable[[str], Path]) -> None:
    packets = _packets(media("h264-aac.ts").read_bytes())
    at = next(i for i, p in enumerate(packets) if _pid(p) == VIDEO_PID and i > 50)
    demuxer = TsDemuxer()
    events = demuxer.feed(b"".join([*packets[: at + 1], packets[at], *packets[at + 1 :]]))
    events += demuxer.flush()
    assert len(frames_of(events, tracks_of(events)[TrackKind.VIDEO])) == 60
    assert demuxer.skipped_frames == 0


@pytest.mark.e2e
def test_unsupported_codecs_are_named(media: Callable[[str], Path]) -> None:
    with pytest.raises(TsError, match=r"unsupported audio codec MPEG-1 audio \(MP2/MP3\).*AAC"):
        TsDemuxer().feed(media("h264-mp2.ts").read_bytes())
    data = media("h264-aac.ts").read_bytes()
    # PMT: stream_type 0x1B (H.264) on PID 0x100 -> 0x24 (HEVC); Strom does not check CRCs
    hevc = data.replace(b"\x1b\xe1\x00\xf0\x00", b"\x24\xe1\x00\xf0\x00")
    assert hevc != data
    with pytest.raises(TsError, match="unsupported video codec HEVC"):
        TsDemuxer().feed(hevc)


@pytest.mark.e2e
def test_hostile_input(media: Callable[[str], Path]) -> None:
    data = media("h264-aac.ts").read_bytes()
    demuxer = open_demuxer(ContainerKind.MPEGTS)
    with pytest.raises(TsError, match="lost MPEG-TS sync"):
        demuxer.feed(data[:1880] + b"\x00" + data[1880:])
    with pytest.raises(LocalProtocolError):
        demuxer.feed(data)
    with pytest.raises(LimitExceeded, match="PES of more than 2000 bytes"):
        TsDemuxer(max_pes_size=2000).feed(data)
    rng = random.Random(5)
    for _ in range(200):
        damaged = bytearray(data)
        for _ in range(rng.choice((1, 3, 10))):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        with contextlib.suppress(ProtocolError):
            demuxer = TsDemuxer()
            demuxer.feed(bytes(damaged))
            demuxer.flush()


def test_program_without_streams_strom_carries() -> None:
    # PAT -> PMT on PID 0x1000 with one SCTE-35 stream (type 0x86) only
    pat = bytes.fromhex("00b00d0001c100000001f000") + bytes(4)  # CRC not checked
    pmt = bytes.fromhex("02b0120001c10000e100f00086e101f000") + bytes(4)

    def packet(pid: int, section: bytes) -> bytes:
        body = bytes((0x47, 0x40 | pid >> 8, pid & 0xFF, 0x10, 0)) + section
        return body + b"\xff" * (PACKET_SIZE - len(body))

    with pytest.raises(TsError, match="no audio or video stream"):
        TsDemuxer().feed(packet(0, pat) + packet(0x1000, pmt))


def test_tracks_precede_their_frames(media: Callable[[str], Path]) -> None:
    events = TsDemuxer().feed(media("h264-aac.ts").read_bytes())
    seen: set[int] = set()
    for event in events:
        if isinstance(event, Track):
            seen.add(event.id)
        else:
            assert event.track_id in seen
