"""``GET /events/ws``: the site's channel events over a WebSocket (see
:mod:`strom.channels.events` and ``docs/channel-events.md``).

The server sends text frames ``{"type":"channel","channel":{...}}``; the client sends
nothing (what it sends is read and dropped). A WebSocket rather than Server-Sent Events:
browsers hold at most six HTTP/1.1 connections per site, which a few open tabs of event
streams would use up; WebSockets do not count against them.

Bounds: sockets per client address and in all (``events_max_per_address``,
``events_max_connections``: more are closed 1013 with the reason), and events waiting for
one client (``events_queue_max``: a client that falls that far behind is closed 1008
"too slow"; its page reconnects and reads the channel again).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from strom.channels.events import ChannelEvents
from strom.errors import ApiError
from strom.ratelimit import AddressSlots, RefusalLog, SlotLimits
from strom.settings import Settings

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0  # WebSocket pings find half-open connections
#: the client sends nothing; a frame this big is not a mistake
MAX_CLIENT_FRAME = 256


class EventClient:
    """One open ``/events/ws`` socket: its events waiting to be written, bounded."""

    def __init__(self, queue_max: int) -> None:
        self.queue: collections.deque[str] = collections.deque()
        self.queue_max = queue_max
        self.ready = asyncio.Event()
        self.too_slow = False
        self.closing = False

    def close(self) -> None:
        self.closing = True
        self.ready.set()

    def send(self, text: str) -> None:
        if self.too_slow:
            return
        if len(self.queue) >= self.queue_max:
            self.too_slow = True
            self.queue.clear()
        else:
            self.queue.append(text)
        self.ready.set()


class EventStream:
    def __init__(self, events: ChannelEvents, settings: Settings) -> None:
        self.events = events
        self.queue_max = settings.events_queue_max
        self.slots = AddressSlots(
            SlotLimits(
                per_address=settings.events_max_per_address,
                total=settings.events_max_connections,
                exempt=settings.limit_exempt_networks,
            )
        )
        self._refusals = RefusalLog(log)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/events/ws", self.socket)

    async def socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            compress=False, max_msg_size=MAX_CLIENT_FRAME, heartbeat=HEARTBEAT_SECONDS
        )
        if not ws.can_prepare(request).ok:
            raise ApiError(400, "this is a WebSocket: connect with Upgrade: websocket")
        await ws.prepare(request)
        host = request.remote or ""
        refusal = self.slots.acquire(host)
        if refusal is not None:
            now = asyncio.get_running_loop().time()
            self._refusals.warning("events", now, "events %s refused: %s", host, refusal)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=refusal.encode()[:120])
            return ws
        client = EventClient(self.queue_max)
        self.events.listeners.add(client)
        reader = asyncio.get_running_loop().create_task(self._read(ws))
        try:
            await self._write(ws, client, reader, host)
        finally:
            self.events.listeners.discard(client)
            self.slots.release(host)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        return ws

    async def _write(
        self,
        ws: web.WebSocketResponse,
        client: EventClient,
        reader: asyncio.Task[None],
        host: str,
    ) -> None:
        while not reader.done():
            wait = asyncio.ensure_future(client.ready.wait())
            await asyncio.wait((wait, reader), return_when=asyncio.FIRST_COMPLETED)
            wait.cancel()
            client.ready.clear()
            if client.closing:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
                return
            if client.too_slow:
                log.info("events %s: closed, too slow to keep up", host)
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too slow")
                return
            try:
                while client.queue and not ws.closed:
                    await ws.send_str(client.queue.popleft())
            except ConnectionError:
                return

    async def _read(self, ws: web.WebSocketResponse) -> None:
        """Read (and drop) what the client sends, until it closes."""
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:
                return
