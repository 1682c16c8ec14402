"""Watching a node as viewers do: waiting for a channel to go live, collecting the
WebSocket output, decoding it with real ffmpeg, waiting for a recording."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from strom.server import StromServer
from tests.helpers import (
    CHANNEL,
    need_tool,
    run_process,
)


async def collect_ws(
    url: str, out: Path, max_seconds: float = 30, tls: ssl.SSLContext | None = None
) -> list[dict[str, str]]:
    """Watch like a browser: write init + chunks to ``out``; return the text messages
    (``tls``: what a ``wss://`` URL's certificate is checked with)."""
    texts: list[dict[str, str]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url, ssl=tls or True) as ws:
        with out.open("wb") as f:
            async with asyncio.timeout(max_seconds):
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        texts.append(json.loads(msg.data))
                    elif msg.type is aiohttp.WSMsgType.BINARY:
                        f.write(msg.data)
        texts.append({"type": "closed", "code": str(ws.close_code)})
    return texts


async def decode(path_or_url: str, *extra: str) -> tuple[int, str]:
    """Decode everything with real ffmpeg; return (video frames, error output). The frames
    keep the source's time base, so a live publisher's jittery timestamps do not collide
    when rounded to 1/fps: only a real timestamp fault in Strom's output is an error."""
    ffmpeg = need_tool("ffmpeg")
    code, out = await run_process(
        ffmpeg, "-v", "error", "-stats_period", "0.1", *extra, "-i", path_or_url,
        "-map", "0:v", "-fps_mode", "passthrough", "-enc_time_base:v", "-1", "-f", "null", "-",
        "-progress", "pipe:1", "-nostats", timeout=90,
    )  # fmt: skip
    frames = [int(m) for m in re.findall(r"^frame=(\d+)", out, re.M)]
    errors = "\n".join(line for line in out.splitlines() if line and "=" not in line.split(" ")[0])
    assert code == 0, out
    return (frames[-1] if frames else 0), errors


async def wait_live(server: StromServer, name: str = CHANNEL, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            channel = server.registry.get(name)
            if channel is not None and channel.live:
                return
            await asyncio.sleep(0.05)


class Watcher:
    def __init__(self, url: str, out: Path) -> None:
        self.url, self.out = url, out
        self.texts: list[str] = []
        self.chunks_by_phase: list[int] = [0]

    async def run(self) -> None:
        async with aiohttp.ClientSession() as http, http.ws_connect(self.url) as ws:
            with self.out.open("wb") as f:
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        kind = json.loads(msg.data)["type"]
                        self.texts.append(kind)
                        if kind in ("reconnecting", "resumed", "init"):
                            self.chunks_by_phase.append(0)
                    elif msg.type is aiohttp.WSMsgType.BINARY:
                        f.write(msg.data)
                        self.chunks_by_phase[-1] += 1


def base(server: StromServer) -> str:
    return f"http://127.0.0.1:{server.http_port}"


async def recordings(http: aiohttp.ClientSession, server: StromServer) -> list[dict[str, Any]]:
    async with http.get(f"{base(server)}/api/v1/channels/{CHANNEL}/recordings") as resp:
        assert resp.status == 200
        body = await resp.json()
    return list(body["recordings"])


async def wait_recording(
    http: aiohttp.ClientSession, server: StromServer, *, finished: bool, timeout: float = 15
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            found = await recordings(http, server)
            done = bool(found) and found[0]["status"] != "recording"
            if found and found[0]["duration"] > 0 and done is finished:
                return found[0]
            await asyncio.sleep(0.1)


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if check():
                return
            await asyncio.sleep(0.02)
