"""Asking the site's other nodes for a file (``strom.cluster.elsewhere``), against real
HTTP servers on loopback standing in for the nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from strom.cluster.elsewhere import FORWARDED, MAX_HOPS, Elsewhere, ElsewhereLimits

BODY = bytes(range(256)) * 1000  # 256 kB: streamed through in pieces


#: the request headers each stand-in node was asked with, by its port
SEEN: dict[int, list[dict[str, str]]] = {}


def seen(server: TestServer) -> list[dict[str, str]]:
    assert server.port is not None
    return SEEN.setdefault(server.port, [])


async def node(*, has_file: bool = False, stall: bool = False) -> TestServer:
    """A stand-in node: it has the file, or not (404), or never answers."""
    asked: list[dict[str, str]] = []

    async def vod(request: web.Request) -> web.StreamResponse:
        asked.append(dict(request.headers))
        if stall:
            await asyncio.sleep(30)
        if not has_file:
            raise web.HTTPNotFound()
        return web.Response(
            body=BODY,
            content_type="video/mp4",
            headers={"Cache-Control": "public, max-age=31536000, immutable", "ETag": '"v1"'},
        )

    async def listing(request: web.Request) -> web.Response:
        asked.append(dict(request.headers))
        return web.json_response({"recordings": [{"id": "r1"}] if has_file else []})

    app = web.Application()
    app.router.add_get("/vod/x.mp4", vod)
    app.router.add_get("/list", listing)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    SEEN[server.port] = asked
    return server


@pytest.fixture
async def nodes() -> AsyncIterator[dict[str, TestServer]]:
    found = {
        "empty": await node(),
        "stalled": await node(stall=True),
        "holder": await node(has_file=True),
        "upstream": await node(has_file=True),
    }
    yield found
    for server in found.values():
        await server.close()


def url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def ask(elsewhere: Elsewhere, path: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
    """``path`` asked of a node whose handler is ``elsewhere.forward`` (404 if None)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return await elsewhere.forward(request) or web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    front = TestServer(app, host="127.0.0.1")
    await front.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            resp = await http.get(str(front.make_url(path)), headers=headers)
            await resp.read()
            return resp
    finally:
        await elsewhere.close()
        await front.close()


async def test_the_first_node_that_has_it_answers_streamed_through(
    nodes: dict[str, TestServer],
) -> None:
    mesh = [url(nodes[n]) for n in ("empty", "stalled", "holder")]
    elsewhere = Elsewhere(lambda: mesh, limits=ElsewhereLimits(timeout=0.5))
    resp = await ask(elsewhere, "/vod/x.mp4", {"Range": "bytes=0-"})
    assert resp.status == 200
    assert await resp.read() == BODY
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.headers["ETag"] == '"v1"'
    # Each node was asked with the hop count and the client's Range.
    asked = seen(nodes["holder"])[-1]
    assert asked[FORWARDED] == "1"
    assert asked["Range"] == "bytes=0-"
    assert elsewhere.metrics() == {"forwarded": 1, "missed": 0}


async def test_a_forwarded_request_goes_only_upstream(nodes: dict[str, TestServer]) -> None:
    """No circles: a node asked by another asks only its --upstream (a tree)."""
    mesh = [url(nodes["holder"])]
    elsewhere = Elsewhere(lambda: mesh, url(nodes["empty"]))
    resp = await ask(elsewhere, "/vod/x.mp4", {FORWARDED: "1"})
    assert resp.status == 404
    assert seen(nodes["holder"]) == []
    assert seen(nodes["empty"])[-1][FORWARDED] == "2"
    assert elsewhere.metrics()["missed"] == 1


@pytest.mark.parametrize("hops", [str(MAX_HOPS), "x", "99999"])
async def test_too_many_or_bad_hops_ask_nobody(nodes: dict[str, TestServer], hops: str) -> None:
    elsewhere = Elsewhere(lambda: [url(nodes["holder"])], url(nodes["upstream"]))
    resp = await ask(elsewhere, "/vod/x.mp4", {FORWARDED: hops})
    assert resp.status == 404
    assert seen(nodes["holder"]) == seen(nodes["upstream"]) == []


async def test_lists_are_gathered_from_every_node(nodes: dict[str, TestServer]) -> None:
    mesh = [url(nodes[n]) for n in ("empty", "stalled", "holder")]
    elsewhere = Elsewhere(lambda: mesh, limits=ElsewhereLimits(timeout=0.5))
    found: list[object] = []

    async def handler(request: web.Request) -> web.Response:
        found.extend(await elsewhere.gather(request, "recordings"))
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/list", handler)
    front = TestServer(app, host="127.0.0.1")
    await front.start_server()
    try:
        async with aiohttp.ClientSession() as http, http.get(str(front.make_url("/list"))):
            pass
    finally:
        await elsewhere.close()
        await front.close()
    assert found == [{"id": "r1"}]
