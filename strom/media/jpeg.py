"""JPEG: just enough of the marker syntax to check a picture and read its size before
anything decodes it (ITU-T T.81 Annex B). Sans-IO.

A picture sent by a peer is hostile: a few hundred bytes can declare 65,535 x 65,535
samples. Reading the frame header first lets a caller refuse it before a decoder
allocates anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.errors import CodecError

_SOI = 0xD8
_EOI = 0xD9
_SOS = 0xDA
#: T.81 Table B.1: SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: T.81 B.1.1.2: markers that stand alone, without a length (TEM, RST0-RST7).
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True, slots=True)
class JpegInfo:
    """What a JPEG frame header (T.81 B.2.2) says about the picture."""

    width: int
    height: int
    #: Number of image components: 1 (greyscale), 3 (YCbCr) or 4 (CMYK).
    components: int
    #: The SOFn marker's n: 0 baseline, 1 extended, 2 progressive, 3 lossless...
    process: int


def parse_jpeg_header(data: bytes) -> JpegInfo:
    """The frame header of the JPEG picture ``data``; :class:`CodecError` if it is not one.

    Walks the marker segments from SOI to the first SOFn (T.81 B.2.1 and B.2.2). Fill bytes
    (``FF``) before a marker are allowed (B.1.1.2). A scan before any frame header, or a
    frame header that leaves the height to a later DNL segment, is refused.
    """
    if len(data) < 2 or data[0] != 0xFF or data[1] != _SOI:
        raise CodecError("not a JPEG picture (no SOI marker)")
    pos = 2
    end = len(data)
    while pos < end:
        if data[pos] != 0xFF:
            raise CodecError(f"JPEG marker expected at byte {pos}")
        while pos < end and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= end:
            break
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker in (_SOI, _EOI, _SOS, 0x00):
            raise CodecError(f"JPEG has marker {marker:02X} before its frame header")
        if pos + 2 > end:
            break
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > end:
            raise CodecError(f"JPEG marker segment {marker:02X} is truncated")
        if marker in _SOF_MARKERS:
            return _frame_header(marker, data[pos + 2 : pos + length])
        pos += length
    raise CodecError("JPEG is truncated before its frame header")


def _frame_header(marker: int, body: bytes) -> JpegInfo:
    # T.81 B.2.2: P(8) Y(16) X(16) Nf(8), then 3 bytes per component.
    if len(body) < 6:
        raise CodecError("JPEG frame header is truncated")
    height = int.from_bytes(body[1:3], "big")
    width = int.from_bytes(body[3:5], "big")
    components = body[5]
    if len(body) < 6 + 3 * components:
        raise CodecError("JPEG frame header is truncated")
    if width == 0 or height == 0:
        raise CodecError("JPEG picture has no size in its frame header")
    if components not in (1, 3, 4):
        raise CodecError(f"JPEG with {components} components is not supported")
    return JpegInfo(width, height, components, marker - 0xC0)
