"""Reconnect grace: a publisher whose connection drops (no unpublish) can come back within
the grace period and the same broadcast goes on; after it, the broadcast ends."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from strom.live.channel import ChannelState
from strom.server import StromServer
from tests.helpers import (
    CHANNEL,
    MediaFile,
    make_media,
    make_settings,
    need_tool,
    publish_args,
    run_process,
)
from tests.helpers.watching import Watcher, decode, wait_live

pytestmark = pytest.mark.e2e


async def start_publisher(media: MediaFile, port: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *publish_args(media, port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)  # no FCUnpublish, no deleteStream: the TCP link just drops
    await proc.wait()


async def test_publisher_drop_within_grace_resumes_the_same_broadcast(
    server: StromServer, tmp_path: Path, media_dir: Path
) -> None:
    need_tool("ffmpeg")
    media = make_media(media_dir / "grace.flv", seconds=6.0, size="320x180")
    watcher = Watcher(f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}/ws", tmp_path / "o.mp4")
    task = asyncio.create_task(watcher.run())
    first = await start_publisher(media, server.rtmp_port)
    await wait_live(server)
    channel = server.registry.get(CHANNEL)
    assert channel is not None
    broadcast = channel.broadcast_id
    # An LL-HLS viewer too (ffmpeg's HLS reader: it reloads the live playlist and reads
    # its segments until EXT-X-ENDLIST), once the playlist lists a segment.
    await asyncio.sleep(2.5)
    base = f"http://127.0.0.1:{server.http_port}"
    hls = asyncio.create_task(decode(f"{base}/live/{CHANNEL}/index.m3u8"))
    await asyncio.sleep(0.5)
    await kill(first)
    for _ in range(50):
        if channel.state is ChannelState.RECONNECTING:
            break
        await asyncio.sleep(0.1)
    assert channel.state is ChannelState.RECONNECTING  # not ended: waiting for the streamer
    await asyncio.sleep(1.0)
    second = await start_publisher(media, server.rtmp_port)
    assert await second.wait() == 0
    async with asyncio.timeout(15):
        await task
    # One broadcast: the viewer was told of the stall, then of the resumption, and saw
    # media on both sides of it, on one timeline that decodes without an error.
    assert channel.broadcast_id == broadcast
    assert watcher.texts[:3] == ["offline", "init", "reconnecting"]
    assert "resumed" in watcher.texts
    assert watcher.texts[-1] == "end"
    phases = watcher.chunks_by_phase
    assert phases[1] > 30  # before the drop
    assert phases[-1] > 30  # after the resumption
    frames, errors = await decode(str(watcher.out))
    assert errors == ""
    assert frames > media.frames
    # The HLS viewer went on across the drop without reloading: frames from before the
    # drop and from the second publisher, then the end.
    async with asyncio.timeout(30):
        hls_frames, hls_errors = await hls
    assert hls_errors == ""
    assert hls_frames > media.frames
    # One broadcast, one recording: both publishers' media in it.
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(10):
            while True:
                async with http.get(f"{base}/api/v1/channels/{CHANNEL}/recordings") as resp:
                    found = (await resp.json())["recordings"]
                if found and found[0]["status"] == "finished":
                    break
                await asyncio.sleep(0.1)
    assert len(found) == 1
    assert found[0]["duration"] > media.frames / 30 + 2
    # The drop-out (over a second with no publisher) is not in the recording: it lasts
    # as long as the frames the viewer got, back to back.
    assert abs(found[0]["duration"] - frames / 30) < 0.5


async def test_publisher_drop_past_grace_ends_the_broadcast(
    tmp_path: Path, av_media: MediaFile
) -> None:
    server = StromServer(make_settings(tmp_path, reconnect_grace=1.0))
    await server.start()
    try:
        watcher = Watcher(
            f"http://127.0.0.1:{server.http_port}/live/{CHANNEL}/ws", tmp_path / "o.mp4"
        )
        task = asyncio.create_task(watcher.run())
        first = await start_publisher(av_media, server.rtmp_port)
        await wait_live(server)
        channel = server.registry.get(CHANNEL)
        assert channel is not None
        broadcast = channel.broadcast_id
        await asyncio.sleep(1.0)
        await kill(first)
        async with asyncio.timeout(10):
            await task  # the end comes by itself after the grace period
        assert watcher.texts[-2:] == ["reconnecting", "end"]
        assert channel.state is ChannelState.OFFLINE
        assert channel.broadcast_id == broadcast
    finally:
        await server.stop()


async def test_rtmp_players_play_on_after_the_publisher_resumes(
    server: StromServer, tmp_path: Path, media_dir: Path
) -> None:
    """An RTMP player watching before the drop, and one that joins during the grace, both
    decode the media of the publisher that came back."""
    rtmpdump = need_tool("rtmpdump")
    media = make_media(media_dir / "grace-rtmp.flv", seconds=3.0, size="320x180")
    url = f"rtmp://127.0.0.1:{server.rtmp_port}/live/{CHANNEL}"

    def play(out: Path) -> asyncio.Task[tuple[int, str]]:
        args = [rtmpdump, "--live", "--timeout", "10", "-o", str(out), "-r", url]
        return asyncio.create_task(run_process(*args, timeout=40))

    first = await start_publisher(media, server.rtmp_port)
    await wait_live(server)
    channel = server.registry.get(CHANNEL)
    assert channel is not None
    early = play(tmp_path / "early.flv")
    await asyncio.sleep(1.5)
    await kill(first)
    for _ in range(100):
        if channel.state is ChannelState.RECONNECTING:
            break
        await asyncio.sleep(0.05)
    assert channel.state is ChannelState.RECONNECTING
    late = play(tmp_path / "late.flv")
    for _ in range(100):
        if channel.viewers_by_transport().get("rtmp", 0) == 2:
            break
        await asyncio.sleep(0.05)
    assert channel.viewers_by_transport().get("rtmp", 0) == 2  # both players are in
    second = await start_publisher(media, server.rtmp_port)
    assert await second.wait() == 0
    for player, name in ((early, "early"), (late, "late")):
        code, log = await player
        assert code == 0, log
        assert "Download complete" in log, log
        frames, errors = await decode(str(tmp_path / f"{name}.flv"))
        assert errors == "", name
        # The whole second broadcast (and, before it, the picture the first stopped on).
        assert frames >= media.frames, (name, frames)
