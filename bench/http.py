"""A minimal HTTP/1.1 GET client with keep-alive over asyncio streams, for LL-HLS viewers,
the nginx HLS poller and the sampler of a node's numbers (cheaper per request than a
general client, and it tells when the first and last bytes of a response arrived)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from bench.wire import ResponseHead, WireError, parse_response_head

MAX_HEAD = 64 * 1024
MAX_BODY = 64 << 20
#: where a node answers its numbers as JSON; a Strom from before ``/api/v1/stats`` (the
#: bench may run an older checkout: ``--strom-src``) answered them at ``/metrics``
STATS_PATH = "/api/v1/stats"
LEGACY_STATS_PATH = "/metrics"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    #: time.monotonic() when the response head, and the last body byte, arrived
    t_head: float
    t_done: float


class HttpConnection:
    """One keep-alive connection to ``host:port``; reconnects when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.requests = 0
        self.bytes_in = 0

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=MAX_HEAD
            )
        return self._reader, self._writer

    async def get(self, path: str) -> Response:
        try:
            return await self._get(path)
        except (ConnectionError, asyncio.IncompleteReadError):
            # a kept-alive connection the server closed meanwhile: one retry, fresh
            await self.close()
            return await self._get(path)

    async def _get(self, path: str) -> Response:
        reader, writer = await self._open()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept: */*\r\n\r\n".encode()
        )
        raw = await reader.readuntil(b"\r\n\r\n")
        t_head = time.monotonic()
        head = parse_response_head(raw[:-4])
        body = await read_body(reader, head)
        t_done = time.monotonic()
        self.requests += 1
        self.bytes_in += len(raw) + len(body)
        if head.header("connection").lower() == "close":
            await self.close()
        return Response(head.status, head.headers, body, t_head, t_done)

    async def stream(
        self, path: str, on_data: Callable[[bytes, float], None], etag: str = ""
    ) -> ResponseHead:
        """GET ``path``, handing each piece of the body to ``on_data(data, arrival
        time)`` as it arrives: every chunk of a chunked answer (a DASH segment sent as
        it is written), or the whole body of another. ``etag``: If-None-Match."""
        reader, writer = await self._open()
        match = f"If-None-Match: {etag}\r\n" if etag else ""
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{match}\r\n".encode()
        )
        raw = await reader.readuntil(b"\r\n\r\n")
        head = parse_response_head(raw[:-4])
        self.requests += 1
        if "chunked" not in head.header("transfer-encoding").lower():
            body = await read_body(reader, head)
            if body:
                on_data(body, time.monotonic())
        else:
            async for data in read_chunks(reader):
                on_data(data, time.monotonic())
        if head.header("connection").lower() == "close":
            await self.close()
        return head

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def read_chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The chunks of a chunked body (RFC 9112 7.1) as they arrive; trailers skipped."""
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailer fields
            return
        if size > MAX_BODY:
            raise WireError("chunk too large")
        data = await reader.readexactly(size)
        await reader.readexactly(2)
        yield data


async def read_body(reader: asyncio.StreamReader, head: ResponseHead) -> bytes:
    """RFC 9112 6.3: chunked, Content-Length, or (no length) until the server closes."""
    if head.status in (204, 304) or 100 <= head.status < 200:
        return b""
    if "chunked" in head.header("transfer-encoding").lower():
        parts: list[bytes] = []
        total = 0
        async for data in read_chunks(reader):
            total += len(data)
            if total > MAX_BODY:
                raise WireError("response body too large")
            parts.append(data)
        return b"".join(parts)
    length = head.header("content-length")
    if length:
        if not length.isdigit() or int(length) > MAX_BODY:
            raise WireError(f"bad Content-Length {length!r}")
        return await reader.readexactly(int(length))
    return await reader.read(MAX_BODY)


async def get_once(host: str, port: int, path: str, timeout: float = 5.0) -> Response:
    conn = HttpConnection(host, port)
    try:
        async with asyncio.timeout(timeout):
            return await conn.get(path)
    finally:
        await conn.close()


async def get_stats(host: str, port: int, timeout: float = 5.0) -> Response:
    """A node's numbers (JSON): :data:`STATS_PATH`, or where an older Strom (404 there)
    has them."""
    resp = await get_once(host, port, STATS_PATH, timeout)
    if resp.status == 404:
        resp = await get_once(host, port, LEGACY_STATS_PATH, timeout)
    return resp
