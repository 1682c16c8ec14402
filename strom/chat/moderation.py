"""Who may do what in a room, and whether a message may be posted. Sans-IO: the room
hands in the sender's standing, the room's modes and the time; nothing here awaits.

Ranks: a site admin acts in every room; the owner (the streamer) in their own room; the
owner's moderators likewise, except on each other. Nobody acts on the owner or on an
admin. Owner, moderators and admins are exempt from slow mode, followers-only mode,
blocked words and link blocking (as on Twitch), not from the rate limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strom.chat.events import (
    ErrorEvent,
    RoomModes,
)
from strom.chat.limits import SenderLimits
from strom.chat.protocol import (
    ErrorCode,
    clean_text,
    is_encodable,
)


@dataclass(frozen=True)
class Standing:
    """One person's rank in one room."""

    is_owner: bool = False
    is_moderator: bool = False
    is_admin: bool = False

    @property
    def can_moderate(self) -> bool:
        return self.is_owner or self.is_moderator or self.is_admin

    def badges(self) -> tuple[str, ...]:
        found = []
        if self.is_owner:
            found.append("owner")
        if self.is_moderator:
            found.append("moderator")
        if self.is_admin:
            found.append("admin")
        return tuple(found)


def may_act_on(actor: Standing, target: Standing) -> bool:
    """May ``actor`` delete ``target``'s messages, time them out or ban them?"""
    if not actor.can_moderate or target.is_owner or target.is_admin:
        return False
    if target.is_moderator:
        return actor.is_owner or actor.is_admin
    return True


def may_appoint(actor: Standing) -> bool:
    """May ``actor`` appoint or remove moderators?"""
    return actor.is_owner or actor.is_admin


@dataclass(frozen=True)
class Restriction:
    """A ban (``until`` None) or a timeout until ``until`` (UNIX seconds)."""

    until: float | None
    reason: str = ""

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now


@dataclass(frozen=True)
class Refusal:
    code: ErrorCode
    reason: str
    retry_after: float | None = None  # seconds
    until: float | None = None  # UNIX seconds

    def event(self, nonce: str | None) -> ErrorEvent:
        until = round(self.until * 1000) if self.until is not None else None
        return ErrorEvent(self.code, self.reason, nonce, self.retry_after, until)


@dataclass(frozen=True)
class Sender:
    """The member who wants to post, as the checks see them."""

    key: str  # "u:<id>" / "g:<guest name>": what limits and bans are keyed by
    guest: bool
    standing: Standing
    suspended: bool = False
    followed_at: float | None = None  # UNIX seconds


class WordFilter:
    """A room's blocked words and phrases, matched case-insensitively as whole words."""

    def __init__(self, words: tuple[str, ...]) -> None:
        self.words = words
        parts = [r"\s+".join(re.escape(w) for w in word.split()) for word in words if word]
        self._re = re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)") if parts else None

    def search(self, text: str) -> bool:
        return self._re is not None and self._re.search(text.casefold()) is not None


# A scheme ("https://", "ftp://"), "www.", or a host name ending in a common top-level
# domain: what a viewer would click. Not exhaustive by design; moderators add words.
_TLDS = (
    "com|net|org|io|gg|tv|me|co|uk|de|fr|ru|info|xyz|app|dev|ly|be|nl|eu|us|ca|au|jp|cn|in|"
    "br|it|es|pl|se|ch|at|link|site|online|live|stream|to|cc|biz|ws|fm|sh|ai|gl|tk|ml|ga|cf"
)
_LINK_RE = re.compile(
    r"\b[a-z][a-z0-9+.-]{1,15}://\S"
    r"|\bwww\.\S"
    r"|\b[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]{1,63})*\.(?:" + _TLDS + r")\b",
    re.IGNORECASE,
)


def has_link(text: str) -> bool:
    return _LINK_RE.search(text) is not None


def message_refusal(
    text: str,
    sender: Sender,
    *,
    modes: RoomModes,
    words: WordFilter,
    restriction: Restriction | None,
    limits: SenderLimits,
    mono: float,
    wall: float,
) -> tuple[str, Refusal | None]:
    """The text as it would be posted, and why it may not be (``None``: it may).

    ``mono`` is monotonic time (limits), ``wall`` UNIX time (timeouts, follow age). An
    attempt that gets past the account checks costs a token, refused or not, so a
    client cannot probe the filters at full speed. On success the caller records the
    message with ``limits.record`` once it is stored."""
    if sender.suspended:
        return "", Refusal(ErrorCode.SUSPENDED, "this account is suspended")
    if restriction is not None and restriction.active(wall):
        if restriction.until is None:
            return "", Refusal(ErrorCode.BANNED, "you are banned from this chat")
        left = restriction.until - wall
        return "", Refusal(
            ErrorCode.TIMED_OUT,
            f"you are timed out for {_duration(left)} more",
            retry_after=left,
            until=restriction.until,
        )
    if sender.guest and modes.require_account:
        return "", Refusal(ErrorCode.ACCOUNT_REQUIRED, "log in to chat in this channel")
    if not is_encodable(text):
        return "", Refusal(ErrorCode.INVALID_TEXT, "the message is not valid Unicode text")
    text = clean_text(text)
    if not text:
        return "", Refusal(ErrorCode.EMPTY, "the message is empty")
    max_chars = limits.limits.max_chars
    if len(text) > max_chars:
        return text, Refusal(
            ErrorCode.TOO_LONG, f"messages have at most {max_chars} characters ({len(text)})"
        )
    wait = limits.take_message(sender.key, mono)
    if wait > 0:
        return text, Refusal(
            ErrorCode.RATE_LIMITED, "you are sending messages too fast", retry_after=wait
        )
    if not sender.standing.can_moderate:
        refusal = _mode_refusal(
            text, sender, modes=modes, words=words, limits=limits, mono=mono, wall=wall
        )
        if refusal is not None:
            return text, refusal
    if limits.is_duplicate(sender.key, text, mono):
        return text, Refusal(ErrorCode.DUPLICATE, "you just sent the same message")
    return text, None


def _mode_refusal(
    text: str,
    sender: Sender,
    *,
    modes: RoomModes,
    words: WordFilter,
    limits: SenderLimits,
    mono: float,
    wall: float,
) -> Refusal | None:
    left = limits.slow_mode_left(sender.key, modes.slow_mode, mono)
    if left > 0:
        return Refusal(
            ErrorCode.SLOW_MODE,
            f"slow mode: one message every {modes.slow_mode} s; wait {_duration(left)}",
            retry_after=left,
        )
    if modes.followers_only:
        if sender.followed_at is None:
            return Refusal(ErrorCode.FOLLOWERS_ONLY, _followers_reason(modes))
        followed_for = wall - sender.followed_at
        needed = modes.followers_min_minutes * 60
        if followed_for < needed:
            return Refusal(
                ErrorCode.FOLLOWERS_ONLY,
                _followers_reason(modes),
                retry_after=needed - followed_for,
            )
    if words.search(text):
        return Refusal(ErrorCode.BLOCKED_WORD, "your message contains a word this chat blocks")
    if modes.block_links and has_link(text):
        return Refusal(ErrorCode.LINK_BLOCKED, "links are not allowed in this chat")
    return None


def _followers_reason(modes: RoomModes) -> str:
    if modes.followers_min_minutes:
        return (
            "followers-only chat: follow this channel for at least "
            f"{_duration(modes.followers_min_minutes * 60)} to write"
        )
    return "followers-only chat: follow this channel to write"


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    if seconds < 172_800:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"
