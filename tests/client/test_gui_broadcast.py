"""What the ``--gui`` window reads of a broadcast: bounded, cleaned, and independent of
the status log on standard output."""

from __future__ import annotations

import io

from strom.client.gui_broadcast import MAX_MESSAGES, WindowStatus
from strom.client.status import ChatLines, StatusSnapshot, TerminalStatus


def test_the_windows_status_is_bounded_and_outlives_a_closed_log() -> None:
    out = io.StringIO()
    status = WindowStatus(TerminalStatus(out, tty=False))
    chat = ChatLines(5)
    chat.apply({"type": "message", "id": 1, "user": "eve", "text": "hi\x1b[2J there"})
    status.draw(StatusSnapshot(state="live", viewers=3), chat)
    assert "[chat] eve: hi [2J there" in out.getvalue()  # logged, the escape made harmless
    assert chat.fresh == []
    out.close()  # standard output gone: the window goes on without its log
    for n in range(MAX_MESSAGES + 5):
        status.message(f"message {n}\x07")
    snapshot, lines, messages = status.read()
    assert snapshot is not None
    assert snapshot.viewers == 3
    assert lines == ["eve: hi [2J there"]
    assert len(messages) == MAX_MESSAGES
    assert messages[-1] == f"message {MAX_MESSAGES + 4} "
    assert status.read()[2] == []  # each message is read once
