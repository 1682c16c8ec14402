"""The RTMP server against hostile clients on loopback (issue 11, part 2): deadlines that
trickled bytes do not extend, connections counted per address, input read at a bounded
rate before a publish, nothing kept once a connection is gone.

The clients are raw sockets (``bench.hostile_rtmp``) and Strom's own test client; the
server is the real adapter with short timeouts. Loopback is all of 127/8 on Linux, so a
client bound to 127.0.0.2 is "another address"."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bench.hostile_rtmp import (
    closed_within,
    connect_command,
    hold_open,
    memory_hog,
    rtmp_open,
    silent_after_connect,
    trickled_handshake,
)
from strom.ingest.rtmp import RtmpConnection, RtmpServer, RtmpServerConfig
from strom.live.channel import HubLimits
from strom.live.registry import Registry, StaticStreamKeys
from strom.media.amf import decode_amf0
from strom.media.rtmp import ChunkReader, encode_message
from strom.media.rtmp.messages import MessageType, UserControl, UserControlEvent
from strom.settings import Settings
from tests.e2e.rtmp_client import RtmpTestClient
from tests.helpers import CHANNEL, STREAM_KEY

OTHER = "127.0.0.2"  # another client address on loopback


class Server(RtmpServer):
    port = 0


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
async def rtmp_server() -> AsyncIterator[ServerFactory]:
    """Starts an RTMP server with the given settings; stops them all at the end."""
    servers: list[tuple[RtmpServer, Registry]] = []

    async def start(**overrides: Any) -> Server:
        values: dict[str, Any] = {
            "rtmp_handshake_timeout": 1.5,
            "rtmp_start_timeout": 2.0,
            "rtmp_idle_timeout": 3.0,
        } | overrides
        settings = Settings(**values)
        registry = Registry(HubLimits(reconnect_grace=0.0))
        keys = StaticStreamKeys({CHANNEL: STREAM_KEY})
        server = Server(registry, keys, RtmpServerConfig.from_settings(settings))
        server.port = await server.start("127.0.0.1", 0)
        servers.append((server, registry))
        return server

    yield start
    for server, registry in servers:
        await server.stop()
        for channel in registry:
            channel.close()


def warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and text in r.getMessage()
    ]


# ------------------------------------------------------------------------- deadlines


async def test_a_connection_that_never_publishes_is_closed_at_the_deadline(
    rtmp_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11: after ``connect`` a silent socket stayed open 65 s and more. Now it is
    closed 2 s (rtmp_start_timeout) after it was accepted, told why, and logged."""
    server = await rtmp_server()
    client = RtmpTestClient(server.port)
    await client.connect()
    start = time.monotonic()
    async with asyncio.timeout(6.0):
        while data := await client.reader.read(65536):
            client.events += client.session.receive_data(data)
    assert time.monotonic() - start < 4.0
    await client.aclose()
    status = client.status()
    assert status is not None
    assert (status.level, status.code) == ("error", "NetConnection.Connect.Closed")
    assert status.description == "no publish or play within 2 s"
    assert len(warnings(caplog, "no publish or play within 2 s, closing")) == 1


async def test_chatter_does_not_extend_the_deadline(rtmp_server: ServerFactory) -> None:
    """A client that pings every 0.3 s is as idle as a silent one: the deadline counts
    from accept, not from the last byte."""
    server = await rtmp_server()
    reader, writer = await rtmp_open(server.port)
    writer.write(connect_command(server.port))
    ping = bytes(UserControl(UserControlEvent.PING_REQUEST, 1))
    closed = asyncio.ensure_future(closed_within(reader, 6.0))
    while not closed.done():
        writer.write(encode_message(2, MessageType.USER_CONTROL, 0, 0, ping, 128))
        await asyncio.wait([closed], timeout=0.3)
    seconds = closed.result()
    assert seconds is not None
    assert 1.0 < seconds < 4.0
    writer.close()


