"""Server-to-client events of the chat protocol (the client side is
:mod:`strom.chat.protocol`; the prose with examples is ``docs/chat-protocol.md``).

Room events (:data:`RoomEvent`) are what passes through the
:class:`~strom.chat.bus.RoomBus` from the node where something happened to every node with
members in the room; :func:`encode_room_event` / :func:`decode_room_event` carry them as
bytes for a bus between processes. ``to_client()`` is what a member sees of each, inside a
``{"type": "batch", "events": [...]}`` frame. The other events here are replies meant for
one member (``permissions``, ``error``, ``modlog``, ``blocked_words``, ``pong``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from strom.chat.protocol import ErrorCode, MalformedMessage

# --- room state and events (through the bus, to every member) ---------------------------------


@dataclass(frozen=True)
class RoomModes:
    """What a room allows. ``blocked_words`` is shown to moderators only."""

    slow_mode: int = 0  # seconds between one user's messages; 0: off
    followers_only: bool = False
    followers_min_minutes: int = 0  # with followers_only: followed at least this long
    block_links: bool = False
    require_account: bool = False  # guests may read but not write
    blocked_words: tuple[str, ...] = ()

    def public(self) -> dict[str, Any]:
        return {
            "slow_mode": self.slow_mode,
            "followers_only": self.followers_only,
            "followers_min_minutes": self.followers_min_minutes,
            "block_links": self.block_links,
            "require_account": self.require_account,
        }


@dataclass(frozen=True)
class MessagePosted:
    type: ClassVar[str] = "message"
    id: int
    user: str
    guest: bool
    badges: tuple[str, ...]  # "owner", "moderator", "admin"
    text: str
    mentions: tuple[str, ...]
    at: int  # UNIX milliseconds
    nonce: str | None = None  # the sender's, so it can match its own echo
    user_id: int | None = None  # not shown to clients
    #: the sender's own fields (a compact JSON object; Socket.IO comments, see Send)
    extra: str | None = None
    #: the sender's display name ("": none) and small avatar's URL (None: none), as they
    #: were when the message was posted
    display_name: str = ""
    avatar: str | None = None

    def to_client(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "type": "message",
            "id": self.id,
            "user": self.user,
            "guest": self.guest,
            "badges": list(self.badges),
            "text": self.text,
            "mentions": list(self.mentions),
            "at": self.at,
        }
        if self.nonce is not None:
            obj["nonce"] = self.nonce
        if self.extra is not None:
            obj["extra"] = json.loads(self.extra)
        if self.display_name:
            obj["display_name"] = self.display_name
        if self.avatar is not None:
            obj["avatar"] = self.avatar
        return obj


@dataclass(frozen=True)
class MessageDeleted:
    type: ClassVar[str] = "delete"
    id: int
    by: str

    def to_client(self) -> dict[str, Any]:
        return {"type": "delete", "id": self.id}


@dataclass(frozen=True)
class ChatCleared:
    type: ClassVar[str] = "clear"
    by: str

    def to_client(self) -> dict[str, Any]:
        return {"type": "clear"}


@dataclass(frozen=True)
class UserRestricted:
    """A ban (``until`` None) or a timeout; the user's messages disappear with it."""

    type: ClassVar[str] = "restrict"
    user: str
    target: str  # "u:<user id>" or "g:<guest name>"
    until: int | None  # UNIX milliseconds
    by: str
    reason: str = ""

    def to_client(self) -> dict[str, Any]:
        if self.until is None:
            return {"type": "ban", "user": self.user}
        return {"type": "timeout", "user": self.user, "until": self.until}


@dataclass(frozen=True)
class UserUnrestricted:
    type: ClassVar[str] = "unrestrict"
    user: str
    target: str
    by: str

    def to_client(self) -> dict[str, Any]:
        return {"type": "unban", "user": self.user}


@dataclass(frozen=True)
class ModesChanged:
    type: ClassVar[str] = "modes"
    modes: RoomModes
    by: str

    def to_client(self) -> dict[str, Any]:
        return {"type": "modes", **self.modes.public()}


@dataclass(frozen=True)
class ModeratorChanged:
    type: ClassVar[str] = "moderator"
    user: str
    user_id: int
    added: bool
    by: str

    def to_client(self) -> dict[str, Any]:
        return {"type": "moderator", "user": self.user, "added": self.added}


@dataclass(frozen=True)
class LikesAdded:
    """Likes sent on one node during one tick; members see them summed per tick as
    ``{"type": "likes", "count": ..., "total": ...}``."""

    type: ClassVar[str] = "likes"
    count: int

    def to_client(self) -> dict[str, Any]:
        return {"type": "likes", "count": self.count}


@dataclass(frozen=True)
class ViewerCount:
    """Media viewers of the channel (not chat sockets)."""

    type: ClassVar[str] = "viewers"
    count: int

    def to_client(self) -> dict[str, Any]:
        return {"type": "viewers", "count": self.count}


