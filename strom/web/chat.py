"""The chat's web side: the WebSocket ``GET /chat/{channel}/ws`` and small JSON endpoints
(follow / unfollow, the moderation log). A thin adapter: it identifies the member, reads
frames, and hands parsed commands to the :class:`~strom.chat.service.ChatService`.

Close codes (RFC 6455 section 7.4.1), each with a reason the client can show:
1000/1001 normal / server shutting down, 1003 a frame that is not a JSON command (or is
binary), 1008 flooding, too slow to keep up, or a private channel's chat for a viewer it
does not let in (``docs/visibility.md``), 1009 a frame over the size limit, 1011
chat storage unavailable, 1013 room full or too many chat sockets from one address
(``chat_max_sockets_per_address``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from strom.channels.access import TOKEN_PARAM
from strom.chat.events import (
    ErrorEvent,
)
from strom.chat.protocol import (
    GUEST_PREFIX,
    MODLOG_MAX,
    ChatProtocolError,
    InvalidCommand,
    parse_command,
)
from strom.chat.room import Member, Room
from strom.chat.service import ChatService, RoomFull
from strom.errors import ApiError
from strom.ratelimit import AddressSlots, RefusalLog, SlotLimits, TokenBucket
from strom.settings import valid_channel_name
from strom.store import DatabaseUnavailable, User
from strom.web.auth import bearer_refused, get_session
from strom.web.errors import same_origin
from strom.web.site import Site
from strom.web.visibility import viewer_of

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0  # WebSocket pings find half-open connections
CLOSE_REASON_MAX = 123  # bytes: a close frame's payload is at most 125 (RFC 6455 5.5)


class ChatSocket(web.WebSocketResponse):
    """aiohttp closes a frame over ``max_msg_size`` with 1009 and no reason: give one."""

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = b"frame too large"
        return await super().close(code=code, message=message, drain=drain)


def guest_name(secret: bytes, session_token: str) -> str:
    """A guest's name, the same for every socket of one browser session: derived from
    the session (keyed, so the name tells nothing about the session's token)."""
    digest = hmac.new(
        secret, b"strom-chat-guest\0" + session_token.encode(), hashlib.sha256
    ).digest()
    return f"{GUEST_PREFIX}{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


class ChatEndpoints:
    def __init__(self, site: Site) -> None:
        self.site = site
        self._closing: set[asyncio.Task[Any]] = set()
        settings = site.settings
        #: chat sockets per client address, counted before any database work
        self.slots = AddressSlots(
            SlotLimits(
                per_address=settings.chat_max_sockets_per_address,
                exempt=settings.limit_exempt_networks,
            )
        )
        self._refusals = RefusalLog(log)

    # --- the socket ----------------------------------------------------------------------

    async def socket(self, request: web.Request) -> web.StreamResponse:
        service = self.site.chat
        host = request.remote or ""
        refusal = self.slots.acquire(host)
        if refusal is not None:
            now = asyncio.get_running_loop().time()
            self._refusals.warning("chat socket", now, "chat %s refused: %s", host, refusal)
            ws = ChatSocket(compress=False, timeout=5.0)
            await ws.prepare(request)
            reason = refusal.encode()[:CLOSE_REASON_MAX]
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=reason)
            return ws
        try:
            return await self._socket(request, service)
        finally:
            self.slots.release(host)

    async def _socket(self, request: web.Request, service: ChatService) -> web.StreamResponse:
        name = request.match_info["channel"]
        session = get_session(request)
        # A page of another site opening the socket with our cookie (cross-site WebSocket
        # hijacking) chats as a guest.
        trusted = same_origin(request, self.site.settings.public_url)
        username = session.username if session.logged_in and trusted else None
        try:
            room_name = await service.resolve_room(name) if valid_channel_name(name) else None
            if room_name is None:
                raise ApiError(404, "no such channel")
            identity = await service.identify(username, guest_name(self.site.secret, session.csrf))
            let_in = await self.site.access.may_chat(
                room_name, viewer_of(request, room_name, trusted=trusted),
                request.query.get(TOKEN_PARAM),
            )  # fmt: skip
        except DatabaseUnavailable:
            raise ApiError(503, "chat is unavailable right now") from None
        limits = service.limits
        ws = ChatSocket(
            compress=False,
            max_msg_size=limits.max_frame_bytes + 1,  # aiohttp refuses sizes >= the limit
            heartbeat=HEARTBEAT_SECONDS,
            timeout=5.0,
        )
        await ws.prepare(request)
        transport = request.transport
        if transport is None:  # the client went away during the upgrade
            return ws
        loop = asyncio.get_running_loop()
        closes: list[asyncio.Task[bool]] = []

        def close(code: int, reason: str) -> None:
            message = reason.encode()[:CLOSE_REASON_MAX]
            task = loop.create_task(ws.close(code=code, message=message))
            closes.append(task)
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

        peer = f"{request.remote} {identity.name}"
        if not let_in:  # told why, as the page tells a viewer it does not let in
            log.info("chat %s: %s refused: private channel", room_name, peer)
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"this stream is private")
            return ws
        member = Member(
            identity, transport, close, peer, TokenBucket(limits.frame_rate, limits.frame_burst,
                                                          loop.time())
        )  # fmt: skip
        try:
            room = await service.join(room_name, member)
        except RoomFull:
            log.warning("chat %s: %s refused: room full", room_name, peer)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"chat room is full")
            return ws
        except DatabaseUnavailable:
            log.warning("chat %s: %s refused: database unavailable", room_name, peer)
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"chat is unavailable")
            return ws
        log.debug("chat %s: %s joined", room_name, peer)
        try:
            await self._read(ws, service, room, member)
        finally:
            service.leave(room, member)
            for task in closes:
                with contextlib.suppress(Exception):
                    await task
            log.info("chat %s: %s disconnected (%s)", room_name, peer, ws.close_code)
        return ws

    async def _read(
        self, ws: web.WebSocketResponse, service: ChatService, room: Room, member: Member
    ) -> None:
        loop = asyncio.get_running_loop()
        max_bytes = service.limits.max_frame_bytes
        frames = member.frames
        async for msg in ws:
            if member.closed:
                return
            if msg.type is WSMsgType.BINARY:
                log.debug("chat %s: %s refused: binary frame", room.name, member)
                member.close(WSCloseCode.UNSUPPORTED_DATA, "binary frames are not accepted")
                return
            if msg.type is not WSMsgType.TEXT:
                continue
            if frames is not None and frames.take(loop.time()) > 0:
                log.debug("chat %s: %s refused: flooding", room.name, member)
                member.close(WSCloseCode.POLICY_VIOLATION, "too many frames: slow down")
                return
            try:
                command = parse_command(msg.data, max_bytes)
            except InvalidCommand as exc:
                log.debug("chat %s: %s refused: %s", room.name, member, exc.code.value)
                member.send(ErrorEvent(exc.code, exc.reason, exc.nonce).to_client())
                continue
            except ChatProtocolError as exc:
                log.debug("chat %s: %s refused: malformed frame", room.name, member)
                member.close(exc.close_code, str(exc))
                return
            try:
                await service.handle(room, member, command)
            except Exception:  # a bug in one command must not leave the socket half-dead
                log.exception("chat %s: %s failed", room.name, command.type)
                member.close(WSCloseCode.INTERNAL_ERROR, "internal error")
                return

    # --- JSON endpoints ------------------------------------------------------------------

    async def _user(self, request: web.Request) -> User | None:
        """The authenticated user: an API token or the session cookie (both looked up
        by the session middleware; a refused token is nobody, whatever the cookie)."""
        store = self.site.store
        if bearer_refused(request):
            return None
        session = get_session(request)
        if not session.logged_in or session.username is None:
            return None
        user = await store.users.get(session.username)
        return user if user is not None and not user.suspended else None

    async def _channel(self, request: web.Request) -> str | None:
        """The canonical name of the account channel in the path."""
        name = request.match_info["name"]
        store = self.site.store
        if not valid_channel_name(name):
            return None
        user = await store.users.get(name)
        return user.username if user is not None else None

    async def follow_status(self, request: web.Request) -> web.Response:
        channel = await self._channel(request)
        store = self.site.store
        if channel is None:
            raise ApiError(404, "no such channel")
        user = await self._user(request)
        following = user is not None and await store.follows.is_following(user.username, channel)
        followers = await store.follows.follower_count(channel)
        return web.json_response({"following": following, "followers": followers})

    async def follow(self, request: web.Request) -> web.Response:
        return await self._set_follow(request, True)

    async def unfollow(self, request: web.Request) -> web.Response:
        return await self._set_follow(request, False)

    async def _set_follow(self, request: web.Request, follow: bool) -> web.Response:
        service = self.site.chat
        channel = await self._channel(request)
        store = self.site.store
        if channel is None:
            raise ApiError(404, "no such channel")
        user = await self._user(request)
        if user is None:
            raise ApiError(401, "log in to follow channels")
        # InvalidInput (422) and NotFound (404) answer with their own status.
        if follow:
            await store.follows.follow(user.username, channel)
        else:
            await store.follows.unfollow(user.username, channel)
        since = await service.store.follows.followed_at(user.id, channel) if follow else None
        service.follow_changed(channel, user.id, since)
        followers = await store.follows.follower_count(channel)
        return web.json_response({"following": follow, "followers": followers})

    async def modlog(self, request: web.Request) -> web.Response:
        service = self.site.chat
        channel = await self._channel(request)
        if channel is None:
            raise ApiError(404, "no such channel")
        user = await self._user(request)
        if user is None:
            raise ApiError(401, "log in to read the moderation log")
        standing = await service.moderation.standing(channel, user.username)
        if not standing.can_moderate:
            raise ApiError(403, "only the owner and moderators can read the moderation log")
        try:
            limit = int(request.query.get("limit", "50"))
        except ValueError:
            raise ApiError(400, "limit must be an integer") from None
        if not 1 <= limit <= MODLOG_MAX:
            raise ApiError(400, f"limit must be between 1 and {MODLOG_MAX}")
        entries = await service.moderation.moderation_log(channel, limit)
        return web.json_response(
            {
                "entries": [
                    {
                        "at": e.at,
                        "actor": e.actor,
                        "action": e.action,
                        "target": e.target,
                        "detail": e.detail,
                    }
                    for e in entries
                ]
            }
        )


def routes(app: web.Application, site: Site) -> None:
    """Register the chat's routes (before the pages' catch-all ``/{username}``)."""
    endpoints = ChatEndpoints(site)
    r = app.router
    r.add_get("/chat/{channel}/ws", endpoints.socket)
    r.add_get("/api/v1/channels/{name}/follow", endpoints.follow_status)
    r.add_post("/api/v1/channels/{name}/follow", endpoints.follow)
    r.add_delete("/api/v1/channels/{name}/follow", endpoints.unfollow)
    r.add_get("/api/v1/channels/{name}/chat/modlog", endpoints.modlog)
