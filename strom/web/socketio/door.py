"""The Socket.IO compatibility door: the original mobile and desktop apps chat in Strom's
rooms through python-socketio (aiohttp mode) on its default path, ``/socket.io/``.

Their events and Strom's answers are listed in ``docs/chat-protocol.md`` and, per original
app, in ``docs/compat.md``: ``join_room``, ``comment``, ``upvote``, ``create_room`` and
``close_room`` (the broadcaster's, by stream key; with open rooms on, by the room's name:
the first socket to create a room is its broadcaster, and its ``close_room`` or
disconnect closes the room), and the desktop app's ``start_stream``, frames and
``stop_stream`` (:mod:`strom.ingest.jpeg_socketio`). What rooms write becomes the events
those apps listen for (:mod:`strom.web.socketio.emits`).

Identity: Socket.IO clients are guests. A browser's client that sends Strom's session
cookie is the same guest as that browser's WebSocket chat; any other client gets a guest
name of its own per connection. The broadcaster, after ``create_room`` with an account's
stream key, is the channel's owner (with the owner's badge and powers in the room).

How it bridges: each client in each room is a chat :class:`~strom.chat.room.Member`
whose transport (:class:`_Transport`) turns the frames the room writes into Socket.IO
emits. Rooms frame every batch once for all members; the door emits each batch once to
the Socket.IO room (python-socketio encodes it once), however many Socket.IO members the
room has. Emits leave in order from one task, through a bounded queue.

The door sits in front of the session and CSRF middlewares (:meth:`SocketIODoor.attach`):
Socket.IO's long-polling transport POSTs without a CSRF token, and its session id (``sid``
in the query) is what authenticates a poll. Engine.IO sessions are bounded per address and
in all, and expire when unused (:mod:`strom.web.socketio.sessions`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import web

from strom.channels.access import Viewer, WatchAccess
from strom.chat.protocol import ErrorCode, Like, Send
from strom.chat.room import Identity, Member, Room
from strom.chat.service import ChatService, RoomFull
from strom.ingest import jpeg_socketio as pictures
from strom.ingest.jpeg_socketio import (
    FRAME_EVENTS,
    START_EVENT,
    STOP_EVENT,
    WATCH_EVENT,
    JpegStreamIngest,
)
from strom.ratelimit import TokenBucket
from strom.settings import valid_channel_name
from strom.store import DatabaseUnavailable
from strom.tasks import TaskSet
from strom.web.auth import COOKIE, SessionCodec
from strom.web.chat import guest_name
from strom.web.socketio.clients import SioClient
from strom.web.socketio.emits import comment_extra, member_emits, room_emits
from strom.web.socketio.guard import GuardedWebSocket, checked_message, library_logger
from strom.web.socketio.packets import RoomClaims, room_name, stream_key, unframe
from strom.web.socketio.sessions import EngineIOLimits, EngineIOSessions, wake
from strom.web.socketio.watchers import FrameWatchers, frames_room

if TYPE_CHECKING:
    from strom.live.registry import StreamKeyResolver
    from strom.web.errors import Handler

log = logging.getLogger(__name__)

SOCKETIO_PATH = "/socket.io/"
MAX_ROOMS_PER_CLIENT = 8
OUTBOX_MAX = 10_000  # emits waiting to leave; beyond it new ones are dropped (with a log line)
QUEUED_PACKET_BYTES = 512  # engine.io queues packets, not bytes: what one counts as
MAX_PACKET_BYTES = 64 * 1024  # largest HTTP body or WebSocket message a client may send
_DISCONNECT = "\0disconnect"  # in the outbox: disconnect the client, after its emits


class _Transport:
    """A member's connection as the room sees it: writes become Socket.IO emits."""

    __slots__ = ("client", "door", "room")

    def __init__(self, door: SocketIODoor, client: SioClient, room: str) -> None:
        self.door = door
        self.client = client
        self.room = room

    def write(self, data: bytes) -> None:
        self.door.from_room(self.client, self.room, data)

    def get_write_buffer_size(self) -> int:
        return self.door.backlog(self.client.sid)

    def is_closing(self) -> bool:
        return self.client.closed


