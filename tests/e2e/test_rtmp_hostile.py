"""Hostile RTMP clients against a real ``strom serve`` process (issue 11, part 2): what
the issue measured on the process (its memory, a viewer of another channel, /metrics)
is measured here the same way. The clients are ``bench.hostile_rtmp``'s raw sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.hostile_rtmp import (
    MetricsSamples,
    ViewerGaps,
    memory_hog,
    publish_loop,
    rss_mib,
    sample_metrics,
    server_cpu_seconds,
    tiny_chunks,
    watch,
)
from bench.servers import StromProcess
from tests.helpers import CHANNEL, STREAM_KEY, MediaFile, need_tool

# serial: measures memory, CPU and response times under attack (see scripts/test).
pytestmark = [pytest.mark.e2e, pytest.mark.serial]


@pytest.fixture
async def strom(tmp_path: Path) -> AsyncIterator[StromProcess]:
    """``strom serve`` in its own process, default settings, on loopback."""
    server = StromProcess(tmp_path / "strom", {CHANNEL: STREAM_KEY})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_clients_that_never_authenticate_cannot_pin_memory(strom: StromProcess) -> None:
    """Issue 11: 8 clients each announcing four 8 MiB messages after Set Chunk Size 1 MiB
    and sending 7 MiB of each, then one byte every 4 s, took the server from 108 to 332
    MiB and stayed open. Now each is refused at its first oversized message header."""
    before = peak = rss_mib(strom.pid)
    hogs = [asyncio.create_task(memory_hog(strom.rtmp_port, give_up=30.0)) for _ in range(8)]
    while not all(h.done() for h in hogs):
        peak = max(peak, rss_mib(strom.pid))
        await asyncio.wait(hogs, timeout=0.2)
    open_for = [h.result() for h in hogs]
    await asyncio.sleep(0.5)
    after = rss_mib(strom.pid)
    assert None not in open_for
    assert max(t for t in open_for if t is not None) < 5.0
    assert peak - before < 40.0, f"RSS {before:.0f} -> peak {peak:.0f} MiB"
    assert after - before < 40.0, f"RSS {before:.0f} -> {after:.0f} MiB after"
    assert strom.log_path.read_text().count("exceeds the 32768 byte limit") == 8


async def test_one_client_cannot_stall_the_viewers_of_another_channel(
    strom: StromProcess, av_media: MediaFile
) -> None:
    """Issue 11: Set Chunk Size 1 and 1-byte chunks as fast as the socket took them gave
    a WebSocket viewer of another channel a 4.4 s gap and /metrics 5-6 s answers. Now the
    chunk size is refused at once, and a flood that stays within the rules (chunk size
    128, messages the server ignores) is parsed in bounded steps and read at a bounded
    rate until it publishes: the viewer and /metrics do not notice it."""
    ffmpeg = need_tool("ffmpeg")
    base = f"http://127.0.0.1:{strom.http_port}"
    publisher = await publish_loop(ffmpeg, av_media.path, strom.rtmp_port, STREAM_KEY)
    gaps, samples, stop = ViewerGaps(), MetricsSamples(), asyncio.Event()
    viewer = asyncio.create_task(watch(f"{base}/live/{CHANNEL}/ws", gaps, stop))
    try:
        async with asyncio.timeout(20):
            while len(gaps.arrivals) < 30:  # noqa: ASYNC110 - until a second of media came
                await asyncio.sleep(0.1)
        metrics = asyncio.create_task(sample_metrics(base, samples, stop))

        _, closed = await tiny_chunks(strom.rtmp_port, 3.0, chunk_size=1)
        assert closed is not None
        assert closed < 2.0

        cpu = await server_cpu_seconds(base)
        start = time.monotonic()
        sent, closed = await tiny_chunks(strom.rtmp_port, 4.0, chunk_size=128)
        end = time.monotonic()
        cpu = await server_cpu_seconds(base) - cpu
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(viewer, metrics)
    finally:
        stop.set()
        viewer.cancel()
        publisher.kill()
        await publisher.wait()
    assert sent > 0
    assert gaps.max_gap(start, end) < 1.0
    assert max(samples.response_seconds) < 1.0
    # the flood costs the server little (the publisher and viewer are in this too)
    assert cpu < 0.25 * (end - start), f"{cpu:.1f} s of CPU in {end - start:.1f} s"
    assert "peer chunk size 1 is below the 128 byte minimum" in strom.log_path.read_text()
