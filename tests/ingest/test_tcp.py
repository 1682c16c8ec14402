"""The raw TCP push adapter on loopback, fed by hand: EOF ends the broadcast, a reset
leaves it waiting for the publisher, silence and garbage are closed."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from strom.ingest.push import PushIngest, PushLimits
from strom.ingest.tcp import TcpIngest
from strom.live.channel import Channel, ChannelState, HubLimits, Subscriber
from strom.live.chunk import Chunk
from strom.live.registry import Registry, StaticStreamKeys
from strom.setting_sources import load
from strom.settings import SettingsError
from tests.helpers import make_media


@pytest.fixture(scope="module")
def flv(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("tcp") / "small.flv"
    make_media(path, seconds=1.0, size="160x90", gop=15, bitrate="100k")
    return path.read_bytes()


@pytest.fixture
async def tcp() -> AsyncIterator[TcpIngest]:
    registry = Registry(HubLimits(reconnect_grace=30.0))
    ingest = PushIngest(registry, StaticStreamKeys({}), PushLimits(sniff_timeout=0.3))
    server = TcpIngest(ingest, {0: "bob"})
    await server.start("127.0.0.1")
    try:
        yield server
    finally:
        await server.stop()
        for channel in registry:
            channel.close()


class Follower(Subscriber):
    def on_live(self, channel: Channel) -> None:
        pass

    def on_chunk(self, chunk: Chunk) -> None:
        pass

    def on_end(self) -> None:
        pass


async def send(port: int, data: bytes, *, reset: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if reset:  # SO_LINGER 0: the close is a TCP reset, as when a machine drops off
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return b""
    writer.write_eof()
    async with asyncio.timeout(10):
        answer = await reader.read()
    writer.close()
    return answer


async def state(tcp: TcpIngest, wanted: ChannelState) -> None:
    async with asyncio.timeout(10):
        while True:
            channel = tcp.ingest.registry.get("bob")
            if (channel.state if channel is not None else ChannelState.OFFLINE) is wanted:
                return
            await asyncio.sleep(0.02)


async def test_eof_ends_and_reset_waits_for_the_publisher(tcp: TcpIngest, flv: bytes) -> None:
    port = tcp.port("bob")
    registry = tcp.ingest.registry
    channel = registry.open("bob")
    channel.subscribe(Follower())  # followed, so it stays known between broadcasts
    assert await send(port, flv) == b""  # nothing is ever sent back
    await state(tcp, ChannelState.OFFLINE)
    assert channel.broadcast_id == 1
    assert tcp.ingest.metrics()["completed"] == 1

    await send(port, flv[: len(flv) // 2], reset=True)
    await state(tcp, ChannelState.RECONNECTING)
    assert await send(port, flv) == b""  # back within the grace: the same broadcast
    await state(tcp, ChannelState.OFFLINE)
    assert channel.broadcast_id == 2
    assert tcp.ingest.metrics()["lost"] == 1


async def test_silence_and_garbage_are_closed(
    tcp: TcpIngest, caplog: pytest.LogCaptureFixture
) -> None:
    port = tcp.port("bob")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    async with asyncio.timeout(10):
        assert await reader.read() == b""  # closed after the sniff timeout
    writer.close()
    assert await send(port, b"GET / HTTP/1.1\r\n" + bytes(8192)) == b""
    assert "refused: unsupported or unrecognised container" in caplog.text
    assert tcp.ingest.registry.get("bob") is None
    assert tcp.ingest.metrics()["refused"] == 1


def test_tcp_ingest_setting_from_cli_env_and_file(tmp_path: Path) -> None:
    from strom.cli import build_parser  # noqa: PLC0415

    args = build_parser().parse_args(
        ["serve", "--tcp-ingest", "9000=alice", "--tcp-ingest", "9001=bob"]
    )
    assert load(cli={"tcp_ingest": args.tcp_ingest}, environ={}).tcp_ingest == {
        9000: "alice",
        9001: "bob",
    }
    assert load(environ={"STROM_TCP_INGEST": "9002=carol"}).tcp_ingest == {9002: "carol"}
    config = tmp_path / "strom.toml"
    config.write_text('[tcp_ingest]\n9003 = "dave"\n')
    assert load(environ={}, config_file=config).tcp_ingest == {9003: "dave"}
    for bad in ("alice", "99999=alice", "9000=no way"):
        with pytest.raises(SettingsError):
            load(environ={"STROM_TCP_INGEST": bad})
