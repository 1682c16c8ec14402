"""Recording every broadcast: the init segment and the same CMAF chunks the viewers get,
appended to disk as they are produced (no re-encode, no second mux).

The :class:`Recorder` listens to the registry; when a channel goes live it subscribes
(internal: a recorder is not an audience, and viewers filling the channel never keep it
out). On the event loop, a chunk costs a tuple and an append to the recording's queue;
one writer thread per recording does the file work (write, and ``fsync`` every
``fsync_interval``). The queue is bounded in bytes: a writer that falls behind (slow or
stuck disk) stops *that* recording with an error in the log rather than growing memory,
and a write error (a full disk) does the same. Neither ever touches the live stream:
viewers keep getting every chunk.

A new segment file starts at each keyframe chunk (at least ``min_segment`` seconds after
the previous one); each segment completed appends one line to ``index.jsonl``. A new
init segment (new codec parameters, or the publisher came back) starts a new init
version when its bytes differ, and the next segment is marked as a discontinuity.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from strom.live.channel import Channel, ChannelState, Subscriber
from strom.live.chunk import Chunk
from strom.live.registry import Registry
from strom.record import salvage, storage
from strom.settings import Settings, section, setting

log = logging.getLogger(__name__)

#: how often retention runs (seconds)
RETENTION_INTERVAL = 3600.0


def _gb_to_bytes(gb: float) -> int:
    return int(gb * (1 << 30))


@dataclass(frozen=True)
class RecorderSettings:
    enabled: bool = setting("record")
    keep_days: float = setting("recordings_keep_days")
    max_bytes_per_channel: int = setting("recordings_max_gb_per_channel", _gb_to_bytes)
    queue_max_bytes: int = setting("recording_queue_max_bytes")
    fsync_interval: float = setting("recording_fsync_seconds")
    #: shortest segment: keyframes closer than this stay in one segment (audio-only)
    min_segment: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RecorderSettings:
        return section(cls, settings)


def write_chunk(f: BinaryIO, data: bytes) -> None:
    """The storage seam: every media byte goes through here (tests inject errors)."""
    f.write(data)


# Items the event loop queues for the writer thread.
_INIT, _CHUNK, _END, _META = 0, 1, 2, 3


class Recording:
    """One broadcast being written: a bounded queue and the thread that drains it."""

    def __init__(
        self,
        channel: str,
        path: Path,
        started: float,
        settings: RecorderSettings,
        broadcast_id: int | None = None,
    ) -> None:
        self.channel = channel
        self.path = path
        self.id = path.name
        self.started = started
        self.settings = settings
        #: the broadcast's database id (None until the platform has it; guarded by _cond)
        self._broadcast_id = broadcast_id
        self._items: collections.deque[tuple[Any, ...]] = collections.deque()
        self._cond = threading.Condition()
        self._queued = 0
        #: why the recording stopped early (None while it is fine)
        self.error: str | None = None
        self.done = threading.Event()
        self.bytes_written = 0
        # writer-thread state
        self._init: bytes | None = None
        self._init_version = 0
        self._seq = 0
        self._seg: BinaryIO | None = None
        self._seg_start = 0.0
        self._seg_bytes = 0
        self._seg_discontinuity = False
        self._pending_discontinuity = False
        self._last_time = 0.0
        self._frame_interval = 0.0
        self._index: BinaryIO | None = None
        self._last_sync = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"record-{channel}", daemon=True)

    # -- event loop side ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def failed(self) -> bool:
        return self.error is not None

    def put(self, item: tuple[Any, ...], size: int) -> bool:
        """Queue ``item``; False (and the recording stops) if the writer is too far behind."""
        if self.error is not None:
            return False
        with self._cond:
            if self._queued + size > self.settings.queue_max_bytes:
                self._fail(
                    f"the disk is too slow: more than {self.settings.queue_max_bytes} bytes "
                    "waiting to be written"
                )
                self._items.clear()
                self._queued = 0
                self._cond.notify()
                return False
            self._items.append(item)
            self._queued += size
            self._cond.notify()
        return True

    @property
    def pending(self) -> int:
        """Items queued for the writer and not yet taken."""
        with self._cond:
            return len(self._items)

    def set_broadcast_id(self, broadcast_id: int) -> None:
        """The broadcast's database id is known: the writer puts it in the meta file at
        once (atomically replaced), so a crash from now on keeps the link."""
        with self._cond:
            if self._broadcast_id == broadcast_id:
                return
            self._broadcast_id = broadcast_id
        self.put((_META,), 0)

    def finish(self, ended: float) -> None:
        with self._cond:
            self._items.append((_END, ended))
            self._cond.notify()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    # -- writer thread --------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason
            log.error(
                "channel %s: recording %s stopped: %s (the live stream continues)",
                self.channel,
                self.id,
                reason,
            )

    def _run(self) -> None:
        ended: float | None = None
        try:
            self.path.mkdir(parents=True)
            (self.path / storage.SEGMENTS).mkdir()
            self._write_meta(storage.RECORDING, None)
            self._index = (self.path / storage.INDEX).open("ab")
            while ended is None and self.error is None:
                with self._cond:
                    while not self._items and self.error is None:
                        self._cond.wait()
                    if self.error is not None:
                        break
                    item = self._items.popleft()
                    if item[0] == _CHUNK:
                        self._queued -= len(item[1])
                if item[0] == _CHUNK:
                    self._chunk(item[1], item[2], item[3])
                elif item[0] == _INIT:
                    self._new_init(item[1])
                elif item[0] == _META:
                    self._write_meta(storage.RECORDING, None)
                else:
                    ended = item[1]
                    self._close_segment(None)
                    self._sync(force=True)
        except OSError as exc:
            self._fail(f"write error: {exc}")
        finally:
            for f in (self._seg, self._index):
                if f is not None:
                    with contextlib.suppress(OSError):
                        f.close()
            self._seg = self._index = None
            try:
                if self.error is not None:
                    self._write_meta(storage.FAILED, time.time())
                else:
                    self._write_meta(storage.FINISHED, ended)
            except OSError:
                log.warning("channel %s: could not write %s/%s", self.channel, self.path, "meta")
            self.done.set()

    def _write_meta(self, status: str, ended: float | None) -> None:
        with self._cond:
            broadcast_id = self._broadcast_id
        storage.write_meta(
            self.path,
            {
                "channel": self.channel,
                "started": self.started,
                "ended": ended,
                "status": status,
                "broadcast_id": broadcast_id,
                "error": self.error,
            },
        )

    def _new_init(self, init: bytes) -> None:
        self._close_segment(None)
        if init != self._init:
            self._init = init
            self._init_version += 1
            with (self.path / storage.init_name(self._init_version)).open("wb") as f:
                write_chunk(f, init)
            self.bytes_written += len(init)
        if self._seq > 0:
            self._pending_discontinuity = True

    def _chunk(self, data: bytes, keyframe: bool, t: float) -> None:
        if self._seg is None or (keyframe and t - self._seg_start >= self.settings.min_segment):
            if self._seg is None and not keyframe:
                return  # a segment must start where a decoder can
            self._close_segment(t)
            self._seq += 1
            self._seg = (self.path / storage.segment_name(self._seq)).open("wb")
            self._seg_start = t
            self._seg_bytes = 0
            self._seg_discontinuity = self._pending_discontinuity
            self._pending_discontinuity = False
        elif t > self._last_time:
            self._frame_interval = t - self._last_time
        self._last_time = t
        write_chunk(self._seg, data)
        self._seg_bytes += len(data)
        self.bytes_written += len(data)

    def _close_segment(self, next_start: float | None) -> None:
        seg = self._seg
        if seg is None:
            return
        self._seg = None
        seg.flush()
        if self._sync_due():
            os.fsync(seg.fileno())
        seg.close()
        duration = self._last_time - self._seg_start + self._frame_interval
        if next_start is not None and 0 < next_start - self._seg_start < duration + 1.0:
            duration = next_start - self._seg_start  # exact when the timeline continues
        line: dict[str, Any] = {
            "seq": self._seq,
            "start": round(self._seg_start, 6),
            "duration": round(max(duration, 0.001), 6),
            "bytes": self._seg_bytes,
            "init": self._init_version,
        }
        if self._seg_discontinuity:
            line["discontinuity"] = True
        assert self._index is not None
        write_chunk(self._index, json.dumps(line).encode() + b"\n")
        self._index.flush()
        self._sync()

    def _sync_due(self) -> bool:
        return time.monotonic() - self._last_sync >= self.settings.fsync_interval

    def _sync(self, force: bool = False) -> None:
        if self._index is not None and (force or self._sync_due()):
            os.fsync(self._index.fileno())
            self._last_sync = time.monotonic()


class _ChannelRecorder(Subscriber):
    """The subscriber: turns a channel's callbacks into queue items (event loop only)."""

    def __init__(self, recorder: Recorder, channel: Channel, *, held: bool = False) -> None:
        self.recorder = recorder
        self.channel = channel
        self.recording: Recording | None = None
        #: the channel's broadcast number the recording belongs to
        self.number = 0
        self._last_init: bytes | None = None
        self._chunks_since_init = 0
        #: while the streamer's switch is being read: what came, kept in memory (an init
        #: announced, or a chunk), bounded like the writer's queue
        self._held: collections.deque[bytes | Chunk] | None = collections.deque() if held else None
        self._held_bytes = 0
        #: when the broadcast ended, if it ended while held
        self._ended: float | None = None

    def on_live(self, channel: Channel) -> None:
        init = channel.init_segment
        if init is None:
            return
        if self._held is not None:
            self._hold(init, len(init))
            return
        self._announce(channel, init)

    def on_chunk(self, chunk: Chunk) -> None:
        if self._held is not None:
            self._hold(chunk, len(chunk.data))
            return
        rec = self.recording
        if rec is None:
            return
        self._chunks_since_init += 1
        # the muxed time of the chunk's video frame (of its last frame without video)
        if not rec.put((_CHUNK, chunk.data, chunk.keyframe, chunk.time), len(chunk.data)):
            self._stop()

    def decided(self, wanted: bool) -> None:
        """The streamer's switch is read: record what was held and what follows (or
        what was held, if the broadcast has ended meanwhile), or nothing."""
        held, self._held = self._held, None
        if wanted and held is not None:
            for item in held:
                if isinstance(item, bytes):
                    self._announce(self.channel, item)
                else:
                    self.on_chunk(item)
        if self._ended is not None:
            if self.recording is not None:
                self.recording.finish(self._ended)
        elif not wanted:
            self._stop()

    def _hold(self, item: bytes | Chunk, size: int) -> None:
        assert self._held is not None
        self._held.append(item)
        self._held_bytes += size
        # Too slow an answer: the oldest group of pictures goes, as a GOP cache would
        # (the held chunks start at a keyframe; the last init announced stays).
        init: bytes | None = None
        while self._held_bytes > self.recorder.settings.queue_max_bytes and len(self._held) > 1:
            first = self._held.popleft()
            if isinstance(first, bytes):
                init = first
                self._held_bytes -= len(first)
                continue
            self._held_bytes -= len(first.data)
            while self._held and not (isinstance(self._held[0], bytes) or self._held[0].keyframe):
                dropped = self._held.popleft()
                assert not isinstance(dropped, bytes)
                self._held_bytes -= len(dropped.data)
        if init is not None and not (self._held and isinstance(self._held[0], bytes)):
            self._held.appendleft(init)
            self._held_bytes += len(init)

    def _announce(self, channel: Channel, init: bytes) -> None:
        if self.recording is None:
            self.number = channel.broadcast_id
            self.recording = self.recorder._new_recording(channel)
        elif init is self._last_init and self._chunks_since_init == 0:
            return  # the same announcement twice (subscribed while going live)
        self._last_init = init
        self._chunks_since_init = 0
        if not self.recording.put((_INIT, init), len(init)):
            self._stop()

    def on_end(self) -> None:
        if self._held is not None:
            self._ended = time.time()  # what was held is recorded if the switch says so
        rec = self.recording
        if rec is not None:
            rec.finish(time.time())
        self._stop()

    def _stop(self) -> None:
        self.channel.unsubscribe(self)
        self.recorder._detach(self)


