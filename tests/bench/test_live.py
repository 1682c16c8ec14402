"""The harness against a real Strom server in this process: every frame each kind of
viewer reports is one the publisher sent (same timestamp), arriving after it was sent;
the publisher keeps time across loops of its file; a slow viewer reads slower."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.media import MediaFile
from bench.publisher import RtmpPublisher
from bench.records import ViewerRecord
from bench.stats import Window, analyze_group, latencies
from bench.viewers import ViewerGroup, run_group
from strom.server import StromServer
from tests.helpers import CHANNEL, STREAM_KEY

# serial: asserts delivery rates against elapsed time (see scripts/test).
pytestmark = [pytest.mark.e2e, pytest.mark.serial]


async def test_viewers_of_every_kind_see_the_publishers_frames(
    server: StromServer, bench_media: MediaFile
) -> None:
    now = time.monotonic()
    stop = now + 4.5  # the 3 s file loops once
    pub = RtmpPublisher("127.0.0.1", server.rtmp_port, STREAM_KEY, bench_media, channel=CHANNEL)
    publishing = asyncio.create_task(pub.run(stop + 0.5))
    start = now + 0.7

    def group(kind: str, port: int, count: int, slow: int = 0) -> ViewerGroup:
        rate = bench_media.bitrate_kbps * 1000 / 8 / 4 if slow else 0.0
        return ViewerGroup(kind, "127.0.0.1", port, (CHANNEL,), count, start, stop, 0.2, slow, rate)

    results = await asyncio.gather(
        run_group(group("ws", server.http_port, 4, slow=1)),
        run_group(group("rtmp", server.rtmp_port, 2)),
        run_group(group("hls", server.http_port, 1)),
    )
    stats = await publishing
    ws, rtmp, hls = results
    assert not stats.error
    log = pub.log
    # timestamps run on across the loop of the file, strictly increasing
    assert stats.loops >= 1
    assert len(log) > bench_media.video_frames
    assert all(b > a for a, b in zip(log.ts, log.ts[1:], strict=False))
    sent = set(log.ts)

    records: list[ViewerRecord] = [*ws, *rtmp, *hls]
    for rec in records:
        assert not rec.error, (rec.kind, rec.error)
        assert rec.t_first_key > 0, rec.kind
        assert len(rec.ts) > 10, rec.kind
        # the parsed ids are the publisher's frames (to the rounding of a millisecond)
        assert {log.match(ts) for ts in rec.ts} <= sent, rec.kind
        assert min(latencies(rec, log, Window(0, 1e18))) >= 0  # never before being sent
        assert log.match(rec.first_key_ts) in set(log.keyframes)
    for rec in hls:
        assert rec.parts
        assert all(p.video_frames for p in rec.parts)
        assert rec.playlist_requests >= 2  # blocking reloads followed the first playlist
    healthy = [r for r in ws if not r.slow]
    slow = [r for r in ws if r.slow]
    assert len(slow) == 1
    # the slow viewer reads at a quarter of the stream's rate (plus its burst allowance)
    elapsed = stop - slow[0].t_start
    assert (
        slow[0].bytes <= bench_media.bitrate_kbps * 1000 / 8 / 4 * elapsed + 64 * 1024 + 256 * 1024
    )
    assert slow[0].bytes < min(r.bytes for r in healthy)
    row = analyze_group(healthy, {CHANNEL: log}, Window(start + 1.0, stop - 0.2))
    assert row["playing"] == 3
    assert row["frame_loss"] == 0.0
