"""Containers a pushed stream may arrive in, demuxed sans-IO into the neutral vocabulary.

An HTTP ``PUT``/``POST`` to ``/ingest/{key}``, a raw TCP push (``--tcp-ingest``) and the
browser's ``/ingest/ws`` upload all carry a container byte stream: WebM/Matroska,
fragmented MP4, FLV or MPEG-TS. The kind is sniffed from the first bytes
(:func:`sniff`), never trusted from a file name or a ``Content-Type``.

Every demuxer has the same shape (:class:`Demuxer`): ``feed(data)`` returns the
:class:`~strom.media.model.Track` and :class:`~strom.media.model.Frame` objects the bytes
complete, in order (a ``Track`` before the first frame of its id, and again whenever its
codec parameters change); a malformed stream raises a
:class:`~strom.errors.ProtocolError` (``LimitExceeded`` past a size bound) and the
demuxer stays unusable. Track ids are :data:`~strom.media.model.VIDEO_TRACK_ID` and
:data:`~strom.media.model.AUDIO_TRACK_ID` whatever the container numbered them.

=========  ===================================  ====================================
kind       module                               timestamps
=========  ===================================  ====================================
WebM/MKV   :mod:`.webm` (:class:`WebmDemuxer`)  milliseconds
MP4        :mod:`.mp4` (:class:`Mp4Demuxer`)    each track's ``mdhd`` timescale
FLV        :class:`FlvStreamDemuxer`            milliseconds
MPEG-TS    :mod:`.mpegts` (:class:`TsDemuxer`)  90 kHz video, sample-rate audio
=========  ===================================  ====================================

Codecs: H.264 and AAC everywhere; VP8, VP9, AV1 and Opus in WebM and MP4 (VP8 only in
WebM in practice). A demuxer refuses, with an error naming it, a codec Strom cannot carry
in the first audio or video stream. ``max_size`` bounds what a demuxer holds at once (an
element, box, tag or PES: in practice one frame).
"""

from __future__ import annotations

import enum
from typing import Protocol

from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.containers.mpegts import PACKET_SIZE, SYNC_BYTE, TsDemuxer
from strom.media.containers.webm import WebmDemuxer
from strom.media.flv import DEFAULT_MAX_TAG_SIZE, TAG_AUDIO, TAG_VIDEO, FlvDemuxer, FlvReader
from strom.media.model import Frame, Track

__all__ = [
    "DEFAULT_MAX_SIZE",
    "SNIFF_BYTES",
    "ContainerKind",
    "Demuxer",
    "FlvStreamDemuxer",
    "Mp4Demuxer",
    "TsDemuxer",
    "WebmDemuxer",
    "open_demuxer",
    "sniff",
]

#: Default of ``open_demuxer(max_size=...)``: one element, box, tag or PES (8 MiB).
DEFAULT_MAX_SIZE = DEFAULT_MAX_TAG_SIZE
#: MPEG-TS sync bytes :func:`sniff` wants to see, one every 188 bytes.
_TS_PACKETS_TO_SNIFF = 3


class ContainerKind(enum.Enum):
    WEBM = "webm"  # WebM and Matroska (EBML)
    MP4 = "mp4"  # fragmented MP4 / CMAF
    FLV = "flv"
    MPEGTS = "mpegts"


#: bytes :func:`sniff` may need before it can tell
SNIFF_BYTES = 4096


class Demuxer(Protocol):
    def feed(self, data: bytes) -> list[Track | Frame]:
        """Buffer ``data``; return every track change and frame it completes."""
        ...


class FlvStreamDemuxer:
    """An FLV byte stream (``ffmpeg -f flv``): tags from :class:`FlvReader`, payloads
    through the same :class:`FlvDemuxer` RTMP ingest uses."""

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self._reader = FlvReader(max_tag_size=max_size)
        self._payloads = FlvDemuxer(max_payload_size=max_size)

    def feed(self, data: bytes) -> list[Track | Frame]:
        out: list[Track | Frame] = []
        for tag in self._reader.feed(data):
            if tag.tag_type == TAG_VIDEO:
                out += self._payloads.video(tag.timestamp, tag.payload)
            elif tag.tag_type == TAG_AUDIO:
                out += self._payloads.audio(tag.timestamp, tag.payload)
        return out


def sniff(prefix: bytes) -> ContainerKind | None:
    """The container ``prefix`` (the stream's first bytes) starts, or ``None`` when it is
    none of them (or too short to tell: callers give up after :data:`SNIFF_BYTES`)."""
    if prefix.startswith(b"FLV"):
        return ContainerKind.FLV
    if prefix.startswith(b"\x1a\x45\xdf\xa3"):  # the EBML header's ID (RFC 8794 11.2.1)
        return ContainerKind.WEBM
    # ISO/IEC 14496-12 4.2: a box is a 32-bit size then its type.
    if len(prefix) >= 8 and prefix[4:8] in (b"ftyp", b"styp", b"moov", b"moof"):
        return ContainerKind.MP4
    # MPEG-TS (ISO/IEC 13818-1 2.4.3.2): a 0x47 sync byte every 188 bytes.
    if len(prefix) > PACKET_SIZE * (_TS_PACKETS_TO_SNIFF - 1) and all(
        prefix[i] == SYNC_BYTE for i in range(0, len(prefix), PACKET_SIZE)
    ):
        return ContainerKind.MPEGTS
    return None


def open_demuxer(kind: ContainerKind, *, max_size: int = DEFAULT_MAX_SIZE) -> Demuxer:
    """A fresh demuxer for a stream of ``kind``, holding at most ``max_size`` bytes of one
    element, box, tag or PES at a time (past it: :class:`~strom.errors.LimitExceeded`)."""
    if kind is ContainerKind.WEBM:
        return WebmDemuxer(max_element_size=max_size)
    if kind is ContainerKind.MP4:
        return Mp4Demuxer(max_box_size=max_size, max_sample_size=max_size)
    if kind is ContainerKind.MPEGTS:
        return TsDemuxer(max_pes_size=max_size)
    return FlvStreamDemuxer(max_size)
