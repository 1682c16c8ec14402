"""An MSB-first bit reader for codec configuration syntax (SPS, AudioSpecificConfig).

Configuration records are parsed once per stream, so clarity wins over speed here; frame
data never goes through this reader.
"""

from __future__ import annotations

from strom.errors import CodecError

#: Exp-Golomb codes with more leading zeros than this cannot encode a 32-bit value.
_MAX_EXP_GOLOMB_ZEROS = 31


class BitReader:
    """Reads big-endian bit fields; running past the end raises :class:`CodecError`."""

    __slots__ = ("_bits", "_pos", "_value", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self._value = int.from_bytes(data, "big")
        self._bits = len(data) * 8
        self._pos = 0
        #: Named in error messages, e.g. ``"SPS"``.
        self.what = what

    @property
    def remaining(self) -> int:
        """Bits not yet read."""
        return self._bits - self._pos

    def u(self, n: int) -> int:
        """An unsigned ``n``-bit field, ``u(n)`` in ISO/IEC 14496-10 7.2."""
        end = self._pos + n
        if end > self._bits:
            raise CodecError(f"{self.what} is truncated")
        self._pos = end
        return (self._value >> (self._bits - end)) & ((1 << n) - 1)

    def flag(self) -> bool:
        return self.u(1) == 1

    def ue(self) -> int:
        """An unsigned Exp-Golomb code, ``ue(v)`` (ISO/IEC 14496-10 9.1)."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > _MAX_EXP_GOLOMB_ZEROS:
                raise CodecError(f"{self.what} has an invalid Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """A signed Exp-Golomb code, ``se(v)`` (ISO/IEC 14496-10 9.1.1)."""
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)
