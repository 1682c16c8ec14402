"""The lean path of LL-HLS (``strom.web.lean``): what it answers and what it leaves to
the application. Its answers' headers are checked with the rest of the media answers in
``test_http_caching`` and ``test_cors``; here, the requests it must not take."""

from __future__ import annotations

import aiohttp

from strom.server import StromServer
from tests.helpers import CHANNEL


async def test_requests_the_lean_path_does_not_take_go_to_the_application(
    server: StromServer,
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    lean = server.node.lean
    async with aiohttp.ClientSession() as http:
        # GETs of a playlist, an MPD and a media file: the lean path's (offline: 404).
        for path in ("index.m3u8", "index.mpd", "0123456789/part0.0.m4s"):
            before = lean.answered
            async with http.get(f"{base}/live/{CHANNEL}/{path}") as resp:
                assert resp.status == 404, path
                assert resp.headers["Access-Control-Allow-Origin"] == "*", path
                assert resp.headers["Content-Type"].startswith("application/json"), path
            assert lean.answered == before + 1, path
        answered = lean.answered
        # HEAD of a playlist: the application's route answers as GET would (offline).
        async with http.head(f"{base}/live/{CHANNEL}/index.m3u8") as resp:
            assert resp.status == 404
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
        # The WebSocket path, a page and a name that is no channel: the router's answers.
        async with http.get(f"{base}/live/{CHANNEL}/ws") as resp:
            assert resp.status in (400, 404, 426)  # not a WebSocket upgrade
        async with http.get(f"{base}/live/{CHANNEL}") as resp:
            assert resp.status == 200
            assert "text/html" in resp.headers["Content-Type"]
        async with http.get(f"{base}/live/{CHANNEL}/other.txt") as resp:
            assert resp.status == 404
        async with http.get(f"{base}/live/no%20such/index.m3u8") as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"].startswith("application/json")
        # POST to a media URL: the router's 405, not a playlist.
        async with http.post(f"{base}/live/{CHANNEL}/index.m3u8") as resp:
            assert resp.status in (403, 405)
    assert lean.answered == answered  # none of those went the lean way


async def test_nginx_rtmp_style_playlist_urls_lead_to_the_channels_playlist(
    server: StromServer,
) -> None:
    """The apps Strom grew from play nginx-rtmp's HLS addresses: ``/hls/{name}.m3u8``
    and ``/live/{name}.m3u8`` redirect (permanently, for any origin) to the playlist."""
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        for path in (f"/hls/{CHANNEL}.m3u8", f"/live/{CHANNEL}.m3u8"):
            async with http.get(base + path, allow_redirects=False) as resp:
                assert resp.status == 301, path
                assert resp.headers["Location"] == f"/live/{CHANNEL}/index.m3u8"
                assert resp.headers["Access-Control-Allow-Origin"] == "*"
                assert "Set-Cookie" not in resp.headers
            async with http.get(base + path) as resp:  # followed: offline, as the playlist
                assert resp.status == 404
                assert str(resp.url).endswith(f"/live/{CHANNEL}/index.m3u8")
        async with http.get(f"{base}/hls/no%20such.m3u8", allow_redirects=False) as resp:
            assert resp.status == 404


async def test_the_watch_page_of_no_channel_is_a_404(server: StromServer) -> None:
    """``/live/{name}`` of a name that is no account's, static channel's or open room's
    says there is no such channel (it used to promise the stream would start there)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{server.http_port}/live/nobody") as resp:
            assert resp.status == 404
            assert "There is no channel called nobody." in await resp.text()
        async with http.get(f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}") as resp:
            assert resp.status == 200  # a static channel, offline: its page waits for it
