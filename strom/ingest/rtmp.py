"""The RTMP server: publishers (OBS, ffmpeg, mobile apps) and players on one port, and
RTMPS (the same, over TLS) on another when the node has a certificate.

A thin asyncio adapter around the sans-IO :class:`~strom.media.rtmp.RtmpServerSession`:
it moves bytes, arms timers and routes the session's events by table to the side they
belong to: publishing to :class:`~strom.ingest.rtmp_publish.RtmpPublishing` (ingest),
playing to :class:`~strom.delivery.rtmp_play.RtmpPlayback` (delivery). Both share the
connection's session and socket. Each connection logs with its id; protocol errors close
that connection only, after telling the peer.

No client can hold the server: connections are counted per address (and in all) before
a byte is read; the handshake and connect, and then a publish or play, must come within
absolute deadlines that trickled bytes do not extend; input is parsed a bounded step at
a time, reading paused until the next loop turn; and what a client makes us write waits
for it to read (reading pauses meanwhile), or is dropped with the connection at close.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from strom.delivery.backpressure import DeliveryCounts, ViewerLimits
from strom.delivery.rtmp_play import PlayGate, RtmpPlayback
from strom.errors import ProtocolError, UnsupportedMedia
from strom.ingest.rtmp_publish import REJECTED, RtmpPublishing
from strom.live.registry import Registry, StreamKeyResolver
from strom.media.rtmp import (
    ConnectRequest,
    DataMessage,
    MediaMessage,
    PlayRequest,
    PublishRequest,
    RtmpLimits,
    RtmpServerSession,
    SessionState,
    StopPlayRequest,
    UnpublishRequest,
)
from strom.ratelimit import AddressSlots, RefusalLog, SlotLimits, TokenBucket
from strom.settings import Settings

log = logging.getLogger(__name__)

#: the RTMP application name: rtmp://HOST/live/{key}
APP = "live"
_ids = itertools.count(1)
#: Refused connections are logged at most this often (lines per second, and a burst):
#: a flood of connection attempts must not become a flood of log lines.
#: seconds a stopped or refused publisher's connection stays half-open, to read why
STOP_LINGER = 2.0
_REFUSAL_LOG_RATE = 1.0
_REFUSAL_LOG_BURST = 5


@dataclass(frozen=True)
class RtmpServerConfig:
    limits: RtmpLimits
    viewer_limits: ViewerLimits
    slots: SlotLimits
    handshake_timeout: float
    start_timeout: float
    idle_timeout: float
    read_step_bytes: int
    preauth_read_rate: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RtmpServerConfig:
        return cls(
            limits=RtmpLimits(
                max_chunk_size=settings.rtmp_max_chunk_size,
                min_chunk_size=settings.rtmp_min_chunk_size,
                max_message_size=settings.rtmp_max_message_size,
                max_pending_bytes=settings.rtmp_max_pending_bytes,
                preauth_max_message_size=settings.rtmp_preauth_max_message_size,
                preauth_max_pending_bytes=settings.rtmp_preauth_max_pending_bytes,
                out_chunk_size=settings.rtmp_out_chunk_size,
            ),
            viewer_limits=ViewerLimits.from_settings(settings),
            slots=SlotLimits(
                per_address=settings.rtmp_max_connections_per_address,
                total=settings.max_connections,
                exempt=settings.limit_exempt_networks,
            ),
            handshake_timeout=settings.rtmp_handshake_timeout,
            start_timeout=settings.rtmp_start_timeout,
            idle_timeout=settings.rtmp_idle_timeout,
            read_step_bytes=settings.rtmp_read_step_bytes,
            preauth_read_rate=settings.rtmp_preauth_read_rate,
        )


class RtmpConnection(asyncio.Protocol):
    def __init__(self, server: RtmpServer) -> None:
        self._server = server
        self._config = server.config
        self.id = next(_ids)
        self._session = RtmpServerSession(self._config.limits, conn_id=str(self.id))
        self._transport: asyncio.Transport | None = None
        self._peer = "?"
        self.host = ""  # the address counted in the server's slots
        self._loop = asyncio.get_running_loop()
        self._accepted_at = self._last_data = self._loop.time()
        self._idle_since = self._accepted_at  # no publish or play running since then
        self._connected = False
        self._ending = False
        self._eof_sent = False  # half-closed after telling the peer why: nothing more to write
        self._timer: asyncio.TimerHandle | None = None
        self._next_step: asyncio.Handle | None = None
        self._paused: set[str] = set()  # why reading is paused: parse, publish, write, rate
        rate = self._config.preauth_read_rate
        burst = max(rate, self._config.read_step_bytes)
        self._read_rate = TokenBucket(rate, burst, self._accepted_at) if rate else None
        self._rate_timer: asyncio.TimerHandle | None = None
        self._pending: list[object] | None = None
        self._task: asyncio.Task[None] | None = None
        # the two sides, made with the transport (connection_made)
        self._publishing: RtmpPublishing | None = None
        self._playback: RtmpPlayback | None = None
        self._handlers: dict[type, Callable[[Any], None]] = {ConnectRequest: self._on_connect}

    # -- transport callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (asyncio's or uvloop's, which does not subclass
        # asyncio.Transport): it has write, pause_reading and get_write_buffer_size.
        self._transport = stream = cast("asyncio.Transport", transport)
        peer = transport.get_extra_info("peername")
        self.host = str(peer[0]) if peer else "?"
        self._peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if not self._server.admit(self):
            # Nothing is read from a refused connection: no RTMP answer is possible
            # before a handshake, and doing one would spend what the limit protects.
            self._transport.abort()
            return
        label = f"rtmp#{self.id} {self._peer}"
        server = self._server
        publishing = RtmpPublishing(server.registry, server.keys, self._session, self, label)
        playback = RtmpPlayback(
            server.registry,
            self._session,
            stream,
            limits=self._config.viewer_limits,
            chunk_size=self._config.limits.out_chunk_size,
            clock=self._loop.time,
            close=self._close,
            label=label,
            counts=server.playback_counts,
            gate=server.play_gate,
        )
        self._publishing, self._playback = publishing, playback
        # What each event is for (a PublishRequest waits for its key: see _dispatch).
        self._handlers.update(
            {
                MediaMessage: publishing.on_media,
                DataMessage: publishing.on_data,
                UnpublishRequest: publishing.on_unpublish,
                PlayRequest: playback.on_play,
                StopPlayRequest: playback.on_stop_play,
            }
        )
        log.debug("rtmp#%d connection from %s", self.id, self._peer)
        self._timer = self._loop.call_later(1.0, self._tick)

    def data_received(self, data: bytes) -> None:
        self._last_data = self._loop.time()
        self._step(data)

    def pause_writing(self) -> None:
        # The peer does not read what we write (replies, acknowledgements, pongs): stop
        # reading what makes us write more until it has caught up.
        self._pause("write")

    def resume_writing(self) -> None:
        self._resume("write")

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.forget(self)
        for timer in (self._timer, self._rate_timer):
            if timer is not None:
                timer.cancel()
        if self._next_step is not None:
            self._next_step.cancel()
            self._next_step = None
        if self._task is not None:
            self._task.cancel()
        # A connection lost without unpublishing may come back: the broadcast waits for
        # it (reconnect grace) unless an operator or a protocol error ended it.
        if self._publishing is not None:
            self._publishing.stop("connection lost", lost=not self._ending)
        if self._playback is not None:
            self._playback.stop()
        log.debug("rtmp#%d closed", self.id)

    # -- plumbing -------------------------------------------------------------------------

    def _step(self, data: bytes = b"") -> None:
        """Parse one bounded step of input and route its events; if input is left,
        the next step runs on the next loop turn, with reading paused meanwhile."""
        if self._next_step is not None:  # bytes arrived before the step was due
            self._next_step.cancel()
            self._next_step = None
        work = self._session.input_work
        try:
            events = self._session.receive_data(data, max_bytes=self._config.read_step_bytes)
        except ProtocolError as exc:
            self._fail(exc)
            return
        self._dispatch(list(events))
        if self._session.preauth and self._read_rate is not None:
            self._charge(self._session.input_work - work)
        self._continue()

    def _continue(self) -> None:
        if self._task is not None or "rate" in self._paused or self._closing():
            return  # answering a publish, or over the read rate: goes on when done
        if self._session.input_pending:
            self._pause("parse")
            if self._next_step is None:
                self._next_step = self._loop.call_soon(self._step)
        else:
            self._resume("parse")

    def _charge(self, work: int) -> None:
        """Count a step's work against the read rate of a connection that has not
        published; past it, reading and parsing wait until the work is paid for."""
        assert self._read_rate is not None
        work = min(work, self._read_rate.burst)
        wait = self._read_rate.take(self._loop.time(), work) if work else 0.0
        if wait > 0.0:
            self._pause("rate")
            self._rate_timer = self._loop.call_later(wait, self._charge_again, work)

    def _charge_again(self, work: int) -> None:
        self._rate_timer = None
        assert self._read_rate is not None
        wait = self._read_rate.take(self._loop.time(), work)
        if wait > 0.0:
            self._rate_timer = self._loop.call_later(wait, self._charge_again, work)
            return
        # Resuming then pausing again at once (input left to parse) is harmless: nothing
        # is read before the loop polls the socket.
        self._resume("rate")
        self._continue()

    def _pause(self, reason: str) -> None:
        if not self._paused and self._transport is not None and not self._closing():
            self._transport.pause_reading()
        self._paused.add(reason)

    def _resume(self, reason: str) -> None:
        if reason not in self._paused:
            return
        self._paused.discard(reason)
        if not self._paused and self._transport is not None and not self._closing():
            self._transport.resume_reading()

    def _closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def _flush(self) -> None:
        data = self._session.data_to_send()
        if data and not self._closing() and not self._eof_sent:
            assert self._transport is not None
            self._transport.write(data)

    def _dispatch(self, events: list[object]) -> None:
        try:
            for i, event in enumerate(events):
                if isinstance(event, PublishRequest):
                    # Resolving the key may need the database: pause reading, finish the
                    # events after it (they are for this stream and must stay in order).
                    self._pending = events[i + 1 :]
                    self._pause("publish")
                    self._task = self._loop.create_task(self._publish(event))
                    self._flush()
                    return
                handler = self._handlers.get(type(event))
                if handler is not None:
                    handler(event)
        except ProtocolError as exc:
            self._fail(exc)
            return
        self._flush()

    def _fail(self, exc: ProtocolError) -> None:
        # str(exc), not exc: a log record that keeps the exception (a test's capture, a
        # buffering handler) would keep its traceback, and this connection with it.
        reason = str(exc)
        log.warning("rtmp#%d %s: protocol error: %s", self.id, self._peer, reason)
        self._ending = True  # a broken publisher ends its broadcast
        # Media in a codec Strom does not take is a refused publish, said as such.
        code = REJECTED if isinstance(exc, UnsupportedMedia) else "NetStream.Failed"
        self._session.close_with_error(reason, code)
        self._flush()
        if self._publishing is None or self._publishing.channel is None:
            self._close()  # not a publisher: nothing is owed to it but the reason
            return
        self._publishing.failed(reason)
        self._close_after_telling()

    def _close_after_telling(self) -> None:
        """Close once the peer can have read why: our side only, for a moment. Encoders
        (ffmpeg, OBS) read between writes, and a socket closed at once fails their next
        write ("broken pipe") before they read the onStatus that says why. Their bytes
        meanwhile are read and go nowhere (the session is closed)."""
        transport = self._transport
        if transport is not None and transport.can_write_eof() and not transport.is_closing():
            transport.write_eof()
            self._eof_sent = True
            self._loop.call_later(STOP_LINGER, self._close)
        else:
            self._close()

    def _close(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size():
            # The peer is not reading: a graceful close would wait for it forever.
            transport.abort()
        else:
            transport.close()

    def disconnect(self, reason: str) -> None:
        """Stop this publisher (operator action): the broadcast ends now; the peer is
        told why, then the connection closes."""
        log.warning("rtmp#%d %s: disconnected: %s", self.id, self._peer, reason)
        self._ending = True
        self._session.close_with_error(reason)
        self._flush()
        if self._publishing is not None:
            self._publishing.stop("stopped by the site")
        self._close_after_telling()

    def _expire(self, why: str) -> None:
        """A deadline passed: log it, tell the peer where RTMP lets us, close."""
        log.warning("rtmp#%d %s: %s, closing", self.id, self._peer, why)
        self._session.close_with_error(why)
        self._flush()
        self._close()

    def _tick(self) -> None:
        """Once a second: the deadlines. They are absolute (from accepting the
        connection, or from the end of its last publish or play), so bytes trickled in
        one at a time do not extend them; only a publisher is timed by its silence."""
        self._timer = None
        now = self._loop.time()
        config = self._config
        if self._session.streaming:
            self._idle_since = now
        if not self._connected and now - self._accepted_at > config.handshake_timeout:
            step = "handshake" if self._session.state is SessionState.HANDSHAKE else "connect"
            self._expire(f"no {step} within {config.handshake_timeout:g} s")
            return
        if now - self._idle_since > config.start_timeout:
            self._expire(f"no publish or play within {config.start_timeout:g} s")
            return
        idle = now - self._last_data
        publishing = self._publishing is not None and self._publishing.channel is not None
        if publishing and idle > config.idle_timeout:
            self._expire(f"publisher sent nothing for {idle:.0f} s")
            return
        self._timer = self._loop.call_later(1.0, self._tick)

    # -- events ---------------------------------------------------------------------------

    def _on_connect(self, event: ConnectRequest) -> None:
        if event.app.strip("/") != APP:
            log.warning("rtmp#%d %s: unknown application %r", self.id, self._peer, event.app)
            self._session.reject_connect(f"unknown application; use rtmp://HOST/{APP}/KEY")
            self._flush()
            self._close()
            return
        self._connected = True
        self._session.accept_connect()

    async def _publish(self, event: PublishRequest) -> None:
        assert self._publishing is not None  # made with the transport, before any data
        try:
            accepted = await self._publishing.on_publish(event)
            pending, self._pending = self._pending or [], None
            if not accepted and self._publishing.channel is None:
                # Refused (the reason is queued): nothing else is for this connection.
                self._session.close()
                self._flush()
                self._close_after_telling()
            else:
                self._dispatch(pending)
        finally:
            self._task = None
        self._resume("publish")
        self._continue()  # the input behind the publish, read with the limits it earned


class RtmpServer:
    def __init__(
        self, registry: Registry, keys: StreamKeyResolver, config: RtmpServerConfig
    ) -> None:
        self.registry = registry
        self.keys = keys
        self.config = config
        self.connections: set[RtmpConnection] = set()
        #: what the RTMP players of every connection were sent (bytes, skips, drops)
        self.playback_counts = DeliveryCounts()
        #: who may play what (unlisted and private channels); None: anyone plays anything
        self.play_gate: PlayGate | None = None
        self.slots = AddressSlots(config.slots)
        self._servers: list[asyncio.Server] = []
        self._loop = asyncio.get_running_loop()
        self._refusals = RefusalLog(log, interval=1.0 / _REFUSAL_LOG_RATE, burst=_REFUSAL_LOG_BURST)

    def admit(self, conn: RtmpConnection) -> bool:
        """Count ``conn`` in (per address and in all), or say why not in the log."""
        reason = self.slots.acquire(conn.host)
        if reason is None:
            self.connections.add(conn)
            return True
        self._refusals.warning(
            "rtmp connection",
            self._loop.time(),
            "rtmp#%d %s refused: %s",
            conn.id,
            conn.host,
            reason,
        )
        return False

    def forget(self, conn: RtmpConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self.slots.release(conn.host)

    async def start(
        self, host: str, port: int, *, reuse_port: bool = False, tls: ssl.SSLContext | None = None
    ) -> int:
        """Listen (again for each port); ``reuse_port``: share the port with the other
        workers (SO_REUSEPORT); ``tls``: RTMPS, the same sessions once the TLS handshake
        is done (within the RTMP handshake's deadline). Returns the port bound."""
        server = await self._loop.create_server(
            lambda: RtmpConnection(self),
            host,
            port,
            reuse_port=reuse_port or None,
            ssl=tls,
            ssl_handshake_timeout=self.config.handshake_timeout if tls else None,
        )
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn._close()
        for server in self._servers:
            await server.wait_closed()
