"""H.264 encoding and VP8 transcoding with real codecs: the encoder's track and frames are
read back by Strom's own H.264 code, and transcoded streams are muxed to CMAF and decoded
by real ffmpeg."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from pathlib import Path

import av
import pytest

from strom.ingest.transcode import (
    H264Encoder,
    PictureTranscoder,
    VideoTranscoder,
)
from strom.media import h264, vpx
from strom.media.fmp4 import FragmentMuxer
from strom.media.model import VIDEO_TRACK_ID, Codec, Frame, Track, TrackKind
from tests.helpers import need_tool, run_process
from tests.media.pictures import make_picture

WAIT = 30.0  # seconds: a bound on waiting for the worker, never a timing assertion
IDR = 5


def nal_types(data: bytes) -> list[int]:
    """NAL unit types of an AVCC frame; fails unless the 4-byte lengths tile it exactly."""
    assert h264.to_length_prefixed(data, 4) is data
    types, pos = [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        assert size > 0
        types.append(data[pos + 4] & 0x1F)
        pos += 4 + size
    return types


def encode_seconds(
    encoder: H264Encoder, seconds: float, size: tuple[int, int], start: int = 0
) -> list[Track | Frame]:
    out: list[Track | Frame] = []
    for i in range(int(seconds * 30)):
        picture = make_picture(*size, index=start + i)
        picture.pts = round((start + i) * 1000 / 30)
        out += encoder.encode(picture)
    return out


def test_encoder_gives_an_avcc_track_and_avcc_frames() -> None:
    encoder = H264Encoder(timescale=1000, bitrate=200_000)
    out = encode_seconds(encoder, 4.5, (160, 96))

    track = out[0]
    assert isinstance(track, Track)
    assert (track.kind, track.codec, track.id, track.timescale) == (
        TrackKind.VIDEO,
        Codec.H264,
        VIDEO_TRACK_ID,
        1000,
    )
    cfg = h264.parse_avcc(track.config)
    assert (cfg.width, cfg.height, track.width, track.height) == (160, 96, 160, 96)
    assert cfg.length_size == 4
    assert track.codec_string == h264.codec_string(cfg)
    assert track.codec_string.startswith("avc1.")

    frames = out[1:]
    assert all(isinstance(f, Frame) for f in frames)
    assert len(frames) == 135  # one frame out per picture in (zerolatency)
    pts = [f.pts for f in frames if isinstance(f, Frame)]
    assert pts == [round(i * 1000 / 30) for i in range(135)]
    for frame in frames:
        assert isinstance(frame, Frame)
        assert frame.dts == frame.pts  # no B-frames
        types = nal_types(frame.data)
        assert frame.keyframe == (IDR in types)
    # An IDR every 2 s of timestamps: at 0, 2 and 4 s (never at scene changes).
    keys = [f.pts for f in frames if isinstance(f, Frame) and f.keyframe]
    assert keys == [0, 2000, 4000]


def test_a_new_size_gives_a_new_track_and_a_keyframe() -> None:
    encoder = H264Encoder()
    first = encode_seconds(encoder, 0.5, (160, 96))
    # Odd sizes lose a line: 4:2:0 needs even ones.
    second = encode_seconds(encoder, 0.5, (97, 65), start=15)
    assert isinstance(first[0], Track)
    assert isinstance(second[0], Track)
    assert (second[0].width, second[0].height) == (96, 64)
    assert second[0].config != first[0].config
    assert isinstance(second[1], Frame)
    assert second[1].keyframe
    assert not any(isinstance(i, Track) for i in first[1:] + second[1:])


def test_timestamps_that_do_not_increase_are_nudged_forward() -> None:
    encoder = H264Encoder()
    out: list[Track | Frame] = []
    for i, pts in enumerate([0, 40, 40, 30, 100]):
        picture = make_picture(64, 64, i)
        picture.pts = pts
        out += encoder.encode(picture)
    assert [f.pts for f in out if isinstance(f, Frame)] == [0, 40, 41, 42, 100]


def test_extradata_in_either_form_becomes_avcc() -> None:
    encoder = H264Encoder()
    track = encode_seconds(encoder, 0.1, (64, 64))[0]
    assert isinstance(track, Track)
    cfg = h264.parse_avcc(track.config)
    annexb = b"".join(b"\x00\x00\x00\x01" + n for n in (*cfg.sps, b"\x06\x05\x01\x80", *cfg.pps))
    assert h264.avcc_from_extradata(annexb) == track.config  # the SEI has no place in avcC
    two_byte = bytes([*track.config[:4], 0xFD]) + track.config[5:]
    assert h264.avcc_from_extradata(two_byte) == track.config


# -- VP8 -> H.264 ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def vp8_webm(media_dir: Path) -> Path:
    """2 s of 160x96 30 fps VP8 in WebM, a keyframe every 15 frames, by real ffmpeg."""
    path = media_dir / "vp8.webm"
    subprocess.run(
        [
            need_tool("ffmpeg"), "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=160x96:rate=30", "-t", "2",
            "-c:v", "libvpx", "-g", "15", "-keyint_min", "15", "-b:v", "300k",
            "-auto-alt-ref", "0", "-f", "webm", str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return path


def vp8_frames(path: Path) -> tuple[Track, list[Frame]]:
    """The WebM's VP8 track and frames, demuxed by PyAV (milliseconds)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        assert stream.time_base.denominator == 1000
        frames = [
            Frame(VIDEO_TRACK_ID, int(p.dts), int(p.pts), p.is_keyframe, bytes(p))
            for p in container.demux(stream)
            if p.size and p.pts is not None and p.dts is not None
        ]
        track = Track(VIDEO_TRACK_ID, TrackKind.VIDEO, Codec.VP8, 1000, b"", "vp08.00.10.08",
                      stream.width, stream.height)  # fmt: skip
    return track, frames


