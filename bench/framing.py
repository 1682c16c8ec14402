"""Micro-benchmark behind one design choice of the WebSocket fan-out: frame a chunk once
and write the same bytes to every viewer's transport, versus aiohttp's per-viewer
``send_bytes`` (which frames the message again for each viewer); and ``merged2``: the
same pre-framed bytes, two frames per write (every other frame waits one frame interval,
33 ms at 30 fps), to price the one lever left on the send syscall.

Usage: python -m bench.framing [--viewers 200] [--seconds 10] [--size 10000]

Runs an aiohttp server and its clients in this process on 127.0.0.1 and reports the CPU
time spent in the fan-out loop only (time.process_time around it), per message per viewer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import aiohttp
from aiohttp import web

from strom.delivery.ws import OPCODE_BINARY, frame_message


async def run(mode: str, viewers: int, seconds: float, size: int) -> float:
    sockets: list[asyncio.Transport] = []
    senders: list[web.WebSocketResponse] = []
    ready = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        assert request.transport is not None
        sockets.append(request.transport)
        senders.append(ws)
        if len(sockets) == viewers:
            ready.set()
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    received = 0

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal received
        async with http.ws_connect(f"http://127.0.0.1:{port}/ws", max_msg_size=0) as ws:
            async for msg in ws:
                received += len(msg.data)

    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    clients = [asyncio.create_task(client(http)) for _ in range(viewers)]
    await ready.wait()
    payload = os.urandom(size)
    spent = 0.0
    messages = int(seconds * 30)
    held = b""
    for _ in range(messages):
        start = time.process_time()
        if mode == "preframed":
            framed = frame_message(OPCODE_BINARY, payload)
            for transport in sockets:
                transport.write(framed)
        elif mode == "merged2":
            framed = frame_message(OPCODE_BINARY, payload)
            if held:
                both, held = held + framed, b""
                for transport in sockets:
                    transport.write(both)
            else:
                held = framed
        else:
            for ws in senders:
                await ws.send_bytes(payload)
        spent += time.process_time() - start
        await asyncio.sleep(1 / 30)
    for ws in senders:
        await ws.close()
    await asyncio.gather(*clients, return_exceptions=True)
    await http.close()
    await runner.cleanup()
    return spent / (messages * viewers) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--size", type=int, default=10_000)
    args = parser.parse_args()
    for mode in ("send_bytes", "preframed", "merged2", "send_bytes", "preframed", "merged2"):
        us = asyncio.run(run(mode, args.viewers, args.seconds, args.size))
        print(f"{mode:>10}: {us:6.1f} µs CPU per message per viewer")


if __name__ == "__main__":
    main()
