"""Real media demuxed and muxed by Strom's own code (for the benchmark's own tests, so
its parsers are checked against what the server sends)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.media import TAG_AUDIO, TAG_VIDEO, MediaFile
from strom.media.flv import FlvDemuxer
from strom.media.fmp4 import FragmentMuxer
from strom.media.model import Frame, Track


@dataclass(frozen=True)
class Muxed:
    tracks: dict[int, Track]
    frames: list[Frame]
    init: bytes
    chunks: list[bytes]  # one per frame, in order


def mux(media: MediaFile) -> Muxed:
    demux = FlvDemuxer()
    tracks: dict[int, Track] = {}
    frames: list[Frame] = []
    for tag in media.tags:
        if tag.tag_type == TAG_VIDEO:
            out = demux.video(tag.timestamp, tag.payload)
        elif tag.tag_type == TAG_AUDIO:
            out = demux.audio(tag.timestamp, tag.payload)
        else:
            continue
        for item in out:
            if isinstance(item, Track):
                tracks[item.id] = item
            else:
                frames.append(item)
    muxer = FragmentMuxer(sorted(tracks.values(), key=lambda t: t.id))
    chunks = [muxer.add_frame(f) for f in frames]
    return Muxed(tracks, frames, muxer.init_segment(), chunks)
