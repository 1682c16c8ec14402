"""Write merging for big audiences (``ws_merge_above``): a viewer of a merging channel
receives exactly the bytes a viewer of a plain one does, in the same order, in about
half the writes; a held chunk waits at most ``ws_merge_hold`` (the timer writes it), a
slow stream (frames further apart than the hold) is never merged, and whatever is held
goes out before a text message or the end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp

from strom.delivery.backpressure import ViewerLimits
from strom.delivery.merge import MergeLimits, Step, WriteMerger
from strom.delivery.ws import WsViewer, ws_frame
from strom.live.channel import Channel
from strom.live.chunk import Chunk
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.model import Frame, Track, TrackKind
from strom.server import StromServer
from tests.helpers import CHANNEL, make_settings
from tests.helpers.hub import FakeTransport

DATA = Path(__file__).resolve().parents[1] / "data"
FRAME_GAP = 1 / 30


class Timers:
    """``call_later`` and ``time`` of a loop that runs only when told."""

    def __init__(self) -> None:
        self.now = 0.0
        self.armed: list[tuple[float, Callable[[], None], Timers.Handle]] = []

    class Handle:
        def __init__(self) -> None:
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timers.Handle:
        handle = Timers.Handle()
        self.armed.append((self.now + delay, callback, handle))
        return handle

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.armed if t[0] <= self.now and not t[2].cancelled]
        self.armed = [t for t in self.armed if t not in due and not t[2].cancelled]
        for _, callback, _ in due:
            callback()


class FakeWs:
    async def close(self, *, code: int, message: bytes) -> bool:
        return True


class Site:
    """A live channel of real media, a merger, and viewers on fake transports; each
    merged viewer has a plain twin (no merger) subscribed at the same moment."""

    def __init__(self, limits: MergeLimits) -> None:
        # 45 video frames (3 keyframes) and their Opus audio
        events = Mp4Demuxer().feed((DATA / "mediarecorder_h264_opus.mp4").read_bytes())
        self.events = events
        self.frames = [e for e in events if isinstance(e, Frame)]
        self.video_id = next(
            e.id for e in events if isinstance(e, Track) and e.kind is TrackKind.VIDEO
        )
        self.channel = Channel("merged")
        self.channel.claim(object())  # type: ignore[arg-type]
        for track in (e for e in events if isinstance(e, Track)):
            self.channel.set_track(track)
        self.timers = Timers()
        self.merger = WriteMerger(limits, ws_frame, self.timers.time, self.timers.call_later)
        self.pairs: list[tuple[FakeTransport, FakeTransport]] = []
        self.next = 0

    def join(self) -> tuple[FakeTransport, FakeTransport]:
        merged, plain = FakeTransport(), FakeTransport()
        viewer = WsViewer(FakeWs(), merged, ViewerLimits(), "m")  # type: ignore[arg-type]
        viewer.merger = self.merger
        self.merger.viewers.add(viewer)
        viewer.joining = True
        self.channel.subscribe(viewer)
        viewer.joining = False
        self.channel.subscribe(WsViewer(FakeWs(), plain, ViewerLimits(), "p"))  # type: ignore[arg-type]
        self.pairs.append((merged, plain))
        return merged, plain

    def play(self, video_frames: int, gap: float = FRAME_GAP) -> None:
        """Feed frames up to and including the next ``video_frames`` video frames,
        ``gap`` seconds apart."""
        while video_frames and self.next < len(self.frames):
            frame = self.frames[self.next]
            self.next += 1
            if frame.track_id == self.video_id:
                self.timers.advance(gap)
                video_frames -= 1
            self.channel.add_frame(frame)

    def assert_same_bytes(self) -> None:
        for merged, plain in self.pairs:
            assert b"".join(merged.written) == b"".join(plain.written)


def _limits(above: int = 1, hold: float = 0.04) -> MergeLimits:
    return MergeLimits(above=above, hold=hold)


async def test_merged_viewers_get_the_same_bytes_in_half_the_writes() -> None:
    site = Site(_limits())
    first, first_plain = site.join()
    site.join()
    site.play(10)
    late, late_plain = site.join()  # joins mid-stream, maybe while a chunk is held
    before = {id(t): len(t.written) for pair in site.pairs for t in pair}
    site.play(30)
    site.timers.advance(1.0)  # the stream pauses: the held chunk goes out by the timer
    site.assert_same_bytes()
    for merged, plain in ((first, first_plain), (late, late_plain)):
        plain_writes = len(plain.written) - before[id(plain)]
        merged_writes = len(merged.written) - before[id(merged)]
        assert plain_writes >= 30  # a chunk a video frame (with its audio)
        assert merged_writes <= plain_writes // 2 + 1


async def test_a_held_chunk_waits_at_most_the_hold() -> None:
    site = Site(_limits(hold=0.04))
    merged, _ = site.join()
    site.join()
    site.play(12)
    assert site.merger.step is Step.HOLD or site.merger.step is Step.FLUSH
    if site.merger.step is Step.FLUSH:
        site.play(1)
    assert site.merger.step is Step.HOLD
    before = len(merged.written)
    site.timers.advance(0.039)
    assert len(merged.written) == before  # still held
    site.timers.advance(0.002)
    assert len(merged.written) == before + 1  # the hold is over: written alone
    site.assert_same_bytes()


async def test_slow_streams_and_small_audiences_are_not_merged() -> None:
    slow = Site(_limits(hold=0.02))  # frames 33 ms apart: never held
    merged, plain = slow.join()
    slow.join()
    slow.play(30)
    assert len(merged.written) == len(plain.written)
    small = Site(_limits(above=2))  # two viewers: not more than two
    merged, plain = small.join()
    small.join()
    small.play(30)
    assert len(merged.written) == len(plain.written)
    slow.assert_same_bytes()
    small.assert_same_bytes()


async def test_what_is_held_goes_before_the_end() -> None:
    site = Site(_limits())
    site.join()
    site.join()
    site.play(11)
    if site.merger.step is not Step.HOLD:
        site.play(1)
    assert site.merger.step is Step.HOLD
    site.channel.close()
    await asyncio.sleep(0)  # the viewers' close tasks
    site.assert_same_bytes()
    for merged, _ in site.pairs:
        assert merged.written[-1].endswith(b'{"type":"end"}')


class Recorder:
    """A plain subscriber: the chunks as the hub fans them out."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def on_live(self, channel: Channel) -> None:
        pass

    def on_chunk(self, chunk: Chunk) -> None:
        self.chunks.append(chunk.data)

    def on_end(self) -> None:
        pass


