"""End to end with RTMP implementations other than ffmpeg's, against the real server:
librtmp (the code OBS's RTMP output derives from) as ``rtmpdump`` playing, and
GStreamer's ``rtmpsink`` (librtmp) and ``rtmp2sink`` (GStreamer's own) publishing."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from strom.server import StromServer
from tests.helpers import CHANNEL, STREAM_KEY, MediaFile, need_tool, publish_args, run_process
from tests.helpers.watching import collect_ws, decode

pytestmark = pytest.mark.e2e

#: rtmpdump's ``--swfhash``/``--swfsize``: any value makes librtmp do the Flash Player 9
#: digest handshake (scheme 0; it does so only for SWF verification or RTMPE), so our
#: server's digest path meets a real librtmp too. Strom never asks for the SWF check.
#: ``--debug`` makes librtmp log whether it verified our S1 digest and S2 signature.
SWF_VERIFICATION = ["--swfhash", "00" * 32, "--swfsize", "1", "--debug"]


@pytest.mark.parametrize("handshake", ["plain", "digest"])
async def test_rtmpdump_plays_what_ffmpeg_publishes(
    server: StromServer, tmp_path: Path, av_media: MediaFile, handshake: str
) -> None:
    rtmpdump = need_tool("rtmpdump")
    out = tmp_path / "rtmpdump.flv"
    args = [rtmpdump, "--live", "--timeout", "10", "-o", str(out)]
    args += SWF_VERIFICATION if handshake == "digest" else []
    url = f"rtmp://127.0.0.1:{server.rtmp_port}/live/{CHANNEL}"
    player = asyncio.create_task(run_process(*args, "-r", url, timeout=30))
    await asyncio.sleep(0.5)  # the player waits for the broadcast to start
    code, log = await run_process(*publish_args(av_media, server.rtmp_port))
    assert code == 0, log
    code, log = await player
    # librtmp stops at NetStream.Play.UnpublishNotify and reports the download complete.
    assert code == 0, log
    assert "Download complete" in log, log
    if handshake == "digest":
        assert "HandShake: Genuine Adobe Flash Media Server" in log
    frames, errors = await decode(str(out))
    assert errors == ""
    # Joined before the broadcast started: every frame from the first keyframe on.
    assert frames == av_media.frames


GST_ELEMENTS = (
    "videotestsrc",
    "audiotestsrc",
    "x264enc",
    "h264parse",
    "voaacenc",
    "aacparse",
    "flvmux",
)
GST_FRAMES = 60


def need_gst_elements(*names: str) -> str:
    """gst-launch-1.0, if it and the GStreamer elements ``names`` are installed.

    Like :func:`need_tool`: a skip locally, a failure in CI (scripts/bootstrap test
    installs the GStreamer plugin packages)."""
    inspect = need_tool("gst-inspect-1.0")
    launch = need_tool("gst-launch-1.0")
    missing = [
        n
        for n in names
        if subprocess.run([inspect, n], check=False, capture_output=True).returncode
    ]
    if missing:
        message = f"GStreamer elements {', '.join(missing)} not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; scripts/bootstrap test installs them")
        pytest.skip(f"{message} (run scripts/bootstrap test)")
    return launch


def gst_publish_args(launch: str, sink: str, url: str) -> list[str]:
    """2 s of 320x180 30 fps H.264 High with B-frames + AAC, paced in real time like OBS."""
    pipeline = (
        f"flvmux name=m streamable=true ! {sink} location={url} "
        f"videotestsrc is-live=true num-buffers={GST_FRAMES} "
        "! video/x-raw,width=320,height=180,framerate=30/1 "
        "! x264enc bframes=2 key-int-max=30 bitrate=300 speed-preset=veryfast "
        "! video/x-h264,profile=high ! h264parse ! queue ! m. "
        "audiotestsrc is-live=true num-buffers=60 samplesperbuffer=1470 "
        "! audio/x-raw,rate=44100,channels=1 ! voaacenc ! aacparse ! queue ! m."
    )
    return [launch, "-q", *pipeline.split()]


@pytest.mark.parametrize("sink", ["rtmpsink", "rtmp2sink"])
async def test_gstreamer_publishes_and_the_websocket_output_decodes(
    server: StromServer, tmp_path: Path, sink: str
) -> None:
    launch = need_gst_elements(sink, *GST_ELEMENTS)
    ws_url = f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}/ws"
    out = tmp_path / "ws.mp4"
    viewer = asyncio.create_task(collect_ws(ws_url, out))
    await asyncio.sleep(0.3)
    rtmp_url = f"rtmp://127.0.0.1:{server.rtmp_port}/live/{STREAM_KEY}"
    code, log = await run_process(*gst_publish_args(launch, sink, rtmp_url), timeout=30)
    assert code == 0, log
    texts = await viewer

    assert texts[0] == {"type": "offline"}
    assert texts[1]["type"] == "init"
    assert texts[1]["mime"] == 'video/mp4; codecs="avc1.64000d,mp4a.40.2"'
    assert texts[-2] == {"type": "end"}
    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames == GST_FRAMES
