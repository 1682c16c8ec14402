"""A viewer whose connection is closing gets no more writes: on uvloop a write to a
closed transport raises, and from a viewer's on_chunk that would reach the publisher of
the chunk (found by the benchmark's soak: a publisher dropped by a viewer leaving)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from strom.delivery import rtmp_play
from strom.delivery.backpressure import ViewerLimits
from strom.delivery.rtmp_play import RtmpPlayer
from strom.delivery.ws import WsViewer
from strom.live.chunk import Chunk
from strom.media.model import Track, TrackKind
from tests.helpers.hub import FakeSession


class ClosedTransport:
    """uvloop's transport after close(): every write raises."""

    def write(self, data: bytes) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")

    def is_closing(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0


def chunk(keyframe: bool = True) -> Chunk:
    track = Track(1, TrackKind.VIDEO, codec=None, timescale=1000, config=b"", codec_string="")  # type: ignore[arg-type]
    return Chunk(b"\x00" * 32, track, (), keyframe, 0.0, 0.0)


async def test_websocket_viewer_leaving_is_not_written_to() -> None:
    ws: Any = object()
    viewer = WsViewer(ws, ClosedTransport(), ViewerLimits(), "127.0.0.1")  # type: ignore[arg-type]
    viewer.on_chunk(chunk())
    viewer.on_chunk(chunk(False))
    await asyncio.sleep(0)


def test_rtmp_viewer_leaving_is_not_written_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtmp_play, "rtmp_message", lambda *args: b"an RTMP message")
    player = RtmpPlayer(
        FakeSession(),  # type: ignore[arg-type]
        1,
        ClosedTransport(),  # type: ignore[arg-type]
        limits=ViewerLimits(),
        chunk_size=4096,
        clock=lambda: 0.0,
        on_drop=lambda reason: None,
        label="test",
    )
    player.on_chunk(chunk())
