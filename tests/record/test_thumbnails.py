"""Thumbnails: a real ffmpeg-made stream through the hub, a JPEG that shows its picture."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest

from strom.live.channel import Channel
from strom.live.registry import Registry
from strom.media.model import Frame, Track
from strom.record import Thumbnail, ThumbnailWorker
from strom.record.thumbnails import mjpeg_qscale, thumbnail_size
from tests.helpers import MediaFile, make_media, need_tool
from tests.helpers.hub import feed, read_flv, video_frames

GOP = 30  # make_media's default: an IDR every 30 frames, so keyframe k is picture 30*k
THUMB_W, THUMB_H = 320, 180


class Publisher:
    def disconnect(self, reason: str) -> None:
        pass


@pytest.fixture(scope="module")
def hd_media(media_dir: Path) -> MediaFile:
    return make_media(
        media_dir / "hd.flv", size="1280x720", seconds=3.0, audio=False, bitrate="2000k"
    )


@pytest.fixture(scope="module")
def hd_items(hd_media: MediaFile) -> list[Track | Frame]:
    return read_flv(hd_media.path)


@pytest.fixture(scope="module")
def sd_items(av_media: MediaFile) -> list[Track | Frame]:
    return read_flv(av_media.path)


def reference_pictures(media: MediaFile) -> list[bytes]:
    """Every keyframe's picture as ffmpeg itself decodes and scales it: rgb24, 320x180."""
    ffmpeg = need_tool("ffmpeg")
    keyframes = f"select='not(mod(n\\,{GOP}))',scale={THUMB_W}:{THUMB_H}"
    cmd = [
        ffmpeg, "-v", "error", "-i", str(media.path), "-vf", keyframes,
        "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
    ]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, timeout=60).stdout
    size = THUMB_W * THUMB_H * 3
    return [out[i : i + size] for i in range(0, len(out), size)]


def jpeg_pixels(jpeg: bytes) -> tuple[int, int, bytes]:
    """Decode a JPEG with PyAV: (width, height, rgb24 rows without padding)."""
    with av.open(io.BytesIO(jpeg)) as container:
        frame = next(container.decode(video=0))
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    row = rgb.width * 3
    raw = bytes(plane)
    pixels = b"".join(
        raw[y * plane.line_size : y * plane.line_size + row] for y in range(rgb.height)
    )
    return rgb.width, rgb.height, pixels


def mean_abs_diff(a: bytes, b: bytes) -> float:
    assert len(a) == len(b)
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def keyframe_end(items: list[Track | Frame], k: int) -> int:
    """Where to stop feeding so that the ``k``-th video keyframe is the latest one."""
    keyframes = [f for f in video_frames(items) if f.keyframe]
    return items.index(keyframes[k]) + 12


def live_until_keyframe(items: list[Track | Frame], k: int) -> Channel:
    channel = Channel("alice")
    channel.claim(Publisher())
    feed(channel, items[: keyframe_end(items, k)])
    assert channel.gop[0].frame is [f for f in video_frames(items) if f.keyframe][k]
    return channel


@pytest.mark.parametrize("media", ["hd", "sd"])
async def test_thumbnail_shows_the_latest_keyframe(
    media: str, request: pytest.FixtureRequest
) -> None:
    source: MediaFile = request.getfixturevalue("hd_media" if media == "hd" else "av_media")
    items: list[Track | Frame] = request.getfixturevalue(f"{media}_items")
    channel = live_until_keyframe(items, 2)
    worker = ThumbnailWorker(Registry())
    try:
        thumb = await worker.refresh(channel)
    finally:
        await worker.stop()
    assert isinstance(thumb, Thumbnail)
    assert thumb.jpeg.startswith(b"\xff\xd8")
    assert thumb.broadcast_id == channel.broadcast_id
    assert worker.get("alice") is thumb
    width, height, pixels = jpeg_pixels(thumb.jpeg)
    assert (width, height) == (THUMB_W, THUMB_H) == (thumb.width, thumb.height)
    # The picture is the third keyframe's (picture 60) as ffmpeg decodes it: close to it,
    # and closer to it than to the other keyframes' pictures (or to a black frame).
    references = reference_pictures(source)
    diffs = [mean_abs_diff(pixels, ref) for ref in references]
    assert diffs[2] < 6.0, diffs
    assert diffs[2] == min(diffs), diffs
    assert mean_abs_diff(pixels, bytes(len(pixels))) > 60


async def test_same_picture_same_etag(sd_items: list[Track | Frame]) -> None:
    channel = live_until_keyframe(sd_items, 1)
    worker = ThumbnailWorker(Registry())
    try:
        first = await worker.refresh(channel)
        again = await worker.refresh(channel)
        feed(channel, sd_items[keyframe_end(sd_items, 1) :])
        later = await worker.refresh(channel)
    finally:
        await worker.stop()
    assert first is not None
    assert again is not None
    assert later is not None
    # An unchanged keyframe gives the very same JPEG (HTTP 304 for caches); a new one not.
    assert first.etag == again.etag
    assert later.etag != first.etag


