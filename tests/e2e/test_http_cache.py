"""LL-HLS and recordings through an ordinary HTTP cache: Debian's nginx with
``proxy_cache`` (docs/http-cache.md) in front of a node, real ffmpeg publishing.

Several LL-HLS viewers (blocking playlist reloads, then each new part) watch through the
cache: the stream decodes, their repeated requests are answered by the cache and the node
is asked for each part about once. A second broadcast on the channel never gets a part of
the first, and a finished recording's segments come from the cache."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from strom.server import StromServer
from tests.helpers import CHANNEL, MediaFile, make_media, publish_args, run_process
from tests.helpers.nginx import CachingProxy
from tests.helpers.watching import decode, wait_live, wait_recording

pytestmark = pytest.mark.e2e

PART = re.compile(r'#EXT-X-PART:[^\n]*URI="(([0-9a-f]+)/part(\d+)\.(\d+)\.m4s)"([^\n]*)')
MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)"')
HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="[0-9a-f]+/part(\d+)\.(\d+)\.m4s"')
VIEWERS = 3


@pytest.fixture(scope="module")
def five_seconds(tmp_path_factory: pytest.TempPathFactory) -> MediaFile:
    return make_media(tmp_path_factory.mktemp("cache") / "five.flv", seconds=5.0)


@dataclass
class Viewer:
    """An LL-HLS viewer as hls.js is one: blocking playlist reloads for the hinted part,
    each newly listed part fetched once, from the first independent part on."""

    base: str
    init: bytes = b""
    parts: list[bytes] = field(default_factory=list)
    uris: list[str] = field(default_factory=list)

    async def watch(self, http: aiohttp.ClientSession) -> None:
        playlist = f"{self.base}/live/{CHANNEL}/"
        while True:  # as a player does until the channel is live (a 404 lives a second)
            async with http.get(playlist + "index.m3u8") as resp:
                if resp.status == 200:
                    text = await resp.text()
                    break
            await asyncio.sleep(0.2)
        seen: set[str] = set()
        started = False
        while True:
            if not self.init and (found := MAP.search(text)):
                self.init = await _body(http, playlist + found[1]) or b""
            for uri, _token, _msn, _index, attributes in PART.findall(text):
                if uri in seen:
                    continue
                seen.add(uri)
                started = started or "INDEPENDENT=YES" in attributes
                if started:
                    data = await _body(http, playlist + uri)
                    if data is None:
                        return  # the broadcast ended and the node forgot it
                    self.uris.append(uri)
                    self.parts.append(data)
            hint = HINT.search(text)
            if "#EXT-X-ENDLIST" in text or hint is None:
                return
            query = f"?_HLS_msn={hint[1]}&_HLS_part={hint[2]}"
            data = await _body(http, playlist + "index.m3u8" + query)
            if data is None:
                return
            text = data.decode()


async def _body(http: aiohttp.ClientSession, url: str) -> bytes | None:
    """The answer's bytes; None for a 404 (the broadcast is over)."""
    async with http.get(url) as resp:
        assert "Set-Cookie" not in resp.headers
        assert "Vary" not in resp.headers
        if resp.status == 404:
            assert resp.headers["Cache-Control"] in ("no-store", "public, max-age=1")
            return None
        assert resp.status == 200, (url, resp.status, await resp.text())
        return await resp.read()


async def _text(http: aiohttp.ClientSession, url: str) -> str:
    data = await _body(http, url)
    assert data is not None, url
    return data.decode()