class Recorder:
    """Records every channel that goes live (when enabled) under ``root``."""

    def __init__(
        self,
        registry: Registry,
        root: Path,
        settings: RecorderSettings | None = None,
        broadcast_ids: Callable[[str], int | None] | None = None,
        wants_recording: Callable[[str], Awaitable[bool]] | None = None,
        *,
        salvage: bool = True,
    ) -> None:
        self.registry = registry
        #: close what a crash left unfinished when starting (off for ``--workers``)
        self.salvage = salvage
        self.root = root
        self.settings = settings or RecorderSettings()
        self._broadcast_ids = broadcast_ids or (lambda name: None)
        #: the streamer's own switch, asked when a broadcast starts (None: record all)
        self._wants_recording = wants_recording
        self._asking: dict[str, asyncio.Task[None]] = {}
        self._subs: dict[str, _ChannelRecorder] = {}
        #: every recording started by this process that has not finished writing
        self.active: dict[Path, Recording] = {}
        #: recordings that stopped early, newest last (for /metrics), bounded
        self.failures: collections.deque[dict[str, Any]] = collections.deque(maxlen=20)
        self._noted: set[Path] = set()
        #: recordings the last run left unfinished (a crash), closed by :meth:`start`
        self.interrupted: list[storage.RecordingInfo] = []
        self.disk_bytes = 0
        self._retention: asyncio.Task[None] | None = None
        registry.listeners.append(self._on_state)

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.salvage:
            self.interrupted = await asyncio.to_thread(
                salvage.close_interrupted, self.root, set(self.active)
            )
        if self.interrupted:
            log.info("recordings: closed %d left unfinished by the last run", len(self.interrupted))
        await self.apply_retention()
        self._retention = asyncio.get_running_loop().create_task(self._retention_loop())
        for channel in self.registry.live():
            self._on_state(channel)

    async def stop(self, timeout: float = 10.0) -> None:
        if self._retention is not None:
            self._retention.cancel()
        for task in list(self._asking.values()):
            task.cancel()
        for sub in list(self._subs.values()):
            sub.on_end()
        for rec in list(self.active.values()):
            await asyncio.to_thread(rec.join, timeout)
        self._reap()

    def _on_state(self, channel: Channel) -> None:
        name = channel.name
        sub = self._subs.get(name)
        if channel.origin is not None and sub is not None and sub.channel is channel:
            # The broadcast went on at another node (Channel.moved), which records the
            # rest, tagged with the same broadcast: this node's part ends here.
            log.info("channel %s: recording part ends here; the broadcast goes on elsewhere",
                     name)  # fmt: skip
            sub.on_end()
            return
        if (
            not self.settings.enabled
            or channel.state is not ChannelState.LIVE
            or channel.origin is not None  # pulled: recorded where it is ingested
            or name in self._subs
            or name in self._asking
        ):
            return
        if self._wants_recording is None:
            self._record(channel)
            return
        # Subscribed at once, holding the media while the switch is read: a slow answer
        # (a loaded database) must not cost the broadcast's first seconds.
        sub = self._record(channel, held=True)
        task = asyncio.get_running_loop().create_task(self._ask(sub))
        self._asking[name] = task
        task.add_done_callback(lambda _t: self._asking.pop(name, None))

    async def _ask(self, sub: _ChannelRecorder) -> None:
        """Record if the streamer wants it."""
        assert self._wants_recording is not None
        name = sub.channel.name
        try:
            wanted = await self._wants_recording(name)
        except Exception:
            log.exception("channel %s: recording switch unreadable; recording", name)
            wanted = True
        if not wanted:
            log.info("channel %s: not recorded (the streamer turned recording off)", name)
        sub.decided(wanted)

    def _record(self, channel: Channel, *, held: bool = False) -> _ChannelRecorder:
        sub = _ChannelRecorder(self, channel, held=held)
        self._subs[channel.name] = sub
        channel.subscribe(sub, internal=True)
        return sub

    def _new_recording(self, channel: Channel) -> Recording:
        self._reap()
        channel_dir = self.root / channel.name
        now = time.time()
        path = channel_dir / storage.new_recording_id(channel_dir, now)
        while path in self.active:  # two in one second, the first not yet on disk
            path = channel_dir / storage.new_recording_id(channel_dir, now + 1)
            now += 1
        name = channel.name
        rec = Recording(
            name,
            path,
            channel.started_at or now,
            self.settings,
            broadcast_id=self._broadcast_ids(name),  # else it comes with broadcast_recorded
        )
        self.active[path] = rec
        rec.start()
        log.info("channel %s: recording to %s", name, path)
        return rec

    def broadcast_recorded(self, channel: Channel, number: int, broadcast_id: int) -> None:
        """The platform stored ``channel``'s broadcast ``number`` as ``broadcast_id``: its
        recording (if it has started) gets the id in its meta file now, not at the end."""
        sub = self._subs.get(channel.name)
        if sub is None or sub.channel is not channel or sub.recording is None:
            return  # not recorded, or not yet (a recording starting later asks for the id)
        if sub.number == number:
            sub.recording.set_broadcast_id(broadcast_id)

    def _detach(self, sub: _ChannelRecorder) -> None:
        if self._subs.get(sub.channel.name) is sub:
            del self._subs[sub.channel.name]
        if sub.recording is not None:
            self._note_failure(sub.recording)

    def _note_failure(self, rec: Recording) -> None:
        if rec.error is not None and rec.path not in self._noted:
            self._noted.add(rec.path)
            self.failures.append(
                {"channel": rec.channel, "id": rec.id, "error": rec.error, "at": time.time()}
            )

    def _reap(self) -> None:
        for path, rec in list(self.active.items()):
            if rec.done.is_set():
                del self.active[path]
                self._note_failure(rec)

    def recording_of(self, channel: str) -> Recording | None:
        sub = self._subs.get(channel)
        return sub.recording if sub is not None else None

    def is_active(self, path: Path) -> bool:
        rec = self.active.get(path)
        return rec is not None and not rec.done.is_set()

    async def apply_retention(self) -> list[Path]:
        self._reap()
        s = self.settings
        deleted = await asyncio.to_thread(
            storage.apply_retention,
            self.root,
            s.keep_days,
            s.max_bytes_per_channel,
            set(self.active),
            time.time(),
        )
        self.disk_bytes = await asyncio.to_thread(storage.disk_usage, self.root)
        return deleted

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_INTERVAL)
            try:
                await self.apply_retention()
            except Exception:
                log.exception("recordings: retention failed")

    def metrics(self) -> dict[str, Any]:
        self._reap()
        return {
            "enabled": self.settings.enabled,
            "active": [
                {"channel": r.channel, "id": r.id, "bytes": r.bytes_written, "queued": r._queued}
                for r in self.active.values()
                if r.error is None
            ],
            "failed": list(self.failures),
            #: the recordings directory at the last retention pass (start, then hourly)
            "disk_bytes": self.disk_bytes,
        }
