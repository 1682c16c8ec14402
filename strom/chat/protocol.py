"""The chat protocol: JSON text frames over one WebSocket per room (``/chat/{channel}/ws``).

This module is the schema, as typed records, and nothing else: no sockets, no clock. The
human-readable description with examples is ``docs/chat-protocol.md``; keep the two in step.

Client to server: one JSON object per frame, ``{"type": <command>, ...}``, optionally with
a ``nonce`` (a short string the server echoes in the answer or refusal it causes).
:func:`parse_command` turns a frame into one of the :data:`Command` records or raises:

- :class:`MalformedMessage` (close 1003): not JSON, not an object, no ``type``, binary;
- :class:`FrameTooLarge` (close 1009): more than the configured bytes;
- :class:`InvalidCommand` (an ``error`` event, the socket stays open): an unknown type
  (``unsupported``) or a field of the wrong type or out of range (``bad_request``).

Server to client: one JSON object per frame, described in :mod:`strom.chat.events`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from strom.errors import ProtocolError

PROTOCOL_VERSION = 1
NONCE_MAX = 64
NAME_MAX = 32  # usernames have 3-25 characters, guest names "guest-" + 6 digits
REASON_MAX = 200
MAX_TIMEOUT_SECONDS = 14 * 86400  # two weeks, as Twitch
MAX_SLOW_MODE_SECONDS = 3600
MAX_FOLLOW_MINUTES = 90 * 1440  # three months, as Twitch
MAX_BLOCKED_WORDS = 200
BLOCKED_WORD_MAX = 50
MODLOG_MAX = 200
MAX_MENTIONS = 10

GUEST_PREFIX = "guest-"
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,31}", re.ASCII)
# "@name" not preceded by a word character or another "@" (so "a@b.c" is no mention).
_MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9_][A-Za-z0-9_-]{0,31})", re.ASCII)
# C0/C1 controls and the bidirectional overrides that let a message reorder what
# follows it on screen (Unicode TR #9, "explicit directional embeddings and overrides").
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class ErrorCode(enum.StrEnum):
    """The machine-readable ``code`` of an ``error`` event."""

    TOO_LONG = "too_long"
    EMPTY = "empty"
    INVALID_TEXT = "invalid_text"
    RATE_LIMITED = "rate_limited"
    DUPLICATE = "duplicate"
    SLOW_MODE = "slow_mode"
    FOLLOWERS_ONLY = "followers_only"
    BLOCKED_WORD = "blocked_word"
    LINK_BLOCKED = "link_blocked"
    TIMED_OUT = "timed_out"
    BANNED = "banned"
    ACCOUNT_REQUIRED = "account_required"
    SUSPENDED = "suspended"
    NOT_ALLOWED = "not_allowed"
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    UNSUPPORTED = "unsupported"
    UNAVAILABLE = "unavailable"


# --- errors ---------------------------------------------------------------------------------


class ChatProtocolError(ProtocolError):
    """A client frame the chat cannot accept. ``close_code`` is the WebSocket close code
    (RFC 6455 section 7.4.1) for errors that end the connection."""

    close_code = 1003


class MalformedMessage(ChatProtocolError):
    """Not a JSON object with a ``type``: the connection is closed with 1003."""


class FrameTooLarge(ChatProtocolError):
    """Beyond the configured frame size: closed with 1009 (message too big)."""

    close_code = 1009


class InvalidCommand(ChatProtocolError):
    """A well-formed frame with an unknown type or a bad field: answered with an
    ``error`` event; the connection stays open."""

    def __init__(self, code: ErrorCode, reason: str, nonce: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.nonce = nonce


# --- client to server -------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Post ``text`` (plain text; the server never interprets HTML)."""

    type: ClassVar[str] = "send"
    text: str
    nonce: str | None = None
    #: a compact JSON object of the sender's own fields, echoed with the message to the
    #: original apps' Socket.IO clients (their comments carry fields Strom does not know)
    extra: str | None = None


@dataclass(frozen=True)
class Like:
    type: ClassVar[str] = "like"
    nonce: str | None = None


@dataclass(frozen=True)
class Delete:
    type: ClassVar[str] = "delete"
    id: int
    nonce: str | None = None


@dataclass(frozen=True)
class Timeout:
    type: ClassVar[str] = "timeout"
    user: str
    seconds: int
    reason: str = ""
    nonce: str | None = None


