"""The HTTP listener's guard, against the real server on loopback from raw sockets: a
request head trickled in byte by byte is cut off at the header deadline (with a 408), the
next head on a kept-alive connection is bounded too, so is a trickled form body, and one
address cannot hold more than its share of connections, while other clients (and other
addresses) are served."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from strom.server import StromServer
from tests.helpers import make_settings
from tests.helpers.watching import until

# serial: asserts deadlines a busy machine could miss (see scripts/test).
pytestmark = pytest.mark.serial

SLACK = 2.0  # seconds: a bound on the server's timer and the loop, not a measurement


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[StromServer]:
    """A server with short header and body deadlines, a short keep-alive and 3
    connections per address."""
    srv = StromServer(
        make_settings(
            tmp_path,
            http_header_timeout=1.5,
            http_keepalive_timeout=2.0,
            http_body_timeout=1.5,
            http_max_connections_per_address=3,
        )
    )
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def trickle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, every: float, limit: float
) -> tuple[float, bytes]:
    """Send an endless request head one byte every ``every`` s until the server answers
    or hangs up: (seconds it took, what it sent)."""
    head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 1000
    started = time.monotonic()
    for byte in head:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            break
        try:
            answer = await asyncio.wait_for(reader.read(4096), every)
        except TimeoutError:
            if time.monotonic() - started > limit:
                raise AssertionError(f"still open after {limit} s") from None
            continue
        except ConnectionError:
            answer = b""
        # the whole answer (or the hang-up after it)
        while answer and not answer.endswith(b"}"):
            more = await asyncio.wait_for(reader.read(4096), SLACK)
            if not more:
                break
            answer += more
        return time.monotonic() - started, answer
    raise AssertionError("the server read the whole head")


async def get_page(base: str, path: str = "/", local: str | None = None) -> int:
    connector = aiohttp.TCPConnector(local_addr=(local, 0) if local else None)
    async with aiohttp.ClientSession(connector=connector) as http, http.get(base + path) as resp:
        await resp.read()
        return resp.status


async def test_trickled_request_head_is_cut_off_at_the_deadline(strict: StromServer) -> None:
    base = f"http://127.0.0.1:{strict.http_port}"
    reader, writer = await asyncio.open_connection("127.0.0.1", strict.http_port)
    try:
        slow = asyncio.create_task(trickle(reader, writer, every=0.3, limit=10.0))
        # Meanwhile, on another connection, a normal visitor gets the front page.
        assert await get_page(base) == 200
        held, answer = await slow
    finally:
        writer.close()
    # The deadline runs from accept; the bytes trickling in did not extend it.
    assert 1.5 - 0.3 <= held < 1.5 + SLACK
    status_line, _, body = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert json.loads(body.rpartition(b"\r\n\r\n")[2]) == {
        "error": "the request head was not complete within 1.5 s"
    }
    assert strict.metrics()["http_connections"]["header_timeouts"] == 1
    assert await get_page(base) == 200


async def test_next_head_on_a_kept_alive_connection_is_bounded_too(
    strict: StromServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", strict.http_port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        # The second request trickles in: the keep-alive timer (2 s) is not reset by it.
        held, answer = await trickle(reader, writer, every=0.3, limit=10.0)
    finally:
        writer.close()
    assert held < 2.0 + SLACK
    assert answer == b""  # an answer was already sent on this connection: just closed


async def test_trickled_request_body_is_cut_off_at_the_deadline(strict: StromServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", strict.http_port)
    try:
        # A complete head announcing a small form, whose body then trickles in.
        writer.write(
            b"POST /login HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000\r\n\r\n"
        )
        started = time.monotonic()
        answer = b""
        while not answer:
            assert time.monotonic() - started < 1.5 + SLACK, "still reading the body"
            writer.write(b"a")
            try:
                answer = await asyncio.wait_for(reader.read(4096), 0.3)
            except TimeoutError:
                continue
        held = time.monotonic() - started
    finally:
        writer.close()
    assert 1.5 - 0.3 <= held < 1.5 + SLACK
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b'{"error": "the request body did not arrive within 1.5 s"}')
    assert strict.metrics()["http_connections"]["body_timeouts"] == 1


async def test_connections_per_address_are_capped(strict: StromServer) -> None:
    port = strict.http_port
    base = f"http://127.0.0.1:{port}"
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    try:
        # A fourth connection from the same address is answered 429 at once, and closed.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 429 Too Many Requests"
        assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {
            "error": "too many connections from 127.0.0.1 (at most 3)"
        }
        # Another address is served meanwhile (all of 127/8 reaches loopback on Linux).
        assert await get_page(base, local="127.0.0.2") == 200
        metrics = strict.metrics()["http_connections"]
        assert metrics["refused"] == 1
    finally:
        for _, w in held:
            w.close()
            await w.wait_closed()
    # Once the held connections are gone, the address is welcome again.
    await until(lambda: strict.metrics()["http_connections"]["open"] == 0)
    assert await get_page(base) == 200


async def test_exempt_networks_are_not_capped_per_address(tmp_path: Path) -> None:
    srv = StromServer(
        make_settings(
            tmp_path,
            http_max_connections_per_address=1,
            connection_limit_exempt="127.0.0.0/8",
        )
    )
    await srv.start()
    try:
        held = [await asyncio.open_connection("127.0.0.1", srv.http_port) for _ in range(3)]
        assert await get_page(f"http://127.0.0.1:{srv.http_port}") == 200
        for _, w in held:
            w.close()
    finally:
        await srv.stop()
