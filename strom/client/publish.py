"""The network side of ``strom stream``: a bounded send queue and an RTMP publisher that
reconnects by itself.

The encoder threads hand frames to the event loop; :class:`SendQueue` holds them for the
socket. When the uplink is slower than the encoder the queue would grow without end, so
past :attr:`ClientLimits.max_queue_seconds` it is emptied and sending resumes at the next
keyframe (which the encoder is asked for at once). The dropped frames are counted and
shown. :class:`Publisher` speaks RTMP through Strom's sans-IO
:class:`~strom.media.rtmp.RtmpClientSession`; a lost connection is retried with
:class:`Backoff` until the server takes the stream again or the streamer stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from strom.client.config import ClientError, ClientLimits, split_rtmp_url
from strom.client.encode import Encoded
from strom.errors import ProtocolError
from strom.media import flv
from strom.media.model import Track, TrackKind
from strom.media.rtmp import (
    MESSAGE_TYPE_AUDIO,
    MESSAGE_TYPE_VIDEO,
    ClientState,
    CommandError,
    ConnectResult,
    RtmpClientSession,
    StatusReceived,
)
from strom.settings import valid_channel_name

log = logging.getLogger(__name__)


class Backoff:
    """Reconnect delays: ``first``, then growing by ``factor`` up to ``maximum``; back
    to ``first`` after :meth:`reset` (a connection that went live)."""

    def __init__(self, first: float, factor: float, maximum: float) -> None:
        self.first, self.factor, self.maximum = first, factor, maximum
        self._next = first
        self.attempts = 0

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * self.factor, self.maximum)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self._next = self.first
        self.attempts = 0


class SendQueue:
    """Encoded frames waiting for the socket, bounded in stream time and in bytes.

    Sans-IO: :meth:`put` returns False when it dropped something, so the caller can ask
    the encoder for a keyframe; :attr:`dropped` counts video frames that never left.
    """

    def __init__(self, max_seconds: float, max_bytes: int) -> None:
        self.max_ms = max_seconds * 1000
        self.max_bytes = max_bytes
        self.dropped = 0
        self._items: deque[Encoded] = deque()
        self._bytes = 0
        self._need_keyframe = True

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def restart(self) -> None:
        """A new connection: forget what is queued, start again at a keyframe."""
        self._items.clear()
        self._bytes = 0
        self._need_keyframe = True

    def put(self, item: Encoded) -> bool:
        video = item.track.kind is TrackKind.VIDEO
        if self._need_keyframe:
            if not video:
                return True  # sound before the first picture: the server drops it anyway
            if not item.frame.keyframe:
                self.dropped += 1
                return False
            self._need_keyframe = False
        self._items.append(item)
        self._bytes += len(item.frame.data)
        span = item.frame.dts - self._items[0].frame.dts
        if span > self.max_ms or self._bytes > self.max_bytes:
            self.dropped += sum(1 for i in self._items if i.track.kind is TrackKind.VIDEO)
            self.restart()
            return False
        return True

    def get(self) -> Encoded | None:
        if not self._items:
            return None
        item = self._items.popleft()
        self._bytes -= len(item.frame.data)
        return item


class PublishState(enum.Enum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


@dataclass
class PublishStats:
    state: PublishState = PublishState.CONNECTING
    #: the channel the key publishes to, as the server said
    channel: str = ""
    #: monotonic time the current connection went live; 0 while not live
    live_since: float = 0.0
    #: monotonic time the first connection went live (the broadcast's uptime)
    first_live: float = 0.0
    frames_sent: int = 0
    bytes_sent: int = 0
    reconnects: int = 0
    retry_at: float = 0.0
    last_error: str = ""


def describe(exc: BaseException) -> str:
    """A network error as a streamer reads it."""
    if isinstance(exc, ConnectionRefusedError):
        return "the server does not answer (connection refused)"
    if isinstance(exc, ConnectionResetError):
        return "the connection was reset"
    if isinstance(exc, TimeoutError):
        return "the server took too long to answer"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


class ConnectionLost(Exception):
    """The server closed the connection, or it stopped taking bytes."""


class PublishRefused(ClientError):
    """The server refused the stream for good (unknown key, wrong application)."""


class _Connection:
    """One RTMP connection: the session, its socket, and the events read so far."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wake: asyncio.Event
    ) -> None:
        self.session = RtmpClientSession()
        self.reader, self.writer = reader, writer
        self.events: list[object] = []
        self.lost = ""
        #: set on every event and on the loss; ``wake`` too, for the send loop
        self.changed = asyncio.Event()
        self._wake = wake
        self._pump = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            while data := await self.reader.read(65536):
                self.events += self.session.receive_data(data)
                self.flush()
                self.changed.set()
                self._wake.set()
            self.lost = "the server closed the connection"
        except (OSError, ProtocolError) as exc:
            self.lost = str(exc) or type(exc).__name__
        self.changed.set()
        self._wake.set()

    def flush(self) -> int:
        data = self.session.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)
        return len(data)

    def buffered(self) -> int:
        return self.writer.transport.get_write_buffer_size()

    async def wait_for(self, kind: type) -> object:
        while True:
            for event in self.events:
                if isinstance(event, (kind, CommandError)):
                    self.events.remove(event)
                    return event
            if self.lost:
                raise ConnectionLost(self.lost)
            self.changed.clear()
            await self.changed.wait()

    async def close(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class Publisher:
    """Publishes what :meth:`offer` gets until :meth:`stop`; reconnects on any loss."""

    def __init__(
        self,
        rtmp_url: str,
        key: str,
        tracks: list[Track],
        limits: ClientLimits,
        request_keyframe: Callable[[], None],
        *,
        on_state: Callable[[PublishState, str], None] | None = None,
    ) -> None:
        self.host, self.port, self.app = split_rtmp_url(rtmp_url)
        self.tc_url = rtmp_url
        #: rtmps://: TLS, the server's certificate checked as a browser would
        self.tls = ssl.create_default_context() if rtmp_url.startswith("rtmps://") else None
        self.key = key
        self.tracks = tracks
        self.limits = limits
        self.stats = PublishStats()
        self.queue = SendQueue(limits.max_queue_seconds, limits.max_queue_bytes)
        self._request_keyframe = request_keyframe
        self._on_state = on_state
        self._wake = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()

    # -- from the encoder threads (through call_soon_threadsafe) and the app --------------

    def offer(self, item: Encoded) -> None:
        if self.stats.state is not PublishState.LIVE:
            return
        if not self.queue.put(item):
            self._request_keyframe()
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._wake.set()

    # -- the connection loop ---------------------------------------------------------------

    async def run(self) -> None:
        """Until :meth:`stop`: connect, publish, send; after a loss wait and do it again.
        :class:`PublishRefused` when the server will never take this stream."""
        backoff = Backoff(
            self.limits.backoff_first, self.limits.backoff_factor, self.limits.backoff_max
        )
        stats = self.stats
        while not self._stopping:
            try:
                await self._session(backoff)
            except (OSError, ConnectionLost, ProtocolError, TimeoutError) as exc:
                stats.last_error = describe(exc)
                log.info("connection to %s:%d lost: %s", self.host, self.port, stats.last_error)
            if self._stopping:
                break
            self._set_state(PublishState.RECONNECTING, stats.last_error)
            stats.live_since = 0.0
            delay = backoff.next_delay()
            stats.retry_at = time.monotonic() + delay
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)  # stop() ends the wait
            stats.reconnects += 1
        stats.state = PublishState.STOPPED

    def _set_state(self, state: PublishState, why: str = "") -> None:
        changed = state is not self.stats.state
        self.stats.state = state
        if changed and self._on_state is not None:
            self._on_state(state, why)

    async def _session(self, backoff: Backoff) -> None:
        async with asyncio.timeout(self.limits.connect_timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.tls)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.socket_send_buffer)
        conn = _Connection(reader, writer, self._wake)
        try:
            async with asyncio.timeout(self.limits.connect_timeout):
                await self._publish(conn)
            backoff.reset()
            await self._send_loop(conn)
            if self._stopping:
                await self._unpublish(conn)
        finally:
            await conn.close()

    async def _publish(self, conn: _Connection) -> None:
        session = conn.session
        session.connect(self.app, self.tc_url)
        conn.flush()
        result = await conn.wait_for(ConnectResult)
        if isinstance(result, ConnectResult) and (
            not result.accepted or session.state is not ClientState.CONNECTED
        ):
            raise PublishRefused(f"the server refused the connection: {result.description}")
        session.publish(self.key)
        conn.flush()
        status = await conn.wait_for(StatusReceived)
        if isinstance(status, CommandError):
            raise ConnectionLost(f"{status.command} failed: {status.information}")
        assert isinstance(status, StatusReceived)
        if status.code != "NetStream.Publish.Start":
            # "already live": our previous connection is not yet gone on the server's
            # side (it times out): worth retrying. Anything else (a wrong key) is not.
            if "already live" in status.description:
                raise ConnectionLost(f"the server still has the last connection: {status.code}")
            raise PublishRefused(f"the server refused the stream: {status.description}")
        channel = status.information.get("channel")
        if isinstance(channel, str) and valid_channel_name(channel):
            self.stats.channel = channel
        session.send_metadata(flv.metadata(self.tracks))
        for track in self.tracks:
            if track.kind is TrackKind.VIDEO:
                session.send_media(MESSAGE_TYPE_VIDEO, 0, flv.video_sequence_header(track))
            else:
                session.send_media(MESSAGE_TYPE_AUDIO, 0, flv.audio_sequence_header(track))
        conn.flush()
        now = time.monotonic()
        stats = self.stats
        self._set_state(PublishState.LIVE)
        stats.live_since = now
        stats.first_live = stats.first_live or now
        stats.last_error = ""
        self.queue.restart()
        self._request_keyframe()
        log.info("live on %s:%d (channel %s)", self.host, self.port, stats.channel or "?")

    async def _send_loop(self, conn: _Connection) -> None:
        session, stats, queue = conn.session, self.stats, self.queue
        high_water = self.limits.write_high_water
        while not self._stopping:
            if conn.lost:
                raise ConnectionLost(conn.lost)
            self._drain_events(conn)
            item = queue.get()
            if item is None:
                self._wake.clear()
                await self._wake.wait()  # a frame, a server message, the loss or stop()
                continue
            frame, track = item.frame, item.track
            if track.kind is TrackKind.VIDEO:
                session.send_media(MESSAGE_TYPE_VIDEO, frame.dts, flv.video_frame(frame))
                stats.frames_sent += 1
            else:
                session.send_media(MESSAGE_TYPE_AUDIO, frame.dts, flv.audio_frame(track, frame))
            stats.bytes_sent += conn.flush()
            if conn.buffered() > high_water:
                await self._drain(conn)

    async def _drain(self, conn: _Connection) -> None:
        """Wait for the socket to take the bytes, or for stop() (which must not wait
        behind a congested link), or for the link to be declared dead."""
        drained = asyncio.ensure_future(conn.writer.drain())
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            done, _ = await asyncio.wait(
                {drained, stopped},
                timeout=self.limits.stall_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopped.cancel()
            if not drained.done():
                drained.cancel()
        if drained in done:
            drained.result()  # a connection error, if there was one
        elif not done:
            raise ConnectionLost(f"nothing could be sent for {self.limits.stall_timeout:.0f} s")

    def _drain_events(self, conn: _Connection) -> None:
        """What the server says while we publish: an error status ends this connection."""
        while conn.events:
            event = conn.events.pop(0)
            if isinstance(event, StatusReceived) and event.level == "error":
                self.stats.last_error = event.description
                log.info("server: %s %r", event.code, event.description)

    async def _unpublish(self, conn: _Connection) -> None:
        """FCUnpublish + deleteStream: the server ends the broadcast at once (no
        reconnect grace), then the socket closes.

        What is queued is not sent; what the socket already holds goes first (TCP keeps
        order), so this waits, for a bounded time, until the socket has it all: closing
        then lets the system deliver it and the server read the goodbye."""
        try:
            conn.session.unpublish()
            conn.flush()
            # Limits of zero: drain() returns once the socket has taken every byte.
            conn.writer.transport.set_write_buffer_limits(high=0)
            async with asyncio.timeout(self.limits.unpublish_timeout):
                await conn.writer.drain()
        except (TimeoutError, ProtocolError, OSError) as exc:
            log.warning("could not say goodbye to the server: %s", describe(exc))
        else:
            log.info("unpublished")
