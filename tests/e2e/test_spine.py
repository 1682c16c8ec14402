"""End to end with real peers on loopback: real ffmpeg publishes over RTMP; the WebSocket
output, the LL-HLS playlist and RTMP play are decoded by real ffmpeg."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import aiohttp
import pytest

from strom.server import StromServer
from tests.helpers import CHANNEL, MediaFile, make_media, need_tool, publish_args, run_process
from tests.helpers.watching import collect_ws, decode, wait_live

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("media_fixture", ["av_media", "video_only_media"])
async def test_websocket_output_decodes_every_frame(
    server: StromServer, tmp_path: Path, media_fixture: str, request: pytest.FixtureRequest
) -> None:
    media: MediaFile = request.getfixturevalue(media_fixture)
    url = f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}/ws"
    out = tmp_path / "ws.mp4"
    # The viewer opens the page before the streamer goes live: it must start by itself.
    viewer = asyncio.create_task(collect_ws(url, out))
    await asyncio.sleep(0.3)
    code, log = await run_process(*publish_args(media, server.rtmp_port))
    assert code == 0, log
    texts = await viewer

    assert texts[0] == {"type": "offline"}
    assert texts[1]["type"] == "init"
    assert texts[1]["mime"].startswith('video/mp4; codecs="avc1.64')
    assert ("mp4a.40.2" in texts[1]["mime"]) == media.audio
    assert texts[-2] == {"type": "end"}
    assert texts[-1] == {"type": "closed", "code": "1000"}

    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames == media.frames
    code, probe = await run_process(
        need_tool("ffprobe"), "-v", "error", "-show_entries", "stream=codec_type,width,height",
        "-of", "json", str(out),
    )  # fmt: skip
    streams = json.loads(probe)["streams"]
    video = next(s for s in streams if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (media.width, media.height)
    assert any(s["codec_type"] == "audio" for s in streams) == media.audio


async def test_late_joiner_starts_at_a_keyframe(
    server: StromServer, tmp_path: Path, av_media: MediaFile
) -> None:
    publisher = asyncio.create_task(run_process(*publish_args(av_media, server.rtmp_port)))
    await wait_live(server)
    await asyncio.sleep(1.5)  # join mid-GOP
    out = tmp_path / "late.mp4"
    texts = await collect_ws(f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}/ws", out)
    code, log = await publisher
    assert code == 0, log
    assert texts[0]["type"] == "init"
    frames, errors = await decode(str(out))
    assert errors == ""
    # It joined ~1.5 s in and still got the GOP since the last keyframe, all decodable.
    assert 0 < frames < av_media.frames


async def test_llhls_plays_in_ffmpeg(server: StromServer, tmp_path: Path, media_dir: Path) -> None:
    media = make_media(media_dir / "hls.flv", seconds=8.0, gop=60)
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    await wait_live(server)
    base = f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}"
    # Media names sit in the broadcast's own directory: ``{rendition}/part3.1.m4s``.
    hint = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([0-9a-f]+/)part(\d+)\.(\d+)\.m4s"')
    http = aiohttp.ClientSession()
    try:
        # Blocks until the first segment is complete, then has the tags LL-HLS clients need.
        resp = await http.get(f"{base}/index.m3u8?_HLS_msn=1")
        assert resp.status == 200
        assert resp.content_type == "application/vnd.apple.mpegurl"
        playlist = await resp.text()
        for tag in (
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES",
            "PART-HOLD-BACK=",
            "#EXT-X-PART-INF:PART-TARGET=",
            "#EXT-X-PART:",
            "#EXT-X-MAP:URI=",
            "#EXTINF:",
        ):
            assert tag in playlist, tag
        found = hint.search(playlist)
        assert found is not None
        rendition, msn, part = found.groups()
        # A blocking reload for the hinted part returns once that part is listed...
        resp = await http.get(f"{base}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}")
        assert resp.status == 200
        assert f'URI="{rendition}part{msn}.{part}.m4s"' in await resp.text()
        # ...and a request for the next hinted part blocks until its bytes exist.
        found = hint.search(await resp.text())
        assert found is not None
        resp = await http.get(f"{base}/{found[1]}part{found[2]}.{found[3]}.m4s")
        assert resp.status == 200
        assert (await resp.read())[4:8] == b"moof"
        resp = await http.get(f"{base}/index.m3u8?_HLS_msn={int(msn) + 50}")
        assert resp.status == 400
    finally:
        await http.close()

    frames, errors = await decode(f"{base}/index.m3u8")
    code, log = await publisher
    assert code == 0, log
    assert errors == ""
    # A live HLS client starts near the live edge and reads to EXT-X-ENDLIST.
    assert frames > 60


async def test_rtmp_play_in_ffmpeg(server: StromServer, av_media: MediaFile) -> None:
    player = asyncio.create_task(decode(f"rtmp://127.0.0.1:{server.rtmp_port}/live/{CHANNEL}"))
    await asyncio.sleep(0.5)
    code, log = await run_process(*publish_args(av_media, server.rtmp_port))
    assert code == 0, log
    frames, errors = await player
    assert errors == ""
    # Joined before the broadcast started: the player gets it from the first keyframe.
    assert frames == av_media.frames


async def test_unknown_key_is_refused(server: StromServer, av_media: MediaFile) -> None:
    code, _ = await run_process(*publish_args(av_media, server.rtmp_port, key="wrong-key"))
    assert code != 0
    assert server.registry.live() == []


async def test_second_publisher_is_refused_first_keeps_streaming(
    server: StromServer, tmp_path: Path, av_media: MediaFile
) -> None:
    first = asyncio.create_task(run_process(*publish_args(av_media, server.rtmp_port)))
    await wait_live(server)
    code, log = await run_process(*publish_args(av_media, server.rtmp_port))
    assert code != 0
    channel = server.registry.get(CHANNEL)
    assert channel is not None
    assert channel.live
    code, log = await first
    assert code == 0, log
