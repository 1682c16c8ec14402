"""`strom serve` as an operator runs it: its own process, its default event loop (uvloop
when installed), a real ffmpeg publisher and a WebSocket viewer."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

from tests.helpers import CHANNEL, MediaFile, publish_args, run_process
from tests.helpers.nodes import Node, running
from tests.helpers.watching import collect_ws, decode

pytestmark = pytest.mark.e2e


async def test_strom_serve_process_end_to_end(tmp_path: Path, av_media: MediaFile) -> None:
    # The operator's command line: no secret (the node makes one), a new data dir.
    node = Node(tmp_path / "data", secret_key=None, seed=False, socketio_door=True)
    async with running(node):
        metrics = await node.metrics()
        expected = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        assert metrics["event_loop"] == expected

        out = tmp_path / "ws.mp4"
        viewer = asyncio.create_task(collect_ws(f"{node.base}/live/{CHANNEL}/ws", out))
        await asyncio.sleep(0.3)
        code, log = await run_process(*publish_args(av_media, node.rtmp_port))
        assert code == 0, log
        texts = await viewer
        assert texts[1]["type"] == "init"
        frames, errors = await decode(str(out))
        assert errors == ""
        assert frames == av_media.frames
    assert node.returncode == 0, node.log
    assert "Traceback" not in node.log
