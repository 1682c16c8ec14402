"""The hub with real media: frames from an ffmpeg-made FLV, muxed once, fanned out."""

from __future__ import annotations

import dataclasses

import pytest

from strom.delivery.backpressure import BackpressureGate, Verdict, ViewerLimits
from strom.delivery.hls import HlsRendition
from strom.live.channel import (
    CarriedOver,
    Channel,
    ChannelBusy,
    HubLimits,
    Subscriber,
    TooManyViewers,
)
from strom.live.chunk import Chunk
from strom.live.registry import Registry
from strom.media.hls import HlsSettings
from strom.media.model import AUDIO_TRACK_ID, Frame, Track, TrackKind
from tests.helpers import MediaFile
from tests.helpers.hub import feed, read_flv, video_frames


@pytest.fixture(scope="module")
def av_items(av_media: MediaFile) -> list[Track | Frame]:
    return read_flv(av_media.path)


class Recorder(Subscriber):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.chunks: list[Chunk] = []

    def on_live(self, channel: Channel) -> None:
        assert channel.init_segment is not None
        self.events.append("live")

    def on_chunk(self, chunk: Chunk) -> None:
        self.events.append("chunk")
        self.chunks.append(chunk)

    def on_end(self) -> None:
        self.events.append("end")


def test_viewer_waiting_before_live_gets_everything(av_items: list[Track | Frame]) -> None:
    channel = Channel("alice")
    early = Recorder()
    channel.subscribe(early)
    assert early.events == []
    channel.claim(publisher := object())
    feed(channel, av_items)
    assert early.events[0] == "live"
    assert early.chunks[0].keyframe
    assert early.chunks[0].track.kind is TrackKind.VIDEO
    frames = [i for i in av_items if isinstance(i, Frame)]
    # Audio rides along with the next video frame: one write per video frame.
    assert len(early.chunks) == len(video_frames(av_items))
    channel.release(publisher)
    assert early.events[-1] == "end"
    # Audio before the first video keyframe cannot be played yet; everything after is
    # sent, the audio held at the end included.
    assert sum(len(c.frames) for c in early.chunks) >= len(frames) - 3
    assert sum(1 for c in early.chunks if c.track.kind is TrackKind.VIDEO) == len(
        video_frames(av_items)
    )
    assert not channel.live


def test_late_joiner_gets_gop_and_shares_chunk_objects(av_items: list[Track | Frame]) -> None:
    channel = Channel("alice")
    first = Recorder()
    channel.subscribe(first)
    channel.claim(object())
    half = len(av_items) // 2
    feed(channel, av_items[:half])
    late = Recorder()
    channel.subscribe(late)
    assert late.events[0] == "live"
    assert late.chunks[0].keyframe
    assert late.chunks[0] is channel.gop[0]
    feed(channel, av_items[half:])
    # Every viewer receives the very same chunk objects: muxed once, written many times.
    tail = first.chunks[-10:]
    assert all(a is b for a, b in zip(tail, late.chunks[-10:], strict=True))


def test_second_publisher_is_refused() -> None:
    channel = Channel("alice")
    owner = object()
    channel.claim(owner)
    with pytest.raises(ChannelBusy):
        channel.claim(object())
    channel.release(object())  # not the owner: nothing happens
    assert channel.publisher is owner


def test_gop_cache_is_bounded(av_items: list[Track | Frame]) -> None:
    channel = Channel("alice", HubLimits(gop_cache_max_bytes=20_000))
    channel.claim(object())
    frames = [i for i in av_items if isinstance(i, Frame)]
    tracks = [i for i in av_items if isinstance(i, Track)]
    # Feed into the middle of the second GOP (keyframe every 30 video frames).
    second_gop = [i for i, f in enumerate(frames) if f.track_id == 1 and f.keyframe][1]
    feed(channel, tracks + frames[: second_gop + 40])
    assert sum(len(c.data) for c in channel.gop) <= 20_000
    late = Recorder()
    channel.subscribe(late)
    # The GOP was too big to keep: the late joiner waits for the next keyframe...
    assert late.events == ["live"]
    feed(channel, frames[second_gop + 40 :])
    # ...and a viewer's gate starts it there, decodable.
    gate = BackpressureGate(ViewerLimits(), lambda: 0.0)
    sent = [c for c in late.chunks if gate.admit(c, 0) is Verdict.SEND]
    assert sent[0].keyframe
    assert sent[0].track.kind is TrackKind.VIDEO


