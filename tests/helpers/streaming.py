"""``strom stream`` as a test drives it: the real command in its own process, its output
read as it comes; a private X server (Xvfb) for screen capture and the ``--gui`` window;
a guest chatting on a channel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import CHANNEL, need_tool


class Client:
    """``strom stream`` as a subprocess; its output is read as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> Client:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "strom", "stream", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **(env or {})} if env is not None else None,
        )  # fmt: skip
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._new.set()
        self._new.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, text: str, timeout: float = 20, *, regex: bool = False) -> str:
        """The first output line containing ``text`` (or matching it, a regex)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for line in self.lines:
                        if re.search(text, line) if regex else text in line:
                            return line
                    if self._reader.done():
                        raise AssertionError(f"exited without {text!r}:\n{self.output}")
                    self._new.clear()
                    await self._new.wait()
        except TimeoutError:
            raise AssertionError(f"no {text!r} in time:\n{self.output}") from None

    async def finish(self, sig: int | None = signal.SIGINT, timeout: float = 15) -> int:
        if sig is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            await self._reader
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        await self._reader


@contextlib.asynccontextmanager
async def streaming(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Client]:
    client = await Client.start(*args, env=env)
    try:
        yield client
    finally:
        await client.kill()  # never left running, whatever the test did


async def chat_as_guest(base: str, text: str) -> None:
    ws_url = base.replace("http", "ws", 1) + f"/chat/{CHANNEL}/ws"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        welcome = json.loads((await ws.receive()).data)
        assert welcome["type"] == "welcome"
        await ws.send_json({"type": "send", "text": text, "nonce": "n1"})
        async with asyncio.timeout(10):
            async for msg in ws:
                data = json.loads(msg.data)
                if data["type"] == "batch" and any(e.get("nonce") == "n1" for e in data["events"]):
                    return
                assert data["type"] != "error", data


def free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    pytest.skip("no free X display number")


@contextlib.asynccontextmanager
async def xvfb() -> AsyncIterator[str]:
    need_tool("Xvfb")
    number = free_display()
    proc = await asyncio.create_subprocess_exec(
        "Xvfb", f":{number}", "-screen", "0", "1280x720x24", "-nolisten", "tcp",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        sock = Path(f"/tmp/.X11-unix/X{number}")
        async with asyncio.timeout(10):
            while not await asyncio.to_thread(sock.exists):
                assert proc.returncode is None, "Xvfb exited"
                await asyncio.sleep(0.05)
        yield f":{number}"
    finally:
        proc.terminate()
        await proc.wait()
