"""`strom serve` as an operator runs it: its own process, its default event loop (uvloop
when installed), a real ffmpeg publisher and a WebSocket viewer."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import CHANNEL, STREAM_KEY, MediaFile, publish_args, run_process
from tests.helpers.servers import free_port
from tests.helpers.watching import collect_ws, decode

pytestmark = pytest.mark.e2e


async def test_strom_serve_process_end_to_end(tmp_path: Path, av_media: MediaFile) -> None:
    http_port, rtmp_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "strom", "serve",
        "--host", "127.0.0.1", "--http-port", str(http_port), "--rtmp-port", str(rtmp_port),
        "--data-dir", str(tmp_path / "data"), "--stream-key", f"{CHANNEL}={STREAM_KEY}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{http_port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/metrics") as resp:
                        metrics = json.loads(await resp.text())
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("strom serve did not come up")
        expected = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        assert metrics["event_loop"] == expected

        out = tmp_path / "ws.mp4"
        viewer = asyncio.create_task(collect_ws(f"{base}/live/{CHANNEL}/ws", out))
        await asyncio.sleep(0.3)
        code, log = await run_process(*publish_args(av_media, rtmp_port))
        assert code == 0, log
        texts = await viewer
        assert texts[1]["type"] == "init"
        frames, errors = await decode(str(out))
        assert errors == ""
        assert frames == av_media.frames
    finally:
        proc.terminate()
        output, _ = await proc.communicate()
    assert proc.returncode == 0, output.decode()
    assert b"Traceback" not in output