def test_codec_change_sends_new_init(av_items: list[Track | Frame]) -> None:
    channel = Channel("alice")
    viewer = Recorder()
    channel.subscribe(viewer)
    hls = HlsRendition(channel, HlsSettings())
    channel.subscribe(hls, internal=True)
    channel.claim(object())
    feed(channel, av_items)
    assert viewer.events.count("live") == 1
    audio = channel.tracks[AUDIO_TRACK_ID]
    channel.set_track(dataclasses.replace(audio, channels=1, config=bytes([0x12, 0x08])))
    feed(channel, [i for i in av_items if isinstance(i, Frame)][:60])
    assert viewer.events.count("live") == 2
    assert "#EXT-X-DISCONTINUITY" in hls.stream.playlist()


def test_audio_only_broadcast_starts_on_audio(av_items: list[Track | Frame]) -> None:
    channel = Channel("radio")
    viewer = Recorder()
    channel.subscribe(viewer)
    channel.claim(object())
    channel.expect_tracks(video=False)
    audio_only = [
        i
        for i in av_items
        if (isinstance(i, Track) and i.kind is TrackKind.AUDIO)
        or (isinstance(i, Frame) and i.track_id == AUDIO_TRACK_ID)
    ]
    feed(channel, audio_only)
    assert viewer.events[0] == "live"
    assert "mp4a" in channel.mime
    assert "avc1" not in channel.mime


def test_audio_before_the_video_track_waits_for_the_video(
    av_items: list[Track | Frame],
) -> None:
    """A container that announces (or an encoder that sends) its audio first: the
    broadcast starts at the first video keyframe with both tracks in one init segment,
    not audio-only with a second init when the video comes."""
    channel = Channel("alice")
    viewer = Recorder()
    channel.subscribe(viewer)
    channel.claim(object())
    audio_track = next(i for i in av_items if isinstance(i, Track) and i.kind is TrackKind.AUDIO)
    audio = [i for i in av_items if isinstance(i, Frame) and i.track_id == AUDIO_TRACK_ID]
    feed(channel, [audio_track, *audio[:20]])
    assert viewer.events == []
    feed(channel, av_items)
    assert viewer.events.count("live") == 1
    assert "avc1" in channel.mime
    assert "mp4a" in channel.mime
    # Without a video track, audio alone still starts once it is clear none is coming.
    radio = Channel("radio")
    listener = Recorder()
    radio.subscribe(listener)
    radio.claim(object())
    feed(radio, [audio_track, *audio[:150]])
    assert listener.events.count("live") == 1
    assert "avc1" not in radio.mime


def test_viewer_limit() -> None:
    channel = Channel("alice", HubLimits(max_viewers=1))
    channel.subscribe(Recorder())
    with pytest.raises(TooManyViewers):
        channel.subscribe(Recorder())


def _chunk(keyframe: bool) -> Chunk:
    track = Track(1, TrackKind.VIDEO, codec=None, timescale=1000, config=b"", codec_string="")  # type: ignore[arg-type]
    return Chunk(b"x", track, (), keyframe, 0.0, 0.0)


def test_slow_viewer_skips_to_next_keyframe_then_is_dropped() -> None:
    now = [0.0]
    gate = BackpressureGate(
        ViewerLimits(skip_bytes=100, drop_bytes=1000, drop_seconds=5), lambda: now[0]
    )
    assert gate.admit(_chunk(False), 0) is Verdict.SKIP  # a new viewer starts at a keyframe
    assert gate.admit(_chunk(True), 0) is Verdict.SEND
    assert gate.admit(_chunk(False), 50) is Verdict.SEND
    assert gate.admit(_chunk(False), 150) is Verdict.SKIP  # behind: skip ahead
    assert gate.admit(_chunk(False), 0) is Verdict.SKIP  # caught up, but mid-GOP
    assert gate.admit(_chunk(True), 0) is Verdict.SEND  # resumes at the keyframe
    assert gate.admit(_chunk(False), 150) is Verdict.SKIP
    now[0] = 6.0
    assert gate.admit(_chunk(True), 150) is Verdict.DROP  # skipping for too long
    assert gate.admit(_chunk(True), 1001) is Verdict.DROP  # or far too much buffered


class Broken(Recorder):
    """A subscriber with a bug: it raises on its third chunk."""

    def on_chunk(self, chunk: Chunk) -> None:
        super().on_chunk(chunk)
        if len(self.chunks) == 3:
            raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")


def test_a_failing_subscriber_never_reaches_the_publisher(
    av_items: list[Track | Frame], caplog: pytest.LogCaptureFixture
) -> None:
    channel = Channel("alice")
    healthy, broken = Recorder(), Broken()
    channel.subscribe(healthy)
    channel.subscribe(broken)
    channel.claim(object())  # type: ignore[arg-type]
    feed(channel, av_items)  # no exception reaches the publisher's feed
    assert len(broken.chunks) == 3
    assert broken not in channel.subscribers
    assert len(healthy.chunks) > 100  # every other viewer goes on
    assert "failed on a chunk; unsubscribed" in caplog.text


