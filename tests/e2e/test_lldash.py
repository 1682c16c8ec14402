"""LL-DASH read by ffmpeg's tools: a channel published by real ffmpeg over RTMP, its
``index.mpd`` read by ffprobe (video and audio found) and by ffmpeg (segments fetched,
the one being written as it grows)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest

from strom.server import StromServer
from tests.helpers import CHANNEL, make_media, need_tool, publish_args, run_process
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
        # ffmpeg's DASH demuxer gives every packet of a Representation one stream index,
        # so it cannot tell a muxed Representation's audio from its video (docs/dash.md):
        # what is checked here is that it reads the live presentation, packet by packet.
        code, out = await run_process(
            need_tool("ffmpeg"), "-v", "error", "-i", mpd,
            "-map", "0:v", "-c", "copy", "-frames:v", "90", "-f", "null", "-",
            timeout=30,
        )  # fmt: skip
        assert code == 0, out
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
