"""A plain HLS client for the nginx-rtmp reference: it polls the playlist, downloads each
new segment once and notes when it was first listed and when it had arrived."""

from __future__ import annotations

import asyncio
import contextlib
import time

from bench.http import HttpConnection
from bench.playlist import parse_media_playlist
from bench.stats import SegmentSeen
from bench.ts import TsError, video_decode_times


async def poll_segments(
    host: str, port: int, playlist_path: str, stop_at: float, interval: float = 0.05
) -> list[SegmentSeen]:
    """Segments first listed before ``stop_at``. Segments already listed at the first
    successful poll are skipped: their listing time is unknown."""
    base = playlist_path.rsplit("/", 1)[0] + "/"
    conn = HttpConnection(host, port)
    media = HttpConnection(host, port)
    known: set[str] | None = None
    seen: list[SegmentSeen] = []
    try:
        while time.monotonic() < stop_at:
            with contextlib.suppress(OSError, ValueError, asyncio.IncompleteReadError):
                resp = await conn.get(playlist_path)
                if resp.status == 200:
                    pl = parse_media_playlist(resp.body.decode())
                    uris = [s.uri for s in pl.segments if s.uri is not None]
                    if known is None:
                        known = set(uris)
                    for uri in uris:
                        if uri in known:
                            continue
                        known.add(uri)
                        seg = await media.get(base + uri)
                        if seg.status != 200:
                            continue
                        try:
                            dts = tuple(video_decode_times(seg.body))
                        except TsError:
                            dts = ()
                        seen.append(SegmentSeen(uri, resp.t_done, seg.t_done, dts))
            await asyncio.sleep(interval)
    finally:
        await conn.close()
        await media.close()
    return seen
