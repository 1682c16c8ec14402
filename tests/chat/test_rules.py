"""The rules without a network: limits (time passed in), the refusal of each kind of
message, who may act on whom, and a room's batching and slow-member handling with fake
transports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strom.chat.bus import LocalBus
from strom.chat.events import (
    LikesAdded,
    MessagePosted,
    RoomModes,
)
from strom.chat.limits import ChatLimits, SenderLimits
from strom.chat.moderation import (
    Restriction,
    Sender,
    Standing,
    WordFilter,
    has_link,
    may_act_on,
    may_appoint,
    message_refusal,
)
from strom.chat.protocol import (
    ErrorCode,
)
from strom.chat.room import Identity, Member, Room
from strom.ratelimit import TokenBucket

VIEWER = Standing()
MOD = Standing(is_moderator=True)
OWNER = Standing(is_owner=True)
ADMIN = Standing(is_admin=True)


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=1.0, burst=2, now=0.0)
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(1.0)
    assert bucket.take(0.5) == pytest.approx(0.5)
    assert bucket.take(1.0) == 0.0
    assert bucket.take(100.0) == 0.0  # refills up to the burst only
    assert bucket.take(100.0) == 0.0
    assert bucket.take(100.0) > 0


def test_sender_limits_are_per_sender_and_bounded() -> None:
    limits = SenderLimits(ChatLimits(rate=1.0, burst=1), max_senders=3)
    assert limits.take_message("u:1", 0.0) == 0.0
    assert limits.take_message("u:1", 0.0) > 0
    assert limits.take_message("u:2", 0.0) == 0.0  # another sender is unaffected
    limits.record("u:1", "Hello  World", 0.0)
    assert limits.is_duplicate("u:1", "hello world", 10.0)
    assert not limits.is_duplicate("u:1", "hello world", 31.0)  # duplicate window over
    assert not limits.is_duplicate("u:2", "hello world", 10.0)
    assert limits.slow_mode_left("u:1", 30, 10.0) == pytest.approx(20.0)
    assert limits.slow_mode_left("u:1", 0, 10.0) == 0.0
    for i in range(10):
        limits.take_message(f"g:guest-{i}", 0.0)
    assert len(limits) == 3


def refuse(
    text: str,
    *,
    sender: Sender | None = None,
    modes: RoomModes | None = None,
    restriction: Restriction | None = None,
    limits: SenderLimits | None = None,
    mono: float = 100.0,
    wall: float = 1_000_000.0,
) -> ErrorCode | None:
    modes = modes or RoomModes()
    _, refusal = message_refusal(
        text,
        sender or Sender("u:1", False, VIEWER),
        modes=modes,
        words=WordFilter(modes.blocked_words),
        restriction=restriction,
        limits=limits if limits is not None else SenderLimits(ChatLimits(max_chars=40)),
        mono=mono,
        wall=wall,
    )
    return refusal.code if refusal is not None else None


def test_each_refusal() -> None:
    guest = Sender("g:guest-000001", True, VIEWER)
    assert refuse("hello") is None
    assert refuse("x" * 41) is ErrorCode.TOO_LONG
    assert refuse(" \n\t ") is ErrorCode.EMPTY
    assert refuse("\ud800") is ErrorCode.INVALID_TEXT
    assert refuse("hi", sender=guest, modes=RoomModes(require_account=True)) is (
        ErrorCode.ACCOUNT_REQUIRED
    )
    assert refuse("hi", sender=guest) is None
    assert refuse("hi", restriction=Restriction(None)) is ErrorCode.BANNED
    assert refuse("hi", restriction=Restriction(1_000_060.0)) is ErrorCode.TIMED_OUT
    assert refuse("hi", restriction=Restriction(999_999.0)) is None  # timeout over
    suspended = Sender("u:1", False, VIEWER, suspended=True)
    assert refuse("hi", sender=suspended) is ErrorCode.SUSPENDED
    words = RoomModes(blocked_words=("darn", "dang it"))
    assert refuse("oh DARN!", modes=words) is ErrorCode.BLOCKED_WORD
    assert refuse("dang   it", modes=words) is ErrorCode.BLOCKED_WORD
    assert refuse("darned", modes=words) is None  # whole words only
    links = RoomModes(block_links=True)
    assert refuse("go site.com", modes=links) is ErrorCode.LINK_BLOCKED
    assert refuse("ok. fine.", modes=links) is None
    followers = RoomModes(followers_only=True, followers_min_minutes=10)
    assert refuse("hi", modes=followers) is ErrorCode.FOLLOWERS_ONLY
    fresh = Sender("u:1", False, VIEWER, followed_at=1_000_000.0 - 60)
    old = Sender("u:1", False, VIEWER, followed_at=1_000_000.0 - 3600)
    assert refuse("hi", modes=followers, sender=fresh) is ErrorCode.FOLLOWERS_ONLY
    assert refuse("hi", modes=followers, sender=old) is None


def test_timeout_refusal_says_until_when() -> None:
    _, refusal = message_refusal(
        "hi",
        Sender("u:1", False, VIEWER),
        modes=RoomModes(),
        words=WordFilter(()),
        restriction=Restriction(1_000_090.0),
        limits=SenderLimits(ChatLimits()),
        mono=0.0,
        wall=1_000_000.0,
    )
    assert refusal is not None
    event = refusal.event("n").to_client()
    assert event["until"] == 1_000_090_000
    assert event["retry_after"] == 90.0
    assert event["nonce"] == "n"
    assert "90 s" in event["reason"]


def test_rate_slow_mode_and_duplicates_in_order() -> None:
    limits = SenderLimits(ChatLimits(rate=0.1, burst=2))
    slow = RoomModes(slow_mode=30)
    assert refuse("one", limits=limits, modes=slow, mono=0.0) is None
    limits.record("u:1", "one", 0.0)
    assert refuse("two", limits=limits, modes=slow, mono=1.0) is ErrorCode.SLOW_MODE
    assert refuse("three", limits=limits, mono=1.0) is ErrorCode.RATE_LIMITED
    assert refuse("one", limits=limits, mono=11.0) is ErrorCode.DUPLICATE
    # Moderators skip slow mode, not the rate limit.
    mod = Sender("u:1", False, MOD)
    assert refuse("four", limits=limits, modes=slow, mono=21.0, sender=mod) is None


def test_privileged_skip_the_modes() -> None:
    strict = RoomModes(followers_only=True, block_links=True, blocked_words=("darn",))
    for standing in (MOD, OWNER, ADMIN):
        sender = Sender("u:2", False, standing)
        assert refuse("darn, see x.com", modes=strict, sender=sender) is None


def test_who_may_act_on_whom() -> None:
    assert may_act_on(MOD, VIEWER)
    assert not may_act_on(MOD, MOD)
    assert not may_act_on(MOD, OWNER)
    assert may_act_on(OWNER, MOD)
    assert may_act_on(ADMIN, MOD)
    assert not may_act_on(ADMIN, OWNER)
    assert not may_act_on(OWNER, ADMIN)
    assert not may_act_on(VIEWER, VIEWER)
    assert may_appoint(OWNER)
    assert may_appoint(ADMIN)
    assert not may_appoint(MOD)


@pytest.mark.parametrize(
    "text",
    ["https://example.org/x", "see www.example", "example.com", "a.b.tv/path", "FTP://host"],
)
def test_links_found(text: str) -> None:
    assert has_link(text)


@pytest.mark.parametrize("text", ["no links here", "3.14 is pi", "e.g. this", "end."])
def test_not_links(text: str) -> None:
    assert not has_link(text)


class FakeTransport:
    def __init__(self, buffered: int = 0) -> None:
        self.written: list[bytes] = []
        self.buffered = buffered

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return False


def payloads(transport: FakeTransport) -> list[dict[str, Any]]:
    """The JSON of each (unmasked, final) text frame written."""
    found = []
    for frame in transport.written:
        assert frame[0] == 0x81
        n = frame[1]
        offset = 2 if n < 126 else 4
        found.append(json.loads(frame[offset:]))
    return found


def posted(i: int) -> MessagePosted:
    return MessagePosted(i, "guest-000001", True, (), f"message {i}", (), i, None)


async def test_one_frame_per_tick_the_same_bytes_for_everyone() -> None:
    bus = LocalBus()
    room = Room("alice", limits=ChatLimits(history=2), bus=bus)
    await bus.subscribe("alice", room.apply)
    transports = [FakeTransport() for _ in range(3)]
    closes: list[tuple[int, str]] = []
    for i, transport in enumerate(transports):
        member = Member(Identity(f"guest-00000{i}"), transport, lambda c, r: closes.append((c, r)),
                        "test")  # fmt: skip
        room.add(member)
    for i in range(1, 4):
        bus.publish("alice", posted(i))
    for _ in range(4):
        room.like(next(iter(room.members)), 0.0)
    room.flush()
    batches = [t.written[1] for t in transports]  # after each one's welcome
    assert batches[0] is batches[1] is batches[2]  # framed once, shared
    batch = payloads(transports[0])[1]
    assert batch["type"] == "batch"
    assert [e["type"] for e in batch["events"]] == ["message"] * 3 + ["likes"]
    assert batch["events"][-1] == {"type": "likes", "count": 4, "total": 4}
    assert [m.id for m, _ in room.history] == [2, 3]  # bounded history
    room.flush()
    assert all(len(t.written) == 2 for t in transports)  # nothing queued: nothing sent
    assert closes == []
    room.close()


async def test_a_member_too_slow_is_closed_and_the_others_served() -> None:
    bus = LocalBus()
    room = Room("alice", limits=ChatLimits(member_drop_bytes=1000), bus=bus)
    await bus.subscribe("alice", room.apply)
    fast, slow = FakeTransport(), FakeTransport(buffered=5000)
    closes: list[tuple[int, str]] = []
    room.add(Member(Identity("guest-000001"), fast, lambda c, r: None, "fast"))
    room.add(Member(Identity("guest-000002"), slow, lambda c, r: closes.append((c, r)), "slow"))
    bus.publish("alice", LikesAdded(1))
    room.flush()
    assert closes == [(1008, "too slow: fell behind the chat")]
    assert len(fast.written) == 2
    assert len(slow.written) == 1  # the welcome only
    room.close()