async def _plain_hls_viewer(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    """ffmpeg's HLS demuxer, started once the playlist lists a whole segment."""
    while True:
        async with http.get(url) as resp:
            if resp.status == 200 and "#EXTINF" in await resp.text():
                break
        await asyncio.sleep(0.1)
    return await decode(url)


async def _watch_broadcast(
    server: StromServer, proxy: CachingProxy, media: MediaFile, tmp: Path
) -> list[Viewer]:
    """Publish ``media`` once (the broadcast ends with it) while viewers watch through
    the cache, ffmpeg among them; the first viewer's parts must decode."""
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    try:
        await wait_live(server)
        viewers = [Viewer(proxy.base) for _ in range(VIEWERS)]
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(30):
                _, (ffmpeg_frames, ffmpeg_errors) = await asyncio.gather(
                    asyncio.gather(*(v.watch(http) for v in viewers)),
                    _plain_hls_viewer(http, f"{proxy.base}/live/{CHANNEL}/index.m3u8"),
                )
    finally:
        code, out = await publisher
    assert code == 0, out
    # A plain HLS client (whole segments, from a few back) plays through the cache too.
    assert ffmpeg_frames >= media.frames // 3, ffmpeg_errors
    assert ffmpeg_errors == "", ffmpeg_errors
    stream = tmp / "watched.mp4"
    stream.write_bytes(viewers[0].init + b"".join(viewers[0].parts))
    frames, errors = await decode(str(stream))
    assert frames >= media.frames // 2, errors
    return viewers


async def test_live_and_recorded_media_through_nginx(
    server: StromServer, tmp_path: Path, five_seconds: MediaFile
) -> None:
    async with CachingProxy(tmp_path, server.http_port) as proxy:
        first = await _watch_broadcast(server, proxy, five_seconds, tmp_path)
        log = proxy.log()
        # (A viewer asking for a part past the end gets a 404, never stored: not counted.)
        parts = [e for e in log if "/part" in e.uri and e.status == 200]
        asked = Counter(e.uri for e in parts)
        passed = Counter(e.uri for e in parts if e.upstream)
        hits = sum(e.cache == "HIT" for e in parts)
        assert len(asked) >= 8, asked
        # Several viewers asked for each part; the node was asked about once per part,
        # the cache answered the rest.
        assert sum(asked.values()) >= (VIEWERS - 0.5) * len(asked), asked
        assert sum(passed.values()) <= len(asked) + 2, passed
        assert hits + sum(passed.values()) == sum(asked.values())
        # Blocking reloads were collapsed too: the node saw far fewer than the viewers.
        blocking = [e for e in log if "_HLS_msn" in e.uri]
        assert sum(e.upstream for e in blocking) < len(blocking) / 2, Counter(
            e.cache for e in blocking
        )
        assert proxy.errors().count("[error]") == 0, proxy.errors()

        # A second broadcast on the channel: new media URLs, nothing of the first served.
        second = await _watch_broadcast(server, proxy, five_seconds, tmp_path)
        old_tokens = {uri.split("/")[0] for uri in first[0].uris}
        new_tokens = {uri.split("/")[0] for uri in second[0].uris}
        assert len(old_tokens) == len(new_tokens) == 1
        assert old_tokens != new_tokens
        # Every part, and every blocking reload, of the new broadcast was first asked of
        # the node (MISS): none had an answer of the old one waiting in the cache, fresh
        # (HIT) or stale (EXPIRED).
        first_asks: dict[str, str] = {}
        for e in proxy.log()[len(log) :]:
            if "/part" in e.uri or "_HLS_msn" in e.uri:
                first_asks.setdefault(e.uri, e.cache)
        assert len(first_asks) >= 16, first_asks
        assert set(first_asks.values()) == {"MISS"}, first_asks

        # The finished recording: its playlist and segments come from the cache.
        async with aiohttp.ClientSession() as http:
            recording = await wait_recording(http, server, finished=True)
            vod = f"{proxy.base}/vod/{CHANNEL}/{recording['id']}/"
            text = await _text(http, vod + "index.m3u8")
            assert "#EXT-X-ENDLIST" in text
            files = [line for line in text.splitlines() if line and not line.startswith("#")]
            files += MAP.findall(text)
            for _ in range(2):
                for name in files:
                    async with http.get(vod + name) as resp:
                        assert resp.status == 200
                        assert "immutable" in resp.headers["Cache-Control"]
                        await resp.read()
        prefix = f"/vod/{CHANNEL}/{recording['id']}/"
        vod_log = [e for e in proxy.log() if e.uri.startswith(prefix)]
        async with asyncio.timeout(10):  # nginx logs a request after its answer has gone
            while len(vod_log) < 2 * len(files):
                await asyncio.sleep(0.05)
                vod_log = [e for e in proxy.log() if e.uri.startswith(prefix)]
        for name in files:
            statuses = [e.cache for e in vod_log if e.uri.endswith("/" + name)]
            assert statuses == ["MISS", "HIT"], (name, statuses)
        frames, errors = await decode(vod + "index.m3u8")
        assert frames >= five_seconds.frames - 5, errors