class SocketIODoor:
    def __init__(
        self,
        chat: ChatService,
        keys: StreamKeyResolver,
        secret: bytes,
        streams: JpegStreamIngest | None = None,
        *,
        limits: EngineIOLimits | None = None,
        access: WatchAccess | None = None,
    ) -> None:
        self.chat = chat
        #: who may chat in a private channel's room (None: every room is open)
        self.access = access
        self.keys = keys
        self.secret = secret
        self.codec = SessionCodec(secret)
        #: the original desktop app's JPEG streams (None: streaming through the door is off)
        self.streams = streams
        max_packet = MAX_PACKET_BYTES
        if streams is not None:
            max_packet = max(max_packet, streams.limits.max_packet_bytes)
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            async_handlers=False,  # one client's events are handled in order
            max_http_buffer_size=max_packet,
            logger=library_logger("socketio"),
            engineio_logger=library_logger("engineio"),
        )
        #: Engine.IO sessions, bounded per address and in all, expired when unused
        self.sessions = EngineIOSessions(self.sio.eio, limits or EngineIOLimits())
        # Malformed packets end the client's session with one log line (socketio_guard):
        # engine.io's WebSocket transport checks each packet's type, and every Socket.IO
        # packet is checked before python-socketio dispatches it.
        self.sio.eio._async = {**self.sio.eio._async, "websocket": GuardedWebSocket}
        self.sio.eio.on("message", functools.partial(checked_message, self.sio))
        for event, handler in {
            "connect": self._connect,
            "disconnect": self._disconnect,
            "join_room": self._join_room,
            "comment": self._comment,
            "upvote": self._upvote,
            "create_room": self._create_room,
            "close_room": self._close_room,
        }.items():
            self.sio.on(event, handler)
        if streams is not None:
            streams.door = self
            self.sio.on(START_EVENT, self._start_stream)
            self.sio.on(STOP_EVENT, self._stop_stream)
            for event in FRAME_EVENTS:
                self.sio.on(event, self._stream_frame)
            self.sio.on(WATCH_EVENT, self._watch_frames)
            self.sio.on("*", self._unknown_event)
        self.clients: dict[str, SioClient] = {}
        #: open rooms' broadcasters (the sockets that created them)
        self.claims = RoomClaims()
        self._outbox: asyncio.Queue[tuple[str, Any, str]] = asyncio.Queue(maxsize=OUTBOX_MAX)
        self._last_batch: dict[str, bytes] = {}
        self._sender: asyncio.Task[None] | None = None
        self._expiry: asyncio.Task[None] | None = None
        self._tasks = TaskSet("socket.io")
        #: sockets that watch streams' pictures (the original desktop app's viewers)
        self.watchers = FrameWatchers(self.sio, self.queued, self._tasks)
        self._last_drop_log = 0.0
        self.dropped = 0

    # --- lifecycle -----------------------------------------------------------------------

    def attach(self, app: web.Application) -> None:
        """Serve the door on ``app`` at ``/socket.io/``, in front of its middlewares."""
        self.sio.attach(app, socketio_path=SOCKETIO_PATH.strip("/"))
        sio = self.sio

        @web.middleware
        async def door(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path == SOCKETIO_PATH:
                return await self.sessions.handle(request, sio.handle_request)
            return await handler(request)

        app.middlewares.insert(0, door)
        app.on_startup.append(self._start)

    async def _start(self, _app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        self._sender = loop.create_task(self._send_loop())
        self._expiry = loop.create_task(self.sessions.run())

    async def stop(self) -> None:
        if self.streams is not None:
            await self.streams.close()
        for sid in list(self.clients):
            try:
                async with asyncio.timeout(1.0):
                    await self.sio.disconnect(sid)
            except Exception as exc:  # shutting down: nothing left to save
                log.debug("socket.io: disconnecting %s at shutdown: %r", sid, exc)
        for sock in list(getattr(self.sio.eio, "sockets", {}).values()):
            wake(sock)
        await self.sio.shutdown()
        tasks = [t for t in (self._sender, self._expiry) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._tasks.close(cancel=True)

    # --- out: from the rooms to Socket.IO -------------------------------------------------

    def _emit(self, event: str, data: Any, to: str) -> None:
        try:
            self._outbox.put_nowait((event, data, to))
        except asyncio.QueueFull:
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_log > 10:
                self._last_drop_log = now
                log.warning("socket.io: %d emits waiting: dropping new ones", OUTBOX_MAX)

    async def _send_loop(self) -> None:
        while True:
            event, data, to = await self._outbox.get()
            try:
                if event == _DISCONNECT:
                    await self.sio.disconnect(to)
                    continue
                await self.sio.emit(event, data, to=to)
            except Exception:  # one emit's failure must not stop the others
                log.exception("socket.io: emitting %s failed", event)

    def _engineio_socket(self, sid: str) -> Any:
        """engine.io's socket of ``sid`` (its packet queue is the client's backlog)."""
        try:
            return self.sio.eio.sockets.get(self.sio.manager.eio_sid_from_sid(sid, "/"))
        except (AttributeError, KeyError):
            return None

    def backlog(self, sid: str) -> int:
        """About how many bytes wait to be sent to ``sid`` (engine.io's queue)."""
        return self.queued(sid) * QUEUED_PACKET_BYTES

    def queued(self, sid: str) -> int:
        """Packets waiting to be sent to ``sid`` (engine.io's queue)."""
        queue = getattr(self._engineio_socket(sid), "queue", None)
        return queue.qsize() if isinstance(queue, asyncio.Queue) else 0

    def from_room(self, client: SioClient, room: str, frame: bytes) -> None:
        """What a room wrote to ``client``'s member in ``room``, as Socket.IO events."""
        payload = unframe(frame)
        if payload.startswith(b'{"type":"batch"'):
            key = room.lower()
            if self._last_batch.get(key) is frame:
                return  # already emitted to the room's Socket.IO members
            self._last_batch[key] = frame
            to = _sio_room(room)
            for event in json.loads(payload)["events"]:
                for name, data in room_emits(room, event):
                    self._emit(name, data, to)
            return
        for name, data in member_emits(room, json.loads(payload)):
            self._emit(name, data, client.sid)

    def _error(self, client: SioClient, room: str | None, code: ErrorCode, reason: str) -> None:
        self._emit("error", {"roomKey": room, "code": code.value, "reason": reason}, client.sid)

    # --- in: Socket.IO events -------------------------------------------------------------

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        self.sessions.joined(environ)
        request = environ.get("aiohttp.request")
        peer = (request.remote if isinstance(request, web.Request) else None) or "?"
        seed = sid
        raw = request.cookies.get(COOKIE) if isinstance(request, web.Request) else None
        session = self.codec.decode(raw, time.time()) if raw else None
        if session is not None:  # a browser: the same guest as its WebSocket chat
            seed = session.csrf
        limits = self.chat.limits
        loop = asyncio.get_running_loop()
        self.clients[sid] = SioClient(
            sid,
            Identity(guest_name(self.secret, seed)),
            peer,
            TokenBucket(limits.frame_rate, limits.frame_burst, loop.time()),
        )
        log.debug("socket.io %s: connected as %s", peer, self.clients[sid].guest.name)
        return True

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        client = self.clients.pop(sid, None)
        if self.streams is not None:
            self.streams.client_gone(sid)
        self.watchers.gone(sid)
        if client is None:
            return
        client.closed = True
        for room in self.claims.rooms_of(sid):  # the broadcaster went: its rooms close
            self._room_closed(room)
        # A long-polling client that said goodbye still has a GET waiting for packets:
        # answer it now rather than at engine.io's poll timeout (45 s).
        wake(self._engineio_socket(sid))
        for key in list(client.rooms):
            self._leave(client, key)
        log.info("socket.io %s: %s disconnected", client.peer, client.guest.name)

    def _client(self, sid: str) -> SioClient | None:
        """The client, if it may send one more event now (a flood disconnects it)."""
        client = self.clients.get(sid)
        if client is None or client.closed:
            return None
        if client.frames.take(asyncio.get_running_loop().time()) > 0:
            log.info("socket.io %s: %s disconnected: flooding", client.peer, client.guest.name)
            self._close(client)
            return None
        return client

    def _close(self, client: SioClient, code: int = 0, reason: str = "") -> None:
        if not client.closed:
            client.closed = True
            self._tasks.spawn(self.sio.disconnect(client.sid))

    def _joined(self, client: SioClient, name: str | None) -> tuple[Room, Member] | None:
        if name is None:
            return None
        found = client.rooms.get(name.lower())
        if found is None and name in client.keys:
            found = client.rooms.get(client.keys[name])
        return found

    async def _join(
        self, client: SioClient, name: str | None, identity: Identity
    ) -> tuple[Room, Member] | None:
        """Put ``client`` in room ``name`` as ``identity``; refusals go to the client."""
        if name is None or not valid_channel_name(name):
            self._error(client, name, ErrorCode.BAD_REQUEST, "roomKey must be a channel name")
            return None
        joined = self._joined(client, name)
        if joined is not None and joined[1].identity == identity:
            return joined
        if joined is None and len(client.rooms) >= MAX_ROOMS_PER_CLIENT:
            self._error(client, name, ErrorCode.NOT_ALLOWED,
                        f"at most {MAX_ROOMS_PER_CLIENT} rooms per connection")  # fmt: skip
            return None
        try:
            canonical = await self.chat.resolve_room(name)
        except DatabaseUnavailable:
            self._error(client, name, ErrorCode.UNAVAILABLE, "chat is unavailable right now")
            return None
        if canonical is None:
            self._error(client, name, ErrorCode.NOT_FOUND, "no such channel")
            return None
        if self.access is not None and not await self.access.may_chat(
            canonical, Viewer(None if identity.guest else identity.name, identity.is_admin), None
        ):  # a private channel's chat: its owner's, by stream key (Socket.IO has no pass)
            self._error(client, canonical, ErrorCode.NOT_ALLOWED, "this stream is private")
            return None
        if joined is not None:  # the same room under another identity: swap
            self._leave(client, joined[0].key, keep_sio_room=True)
        member = Member(
            identity,
            _Transport(self, client, canonical),
            lambda code, reason: self._close(client, code, reason),
            f"{client.peer} {identity.name} (socket.io)",
        )
        await self.sio.enter_room(client.sid, _sio_room(canonical))
        try:
            room = await self.chat.join(canonical, member)
        except (RoomFull, DatabaseUnavailable) as exc:
            await self.sio.leave_room(client.sid, _sio_room(canonical))
            why = "the chat room is full" if isinstance(exc, RoomFull) else "chat is unavailable"
            self._error(client, canonical, ErrorCode.UNAVAILABLE, why)
            return None
        if client.closed:  # disconnected while joining
            self.chat.leave(room, member)
            return None
        client.rooms[room.key] = (room, member)
        self._emit("viewers", {"roomKey": room.name, "count": room.viewers}, client.sid)
        log.debug("chat %s: %s joined (socket.io)", room.name, member)
        return room, member

    def _leave(self, client: SioClient, key: str, *, keep_sio_room: bool = False) -> None:
        found = client.rooms.pop(key, None)
        if found is None:
            return
        room, member = found
        member.closed = True
        self.chat.leave(room, member)
        if not client.closed and not keep_sio_room:
            self._tasks.spawn(self.sio.leave_room(client.sid, _sio_room(room.name)))
        if not any(key in c.rooms for c in self.clients.values()):
            self._last_batch.pop(key, None)

    async def _join_room(self, sid: str, *args: Any) -> dict[str, Any] | None:
        client = self._client(sid)
        if client is None:
            return None
        joined = await self._join(client, room_name(args[0] if args else None), client.guest)
        if joined is None:
            return {"ok": False}
        room, member = joined
        return {"ok": True, "roomKey": room.name, "name": member.identity.name,
                "viewers": room.viewers, "likes": room.likes_total}  # fmt: skip

    async def _comment(self, sid: str, *args: Any) -> None:
        client = self._client(sid)
        if client is None:
            return
        data = args[0] if args else None
        name = room_name(data)
        text = data.get("text", data.get("msg")) if isinstance(data, dict) else None
        if not isinstance(text, str):
            self._error(client, name, ErrorCode.BAD_REQUEST, "comment needs {roomKey, text}")
            return
        extra, refused = comment_extra(data)
        if refused is not None:
            self._error(client, name, ErrorCode.BAD_REQUEST, refused)
            return
        # The original servers relayed comments to rooms the sender had not joined: join.
        joined = self._joined(client, name) or await self._join(client, name, client.guest)
        if joined is not None:
            await self._handle(joined, Send(text, extra=extra))

    async def _upvote(self, sid: str, *args: Any) -> None:
        client = self._client(sid)
        if client is None:
            return
        name = room_name(args[0] if args else None)
        joined = self._joined(client, name) or await self._join(client, name, client.guest)
        if joined is not None:
            await self._handle(joined, Like())

    async def _handle(self, joined: tuple[Room, Member], command: Send | Like) -> None:
        room, member = joined
        try:
            await self.chat.handle(room, member, command)
        except Exception:  # a bug in one command must not leave the client half-dead
            log.exception("chat %s: %s failed (socket.io)", room.name, command.type)

    async def _create_room(self, sid: str, *args: Any) -> dict[str, Any] | None:
        client = self._client(sid)
        if client is None:
            return None
        key = stream_key(args[0] if args else None)
        channel = await self._resolve_key(client, key)
        if channel is None or key is None:
            return {"ok": False, "error": "wrong stream key"}
        if self._is_open_room(key, channel):
            return await self._create_open_room(client, channel)
        try:
            owner = await self.chat.identify(channel, client.guest.name)
        except DatabaseUnavailable:
            self._error(client, None, ErrorCode.UNAVAILABLE, "chat is unavailable right now")
            return {"ok": False, "error": "unavailable"}
        joined = await self._join(client, channel, owner)
        if joined is None:
            return {"ok": False}
        room = joined[0]
        client.keys[key] = room.key
        log.info("chat %s: the broadcaster joined from %s (socket.io)", room.name, client.peer)
        return {"ok": True, "roomKey": room.name}

    async def _close_room(self, sid: str, *args: Any) -> dict[str, Any] | None:
        client = self._client(sid)
        if client is None:
            return None
        key = stream_key(args[0] if args else None)
        channel = await self._resolve_key(client, key)
        if channel is None or key is None:
            return {"ok": False, "error": "wrong stream key"}
        if self._is_open_room(key, channel):
            return self._close_open_room(client, channel)
        joined = self._joined(client, key) or self._joined(client, channel)
        if joined is None:
            self._error(client, channel, ErrorCode.NOT_FOUND, "create_room first")
            return {"ok": False}
        room = joined[0]
        self._emit("room-closed", {"room": room.name, "roomKey": room.name}, _sio_room(room.name))
        client.keys.pop(key, None)
        await self.sio.leave_room(client.sid, _sio_room(room.name))
        self._leave(client, room.key, keep_sio_room=True)
        return {"ok": True}

    # --- open rooms (--open-rooms): the live-broadcast app's own rooms -------------------

    def _is_open_room(self, key: str, channel: str) -> bool:
        """Whether ``key`` resolved to an open room (the key is the room's name)."""
        rooms = self.chat.open_rooms
        return rooms is not None and key == channel and rooms.could_be(channel)

    async def _create_open_room(self, client: SioClient, name: str) -> dict[str, Any] | None:
        """The first socket to create an open room is its broadcaster (it may close it)."""
        if not self.claims.claim(name, client.sid):
            self._error(client, name, ErrorCode.NOT_ALLOWED, "another broadcaster has the room")
            return {"ok": False, "error": "room taken"}
        if await self._join(client, name, client.guest) is None:
            self.claims.release(name)
            return {"ok": False}
        log.info("room %s: created from %s (socket.io)", name, client.peer)
        return {"ok": True, "roomKey": name}

    def _close_open_room(self, client: SioClient, name: str) -> dict[str, Any]:
        if self.claims.owner(name) != client.sid:
            self._error(client, name, ErrorCode.NOT_ALLOWED, "only its broadcaster closes a room")
            return {"ok": False, "error": "not the room's broadcaster"}
        self._room_closed(name)
        return {"ok": True}

    def _room_closed(self, name: str) -> None:
        """An open room ends: its Socket.IO clients are told, and leave its chat."""
        self.claims.release(name)
        to = _sio_room(name)
        self._emit("close_room", {"roomKey": name}, to)
        self._emit("room-closed", {"room": name, "roomKey": name}, to)
        for client in list(self.clients.values()):
            if name.lower() in client.rooms:
                self._tasks.spawn(self.sio.leave_room(client.sid, to))
                self._leave(client, name.lower(), keep_sio_room=True)
        log.info("room %s: closed (socket.io)", name)

    # --- the original desktop app's streams (strom.ingest.jpeg_socketio) ------------------

    def emit_to(self, sid: str, event: str, data: Any) -> None:
        self._emit(event, data, sid)

    def disconnect(self, sid: str) -> None:
        """Disconnect ``sid`` after what was emitted to it so far (the reason why)."""
        client = self.clients.get(sid)
        if client is not None and not client.closed:
            client.closed = True
            self._emit(_DISCONNECT, None, sid)

    async def _start_stream(self, sid: str, *args: Any) -> dict[str, Any] | None:
        client = self._client(sid)
        if client is None or self.streams is None:
            return None
        return await self.streams.start_stream(sid, client.peer, args[0] if args else None)

    async def _stop_stream(self, sid: str, *args: Any) -> dict[str, Any] | None:
        client = self._client(sid)
        if client is None or self.streams is None:
            return None
        return self.streams.stop_stream(sid)

    async def _stream_frame(self, sid: str, *args: Any) -> None:
        if self.streams is None:
            return
        if self.streams.is_streaming(sid):  # the stream's own frame rate limit applies
            self.streams.frame(sid, args[0] if args else None)
            return
        client = self._client(sid)  # not streaming: counted like any other event
        if client is not None:
            self._error(client, None, ErrorCode.NOT_FOUND, "start_stream first")

    async def _watch_frames(self, sid: str, *args: Any) -> dict[str, Any] | None:
        """``watch_frames(roomKey)``: this socket gets the stream's pictures (``frame``)."""
        client = self._client(sid)
        name = room_name(args[0] if args else None)
        if client is None or self.streams is None:
            return None
        if name is None or not valid_channel_name(name):
            self._error(client, name, ErrorCode.BAD_REQUEST, "roomKey must be a channel name")
            return {"ok": False}
        await self.watchers.watch(sid, name)
        return {"ok": True, "roomKey": name, "fps": self.streams.limits.relay_fps}

    def watches_frames(self, room: str) -> bool:
        return self.watchers.watched(room)

    def relay_frame(self, room: str, picture: Any) -> None:
        self.watchers.before_relay(room)
        self._emit("frame", picture, frames_room(room))

    async def _unknown_event(self, event: str, sid: str, *args: Any) -> None:
        """An event nothing takes: ignored, unless it carries a picture (a desktop app
        sending frames under another name is told the names Strom takes them under)."""
        reason = pictures.misnamed_frame(event, args[0]) if args else None
        if reason is not None and (client := self._client(sid)) is not None:
            self._error(client, None, ErrorCode.BAD_REQUEST, reason)

    async def _resolve_key(self, client: SioClient, key: str | None) -> str | None:
        """The channel whose stream key ``key`` is; a refusal goes to the client."""
        try:
            channel = await self.keys.resolve(key) if key is not None else None
        except DatabaseUnavailable:
            self._error(client, None, ErrorCode.UNAVAILABLE, "chat is unavailable right now")
            return None
        if channel is None:
            log.warning("socket.io %s: refused: wrong stream key", client.peer)
            self._error(client, None, ErrorCode.NOT_ALLOWED, "wrong stream key")
        return channel


def _sio_room(room: str) -> str:
    return "room:" + room.lower()
