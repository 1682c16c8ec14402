"""A chat room on one node: its members, its state (history, modes, moderators, bans,
likes, viewer count) and batched delivery.

State changes arrive only through :meth:`Room.apply`, called by the
:class:`~strom.chat.bus.RoomBus` for every event published to the room (by this node or
another). Each event is serialized once, when it arrives, and queued. Once per tick
(``batch_interval`` after the first queued event) the queue becomes one
``{"type":"batch","events":[...]}`` text frame, framed once (:func:`frame_message`: a
server-to-client frame is unmasked, RFC 6455 section 5.1, so it is the same bytes for
everyone) and written straight to each member's transport. A member whose transport has
more than ``member_drop_bytes`` unsent is closed with 1008 instead of being written to:
one slow reader never grows the server's memory and never delays the others.

Replies for one member (``welcome``, ``error``...) are framed for that member alone and
go down the same transport, so they stay in order with the batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import WSCloseCode

from strom.chat.bus import RoomBus, Subscription
from strom.chat.chatters import ChatterRoll
from strom.chat.events import (
    BlockedWords,
    ChatCleared,
    ChattersAsked,
    ChattersSeen,
    LikesAdded,
    MessageDeleted,
    MessagePosted,
    ModeratorChanged,
    ModesChanged,
    Permissions,
    RoomEvent,
    RoomModes,
    UserRestricted,
    UserUnrestricted,
    ViewerCount,
    dumps,
)
from strom.chat.limits import ChatLimits, SenderLimits
from strom.chat.moderation import Restriction, Standing, WordFilter
from strom.chat.protocol import (
    PROTOCOL_VERSION,
)
from strom.delivery.ws import OPCODE_TEXT, frame_message
from strom.ratelimit import TokenBucket

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = WSCloseCode.POLICY_VIOLATION  # 1008
_BATCH_HEAD = b'{"type":"batch","events":['
_BATCH_TAIL = b"]}"


def frame_json(obj: dict[str, Any]) -> bytes:
    """One JSON object as a complete, unmasked text frame."""
    return frame_message(OPCODE_TEXT, dumps(obj))


class MemberTransport(Protocol):
    """What a member needs of its connection (an :class:`asyncio.Transport` has it)."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...


@dataclass(frozen=True)
class Identity:
    """Who is behind a chat socket: an account, or a guest with a name of its own."""

    name: str  # the username as registered, or "guest-123456"
    user_id: int | None = None
    is_admin: bool = False
    suspended: bool = False

    @property
    def guest(self) -> bool:
        return self.user_id is None

    @property
    def key(self) -> str:
        """What limits and bans are keyed by."""
        return f"u:{self.user_id}" if self.user_id is not None else f"g:{self.name}"


class Member:
    """One chat socket in one room."""

    __slots__ = ("_close", "closed", "follow_checked", "followed_at", "frames", "identity", "peer",
                 "transport")  # fmt: skip

    def __init__(
        self,
        identity: Identity,
        transport: MemberTransport,
        close: Callable[[int, str], None],
        peer: str,
        frames: TokenBucket | None = None,
    ) -> None:
        self.identity = identity
        self.transport = transport
        self._close = close
        self.peer = peer
        #: inbound frames of any kind (a flood closes the socket)
        self.frames = frames
        self.followed_at: float | None = None  # UNIX seconds
        self.follow_checked = 0.0  # monotonic time of the last look-up
        self.closed = False

    def __repr__(self) -> str:
        return f"<Member {self.identity.name} {self.peer}>"

    def write(self, frame: bytes) -> None:
        if not self.closed and not self.transport.is_closing():
            self.transport.write(frame)

    def send(self, obj: dict[str, Any]) -> None:
        self.write(frame_json(obj))

    def deliver(self, frame: bytes, drop_bytes: int) -> bool:
        """Write a batch frame; ``False`` if the member was too slow and is being closed."""
        if self.closed:
            return True
        transport = self.transport
        if transport.get_write_buffer_size() > drop_bytes:
            self.close(CLOSE_TOO_SLOW, "too slow: fell behind the chat")
            return False
        if not transport.is_closing():
            transport.write(frame)
        return True

    def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self._close(code, reason)


