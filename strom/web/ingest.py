"""Push ingest over HTTP: ``PUT``/``POST /ingest/{key}`` and the browser's ``/ingest/ws``.

**HTTP.** The body (chunked or not) is a WebM/Matroska, fragmented MP4, FLV or MPEG-TS
stream, read as it arrives (the app's small ``client_max_size`` does not apply to a
streamed body)::

    ffmpeg -re -i in.mkv -c copy -f webm -method PUT http://HOST:8080/ingest/KEY
    ffmpeg ... -f mpegts - | curl -T - http://HOST:8080/ingest/KEY

A complete body ends the broadcast; a connection dropped mid-body leaves it in the
reconnect grace. Answers are JSON: 200 ``{"channel", "bytes", "frames"}`` at the end;
403 unknown stream key, 409 already live, 415 unsupported container, 400 corrupt data,
413 past a size limit, 429 faster than ``ingest_max_bitrate`` or too many pushes from one
address (``ingest_max_connections_per_address``), 408 idle, 503 full.

**WebSocket** (``GET /ingest/ws``), for the browser's MediaRecorder and for scripts.
Client to server: a text ``{"type":"start","mime":"video/webm;codecs=vp9,opus"}`` (with
``"key"`` for scripts; without it the logged-in session's own channel is used, and the
``Origin`` must be this site), then binary messages with the container bytes in order,
then ``{"type":"stop"}`` to end the broadcast. A further ``start`` on the same socket
begins a new container stream (a restarted MediaRecorder). Server to client:
``{"type":"ready","channel":NAME}``, then about once a second ``{"type":"status",
"state","viewers","bitrate","fps","uptime","broadcast"}``; on a problem
``{"type":"error","reason"}`` and a close with 1008 (authentication, busy, idle), 1003
(unsupported or corrupt media), 1009 (too big, too fast) or 1013 (the server is full, or
too many pushes from one address: try again later). A socket that drops without
``stop`` leaves the broadcast in the reconnect grace, and a new socket's ``start`` within
it resumes the same broadcast (replacing the old socket if the server still thinks it is
open).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.http_exceptions import HttpProcessingError

from strom.errors import (
    WS_POLICY,
    WS_TOO_BIG,
    WS_TRY_LATER,
    ApiError,
    LimitExceeded,
    ProtocolError,
    PublishRefused,
    StromError,
)
from strom.ingest.push import PushIngest, PushPublisher, PushState
from strom.ingest.upload import StartRefused, control_type, parse_start
from strom.live.channel import ChannelBusy
from strom.web.auth import authenticated_user
from strom.web.errors import json_error, same_origin
from strom.web.site import Site

log = logging.getLogger(__name__)

#: where pushes go (their bodies are streamed, read as they arrive)
INGEST_PATH = "/ingest/"
#: seconds between status messages to a browser uploader
STATUS_INTERVAL = 1.0


def _peer(request: web.Request) -> str:
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if peername:
        return f"{peername[0]}:{peername[1]}"
    return request.remote or "?"


class IngestHttp:
    def __init__(self, site: Site, ingest: PushIngest) -> None:
        self.site = site
        self.ingest = ingest

    def routes(self, app: web.Application) -> None:
        app.router.add_get(INGEST_PATH + "ws", self.websocket)
        app.router.add_put(INGEST_PATH + "{key}", self.push)
        app.router.add_post(INGEST_PATH + "{key}", self.push)

    # -- PUT / POST ------------------------------------------------------------------------

    async def push(self, request: web.Request) -> web.StreamResponse:
        host = request.remote or ""
        now = asyncio.get_running_loop().time()
        refusal = self.ingest.admit(host, "http", _peer(request), now)
        if refusal is not None:
            response: web.StreamResponse = json_error(429, refusal)
        else:
            try:
                response = await self._push(request)
            finally:
                self.ingest.leave(host)
        # One push per connection. An answer given before the body ended (an error) must
        # not leave the client sending into the void: hang up once it is written, rather
        # than let the server linger reading the rest of the body.
        response.force_close()
        if request.content.at_eof() or request.transport is None:
            return response
        await response.prepare(request)
        await response.write_eof()
        request.transport.close()
        return response

    async def _push(self, request: web.Request) -> web.StreamResponse:
        ingest = self.ingest
        peer = _peer(request)
        if ingest.full:
            ingest.refused()
            log.warning("push http %s refused: too many push ingests", peer)
            return json_error(503, "too many streams are being pushed; try again later")
        name = await ingest.resolve(request.match_info["key"])
        if name is None:
            ingest.refused()
            log.warning("push http %s refused: unknown stream key", peer)  # never the key
            return json_error(403, "unknown stream key")
        try:
            await ingest.registry.admit(name)
        except PublishRefused as exc:
            ingest.refused()
            log.warning("push http %s to %s refused: %s", peer, name, exc)
            return json_error(exc.http_status, str(exc))
        loop = asyncio.get_running_loop()
        transport = request.transport

        def hang_up(reason: str) -> None:
            if transport is not None:
                transport.close()

        pub = ingest.publisher(name, transport="http", peer=peer, now=loop.time(), close=hang_up)
        try:
            while True:
                async with asyncio.timeout(pub.read_timeout):
                    data = await request.content.readany()
                if not data:
                    break
                pub.feed(data, loop.time())
            await pub.drain()
            pub.finish()
        except ChannelBusy:
            pub.fail(Exception(f"channel {name} is already live"))
            return json_error(409, f"channel {name} is already live")
        except ProtocolError as exc:
            pub.fail(exc)
            return json_error(exc.http_status, str(exc))
        except HttpProcessingError as exc:  # malformed chunked framing and the like
            pub.fail(exc)
            return json_error(400, "malformed HTTP body")
        except TimeoutError:
            what = "sent nothing" if pub.state is PushState.SNIFFING else "stalled"
            why = f"{what} for {pub.read_timeout:g} s"
            pub.lost(why)
            return json_error(408, f"the stream {why}")
        except ConnectionError:
            pub.lost("connection dropped mid-body")
            return web.Response(status=400)  # nobody is left to read it
        finally:
            if pub.state is not PushState.ENDED:  # cancelled (server shutdown)
                pub.lost("request cancelled")
        return web.json_response({"channel": name, "bytes": pub.bytes_in, "frames": pub.frames_in})

    # -- WebSocket -------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        limits = self.ingest.limits
        ws = web.WebSocketResponse(compress=False, max_msg_size=limits.ws_max_message)
        await ws.prepare(request)
        peer = _peer(request)
        uploader = WsUploader(self, request, ws, peer)
        host = request.remote or ""
        refusal = self.ingest.admit(host, "ws", peer, asyncio.get_running_loop().time())
        if refusal is not None:
            await uploader.refuse(refusal, WS_TRY_LATER)
            return ws
        try:
            await uploader.run()
        except ConnectionError:
            pass
        finally:
            uploader.done()
            self.ingest.leave(host)
        return ws


class UploadRefused(StromError):
    """A browser upload refused before it starts: closed with ``ws_close`` and the reason."""

    def __init__(self, reason: str, code: int = WS_POLICY) -> None:
        super().__init__(reason)
        self.ws_close = code


class WsUploader:
    """One ``/ingest/ws`` socket: the start handshake, then bytes into a publisher."""

    def __init__(
        self, http: IngestHttp, request: web.Request, ws: web.WebSocketResponse, peer: str
    ) -> None:
        self.http = http
        self.ingest = http.ingest
        self.request = request
        self.ws = ws
        self.peer = peer
        self.pub: PushPublisher | None = None
        self._status: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[Any] | None = None
        #: the frame rate the start message chose (for the stream health)
        self._fps: float | None = None

    async def refuse(self, reason: str, code: int) -> None:
        if self.ws.closed:
            return
        with contextlib.suppress(ConnectionError):
            await self.ws.send_json({"type": "error", "reason": reason})
        # A close reason must fit a control frame (RFC 6455 section 5.5: 125 bytes).
        # Cut on a character boundary: a broken UTF-8 reason fails the browser's socket.
        await self.ws.close(
            code=code, message=reason.encode()[:120].decode(errors="ignore").encode()
        )

    async def run(self) -> None:
        ingest = self.ingest
        if ingest.full:
            ingest.refused()
            log.warning("push ws %s refused: too many push ingests", self.peer)
            await self.refuse("too many streams are being pushed; try again later", WS_TRY_LATER)
            return
        try:
            name = await self._start()
        except UploadRefused as exc:
            ingest.refused()
            log.warning("push ws %s refused: %s", self.peer, exc)
            await self.refuse(str(exc), exc.ws_close)
            return
        try:
            await ingest.registry.admit(name)
        except PublishRefused as exc:
            ingest.refused()
            log.warning("push ws %s to %s refused: %s", self.peer, name, exc)
            await self.refuse(str(exc), exc.ws_close)
            return
        loop = asyncio.get_running_loop()
        pub = self.pub = ingest.publisher(
            name, transport="ws", peer=self.peer, now=loop.time(), close=self._hang_up,
            takeover=True,
        )  # fmt: skip
        try:
            pub.claim()
        except ChannelBusy:
            reason = f"channel {name} is already live"
            pub.fail(Exception(reason))
            await self.refuse(reason, WS_POLICY)
            return
        channel = ingest.registry.get(name)
        if channel is not None:
            channel.stats.declared_fps = self._fps
        await self.ws.send_json({"type": "ready", "channel": name})
        self._status = loop.create_task(self._send_status())
        await self._receive(pub)

    async def _start(self) -> str:
        """Read the start message and authenticate: the channel name."""
        try:
            msg = await self.ws.receive(timeout=self.ingest.limits.sniff_timeout)
        except TimeoutError:
            raise UploadRefused("no start message in time") from None
        if msg.type is not WSMsgType.TEXT:
            raise UploadRefused('the first message must be {"type":"start",...}')
        try:
            start = parse_start(msg.data)
        except StartRefused as exc:
            raise UploadRefused(str(exc), exc.ws_close) from None
        self._fps = start.fps
        if start.key is not None:
            name = await self.ingest.resolve(start.key)
            if name is None:
                raise UploadRefused("unknown stream key")  # never logged with the key
            return name
        if not same_origin(self.request, self.http.site.settings.public_url):
            raise UploadRefused("cross-site upload refused: the page is not from this site")
        try:
            return authenticated_user(self.request)
        except ApiError:
            raise UploadRefused("log in, or send a stream key in the start message") from None

    async def _receive(self, pub: PushPublisher) -> None:
        loop = asyncio.get_running_loop()
        ws = self.ws
        try:
            while pub.state is not PushState.ENDED:
                try:
                    msg = await ws.receive(timeout=pub.read_timeout)
                except TimeoutError:
                    idle = pub.read_timeout
                    pub.lost(f"sent nothing for {idle:g} s")
                    await self._error(f"nothing received for {idle:g} s", WS_POLICY)
                    return
                if msg.type is WSMsgType.BINARY:
                    pub.feed(msg.data, loop.time())
                elif msg.type is WSMsgType.TEXT:
                    if await self._control(pub, msg.data):
                        return
                elif msg.type is WSMsgType.ERROR and getattr(msg.data, "code", None) == WS_TOO_BIG:
                    # aiohttp already closed it with 1009 and its own reason
                    limit = self.ingest.limits.ws_max_message
                    pub.fail(LimitExceeded(f"a message beyond {limit} bytes"))
                    return
                else:  # closed without "stop", or the connection failed
                    pub.lost("socket closed without stop")
                    return
        except ChannelBusy:  # a restarted container found the channel taken meanwhile
            pub.fail(Exception("channel taken by another publisher"))
            await self._error("the channel was taken by another publisher", WS_POLICY)
        except ProtocolError as exc:
            pub.fail(exc)
            await self._error(str(exc), exc.ws_close)

    async def _control(self, pub: PushPublisher, data: str) -> bool:
        """A text message after the start; True when the socket is done."""
        kind = control_type(data)
        if kind == "stop":
            await pub.drain()
            pub.finish()
            await self._stop_status()
            await self.ws.close(code=1000, message=b"stopped")
            return True
        if kind == "start":
            pub.restart_container()
        return False

    async def _error(self, reason: str, code: int) -> None:
        await self._stop_status()
        if not self.ws.closed:
            await self.refuse(reason, code)

    def _hang_up(self, reason: str) -> None:
        """The publisher was disconnected (operator) or replaced (a newer socket)."""
        if self._closing is None and not self.ws.closed:
            loop = asyncio.get_running_loop()
            self._closing = loop.create_task(self._error(reason, WS_POLICY))

    async def _send_status(self) -> None:
        pub = self.pub
        assert pub is not None
        loop = asyncio.get_running_loop()
        # Rates over the last interval, from what this socket received: the streamer sees
        # their upload at once (the hub's own figures average over several seconds).
        last, last_bytes, last_frames = loop.time(), pub.bytes_in, pub.video_frames_in
        while pub.state is not PushState.ENDED and not self.ws.closed:
            await asyncio.sleep(STATUS_INTERVAL)
            channel = pub.channel
            now = loop.time()
            elapsed = max(now - last, 1e-3)
            bitrate = (pub.bytes_in - last_bytes) * 8 / elapsed
            fps = (pub.video_frames_in - last_frames) / elapsed
            last, last_bytes, last_frames = now, pub.bytes_in, pub.video_frames_in
            if channel is not None:
                started = channel.started_at or time.time()
                status = {
                    "type": "status",
                    "state": channel.state.value,
                    "viewers": self.ingest.registry.audience(channel.name),
                    "bitrate": round(bitrate),
                    "fps": round(fps, 1),
                    "uptime": round(time.time() - started),
                    "broadcast": channel.broadcast_id,
                }
                try:
                    await self.ws.send_json(status)
                except ConnectionError:
                    return

    async def _stop_status(self) -> None:
        task, self._status = self._status, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def done(self) -> None:
        task = self._status
        if task is not None:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: a failed send only means the socket is gone
            task.cancel()
        if self.pub is not None and self.pub.state is not PushState.ENDED:
            self.pub.lost("socket gone")


def routes(app: web.Application, site: Site) -> None:
    """Register the push ingest routes."""
    IngestHttp(site, site.push).routes(app)
