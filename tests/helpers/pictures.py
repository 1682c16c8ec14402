"""Small pictures made in memory for upload tests: a real PNG, and hostile ones."""

from __future__ import annotations

import os
import struct
import zlib


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png(
    width: int, height: int, rgb: tuple[int, int, int] = (200, 40, 120), *, noise: bool = False
) -> bytes:
    """An 8-bit RGB PNG (ISO/IEC 15948): one colour, or random pixels (``noise``: a file
    that does not compress, as large as a photo)."""
    rows = b"".join(
        b"\x00" + (os.urandom(3 * width) if noise else bytes(rgb) * width)  # filter 0
        for _ in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A few dozen bytes that declare a picture of ``width`` x ``height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"x")
