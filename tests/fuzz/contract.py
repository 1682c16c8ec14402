"""The contract every fuzz target checks, and the feeding schedules.

* only :class:`~strom.errors.ProtocolError` (the peer broke it) comes out; anything else
  (``IndexError``, ``struct.error``, ``RecursionError``, ``LocalProtocolError``...) is a
  bug, and so is a failed ``assert`` here;
* work and output are bounded by the input: frame bytes at most 4x the bytes fed (NAL
  length fields grow from 1 to 4 bytes), at most one event per byte, replies at most
  16x, and the text of every decoded value (``repr``) at most 128x, so that no consumer
  walking what a parser returned (a log line, ``str()``) does more than linear work;
* what a streaming parser holds between calls stays within its limits (one chunk, tag,
  element, box, sample or packet buffered; pending bytes, chunk streams, samples);
* a streaming parser gives the same result whatever the split of its input (one lump,
  byte by byte, random pieces) - a result that depends on TCP segmentation is a bug
  (:func:`tests.fuzz.targets.check`);
* a demuxed :class:`~strom.media.model.Track` is one the hub can carry (its fMP4 init
  segment builds), every frame follows its track, and the hub's muxer takes every frame
  or refuses it with a protocol error (which ends the publisher), never a crash.

Time and memory per byte are bounded by hypothesis' ``deadline`` and atheris'
``-timeout`` / ``-rss_limit_mb``, and for chosen hostile inputs by
``tests/fuzz/test_bounds.py``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence

from strom.errors import ProtocolError
from strom.media.containers import FlvStreamDemuxer
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.containers.mpegts import PACKET_SIZE, TsDemuxer
from strom.media.containers.webm import WebmDemuxer
from strom.media.fmp4 import FragmentMuxer
from strom.media.model import Codec, Frame, Track
from strom.media.rtmp import ChunkReader

#: Chunk sizes a stream is fed in, cycled; ``()``: the whole input in one call.
Split = tuple[int, ...]
Output = list[object]

#: Frame bytes out per byte in (H.264 NAL lengths of 1 byte are rewritten to 4).
FRAME_EXPANSION = 4
#: Reply bytes per byte in (an RTMP ping of a few bytes is answered with 18).
REPLY_EXPANSION = 16
#: ``repr`` characters of decoded values per byte in (AMF's 1-byte undefined prints as
#: ``UNDEFINED``; a 3-byte reference may print as a whole object).
TEXT_EXPANSION = 128
#: Constant slack for the bounds above (headers, a connect's replies).
SLACK = 16384


def pieces(data: bytes, split: Split) -> Iterator[bytes]:
    """``data`` cut as ``split`` says; always at least one (possibly empty) piece."""
    if not split or len(data) <= split[0]:
        yield data
        return
    pos = i = 0
    while pos < len(data):
        step = split[i % len(split)]
        yield data[pos : pos + step]
        pos += step
        i += 1


def derived_split(data: bytes) -> Split:
    """A schedule chosen by the input itself (atheris has only bytes): deterministic, so a
    crash replays; byte by byte for small inputs, odd pieces for the rest."""
    h = zlib.crc32(data)
    if len(data) <= 2048 and h % 3 == 0:
        return (1,)
    return (1 + h % 7, 1 + (h >> 3) % 251, 1 + (h >> 11) % 1499)


def attempt(out: Output, call: Callable[[], object]) -> object:
    """``call()``'s result (also appended to ``out``), or ``None`` after a protocol error
    (its class name appended instead): for targets that try several parsers on one input."""
    try:
        result = call()
    except ProtocolError as exc:
        out.append(type(exc).__name__)
        return None
    out.append(result)
    return result


def check_text(values: object, fed: int) -> None:
    size = len(repr(values))
    assert size <= TEXT_EXPANSION * fed + SLACK, f"{size} characters of values from {fed} bytes"


def check_media(items: Sequence[object], fed: int) -> None:
    """The demuxer contract: bounded output, tracks the hub can carry, frames after their
    track, and frames the hub can mux (or refuses with a protocol error, as the channel
    would, ending the publisher)."""
    frame_bytes = 0
    known: dict[int, Track] = {}
    muxer: FragmentMuxer | None = None
    muxing = True
    assert len(items) <= fed + 16, f"{len(items)} items from {fed} bytes"
    for item in items:
        if isinstance(item, Track):
            assert item.timescale > 0, item
            if item.codec is not Codec.VP8:  # VP8 is transcoded before the hub
                FragmentMuxer([item])  # builds its init segment; raises if it cannot
            known[item.id] = item
            muxer = None
        elif isinstance(item, Frame):
            assert item.track_id in known, f"frame of track {item.track_id} before the track"
            frame_bytes += len(item.data)
            if not muxing or known[item.track_id].codec is Codec.VP8:
                continue
            if muxer is None:
                muxer = FragmentMuxer(
                    [t for _, t in sorted(known.items()) if t.codec is not Codec.VP8]
                )
            try:
                muxer.add_frame(item)
            except ProtocolError:
                muxing = False  # the channel's publisher ends here
    assert frame_bytes <= FRAME_EXPANSION * fed + SLACK, f"{frame_bytes} frame bytes from {fed}"


def check_state(parser: object) -> None:
    """What a streaming parser holds between calls stays within its configured limits (a
    buffer is at most one unit - chunk, tag, element, box, sample, packet - plus its
    header), however its input was cut."""
    if isinstance(parser, ChunkReader):
        assert len(parser._buffer) <= parser.max_chunk_size + 18, len(parser._buffer)
        assert parser._pending <= parser.max_pending_bytes
        assert len(parser._streams) <= parser.max_chunk_streams
    elif isinstance(parser, FlvStreamDemuxer):
        reader = parser._reader
        assert len(reader._buf) <= max(reader.max_tag_size + 15, 1028), len(reader._buf)
    elif isinstance(parser, WebmDemuxer):
        assert len(parser._buf) <= parser.max_element_size + 12, len(parser._buf)
        assert len(parser._stack) <= 2  # a Segment and a Cluster
    elif isinstance(parser, Mp4Demuxer):
        unit = max(parser.max_box_size, parser.max_sample_size)
        assert len(parser._buf) <= unit + 16, len(parser._buf)
        assert len(parser._pending) <= parser.max_fragment_samples
    elif isinstance(parser, TsDemuxer):
        assert len(parser._buf) < PACKET_SIZE
        assert all(len(section) <= 1024 + PACKET_SIZE for section in parser._sections.values())
        assert all(len(s.pes) <= parser.max_pes_size for s in parser._streams.values())
