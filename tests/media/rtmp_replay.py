"""Helpers shared by the golden-capture tests: replay what a real client sent.

The captures in ``tests/data/*.rtmp`` are every byte one client sent to a server,
handshake included (see ``tests/data/make_rtmp_captures.py``).
"""

from __future__ import annotations

from pathlib import Path

from strom.media.rtmp import ChunkReader, RtmpMessage, RtmpServerSession, ServerEvent
from strom.media.rtmp.handshake import HANDSHAKE_SIZE
from strom.media.rtmp.messages import Command, MessageType

DATA = Path(__file__).resolve().parents[1] / "data"
HANDSHAKE_BYTES = 1 + 2 * HANDSHAKE_SIZE  # C0 + C1 + C2


def replay(data: bytes, step: int | None) -> list[ServerEvent]:
    """Feed ``data`` to a fresh session in one lump (``step=None``) or ``step`` bytes at a
    time; returns every event, the application answering nothing."""
    session = RtmpServerSession()
    if step is None:
        return session.receive_data(data)
    events: list[ServerEvent] = []
    for i in range(0, len(data), step):
        events += session.receive_data(data[i : i + step])
    return events


def chunk_messages(data: bytes) -> list[RtmpMessage]:
    """The RTMP messages of a capture (everything after C0 + C1 + C2)."""
    return ChunkReader().receive_data(data[HANDSHAKE_BYTES:])


def commands(data: bytes) -> list[Command]:
    """The AMF0 commands of a capture, in wire order."""
    return [
        Command.parse(m.payload)
        for m in chunk_messages(data)
        if m.message_type == MessageType.COMMAND_AMF0
    ]
