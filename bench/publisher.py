"""A real-time RTMP publisher on Strom's sans-IO :class:`RtmpClientSession`: it sends an
FLV file's tags when the wall clock reaches their timestamps (looping the file, with
timestamps running on), and logs when each video frame was written to the socket.

Times are ``time.monotonic()`` (CLOCK_MONOTONIC, the same clock in every process of the
machine), so viewer processes can compare their arrival times with these send times.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from array import array
from dataclasses import dataclass, field
from typing import Literal

from bench.media import TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO, MediaFile, is_config
from strom.media.rtmp import (
    ClientState,
    CommandError,
    ConnectResult,
    RtmpClientSession,
    StatusReceived,
)
from strom.media.rtmp.messages import parse_data

log = logging.getLogger(__name__)

#: past this many unsent bytes the publisher waits for the socket (the server is slow)
WRITE_HIGH_WATER = 4 << 20

#: how far (ms) a frame's time as a viewer reads it may be from the time it was sent with
MATCH_SLACK_MS = 2

#: how a publisher ends: cleanly, or dropped without unpublishing (FIN or RST)
Ending = Literal["unpublish", "close", "reset"]


class SendLog:
    """Send time of every video frame of one stream, by FLV timestamp (ms), in order."""

    __slots__ = ("_by_ts", "keyframes", "t", "ts")

    def __init__(self) -> None:
        self.ts = array("q")
        self.t = array("d")
        self.keyframes = array("q")
        self._by_ts: dict[int, float] = {}

    def add(self, ts: int, t: float, keyframe: bool = False) -> None:
        self.ts.append(ts)
        self.t.append(t)
        self._by_ts[ts] = t
        if keyframe:
            self.keyframes.append(ts)

    def __len__(self) -> int:
        return len(self.ts)

    def time_of(self, ts: int) -> float | None:
        """Send time of the frame a viewer saw at ``ts`` (see :meth:`match`)."""
        sent = self._by_ts.get(ts)
        if sent is None and (found := self.match(ts)) is not None:
            sent = self._by_ts[found]
        return sent

    def match(self, ts: int) -> int | None:
        """The timestamp sent for the frame a viewer saw at ``ts`` ms: the same, or the
        nearest within :data:`MATCH_SLACK_MS`. Strom writes the exact times that the
        publisher's milliseconds were rounded from (1/30 s, not 33 or 34 ms), which a
        viewer rounds back, one way or the other."""
        if ts in self._by_ts:
            return ts
        i = bisect.bisect_left(self.ts, ts)
        near = [self.ts[j] for j in (i - 1, i) if 0 <= j < len(self.ts)]
        best = min(near, key=lambda sent: abs(sent - ts), default=None)
        return best if best is not None and abs(best - ts) <= MATCH_SLACK_MS else None

    def sent_between(self, t_from: float, t_to: float) -> array[int]:
        """Timestamps of the frames sent in ``[t_from, t_to)``."""
        lo = bisect.bisect_left(self.t, t_from)
        hi = bisect.bisect_left(self.t, t_to)
        return self.ts[lo:hi]

    def last_before(self, ts: int) -> tuple[int, float] | None:
        """The newest frame with a timestamp <= ``ts``, and its send time."""
        i = bisect.bisect_right(self.ts, ts)
        if i == 0:
            return None
        return self.ts[i - 1], self.t[i - 1]

    def next_after(self, ts: int) -> float | None:
        """Send time of the first frame with a timestamp > ``ts``."""
        i = bisect.bisect_right(self.ts, ts)
        return self.t[i] if i < len(self.ts) else None

    def to_dict(self) -> dict[str, list[float] | list[int]]:
        return {"ts": list(self.ts), "t": list(self.t), "keyframes": list(self.keyframes)}

    @classmethod
    def from_dict(cls, data: dict[str, list[float] | list[int]]) -> SendLog:
        out = cls()
        keys = set(data.get("keyframes", []))
        for ts, t in zip(data["ts"], data["t"], strict=True):
            out.add(int(ts), float(t), int(ts) in keys)
        return out


class PublishError(Exception):
    """The server refused or dropped the publisher."""


@dataclass
class PublisherStats:
    channel: str
    frames: int = 0
    audio: int = 0
    bytes: int = 0
    loops: int = 0
    #: how late (s) behind the file's schedule frames were written: the publisher's health
    lateness: array[float] = field(default_factory=lambda: array("d"))
    error: str = ""


class RtmpPublisher:
    def __init__(
        self,
        host: str,
        port: int,
        key: str,
        media: MediaFile,
        *,
        channel: str = "",
        app: str = "live",
    ) -> None:
        self.host, self.port, self.key, self.app = host, port, key, app
        self.media = media
        self.log = SendLog()
        self.stats = PublisherStats(channel or key)
        self.session = RtmpClientSession()
        self._writer: asyncio.StreamWriter | None = None
        self._events: list[object] = []
        self._got_event = asyncio.Event()

    async def run(self, stop_at: float, ending: Ending = "unpublish") -> PublisherStats:
        """Connect, publish, stream in real time until ``stop_at`` (monotonic), then end:
        ``unpublish`` (deleteStream, then close), or drop like a crashed encoder or a lost
        network: ``close`` (FIN, no unpublish) or ``reset`` (RST, no unpublish)."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        pump = asyncio.create_task(self._read(reader))
        try:
            await self._start()
            await self._stream(stop_at)
            if ending == "unpublish":
                with contextlib.suppress(Exception):
                    self.session.unpublish()
                    self._flush()
        except (OSError, PublishError) as exc:
            self.stats.error = str(exc) or type(exc).__name__
            log.warning("publisher %s: %s", self.stats.channel, self.stats.error)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            if ending == "reset":
                writer.transport.abort()
            else:
                writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return self.stats

    def _flush(self) -> int:
        data = self.session.data_to_send()
        if data and self._writer is not None:
            self._writer.write(data)
        return len(data)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                self._events.append(PublishError("server closed the connection"))
                self._got_event.set()
                return
            self._events += self.session.receive_data(data)
            self._flush()
            self._got_event.set()

    async def _wait(self, what: type, timeout: float = 10.0) -> object:
        async with asyncio.timeout(timeout):
            while True:
                for ev in self._events:
                    if isinstance(ev, PublishError):
                        raise ev
                    if isinstance(ev, CommandError):
                        raise PublishError(f"{ev.command} refused: {ev.information}")
                    if isinstance(ev, what):
                        self._events.remove(ev)
                        return ev
                self._got_event.clear()
                await self._got_event.wait()

    async def _start(self) -> None:
        self.session.connect(self.app, f"rtmp://{self.host}:{self.port}/{self.app}")
        self._flush()
        result = await self._wait(ConnectResult)
        assert isinstance(result, ConnectResult)
        if not result.accepted or self.session.state is not ClientState.CONNECTED:
            raise PublishError(f"connect refused: {result.code} {result.description}")
        self.session.publish(self.key)
        self._flush()
        status = await self._wait(StatusReceived)
        assert isinstance(status, StatusReceived)
        if status.code != "NetStream.Publish.Start":
            raise PublishError(f"publish refused: {status.code} {status.description}")

    async def _stream(self, stop_at: float) -> None:
        media = self.media
        stats = self.stats
        session = self.session
        writer = self._writer
        assert writer is not None
        first = min(t.timestamp for t in media.tags if t.tag_type != TAG_SCRIPT)
        t0 = time.monotonic()
        loop_n = 0
        while True:
            offset = loop_n * media.duration_ms - first
            for tag in media.tags:
                kind = tag.tag_type
                if kind == TAG_SCRIPT:
                    if loop_n == 0:
                        self._metadata(tag.payload)
                    continue
                config = is_config(tag)
                if loop_n and config:
                    continue  # same codec configuration: sent once
                ts = max(tag.timestamp + offset, 0)
                due = t0 + ts / 1000
                if due >= stop_at:
                    return
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
                    now = time.monotonic()
                session.send_media(kind, ts, tag.payload)
                stats.bytes += self._flush()
                if kind == TAG_VIDEO and not config:
                    sent = time.monotonic()
                    self.log.add(ts, sent, bool(tag.payload[0] >> 4 == 1))
                    stats.frames += 1
                    stats.lateness.append(max(0.0, sent - due))
                elif kind == TAG_AUDIO:
                    stats.audio += 1
                transport = writer.transport
                if transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                    await writer.drain()
                if self._events and isinstance(self._events[-1], PublishError):
                    raise self._events[-1]
            loop_n += 1
            stats.loops = loop_n

    def _metadata(self, payload: bytes) -> None:
        try:
            name, values = parse_data(payload)
        except Exception:
            return
        if name == "onMetaData" and values and isinstance(values[0], dict):
            self.session.send_metadata(values[0])
            self._flush()


async def run_publishers(publishers: list[RtmpPublisher], stop_at: float) -> list[PublisherStats]:
    return list(await asyncio.gather(*(p.run(stop_at) for p in publishers)))
