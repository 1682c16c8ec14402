"""The push publisher without any network: container bytes (a real ffmpeg FLV) in, the
hub's channel out; sniffing, the rate bound, busy/takeover, lost/resume and errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from strom.errors import FlvError, LimitExceeded, ProtocolError, RateExceeded
from strom.ingest import push as push_module
from strom.ingest.push import (
    PushIngest,
    PushLimits,
    PushPublisher,
    PushState,
    TranscodersBusy,
    UnsupportedContainer,
)
from strom.live.channel import Channel, ChannelBusy, ChannelState, HubLimits, Subscriber
from strom.live.chunk import Chunk
from strom.live.registry import Registry, StaticStreamKeys
from strom.media.containers import SNIFF_BYTES
from strom.media.model import VIDEO_TRACK_ID, Codec, Frame, Track, TrackKind
from tests.helpers import make_media

KEY = "alice-secret-key-1234"


@pytest.fixture(scope="module")
def flv(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """1 s of 160x90 H.264 (GOP 15) + AAC, as ffmpeg writes an FLV stream."""
    path = tmp_path_factory.mktemp("push") / "small.flv"
    make_media(path, seconds=1.0, size="160x90", gop=15, bitrate="100k")
    return path.read_bytes()


class Viewer(Subscriber):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.chunks: list[Chunk] = []

    def on_live(self, channel: Channel) -> None:
        self.events.append("live")

    def on_chunk(self, chunk: Chunk) -> None:
        self.chunks.append(chunk)

    def on_end(self) -> None:
        self.events.append("end")

    def on_stall(self) -> None:
        self.events.append("stall")

    def on_resume(self) -> None:
        self.events.append("resume")


class Hangups:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)


def make_ingest(**limits: object) -> PushIngest:
    registry = Registry(HubLimits(reconnect_grace=30.0))
    return PushIngest(registry, StaticStreamKeys({"alice": KEY}), PushLimits(**limits))  # type: ignore[arg-type]


def publisher(
    ingest: PushIngest, *, takeover: bool = False, hang_up: Callable[[str], None] | None = None
) -> PushPublisher:
    return ingest.publisher(
        "alice", transport="test", peer="here", now=0.0, close=hang_up or Hangups(),
        takeover=takeover,
    )  # fmt: skip


def feed_all(pub: PushPublisher, data: bytes, size: int = 1000) -> None:
    for i in range(0, len(data), size):
        pub.feed(data[i : i + size], now=0.0)


async def test_flv_in_slices_goes_live_and_ends_on_finish(flv: bytes) -> None:
    ingest = make_ingest()
    assert await ingest.resolve(KEY) == "alice"
    assert await ingest.resolve("wrong") is None
    viewer = Viewer()
    ingest.registry.open("alice").subscribe(viewer)
    pub = publisher(ingest)
    pub.feed(flv[:2], now=0.0)  # "FL": not enough to tell yet
    assert pub.state is PushState.SNIFFING
    assert ingest.registry.get("alice").state is ChannelState.OFFLINE  # type: ignore[union-attr]
    feed_all(pub, flv[2:], size=777)
    channel = ingest.registry.get("alice")
    assert channel is not None
    assert channel.state is ChannelState.LIVE
    assert channel.publisher is pub
    pub.finish()
    assert channel.state is ChannelState.OFFLINE
    assert viewer.events == ["live", "end"]
    video = [c for c in viewer.chunks if c.track.kind is TrackKind.VIDEO]
    assert len(video) == 30  # every frame of the 1 s at 30 fps reached the viewer
    assert video[0].keyframe
    metrics = ingest.metrics()
    assert metrics["completed"] == 1
    assert metrics["bytes_in"] == len(flv)
    assert metrics["active"] == 0


async def test_garbage_is_unsupported_and_never_claims_the_channel() -> None:
    ingest = make_ingest()
    pub = publisher(ingest)
    pub.feed(b"<html>" + bytes(SNIFF_BYTES // 2), now=0.0)
    with pytest.raises(UnsupportedContainer) as caught:
        pub.feed(bytes(SNIFF_BYTES), now=0.0)
    assert caught.value.http_status == 415
    assert caught.value.ws_close == 1003
    pub.fail(caught.value)
    assert ingest.registry.get("alice") is None  # nothing was created, nobody noticed
    assert ingest.metrics()["refused"] == 1

    short = publisher(ingest)
    short.feed(b"hello", now=0.0)
    with pytest.raises(UnsupportedContainer):
        short.finish()  # ended before the container was clear


async def test_rate_bound_is_an_average_with_a_burst(flv: bytes) -> None:
    ingest = make_ingest(max_bitrate=8_000, burst_seconds=1.0)  # 1000 bytes/s, 1 s deep
    pub = publisher(ingest)
    pub.feed(flv[:900], now=0.0)
    pub.feed(flv[900:1800], now=1.0)  # refilled
    with pytest.raises(RateExceeded) as caught:
        pub.feed(flv[1800:2400], now=1.1)
    assert caught.value.http_status == 429
    assert caught.value.ws_close == 1009


async def test_corrupt_stream_ends_the_broadcast(flv: bytes) -> None:
    ingest = make_ingest()
    viewer = Viewer()
    ingest.registry.open("alice").subscribe(viewer)
    pub = publisher(ingest)
    feed_all(pub, flv[: len(flv) // 2])
    with pytest.raises(FlvError) as caught:
        pub.feed(b"\x55" * 20_000, now=0.0)  # a cut tag, then noise
    assert caught.value.http_status == 400
    pub.fail(caught.value)
    assert viewer.events == ["live", "end"]
    assert ingest.metrics()["failed"] == 1
    assert LimitExceeded("big").http_status == 413
    assert ProtocolError("bad").ws_close == 1003


async def test_second_publisher_is_busy_unless_it_takes_over(flv: bytes) -> None:
    ingest = make_ingest()
    first = publisher(ingest)
    feed_all(first, flv)
    with pytest.raises(ChannelBusy):
        publisher(ingest).claim()
    first.finish()

    # A browser whose old socket still looks open comes back on a new one.
    old_hangups = Hangups()
    old = publisher(ingest, takeover=True, hang_up=old_hangups)
    feed_all(old, flv[: len(flv) // 2])
    channel = ingest.registry.get("alice")
    assert channel is not None
    assert channel.live
    broadcast = channel.broadcast_id
    new = publisher(ingest, takeover=True)
    new.claim()
    assert old.state is PushState.ENDED
    assert old_hangups.reasons == ["replaced by a newer connection"]
    assert channel.publisher is new
    feed_all(new, flv)
    assert channel.live
    assert channel.broadcast_id == broadcast  # the same broadcast goes on
    # An RTMP-style publisher (no takeover) is never pushed aside.
    with pytest.raises(ChannelBusy):
        publisher(ingest).claim()


async def test_lost_waits_in_grace_and_a_new_push_resumes(flv: bytes) -> None:
    ingest = make_ingest()
    viewer = Viewer()
    channel = ingest.registry.open("alice")
    channel.subscribe(viewer)
    first = publisher(ingest)
    feed_all(first, flv[: len(flv) // 2])
    broadcast = channel.broadcast_id
    first.lost("connection dropped")
    assert channel.state is ChannelState.RECONNECTING
    second = publisher(ingest)
    feed_all(second, flv)
    second.finish()
    assert channel.broadcast_id == broadcast
    assert viewer.events == ["live", "stall", "resume", "end"]
    times = [c.time for c in viewer.chunks if c.track.kind is TrackKind.VIDEO]
    assert times == sorted(times)  # the second stream continues the first's timeline
    assert ingest.metrics()["lost"] == 1


async def test_restarted_container_continues_the_broadcast(flv: bytes) -> None:
    ingest = make_ingest()
    viewer = Viewer()
    channel = ingest.registry.open("alice")
    channel.subscribe(viewer)
    pub = publisher(ingest)
    feed_all(pub, flv)
    broadcast = channel.broadcast_id
    pub.restart_container()  # a browser restarted its MediaRecorder: timestamps from 0
    feed_all(pub, flv)
    pub.finish()
    assert channel.broadcast_id == broadcast
    assert viewer.events == ["live", "stall", "resume", "end"]
    times = [c.time for c in viewer.chunks if c.track.kind is TrackKind.VIDEO]
    assert len(times) == 60
    assert times == sorted(times)


async def test_operator_disconnect_ends_and_hangs_up(flv: bytes) -> None:
    ingest = make_ingest()
    hangups = Hangups()
    pub = publisher(ingest, hang_up=hangups)
    feed_all(pub, flv[: len(flv) // 2])
    channel = ingest.registry.get("alice")
    assert channel is not None
    channel.publisher.disconnect("stopped by an admin")  # type: ignore[union-attr]
    assert hangups.reasons == ["stopped by an admin"]
    assert channel.state is ChannelState.OFFLINE
    pub.feed(flv, now=0.0)  # whatever was still in flight is ignored
    assert channel.state is ChannelState.OFFLINE


class FakeTranscoder:
    """Stands in for the PyAV transcoder: "encodes" by relabelling the frames H.264."""

    def __init__(self, track: Track, on_output: Callable[[list[Track | Frame]], None]) -> None:
        self.on_output = on_output
        self.track = Track(VIDEO_TRACK_ID, TrackKind.VIDEO, Codec.H264, track.timescale,
                           b"", "avc1.42c01e", track.width, track.height)  # fmt: skip
        self.fed: list[Frame] = []
        self.closed = False
        self.frames_in = self.frames_out = self.dropped = self.errors = 0

    def feed(self, frame: Frame) -> None:
        self.fed.append(frame)

    def close(self) -> None:
        self.closed = True


async def test_vp8_goes_through_the_transcoder(monkeypatch: pytest.MonkeyPatch) -> None:
    track = Track(VIDEO_TRACK_ID, TrackKind.VIDEO, Codec.VP8, 1000, b"", "vp8", 320, 180)
    audio = Track(2, TrackKind.AUDIO, Codec.AAC, 1000, b"\x12\x10", "mp4a.40.2",
                  sample_rate=44100, channels=2)  # fmt: skip
    frames = [Frame(VIDEO_TRACK_ID, t, t, t == 0, b"vp8") for t in range(0, 100, 33)]
    sound = [Frame(2, t, t, True, b"aac") for t in range(0, 100, 23)]

    class Demuxer:
        def feed(self, data: bytes) -> list[Track | Frame]:
            return [track, audio, *sound[:2], *frames, *sound[2:]]

    monkeypatch.setattr(push_module, "open_demuxer", lambda kind: Demuxer())
    made: list[FakeTranscoder] = []

    def factory(t: Track, out: Callable[[list[Track | Frame]], None], label: str) -> FakeTranscoder:
        made.append(FakeTranscoder(t, out))
        return made[-1]

    ingest = make_ingest()
    ingest.transcoder = factory
    pub = publisher(ingest)
    pub.feed(b"FLV\x01" + bytes(20), now=0.0)
    channel = ingest.registry.get("alice")
    assert channel is not None
    (transcoder,) = made
    assert transcoder.fed == frames  # VP8 frames never reach the hub as they are
    assert channel.tracks == {2: audio}
    assert channel.frames_in == 0  # audio waits for the first transcoded picture
    transcoder.on_output([transcoder.track, *(
        Frame(VIDEO_TRACK_ID, f.dts, f.pts, f.keyframe, b"\0\0\0\1\x65") for f in frames
    )])  # fmt: skip
    assert channel.tracks[VIDEO_TRACK_ID].codec is Codec.H264
    assert channel.live
    pub.finish()
    assert transcoder.closed


async def test_transcodes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """VP8 pushes beyond transcode_max_streams are refused with 503 / close 1013, and a
    slot frees when a transcoded push ends."""
    track = Track(VIDEO_TRACK_ID, TrackKind.VIDEO, Codec.VP8, 1000, b"", "vp8", 320, 180)
    audio = Track(2, TrackKind.AUDIO, Codec.AAC, 1000, b"\x12\x10", "mp4a.40.2",
                  sample_rate=44100, channels=2)  # fmt: skip
    frames = [Frame(VIDEO_TRACK_ID, t, t, t == 0, b"vp8") for t in range(0, 100, 33)]

    class Demuxer:
        def feed(self, data: bytes) -> list[Track | Frame]:
            return [track, audio, *frames]

    monkeypatch.setattr(push_module, "open_demuxer", lambda kind: Demuxer())
    ingest = make_ingest(max_transcodes=1)
    ingest.transcoder = lambda t, out, label: FakeTranscoder(t, out)
    header = b"FLV\x01" + bytes(20)

    def vp8_push(name: str) -> PushPublisher:
        return ingest.publisher(name, transport="test", peer="here", now=0.0, close=Hangups())

    first = vp8_push("alice")
    first.feed(header, now=0.0)
    second = vp8_push("bob")
    with pytest.raises(TranscodersBusy) as refused:
        second.feed(header, now=0.0)
    assert "limit" in str(refused.value)
    assert refused.value.http_status == 503
    assert refused.value.ws_close == 1013
    first.finish()
    third = vp8_push("carol")
    third.feed(header, now=0.0)
    assert ingest.transcoding == {third}


DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize(
    ("capture", "codecs"),
    [
        ("mediarecorder_vp9_opus.webm", ("vp09", "opus")),
        ("mediarecorder_h264_opus.webm", ("avc1", "opus")),
        ("mediarecorder_av1_opus.webm", ("av01", "opus")),
        ("mediarecorder_vp8_opus.webm", ("avc1", "opus")),  # transcoded by PyAV
        ("mediarecorder_h264_opus.mp4", ("avc1", "opus")),
        ("mediarecorder_vp9_opus.mp4", ("vp09", "opus")),
        ("mediarecorder_av1_opus.mp4", ("av01", "opus")),
    ],
)
async def test_chromium_mediarecorder_uploads(capture: str, codecs: tuple[str, str]) -> None:
    """What Chromium's MediaRecorder uploads (golden captures, 250 ms timeslices) goes
    live once, with both tracks in its one init segment, and every video frame."""
    ingest = make_ingest()
    viewer = Viewer()
    channel = ingest.registry.open("alice")
    channel.subscribe(viewer)
    pub = publisher(ingest)
    data = (DATA / capture).read_bytes()
    step = len(data) // 6 + 1
    for i in range(0, len(data), step):
        pub.feed(data[i : i + step], now=0.0)
        await asyncio.sleep(0.02)
    await pub.drain()
    mime = channel.mime
    pub.finish()
    assert viewer.events == ["live", "end"]  # no second init segment for a late track
    assert all(codec in mime for codec in codecs), mime
    video = [f for c in viewer.chunks for t, f in c.frames if t.kind is TrackKind.VIDEO]
    audio = [f for c in viewer.chunks for t, f in c.frames if t.kind is TrackKind.AUDIO]
    assert audio
    if "vp8" in capture:
        # The transcoder may shed frames when its thread cannot keep up (loaded CI).
        assert pub.video_frames_in - 5 <= len(video) <= pub.video_frames_in
    else:
        assert len(video) == pub.video_frames_in  # every video frame reached the viewers
    assert video[0].keyframe