@dataclass(frozen=True)
class ChattersAsked:
    """Node ``node`` wants to know who is in the room: every other node with members
    there answers with a :class:`ChattersSeen`. Members never see either."""

    type: ClassVar[str] = "chatters_asked"
    node: str

    def to_client(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class ChattersSeen:
    """The chat's members on node ``node``: account names (bounded) and the number of
    guests."""

    type: ClassVar[str] = "chatters_seen"
    node: str
    users: tuple[str, ...]
    admins: tuple[str, ...]
    guests: int

    def to_client(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class ChannelChanged:
    """A channel's state, title, category or viewers changed: the site's event stream
    (:mod:`strom.channels.events`), on its own bus room, never a chat room's. ``fields``
    is the JSON object pages get, as text."""

    type: ClassVar[str] = "channel"
    fields: str
    #: the node that announced it (not shown to clients)
    node: str = ""

    def to_client(self) -> dict[str, Any]:
        return {"type": "channel", "channel": json.loads(self.fields)}


@dataclass(frozen=True)
class StopOrdered:
    """An administrator stopped ``channel``'s broadcast, saying ``reason``: the node that
    ingests it stops its publisher (:mod:`strom.channels.control`, on its own bus room,
    never a chat room's)."""

    type: ClassVar[str] = "stop_ordered"
    channel: str
    reason: str
    by: str

    def to_client(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class SessionsEnded:
    """Every session of account ``user_id`` ended (suspended, new password, logged out
    everywhere): every node forgets them and closes the account's chat sockets."""

    type: ClassVar[str] = "sessions_ended"
    user_id: int
    reason: str

    def to_client(self) -> dict[str, Any]:
        return {}


RoomEvent = (
    MessagePosted
    | MessageDeleted
    | ChatCleared
    | UserRestricted
    | UserUnrestricted
    | ModesChanged
    | ModeratorChanged
    | LikesAdded
    | ViewerCount
    | ChattersAsked
    | ChattersSeen
    | ChannelChanged
    | StopOrdered
    | SessionsEnded
)

_ROOM_EVENTS: dict[str, type[RoomEvent]] = {
    cls.type: cls
    for cls in (
        MessagePosted,
        MessageDeleted,
        ChatCleared,
        UserRestricted,
        UserUnrestricted,
        ModesChanged,
        ModeratorChanged,
        LikesAdded,
        ViewerCount,
        ChattersAsked,
        ChattersSeen,
        ChannelChanged,
        StopOrdered,
        SessionsEnded,
    )
}


def encode_room_event(event: RoomEvent) -> bytes:
    """A room event as bytes for a bus between processes (all fields, internal ones too)."""
    data = dataclasses.asdict(event)
    return json.dumps({"event": event.type, "data": data}, separators=(",", ":")).encode()


def decode_room_event(raw: bytes) -> RoomEvent:
    """The inverse of :func:`encode_room_event`; :class:`MalformedMessage` if it is not one."""
    try:
        obj = json.loads(raw)
        cls = _ROOM_EVENTS[obj["event"]]
        data = dict(obj["data"])
        if cls is ModesChanged:
            modes = dict(data["modes"])
            modes["blocked_words"] = tuple(modes["blocked_words"])
            data["modes"] = RoomModes(**modes)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data and f.default is not dataclasses.MISSING:
                continue  # a field newer than the node that sent it
            value = data[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise MalformedMessage(f"not a room event: {exc}") from None


# --- server to one member ---------------------------------------------------------------------


@dataclass(frozen=True)
class Permissions:
    """What this member may do in this room, as it stands now."""

    name: str
    guest: bool
    is_owner: bool = False
    is_moderator: bool = False
    is_admin: bool = False
    can_moderate: bool = False
    can_chat: bool = True
    #: why ``can_chat`` is False (an :class:`ErrorCode` value)
    cannot_chat: str | None = None
    muted_until: int | None = None  # UNIX ms, while timed out
    banned: bool = False
    restriction_reason: str = ""
    followed_at: int | None = None  # UNIX ms; None: not following (or a guest)

    def fields(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_client(self) -> dict[str, Any]:
        return {"type": "permissions", **self.fields()}


@dataclass(frozen=True)
class ErrorEvent:
    type: ClassVar[str] = "error"
    code: ErrorCode
    reason: str
    nonce: str | None = None
    retry_after: float | None = None  # seconds (rate_limited, slow_mode, followers_only)
    until: int | None = None  # UNIX ms (timed_out)

    def to_client(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"type": "error", "code": self.code.value, "reason": self.reason}
        if self.nonce is not None:
            obj["nonce"] = self.nonce
        if self.retry_after is not None:
            obj["retry_after"] = round(self.retry_after, 1)
        if self.until is not None:
            obj["until"] = self.until
        return obj


@dataclass(frozen=True)
class ModLogItem:
    at: int  # UNIX ms
    actor: str
    action: str
    target: str | None
    detail: str


@dataclass(frozen=True)
class ModLog:
    type: ClassVar[str] = "modlog"
    entries: tuple[ModLogItem, ...]
    nonce: str | None = None

    def to_client(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "type": "modlog",
            "entries": [dataclasses.asdict(e) for e in self.entries],
        }
        if self.nonce is not None:
            obj["nonce"] = self.nonce
        return obj


@dataclass(frozen=True)
class BlockedWords:
    type: ClassVar[str] = "blocked_words"
    words: tuple[str, ...] = field(default=())

    def to_client(self) -> dict[str, Any]:
        return {"type": "blocked_words", "words": list(self.words)}


@dataclass(frozen=True)
class Pong:
    type: ClassVar[str] = "pong"
    at: int
    nonce: str | None = None

    def to_client(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"type": "pong", "at": self.at}
        if self.nonce is not None:
            obj["nonce"] = self.nonce
        return obj


def dumps(obj: Mapping[str, Any] | list[Any]) -> bytes:
    """Compact JSON, UTF-8 (text is checked encodable before it gets here)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