async def _collect(http: aiohttp.ClientSession, url: str) -> list[bytes]:
    """Every binary message of one viewer until the server closes."""
    got: list[bytes] = []
    async with http.ws_connect(url) as ws:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                got.append(msg.data)
    return got


async def test_viewers_of_a_real_server_get_every_chunk_once_in_order(tmp_path: Path) -> None:
    srv = StromServer(make_settings(tmp_path, ws_merge_above=1))
    await srv.start()
    try:
        site = Site(_limits())  # the media only
        url = f"http://127.0.0.1:{srv.http_port}/live/{CHANNEL}/ws"
        async with aiohttp.ClientSession() as http:
            viewers = [asyncio.create_task(_collect(http, url)) for _ in range(3)]
            while srv.ws_delivery.viewers < 3:  # noqa: ASYNC110 - the server's count
                await asyncio.sleep(0.01)
            channel = srv.registry.open(CHANNEL)
            recorder = Recorder()
            channel.subscribe(recorder, internal=True)
            publisher = object()
            channel.claim(publisher)  # type: ignore[arg-type]
            for item in site.events:
                if isinstance(item, Track):
                    channel.set_track(item)
                    continue
                channel.add_frame(item)
                if item.track_id == site.video_id:
                    await asyncio.sleep(0.01)  # frames 10 ms apart: each second one held
            init = channel.init_segment
            channel.release(publisher)  # type: ignore[arg-type]
            got = await asyncio.wait_for(asyncio.gather(*viewers), 10)
        assert len(recorder.chunks) >= 45  # a video frame (with its audio) each, at least
        for messages in got:
            assert messages[0] == init  # then every chunk, once, in order
            assert messages[1:] == recorder.chunks
    finally:
        await srv.stop()
