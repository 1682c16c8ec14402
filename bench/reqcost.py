"""What one LL-HLS request costs the server, against aiohttp's own floor.

``python -m bench reqcost``: Strom with a live channel answers ``--req-count`` requests
for a complete part and as many for the playlist, over ``--req-conns`` keep-alive
connections that each ask again as soon as an answer is in; the server's CPU time over
those requests, per request. The same is then asked of a bare aiohttp application (no
middleware, one route, on uvloop as Strom runs) answering bytes of the same sizes: the
floor a request through aiohttp costs on this machine. The difference is what Strom's
own path adds.

This measures requests back to back, several in each turn of the event loop; an LL-HLS
viewer's requests come one by one, woken by a part, so each also pays a wake-up of its
own (``python -m bench hls`` measures that pattern).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import socket
import time
from typing import Any

import uvloop
from aiohttp import web

from bench.http import HttpConnection
from bench.run import Options, session
from bench.sampler import read_stat

#: the playlist's part URIs
_PART = re.compile(r'#EXT-X-PART:[^\n]*URI="([^"]+)"')


async def _ask(host: str, port: int, path: str, count: int, conns: int) -> int:
    """``count`` GETs of ``path`` over ``conns`` connections; the bytes of one answer."""
    size = 0

    async def one(n: int) -> None:
        nonlocal size
        conn = HttpConnection(host, port)
        try:
            for _ in range(n):
                resp = await conn.get(path)
                if resp.status != 200:
                    raise RuntimeError(f"{path}: {resp.status}")
                size = len(resp.body)
        finally:
            await conn.close()

    await asyncio.gather(*(one(count // conns) for _ in range(conns)))
    return size


async def _cost(pid: int, host: str, port: int, path: str, opts: Options) -> dict[str, Any]:
    await _ask(host, port, path, opts.req_conns * 20, opts.req_conns)  # warm up
    before, t0 = read_stat(pid), time.monotonic()
    size = await _ask(host, port, path, opts.req_count, opts.req_conns)
    after, t1 = read_stat(pid), time.monotonic()
    if before is None or after is None:
        raise RuntimeError("the server went away")
    seconds = (after.ticks - before.ticks) / os.sysconf("SC_CLK_TCK")
    count = opts.req_count // opts.req_conns * opts.req_conns
    return {
        "bytes": size,
        "us_per_request": round(seconds / count * 1e6, 1),
        "requests_per_s": round(count / (t1 - t0)),
    }


def _bare_server(sock: socket.socket, sizes: dict[str, int]) -> None:
    """A bare aiohttp app: one route answering bytes of a given size, no middleware."""
    bodies = {name: b"\0" * size for name, size in sizes.items()}

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=bodies[request.match_info["name"]], content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/live/bench/{name}", answer)
    web.run_app(app, sock=sock, print=None, access_log=None, loop=uvloop.new_event_loop())


async def scenario_reqcost(opts: Options) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    sizes: dict[str, int] = {}
    async with session("strom", opts) as sess:
        await sess.publish({"bench": sess.server.keys["bench"]})  # type: ignore[attr-defined]
        await asyncio.sleep(4)
        base = "/live/bench/"
        playlist = await HttpConnection(opts.host, sess.http_port).get(base + "index.m3u8")
        part = _PART.findall(playlist.body.decode())[-1]
        for name, path in (("part", base + part), ("playlist", base + "index.m3u8")):
            row = await _cost(sess.server.pid, opts.host, sess.http_port, path, opts)
            rows.append({"server": "strom", "answer": name, **row})
            sizes[name] = row["bytes"]
    sock = socket.socket()
    sock.bind((opts.host, 0))
    sock.listen(1024)
    proc = multiprocessing.get_context("spawn").Process(target=_bare_server, args=(sock, sizes))
    proc.start()
    try:
        await asyncio.sleep(1.5)
        port = sock.getsockname()[1]
        assert proc.pid is not None
        for name in sizes:
            row = await _cost(proc.pid, opts.host, port, f"/live/bench/{name}", opts)
            rows.append({"server": "aiohttp", "answer": name, **row})
    finally:
        proc.terminate()
        proc.join(5)
        sock.close()
    lines = ["| server | answer | bytes | µs CPU / request | requests/s |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['server']} | {r['answer']} | {r['bytes']} | {r['us_per_request']} | "
        f"{r['requests_per_s']} |"
        for r in rows
    ]
    return {"rows": [], "reqcost": rows, "lines": lines}
