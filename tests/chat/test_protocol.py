"""The chat protocol as data: client frames parse into commands (or are refused with the
right error), room events survive the bus encoding, text is cleaned and mentions found."""

from __future__ import annotations

import json

import pytest

from strom.chat.events import (
    ChatCleared,
    LikesAdded,
    MessageDeleted,
    MessagePosted,
    ModeratorChanged,
    ModesChanged,
    RoomModes,
    UserRestricted,
    UserUnrestricted,
    ViewerCount,
    decode_room_event,
    encode_room_event,
)
from strom.chat.protocol import (
    AddModerator,
    Ban,
    Clear,
    Delete,
    ErrorCode,
    FrameTooLarge,
    GetModLog,
    InvalidCommand,
    MalformedMessage,
    Ping,
    RemoveModerator,
    Send,
    SetBlockedWords,
    SetModes,
    Timeout,
    Unban,
    clean_text,
    command_to_json,
    is_encodable,
    mentions,
    parse_command,
)

MAX = 8192


@pytest.mark.parametrize(
    "command",
    [
        Send("hello <b>world</b> 🌊", "n-1"),
        Send("x"),
        Delete(42),
        Timeout("bob", 600, "spam", "t"),
        Ban("guest-012345", "rude"),
        Unban("bob"),
        Clear(),
        SetModes(slow_mode=30, followers_only=True, followers_min_minutes=10),
        SetModes(block_links=False, require_account=True),
        SetBlockedWords(("bad", "two words")),
        AddModerator("bob"),
        RemoveModerator("bob"),
        GetModLog(20),
        Ping("p"),
    ],
)
def test_commands_round_trip(command: object) -> None:
    frame = json.dumps(command_to_json(command))  # type: ignore[arg-type]
    assert parse_command(frame, MAX) == command
    assert parse_command(frame.encode(), MAX) == command  # bytes work the same


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '"text"',
        "{}",
        '{"type": 5}',
        '{"text": "no type"}',
        "\udcff",
        "[" * 2000,  # deeper than json.loads recurses: used to raise RecursionError
    ],
)
def test_malformed_frames_close_1003(frame: str) -> None:
    with pytest.raises(MalformedMessage) as exc:
        parse_command(frame, MAX)
    assert exc.value.close_code == 1003


def test_oversized_frame_closes_1009() -> None:
    frame = json.dumps({"type": "send", "text": "x" * MAX})
    with pytest.raises(FrameTooLarge) as exc:
        parse_command(frame, MAX)
    assert exc.value.close_code == 1009


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        ({"type": "dance"}, ErrorCode.UNSUPPORTED),
        ({"type": "send"}, ErrorCode.BAD_REQUEST),
        ({"type": "send", "text": 5}, ErrorCode.BAD_REQUEST),
        ({"type": "delete", "id": "7"}, ErrorCode.BAD_REQUEST),
        ({"type": "delete", "id": True}, ErrorCode.BAD_REQUEST),
        ({"type": "timeout", "user": "bob", "seconds": 0}, ErrorCode.BAD_REQUEST),
        ({"type": "timeout", "user": "bob", "seconds": 10**9}, ErrorCode.BAD_REQUEST),
        ({"type": "ban", "user": "<script>"}, ErrorCode.BAD_REQUEST),
        ({"type": "ban", "user": "bob", "reason": "x" * 500}, ErrorCode.BAD_REQUEST),
        ({"type": "set_modes", "slow_mode": -1}, ErrorCode.BAD_REQUEST),
        ({"type": "set_modes", "followers_only": "yes"}, ErrorCode.BAD_REQUEST),
        ({"type": "set_blocked_words", "words": "bad"}, ErrorCode.BAD_REQUEST),
        ({"type": "set_blocked_words", "words": ["x" * 51]}, ErrorCode.BAD_REQUEST),
        ({"type": "modlog", "limit": 1000}, ErrorCode.BAD_REQUEST),
        ({"type": "ping", "nonce": "n" * 65}, ErrorCode.BAD_REQUEST),
    ],
)
def test_bad_commands_are_answered_not_closed(obj: dict[str, object], code: ErrorCode) -> None:
    with pytest.raises(InvalidCommand) as exc:
        parse_command(json.dumps(obj), MAX)
    assert exc.value.code is code
    assert exc.value.reason


def test_bad_request_echoes_the_nonce() -> None:
    with pytest.raises(InvalidCommand) as exc:
        parse_command('{"type": "delete", "id": "x", "nonce": "abc"}', MAX)
    assert exc.value.nonce == "abc"


def test_unknown_fields_are_ignored_and_at_is_stripped() -> None:
    command = parse_command('{"type": "ban", "user": "@Bob", "future": 1}', MAX)
    assert command == Ban("Bob")


def test_blocked_words_are_normalised() -> None:
    command = parse_command(
        json.dumps({"type": "set_blocked_words", "words": ["  BAD ", "two   Words", "bad", ""]}),
        MAX,
    )
    assert command == SetBlockedWords(("bad", "two words"))


@pytest.mark.parametrize(
    "event",
    [
        MessagePosted(1, "Alice", False, ("owner",), "hi @bob", ("bob",), 1_700_000_000_000,
                      "n", 7),
        MessagePosted(2, "guest-000001", True, (), "x", (), 1, None, None),
        MessageDeleted(3, "mod"),
        ChatCleared("mod"),
        UserRestricted("bob", "u:7", 1_700_000_000_000, "mod", "spam"),
        UserRestricted("guest-000001", "g:guest-000001", None, "mod"),
        UserUnrestricted("bob", "u:7", "mod"),
        ModesChanged(RoomModes(slow_mode=5, blocked_words=("a", "b c")), "mod"),
        ModeratorChanged("bob", 7, True, "owner"),
        LikesAdded(12),
        ViewerCount(3),
    ],
)  # fmt: skip
def test_room_events_survive_the_bus(event: object) -> None:
    raw = encode_room_event(event)  # type: ignore[arg-type]
    assert decode_room_event(raw) == event


def test_bad_bus_bytes_are_refused() -> None:
    for raw in (
        b"x",
        b'{"event": "nope", "data": {}}',
        b'{"event": "likes", "data": {}}',
        b"[" * 5000,
    ):
        with pytest.raises(MalformedMessage):
            decode_room_event(raw)


def test_client_views_hide_internal_fields() -> None:
    posted = MessagePosted(1, "Alice", False, (), "hi", (), 5, None, user_id=7)
    assert "user_id" not in posted.to_client()
    assert "nonce" not in posted.to_client()
    restricted = UserRestricted("bob", "u:7", None, "mod", "private reason")
    assert restricted.to_client() == {"type": "ban", "user": "bob"}
    modes = ModesChanged(RoomModes(blocked_words=("secret",)), "mod").to_client()
    assert "secret" not in json.dumps(modes)


def test_text_cleaning_and_mentions() -> None:
    assert clean_text("  hi\nthere\t\x00!  ") == "hi there  !"
    assert clean_text("abc\u202edcba") == "abc dcba"  # no right-to-left override tricks
    assert not is_encodable("\ud800")
    assert mentions("hi @Bob and @bob, @guest-000123! mail a@b.com @") == (
        "Bob",
        "guest-000123",
    )
    assert len(mentions(" ".join(f"@user{i}" for i in range(30)))) == 10
