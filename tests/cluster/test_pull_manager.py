"""PullManager with fakes: who starts a pull and when it stops (no network: the locator
knows no upstream), and ChannelPull feeding the local hub from upstream events."""

from __future__ import annotations

import asyncio

from strom.cluster import wire
from strom.cluster.pull import ChannelPull, PullLimits, PullManager
from strom.live.channel import Channel, Subscriber
from strom.live.chunk import Chunk
from strom.live.registry import Registry
from strom.media.model import Codec, Track, TrackKind
from tests.helpers.watching import until

VIDEO = Track(1, TrackKind.VIDEO, Codec.H264, 1000, b"\x01\x64\x00\x1f", "avc1.64001f", 64, 64)
UPSTREAM = "http://upstream.test:8080"


class Nowhere:
    """A locator that knows no upstream (the pull keeps asking, with backoff)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def locate(self, channel: str) -> str | None:
        self.asked.append(channel)
        return None


class Viewer(Subscriber):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_live(self, channel: Channel) -> None:
        self.seen.append("live")

    def on_chunk(self, chunk: Chunk) -> None:
        self.seen.append("chunk")

    def on_end(self) -> None:
        self.seen.append("end")

    def on_stall(self) -> None:
        self.seen.append("stall")

    def on_resume(self) -> None:
        self.seen.append("resume")


def manager(linger: float = 0.1) -> tuple[Registry, Nowhere, PullManager]:
    registry, locator = Registry(), Nowhere()
    return registry, locator, PullManager(registry, locator, b"secret", PullLimits(linger=linger))


async def test_the_first_viewer_starts_one_pull_and_it_stops_after_the_linger() -> None:
    # a linger twenty times the time away: a loaded machine's late sleep stays inside
    registry, locator, pulls = manager(linger=1.0)
    channel = registry.open("alice")
    channel.subscribe(Viewer(), internal=True)  # the LL-HLS rendition, a recorder: no
    channel.subscribe(Viewer(), counted=False)  # the streamer's preview: no
    assert pulls.metrics()["active"] == 0
    first, second = Viewer(), Viewer()
    channel.subscribe(first)
    channel.subscribe(second)
    assert pulls.metrics()["active"] == 1
    await until(lambda: locator.asked == ["alice"])
    channel.unsubscribe(first)
    channel.unsubscribe(second)
    await asyncio.sleep(0.05)
    # back within the linger: the same pull goes on
    channel.subscribe(first)
    await asyncio.sleep(0.15)
    assert pulls.metrics() == {"active": 1, "started_total": 1, "channels": {"alice": None}}
    channel.unsubscribe(first)
    await until(lambda: pulls.metrics()["active"] == 0, timeout=5)
    assert pulls.started_total == 1
    await pulls.stop()


async def test_a_channel_ingested_here_is_not_pulled() -> None:
    registry, _, pulls = manager()
    channel = registry.open("alice")
    channel.claim(object())  # type: ignore[arg-type]
    channel.subscribe(Viewer())
    assert pulls.metrics()["active"] == 0
    await pulls.stop()


async def test_a_downstream_pull_holds_the_channel() -> None:
    _, _, pulls = manager()
    pulls.hold("alice")
    pulls.hold("alice")
    pulls.let_go("alice")
    await asyncio.sleep(0.2)
    assert pulls.metrics()["active"] == 1
    pulls.let_go("alice")
    await until(lambda: pulls.metrics()["active"] == 0)
    await pulls.stop()


def chunk(keyframe: bool) -> Chunk:
    return Chunk(b"moof-mdat", VIDEO, (), keyframe, 1.0, 2.0)


async def test_upstream_events_drive_the_local_hub() -> None:
    registry, _, pulls = manager()
    channel = registry.open("alice")
    viewer = Viewer()
    channel.subscribe(viewer)
    pull = ChannelPull(pulls, "alice")
    start = wire.Start("alice", 41, 1700000000.0, (VIDEO,), b"init")

    pull.apply(start, UPSTREAM)
    assert channel.publisher is pull
    assert (channel.origin, channel.broadcast_id, channel.started_at) == (
        UPSTREAM, 41, 1700000000.0,
    )  # fmt: skip
    assert channel.init_segment == b"init"
    pull.apply(wire.ChunkArrived(chunk(True)), UPSTREAM)
    pull.apply(wire.StateChanged(wire.Kind.STALL), UPSTREAM)
    pull.apply(wire.StateChanged(wire.Kind.RESUME), UPSTREAM)
    pull.apply(wire.ChunkArrived(chunk(False)), UPSTREAM)
    pull.apply(wire.StateChanged(wire.Kind.STALL), UPSTREAM)
    # The source started over (same codecs): a new timeline for the players, not a resume.
    pull.apply(start, UPSTREAM)
    pull.apply(wire.ChunkArrived(chunk(True)), UPSTREAM)
    assert channel.broadcast_id == 41  # the same broadcast here
    pull.apply(wire.StateChanged(wire.Kind.END), UPSTREAM)
    assert viewer.seen == [
        "live", "chunk", "stall", "resume", "chunk", "stall", "live", "chunk", "end",
    ]  # fmt: skip
    assert channel.publisher is None
    assert channel.origin is None
    await pulls.stop()


async def test_a_lost_upstream_is_a_stall_and_the_end_of_the_grace_ends_it() -> None:
    registry = Registry()
    pulls = PullManager(registry, Nowhere(), b"s", PullLimits(linger=0.1))
    channel = registry.open("alice")
    viewer = Viewer()
    channel.subscribe(viewer)
    pull = ChannelPull(pulls, "alice")
    pull.apply(wire.Start("alice", 1, 0.0, (VIDEO,), b"init"), UPSTREAM)
    pull._lost()
    assert viewer.seen == ["live", "stall"]
    await pull.stop()  # nobody to wait for any longer
    assert viewer.seen == ["live", "stall", "end"]
    await pulls.stop()


async def test_new_codec_parameters_upstream_are_a_new_init_here() -> None:
    registry, _, pulls = manager()
    channel = registry.open("alice")
    viewer = Viewer()
    channel.subscribe(viewer)
    pull = ChannelPull(pulls, "alice")
    pull.apply(wire.Start("alice", 3, 0.0, (VIDEO,), b"init"), UPSTREAM)
    pull.apply(wire.ChunkArrived(chunk(True)), UPSTREAM)
    bigger = Track(
        1, TrackKind.VIDEO, Codec.H264, 1000, b"\x01\x64\x00\x28", "avc1.640028", 1920, 1080
    )
    pull.apply(wire.Start("alice", 3, 0.0, (bigger,), b"init 1080p"), UPSTREAM)
    pull.apply(wire.ChunkArrived(chunk(True)), UPSTREAM)
    assert viewer.seen == ["live", "chunk", "live", "chunk"]
    assert channel.init_segment == b"init 1080p"
    assert channel.tracks == {1: bigger}
    assert channel.broadcast_id == 3
    await pulls.stop()


async def test_pulls_are_bounded() -> None:
    registry = Registry()
    pulls = PullManager(registry, Nowhere(), b"s", PullLimits(linger=0.1, max_pulls=2))
    for name in ("a", "b", "c"):
        registry.open(name).subscribe(Viewer())
    assert sorted(pulls.metrics()["channels"]) == ["a", "b"]  # type: ignore[call-overload]
    await pulls.stop()


async def test_llhls_requests_keep_a_pull_and_it_stops_a_linger_after_the_last() -> None:
    registry = Registry()
    # a linger ten times the reload interval: a loaded machine's late sleep stays inside
    limits = PullLimits(linger=1.0, hls_wait=0.01)
    pulls = PullManager(registry, Nowhere(), b"s", limits)
    for _ in range(5):  # an LL-HLS player reloading its playlist
        await pulls.touch("alice")
        await asyncio.sleep(0.1)
    assert pulls.metrics()["active"] == 1
    await until(lambda: pulls.metrics()["active"] == 0, timeout=5)
    assert pulls.started_total == 1
    assert registry.get("alice") is None
    await pulls.stop()
