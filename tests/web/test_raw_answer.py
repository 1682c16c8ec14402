"""The lean path's answers written as prepared bytes (``strom.web.raw_answer``), read off
a real socket byte by byte: well-formed HTTP/1.1 with every header the application's
answer had, keep-alive and pipelining kept, HTTP/1.0 and ``Connection: close`` answered
the ordinary way; and a viewer that reads nothing holds up only its own connection."""

from __future__ import annotations

import asyncio
import os
import re

import aiohttp

from strom.server import StromServer
from tests.helpers import CHANNEL, MediaFile
from tests.helpers.hub import feed, read_flv


async def go_live(server: StromServer, media: MediaFile) -> None:
    channel = server.registry.open(CHANNEL)
    channel.claim(object())  # type: ignore[arg-type]
    feed(channel, read_flv(media.path))


def resident_bytes() -> int:
    """This process's resident memory (the server runs in it)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def read_answer(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status, *lines = head.split("\r\n")[:-2]
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(": ")
        assert name.lower() not in headers, f"{name} twice"
        headers[name.lower()] = value
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


async def test_playlists_and_parts_are_whole_http_answers_on_one_connection(
    server: StromServer, av_media: MediaFile
) -> None:
    await go_live(server, av_media)
    path = f"/live/{CHANNEL}/index.m3u8"
    async with (
        aiohttp.ClientSession() as http,
        http.head(f"http://127.0.0.1:{server.http_port}{path}") as resp,
    ):
        app_headers = {k.lower() for k in resp.headers} - {"server", "content-length"}
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, body = await read_answer(reader)
        assert status == "HTTP/1.1 200 OK"
        # What the application's answer says (HEAD went through it), and a Date.
        assert app_headers <= set(headers)
        assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", headers["date"])
        assert headers["access-control-allow-origin"] == "*"
        assert headers["content-type"] == "application/vnd.apple.mpegurl; charset=utf-8"
        playlist = body.decode()
        assert playlist.startswith("#EXTM3U")
        part = re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', playlist)[-1]
        # Pipelined: a part and the playlist again in one write, answered in order on the
        # same connection.
        writer.write(
            f"GET /live/{CHANNEL}/{part} HTTP/1.1\r\nHost: x\r\n\r\n"
            f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        status, headers, media = await read_answer(reader)
        assert status == "HTTP/1.1 200 OK"
        assert headers["content-type"] == "video/mp4"
        assert headers["cache-control"] == "public, max-age=31536000, immutable"
        assert media[4:8] == b"moof"
        status, _, again = await read_answer(reader)
        assert (status, again) == ("HTTP/1.1 200 OK", body)
    finally:
        writer.close()


async def test_http_1_0_and_connection_close_get_the_ordinary_answer(
    server: StromServer, av_media: MediaFile
) -> None:
    await go_live(server, av_media)
    for request in (
        f"GET /live/{CHANNEL}/index.m3u8 HTTP/1.0\r\n\r\n",
        f"GET /live/{CHANNEL}/index.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
        try:
            writer.write(request.encode())
            status, headers, body = await read_answer(reader)
            assert status.endswith(" 200 OK")
            assert headers["access-control-allow-origin"] == "*"
            assert body.startswith(b"#EXTM3U")
            assert await reader.read() == b""  # and the connection closes
        finally:
            writer.close()


async def test_a_viewer_that_reads_nothing_holds_up_only_itself(
    server: StromServer, av_media: MediaFile
) -> None:
    """A thousand pipelined requests for a part, never read: the server stops reading
    them once its send buffer is full, and another viewer is answered at once."""
    await go_live(server, av_media)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    try:
        writer.write(f"GET /live/{CHANNEL}/index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        _, _, body = await read_answer(reader)
        part = re.findall(r'URI="([^"]+\.m4s)"', body.decode())[0]
        one = f"GET /live/{CHANNEL}/{part} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        before = resident_bytes()
        writer.write(one * 1000)
        await asyncio.sleep(1.0)
        # Unread answers would be 1000 parts (over 100 MB) if each were written regardless.
        assert resident_bytes() - before < 30 * 1024 * 1024
        async with (
            asyncio.timeout(5),
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}/{part}") as resp,
        ):
            assert resp.status == 200
            assert (await resp.read())[4:8] == b"moof"
    finally:
        writer.transport.abort()
