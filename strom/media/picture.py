"""Still pictures a peer sends (JPEG, PNG, WebP): which format, and how large, read from
the header before anything decodes it. Sans-IO.

The desktop streamer Strom grew from sent one picture per frame, JPEG or PNG; a
picture's header says its size, and a few hundred hostile bytes can declare a huge one,
so the size is checked before a decoder allocates anything (as :mod:`strom.media.jpeg`
does for JPEG). Formats: JPEG (ITU-T T.81), PNG (ISO/IEC 15948: the ``IHDR`` chunk
first), WebP (RIFF with a ``VP8 ``, ``VP8L`` or ``VP8X`` chunk first; RFC 9649).
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.errors import CodecError
from strom.media.jpeg import parse_jpeg_header

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: a VP8 key frame's start code (RFC 6386 9.1)
_VP8_START = b"\x9d\x01\x2a"
#: a VP8L bitstream's signature byte (RFC 9649 3.2)
_VP8L_SIGNATURE = 0x2F


@dataclass(frozen=True, slots=True)
class PictureInfo:
    #: FFmpeg's decoder for it: "mjpeg", "png" or "webp"
    codec: str
    width: int
    height: int

    @property
    def format_name(self) -> str:
        return _NAMES[self.codec]


_NAMES = {"mjpeg": "JPEG", "png": "PNG", "webp": "WebP"}
#: data URL media types (RFC 2397) of the formats, and their decoders
MEDIA_TYPES = {
    "image/jpeg": "mjpeg",
    "image/jpg": "mjpeg",
    "image/pjpeg": "mjpeg",
    "image/png": "png",
    "image/webp": "webp",
}


def picture_codec(data: bytes) -> str | None:
    """The decoder of the picture ``data`` by its signature, None if it is no picture of
    a known format (only the first 16 bytes are looked at)."""
    if data[:3] == b"\xff\xd8\xff":
        return "mjpeg"
    if data[:8] == _PNG_SIGNATURE:
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def parse_picture_header(data: bytes) -> PictureInfo:
    """Format and size of the picture ``data``; :class:`CodecError` if it is none."""
    codec = picture_codec(data)
    if codec == "mjpeg":
        info = parse_jpeg_header(data)
        return PictureInfo(codec, info.width, info.height)
    if codec == "png":
        return _png(data)
    if codec == "webp":
        return _webp(data)
    raise CodecError("not a JPEG, PNG or WebP picture")


def _png(data: bytes) -> PictureInfo:
    # signature, then the IHDR chunk: length (13), type, width, height (big-endian)
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise CodecError("PNG without its IHDR chunk first")
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    return _sized("png", width, height)


def _webp(data: bytes) -> PictureInfo:
    kind = data[12:16]
    if kind == b"VP8X":  # extended: canvas width - 1 and height - 1, 24 bits each
        if len(data) < 30:
            raise CodecError("WebP VP8X header cut short")
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
    elif kind == b"VP8L":  # lossless: 14 bits each, minus one, after the signature
        if len(data) < 25 or data[20] != _VP8L_SIGNATURE:
            raise CodecError("WebP VP8L header cut short or without its signature")
        bits = int.from_bytes(data[21:25], "little")
        width = (bits & 0x3FFF) + 1
        height = ((bits >> 14) & 0x3FFF) + 1
    elif kind == b"VP8 ":  # lossy: a VP8 key frame header, 14-bit sizes after the start
        if len(data) < 30 or data[23:26] != _VP8_START:
            raise CodecError("WebP VP8 chunk without a key frame header")
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
    else:
        raise CodecError(f"WebP with an unknown first chunk {kind!r}")
    return _sized("webp", width, height)


def _sized(codec: str, width: int, height: int) -> PictureInfo:
    if width <= 0 or height <= 0:
        raise CodecError(f"{_NAMES[codec]} picture of {width}x{height}")
    return PictureInfo(codec, width, height)
