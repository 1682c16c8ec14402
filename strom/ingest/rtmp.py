"""The RTMP server: publishers (OBS, ffmpeg, mobile apps) and players on one port.

A thin asyncio adapter around the sans-IO :class:`~strom.media.rtmp.RtmpServerSession`:
it moves bytes, arms timers and routes the session's events to the hub. Each connection
logs with its id; protocol errors close that connection only, after telling the peer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from strom.delivery.backpressure import ViewerLimits
from strom.delivery.rtmp_play import RtmpPlayer
from strom.errors import ProtocolError
from strom.live.channel import Channel, ChannelBusy, TooManyViewers
from strom.live.registry import Registry, StreamKeyResolver
from strom.media.flv import FlvDemuxer
from strom.media.model import Frame
from strom.media.rtmp import (
    ConnectRequest,
    DataMessage,
    MediaMessage,
    PlayRequest,
    PublishRequest,
    RtmpLimits,
    RtmpServerSession,
    StopPlayRequest,
    UnpublishRequest,
)
from strom.settings import Settings, valid_channel_name

log = logging.getLogger(__name__)

#: the RTMP application name: rtmp://HOST/live/{key}
APP = "live"
_ids = itertools.count(1)


@dataclass(frozen=True)
class RtmpServerConfig:
    limits: RtmpLimits
    viewer_limits: ViewerLimits
    handshake_timeout: float
    idle_timeout: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RtmpServerConfig:
        return cls(
            limits=RtmpLimits(
                max_chunk_size=settings.rtmp_max_chunk_size,
                max_message_size=settings.rtmp_max_message_size,
                out_chunk_size=settings.rtmp_out_chunk_size,
            ),
            viewer_limits=ViewerLimits.from_settings(settings),
            handshake_timeout=settings.rtmp_handshake_timeout,
            idle_timeout=settings.rtmp_idle_timeout,
            max_connections=settings.max_connections,
        )


def _strip_query(name: str) -> str:
    return name.partition("?")[0]


class RtmpConnection(asyncio.Protocol):
    def __init__(self, server: RtmpServer) -> None:
        self._server = server
        self._config = server.config
        self.id = next(_ids)
        self._session = RtmpServerSession(self._config.limits)
        self._transport: asyncio.Transport | None = None
        self._peer = "?"
        self._loop = asyncio.get_running_loop()
        self._last_data = self._loop.time()
        self._connected = False
        self._ending = False
        self._timer: asyncio.TimerHandle | None = None
        self._pending: list[object] | None = None
        self._task: asyncio.Task[None] | None = None
        # publishing
        self._channel: Channel | None = None
        self._publish_stream: int | None = None
        self._demuxer = FlvDemuxer()
        # playing
        self._players: dict[int, tuple[Channel, RtmpPlayer]] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            ConnectRequest: self._on_connect,
            MediaMessage: self._on_media,
            DataMessage: self._on_data,
            UnpublishRequest: self._on_unpublish,
            PlayRequest: self._on_play,
            StopPlayRequest: self._on_stop_play,
        }

    # -- transport callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (asyncio's or uvloop's, which does not subclass
        # asyncio.Transport): it has write, pause_reading and get_write_buffer_size.
        self._transport = cast("asyncio.Transport", transport)
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if len(self._server.connections) >= self._config.max_connections:
            log.warning("rtmp#%d %s refused: too many connections", self.id, self._peer)
            self._transport.abort()
            return
        self._server.connections.add(self)
        log.debug("rtmp#%d connection from %s", self.id, self._peer)
        self._timer = self._loop.call_later(1.0, self._tick)

    def data_received(self, data: bytes) -> None:
        self._last_data = self._loop.time()
        try:
            events = self._session.receive_data(data)
        except ProtocolError as exc:
            self._fail(exc)
            return
        self._dispatch(list(events))

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
        # A connection lost without unpublishing may come back: the broadcast waits for
        # it (reconnect grace) unless an operator or a protocol error ended it.
        self._stop_publishing("connection lost", lost=not self._ending)
        for stream_id in list(self._players):
            self._on_stop_play(StopPlayRequest(stream_id))
        log.debug("rtmp#%d closed", self.id)

    # -- plumbing -------------------------------------------------------------------------

    def _flush(self) -> None:
        data = self._session.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _dispatch(self, events: list[object]) -> None:
        try:
            for i, event in enumerate(events):
                if isinstance(event, PublishRequest):
                    # Resolving the key may need the database: pause reading, finish the
                    # events after it (they are for this stream and must stay in order).
                    self._pending = events[i + 1 :]
                    assert self._transport is not None
                    self._transport.pause_reading()
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
        log.warning("rtmp#%d %s: protocol error: %s", self.id, self._peer, exc)
        self._ending = True  # a broken publisher ends its broadcast
        self._session.close_with_error(str(exc))
        self._flush()
        self._close()

    def _close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def disconnect(self, reason: str) -> None:
        """Stop this publisher (operator action): tell it why, then close."""
        log.warning("rtmp#%d %s: disconnected: %s", self.id, self._peer, reason)
        self._ending = True
        self._session.close_with_error(reason)
        self._flush()
        self._close()

    def _tick(self) -> None:
        """Once a second: handshake/connect and idle timeouts."""
        now = self._loop.time()
        idle = now - self._last_data
        if not self._connected and idle > self._config.handshake_timeout:
            log.warning("rtmp#%d %s: no connect in time, closing", self.id, self._peer)
            self._close()
            return
        if self._channel is not None and idle > self._config.idle_timeout:
            log.warning(
                "rtmp#%d %s: publisher sent nothing for %.0f s, closing", self.id, self._peer, idle
            )
            self._close()
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
        try:
            name = await self._server.keys.resolve(_strip_query(event.name))
            self._start_publishing(event.stream_id, name)
            pending, self._pending = self._pending or [], None
            self._dispatch(pending)
        finally:
            self._task = None
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()

    def _start_publishing(self, stream_id: int, name: str | None) -> None:
        if name is None:
            # Never log the key itself.
            log.warning("rtmp#%d %s: publish refused: unknown stream key", self.id, self._peer)
            self._session.reject_publish(
                stream_id, "NetStream.Publish.BadName", "unknown stream key"
            )
            return
        if self._channel is not None:
            self._session.reject_publish(
                stream_id, "NetStream.Publish.BadConnection", "this connection already publishes"
            )
            return
        channel = self._server.registry.open(name)
        try:
            channel.claim(self)
        except ChannelBusy:
            log.warning(
                "rtmp#%d %s: publish to %s refused: already live", self.id, self._peer, name
            )
            self._session.reject_publish(
                stream_id, "NetStream.Publish.BadName", f"channel {name} is already live"
            )
            self._server.registry.forget_if_idle(channel)
            return
        self._channel = channel
        self._publish_stream = stream_id
        self._demuxer = FlvDemuxer()
        self._session.accept_publish(stream_id, channel=name)
        log.info("rtmp#%d %s: publishing to %s", self.id, self._peer, name)

    def _on_media(self, event: MediaMessage) -> None:
        channel = self._channel
        if channel is None or event.stream_id != self._publish_stream:
            return  # media for a stream we did not accept: ignore, as FMS does
        if event.message_type == 9:
            items = self._demuxer.video(event.timestamp, event.payload)
        else:
            items = self._demuxer.audio(event.timestamp, event.payload)
        for item in items:
            if isinstance(item, Frame):
                channel.add_frame(item)
            else:
                channel.set_track(item)

    def _on_data(self, event: DataMessage) -> None:
        if self._channel is None or event.name != "onMetaData" or not event.values:
            return
        meta = event.values[0]
        if isinstance(meta, dict):
            self._channel.expect_tracks(video="videocodecid" in meta or "width" in meta)

    def _on_unpublish(self, event: UnpublishRequest) -> None:
        if event.stream_id == self._publish_stream or self._publish_stream is None:
            self._stop_publishing("unpublished")

    def _stop_publishing(self, why: str, *, lost: bool = False) -> None:
        channel, self._channel = self._channel, None
        self._publish_stream = None
        if channel is not None and lost:
            log.info("rtmp#%d %s: %s: publisher lost (%s)", self.id, self._peer, channel.name, why)
            channel.publisher_lost(self)
            return
        if channel is not None:
            log.info(
                "rtmp#%d %s: %s stopped publishing (%s)", self.id, self._peer, channel.name, why
            )
            channel.release(self)
            self._server.registry.forget_if_idle(channel)

    def _on_play(self, event: PlayRequest) -> None:
        name = _strip_query(event.name)
        if not valid_channel_name(name):
            self._session.reject_play(
                event.stream_id, "NetStream.Play.StreamNotFound", "no such channel"
            )
            return
        if event.stream_id in self._players:
            self._on_stop_play(StopPlayRequest(event.stream_id))
        assert self._transport is not None
        channel = self._server.registry.open(name)
        player = RtmpPlayer(
            self._session,
            event.stream_id,
            self._transport,
            limits=self._config.viewer_limits,
            chunk_size=self._config.limits.out_chunk_size,
            clock=self._loop.time,
            on_drop=self._drop_player,
            label=f"rtmp#{self.id}",
        )
        self._session.accept_play(event.stream_id)
        self._flush()
        try:
            channel.subscribe(player)
        except TooManyViewers:
            self._session.send_status(
                event.stream_id, "error", "NetStream.Play.Failed", "channel is full"
            )
            self._server.registry.forget_if_idle(channel)
            return
        self._players[event.stream_id] = (channel, player)
        log.info("rtmp#%d %s: playing %s", self.id, self._peer, name)

    def _drop_player(self, reason: str) -> None:
        log.warning("rtmp#%d %s: player %s, closing", self.id, self._peer, reason)
        self._close()

    def _on_stop_play(self, event: StopPlayRequest) -> None:
        entry = self._players.pop(event.stream_id, None)
        if entry is not None:
            channel, player = entry
            channel.unsubscribe(player)
            self._server.registry.forget_if_idle(channel)


class RtmpServer:
    def __init__(
        self, registry: Registry, keys: StreamKeyResolver, config: RtmpServerConfig
    ) -> None:
        self.registry = registry
        self.keys = keys
        self.config = config
        self.connections: set[RtmpConnection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: RtmpConnection(self), host, port)
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn._close()
        if self._server is not None:
            await self._server.wait_closed()
