"""Several `strom serve` processes on loopback: node A ingests (real ffmpeg over RTMP),
nodes behind it pull the channel over the internal pull and serve it to their own
viewers: WebSocket (every frame, decoded by ffmpeg), LL-HLS and RTMP play."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import CHANNEL, MediaFile, make_media, publish_args, run_process
from tests.helpers.nodes import Node, running
from tests.helpers.watching import Watcher, collect_ws, decode, until

pytestmark = pytest.mark.e2e


async def test_edge_websocket_viewer_gets_every_frame(tmp_path: Path, av_media: MediaFile) -> None:
    async with (
        running(Node(tmp_path / "a")) as a,
        running(Node(tmp_path / "b", "--upstream", a.base, "--pull-linger", "1")) as b,
    ):
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
    # Recorded once, where it was ingested.
    assert list((tmp_path / "a" / "recordings").rglob("*.mp4"))
    assert not list((tmp_path / "b" / "recordings").rglob("*.*"))


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    """Poll ``check`` until it holds."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - another process's numbers
            await asyncio.sleep(0.1)


async def test_relay_holds_one_pull_for_two_edges_and_lets_go(
    tmp_path: Path, av_media: MediaFile
) -> None:
    linger = ("--pull-linger", "1")
    async with (
        running(Node(tmp_path / "a")) as a,
        running(Node(tmp_path / "b", "--upstream", a.base, *linger)) as relay,
        running(Node(tmp_path / "c", "--upstream", relay.base, *linger)) as c,
        running(Node(tmp_path / "d", "--upstream", relay.base, *linger)) as d,
    ):
        outs = [tmp_path / "c.mp4", tmp_path / "d.mp4"]
        viewers = [
            asyncio.create_task(collect_ws(f"{edge.base}/live/{CHANNEL}/ws", out))
            for edge, out in zip((c, d), outs, strict=True)
        ]

        async def relay_feeds_both() -> bool:
            return (await relay.metrics())["pull_feeds"] == 2

        await wait_for(relay_feeds_both)
        publisher = asyncio.create_task(run_process(*publish_args(av_media, a.rtmp_port)))
        async with aiohttp.ClientSession() as http:
            # Someone who is not a node: no key, a wrong key, a viewer's WebSocket.
            for node in (a, relay):
                url = f"{node.base}/internal/pull/{CHANNEL}"
                async with http.get(url) as resp:
                    assert resp.status == 403
                    assert "key" in (await resp.json())["error"]
                wrong = {"Authorization": "Bearer " + "0" * 64}
                async with http.get(url, headers=wrong) as resp:
                    assert resp.status == 403
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(url.replace("http", "ws", 1))
                assert refused.value.status == 403
        metrics = await relay.metrics()
        # One pull on the relay, whatever the number of edges following it.
        assert metrics["pulls"]["active"] == 1
        assert metrics["pulls"]["started_total"] == 1
        code, log = await publisher
        assert code == 0, log
        for viewer, out in zip(viewers, outs, strict=True):
            texts = await viewer
            assert texts[-2:] == [{"type": "end"}, {"type": "closed", "code": "1000"}]
            frames, errors = await decode(str(out))
            assert errors == ""
            assert frames == av_media.frames

        # The viewers left: each edge drops its pull after the linger, then the relay.
        async def all_released() -> bool:
            found = [(await n.metrics())["pulls"]["active"] for n in (c, d, relay)]
            return found == [0, 0, 0]

        await wait_for(all_released)
        assert (await relay.metrics())["pulls"]["started_total"] == 1
        for node in (a, relay):
            assert "internal pull of alice from 127.0.0.1 refused: missing or wrong key" in (
                node.log
            )
            assert "0" * 64 not in node.log
        assert "no viewer left; stopping" in relay.log

        # The recording is on A only; an edge two hops away lists and plays it (asked
        # up the chain of --upstream nodes), byte for byte.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{c.base}/api/v1/channels/{CHANNEL}/recordings") as resp:
                [recording] = (await resp.json())["recordings"]
            answers = []
            for node in (a, c):
                async with http.get(node.base + recording["playlist_url"]) as resp:
                    assert resp.status == 200
                    answers.append(await resp.text())
            assert answers[0] == answers[1]
            assert ".m4s" in answers[1]


async def test_edge_serves_llhls_and_rtmp_play(tmp_path: Path, media_dir: Path) -> None:
    media = make_media(media_dir / "edge-hls.flv", seconds=8.0, gop=60)
    async with (
        running(Node(tmp_path / "a")) as a,
        running(Node(tmp_path / "b", "--upstream", a.base)) as b,
    ):
        # An RTMP player on B before the broadcast: it gets it from the first keyframe.
        player = asyncio.create_task(decode(f"rtmp://127.0.0.1:{b.rtmp_port}/live/{CHANNEL}"))
        await asyncio.sleep(0.5)
        publisher = asyncio.create_task(run_process(*publish_args(media, a.rtmp_port)))
        async with aiohttp.ClientSession() as http:
            # An LL-HLS player's blocking reload on B: B pulls the channel, then answers.
            url = f"{b.base}/live/{CHANNEL}/index.m3u8"
            async with http.get(f"{url}?_HLS_msn=1") as resp:
                assert resp.status == 200
                assert "#EXT-X-PART:" in await resp.text()
        hls_frames, hls_errors = await decode(url)
        code, log = await publisher
        assert code == 0, log
        rtmp_frames, rtmp_errors = await player
        assert (hls_errors, rtmp_errors) == ("", "")
        assert rtmp_frames == media.frames
        # A live HLS client starts near the live edge and reads to EXT-X-ENDLIST.
        assert hls_frames > 60


async def test_upstream_killed_viewers_wait_and_resume(tmp_path: Path, av_media: MediaFile) -> None:
    a = Node(tmp_path / "a")
    async with running(a), running(Node(tmp_path / "b", "--upstream", a.base)) as b:
        publisher = asyncio.create_task(
            run_process(*publish_args(av_media, a.rtmp_port, loop=True), timeout=120)
        )
        watcher = Watcher(f"{b.base}/live/{CHANNEL}/ws", tmp_path / "b.mp4")
        watching = asyncio.create_task(watcher.run())
        try:
            await until(lambda: watcher.chunks_by_phase[-1] > 30, timeout=20)
            a.kill()  # SIGKILL: the pull's connection drops, nothing is said
            await a.stop()
            await until(lambda: "reconnecting" in watcher.texts, timeout=10)
            await publisher  # its server is gone

            # A comes back on the same ports, the streamer goes live again in the grace.
            await a.start()
            publisher = asyncio.create_task(
                run_process(*publish_args(av_media, a.rtmp_port, loop=True), timeout=120)
            )
            # B finds it again: its viewer gets the media (a new init: the source started
            # over) and it plays on, on the same socket.
            await until(lambda: watcher.chunks_by_phase[-1] > 30, timeout=20)
            assert watcher.texts[-1] == "init"
            assert watcher.texts.index("reconnecting") < len(watcher.texts) - 1
            assert "end" not in watcher.texts
            publisher.cancel()
        finally:
            watching.cancel()
            publisher.cancel()
            await asyncio.gather(watching, publisher, return_exceptions=True)
    assert "pull alice: following" in b.log