async def test_a_trickled_handshake_is_closed_at_the_handshake_deadline(
    rtmp_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11: one byte at a time kept the idle timer from ever firing."""
    server = await rtmp_server()
    closed = await trickled_handshake(server.port, every=0.2, give_up=8.0)
    assert closed is not None
    assert 1.0 < closed < 4.0
    assert len(warnings(caplog, "no handshake within 1.5 s, closing")) == 1


async def test_a_silent_connection_after_connect_is_closed(rtmp_server: ServerFactory) -> None:
    server = await rtmp_server(rtmp_start_timeout=1.0)
    closed = await silent_after_connect(server.port, give_up=6.0)
    assert closed is not None
    assert closed < 3.5


async def test_publishers_and_players_are_not_subject_to_the_start_deadline(
    rtmp_server: ServerFactory,
) -> None:
    server = await rtmp_server(rtmp_start_timeout=1.0)
    publisher = RtmpTestClient(server.port)
    await publisher.connect()
    status = await publisher.publish(STREAM_KEY)
    assert status.code == "NetStream.Publish.Start"
    player = RtmpTestClient(server.port)
    await player.connect()
    player.session.play(CHANNEL)
    await player.flush()
    await player.pump(lambda: player.status() is not None)
    stream_id = publisher.session.stream_id
    assert stream_id is not None
    for _ in range(10):  # 2.5 s of a (tiny) broadcast: metadata only keeps it alive
        publisher.session.send_metadata({"width": 2.0})
        await publisher.flush()
        await asyncio.sleep(0.25)
    for client in (publisher, player):
        assert not client.reader.at_eof()
        assert not client.writer.is_closing()
        await client.aclose()


# ------------------------------------------------------------------- per address


async def test_one_address_at_its_limit_does_not_lock_out_another(
    rtmp_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11: five one-byte sockets with --max-connections 5 locked real publishers
    out. Now one address holds at most its own share."""
    server = await rtmp_server(rtmp_max_connections_per_address=3, max_connections=100)
    held = [await hold_open(server.port, local_host=OTHER) for _ in range(3)]
    reader, writer = await hold_open(server.port, local_host=OTHER)
    async with asyncio.timeout(2.0):
        assert await _eof(reader)  # refused: closed without a byte
    publisher = RtmpTestClient(server.port)
    await publisher.connect()
    status = await publisher.publish(STREAM_KEY)
    assert status.code == "NetStream.Publish.Start"
    refusals = warnings(caplog, "refused: too many connections from 127.0.0.2 (at most 3)")
    assert len(refusals) == 1
    await publisher.aclose()
    for _, w in held:
        w.close()
    writer.close()


async def _eof(reader: asyncio.StreamReader) -> bool:
    try:
        data: bytes = await reader.read(1)
        return data == b""
    except OSError:
        return True


async def test_a_flood_of_refused_connections_is_not_a_flood_of_log_lines(
    rtmp_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await rtmp_server(rtmp_max_connections_per_address=1)
    held = await hold_open(server.port, local_host=OTHER)
    for _ in range(40):
        reader, writer = await hold_open(server.port, local_host=OTHER)
        assert await _eof(reader)
        writer.close()
    assert server.slots.refused == 40
    assert len(warnings(caplog, "refused: too many connections")) <= 10
    held[1].close()


async def test_exempt_networks_are_counted_only_in_the_total(rtmp_server: ServerFactory) -> None:
    server = await rtmp_server(
        rtmp_max_connections_per_address=1,
        max_connections=4,
        connection_limit_exempt="127.0.0.2/32",
    )
    held = [await hold_open(server.port, local_host=OTHER) for _ in range(4)]
    await asyncio.sleep(0.2)
    assert len(server.connections) == 4  # all of 127.0.0.2's, exempt per address
    reader, writer = await hold_open(server.port)
    assert await _eof(reader)  # the global cap still holds
    for _, w in [*held, (reader, writer)]:
        w.close()


# ------------------------------------------------------------ bounded input, no leaks


async def test_before_a_publish_input_is_read_at_a_bounded_rate(
    rtmp_server: ServerFactory,
) -> None:
    """A connected client that floods legal messages (chunk size 128, shared objects the
    server ignores) makes the server read 64 KiB/s, not as fast as it can parse."""
    server = await rtmp_server(rtmp_start_timeout=30.0, rtmp_preauth_read_rate=64 << 10)
    _, writer = await rtmp_open(server.port)
    writer.write(connect_command(server.port))
    message = encode_message(3, MessageType.SHARED_OBJECT_AMF0, 0, 0, bytes(16_000), 128)
    (conn,) = server.connections
    start, cpu = time.monotonic(), time.process_time()
    await write_for(writer, message, 2.0)
    cpu = time.process_time() - cpu
    read = conn._session.input_work
    assert read < (64 << 10) * (time.monotonic() - start + 1) + (64 << 10)
    assert cpu < 1.0  # this process: server and client
    writer.transport.abort()


async def write_for(writer: asyncio.StreamWriter, data: bytes, seconds: float) -> None:
    """Write ``data`` again and again for ``seconds`` (waiting whenever the server does
    not take it)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                writer.write(data)
                await writer.drain()


async def test_a_client_that_does_not_read_is_not_read(rtmp_server: ServerFactory) -> None:
    """Pings make the server write pongs; a client that never reads them stops being
    read once the server's write buffer is full, instead of growing it without bound."""
    server = await rtmp_server(rtmp_start_timeout=30.0, rtmp_preauth_read_rate=0)
    _, writer = await rtmp_open(server.port, receive_buffer=4096)
    writer.write(connect_command(server.port))
    ping = bytes(UserControl(UserControlEvent.PING_REQUEST, 7))
    pings = encode_message(2, 4, 0, 0, ping, 128) + (b"\xc2" + ping) * 20_000
    (conn,) = server.connections
    transport = conn._transport
    assert transport is not None
    # small kernel buffers on both ends, so that 2 s show what hours would
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    await write_for(writer, pings, 2.0)
    assert transport.get_write_buffer_size() < 256 << 10  # without the pause: megabytes
    writer.transport.abort()


async def test_closed_hostile_connections_leave_nothing_behind(
    rtmp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 saw RSS not come back after hostile clients left: no timer, task or
    registry may keep a closed connection (or its buffers) alive."""
    server = await rtmp_server(rtmp_start_timeout=1.0)
    refs: list[weakref.ref[RtmpConnection]] = []
    admit = server.admit

    def admit_and_track(conn: RtmpConnection) -> bool:
        refs.append(weakref.ref(conn))
        return admit(conn)

    monkeypatch.setattr(server, "admit", admit_and_track)
    results = await asyncio.gather(
        *(memory_hog(server.port, give_up=5.0) for _ in range(4)),
        silent_after_connect(server.port, give_up=5.0),
        trickled_handshake(server.port, every=0.2, give_up=5.0),
    )
    assert None not in results  # every one was closed by the server
    await asyncio.sleep(0.1)
    gc.collect()
    assert len(refs) == 6
    assert [r() for r in refs] == [None] * 6
    assert (server.slots.total, len(server.slots), len(server.connections)) == (0, 0, 0)


async def test_the_refusal_is_readable_by_the_client(rtmp_server: ServerFactory) -> None:
    """A chunk size below the floor: the client reads why before the close."""
    server = await rtmp_server()
    reader, writer = await rtmp_open(server.port)
    writer.write(connect_command(server.port))
    await asyncio.sleep(0.2)
    writer.write(encode_message(2, 1, 0, 0, (1).to_bytes(4, "big"), 128))
    data = b""
    async with asyncio.timeout(3.0):
        while chunk := await reader.read(65536):
            data += chunk
    texts = [
        str(decode_amf0(m.payload))
        for m in ChunkReader().receive_data(data)
        if m.message_type == MessageType.COMMAND_AMF0
    ]
    assert any("below the 128 byte minimum" in t for t in texts)
    writer.close()