async def test_no_keyframe_yet_gives_none(sd_items: list[Track | Frame]) -> None:
    channel = Channel("alice")
    worker = ThumbnailWorker(Registry())
    try:
        assert await worker.refresh(channel) is None  # offline
        channel.claim(Publisher())
        tracks = [i for i in sd_items if isinstance(i, Track)]
        audio = [i for i in sd_items if isinstance(i, Frame) and i.track_id != 1][:5]
        feed(channel, tracks + audio)  # codec configs and audio, but no video keyframe
        assert not channel.live
        assert await worker.refresh(channel) is None
        assert worker.get("alice") is None
    finally:
        await worker.stop()


def feed_garbage_keyframe(channel: Channel, items: list[Track | Frame], n: int = 0) -> None:
    """Real codec configs, then a "keyframe" whose NAL length prefixes point past it."""
    feed(channel, [i for i in items if isinstance(i, Track)])
    channel.add_frame(Frame(1, n * 33, n * 33, True, bytes(range(256)) * 40))
    assert channel.live


async def test_garbage_keyframe_gives_none_and_one_log_line(
    sd_items: list[Track | Frame], caplog: pytest.LogCaptureFixture
) -> None:
    channel = Channel("mallory")
    channel.claim(Publisher())
    worker = ThumbnailWorker(Registry())
    caplog.set_level(logging.WARNING, logger="strom.record")
    try:
        for n in range(3):
            feed_garbage_keyframe(channel, sd_items, n)
            assert await worker.refresh(channel) is None
    finally:
        await worker.stop()
    lines = [r for r in caplog.records if r.name.startswith("strom.record")]
    assert len(lines) == 1
    assert "mallory" in lines[0].getMessage()
    assert worker.get("mallory") is None


async def test_oversized_keyframe_is_skipped(
    sd_items: list[Track | Frame], caplog: pytest.LogCaptureFixture
) -> None:
    channel = live_until_keyframe(sd_items, 0)
    worker = ThumbnailWorker(Registry(), max_capture_bytes=1000)
    caplog.set_level(logging.WARNING, logger="strom.record")
    try:
        assert await worker.refresh(channel) is None
        assert await worker.refresh(channel) is None
    finally:
        await worker.stop()
    assert ["over the thumbnail limit" in r.getMessage() for r in caplog.records] == [True]


async def test_worker_loop_follows_live_channels(
    hd_items: list[Track | Frame],
    sd_items: list[Track | Frame],
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Registry()
    alice, bob, mallory = (registry.open(name) for name in ("alice", "bob", "mallory"))
    publishers = {name: Publisher() for name in ("alice", "bob", "mallory")}
    for channel in (alice, bob, mallory):
        channel.claim(publishers[channel.name])
    feed(alice, hd_items[: len(hd_items) // 2])
    feed(bob, sd_items[: len(sd_items) // 2])
    feed_garbage_keyframe(mallory, sd_items)
    caplog.set_level(logging.WARNING, logger="strom.record")
    worker = ThumbnailWorker(registry, interval=0.2, keep_offline=0.3)
    worker.start()
    try:
        await wait_for(lambda: worker.get("alice") and worker.get("bob"))
        first = worker.get("alice")
        assert first is not None
        # The loop keeps taking new pictures of a live channel...
        feed(alice, hd_items[len(hd_items) // 2 :])
        await wait_for(lambda: (t := worker.get("alice")) and t.etag != first.etag)
        # ...while a channel that breaks the decoder gets none, and is logged once.
        assert worker.get("mallory") is None
        # Offline: the last picture stays (an offline card), then goes after keep_offline.
        last = worker.get("bob")
        bob.release(publishers["bob"])
        assert worker.get("bob") is last
        await wait_for(lambda: worker.get("bob") is None)
        assert worker.get("alice") is not None
    finally:
        await worker.stop()
    assert len([r for r in caplog.records if "mallory" in r.getMessage()]) == 1
    # Stopped cleanly: no loop, no capture left running; stopping twice is harmless.
    await worker.stop()
    assert all(not t.get_name().startswith("thumbnails") for t in asyncio.all_tasks())


async def wait_for(check: Callable[[], object], timeout: float = 8.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    pytest.fail("timed out")


def test_thumbnail_size_keeps_the_display_aspect() -> None:
    assert thumbnail_size(1280, 720, None, 320) == (320, 180)
    assert thumbnail_size(640, 360, Fraction(1, 1), 320) == (320, 180)
    # PAL 4:3 anamorphic: 720x576 with 16:15 pixels is 768x576 on screen.
    assert thumbnail_size(720, 576, Fraction(16, 15), 320) == (320, 240)
    # Never upscaled; always even.
    assert thumbnail_size(160, 90, None, 320) == (160, 90)
    assert thumbnail_size(1080, 1920, None, 320) == (320, 568)


def test_quality_maps_to_a_sane_quantiser() -> None:
    assert mjpeg_qscale(80) == 2
    assert mjpeg_qscale(100) == 1
    assert mjpeg_qscale(1) == 31
    assert mjpeg_qscale(50) > mjpeg_qscale(80)
