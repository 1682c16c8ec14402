"""HEVC parameter sets from x265 and hvcC records made of them, for byte-level tests."""

from __future__ import annotations

import struct

from strom.media import hevc

# x265 4.x, 320x180 Main (coded 320x184: the conformance window crops 4 rows), level 2.
VPS = bytes.fromhex("40010c01ffff01600000030090000003000003003c959409")
SPS = bytes.fromhex(
    "42010101600000030090000003000003003ca00a080c1f3e595952930b9a020000030002000003003c10"
)
PPS = bytes.fromhex("4401c073c189")
#: the fixed part of x265's record: Main, compatibility 0x60000000, constraints 0x90,
#: level 60, 4:2:0 8 bits, lengthSizeMinusOne 3
HEADER = bytes.fromhex("0101600000009000000000003cf000fcfdf8f800000f")


def hvcc(*nals: bytes, length_size: int = 4) -> bytes:
    """An hvcC with one array per NAL unit (array_completeness 1)."""
    header = bytearray(HEADER)
    header[21] = (header[21] & 0xFC) | (length_size - 1)
    arrays = b"".join(
        bytes((0x80 | hevc.nal_type(nal),)) + struct.pack(">HH", 1, len(nal)) + nal for nal in nals
    )
    return bytes(header) + bytes((len(nals),)) + arrays
