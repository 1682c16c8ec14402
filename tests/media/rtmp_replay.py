"""Helpers shared by the golden-capture tests: replay what a real client sent.

The captures in ``tests/data/*.rtmp`` are every byte one client sent to a server,
handshake included (see ``tests/data/make_rtmp_captures.py``).
"""

from __future__ import annotations

from pathlib import Path

from strom.media.rtmp import (
    ChunkReader,
    ConnectRequest,
    PlayRequest,
    PublishRequest,
    RtmpMessage,
    RtmpServerSession,
    ServerEvent,
)
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


def replay_in_steps(data: bytes, max_bytes: int, feed: int | None = None) -> list[ServerEvent]:
    """Feed ``data`` (``feed`` bytes at a time, or in one lump) as the server's event loop
    does: bounded steps of ``max_bytes``, each request answered (accepted) before the
    next step; returns every event."""
    session = RtmpServerSession()
    events: list[ServerEvent] = []
    step = feed or len(data)
    for i in range(0, len(data), step):
        new = session.receive_data(data[i : i + step], max_bytes=max_bytes)
        while True:
            for event in new:
                if isinstance(event, ConnectRequest):
                    session.accept_connect()
                elif isinstance(event, PublishRequest):
                    session.accept_publish(event.stream_id)
                elif isinstance(event, PlayRequest):
                    session.accept_play(event.stream_id)
            events += new
            if not session.input_pending:
                break
            new = session.receive_data(b"", max_bytes=max_bytes)
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
