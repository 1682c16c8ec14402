"""The bench's HTTP client asks a node for its numbers where it has them: at
``/api/v1/stats``, or at ``/metrics`` on a Strom from before (``--strom-src`` may run an
older checkout)."""

from __future__ import annotations

import json

from aiohttp import web

from bench.http import get_stats


async def serve(routes: dict[str, dict[str, int]]) -> tuple[web.AppRunner, int]:
    app = web.Application()
    for path, body in routes.items():

        async def answer(request: web.Request, body: dict[str, int] = body) -> web.Response:
            return web.json_response(body)

        app.router.add_get(path, answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def test_numbers_from_a_new_and_an_old_strom() -> None:
    for path in ("/api/v1/stats", "/metrics"):
        runner, port = await serve({path: {"pid": 7}})
        try:
            resp = await get_stats("127.0.0.1", port)
        finally:
            await runner.cleanup()
        assert resp.status == 200
        assert json.loads(resp.body) == {"pid": 7}
