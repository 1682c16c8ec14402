"""Micro-benchmark of the hub's hot path: the Python cost of fanning one chunk out to
WebSocket viewers (``Channel.add_chunk`` -> ``WsViewer.on_chunk``: the bookkeeping check,
the shared frame looked up on the chunk, the write), without the sockets.

Usage: python -m bench.fanout [--viewers 200] [--chunks 3000] [--size 10000] [--rounds 7]

Each viewer's transport is a stand-in whose methods are C builtins (``write`` appends to
a one-item deque), so what is measured is Strom's own code per viewer, not the kernel's;
a real ``transport.write`` of a framed chunk adds ~13 us (see DESIGN.md). Reports the
CPU time per chunk per viewer (median and best of ``--rounds``), and per chunk with a
single viewer (the per-chunk fixed cost: framing and the GOP cache).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import time
from typing import Any

from strom.delivery.backpressure import ViewerLimits
from strom.delivery.ws import WsViewer
from strom.live.channel import Channel
from strom.live.chunk import Chunk
from strom.media.model import Codec, Track, TrackKind

#: a keyframe every this many chunks (a 1 s GOP at 30 fps)
GOP = 30


class NullTransport:
    """What a viewer calls on its transport, as C builtins: a write never blocks."""

    __slots__ = ("get_write_buffer_size", "is_closing", "write")

    def __init__(self) -> None:
        self.write = collections.deque[bytes](maxlen=1).append
        self.is_closing = (False).__bool__
        self.get_write_buffer_size = (0).__int__


async def measure(viewers: int, chunks: int, size: int, rounds: int) -> list[float]:
    """Nanoseconds of CPU per chunk per viewer, one figure per round."""
    track = Track(1, TrackKind.VIDEO, Codec.H264, 90_000, b"", "avc1.64001f")
    channel = Channel("bench")
    channel.claim(object())  # type: ignore[arg-type]
    channel.start_media([track], b"init")
    for _ in range(viewers):
        ws: Any = None  # never closed here
        channel.subscribe(WsViewer(ws, NullTransport(), ViewerLimits(), "bench"))  # type: ignore[arg-type]
    payload = bytes(size)
    results = []
    for _ in range(rounds):
        made = [Chunk(payload, track, (), i % GOP == 0, i / 30, 0.0) for i in range(chunks)]
        start = time.process_time()
        for chunk in made:
            channel.add_chunk(chunk)
        results.append((time.process_time() - start) / chunks / viewers * 1e9)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=3000)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for viewers in (args.viewers, 1):
        ns = asyncio.run(measure(viewers, args.chunks, args.size, args.rounds))
        unit = "per chunk per viewer" if viewers > 1 else "per chunk, one viewer"
        print(
            f"{viewers:>5} viewers: {statistics.median(ns):7.1f} ns CPU {unit} (best {min(ns):.1f})"
        )


if __name__ == "__main__":
    main()
