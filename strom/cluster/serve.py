"""The upstream side of the internal pull: ``GET /internal/pull/{channel}``.

A node pulling a channel from this one opens one WebSocket here, with the site's pull
key (:mod:`strom.cluster.keys`). It is subscribed to the local hub as an *internal*
subscriber (no viewer, never refused for a full channel) and gets, in the wire format of
:mod:`strom.cluster.wire`: the START message and the GOP cache first, then every chunk
(a small header, then the chunk's own WebSocket frame: the very bytes this node's viewers
get, framed once) and the stall/resume/end events. Pulled channels are served the same
way: that is what makes a relay. A puller that falls behind is handled like a slow
viewer (:mod:`strom.delivery.backpressure`): it skips to the next keyframe, then is
dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from aiohttp import WSCloseCode, web

from strom.cluster import keys, wire
from strom.delivery.backpressure import (
    BackpressureGate,
    DeliveryCounts,
    Verdict,
    ViewerLimits,
)
from strom.delivery.ws import CLOSE_TOO_SLOW, OPCODE_BINARY, frame_message, ws_frame
from strom.errors import ApiError
from strom.live.channel import Channel, Subscriber

if TYPE_CHECKING:
    from strom.live.chunk import Chunk
    from strom.live.registry import Registry

log = logging.getLogger(__name__)


class Demand(Protocol):
    """Who wants a channel here besides its subscribed viewers: a downstream node pulling
    it from this one (``hold``/``let_go``), an LL-HLS request (``touch``). A node that
    pulls channels (:class:`~strom.cluster.pull.PullManager`) follows them for as long as
    someone wants them."""

    def hold(self, channel: str) -> None: ...

    def let_go(self, channel: str) -> None: ...

    async def touch(self, channel: str) -> None:
        """An LL-HLS request: returns once the channel is live here or will not be soon."""
        ...


class NoDemand:
    """A node that pulls nothing: it serves only what it ingests."""

    def hold(self, channel: str) -> None:
        return

    def let_go(self, channel: str) -> None:
        return

    async def touch(self, channel: str) -> None:
        return


def header_frame(chunk: Chunk) -> bytes:
    """The CHUNK header as a WebSocket frame (a chunk encoder: once per chunk)."""
    return frame_message(OPCODE_BINARY, wire.chunk_header(chunk))


def _binary(message: bytes) -> bytes:
    return frame_message(OPCODE_BINARY, message)


class PullFeed(Subscriber):
    """One downstream node following one channel of this node."""

    transport = "pull"

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        limits: ViewerLimits,
        label: str,
        counts: DeliveryCounts | None = None,
    ) -> None:
        self._ws = ws
        self._transport = transport
        #: the pull server's counts, shared by its feeds (bytes sent, skips, drops)
        self._counts = counts if counts is not None else DeliveryCounts()
        self._gate = BackpressureGate(limits, asyncio.get_running_loop().time, self._counts)
        self._label = label
        self._close_task: asyncio.Task[bool] | None = None

    def _write(self, data: bytes) -> None:
        if self._close_task is None and not self._transport.is_closing():
            self._transport.write(data)
            self._counts.bytes_sent += len(data)

    def on_live(self, channel: Channel) -> None:
        assert channel.init_segment is not None  # the hub's promise with on_live
        tracks = sorted(channel.tracks.values(), key=lambda t: t.id)
        started = channel.started_at or 0.0
        start = wire.encode_start(
            channel.name, channel.broadcast_id, started, tracks, channel.init_segment
        )
        self._write(_binary(start))
        self._gate.restart()

    def on_chunk(self, chunk: Chunk) -> None:
        if self._close_task is not None or self._transport.is_closing():
            return
        verdict = self._gate.admit(chunk, self._transport.get_write_buffer_size())
        if verdict is Verdict.SEND:
            # Two writes, no copy: both frames are made once per chunk and shared.
            header, body = chunk.encoded(header_frame), chunk.encoded(ws_frame)
            self._transport.write(header)
            self._transport.write(body)
            self._counts.bytes_sent += len(header) + len(body)
        elif verdict is Verdict.DROP:
            log.warning("%s: too slow, disconnecting", self._label)
            self.close(CLOSE_TOO_SLOW, "too slow: fell behind the live stream")

    def on_stall(self) -> None:
        self._write(_binary(wire.encode_state(wire.Kind.STALL)))

    def on_resume(self) -> None:
        self._write(_binary(wire.encode_state(wire.Kind.RESUME)))

    def on_end(self) -> None:
        self._write(_binary(wire.encode_state(wire.Kind.END)))

    def close(self, code: int, reason: str) -> None:
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(
                self._ws.close(code=code, message=reason.encode())
            )


class PullServer:
    """Serves this node's channels to the nodes that pull them."""

    def __init__(
        self, registry: Registry, secret: bytes, limits: ViewerLimits, demand: Demand
    ) -> None:
        self._registry = registry
        self._secret = secret
        self._limits = limits
        self.demand = demand
        self._feeds: set[PullFeed] = set()
        #: what the feeds were sent, and their skips and drops
        self.counts = DeliveryCounts()

    @property
    def feeds(self) -> int:
        """Downstream pulls being served."""
        return len(self._feeds)

    async def handle(self, request: web.Request, channel_name: str) -> web.StreamResponse:
        peer = request.remote or "?"
        if not keys.authorized(self._secret, request.headers.get(keys.AUTHORIZATION)):
            log.warning("internal pull of %s from %s refused: missing or wrong key",
                        channel_name, peer)  # fmt: skip
            raise ApiError(403, "internal pull: missing or wrong key")
        ws = web.WebSocketResponse(compress=False, max_msg_size=4096, heartbeat=10.0)
        await ws.prepare(request)
        transport = request.transport
        if transport is None:
            return ws
        label = f"pull {peer}/{channel_name}"
        feed = PullFeed(ws, transport, self._limits, label, self.counts)
        self.demand.hold(channel_name)
        channel = self._registry.open(channel_name)
        self._feeds.add(feed)
        log.info("%s: serving", label)
        try:
            channel.subscribe(feed, internal=True)
            async for _ in ws:
                pass  # a puller says nothing; control frames are aiohttp's
        finally:
            channel.unsubscribe(feed)
            self._feeds.discard(feed)
            self.demand.let_go(channel_name)
            self._registry.forget_if_idle(channel)
            log.info("%s: gone", label)
        return ws

    def close_all(self, reason: str) -> None:
        for feed in list(self._feeds):
            feed.close(WSCloseCode.GOING_AWAY, reason)
