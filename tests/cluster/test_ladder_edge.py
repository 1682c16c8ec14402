"""The quality ladder across nodes: node A ingests with its ladder on, node E (an edge of
the same site, Redis) pulls on demand. E's master playlist and MPD list the rendition live
on A, and E pulls it when a player asks: ffmpeg decodes its pictures from E."""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from pathlib import Path

import aiohttp
import pytest

from strom.media.dash.mpd import NAMESPACE
from tests.helpers import CHANNEL, make_media, need_tool, publish_args, run_process
from tests.helpers.cluster import drop_prefix, eventually, need_redis, redis_prefix
from tests.helpers.nodes import Node, all_running

pytestmark = pytest.mark.e2e

RUNG = "180p"


async def test_an_edge_lists_and_pulls_the_renditions_live_at_the_origin(
    tmp_path: Path, media_dir: Path
) -> None:
    media = make_media(media_dir / "ladder-edge.flv", fps=15, gop=15, seconds=4.0)
    redis_url = await need_redis()
    prefix = redis_prefix()
    common = (
        "--redis-url", redis_url, "--redis-prefix", prefix, "--cluster-heartbeat", "0.5",
        "--ladder-renditions", f"{RUNG}=100k",
    )  # fmt: skip
    a = Node(
        tmp_path / "a", *common, "--ladder", "all", "--ladder-preset", "ultrafast",
        "--ladder-max-lag", "3",
    )  # fmt: skip
    e = Node(tmp_path / "e", *common, "--role", "edge", "--pull-linger", "2")
    try:
        async with all_running(a, e), aiohttp.ClientSession() as http:
            publisher = asyncio.create_task(
                run_process(*publish_args(media, a.rtmp_port, loop=True), timeout=90)
            )
            try:
                master = f"{e.base}/live/{CHANNEL}/master.m3u8"

                async def lists_the_rendition() -> str | None:
                    async with http.get(master) as resp:
                        text = await resp.text()
                    return text if f"../{CHANNEL}~{RUNG}/index.m3u8" in text else None

                # The edge pulls the rendition a player may choose, as it pulls the source.
                text = await eventually(lists_the_rendition, 40, "E's master lists 180p")
                assert "RESOLUTION=320x180" in text
                assert text.count("#EXT-X-STREAM-INF") == 2
                # The MPD on E lists it too, as a second video Representation.
                ns = {"d": NAMESPACE}
                async with http.get(f"{e.base}/live/{CHANNEL}/index.mpd") as resp:
                    assert resp.status == 200
                    mpd = ET.fromstring(await resp.text())
                video = mpd.findall(".//d:AdaptationSet", ns)[0]
                heights = [r.get("height") for r in video.findall("d:Representation", ns)]
                assert heights == ["360", "180"]
                # A player plays it from E (once a segment is whole: ffmpeg reads no parts):
                # ffmpeg decodes its pictures at their size.
                rendition = f"{e.base}/live/{CHANNEL}~{RUNG}/index.m3u8"

                async def has_a_segment() -> bool:
                    async with http.get(rendition) as resp:
                        return "#EXTINF" in await resp.text()

                await eventually(has_a_segment, 20, "a whole segment of 180p on E")
                code, out = await run_process(
                    need_tool("ffmpeg"), "-v", "error", "-i", rendition,
                    "-map", "0:v", "-frames:v", "8", "-f", "framemd5", "-",
                    timeout=30,
                )  # fmt: skip
                assert code == 0, out
                assert "#dimensions 0: 320x180" in out
                assert sum(not r.startswith("#") for r in out.splitlines()) >= 8, out[-1000:]
                pulled = (await e.metrics())["pulls"]["channels"]
                assert pulled[f"{CHANNEL}~{RUNG}"] == a.base, pulled
            finally:
                publisher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await publisher
    finally:
        await drop_prefix(prefix)
