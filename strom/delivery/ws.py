"""WebSocket fMP4 delivery: ``GET /live/{channel}/ws``.

Protocol (server to client; the client sends nothing but control frames):

1. text ``{"type":"offline"}`` if the channel is not live; the socket stays open.
2. text ``{"type":"init","mime":"video/mp4; codecs=\\"...\\""}``, then one binary message
   with the init segment (``ftyp`` + ``moov``). Sent again if codec parameters change.
3. one binary message per CMAF chunk (``moof`` + ``mdat``), starting at a keyframe.
4. text ``{"type":"reconnecting"}`` if the publisher dropped and the broadcast waits for
   it (a viewer who comes meanwhile gets the init segment, the last GOP and this);
   ``{"type":"resumed"}`` when it is back with the same codec parameters (with new ones,
   a new ``init`` comes instead); chunks then continue the same timeline.
5. text ``{"type":"end"}`` and close 1000 when the broadcast ends.

A viewer of a full channel, or one more from an address that already has
``ws_max_viewers_per_address`` viewers open, is closed at once with 1013 and the reason.

Server-to-client frames are unmasked (RFC 6455 section 5.1), so a chunk's frame is the
same bytes for every viewer: it is framed once per chunk (:func:`ws_frame`, cached on the
chunk) and written straight to each viewer's transport. Text and close frames go the same
way so ordering holds. With a big audience (``ws_merge_above``) two chunks may go in one
write (:mod:`strom.delivery.merge`): still one message per chunk, in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, web

from strom.delivery.backpressure import (
    BackpressureGate,
    DeliveryCounts,
    Verdict,
    ViewerLimits,
)
from strom.delivery.merge import Batch, MergeLimits, Step, WriteMerger
from strom.live.channel import Channel, Subscriber, TooManyViewers
from strom.live.chunk import Chunk
from strom.ratelimit import AddressSlots, RefusalLog, SlotLimits

if TYPE_CHECKING:
    from strom.live.registry import Registry

log = logging.getLogger(__name__)

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
#: close codes this endpoint uses besides 1000/1001
CLOSE_TOO_SLOW = WSCloseCode.POLICY_VIOLATION  # 1008
CLOSE_FULL = WSCloseCode.TRY_AGAIN_LATER  # 1013 (a full channel, too many from one address)
#: a close frame's payload is at most 125 bytes, the code included (RFC 6455 section 5.5)
CLOSE_REASON_MAX = 123


def frame_message(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked WebSocket frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


def ws_frame(chunk: Chunk) -> bytes:
    """The binary frame of ``chunk``: a :class:`~strom.live.chunk.ChunkEncoder`, so
    ``chunk.encoded(ws_frame)`` frames it once and every viewer shares the bytes."""
    return frame_message(OPCODE_BINARY, chunk.data)


def _text(obj: dict[str, str]) -> bytes:
    return frame_message(OPCODE_TEXT, json.dumps(obj, separators=(",", ":")).encode())


class WsViewer(Subscriber):
    """One WebSocket viewer of one channel."""

    transport = "ws"

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        limits: ViewerLimits,
        peer: str,
        counts: DeliveryCounts | None = None,
    ) -> None:
        self._ws = ws
        self._transport = transport
        #: the delivery's counts, shared by its viewers (bytes sent, skips, drops)
        self.counts = counts if counts is not None else DeliveryCounts()
        loop = asyncio.get_running_loop()
        self._gate = BackpressureGate(limits, loop.time, self.counts)
        self._peer = peer
        self._skip_bytes = limits.skip_bytes
        self._close_task: asyncio.Task[bool] | None = None
        #: the channel's write merging (None: off), the batch whose first chunk this
        #: viewer holds, and whether chunks come from the GOP cache (subscribing)
        self.merger: WriteMerger | None = None
        self._held: Batch | None = None
        self.joining = False

    def _write(self, data: bytes) -> None:
        if self._held is not None:
            self._write_held()
        if self._close_task is None and not self._transport.is_closing():
            self._transport.write(data)
            self.counts.bytes_sent += len(data)

    def _write_held(self) -> None:
        held, self._held = self._held, None
        if held is not None and self._close_task is None and not self._transport.is_closing():
            data = held.held
            self._transport.write(data)
            self.counts.bytes_sent += len(data)

    def release(self, batch: Batch) -> None:
        """The channel's held chunk waited long enough: write it if this viewer holds it."""
        if self._held is batch:
            self._write_held()

    def send_offline(self) -> None:
        self._write(_text({"type": "offline"}))

    def on_live(self, channel: Channel) -> None:
        assert channel.init_segment is not None
        self._write(_text({"type": "init", "mime": channel.mime}))
        self._write(frame_message(OPCODE_BINARY, channel.init_segment))
        self._gate.restart()

    def on_chunk(self, chunk: Chunk) -> None:
        transport = self._transport
        if transport.is_closing():
            # Gone; connection_lost unsubscribes it soon. (uvloop raises on a write to a
            # closed transport, and that would reach the publisher feeding this chunk.)
            return
        buffered = transport.get_write_buffer_size()
        if (
            buffered <= self._skip_bytes
            and not self._gate.waiting_keyframe
            and self._close_task is None
        ):
            # The hot path, once per chunk per viewer: one check, one write (of the frame
            # the first viewer made; a dict lookup costs a third of a method call), one
            # addition to the delivery's bytes sent.
            if self.merger is not None:
                self._merged(self.merger, chunk)
                return
            try:
                data = chunk.encodings[ws_frame]
            except KeyError:
                data = chunk.encoded(ws_frame)
            transport.write(data)
            self.counts.bytes_sent += len(data)
            return
        if self._close_task is not None:
            return  # closing: nothing more to send
        if self._held is not None:
            self._write_held()  # admitted when held: it goes before the gate's next say
        verdict = self._gate.admit(chunk, buffered)
        if verdict is Verdict.SEND:
            data = chunk.encoded(ws_frame)
            transport.write(data)
            self.counts.bytes_sent += len(data)
        elif verdict is Verdict.DROP:
            log.warning("ws viewer %s: too slow, disconnecting", self._peer)
            self.close(CLOSE_TOO_SLOW, "too slow: fell behind the live stream")

    def _merged(self, merger: WriteMerger, chunk: Chunk) -> None:
        """The hot path when the channel merges writes: hold, write, or write two."""
        if merger.current is chunk:
            step = merger.step  # another viewer asked first
        elif self.joining:
            step = Step.WRITE  # a past chunk, from the GOP cache
        else:
            step = merger.see(chunk)
        batch = merger.batch
        if step is Step.HOLD:
            if self._held is not batch:
                if self._held is not None:
                    self._write_held()
                self._held = batch
            return
        if step is Step.FLUSH and self._held is batch and batch is not None:
            self._held = None
            data = batch.data()
        else:
            if self._held is not None:
                self._write_held()
            data = chunk.encoded(ws_frame)
        self._transport.write(data)
        self.counts.bytes_sent += len(data)

    def on_stall(self) -> None:
        self._write(_text({"type": "reconnecting"}))

    def on_resume(self) -> None:
        self._write(_text({"type": "resumed"}))

    def on_end(self) -> None:
        self._write(_text({"type": "end"}))
        self.close(WSCloseCode.OK, "broadcast ended")

    def close(self, code: int, reason: str) -> None:
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(
                self._ws.close(code=code, message=reason.encode())
            )


