"""The quality ladder in the hub: lower renditions of a live channel, as channels.

When a channel ingested here goes live and its ladder is wanted (the site's ``ladder``
setting, and for ``on`` the streamer's switch), :class:`LadderService` starts one worker
process for it (:mod:`strom.ladder.worker`: decode once, encode every rung) and a
:class:`Ladder`, an internal subscriber of the source channel, that

* sends the source's video frames to the worker through its stdin, from the next
  keyframe on (bounded: with the worker ``max_lag`` seconds behind, or ``queue_bytes``
  waiting for it, frames are dropped up to the next keyframe, and logged);
* publishes each rung's output into a channel of its own, ``alice~480p``
  (:func:`~strom.media.ladder.rendition_name`), with the source's audio frames passed
  through untouched: same hub, same fan-out, so every delivery (WebSocket, LL-HLS,
  LL-DASH, RTMP play, pulls by other nodes) serves renditions as it serves channels;
* ends the renditions and the worker when the source's broadcast ends.

The event loop never decodes or encodes: it writes to a pipe and reads from one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from strom.errors import ProtocolError
from strom.ladder.config import WorkerConfig
from strom.live.channel import Channel, ChannelBusy, ChannelState, Subscriber
from strom.live.chunk import Chunk
from strom.live.registry import Registry
from strom.media import frame_pipe
from strom.media.ladder import Rung, parse_rungs, rendition_name, split_rendition
from strom.media.model import Frame, Track, TrackKind
from strom.settings import Settings
from strom.tasks import TaskSet

log = logging.getLogger(__name__)

_READ = 1 << 16
_LOG_EVERY = 10.0
#: frames a ladder keeps track of while its worker has them (beyond: far behind anyway)
_IN_WORK_MAX = 1024
#: source audio frames a ladder holds for its renditions (~6 s of AAC at 44.1 kHz)
_AUDIO_HELD = 256
#: seconds a worker gets to stop once its stdin is closed
_STOP_GRACE = 3.0


@dataclass(frozen=True)
class LadderLimits:
    rungs: tuple[Rung, ...]
    preset: str = "veryfast"
    max_ladders: int = 2
    queue_bytes: int = 1 << 20
    max_lag: float = 1.0
    max_pixels: int = 3840 * 2160

    @classmethod
    def from_settings(cls, settings: Settings) -> LadderLimits:
        return cls(
            rungs=parse_rungs(settings.ladder_renditions),
            preset=settings.ladder_preset,
            max_ladders=settings.ladder_max,
            queue_bytes=settings.ladder_queue_bytes,
            max_lag=settings.ladder_max_lag,
            max_pixels=settings.transcode_max_pixels,
        )


class Ladder(Subscriber):
    """One source broadcast's ladder: its worker process and its rendition channels."""

    transport: ClassVar[str] = "ladder"

    def __init__(
        self,
        source: Channel,
        registry: Registry,
        limits: LadderLimits,
        process: asyncio.subprocess.Process,
    ) -> None:
        self.source = source
        self.broadcast_id = source.broadcast_id
        self.limits = limits
        self._process = process
        assert process.stdin is not None
        self._stdin = process.stdin
        self.renditions: list[Channel] = []
        for rung in limits.rungs:
            channel = registry.open(rendition_name(source.name, rung))
            channel.claim(self)
            self.renditions.append(channel)
        self._audio: Track | None = None
        # Audio waits for the video of its time: a rendition's video comes back from the
        # worker a little later than the source's audio arrives, and a rendition starts
        # at its first keyframe with the audio from there on.
        self._recent_audio: collections.deque[Frame] = collections.deque(maxlen=_AUDIO_HELD)
        self._pending = [collections.deque[Frame](maxlen=_AUDIO_HELD) for _ in self.renditions]
        self._ready = [False] * len(self.renditions)
        self._started = [False] * len(self.renditions)
        #: each rendition's video track, as the worker last made it
        self._tracks: list[Track | None] = [None] * len(self.renditions)
        self._video_timescale = 1000
        #: the frames the worker has not given back yet: (pts, when sent), oldest first;
        #: when the newest frame was sent, and when the newest one given back was
        self._in_work: collections.deque[tuple[int, float]] = collections.deque(maxlen=_IN_WORK_MAX)
        self._last_sent: float | None = None
        self._done_sent: float | None = None
        #: set while :meth:`Channel.subscribe` hands over the GOP cache
        self.joining = False
        self._dropping = False
        self.closed = False
        #: source video frames sent to the worker, dropped (it fell behind)
        self.frames_sent = 0
        self.dropped = 0
        #: video frames each rendition got back from the worker (encoded)
        self.frames_encoded = [0] * len(self.renditions)
        self._last_warning = 0.0
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def __repr__(self) -> str:
        return f"<Ladder {self.source.name}>"

    # -- the source, as its subscriber ------------------------------------------------------

    def on_live(self, channel: Channel) -> None:
        self._audio = None
        self._recent_audio.clear()
        self._in_work.clear()
        self._last_sent = self._done_sent = None
        for track in channel.tracks.values():
            if track.kind is TrackKind.VIDEO:
                self._send(frame_pipe.encode(track))
                self._dropping = True  # the worker starts at the next keyframe
            else:
                self._audio = track
        self._reclaim()  # back after a stall with new codec parameters

    def on_chunk(self, chunk: Chunk) -> None:
        if self.joining:
            return  # the GOP so far: the worker starts at the next live keyframe instead
        for track, frame in chunk.frames:
            if track.kind is TrackKind.VIDEO:
                self._video(frame)
            elif track is self._audio:
                # The source's audio, untouched, for every rendition (see _deliver).
                self._recent_audio.append(frame)
                for started, pending in zip(self._started, self._pending, strict=True):
                    if started:
                        pending.append(frame)

    def on_end(self) -> None:
        self.close()

    def on_stall(self) -> None:
        """The source waits for its publisher: so do the renditions (their viewers see
        the same "reconnecting"), and they go on with it."""
        for rendition in self.renditions:
            if rendition.publisher is self:
                rendition.publisher_lost(self)

    def on_resume(self) -> None:
        self._reclaim()

    def _reclaim(self) -> None:
        """The source is back: each rendition that let go is claimed again (the same
        broadcast while it waits), with the tracks it had."""
        for lane, rendition in enumerate(self.renditions):
            if rendition.publisher is not None or self.closed:
                continue
            rendition.claim(self)
            video = self._tracks[lane]
            if video is not None:
                if self._audio is not None:
                    rendition.set_track(self._audio)
                rendition.set_track(video)

    def disconnect(self, reason: str) -> None:
        """An operator stopped a rendition: the whole ladder stops (the source goes on)."""
        log.info("ladder %s: stopped (%s)", self.source.name, reason)
        self.close()

    # -- the worker -------------------------------------------------------------------------

    def _video(self, frame: Frame) -> None:
        if self._dropping and not frame.keyframe:
            self._drop()
            return
        # Behind: the time between sending the newest frame and sending the newest one
        # the worker gave back (a worker still starting is behind by all it was sent). A
        # pause in the source is no lag, nor are the pictures a decoder holds back.
        now = time.monotonic()
        behind = 0.0
        if self._last_sent is not None and self._done_sent is not None:
            behind = self._last_sent - self._done_sent
        waiting = self._stdin.transport.get_write_buffer_size()
        if waiting > self.limits.queue_bytes or behind > self.limits.max_lag:
            self._dropping = True  # a whole GOP for the worker to catch up
            self._drop()
            return
        self._dropping = False
        self.frames_sent += 1
        self._in_work.append((frame.pts, now))
        self._last_sent = now
        if self._done_sent is None:
            self._done_sent = now
        self._send(frame_pipe.encode(frame))

    def _send(self, data: bytes) -> None:
        if self.closed or self._stdin.is_closing():
            return
        self._stdin.write(data)

    def _drop(self) -> None:
        self.dropped += 1
        now = time.monotonic()
        if self.frames_sent and now - self._last_warning >= _LOG_EVERY:
            self._last_warning = now
            log.warning(
                "ladder %s: the worker falls behind real time: %d frames skipped so far",
                self.source.name,
                self.dropped,
            )

    async def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        reader = frame_pipe.PipeReader()
        try:
            while data := await stdout.read(_READ):
                for message in reader.feed(data):
                    self._deliver(message)
        except ProtocolError as exc:
            log.warning("ladder %s: the worker's output does not parse: %s", self.source.name, exc)
        if not self.closed:
            code = await self._process.wait()
            log.error("ladder %s: the worker ended (exit %s)", self.source.name, code)
            self.close()

    def _deliver(self, message: frame_pipe.PipeMessage) -> None:
        if self.closed or message.lane >= len(self.renditions):
            return
        lane = message.lane
        rendition = self.renditions[lane]
        item = message.item
        if isinstance(item, Track):
            if not self._ready[lane] and self._audio is not None:
                rendition.set_track(self._audio)
            rendition.set_track(item)
            self._tracks[lane] = item
            self._video_timescale = item.timescale
            self._ready[lane] = True
            return
        if not self._ready[lane]:
            return
        self.frames_encoded[lane] += 1
        # Pictures come back in presentation order: what was sent up to this one is done.
        in_work = self._in_work
        while in_work and in_work[0][0] <= item.pts:
            self._done_sent = max(self._done_sent or 0.0, in_work.popleft()[1])
        audio, pending = self._audio, self._pending[lane]
        if audio is None:
            rendition.add_frame(item)
            return
        # Audio and video timestamps compared in one unit: audio ticks.
        until = item.pts * audio.timescale // self._video_timescale
        if not self._started[lane]:
            self._started[lane] = True
            pending.extend(f for f in self._recent_audio if f.dts >= until)
        rendition.add_frame(item)
        while pending and pending[0].dts <= until:
            rendition.add_frame(pending.popleft())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.source.unsubscribe(self)
        for rendition in self.renditions:
            if rendition.publisher is self:
                rendition.release(self)
            elif rendition.publisher is None:
                rendition.close()  # one waiting with its source: it ends now too
        with contextlib.suppress(OSError, RuntimeError):
            self._stdin.close()  # the worker ends with its stdin

    async def wait_closed(self) -> None:
        self.close()
        try:
            async with asyncio.timeout(_STOP_GRACE):
                await self._process.wait()
        except TimeoutError:
            log.warning("ladder %s: the worker did not stop; killed", self.source.name)
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class LadderService:
    """A ladder for every channel ingested here that goes live and wants one."""

    def __init__(
        self,
        registry: Registry,
        limits: LadderLimits,
        wants_ladder: Callable[[str], Awaitable[bool]],
    ) -> None:
        self.registry = registry
        self.limits = limits
        self._wants = wants_ladder
        self.ladders: dict[str, Ladder] = {}
        self._starting: set[str] = set()
        self._tasks = TaskSet("ladder")
        self._stopped = False
        #: ladders started, and not started because ``max_ladders`` ran already
        self.started = 0
        self.refused = 0
        #: what the ladders that ended sent, skipped and encoded (the counters go on)
        self._ended = {"frames_sent": 0, "dropped": 0, "frames_encoded": 0}
        registry.listeners.append(self._on_state)

    def _on_state(self, channel: Channel) -> None:
        name = channel.name
        ladder = self.ladders.get(name)
        if ladder is not None and (ladder.closed or channel.state is ChannelState.OFFLINE):
            del self.ladders[name]
            self._ended["frames_sent"] += ladder.frames_sent
            self._ended["dropped"] += ladder.dropped
            self._ended["frames_encoded"] += sum(ladder.frames_encoded)
            self._tasks.spawn(ladder.wait_closed())
            ladder = None
        if (
            self._stopped
            or channel.state is not ChannelState.LIVE
            or channel.origin is not None  # pulled: its ladder runs where it is ingested
            or split_rendition(name) is not None
            or ladder is not None
            or name in self._starting
            or not any(t.kind is TrackKind.VIDEO for t in channel.tracks.values())
        ):
            return
        self._starting.add(name)
        self._tasks.spawn(self._start(channel))

    async def _start(self, channel: Channel) -> None:
        name, broadcast = channel.name, channel.broadcast_id
        try:
            if not await self._wants(name):
                return
            if len(self.ladders) >= self.limits.max_ladders:
                self.refused += 1
                log.warning("ladder %s: not started: %d ladders run already (ladder_max)",
                            name, len(self.ladders))  # fmt: skip
                return
            process = await self._spawn(name)
            if self._stopped or not channel.live or channel.broadcast_id != broadcast:
                if process.stdin is not None:
                    process.stdin.close()  # the worker ends with its stdin
                await process.wait()
                return
            try:
                ladder = Ladder(channel, self.registry, self.limits, process)
            except ChannelBusy:
                log.warning("ladder %s: a rendition channel is taken", name)
                process.kill()
                await process.wait()
                return
            self.ladders[name] = ladder
            self.started += 1
            log.info("ladder %s: started (%s), worker pid %d", name,
                     ",".join(r.name for r in self.limits.rungs), process.pid)  # fmt: skip
            ladder.joining = True
            try:
                channel.subscribe(ladder, internal=True)
            finally:
                ladder.joining = False
        finally:
            self._starting.discard(name)

    async def _spawn(self, name: str) -> asyncio.subprocess.Process:
        config = WorkerConfig(
            self.limits.rungs, self.limits.preset, self.limits.max_pixels, f"ladder {name}"
        )
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "strom.ladder.worker", config.to_json(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def stop(self) -> None:
        self._stopped = True
        with contextlib.suppress(ValueError):
            self.registry.listeners.remove(self._on_state)
        await self._tasks.close()
        ladders, self.ladders = list(self.ladders.values()), {}
        await asyncio.gather(*(ladder.wait_closed() for ladder in ladders))

    def metrics(self) -> dict[str, Any]:
        """``ladder`` in ``/api/v1/stats``: ladders running, started and refused, the
        frames sent to workers, skipped (a worker behind) and encoded, since the start and
        per running ladder (``encoded``: per rendition)."""
        running = list(self.ladders.values())
        ended = self._ended
        return {
            "running": len(running),
            "started": self.started,
            "refused": self.refused,
            "frames_sent": ended["frames_sent"] + sum(lad.frames_sent for lad in running),
            "dropped": ended["dropped"] + sum(lad.dropped for lad in running),
            "frames_encoded": ended["frames_encoded"]
            + sum(sum(lad.frames_encoded) for lad in running),
            "ladders": {
                name: {
                    "frames_sent": lad.frames_sent,
                    "dropped": lad.dropped,
                    "encoded": {
                        r.name: n for r, n in zip(lad.limits.rungs, lad.frames_encoded, strict=True)
                    },
                }
                for name, lad in self.ladders.items()
            },
        }
