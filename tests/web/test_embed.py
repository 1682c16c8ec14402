"""The player on other sites: ``/embed/{channel}`` may be framed by anyone (and no other
page may), the channel page offers the iframe code, and oEmbed turns a channel link into
that iframe."""

from __future__ import annotations

import html
import re

import aiohttp

from strom.server import StromServer
from tests.helpers import CHANNEL


async def test_the_embed_page_may_be_framed_and_nothing_else(server: StromServer) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/embed/{CHANNEL}") as resp:
            assert resp.status == 200
            assert "frame-ancestors *" in resp.headers["Content-Security-Policy"]
            page = await resp.text()
            assert f'data-ws-path="/live/{CHANNEL}/ws"' in page
            assert "site-header" not in page  # the player alone
        for path in ("/", f"/{CHANNEL}", f"/live/{CHANNEL}", "/login"):
            async with http.get(base + path) as resp:
                assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], path
        async with http.get(f"{base}/embed/nobody-here") as resp:
            assert resp.status == 404


async def test_the_channel_page_offers_the_iframe_code(server: StromServer) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http, http.get(f"{base}/{CHANNEL}") as resp:
        page = await resp.text()
    found = re.search(r'data-role="embed-code">([^<]*)</textarea>', page)
    assert found is not None
    code = html.unescape(found.group(1))
    assert f'<iframe src="{base}/embed/{CHANNEL}"' in code
    assert 'rel="alternate" type="application/json+oembed"' in page


async def test_oembed_for_a_channel_link(server: StromServer) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        for link in (f"{base}/{CHANNEL}", f"{base}/live/{CHANNEL}"):
            url = f"{base}/oembed?url={link}&maxwidth=480"
            async with http.get(url, headers={"Origin": "https://blog.example"}) as resp:
                assert resp.status == 200
                assert resp.headers["Access-Control-Allow-Origin"] == "*"
                found = await resp.json()
            assert found["version"] == "1.0"
            assert found["type"] == "video"
            assert (found["width"], found["height"]) == (480, 270)
            assert f'src="{base}/embed/{CHANNEL}"' in found["html"]
            assert 'width="480" height="270"' in found["html"]
            assert found["author_url"] == f"{base}/{CHANNEL}"
        for bad, status in (
            (f"{base}/nobody-here", 404),
            (f"{base}/login", 404),
            (f"{base}/{CHANNEL}&maxwidth=huge", 400),
            (f"{base}/{CHANNEL}&format=xml", 501),
        ):
            async with http.get(f"{base}/oembed?url={bad}") as resp:
                assert resp.status == status, bad
                assert "error" in await resp.json()
