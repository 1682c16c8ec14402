"""Thumbnails of live channels for the directory.

Every ``interval`` seconds per live channel, the worker copies the channel's init segment
and the chunk of its latest keyframe (two ``bytes`` objects, taken on the event loop, so no
locking), and a worker thread decodes that one picture with PyAV, scales it to ``width``
keeping the display aspect ratio, and encodes a JPEG with FFmpeg's ``mjpeg`` encoder
(PyAV alone: no image library needed).

Never on the hot path: the decode runs in a small thread pool (PyAV releases the GIL while
FFmpeg works), at most one per channel, channels in turn, capture starts spread over the
interval so a hundred channels do not decode in one burst, and a keyframe larger than
``max_capture_bytes`` is skipped rather than decoded.

A channel that goes offline keeps its last thumbnail (with its ``taken_at`` and
``broadcast_id``, for an offline card) for ``keep_offline`` seconds, then it is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path

import av
import av.error

from strom.errors import CodecError, StromError
from strom.live.channel import Channel
from strom.live.registry import Registry
from strom.media.ladder import split_rendition
from strom.media.model import TrackKind
from strom.record import storage
from strom.record.storage import Segment

log = logging.getLogger(__name__)

#: a keyframe chunk larger than this is not decoded (a 1080p IDR is typically < 0.5 MB)
MAX_CAPTURE_BYTES = 4 << 20
#: how often the worker looks for channels that went live (and have no thumbnail yet)
POLL_INTERVAL = 1.0
#: how long an offline channel keeps its last thumbnail
KEEP_OFFLINE = 3600.0


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """One JPEG picture of a channel."""

    jpeg: bytes
    #: UNIX time the picture was taken
    taken_at: float
    #: the channel's broadcast it shows (see :attr:`Channel.broadcast_id`)
    broadcast_id: int
    #: strong validator of ``jpeg`` (unquoted; aiohttp's ``Response.etag`` adds the quotes)
    etag: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class Picture:
    """What :func:`render_thumbnail` makes."""

    jpeg: bytes
    width: int
    height: int


def mjpeg_qscale(quality: int) -> int:
    """Map a libjpeg-style ``quality`` (1-100) to the ``mjpeg`` encoder's quantiser.

    libjpeg scales the standard tables (ITU-T T.81 Annex K) by ``5000/q`` % below 50 and
    ``200 - 2q`` % above; FFmpeg's encoder scales the MPEG-1 intra matrix by ``qscale/8``,
    whose low frequencies are about twice the standard table's, so ``qscale ~ scale/16``.
    Quality 80 gives 2 (fine detail kept), 50 gives 6, 25 gives 12.
    """
    quality = min(max(quality, 1), 100)
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return min(max(round(scale / 16), 1), 31)


def thumbnail_size(width: int, height: int, sar: Fraction | None, target: int) -> tuple[int, int]:
    """The thumbnail's size for a ``width`` x ``height`` picture with sample aspect ratio
    ``sar``: ``target`` wide (never wider than the picture as displayed), even numbers
    (4:2:0 chroma)."""
    display_width = width * sar if sar else Fraction(width)
    out_width = max(2, min(target, round(display_width)) // 2 * 2)
    out_height = max(2, round(out_width * height / display_width / 2) * 2)
    return out_width, out_height


def render_thumbnail(data: bytes, *, width: int, quality: int) -> Picture:
    """Decode the first video picture of a fragmented MP4 (``init segment + moof + mdat``
    of a keyframe), scale it and encode a JPEG. Blocking: run it in a worker thread.

    Raises :class:`~strom.errors.CodecError` if there is no picture to be had.
    """
    try:
        with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
            if not container.streams.video:
                raise CodecError("no video track")
            stream = container.streams.video[0]
            # One picture: threads would only add start-up cost; the pool bounds the CPU.
            stream.codec_context.thread_count = 1
            # No deblocking (H.264 8.7): ~20 % less decode time, invisible at 1/4 scale.
            stream.codec_context.options = {"skip_loop_filter": "all"}
            frame = next(container.decode(stream), None)
            sar = stream.codec_context.sample_aspect_ratio
        if frame is None:
            raise CodecError("the keyframe decoded to no picture")
        out_width, out_height = thumbnail_size(frame.width, frame.height, sar, width)
        # yuvj420p is full-range 4:2:0, what JPEG (JFIF) expects; swscale converts the range.
        small = frame.reformat(out_width, out_height, "yuvj420p", interpolation="AREA")
        encoder = av.CodecContext.create("mjpeg", "w")
        encoder.width = out_width
        encoder.height = out_height
        encoder.pix_fmt = "yuvj420p"
        encoder.time_base = Fraction(1, 1)
        encoder.qmin = encoder.qmax = mjpeg_qscale(quality)
        packets = encoder.encode(small) + encoder.encode(None)
    except av.error.FFmpegError as exc:
        raise CodecError(f"cannot decode the keyframe: {exc}") from exc
    jpeg = b"".join(bytes(packet) for packet in packets)
    if not jpeg:
        raise CodecError("the JPEG encoder produced nothing")
    return Picture(jpeg, out_width, out_height)


def recording_thumbnail(
    path: Path, segments: Sequence[Segment], *, width: int = 320, quality: int = 80
) -> Picture:
    """The picture of a finished recording: the keyframe that starts the segment a third
    of the way in (the first seconds are often a black or a title card). Blocking: run
    it in a worker thread. :class:`~strom.errors.CodecError` if none decodes."""
    if not segments:
        raise CodecError("the recording is empty")
    segment = segments[len(segments) // 3]
    data = (path / storage.init_name(segment.init)).read_bytes()
    data += (path / storage.segment_name(segment.seq)).read_bytes()
    return render_thumbnail(data, width=width, quality=quality)


@dataclass(slots=True, eq=False)
class _Watch:
    """What the worker knows about one broadcast of one channel."""

    channel: Channel
    broadcast_id: int
    #: loop time of the next capture
    next_due: float
    #: a problem was logged for this broadcast (log once, not every cycle)
    failing: bool = False
    #: a capture has succeeded for this broadcast
    captured: bool = False
    #: loop time the channel was last seen offline (``None``: live)
    offline_since: float | None = None
    running: asyncio.Task[Thumbnail | None] | None = None

    def follows(self, channel: Channel) -> bool:
        return self.channel is channel and self.broadcast_id == channel.broadcast_id


class ThumbnailWorker:
    """Keeps a recent JPEG of every live channel of ``registry``; see the module doc."""

    def __init__(
        self,
        registry: Registry,
        *,
        interval: float = 20.0,
        width: int = 320,
        quality: int = 80,
        executor_threads: int = 1,
        max_capture_bytes: int = MAX_CAPTURE_BYTES,
        keep_offline: float = KEEP_OFFLINE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0 or width < 2 or executor_threads < 1:
            raise ValueError("interval > 0, width >= 2 and executor_threads >= 1 are required")
        self.registry = registry
        self.interval = interval
        self.width = width
        self.quality = quality
        self.executor_threads = executor_threads
        self.max_capture_bytes = max_capture_bytes
        self.keep_offline = keep_offline
        self._clock = clock
        self._poll = min(POLL_INTERVAL, interval)
        self._executor = self._new_executor()
        self._closed = False
        self._thumbnails: dict[str, Thumbnail] = {}
        self._watches: dict[str, _Watch] = {}
        self._task: asyncio.Task[None] | None = None

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.executor_threads, thread_name_prefix="strom-thumbnail")

    # -- public ---------------------------------------------------------------------------

    def get(self, channel_name: str) -> Thumbnail | None:
        """The latest thumbnail of a channel (live, or offline for up to ``keep_offline``)."""
        return self._thumbnails.get(channel_name)

    def start(self) -> None:
        """Start the capture loop on the running event loop."""
        if self._task is not None:
            return
        if self._closed:
            self._executor = self._new_executor()
            self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="thumbnails")

    async def stop(self) -> None:
        """Stop the loop, let captures in flight finish, release the threads."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running = [w.running for w in self._watches.values() if w.running is not None]
        await asyncio.gather(*running, return_exceptions=True)
        self._closed = True
        self._executor.shutdown(wait=False)

    async def refresh(self, channel: Channel) -> Thumbnail | None:
        """Take one thumbnail of ``channel`` now; ``None`` if there is no picture to take
        (offline, no video keyframe yet, keyframe too large, decode failure).

        If a capture of this channel is already running, wait for that one instead.
        """
        if self._closed:
            return None
        loop = asyncio.get_running_loop()
        watch = self._watch(channel, loop.time())
        if watch.running is None:
            data = self._take(watch, loop.time())
            if data is None:
                return None
            watch.running = loop.create_task(self._decode(watch, data))
        return await asyncio.shield(watch.running)

    # -- one capture ----------------------------------------------------------------------

    def _watch(self, channel: Channel, now: float) -> _Watch:
        watch = self._watches.get(channel.name)
        if watch is None or not watch.follows(channel):
            # A new broadcast (or a new channel object under the same name): capture soon.
            watch = _Watch(channel, channel.broadcast_id, next_due=now)
            self._watches[channel.name] = watch
        return watch

    def _take(self, watch: _Watch, now: float) -> bytes | None:
        """``init segment + keyframe chunk`` of the channel, copied on the event loop; or
        ``None`` (and when to look again) if there is nothing to decode."""
        channel = watch.channel
        init, gop = channel.init_segment, channel.gop
        first = gop[0] if gop else None
        if not channel.live or init is None or first is None or not first.keyframe:
            # Not live yet, or the GOP cache is between keyframes: look again soon.
            watch.next_due = now + self._poll
            return None
        if first.track.kind is not TrackKind.VIDEO:
            watch.next_due = now + self.interval  # audio-only: nothing to see
            return None
        if len(first.data) > self.max_capture_bytes:
            reason = (
                f"keyframe of {len(first.data)} bytes is over the thumbnail limit "
                f"({self.max_capture_bytes})"
            )
            self._failed(watch, now, reason)
            return None
        return init + first.data

    async def _decode(self, watch: _Watch, data: bytes) -> Thumbnail | None:
        loop = asyncio.get_running_loop()
        channel = watch.channel
        render = partial(render_thumbnail, data, width=self.width, quality=self.quality)
        try:
            picture = await loop.run_in_executor(self._executor, render)
        except StromError as exc:
            self._failed(watch, loop.time(), str(exc))
            return None
        except Exception:
            # The worker outlives anything a stream can do to the decoder; say it loudly once.
            if not watch.failing:
                log.exception("channel %s: thumbnail failed", channel.name)
            self._failed(watch, loop.time(), None)
            return None
        finally:
            watch.running = None
        thumbnail = Thumbnail(
            jpeg=picture.jpeg,
            taken_at=self._clock(),
            broadcast_id=watch.broadcast_id,
            etag=hashlib.blake2b(picture.jpeg, digest_size=12).hexdigest(),
            width=picture.width,
            height=picture.height,
        )
        if watch.failing:
            log.info("channel %s: thumbnails work again", channel.name)
            watch.failing = False
        watch.captured = True
        watch.next_due = loop.time() + self.interval
        if self._watches.get(channel.name) is watch:
            self._thumbnails[channel.name] = thumbnail
        return thumbnail

    def _failed(self, watch: _Watch, now: float, reason: str | None) -> None:
        if not watch.failing and reason is not None:
            log.warning("channel %s: no thumbnail: %s", watch.channel.name, reason)
        watch.failing = True
        # Retry at the normal pace, not every poll: a stream that breaks the decoder
        # should not cost more than one that does not.
        watch.next_due = now + self.interval

    # -- the loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.executor_threads)
        next_start = loop.time()
        while True:
            try:
                now = loop.time()
                live = self._update(now)
                if now >= next_start and await self._start_one(live, slots):
                    # Spread the decodes over the interval: 100 channels every 20 s start
                    # one every 0.2 s, not 100 at once; never wait longer than a poll.
                    next_start = loop.time() + min(self.interval / len(live), self._poll)
                    continue
                idle = [w.next_due for w in live if w.running is None]
                wake = max(next_start, min([*idle, now + self._poll]))
                await asyncio.sleep(max(wake - loop.time(), 0.01))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("thumbnail loop error; going on")
                await asyncio.sleep(self._poll)

    async def _start_one(self, live: list[_Watch], slots: asyncio.Semaphore) -> bool:
        """Start the decode of the most overdue channel that has a keyframe to decode:
        channels without a picture first, then the longest waiting."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = [w for w in live if w.running is None and w.next_due <= now]
        if not due:
            return False
        due.sort(key=lambda w: (w.captured, w.next_due))
        await slots.acquire()  # bounded: at most ``executor_threads`` decodes in flight
        for watch in due:
            if watch.running is not None:  # refresh() started one while we waited
                continue
            data = self._take(watch, loop.time())
            if data is not None:
                watch.running = loop.create_task(self._decode(watch, data))
                watch.running.add_done_callback(lambda _: slots.release())
                return True
        slots.release()
        return False

    def _update(self, now: float) -> list[_Watch]:
        """Follow the registry: watches for live channels, offline ones aged out."""
        # A pulled channel's thumbnail is its ingest node's; a ladder's rendition has
        # its source's.
        live = [
            self._watch(c, now)
            for c in self.registry.live()
            if c.origin is None and split_rendition(c.name) is None
        ]
        following = {id(w) for w in live}
        for name, watch in list(self._watches.items()):
            if id(watch) in following:
                watch.offline_since = None
                continue
            if watch.offline_since is None:
                watch.offline_since = now
            elif now - watch.offline_since > self.keep_offline and watch.running is None:
                del self._watches[name]
                self._thumbnails.pop(name, None)
        return live
