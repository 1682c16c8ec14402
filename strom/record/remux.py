"""One progressive MP4 from a recording's init segments and media segments: a remux with
PyAV (no decode, no encode), ``moov`` first (``+faststart``) so a player can seek at
once. Blocking: run it in a thread.

Each run of segments sharing one init version is read as one fragmented MP4 (init +
segments, concatenated into a temporary file) and its packets are appended with their
timestamps shifted so the runs follow each other without a gap; the first packet of the
recording is at time 0, so the file's duration is the recording's.
"""

from __future__ import annotations

import itertools
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from strom.record import storage
from strom.record.storage import Segment

#: packets read ahead to find the earliest decode time of each run
_PEEK = 64


def _runs(segments: tuple[Segment, ...]) -> list[list[Segment]]:
    runs: list[list[Segment]] = []
    for i, seg in enumerate(segments):
        if not runs or seg.init != segments[i - 1].init or seg.discontinuity:
            runs.append([])
        runs[-1].append(seg)
    return runs


def _concat(path: Path, run: list[Segment], out: Path) -> None:
    with out.open("wb") as f:
        f.write((path / storage.init_name(run[0].init)).read_bytes())
        for seg in run:
            with (path / storage.segment_name(seg.seq)).open("rb") as src:
                while block := src.read(1 << 20):
                    f.write(block)


def remux(path: Path, segments: tuple[Segment, ...], out: Path) -> None:
    """Write ``out`` (atomically: a partial file never has its name)."""
    part = out.with_name(out.name + ".part")
    source = out.with_name(out.name + ".src")
    try:
        with av.open(str(part), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
            streams: dict[str, Any] = {}
            offset = Fraction(0)  # where the next run starts, in seconds
            for run in _runs(segments):
                _concat(path, run, source)
                with av.open(str(source)) as src:
                    for s in src.streams:
                        if s.type in ("video", "audio") and s.type not in streams:
                            streams[s.type] = dst.add_stream_from_template(s)
                    packets = src.demux()
                    head = list(itertools.islice(packets, _PEEK))
                    starts = [
                        Fraction(p.dts) * p.time_base
                        for p in head
                        if p.dts is not None and p.time_base is not None
                    ]
                    if not starts:
                        continue
                    first = min(starts)
                    shift = offset - first
                    end = offset
                    for packet in itertools.chain(head, packets):
                        out_stream = streams.get(packet.stream.type)
                        if packet.dts is None or out_stream is None:
                            continue
                        tb = packet.time_base
                        ticks = round(shift / tb)
                        packet.dts += ticks
                        if packet.pts is not None:
                            packet.pts += ticks
                        end = max(end, Fraction(packet.dts + (packet.duration or 0)) * tb)
                        packet.stream = out_stream
                        dst.mux(packet)
                    offset = end
        os.replace(part, out)
    finally:
        for tmp in (part, source):
            tmp.unlink(missing_ok=True)
