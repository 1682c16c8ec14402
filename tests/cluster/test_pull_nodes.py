"""Several `strom serve` processes on loopback: node A ingests (real ffmpeg over RTMP),
nodes behind it pull the channel over the internal pull and serve it to their own
viewers: WebSocket (every frame, decoded by ffmpeg), LL-HLS and RTMP play."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import CHANNEL, MediaFile, publish_args, run_process
from tests.helpers.nodes import Node, running
from tests.helpers.watching import collect_ws, decode

pytestmark = pytest.mark.e2e


async def test_edge_websocket_viewer_gets_every_frame(tmp_path: Path, av_media: MediaFile) -> None:
    async with running(Node(tmp_path / "a")) as a, running(
        Node(tmp_path / "b", "--upstream", a.base, "--pull-linger", "1")
    ) as b:
        out = tmp_path / "ws.mp4"
        # The viewer on B is there before the streamer goes live on A.
        viewer = asyncio.create_task(collect_ws(f"{b.base}/live/{CHANNEL}/ws", out))
        await asyncio.sleep(0.5)
        code, log = await run_process(*publish_args(av_media, a.rtmp_port))
        assert code == 0, log
        texts = await viewer
        assert texts[0] == {"type": "offline"}
        assert texts[1]["type"] == "init"
        assert texts[-2:] == [{"type": "end"}, {"type": "closed", "code": "1000"}]
        frames, errors = await decode(str(out))
        assert errors == ""
        assert frames == av_media.frames
        # Nothing recorded on B: the broadcast is A's.
        assert "recording" not in b.log.lower() or "recording broadcast" not in b.log