class Stalls(Recorder):
    """A subscriber that wants to know of a stall and a resumption."""

    def on_stall(self) -> None:
        self.events.append("stall")

    def on_resume(self) -> None:
        self.events.append("resume")


async def test_stall_and_resume_are_optional_for_a_subscriber(
    av_items: list[Track | Frame],
) -> None:
    channel = Channel("alice")
    plain, told = Recorder(), Stalls()  # one keeps the protocol's do-nothing defaults
    channel.subscribe(plain)
    channel.subscribe(told)
    tracks = [i for i in av_items if isinstance(i, Track)]
    half = len(av_items) // 2
    channel.claim(first := object())  # type: ignore[arg-type]
    feed(channel, av_items[:half])
    channel.publisher_lost(first)  # type: ignore[arg-type]
    channel.claim(object())  # type: ignore[arg-type]
    feed(channel, tracks + av_items[half:])
    assert told.events.count("stall") == told.events.count("resume") == 1
    assert told.events.index("stall") < told.events.index("resume")
    assert plain.events.count("live") == 1  # the same decoder went on
    assert plain.events[-1] == "chunk"
    assert {plain, told} <= channel.subscribers
    channel.close()


async def test_a_publisher_back_and_gone_before_its_media_ends_the_broadcast(
    av_items: list[Track | Frame],
) -> None:
    """The viewers were told of a stall; the publisher came back and dropped again before
    sending a keyframe: the broadcast ends for them, they are not left waiting."""
    channel = Channel("alice")
    viewer = Stalls()
    channel.subscribe(viewer)
    channel.claim(first := object())  # type: ignore[arg-type]
    feed(channel, av_items)
    channel.publisher_lost(first)  # type: ignore[arg-type]
    channel.claim(second := object())  # type: ignore[arg-type]
    channel.publisher_lost(second)  # type: ignore[arg-type]
    assert not channel.live
    assert viewer.events[-2:] == ["stall", "end"]


class Failing(Recorder):
    """A subscriber whose every callback but on_chunk raises."""

    def on_live(self, channel: Channel) -> None:
        super().on_live(channel)
        raise RuntimeError("broken on_live")

    def on_stall(self) -> None:
        raise RuntimeError("broken on_stall")


async def test_a_subscriber_failing_on_any_callback_never_reaches_the_publisher(
    av_items: list[Track | Frame], caplog: pytest.LogCaptureFixture
) -> None:
    channel = Channel("alice")
    healthy, broken, stalling = Stalls(), Failing(), Failing()
    for sub in (healthy, broken):
        channel.subscribe(sub)
    half = len(av_items) // 2
    channel.claim(publisher := object())  # type: ignore[arg-type]
    feed(channel, av_items[:half])  # the broken on_live comes in the publisher's frame
    assert broken not in channel.subscribers
    stalling.on_live = lambda channel: None  # type: ignore[method-assign]
    channel.subscribe(stalling)
    channel.publisher_lost(publisher)  # type: ignore[arg-type]
    assert stalling not in channel.subscribers
    assert healthy.events[-1] == "stall"
    assert caplog.text.count("failed; unsubscribed") == 2
    channel.close()


def test_internal_subscribers_are_not_an_audience_and_never_refused() -> None:
    channel = Channel("alice", HubLimits(max_viewers=1))
    services = [Recorder(), Recorder()]
    for service in services:
        channel.subscribe(service, internal=True)
    channel.subscribe(viewer := Recorder())
    assert channel.viewers == 1
    with pytest.raises(TooManyViewers):
        channel.subscribe(Recorder())
    with pytest.raises(TooManyViewers):
        channel.subscribe(Recorder(), counted=False)  # a preview is limited too
    channel.unsubscribe(viewer)
    channel.subscribe(Recorder(), counted=False)
    assert channel.viewers == 0


