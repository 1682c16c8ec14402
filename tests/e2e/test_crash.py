"""Crashes lose nothing: `strom serve` killed with SIGKILL mid-broadcast (real ffmpeg
publishing, two viewers watching) and started again on the same data dir a few seconds
later. The broadcast ends when it was last on air, not at the restart: at its recording's
last media, or (recording off) at the last heartbeat. Its recording keeps its broadcast id
(written when the broadcast started, not at the end), so the channel page lists it with
the title it had and its peak viewers; and it still plays."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from strom.store import Store
from tests.helpers import need_tool, run_process
from tests.helpers.nodes import Node, running
from tests.helpers.watching import decode

# serial: asserts broadcast end times against the moment of the kill (see scripts/test).
pytestmark = [pytest.mark.e2e, pytest.mark.serial]

USER = "crashy"
PASSWORD = "a long enough password"
TITLE = "Speedrun before the crash"
DOWNTIME = 5.0  # seconds between the kill and the restart
HEARTBEAT = 2.0  # --broadcast-heartbeat: the peak reaches the database this often


async def open_store(data_dir: Path) -> Store:
    return await Store.open(f"sqlite+aiosqlite:///{(data_dir / 'strom.db').resolve()}")


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def watch(url: str, stop: asyncio.Event) -> None:
    """A viewer that reads whatever comes until told to stop or the server goes."""
    with contextlib.suppress(aiohttp.ClientError, asyncio.CancelledError):
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    msg = await ws.receive(timeout=0.5)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        return


@pytest.mark.parametrize("record", [True, False], ids=["recorded", "not-recorded"])
async def test_sigkill_mid_broadcast_loses_nothing(tmp_path: Path, record: bool) -> None:
    options = ("--record", str(record), "--broadcast-heartbeat", str(HEARTBEAT))
    data_dir = tmp_path / "data"
    store = await open_store(data_dir)
    try:
        await store.migrate()
        _, key = await store.users.create(USER, PASSWORD)
        await store.channels.update(USER, title=TITLE)
    finally:
        await store.close()

    # One node, started twice on the same data dir (the site's stream keys aside: the
    # channel is an account's).
    node = Node(data_dir, *options, stream_keys=(), socketio_door=True)
    publisher: asyncio.subprocess.Process | None = None
    stop_viewers = asyncio.Event()
    viewers: list[asyncio.Task[None]] = []
    try:
        await node.start()
        # A live source, light on the CPU: 320x240 30 fps, a keyframe every node.
        publisher = await asyncio.create_subprocess_exec(
            need_tool("ffmpeg"), "-v", "error", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
            "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
            "-f", "flv", f"rtmp://127.0.0.1:{node.rtmp_port}/live/{key}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with aiohttp.ClientSession() as http:
            channel_url = f"{node.base}/api/v1/channels/{USER}"
            await poll(lambda: get_json(http, channel_url), lambda c: c["live"], 20)
            ws_url = f"ws://127.0.0.1:{node.http_port}/live/{USER}/ws"
            viewers = [asyncio.create_task(watch(ws_url, stop_viewers)) for _ in range(2)]
            recordings = f"{node.base}/api/v1/channels/{USER}/recordings"
            if record:
                # While it is still being recorded, the recording names its broadcast.
                found = await poll(
                    lambda: get_json(http, recordings),
                    lambda r: (
                        bool(r["recordings"])
                        and r["recordings"][0]["broadcast_id"] is not None
                        and r["recordings"][0]["duration"] > 2
                    ),
                    15,
                )
                assert found["recordings"][0]["status"] == "recording"
                broadcast_id = found["recordings"][0]["broadcast_id"]
            else:
                await asyncio.sleep(3)
                assert (await get_json(http, recordings))["recordings"] == []
            # Two viewers, then time for a heartbeat or two to write the peak down.
            await poll(lambda: get_json(http, channel_url), lambda c: c["viewers"] >= 2, 10)
            await asyncio.sleep(2.5 * HEARTBEAT)
        killed_at = time.time()
        node.kill()
        await node.stop()
    finally:
        stop_viewers.set()
        if publisher is not None and publisher.returncode is None:
            publisher.kill()
            await publisher.wait()
        for viewer in viewers:
            viewer.cancel()
        await asyncio.gather(*viewers, return_exceptions=True)
        if node.returncode is None:
            node.kill()
            await node.stop()
    assert node.returncode == -signal.SIGKILL

    # While it is down, the streamer renames the channel: the past broadcast keeps the
    # title it was streamed under.
    await asyncio.sleep(DOWNTIME)
    store = await open_store(data_dir)
    try:
        await store.channels.update(USER, title="A new title")
    finally:
        await store.close()

    restarted_at = time.time()
    # Started again on the same data dir (and ports).
    async with running(node), aiohttp.ClientSession() as http:
        channel = await get_json(http, f"{node.base}/api/v1/channels/{USER}")
        assert not channel["live"]
        ended_at = channel["last_broadcast"]["ended_at"]
        print(
            f"killed at {killed_at:.3f}, restarted at {restarted_at:.3f}, broadcast ended at "
            f"{ended_at:.3f} ({ended_at - killed_at:+.3f} s from the kill)"
        )
        # Its recording's last write, a moment before the kill, or (not recorded) the last
        # heartbeat; never the restart.
        early = 1.5 if record else HEARTBEAT + 1.5
        assert killed_at - early <= ended_at <= killed_at + 0.5
        assert restarted_at - ended_at >= DOWNTIME - 0.5
        recs = (await get_json(http, f"{node.base}/api/v1/channels/{USER}/recordings"))[
            "recordings"
        ]
        if record:
            await check_recording(http, node, recs, broadcast_id, killed_at, tmp_path)
        else:
            assert recs == []
            broadcast_id = None

    await check_database(data_dir, node.log, broadcast_id, ended_at)


async def check_database(
    data_dir: Path, log: str, broadcast_id: int | None, ended_at: float
) -> None:
    """The broadcast row: the title it was streamed under, its peak viewers (written by
    the heartbeat before the kill) and the end time the API showed; the node's log (both
    runs): the broadcast found left open, no traceback."""
    store = await open_store(data_dir)
    try:
        (past,) = await store.broadcasts.list(USER)
    finally:
        await store.close()
    assert (past.title, past.peak_viewers) == (TITLE, 2)
    assert broadcast_id in (None, past.id)
    assert past.ended_at is not None
    assert abs(past.ended_at.timestamp() - ended_at) < 0.01
    assert f"broadcast {past.id} was left open by the last run" in log
    assert "Traceback" not in log


async def poll(
    get: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout: float
) -> Any:
    """``get()`` until ``done`` says yes (every 0.1 s, at most ``timeout`` seconds)."""
    async with asyncio.timeout(timeout):
        while True:
            value = await get()
            if done(value):
                return value
            await asyncio.sleep(0.1)


async def check_recording(
    http: aiohttp.ClientSession,
    server: Node,
    recs: list[dict[str, Any]],
    broadcast_id: int,
    killed_at: float,
    tmp_path: Path,
) -> None:
    """Listed with its broadcast id, on the channel page with the title it had and its
    peak viewers, and it plays."""
    (rec,) = recs
    assert rec["status"] == "finished"
    assert rec["broadcast_id"] == broadcast_id
    assert killed_at - 1.5 <= rec["ended"] <= killed_at + 0.5
    # Every second on disk is in it, the segment cut short by the kill too (the publisher
    # took a moment to send its first keyframe).
    on_air = rec["ended"] - rec["started"]
    print(f"recording: {rec['duration']:.2f} s of media for {on_air:.2f} s on air")
    assert on_air - 1.0 <= rec["duration"] <= on_air + 0.2

    async with http.get(f"{server.base}/{USER}") as resp:
        assert resp.status == 200
        page = html.unescape(await resp.text())
    item = re.search(r'<li class="vod-item">(.*?)</li>', page, re.S)
    assert item is not None, page
    assert TITLE in item.group(1)
    assert "2 peak viewers" in item.group(1)

    # It plays: the VOD playlist and the MP4 download decode without an error.
    frames, errors = await decode(server.base + rec["playlist_url"])
    assert errors == ""
    assert frames >= 30 * 4
    mp4 = tmp_path / "download.mp4"
    async with http.get(server.base + rec["mp4_url"]) as resp:
        assert resp.status == 200
        mp4.write_bytes(await resp.read())
    code, out = await run_process(
        need_tool("ffprobe"), "-v", "error", "-show_entries", "format=duration",
        "-of", "json", str(mp4),
    )  # fmt: skip
    assert code == 0, out
    assert abs(float(json.loads(out)["format"]["duration"]) - rec["duration"]) < 0.5
