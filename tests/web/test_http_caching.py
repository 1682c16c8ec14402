"""What an HTTP cache in front of a node is told about each media answer (Cache-Control,
ETag, no cookie, no Vary): live playlists, blocking reloads, parts, segments, init
segments, refusals, an offline channel, recordings and thumbnails. The answers of a real
node fed real media through its hub; docs/http-cache.md says why each lifetime."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from strom.record import storage
from strom.server import StromServer
from tests.helpers import CHANNEL, MediaFile
from tests.helpers.hub import feed, read_flv
from tests.helpers.watching import base

FOREVER = "public, max-age=31536000, immutable"


async def get(http: aiohttp.ClientSession, url: str, **headers: str) -> aiohttp.ClientResponse:
    async with http.get(url, headers=headers) as resp:
        await resp.read()
        # A cache stores no answer that sets a cookie, and each Vary header splits it.
        assert "Set-Cookie" not in resp.headers, url
        assert "Vary" not in resp.headers, url
        return resp


async def finished_recording(server: StromServer) -> str:
    async with asyncio.timeout(10):
        while True:
            found = storage.list_recordings(server.recorder.root, CHANNEL)
            if found and found[0].finished:
                return found[0].id
            await asyncio.sleep(0.05)


async def recording_in_progress(server: StromServer) -> tuple[str, int]:
    """The live recording's id, once it wrote all it was given (two segments listed, the
    last one open until the broadcast ends, the writer's queue empty and the listing the
    same twice in a row), and the segment it writes."""
    seen: tuple[str, tuple[int, ...], int] | None = None
    async with asyncio.timeout(10):
        while True:
            await asyncio.sleep(0.1)
            found = storage.list_recordings(server.recorder.root, CHANNEL)
            writing = server.recorder.recording_of(CHANNEL)
            if not found or len(found[0].segments) < 2 or writing is None or writing.pending:
                continue
            info = found[0]
            assert not info.finished
            files = (info.path / storage.SEGMENTS).glob("*.m4s")
            now = (info.id, tuple(s.seq for s in info.segments), max(int(p.stem) for p in files))
            if now == seen:
                assert now[2] not in now[1]
                return now[0], now[2]
            seen = now


async def test_each_media_answer_says_how_long_it_may_be_cached(
    server: StromServer, av_media: MediaFile
) -> None:
    live = f"{base(server)}/live/{CHANNEL}/"
    async with aiohttp.ClientSession() as http:
        offline = await get(http, live + "index.m3u8")
        assert offline.status == 404
        assert offline.headers["Cache-Control"] == "public, max-age=1"

        channel = server.registry.open(CHANNEL)
        channel.claim(publisher := object())  # type: ignore[arg-type]
        items = read_flv(av_media.path)
        feed(channel, items[:20])
        async with asyncio.timeout(10):  # the recorder starts with the broadcast
            while not storage.list_recordings(server.recorder.root, CHANNEL):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        feed(channel, items[20:])

        plain = await get(http, live + "index.m3u8")
        assert plain.status == 200
        assert plain.headers["Cache-Control"] == "no-cache"
        etag = plain.headers["ETag"]
        again = await get(http, live + "index.m3u8", **{"If-None-Match": etag})
        assert again.status == 304
        assert again.headers["ETag"] == etag

        async with http.get(live + "index.m3u8") as resp:
            text = await resp.text()
        last_part = re.findall(r"#EXT-X-PART:.*URI=\"([0-9a-f]+)/part(\d+)\.(\d+)\.m4s\"", text)[-1]
        token, msn, index = last_part
        blocking = await get(http, live + f"index.m3u8?_HLS_msn={msn}&_HLS_part={index}")
        assert blocking.status == 200
        assert blocking.headers["Cache-Control"] == "public, max-age=1"

        segment = re.findall(rf"^{token}/seg\d+\.m4s$", text, re.M)[0]
        init = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text)[0]
        for name in (init, segment, f"{token}/part{msn}.{index}.m4s"):
            media = await get(http, live + name)
            assert media.status == 200, name
            assert media.headers["Cache-Control"] == FOREVER, name

        # Refusals are never stored: a wrong rendition, a part far ahead, a bad query.
        for url in (
            live + "0123456789/" + segment.split("/")[1],
            live + f"{token}/part99999.0.m4s",
            live + "index.m3u8?_HLS_msn=x",
            live + "index.m3u8?_HLS_msn=99999",
            live + f"{token}/nothing.txt",
        ):
            refused = await get(http, url)
            assert refused.status in (400, 404), url
            assert refused.headers["Cache-Control"] == "no-store", url

        # The recording of the live broadcast: its playlist grows; the segment being
        # written is not served (a cache would keep the half file for good).
        growing, written = await recording_in_progress(server)
        vod = f"{base(server)}/vod/{CHANNEL}/{growing}/"
        playlist = await get(http, vod + "index.m3u8")
        assert playlist.headers["Cache-Control"] == "public, max-age=1"
        unfinished = await get(http, vod + f"segments/{written}.m4s")
        assert unfinished.status == 404
        assert unfinished.headers["Cache-Control"] == "no-store"

        channel.release(publisher)  # type: ignore[arg-type]
        recording = await finished_recording(server)
        vod = f"{base(server)}/vod/{CHANNEL}/{recording}/"
        playlist = await get(http, vod + "index.m3u8")
        assert playlist.headers["Cache-Control"] == "public, max-age=3600"
        async with http.get(vod + "index.m3u8") as resp:
            text = await resp.text()
        files = [line for line in text.splitlines() if line and not line.startswith("#")]
        files += re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text)
        for name in files:
            media = await get(http, vod + name)
            assert media.status == 200, name
            assert media.headers["Cache-Control"] == FOREVER, name
            assert "ETag" in media.headers
            assert "Last-Modified" in media.headers
        download = await get(http, f"{base(server)}/vod/{CHANNEL}/{recording}.mp4")
        assert download.status == 200
        assert download.headers["Cache-Control"] == "public, max-age=86400"
        missing = await get(http, vod + "segments/999.m4s")
        assert missing.status == 404
        assert missing.headers["Cache-Control"] == "no-store"