class Leaves(Recorder):
    """Follows one broadcast, as the LL-HLS rendition and the recorder do."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self.channel = channel

    def on_end(self) -> None:
        super().on_end()
        self.channel.unsubscribe(self)


def test_the_registry_forgets_a_channel_its_last_follower_left_at_the_end(
    av_items: list[Track | Frame],
) -> None:
    registry = Registry()
    forgotten: list[Channel] = []
    registry.forget_listeners.append(forgotten.append)
    channel = registry.open("alice")
    channel.claim(publisher := object())  # type: ignore[arg-type]
    channel.subscribe(Leaves(channel), internal=True)
    feed(channel, av_items)
    channel.release(publisher)  # type: ignore[arg-type]
    assert registry.get("alice") is None
    assert forgotten == [channel]


async def test_chunks_muxed_elsewhere_feed_a_channel_as_they_are(
    av_items: list[Track | Frame],
) -> None:
    """What an edge pulling from its origin does: the origin's init segment and chunk
    bytes go into a second channel without a remux, stall and resumption included, and
    its viewers (late joiners too) get exactly what the origin's viewers got."""
    origin, edge = Channel("alice"), Channel("alice")
    at_origin, at_edge = Stalls(), Stalls()
    origin.subscribe(at_origin)
    edge.subscribe(at_edge)
    pull = object()

    class Relay(Subscriber):
        def on_live(self, channel: Channel) -> None:
            assert channel.init_segment is not None
            edge.start_media(sorted(channel.tracks.values(), key=lambda t: t.id),
                             channel.init_segment)  # fmt: skip

        def on_chunk(self, chunk: Chunk) -> None:
            # Over the wire only bytes and a few fields travel: no frames.
            edge.add_chunk(Chunk(chunk.data, chunk.track, (), chunk.keyframe, chunk.time,
                                 chunk.received))  # fmt: skip

        def on_stall(self) -> None:
            edge.publisher_lost(pull)  # type: ignore[arg-type]

        def on_resume(self) -> None:
            edge.claim(pull)  # type: ignore[arg-type]
            assert origin.init_segment is not None
            edge.start_media(list(origin.tracks.values()), origin.init_segment)

        def on_end(self) -> None:
            edge.close()

    origin.subscribe(Relay(), internal=True)
    edge.claim(pull)  # type: ignore[arg-type]
    origin.claim(first := object())  # type: ignore[arg-type]
    tracks = [i for i in av_items if isinstance(i, Track)]
    half = len(av_items) // 2
    feed(origin, av_items[:half])
    assert edge.live
    assert edge.init_segment == origin.init_segment
    assert edge.mime == origin.mime
    late = Recorder()
    edge.subscribe(late)
    origin.publisher_lost(first)  # type: ignore[arg-type]
    origin.claim(second := object())  # type: ignore[arg-type]
    feed(origin, tracks + av_items[half:])
    origin.release(second)  # type: ignore[arg-type]
    assert [c.data for c in at_edge.chunks] == [c.data for c in at_origin.chunks]
    assert late.chunks[0].keyframe
    assert [c.data for c in late.chunks] == [c.data for c in at_origin.chunks][-len(late.chunks) :]
    told = [e for e in at_origin.events if e != "chunk"]
    assert told == ["live", "stall", "resume", "end"]
    assert [e for e in at_edge.events if e != "chunk"] == told
    assert late.events.count("live") == 1
    assert late.events[-1] == "end"


async def test_a_broadcast_carried_over_from_another_node_continues_its_timeline(
    av_items: list[Track | Frame],
) -> None:
    """Node A's broadcast waits for its publisher, who comes to node B: B's channel goes on
    with A's start and just after A's timeline (whoever follows both sees one timeline);
    A's channel is handed over: still waiting, now another node's, nothing ended."""
    changes: list[str] = []
    a = Channel("alice", on_state=lambda c: changes.append(f"{c.state.value} {c.origin}"))
    viewer = Stalls()
    a.subscribe(viewer)
    a.claim(first := object())  # type: ignore[arg-type]
    feed(a, av_items)
    a.publisher_lost(first)  # type: ignore[arg-type]
    assert a.timeline > 3.0
    b = Channel("alice")
    b.carry_on(CarriedOver(a.started_at, a.timeline))
    there = Recorder()
    b.subscribe(there)
    b.claim(object())  # type: ignore[arg-type]
    feed(b, av_items)
    assert b.started_at == a.started_at
    assert there.chunks[0].time > a.timeline  # after where A stopped, not from zero
    assert there.chunks[0].time < a.timeline + 0.5
    a.moved("http://b.test:8080")
    assert (a.state.value, a.origin) == ("reconnecting", "http://b.test:8080")
    assert changes[-1] == "reconnecting http://b.test:8080"  # the services were told
    assert viewer.events[-1] == "stall"  # nothing ended for its viewers
    b.carry_on(None)
    b.close()
    b.claim(object())  # type: ignore[arg-type]
    assert b.started_at != a.started_at  # a claim of its own: a broadcast of its own
    a.close()
    assert viewer.events[-1] == "end"
