"""One progressive MP4 from a recording's init segments and media segments: a remux with
PyAV (no decode, no encode), ``moov`` first (``+faststart``) so a player can seek at
once. Blocking: run it in a thread.

Each run of segments sharing one init version is read as one fragmented MP4 (init +
segments, concatenated into a temporary file) and its packets are appended with their
timestamps shifted so the runs follow each other without a gap; the first packet of the
recording is at time 0, so the file's duration is the recording's.

The file has one sample description per track, the first run's. When a later run's H.264
parameters differ (the streamer came back at another resolution), its SPS and PPS go
in-band, in front of each of its keyframes, so decoders switch with the stream.
"""

from __future__ import annotations

import itertools
import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from strom.errors import ProtocolError
from strom.media import h264
from strom.record import storage
from strom.record.storage import Segment

log = logging.getLogger(__name__)

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


def _in_band_parameters(stream: Any, first_extradata: bytes | None) -> bytes | None:
    """The SPS and PPS (length-prefixed) to put before each keyframe of a run whose H.264
    configuration is not the file's, or None when nothing needs to go in-band."""
    extradata = bytes(stream.codec_context.extradata or b"")
    if stream.codec_context.name != "h264" or not extradata or extradata == first_extradata:
        return None
    try:
        config = h264.parse_avcc(extradata)
    except ProtocolError:
        log.warning("recording: unreadable H.264 configuration in a later run; kept as is")
        return None
    size = config.length_size
    return b"".join(len(nal).to_bytes(size, "big") + nal for nal in (*config.sps, *config.pps))


def remux(path: Path, segments: tuple[Segment, ...], out: Path) -> None:
    """Write ``out`` (atomically: a partial file never has its name)."""
    part = out.with_name(out.name + ".part")
    source = out.with_name(out.name + ".src")
    try:
        with av.open(str(part), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
            streams: dict[str, Any] = {}
            first_extradata: bytes | None = None
            offset = Fraction(0)  # where the next run starts, in seconds
            for run in _runs(segments):
                _concat(path, run, source)
                with av.open(str(source)) as src:
                    in_band: bytes | None = None
                    for s in src.streams:
                        if s.type in ("video", "audio") and s.type not in streams:
                            streams[s.type] = _output_stream(dst, s)
                            if s.type == "video":
                                first_extradata = bytes(s.codec_context.extradata or b"")
                        elif s.type == "video":
                            in_band = _in_band_parameters(s, first_extradata)
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
                        video = out_stream.type == "video"
                        if in_band is not None and video and packet.is_keyframe:
                            out_packet = _with_prefix(packet, in_band)
                        else:
                            out_packet = packet
                        out_packet.stream = out_stream
                        dst.mux(out_packet)
                    offset = end
        os.replace(part, out)
    finally:
        for tmp in (part, source):
            tmp.unlink(missing_ok=True)


def _output_stream(dst: Any, template: Any) -> Any:
    """An output stream for ``template``'s packets. PyAV copies a template through an
    encoder of the decoder's name, which fails where only a decoder exists (AV1 is read
    by libdav1d); such a stream is added as a bare mux stream (the MP4 muxer takes the
    AV1 configuration from the first keyframe's sequence header)."""
    try:
        return dst.add_stream_from_template(template)
    except (av.codec.codec.UnknownCodecError, ValueError):
        codec = template.codec_context.codec
        if template.type != "video":
            raise
        log.info("recording: %s has no encoder here; muxing it as is", codec.name)
        return dst.add_mux_stream(
            codec.canonical_name, width=template.width, height=template.height
        )


def _with_prefix(packet: Any, prefix: bytes) -> Any:
    new = av.Packet(prefix + bytes(packet))
    new.pts, new.dts, new.time_base = packet.pts, packet.dts, packet.time_base
    new.duration = packet.duration
    new.is_keyframe = True
    return new
