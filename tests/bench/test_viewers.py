"""A WebSocket viewer fed Strom's byte stream in reads of any size records every video
frame once, in order, with the publisher's timestamps (the in-place fast path and the
message path interleave correctly at read boundaries)."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from bench.records import ViewerRecord
from bench.viewers import _SHARED, WsViewer
from bench.wire import ws_accept
from strom.delivery.ws import frame_message
from strom.media.model import VIDEO_TRACK_ID
from tests.helpers.muxed import Muxed


class FakeTransport:
    """Duck-typed, like uvloop's transports (which are no asyncio.Transport)."""

    def __init__(self) -> None:
        self.written = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False


def messages(muxed: Muxed, coalesce: bool) -> list[bytes]:
    """One message per frame, or (as Strom's hub sends by default) one per video frame
    carrying the audio frames before it, each frame its own moof+mdat."""
    if not coalesce:
        return list(muxed.chunks)
    out: list[bytes] = []
    held: list[bytes] = []
    for frame, chunk in zip(muxed.frames, muxed.chunks, strict=True):
        held.append(chunk)
        if frame.track_id == VIDEO_TRACK_ID:
            out.append(b"".join(held))
            held = []
    return out + held


def stream_of(muxed: Muxed, coalesce: bool) -> bytes:
    accept = ws_accept("dGhlIHNhbXBsZSBub25jZQ==")
    return (
        f"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        + frame_message(1, b'{"type":"init","mime":"video/mp4"}')
        + frame_message(2, muxed.init)
        + b"".join(frame_message(2, m) for m in messages(muxed, coalesce))
        + frame_message(1, b'{"type":"end"}')
    )


@pytest.mark.parametrize("coalesce", [True, False])
@pytest.mark.parametrize("read_size", [1 << 20, 32768, 4096, 777, 61])
async def test_every_frame_once_in_order(muxed: Muxed, read_size: int, coalesce: bool) -> None:
    rec = ViewerRecord("ws", 0, "alice")
    viewer = WsViewer(rec, "127.0.0.1", 1, "/live/alice/ws", asyncio.Future())
    transport = FakeTransport()
    viewer.connection_made(cast(asyncio.Transport, transport))
    assert transport.written.startswith(b"GET /live/alice/ws HTTP/1.1\r\n")
    data = stream_of(muxed, coalesce)
    for i in range(0, len(data), read_size):
        piece = data[i : i + read_size]
        _SHARED[: len(piece)] = piece
        viewer.buffer_updated(len(piece))
    video = [f for f in muxed.frames if f.track_id == VIDEO_TRACK_ID]
    assert not rec.error
    # every picture, in order, at its time to the millisecond (the file starts on a
    # keyframe)
    assert len(rec.ts) == len(video)
    assert all(abs(ts - f.dts) <= 1 for ts, f in zip(rec.ts, video, strict=True))
    assert rec.audio == len(muxed.frames) - len(video)
    assert rec.first_key_ts == video[0].dts
    assert rec.ended
    assert rec.bytes == len(data)