@dataclass(frozen=True)
class Ban:
    type: ClassVar[str] = "ban"
    user: str
    reason: str = ""
    nonce: str | None = None


@dataclass(frozen=True)
class Unban:
    """Lifts a ban or a timeout."""

    type: ClassVar[str] = "unban"
    user: str
    nonce: str | None = None


@dataclass(frozen=True)
class Clear:
    type: ClassVar[str] = "clear"
    nonce: str | None = None


@dataclass(frozen=True)
class SetModes:
    """Change some of the room's modes; ``None`` leaves a mode as it is."""

    type: ClassVar[str] = "set_modes"
    slow_mode: int | None = None
    followers_only: bool | None = None
    followers_min_minutes: int | None = None
    block_links: bool | None = None
    require_account: bool | None = None
    nonce: str | None = None


@dataclass(frozen=True)
class SetBlockedWords:
    """Replace the room's blocked words and phrases."""

    type: ClassVar[str] = "set_blocked_words"
    words: tuple[str, ...]
    nonce: str | None = None


@dataclass(frozen=True)
class AddModerator:
    type: ClassVar[str] = "mod"
    user: str
    nonce: str | None = None


@dataclass(frozen=True)
class RemoveModerator:
    type: ClassVar[str] = "unmod"
    user: str
    nonce: str | None = None


@dataclass(frozen=True)
class GetModLog:
    type: ClassVar[str] = "modlog"
    limit: int = 50
    nonce: str | None = None


@dataclass(frozen=True)
class GetChatters:
    """Who is in the chat: answered with ``chatters``."""

    type: ClassVar[str] = "chatters"
    nonce: str | None = None


@dataclass(frozen=True)
class Ping:
    type: ClassVar[str] = "ping"
    nonce: str | None = None


Command = (
    Send
    | Like
    | Delete
    | Timeout
    | Ban
    | Unban
    | Clear
    | SetModes
    | SetBlockedWords
    | AddModerator
    | RemoveModerator
    | GetModLog
    | GetChatters
    | Ping
)


class _Fields:
    """Typed, bounded access to one command's fields; a bad field is ``bad_request``."""

    def __init__(self, obj: Mapping[str, Any], nonce: str | None) -> None:
        self._obj = obj
        self.nonce = nonce

    def _bad(self, reason: str) -> InvalidCommand:
        return InvalidCommand(ErrorCode.BAD_REQUEST, reason, self.nonce)

    def text(self, name: str, max_chars: int, *, default: str | None = None) -> str:
        value = self._obj.get(name, default)
        if not isinstance(value, str):
            raise self._bad(f"{name} must be a string")
        if len(value) > max_chars:
            raise self._bad(f"{name} is longer than {max_chars} characters")
        return value

    def name(self, key: str = "user") -> str:
        value = self._obj.get(key)
        if not isinstance(value, str) or not _NAME_RE.fullmatch(value.removeprefix("@")):
            raise self._bad(f"{key} must be a user or guest name")
        return value.removeprefix("@")

    def integer(self, name: str, low: int, high: int, *, default: int | None = None) -> int:
        value = self._obj.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(f"{name} must be an integer")
        if not low <= value <= high:
            raise self._bad(f"{name} must be between {low} and {high}")
        return value

    def opt_integer(self, name: str, low: int, high: int) -> int | None:
        return None if self._obj.get(name) is None else self.integer(name, low, high)

    def opt_bool(self, name: str) -> bool | None:
        value = self._obj.get(name)
        if value is not None and not isinstance(value, bool):
            raise self._bad(f"{name} must be true or false")
        return value

    def words(self, name: str) -> tuple[str, ...]:
        value = self._obj.get(name)
        if not isinstance(value, list) or len(value) > MAX_BLOCKED_WORDS:
            raise self._bad(f"{name} must be a list of at most {MAX_BLOCKED_WORDS} strings")
        words: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise self._bad(f"{name} must be a list of strings")
            word = " ".join(clean_text(item).split()).casefold()
            if len(word) > BLOCKED_WORD_MAX:
                raise self._bad(f"a blocked word has at most {BLOCKED_WORD_MAX} characters")
            if word and word not in words:
                words.append(word)
        return tuple(words)


def _parse_send(f: _Fields) -> Send:
    # The length limit is a setting, checked (with a refusal naming it) by the room;
    # here only the frame size bounds the text.
    return Send(f.text("text", 1 << 20), f.nonce)


