"""EBML (RFC 8794) primitives for the WebM demuxer: element IDs and sizes read from a
buffer that may stop anywhere, children of an element held whole, and Matroska block
lacing (RFC 9559 10.3). Sans-IO helpers; :mod:`strom.media.containers.webm` drives them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from strom.errors import ProtocolError, UnsupportedMedia

LACING_NONE, LACING_XIPH, LACING_FIXED, LACING_EBML = 0, 0x02, 0x04, 0x06
_MAX_LACED_FRAMES = 256


class WebmError(ProtocolError):
    """Malformed or unsupported WebM/Matroska stream."""


class UnsupportedWebm(WebmError, UnsupportedMedia):
    """A codec or variant this demuxer recognises but Strom does not take."""


def read_id(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """An element ID (RFC 8794 5) at ``pos``: ``(id, length)``, or ``None`` if cut short."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    if first & 0x80:
        length = 1
    elif first & 0x40:
        length = 2
    elif first & 0x20:
        length = 3
    elif first & 0x10:
        length = 4
    else:
        raise WebmError(f"invalid EBML element ID byte {first:#04x}")
    if pos + length > len(buf):
        return None
    return int.from_bytes(buf[pos : pos + length], "big"), length


def read_size(buf: bytes | bytearray, pos: int) -> tuple[int | None, int] | None:
    """An element data size (RFC 8794 4): ``(size, length)`` with ``None`` for an unknown
    size (all value bits set), or ``None`` if cut short."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    if first == 0:
        raise WebmError("invalid EBML size (more than 8 bytes long)")
    length = 9 - first.bit_length()
    if pos + length > len(buf):
        return None
    value = int.from_bytes(buf[pos : pos + length], "big") & ((1 << (7 * length)) - 1)
    if value == (1 << (7 * length)) - 1:
        return None, length
    return value, length


def children(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The child elements of a master element held in memory (all of known size)."""
    pos = 0
    end = len(data)
    while pos < end:
        ident = read_id(data, pos)
        size = read_size(data, pos + ident[1]) if ident else None
        if ident is None or size is None:
            raise WebmError("EBML element header is truncated")
        value, length = size
        pos += ident[1] + length
        if value is None:
            raise WebmError(f"element {ident[0]:#x} of unknown size inside a sized one")
        if pos + value > end:
            raise WebmError(f"element {ident[0]:#x} runs past its parent")
        yield ident[0], data[pos : pos + value]
        pos += value


def read_uint(data: bytes) -> int:
    if len(data) > 8:
        raise WebmError("EBML unsigned integer longer than 8 bytes")
    return int.from_bytes(data, "big")


def read_float(data: bytes) -> float:
    if len(data) == 4:
        return float(struct.unpack(">f", data)[0])
    if len(data) == 8:
        return float(struct.unpack(">d", data)[0])
    if not data:
        return 0.0
    raise WebmError("EBML float of invalid length")


def _lace_size_vint(data: bytes, pos: int) -> tuple[int, int]:
    size = read_size(data, pos)
    if size is None or size[0] is None:
        raise WebmError("block lace size is truncated")
    return size[0], pos + size[1]


def unlace(payload: bytes, lacing: int) -> list[bytes]:
    """Split a laced block's frames (RFC 9559 10.3: Xiph, EBML and fixed-size lacing)."""
    if not payload:
        raise WebmError("laced block is empty")
    count = payload[0] + 1
    if count > _MAX_LACED_FRAMES:
        raise WebmError("too many laced frames")
    pos = 1
    sizes: list[int] = []
    if lacing == LACING_FIXED:
        total = len(payload) - pos
        if total % count:
            raise WebmError("fixed-size lacing does not divide the block")
        sizes = [total // count] * count
    elif lacing == LACING_XIPH:
        for _ in range(count - 1):
            size = 0
            while True:
                if pos >= len(payload):
                    raise WebmError("Xiph lace size is truncated")
                byte = payload[pos]
                pos += 1
                size += byte
                if byte != 255:
                    break
            sizes.append(size)
    else:  # EBML lacing: the first size as a vint, then signed differences
        size, pos = _lace_size_vint(payload, pos)
        sizes.append(size)
        for _ in range(count - 2):
            value, pos_after = _lace_size_vint(payload, pos)
            length = pos_after - pos
            pos = pos_after
            size += value - ((1 << (7 * length - 1)) - 1)  # signed: subtract the bias
            if size < 0:
                raise WebmError("EBML lace size is negative")
            sizes.append(size)
    if lacing != LACING_FIXED:
        last = len(payload) - pos - sum(sizes)
        if last < 0:
            raise WebmError("laced frames run past the block")
        sizes.append(last)
    frames = []
    for size in sizes:
        frames.append(payload[pos : pos + size])
        pos += size
    return frames
