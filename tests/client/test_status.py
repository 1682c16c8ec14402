"""The terminal while live: the status line, rates, and chat lines that nobody can use to
take over the streamer's terminal."""

from __future__ import annotations

import io

from strom.client.status import (
    ChatLines,
    RateMeter,
    StatusSnapshot,
    TerminalStatus,
    clean_text,
    format_uptime,
    render_status,
)


def test_status_line() -> None:
    live = StatusSnapshot(
        "live", uptime=3723, fps=29.97, kbps=2481.4, dropped=3, viewers=17, channel="alice"
    )
    assert render_status(live) == (
        "● LIVE 1:02:03 · 30.0 fps · 2,481 kbit/s · dropped 3 · 17 viewers · alice"
    )
    one = StatusSnapshot("live", uptime=5, viewers=1, late=2)
    assert render_status(one) == (
        "● LIVE 0:00:05 · 0.0 fps · 0 kbit/s · dropped 0 · late 2 · 1 viewer"
    )
    lost = StatusSnapshot("reconnecting", retry_in=1.6, error="the server closed the connection")
    assert render_status(lost).startswith(
        "↻ RECONNECTING in 2 s (the server closed the connection) · "
    )
    assert render_status(StatusSnapshot("connecting")).startswith("… CONNECTING")
    assert format_uptime(59) == "0:00:59"
    assert format_uptime(-3) == "0:00:00"


def test_rate_meter() -> None:
    meter = RateMeter()
    meter.update(10.0, 0, 0)
    meter.update(12.0, 60, 500_000)
    assert meter.fps == 30
    assert meter.kbps == 2000


def test_chat_text_cannot_drive_the_terminal() -> None:
    hostile = "hi\x1b[2J\x1b]0;owned\x07\r\nthere\u202egnp.exe"
    cleaned = clean_text(hostile, 200)
    assert "\x1b" not in cleaned
    assert "\r" not in cleaned
    assert "\n" not in cleaned
    assert "\u202e" not in cleaned
    assert cleaned.startswith("hi ")
    assert clean_text("x" * 300, 10) == "x" * 9 + "…"


def test_chat_lines_follow_the_room() -> None:
    chat = ChatLines(keep=3)
    chat.welcome(
        {
            "viewers": 4,
            "history": [
                {"type": "message", "id": 1, "user": "bob", "text": "first"},
                {"type": "message", "id": 2, "user": "troll", "text": "spam"},
            ],
        }
    )
    assert chat.viewers == 4
    assert chat.fresh == []  # history is not "new"
    for event in (
        {"type": "message", "id": 3, "user": "carol", "text": "hello"},
        {"type": "message", "id": 4, "user": "troll", "text": "more spam"},
        {"type": "ban", "user": "troll"},
        {"type": "viewers", "count": 5},
        {"type": "delete", "id": 1},
    ):
        chat.apply(event)
    assert [(line.user, line.text) for line in chat.lines] == [("carol", "hello")]
    assert chat.viewers == 5
    chat.apply({"type": "clear"})
    assert list(chat.lines) == []


def test_terminal_redraws_in_place_on_a_tty() -> None:
    out = io.StringIO()
    terminal = TerminalStatus(out, tty=True)
    chat = ChatLines(keep=2)
    chat.apply({"type": "message", "id": 1, "user": "bob", "text": "hi"})
    terminal.draw(StatusSnapshot("live", viewers=2), chat)
    terminal.draw(StatusSnapshot("live", viewers=3), chat)
    text = out.getvalue()
    first, second = text.split("\x1b[2F\x1b[J")  # up two rows, clear, draw again
    assert "2 viewers" in first
    assert "bob: hi" in first
    assert "3 viewers" in second


def test_plain_output_prints_changes_and_chat() -> None:
    out = io.StringIO()
    terminal = TerminalStatus(out, tty=False)
    chat = ChatLines(keep=5)
    terminal.draw(StatusSnapshot("connecting"), None)
    terminal.draw(StatusSnapshot("connecting"), None)  # nothing new: no line
    chat.apply({"type": "message", "id": 1, "user": "bob", "text": "hi"})
    terminal.draw(StatusSnapshot("live", viewers=1, channel="alice"), chat)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("… CONNECTING")
    assert lines[1] == "[chat] bob: hi"
    assert lines[2].startswith("● LIVE")
    assert "1 viewer" in lines[2]
    assert "\x1b" not in out.getvalue()


def test_what_the_server_says_is_shown_as_text() -> None:
    line = render_status(
        StatusSnapshot("reconnecting", error="bad\x1b[31mred\r", channel="a\x1b]0;x\x07")
    )
    assert "\x1b" not in line
    assert "\r" not in line
    assert "\x07" not in line
