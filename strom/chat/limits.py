"""Per-sender limits in one room: a token bucket for messages, another for likes,
duplicate suppression and slow mode. Sans-IO: time is passed in (seconds, monotonic).

State is kept per sender key (``u:<user id>`` or ``g:<guest name>``) and per room, so a
sender's behaviour in one room never costs them, or anyone, anything in another. The
table is bounded (least recently seen senders are forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from strom.ratelimit import TokenBucket
from strom.settings import Settings, section, setting

MAX_SENDERS = 50_000  # per room


@dataclass(frozen=True)
class ChatLimits:
    max_chars: int = setting("chat_message_max_chars")
    max_frame_bytes: int = setting("chat_max_frame_bytes")
    rate: float = setting("chat_rate")  # messages per second per sender (refill)
    burst: int = setting("chat_burst")
    duplicate_seconds: float = setting("chat_duplicate_seconds")
    like_rate: float = setting("chat_like_rate")
    like_burst: int = setting("chat_like_burst")
    frame_rate: float = setting(
        "chat_frames_per_second"
    )  # inbound frames per second per socket (any type)
    frame_burst: int = setting("chat_frames_burst")
    history: int = setting("chat_history")
    batch_interval: float = setting("chat_batch_interval")
    max_members: int = setting("chat_max_members_per_room")
    member_drop_bytes: int = setting("chat_member_drop_bytes")
    chatters_max: int = setting("chat_chatters_max")  # names in the chatter list

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatLimits:
        return section(cls, settings)


class _Sender:
    __slots__ = ("last_key", "last_sent", "likes", "messages")

    def __init__(self, limits: ChatLimits, now: float) -> None:
        self.messages = TokenBucket(limits.rate, limits.burst, now)
        self.likes = TokenBucket(limits.like_rate, limits.like_burst, now)
        self.last_key = ""
        self.last_sent = float("-inf")


def duplicate_key(text: str) -> str:
    """What counts as "the same message": case and spacing do not matter."""
    return " ".join(text.casefold().split())


class SenderLimits:
    """The limits of every sender in one room."""

    def __init__(self, limits: ChatLimits, max_senders: int = MAX_SENDERS) -> None:
        self.limits = limits
        self._max = max_senders
        self._senders: OrderedDict[str, _Sender] = OrderedDict()

    def _sender(self, key: str, now: float) -> _Sender:
        sender = self._senders.pop(key, None)
        if sender is None:
            sender = _Sender(self.limits, now)
        self._senders[key] = sender
        while len(self._senders) > self._max:
            self._senders.popitem(last=False)
        return sender

    def take_message(self, key: str, now: float) -> float:
        """Charge one message attempt to the bucket: 0.0, or seconds to wait."""
        return self._sender(key, now).messages.take(now)

    def take_like(self, key: str, now: float) -> bool:
        return self._sender(key, now).likes.take(now) == 0.0

    def slow_mode_left(self, key: str, seconds: int, now: float) -> float:
        """Seconds until slow mode lets ``key`` write again (0.0: now)."""
        if seconds <= 0:
            return 0.0
        sender = self._senders.get(key)
        if sender is None:
            return 0.0
        return max(0.0, sender.last_sent + seconds - now)

    def is_duplicate(self, key: str, text: str, now: float) -> bool:
        sender = self._senders.get(key)
        return (
            sender is not None
            and now - sender.last_sent < self.limits.duplicate_seconds
            and sender.last_key == duplicate_key(text)
        )

    def record(self, key: str, text: str, now: float) -> None:
        """``key`` posted ``text`` now (it passed every check)."""
        sender = self._sender(key, now)
        sender.last_key = duplicate_key(text)
        sender.last_sent = now

    def __len__(self) -> int:
        return len(self._senders)
