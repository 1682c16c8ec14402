"""The chat of one node: its rooms, what members' commands do, and the viewer counts.

:class:`ChatService` opens a room (loading its modes, moderators, bans and recent
history from the database) when its first member joins and closes it when the last one
leaves. Commands are dispatched by type through a table; what they change is stored in
the database first and then published on the :class:`~strom.chat.bus.RoomBus`, so every
node with members in the room (this one included) applies it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode

from strom.chat.bus import LocalBus, RoomBus
from strom.chat.bylines import NONE, Byline, Bylines
from strom.chat.chatters import ANSWER_WAIT
from strom.chat.events import (
    ErrorEvent,
    MessagePosted,
    ModesChanged,
    Pong,
    RoomModes,
    ViewerCount,
)
from strom.chat.limits import ChatLimits
from strom.chat.moderating import CommandRefused, ModerationCommands, ms
from strom.chat.moderation import (
    Restriction,
    Sender,
    Standing,
    message_refusal,
)
from strom.chat.protocol import (
    Command,
    ErrorCode,
    GetChatters,
    Like,
    Ping,
    Send,
    mentions,
)
from strom.chat.room import Identity, Member, Room
from strom.live.registry import Registry
from strom.store import DatabaseUnavailable, Store, StoreError
from strom.store.chat import ChatMessageInfo
from strom.tasks import TaskSet

if TYPE_CHECKING:
    from strom.channels.rooms import OpenRooms

log = logging.getLogger(__name__)

VIEWER_POLL_SECONDS = 1.0
FOLLOW_RECHECK_SECONDS = 5.0  # followers-only: how often a non-follower's status is re-read


class RoomFull(Exception):
    """The room has ``max_members`` members."""


class ChatService:
    def __init__(
        self,
        limits: ChatLimits,
        store: Store,
        registry: Registry,
        *,
        bus: RoomBus | None = None,
        static_channels: Sequence[str] = (),
        viewers: Callable[[str], int] | None = None,
        rooms: OpenRooms | None = None,
    ) -> None:
        self.limits = limits
        self.store = store
        self.registry = registry
        #: a channel's media viewer count as rooms show it: the site's, when the node is
        #: part of one (each node sums the live map itself: counts never cross the bus)
        self.viewers: Callable[[str], int] = viewers or self._viewers_here
        self.bus: RoomBus = bus or LocalBus()
        #: this node on the bus (the chatter list asks the other nodes who is in a room)
        self.node = secrets.token_hex(6)
        self.static_channels = list(static_channels)
        #: open rooms (``--open-rooms``): chat rooms of names no account has
        self.open_rooms = rooms
        self.rooms: dict[str, Room] = {}
        self._opening: dict[str, asyncio.Future[Room]] = {}
        self._tasks = TaskSet("chat")
        #: senders' display names and avatars, as messages carry them
        self.bylines = Bylines(store)
        #: the moderators' commands (and the moderation log and ranks, for the JSON API)
        self.moderation = ModerationCommands(store, self.bus, self.room)
        self._poller: asyncio.Task[None] | None = None
        self._handlers: dict[type[Any], Callable[[Room, Member, Any], Awaitable[None]]] = {
            Send: self._send,
            Like: self._like,
            **self.moderation.handlers(),
            GetChatters: self._chatters,
            Ping: self._ping,
        }

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll_viewers())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        self.close_all(WSCloseCode.GOING_AWAY, "server shutting down")
        await self._tasks.close()
        await self.bus.close()

    def close_all(self, code: int, reason: str) -> None:
        for room in list(self.rooms.values()):
            for member in list(room.members):
                member.close(code, reason)

    # --- rooms and members ---------------------------------------------------------------

    def room(self, name: str) -> Room | None:
        """The open room of channel ``name`` (any case) on this node."""
        room = self.rooms.get(name)
        if room is None:
            key = name.lower()
            room = next((r for r in self.rooms.values() if r.key == key), None)
        return room

    async def resolve_room(self, name: str) -> str | None:
        """The room of channel ``name`` (its canonical spelling), if there is such a channel."""
        user = await self.store.users.get(name)
        if user is not None:
            return user.username
        for static in self.static_channels:
            if static.lower() == name.lower():
                return static
        if self.open_rooms is not None:
            return await self.open_rooms.room(name)
        return None

    async def identify(self, username: str | None, guest_name: str) -> Identity:
        """A logged-in session's user as they stand now (an account deleted since chats
        as the guest it would be)."""
        user = await self.store.users.get(username) if username else None
        if user is None:
            return Identity(guest_name)
        return Identity(user.username, user.id, user.is_admin, user.suspended)

    async def join(self, name: str, member: Member) -> Room:
        """Put ``member`` in room ``name`` (opened if needed) and welcome it."""
        if member.identity.user_id is not None:
            followed = await self.store.follows.followed_at(member.identity.user_id, name)
            member.followed_at = followed.timestamp() if followed is not None else None
            member.follow_checked = time.monotonic()
        while True:
            room = self.rooms.get(name)
            if room is None:
                pending = self._opening.get(name)
                room = await (pending if pending is not None else self._open(name))
            if not room.closed:
                break
        if len(room.members) >= self.limits.max_members:
            raise RoomFull(name)
        room.add(member)
        return room

    def leave(self, room: Room, member: Member) -> None:
        room.remove(member)
        if not room.members and not room.closed:
            room.close()
            if self.rooms.get(room.name) is room:
                del self.rooms[room.name]
            if room.subscription is not None:
                self._tasks.spawn(room.subscription.close())

    async def _open(self, name: str) -> Room:
        future: asyncio.Future[Room] = asyncio.get_running_loop().create_future()
        self._opening[name] = future
        try:
            room = await self._load(name)
            room.subscription = await self.bus.subscribe(name, room.apply)
            self.rooms[name] = room
            future.set_result(room)
            return room
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters (if any) get it raised
            raise
        finally:
            del self._opening[name]

    async def _modes(self, name: str) -> RoomModes:
        """The room's modes as stored (``require_account`` lives on the channel)."""
        stored = await self.store.chat.settings(name)
        info = await self.store.channels.get(name)
        return RoomModes(
            slow_mode=stored.slow_mode_seconds,
            followers_only=stored.followers_only,
            followers_min_minutes=stored.followers_min_minutes,
            block_links=stored.block_links,
            require_account=info.require_account_for_chat if info is not None else False,
            blocked_words=stored.blocked_words,
        )

    async def _load(self, name: str) -> Room:
        modes = await self._modes(name)
        moderators = await self.store.moderation.moderators(name)
        bans = await self.store.moderation.bans(name)
        history = await self.store.chat.recent_messages(name, self.limits.history)
        bylines = await self.bylines.many([m.user_id for m in history])
        room = Room(
            name,
            limits=self.limits,
            bus=self.bus,
            modes=modes,
            moderators=moderators,
            restrictions={
                b.target: Restriction(b.until.timestamp() if b.until else None, b.reason)
                for b in bans
            },
            history=[_posted(name, moderators, m, bylines.get(m.user_id, NONE)) for m in history],
            viewers=self.viewers(name),
            node=self.node,
        )
        log.debug("chat %s: opened (%d messages of history)", name, len(history))
        return room

    async def reload_room(self, name: str) -> None:
        """Re-read a room's modes from the database (after a change made elsewhere, e.g. the
        dashboard's "require an account to chat") and publish them."""
        room = self.room(name)
        if room is not None:
            self.bus.publish(room.name, ModesChanged(await self._modes(room.name), "system"))

    def disconnect_user(self, user_id: int, reason: str) -> int:
        """Close every chat socket of ``user_id`` on this node (e.g. their account was just
        suspended: sockets opened before would otherwise keep chatting). Returns how many."""
        closed = 0
        for room in list(self.rooms.values()):
            for member in list(room.members):
                if member.identity.user_id == user_id:
                    member.close(WSCloseCode.POLICY_VIOLATION, reason)
                    closed += 1
        return closed

    def follow_changed(self, channel: str, user_id: int, followed_at: datetime | None) -> None:
        """``user_id`` followed (or unfollowed) ``channel``: its members here learn it now."""
        room = self.room(channel)
        if room is None:
            return
        for member in list(room.members):
            if member.identity.user_id == user_id:
                member.followed_at = followed_at.timestamp() if followed_at else None
                member.send(room.permissions(member).to_client())

    # --- commands ------------------------------------------------------------------------

    async def handle(self, room: Room, member: Member, command: Command) -> None:
        """Carry out one command; refusals go back to ``member`` as ``error`` events."""
        try:
            await self._handlers[type(command)](room, member, command)
        except CommandRefused as refused:
            self._refuse(room, member, ErrorEvent(refused.code, refused.reason, command.nonce))
        except DatabaseUnavailable:
            log.warning("chat %s: database unavailable for %s", room.name, command.type)
            self._refuse(
                room,
                member,
                ErrorEvent(ErrorCode.UNAVAILABLE, "chat storage is unavailable; try again soon",
                           command.nonce),
            )  # fmt: skip
        except StoreError as exc:
            self._refuse(room, member, ErrorEvent(ErrorCode.BAD_REQUEST, str(exc), command.nonce))

    def _refuse(self, room: Room, member: Member, error: ErrorEvent) -> None:
        log.debug("chat %s: %s refused: %s", room.name, member, error.code.value)
        member.send(error.to_client())

    async def _send(self, room: Room, member: Member, command: Send) -> None:
        ident = member.identity
        standing = room.standing(ident)
        mono = time.monotonic()
        if (
            room.modes.followers_only
            and not ident.guest
            and member.followed_at is None
            and not standing.can_moderate
            and mono - member.follow_checked > FOLLOW_RECHECK_SECONDS
        ):
            # They may have followed since (on another node, say): look again, rarely.
            member.follow_checked = mono
            assert ident.user_id is not None
            followed = await self.store.follows.followed_at(ident.user_id, room.name)
            member.followed_at = followed.timestamp() if followed is not None else None
        sender = Sender(ident.key, ident.guest, standing, ident.suspended, member.followed_at)
        text, refusal = message_refusal(
            command.text,
            sender,
            modes=room.modes,
            words=room.words,
            restriction=room.restriction(ident.key),
            limits=room.senders,
            mono=mono,
            wall=time.time(),
        )
        if refusal is not None:
            self._refuse(room, member, refusal.event(command.nonce))
            return
        room.senders.record(ident.key, text, mono)
        stored = await self.store.chat.add_message(room.name, ident.user_id, ident.name, text)
        byline = await self.bylines.of(ident.user_id)
        self.bus.publish(
            room.name,
            MessagePosted(
                id=stored.id,
                user=ident.name,
                guest=ident.guest,
                badges=standing.badges(),
                text=text,
                mentions=mentions(text),
                at=ms(stored.created_at),
                nonce=command.nonce,
                user_id=ident.user_id,
                extra=command.extra,
                display_name=byline.display_name,
                avatar=byline.avatar,
            ),
        )
        if ident.user_id is not None:
            await self.store.profiles.seen(ident.user_id)  # "last seen" (once a minute)

    async def _like(self, room: Room, member: Member, command: Like) -> None:
        room.like(member, time.monotonic())

    async def _chatters(self, room: Room, member: Member, command: GetChatters) -> None:
        asked = room.roll.ask(time.monotonic())
        if not isinstance(self.bus, LocalBus):  # other nodes may have members: ask them
            if asked is not None:
                self.bus.publish(room.name, asked)
            await asyncio.sleep(ANSWER_WAIT)
        member.send(room.chatters(command.nonce))

    async def _ping(self, room: Room, member: Member, command: Ping) -> None:
        member.send(Pong(round(time.time() * 1000), command.nonce).to_client())

    # --- viewer counts -------------------------------------------------------------------

    def _viewers_here(self, name: str) -> int:
        channel = self.registry.get(name)
        return self.registry.audience(name) if channel is not None and channel.live else 0

    async def _poll_viewers(self) -> None:
        """Push each room's media viewer count when it changes (checked once a second)."""
        while True:
            await asyncio.sleep(VIEWER_POLL_SECONDS)
            for room in list(self.rooms.values()):
                count = self.viewers(room.name)
                if count != room.published_viewers:
                    room.published_viewers = count
                    self.bus.publish(room.name, ViewerCount(count))


def _posted(
    room: str, moderators: dict[int, str], message: ChatMessageInfo, byline: Byline
) -> MessagePosted:
    """A stored message as members see it, with its author's badges, display name and
    avatar as they are now."""
    standing = Standing()
    if message.user_id is not None:
        standing = Standing(
            is_owner=message.author.lower() == room.lower(),
            is_moderator=message.user_id in moderators,
            is_admin=message.author_is_admin,
        )
    return MessagePosted(
        id=message.id,
        user=message.author,
        guest=message.user_id is None,
        badges=standing.badges(),
        text=message.text,
        mentions=mentions(message.text),
        at=ms(message.created_at),
        user_id=message.user_id,
        display_name=byline.display_name,
        avatar=byline.avatar,
    )