def _parse_set_modes(f: _Fields) -> SetModes:
    return SetModes(
        slow_mode=f.opt_integer("slow_mode", 0, MAX_SLOW_MODE_SECONDS),
        followers_only=f.opt_bool("followers_only"),
        followers_min_minutes=f.opt_integer("followers_min_minutes", 0, MAX_FOLLOW_MINUTES),
        block_links=f.opt_bool("block_links"),
        require_account=f.opt_bool("require_account"),
        nonce=f.nonce,
    )


_PARSERS: dict[str, Callable[[_Fields], Command]] = {
    "send": _parse_send,
    "like": lambda f: Like(f.nonce),
    "delete": lambda f: Delete(f.integer("id", 1, 2**63 - 1), f.nonce),
    "timeout": lambda f: Timeout(
        f.name(),
        f.integer("seconds", 1, MAX_TIMEOUT_SECONDS),
        f.text("reason", REASON_MAX, default=""),
        f.nonce,
    ),
    "ban": lambda f: Ban(f.name(), f.text("reason", REASON_MAX, default=""), f.nonce),
    "unban": lambda f: Unban(f.name(), f.nonce),
    "clear": lambda f: Clear(f.nonce),
    "set_modes": _parse_set_modes,
    "set_blocked_words": lambda f: SetBlockedWords(f.words("words"), f.nonce),
    "mod": lambda f: AddModerator(f.name(), f.nonce),
    "unmod": lambda f: RemoveModerator(f.name(), f.nonce),
    "modlog": lambda f: GetModLog(f.integer("limit", 1, MODLOG_MAX, default=50), f.nonce),
    "chatters": lambda f: GetChatters(f.nonce),
    "ping": lambda f: Ping(f.nonce),
}


def parse_command(data: str | bytes, max_bytes: int) -> Command:
    """One client frame (its text) as a :data:`Command`."""
    size = len(data.encode(errors="surrogatepass") if isinstance(data, str) else data)
    if size > max_bytes:
        raise FrameTooLarge(f"frame of {size} bytes: the limit is {max_bytes}")
    try:
        obj = json.loads(data)
    # RecursionError: "[[[[..." nests deeper than the C decoder recurses.
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedMessage("not JSON: send one JSON object per text frame") from None
    if not isinstance(obj, dict):
        raise MalformedMessage("not a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise MalformedMessage('no "type": every frame is {"type": ..., ...}')
    nonce = obj.get("nonce")
    if nonce is not None and (not isinstance(nonce, str) or len(nonce) > NONCE_MAX):
        raise InvalidCommand(
            ErrorCode.BAD_REQUEST, f"nonce must be a string of at most {NONCE_MAX} characters"
        )
    parser = _PARSERS.get(kind)
    if parser is None:
        raise InvalidCommand(ErrorCode.UNSUPPORTED, f"unknown type {kind[:40]!r}", nonce)
    return parser(_Fields(obj, nonce))


def command_to_json(command: Command) -> dict[str, Any]:
    """A command as a client sends it (for clients and tests written in Python)."""
    obj: dict[str, Any] = {"type": command.type}
    for f in dataclasses.fields(command):
        value = getattr(command, f.name)
        if value is not None:
            obj[f.name] = list(value) if isinstance(value, tuple) else value
    return obj


# --- message text -----------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """One line of plain text: control characters and direction overrides become spaces,
    the ends are stripped. Escaping for display is the client's job."""
    return _UNSAFE_CHARS.sub(" ", text).strip()


def is_encodable(text: str) -> bool:
    """False for strings no database or UTF-8 client can hold (JSON allows lone
    surrogates such as ``"\\ud800"``)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def mentions(text: str) -> tuple[str, ...]:
    """The names ``@mentioned`` in ``text``, first spelling of each, at most
    :data:`MAX_MENTIONS`."""
    found: list[str] = []
    seen: set[str] = set()
    for match in _MENTION_RE.finditer(text):
        name = match.group(1).rstrip("-")
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            found.append(name)
            if len(found) == MAX_MENTIONS:
                break
    return tuple(found)


def is_guest_name(name: str) -> bool:
    # Usernames are [A-Za-z0-9_] only (strom.store.security): a "-" marks a guest.
    return name.startswith(GUEST_PREFIX)
