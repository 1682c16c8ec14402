"""Cross-origin reads (``strom.web.cors``): what is public says ``*`` to any origin,
errors included; a preflight is answered; accounts, pages and chat stay same-origin."""

from __future__ import annotations

import aiohttp

from strom.server import StromServer
from tests.helpers import CHANNEL

ORIGIN = {"Origin": "https://another.example"}


async def test_public_reads_and_their_refusals_allow_any_origin(server: StromServer) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        for path, status in (
            ("/api/v1/streams", 200),
            (f"/live/{CHANNEL}/index.m3u8", 404),  # offline: the player can read why
            ("/vod/alice/20000101-000000/index.m3u8", 404),
            ("/thumbnails/alice.jpg", 404),
        ):
            async with http.get(base + path, headers=ORIGIN) as resp:
                assert resp.status == status, path
                assert resp.headers["Access-Control-Allow-Origin"] == "*", path
                assert "Content-Range" in resp.headers["Access-Control-Expose-Headers"]
        for path in ("/api/v1/me", "/", "/login"):
            async with http.get(base + path, headers=ORIGIN) as resp:
                assert "Access-Control-Allow-Origin" not in resp.headers, path


async def test_a_preflight_of_a_public_path_is_answered(server: StromServer) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    ask = {**ORIGIN, "Access-Control-Request-Method": "GET",
           "Access-Control-Request-Headers": "range"}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.options(f"{base}/live/{CHANNEL}/index.m3u8", headers=ask) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "GET" in resp.headers["Access-Control-Allow-Methods"]
            assert "Range" in resp.headers["Access-Control-Allow-Headers"]
            assert int(resp.headers["Access-Control-Max-Age"]) > 0
        async with http.options(f"{base}/api/v1/me", headers=ask) as resp:
            assert resp.status == 405  # not for other origins
            assert "Access-Control-Allow-Origin" not in resp.headers