class Collector:
    def __init__(self) -> None:
        self.items: list[Track | Frame] = []
        self.errors: list[str] = []

    def output(self, items: list[Track | Frame]) -> None:
        self.items.extend(items)

    def error(self, reason: str) -> None:
        self.errors.append(reason)

    @property
    def frames(self) -> list[Frame]:
        return [f for f in self.items if isinstance(f, Frame)]


class GatedTranscoder(VideoTranscoder):
    """A transcoder whose worker waits at a gate before each frame: the test decides when
    the (otherwise real) work happens."""

    gate: threading.Event

    def _transcode(self, frame: Frame) -> list[Track | Frame]:
        if not self.gate.wait(WAIT):
            raise AssertionError("the gate was never opened")
        return super()._transcode(frame)


async def picked_up(transcoder: PictureTranscoder) -> None:
    """Wait until the worker has taken what was queued (it may still be working on it)."""
    async with asyncio.timeout(WAIT):
        while True:
            if not transcoder.backlog:
                return
            await asyncio.sleep(0.01)


async def drained(transcoder: PictureTranscoder) -> None:
    """Wait until the worker is done with every frame queued, and its output delivered."""
    async with asyncio.timeout(WAIT):
        while True:
            if transcoder.processed >= transcoder.frames_in - transcoder.dropped:
                break
            await asyncio.sleep(0.01)
    await asyncio.sleep(0)  # let the last call_soon_threadsafe delivery run


def write_cmaf(items: list[Track | Frame], path: Path) -> None:
    """Mux the output as Strom's hub does."""
    track = items[0]
    assert isinstance(track, Track)
    muxer = FragmentMuxer([track])
    chunks = b"".join(muxer.add_frame(f) for f in items if isinstance(f, Frame))
    path.write_bytes(muxer.init_segment() + chunks)


async def decode_cmaf(items: list[Track | Frame], path: Path) -> dict[str, object]:
    """The output muxed as Strom's hub does it, every frame decoded by ffprobe."""
    write_cmaf(items, path)
    code, out = await run_process(
        need_tool("ffprobe"), "-v", "error", "-count_frames", "-select_streams", "v:0",
        "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json",
        str(path),
    )  # fmt: skip
    assert code == 0, out
    stream: dict[str, object] = json.loads(out)["streams"][0]
    return stream