class Room:
    def __init__(
        self,
        name: str,
        *,
        limits: ChatLimits,
        bus: RoomBus,
        modes: RoomModes | None = None,
        moderators: dict[int, str] | None = None,
        restrictions: dict[str, Restriction] | None = None,
        history: list[MessagePosted] | None = None,
        viewers: int = 0,
        wall: Callable[[], float] = time.time,
        node: str = "",
    ) -> None:
        self.name = name
        self.key = name.lower()
        self.limits = limits
        self.bus = bus
        self.modes = modes or RoomModes()
        self.words = WordFilter(self.modes.blocked_words)
        self.moderators = dict(moderators or {})
        self.restrictions = dict(restrictions or {})
        self.history: deque[tuple[MessagePosted, bytes]] = deque(maxlen=max(0, limits.history))
        for message in history or ():
            self.history.append((message, dumps(message.to_client())))
        self.senders = SenderLimits(limits)
        self.members: set[Member] = set()
        self.viewers = viewers
        self.published_viewers = viewers
        self.likes_total = 0
        self.subscription: Subscription | None = None
        self.closed = False
        self.batches_sent = 0
        self._wall = wall
        #: who is in the chat, this node's members and the other nodes' answers
        self.roll = ChatterRoll(node, limits.chatters_max)
        self._pending: list[bytes] = []
        self._pending_likes = 0
        self._outgoing_likes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flushing = False
        self._history_json: bytes | None = None
        self._apply: dict[type[Any], Callable[[Any], None]] = {
            MessagePosted: self._on_message,
            MessageDeleted: self._on_deleted,
            ChatCleared: self._on_cleared,
            UserRestricted: self._on_restricted,
            UserUnrestricted: self._on_unrestricted,
            ModesChanged: self._on_modes,
            ModeratorChanged: self._on_moderator,
            LikesAdded: self._on_likes,
            ViewerCount: self._on_viewers,
            ChattersAsked: self._on_chatters_asked,
            ChattersSeen: lambda event: self.roll.heard(event, time.monotonic()),
        }

    def __repr__(self) -> str:
        return f"<Room {self.name} members={len(self.members)}>"

    # --- who is who ----------------------------------------------------------------------

    def standing(self, identity: Identity) -> Standing:
        return Standing(
            is_owner=identity.user_id is not None and identity.name.lower() == self.key,
            is_moderator=identity.user_id is not None and identity.user_id in self.moderators,
            is_admin=identity.is_admin,
        )

    def restriction(self, key: str) -> Restriction | None:
        """The ban or running timeout of ``key`` (expired timeouts are forgotten)."""
        found = self.restrictions.get(key)
        if found is not None and not found.active(self._wall()):
            del self.restrictions[key]
            return None
        return found

    def permissions(self, member: Member) -> Permissions:
        ident = member.identity
        standing = self.standing(ident)
        restriction = self.restriction(ident.key)
        cannot: str | None = None
        if ident.suspended:
            cannot = "suspended"
        elif restriction is not None:
            cannot = "banned" if restriction.until is None else "timed_out"
        elif ident.guest and self.modes.require_account:
            cannot = "account_required"
        muted = restriction.until if restriction is not None else None
        return Permissions(
            name=ident.name,
            guest=ident.guest,
            is_owner=standing.is_owner,
            is_moderator=standing.is_moderator,
            is_admin=standing.is_admin,
            can_moderate=standing.can_moderate,
            can_chat=cannot is None,
            cannot_chat=cannot,
            muted_until=round(muted * 1000) if muted is not None else None,
            banned=restriction is not None and restriction.until is None,
            restriction_reason=restriction.reason if restriction is not None else "",
            followed_at=round(member.followed_at * 1000) if member.followed_at else None,
        )

    # --- members -------------------------------------------------------------------------

    def add(self, member: Member) -> None:
        """Admit ``member`` and send it the welcome: who it is, what it may do, the
        modes, the history, the counters."""
        self.members.add(member)
        member.write(self.welcome(member))

    def remove(self, member: Member) -> None:
        self.members.discard(member)

    def welcome(self, member: Member) -> bytes:
        permissions = self.permissions(member)
        head: dict[str, Any] = {
            "type": "welcome",
            "protocol": PROTOCOL_VERSION,
            "room": self.name,
            "permissions": permissions.fields(),
            "modes": self.modes.public(),
            "viewers": self.viewers,
            "likes": self.likes_total,
            "limits": {
                "max_chars": self.limits.max_chars,
                "rate": self.limits.rate,
                "burst": self.limits.burst,
            },
        }
        if permissions.can_moderate:
            head["blocked_words"] = list(self.modes.blocked_words)
        if self._history_json is None:
            self._history_json = b",".join(frag for _, frag in self.history)
        body = dumps(head)
        payload = body[:-1] + b',"history":[' + self._history_json + b"]}"
        return frame_message(OPCODE_TEXT, payload)

    def like(self, member: Member, mono: float) -> bool:
        """Count a like from ``member`` (silently dropped beyond its rate)."""
        if not self.senders.take_like(member.identity.key, mono):
            return False
        self._outgoing_likes += 1
        self._schedule()
        return True

    def close(self) -> None:
        """The last member left: stop the timer; nothing more is delivered."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()

    # --- events from the bus -------------------------------------------------------------

    def apply(self, event: RoomEvent) -> None:
        """Take one room event: update the room's state and queue what members see."""
        if self.closed:
            return
        self._apply[type(event)](event)

    def _queue(self, event: RoomEvent) -> None:
        self._pending.append(dumps(event.to_client()))
        self._schedule()

    def _on_message(self, event: MessagePosted) -> None:
        frag = dumps(event.to_client())
        self.history.append((event, frag))
        self._history_json = None
        self._pending.append(frag)
        self._schedule()

    def _on_deleted(self, event: MessageDeleted) -> None:
        self._drop_history(lambda m: m.id == event.id)
        self._queue(event)

    def _on_cleared(self, event: ChatCleared) -> None:
        self.history.clear()
        self._history_json = None
        self._queue(event)

    def _on_restricted(self, event: UserRestricted) -> None:
        until = event.until / 1000 if event.until is not None else None
        self.restrictions[event.target] = Restriction(until, event.reason)
        self._drop_history(lambda m: _author_key(m) == event.target)
        self._queue(event)
        self._tell_permissions(lambda ident: ident.key == event.target)

    def _on_unrestricted(self, event: UserUnrestricted) -> None:
        self.restrictions.pop(event.target, None)
        self._queue(event)
        self._tell_permissions(lambda ident: ident.key == event.target)

    def _on_modes(self, event: ModesChanged) -> None:
        old = self.modes
        self.modes = event.modes
        if event.modes.blocked_words != old.blocked_words:
            self.words = WordFilter(event.modes.blocked_words)
            words = BlockedWords(event.modes.blocked_words).to_client()
            for member in list(self.members):
                if self.standing(member.identity).can_moderate:
                    member.send(words)
        if event.modes.public() != old.public():
            self._queue(event)
        if event.modes.require_account != old.require_account:
            self._tell_permissions(lambda ident: ident.guest)

    def _on_moderator(self, event: ModeratorChanged) -> None:
        if event.added:
            self.moderators[event.user_id] = event.user
        else:
            self.moderators.pop(event.user_id, None)
        self._queue(event)
        for member in list(self.members):
            if member.identity.user_id == event.user_id:
                member.send(self.permissions(member).to_client())
                if event.added:
                    member.send(BlockedWords(self.modes.blocked_words).to_client())

    def _on_likes(self, event: LikesAdded) -> None:
        count = max(0, event.count)
        self._pending_likes += count
        self.likes_total += count
        self._schedule()

    def _on_viewers(self, event: ViewerCount) -> None:
        self.viewers = event.count
        self._queue(event)

    def _on_chatters_asked(self, event: ChattersAsked) -> None:
        first = {self.key, *(name.lower() for name in self.moderators.values())}
        answer = self.roll.answer_to(event, (m.identity for m in self.members), first)
        if answer is not None:
            self.bus.publish(self.name, answer)

    def chatters(self, nonce: str | None) -> dict[str, Any]:
        """The ``chatters`` answer as it stands (see :mod:`strom.chat.chatters`)."""
        return self.roll.listing(
            (m.identity for m in self.members),
            self.name,
            self.moderators.values(),
            time.monotonic(),
            nonce,
        )

    def _drop_history(self, match: Callable[[MessagePosted], bool]) -> None:
        kept = [(m, frag) for m, frag in self.history if not match(m)]
        if len(kept) != len(self.history):
            self.history.clear()
            self.history.extend(kept)
            self._history_json = None

    def _tell_permissions(self, match: Callable[[Identity], bool]) -> None:
        for member in list(self.members):
            if match(member.identity):
                member.send(self.permissions(member).to_client())

    # --- batching ------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._timer is None and not self._flushing and not self.closed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.limits.batch_interval, self.flush)

    def flush(self) -> None:
        """One tick: publish this node's likes, then send everything queued as one frame."""
        self._timer = None
        if self._outgoing_likes:
            count, self._outgoing_likes = self._outgoing_likes, 0
            self._flushing = True  # a local bus delivers them back right now, into this batch
            try:
                self.bus.publish(self.name, LikesAdded(count))
            finally:
                self._flushing = False
        if self._pending_likes:
            likes = {"type": "likes", "count": self._pending_likes, "total": self.likes_total}
            self._pending.append(dumps(likes))
            self._pending_likes = 0
        if not self._pending or self.closed:
            self._pending.clear()
            return
        frame = frame_message(OPCODE_TEXT, _BATCH_HEAD + b",".join(self._pending) + _BATCH_TAIL)
        self._pending = []
        self.batches_sent += 1
        drop = self.limits.member_drop_bytes
        for member in list(self.members):
            if not member.deliver(frame, drop):
                log.info(
                    "chat %s: %s disconnected: too slow (%d bytes unsent)",
                    self.name,
                    member,
                    member.transport.get_write_buffer_size(),
                )


def _author_key(message: MessagePosted) -> str:
    if message.user_id is not None:
        return f"u:{message.user_id}"
    return f"g:{message.user}"
