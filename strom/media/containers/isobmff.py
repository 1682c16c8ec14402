"""ISO BMFF (ISO/IEC 14496-12) boxes held in memory, and the MPEG-4 ``esds`` descriptor
(ISO/IEC 14496-1 7.2.6) that carries AAC's AudioSpecificConfig: helpers of
:mod:`strom.media.containers.mp4`. Every read is bounds-checked: a malformed box raises
:class:`Mp4Error`, never an ``IndexError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from strom.errors import ProtocolError, UnsupportedMedia

_U64 = struct.Struct(">Q")
# 14496-1 7.2.6: ES_Descriptor 3, DecoderConfigDescriptor 4, DecoderSpecificInfo 5;
# objectTypeIndication (14496-1 Table 5): 0x40 MPEG-4 audio, 0x66-0x68 MPEG-2 AAC.
_AAC_OBJECT_TYPES = frozenset({0x40, 0x66, 0x67, 0x68})
_MP3_OBJECT_TYPES = frozenset({0x69, 0x6B})


class Mp4Error(ProtocolError):
    """Malformed or unsupported (fragmented) MP4 stream."""


class UnsupportedMp4(Mp4Error, UnsupportedMedia):
    """A codec or variant this demuxer recognises but Strom does not take."""


def boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The boxes of a buffer held whole: ``(type, body)`` (14496-12 4.2)."""
    pos, end = 0, len(data)
    while pos < end:
        if pos + 8 > end:
            raise Mp4Error("box header is truncated")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise Mp4Error("box header is truncated")
            size, header = _U64.unpack_from(data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Mp4Error(f"box {kind!r} runs past its parent")
        yield kind, data[pos + header : pos + size]
        pos += size


def child(body: bytes, kind: bytes) -> bytes | None:
    for k, b in boxes(body):
        if k == kind:
            return b
    return None


def need(body: bytes | None, kind: str, size: int = 0) -> bytes:
    if body is None:
        raise Mp4Error(f"'{kind}' box is missing")
    if len(body) < size:
        raise Mp4Error(f"'{kind}' box is truncated")
    return body


def esds_audio_config(body: bytes) -> bytes:
    """The AudioSpecificConfig in an ES_Descriptor (14496-1 7.2.6.5)."""
    pos = 0

    def descriptor() -> tuple[int, int]:  # tag and payload size; pos moves to the payload
        nonlocal pos
        if pos >= len(body):
            raise Mp4Error("esds descriptor is truncated")
        tag = body[pos]
        pos += 1
        size = 0
        for _ in range(4):  # 14496-1 8.3.3: 7 bits a byte, high bit continues
            if pos >= len(body):
                raise Mp4Error("esds descriptor is truncated")
            byte = body[pos]
            pos += 1
            size = size << 7 | byte & 0x7F
            if not byte & 0x80:
                break
        return tag, size

    tag, _ = descriptor()
    if tag != 3:
        raise Mp4Error("esds does not start with an ES_Descriptor")
    if pos + 3 > len(body):
        raise Mp4Error("esds ES_Descriptor is truncated")
    es_flags = body[pos + 2]
    pos += 3
    if es_flags & 0x80:  # streamDependenceFlag
        pos += 2
    if es_flags & 0x40:  # URL_Flag
        pos += 1 + (body[pos] if pos < len(body) else 0)
    if es_flags & 0x20:  # OCRstreamFlag
        pos += 2
    tag, _ = descriptor()
    if tag != 4 or pos + 13 > len(body):
        raise Mp4Error("esds has no DecoderConfigDescriptor")
    object_type = body[pos]
    if object_type in _MP3_OBJECT_TYPES:
        raise UnsupportedMp4(
            f"unsupported audio codec MP3 (esds object type {object_type:#04x}); Strom accepts "
            "AAC or Opus audio"
        )
    if object_type not in _AAC_OBJECT_TYPES:
        raise Mp4Error(f"unsupported MPEG-4 audio object type {object_type:#04x}")
    pos += 13
    tag, size = descriptor()
    if tag != 5 or pos + size > len(body) or size == 0:
        raise Mp4Error("esds has no AudioSpecificConfig")
    return body[pos : pos + size]
