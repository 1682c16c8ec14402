"""The upstream side in memory: what a PullFeed writes is the wire format, framed as
WebSocket messages, each chunk's payload the very frame viewers get; a puller that
falls behind is dropped like a slow viewer; the pull key."""

from __future__ import annotations

import asyncio
from typing import Any

from strom.cluster import keys, wire
from strom.cluster.serve import PullFeed
from strom.delivery.backpressure import ViewerLimits
from strom.delivery.ws import ws_frame
from strom.live.channel import Channel
from strom.live.chunk import Chunk
from strom.media.model import Codec, Frame, Track, TrackKind
from tests.helpers.hub import FakeTransport

VIDEO = Track(1, TrackKind.VIDEO, Codec.H264, 1000, b"\x01\x64\x00\x1f", "avc1.64001f", 64, 64)


class FakeWs:
    def __init__(self) -> None:
        self.closed: tuple[int, bytes] | None = None

    async def close(self, *, code: int, message: bytes) -> bool:
        self.closed = (code, message)
        return True


class SlowTransport(FakeTransport):
    buffered = 0

    def get_write_buffer_size(self) -> int:
        return self.buffered


def unframe(data: bytes) -> bytes:
    """A server's unmasked binary frame's payload (RFC 6455 5.2)."""
    assert data[0] == 0x82
    n = data[1]
    if n == 126:
        return data[4:]
    if n == 127:
        return data[10:]
    return data[2:]


def sample(payload: bytes) -> bytes:
    """One moof + mdat as the hub makes it (only the box sizes matter here)."""
    return b"\x00\x00\x00\x08moof" + (8 + len(payload)).to_bytes(4, "big") + b"mdat" + payload


def feed(transport: FakeTransport) -> tuple[Channel, PullFeed, Any]:
    ws = FakeWs()
    pull = PullFeed(ws, transport, ViewerLimits(100, 200, 1.0), "pull test")  # type: ignore[arg-type]
    channel = Channel("alice")
    channel.claim(object())  # type: ignore[arg-type]
    channel.subscribe(pull, internal=True)
    return channel, pull, ws


async def test_a_feed_speaks_the_wire_format() -> None:
    transport = FakeTransport()
    channel, _, _ = feed(transport)
    channel.start_media([VIDEO], b"init")
    data = sample(b"frame")
    chunk = Chunk(data, VIDEO, ((VIDEO, Frame(1, 0, 0, True, b"frame")),), True, 0.0, 1.0)
    channel.add_chunk(chunk)
    channel.publisher_lost(channel.publisher)  # type: ignore[arg-type]
    assert channel.viewers == 0  # internal: not an audience
    decoder = wire.PullDecoder()
    events = [decoder.receive_message(unframe(m)) for m in transport.written]
    assert events[0] == wire.Start("alice", 1, channel.started_at or 0.0, (VIDEO,), b"init")
    assert events[1] is None  # the chunk header; its payload is the viewers' frame itself
    assert transport.written[2] is chunk.encoded(ws_frame)
    got = events[2]
    assert isinstance(got, wire.ChunkArrived)
    assert got.chunk.data == data
    assert got.chunk.frames == chunk.frames
    assert events[3] == wire.StateChanged(wire.Kind.STALL)


async def test_a_puller_that_falls_behind_is_dropped() -> None:
    transport = SlowTransport()
    channel, _, ws = feed(transport)
    channel.start_media([VIDEO], b"init")
    transport.buffered = 1000  # past the drop limit
    channel.add_chunk(Chunk(sample(b"x"), VIDEO, (), True, 0.0, 0.0))
    await asyncio.sleep(0)
    assert ws.closed == (1008, b"too slow: fell behind the live stream")


def test_the_pull_key_comes_from_the_secret() -> None:
    header = keys.authorization(b"site secret")[keys.AUTHORIZATION]
    assert keys.authorized(b"site secret", header)
    assert not keys.authorized(b"another secret", header)
    assert not keys.authorized(b"site secret", None)
    assert not keys.authorized(b"site secret", header.removeprefix("Bearer "))
    assert "site secret" not in header