class WsDelivery:
    def __init__(
        self,
        registry: Registry,
        limits: ViewerLimits,
        slots: SlotLimits | None = None,
        merge: MergeLimits | None = None,
    ) -> None:
        self._registry = registry
        self._limits = limits
        self._merge = merge or MergeLimits(above=0, hold=0.0)
        #: write merging per channel name, while it has viewers (merging on)
        self._mergers: dict[str, WriteMerger] = {}
        self._viewers: set[WsViewer] = set()
        #: what this delivery sent, and its slow viewers' skips and drops
        self.counts = DeliveryCounts()
        #: viewers per client address (generous: a NAT can hide a whole audience)
        self.slots = AddressSlots(slots or SlotLimits(per_address=0))
        self._refusals = RefusalLog(log)

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    async def handle(self, request: web.Request, channel_name: str) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=4096, timeout=5.0)
        host = request.remote or ""
        refusal = self.slots.acquire(host)
        if refusal is not None:
            now = asyncio.get_running_loop().time()
            self._refusals.warning("ws viewer", now, "ws viewer %s/%s refused: %s",
                                   host, channel_name, refusal)  # fmt: skip
            await ws.prepare(request)
            await ws.close(code=CLOSE_FULL, message=refusal.encode()[:CLOSE_REASON_MAX])
            return ws
        try:
            return await self._watch(request, ws, channel_name)
        finally:
            self.slots.release(host)

    async def _watch(
        self, request: web.Request, ws: web.WebSocketResponse, channel_name: str
    ) -> web.StreamResponse:
        await ws.prepare(request)
        transport = request.transport
        if transport is None:  # the client went away during the upgrade
            return ws
        peer = f"{request.remote}/{channel_name}"
        viewer = WsViewer(ws, transport, self._limits, peer, self.counts)
        channel = self._registry.open(channel_name)
        merger = self._merger_of(channel_name)
        if merger is not None:
            merger.viewers.add(viewer)
            viewer.merger = merger
        viewer.joining = True
        try:
            # The streamer's dashboard preview is not an audience.
            channel.subscribe(viewer, counted=request.query.get("preview") != "1")
        except TooManyViewers:
            log.warning("ws viewer %s refused: channel full", peer)
            self._leave_merger(channel_name, viewer)
            await ws.close(code=CLOSE_FULL, message=b"channel is full")
            self._registry.forget_if_idle(channel)
            return ws
        finally:
            viewer.joining = False
        self._viewers.add(viewer)
        # A broadcast waiting for its publisher: the picture it stopped on, and the stall.
        if not channel.catch_up(viewer) and not channel.live:
            viewer.send_offline()
        try:
            async for _ in ws:
                pass  # viewers have nothing to say; control frames are handled by aiohttp
        finally:
            channel.unsubscribe(viewer)
            self._leave_merger(channel_name, viewer)
            self._viewers.discard(viewer)
            self._registry.forget_if_idle(channel)
        return ws

    def _merger_of(self, channel_name: str) -> WriteMerger | None:
        if not self._merge.above:
            return None
        merger = self._mergers.get(channel_name)
        if merger is None:
            loop = asyncio.get_running_loop()
            merger = self._mergers[channel_name] = WriteMerger(
                self._merge, ws_frame, loop.time, loop.call_later
            )
        return merger

    def _leave_merger(self, channel_name: str, viewer: WsViewer) -> None:
        merger = viewer.merger
        if merger is None:
            return
        merger.viewers.discard(viewer)
        if not merger.viewers:
            merger.close()
            self._mergers.pop(channel_name, None)

    async def close_all(self, code: int, reason: str) -> None:
        for viewer in list(self._viewers):
            viewer.close(code, reason)
