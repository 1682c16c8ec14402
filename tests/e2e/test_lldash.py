"""LL-DASH read by ffmpeg's tools: a channel published by real ffmpeg over RTMP, its
``index.mpd`` read by ffprobe (video and audio found) and decoded by ffmpeg (both
tracks, the segment being written fetched as it grows); and that segment going out as
it grows through the nginx cache configuration docs/http-cache.md gives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from pathlib import Path

import aiohttp
import pytest

from strom.server import StromServer
from tests.helpers import CHANNEL, make_media, need_tool, publish_args, run_process
from tests.helpers.nginx import CachingProxy
from tests.helpers.watching import wait_live

pytestmark = pytest.mark.e2e


async def test_ffprobe_and_ffmpeg_read_the_live_mpd(server: StromServer, media_dir: Path) -> None:
    media = make_media(media_dir / "lldash.flv", seconds=8.0, gop=30)
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    try:
        await wait_live(server)
        mpd = f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}/index.mpd"
        code, out = await run_process(
            need_tool("ffprobe"), "-v", "error", "-of", "json",
            "-show_entries", "stream=codec_type,codec_name,width,height", mpd,
            timeout=30,
        )  # fmt: skip
        assert code == 0, out
        streams = {s["codec_type"]: s for s in json.loads(out)["streams"]}
        assert streams["video"]["codec_name"] == "h264"
        assert (streams["video"]["width"], streams["video"]["height"]) == (
            media.width,
            media.height,
        )
        assert streams["audio"]["codec_name"] == "aac"
        # ffmpeg decodes both tracks as they come (one Representation each): three
        # seconds of video frames and of audio, each decoded (framemd5 hashes the
        # decoded frames, a line per frame with its stream's index).
        code, out = await run_process(
            need_tool("ffmpeg"), "-v", "error", "-i", mpd,
            "-map", "0:v", "-map", "0:a", "-t", "3", "-f", "framemd5", "-",
            timeout=30,
        )  # fmt: skip
        assert code == 0, out
        lines = [line.split(",") for line in out.splitlines() if not line.startswith("#")]
        video = [line for line in lines if line[0].strip() == "0"]
        audio = [line for line in lines if line[0].strip() == "1"]
        assert len(video) >= 80, out[-2000:]  # 30 fps
        assert len(audio) >= 120, out[-2000:]  # 1024 samples at 44.1 or 48 kHz: 43+ a second
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher


async def test_the_segment_being_written_streams_through_nginx(
    server: StromServer, media_dir: Path, tmp_path: Path
) -> None:
    media = make_media(media_dir / "lldash-nginx.flv", seconds=8.0, gop=30)
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    try:
        await wait_live(server)
        async with (
            CachingProxy(tmp_path, server.http_port) as proxy,
            aiohttp.ClientSession() as http,
        ):
            async with http.get(f"{proxy.base}/live/{CHANNEL}/index.mpd") as resp:
                assert resp.status == 200
                mpd = await resp.text()
            # The last segment the MPD lists is being written; the one after it is asked
            # for before it begins (so the whole of it is seen growing).
            template = re.search(
                r'media="(\w+)/t\$RepresentationID\$-seg\$Number\$\.m4s" startNumber="(\d+)"',
                mpd,
            )
            assert template is not None
            video = mpd[: mpd.index('contentType="audio"')]  # the first AdaptationSet's
            repeats = sum(int(r) for r in re.findall(r' r="(\d+)"', video))
            last = int(template[2]) + video.count("<S ") + repeats - 1
            url = f"{proxy.base}/live/{CHANNEL}/{template[1]}/t1-seg{last + 1}.m4s"
            started = time.monotonic()
            async with http.get(url) as resp:
                assert resp.status == 200
                assert resp.headers["Cache-Control"] == "no-store"
                arrivals, body = [], b""
                written: list[bool] = []  # whether the node had completed it, per arrival
                rendition = server.site.hls.rendition(CHANNEL)
                assert rendition is not None
                async for data in resp.content.iter_any():
                    arrivals.append(time.monotonic() - started)
                    found = rendition.stream.segment_so_far(last + 1)
                    written.append(found is not None and found[1])
                    body += data
            # Chunk by chunk as the publisher sends them, not the whole segment at its end:
            # its first bytes came through nginx while the node was still writing it (judged
            # by the node's own state, not by the time between arrivals, which a loaded
            # machine's bursty publisher squeezes).
            assert len(arrivals) > 5
            assert not written[0], arrivals
            async with http.get(url) as resp:  # complete now: the ordinary, cached answer
                assert "immutable" in resp.headers["Cache-Control"]
                assert await resp.read() == body
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