async def test_vp8_transcodes_to_h264_that_ffmpeg_decodes(vp8_webm: Path, tmp_path: Path) -> None:
    track, frames = vp8_frames(vp8_webm)
    assert len(frames) == 60
    got = Collector()
    transcoder = GatedTranscoder(track, on_output=got.output, on_error=got.error, queue_frames=60)
    transcoder.gate = threading.Event()
    try:
        transcoder.feed(frames[0])
        await picked_up(transcoder)
        for frame in frames[1:]:
            transcoder.feed(frame)
        # feed() returned 60 times while the worker could not transcode a single frame:
        # it never waits for the work, and nothing is delivered behind the loop's back.
        assert got.items == []
        assert transcoder.backlog == 59  # the worker holds the first at its gate
        await asyncio.sleep(0)  # the loop runs meanwhile
        transcoder.gate.set()
        await drained(transcoder)
    finally:
        assert await transcoder.wait_closed()

    assert transcoder.dropped == 0
    assert got.errors == []
    out = got.items
    assert isinstance(out[0], Track)
    assert out[0].codec is Codec.H264
    assert out[0].timescale == track.timescale
    assert [f.pts for f in got.frames] == [f.pts for f in frames]  # same timestamps
    assert got.frames[0].keyframe
    stream = await decode_cmaf(out, tmp_path / "vp8.mp4")
    assert stream == {"codec_name": "h264", "width": 160, "height": 96, "nb_read_frames": "60"}
    assert transcoder.frames_out == 60
    assert transcoder.max_latency > 0


async def test_a_full_queue_drops_until_the_next_keyframe(vp8_webm: Path, tmp_path: Path) -> None:
    track, frames = vp8_frames(vp8_webm)
    got = Collector()
    transcoder = GatedTranscoder(track, on_output=got.output, on_error=got.error, queue_frames=4)
    transcoder.gate = threading.Event()
    try:
        transcoder.feed(frames[0])
        await picked_up(transcoder)
        for frame in frames[1:]:
            transcoder.feed(frame)
        transcoder.gate.set()
        await drained(transcoder)
    finally:
        await transcoder.wait_closed()
    # The worker is stuck on frame 0; 1-4 fill the queue, 5-14 are dropped; keyframe 15
    # replaces what waits (older than itself), 16-18 fill the queue again, 19-29 are
    # dropped, and so on: the freshest GOP's start is what is left when the worker is back.
    kept = [0, 45, 46, 47, 48]
    assert [f.pts for f in got.frames] == [frames[i].pts for i in kept]
    assert transcoder.dropped == 60 - len(kept)
    assert got.errors == []
    # Every frame that came out decodes: nothing references a dropped picture.
    stream = await decode_cmaf(got.items, tmp_path / "dropped.mp4")
    assert stream["nb_read_frames"] == str(len(got.frames))


async def test_a_broken_frame_is_reported_and_the_stream_goes_on(vp8_webm: Path) -> None:
    track, frames = vp8_frames(vp8_webm)
    got = Collector()
    transcoder = VideoTranscoder(track, on_output=got.output, on_error=got.error, queue_frames=60)
    broken = Frame(VIDEO_TRACK_ID, frames[15].dts, frames[15].pts, True, frames[15].data[:12])
    try:
        for frame in [*frames[:15], broken, *frames[16:]]:
            transcoder.feed(frame)
        await drained(transcoder)
    finally:
        await transcoder.wait_closed()
    assert transcoder.errors == 1
    assert len(got.errors) == 1
    assert "decode" in got.errors[0]
    # The GOP of the broken keyframe is skipped; the next keyframe decodes again.
    assert [f.pts for f in got.frames] == [f.pts for f in frames[:15] + frames[30:]]


async def test_a_picture_too_large_is_refused_before_decoding(vp8_webm: Path) -> None:
    track, frames = vp8_frames(vp8_webm)
    assert vpx.vp8_picture_size(frames[0].data) == (160, 96)
    assert not vpx.vp8_is_keyframe(frames[1].data)
    got = Collector()
    transcoder = VideoTranscoder(
        track, on_output=got.output, on_error=got.error, max_pixels=160 * 95
    )
    try:
        for frame in frames[:20]:
            transcoder.feed(frame)
        await drained(transcoder)
    finally:
        await transcoder.wait_closed()
    assert got.items == []
    assert len(got.errors) == 2  # one per keyframe; the frames after each are skipped
    assert "exceeds the limit" in got.errors[0]


async def test_nothing_is_delivered_after_close(vp8_webm: Path) -> None:
    track, frames = vp8_frames(vp8_webm)
    got = Collector()
    transcoder = GatedTranscoder(track, on_output=got.output)
    transcoder.gate = threading.Event()
    for frame in frames[:10]:
        transcoder.feed(frame)
    transcoder.close()
    transcoder.gate.set()
    assert await transcoder.wait_closed()
    transcoder.feed(frames[10])  # ignored
    await asyncio.sleep(0.05)
    assert got.items == []
    assert transcoder.processed <= 1
