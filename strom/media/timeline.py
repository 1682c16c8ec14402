"""Timestamps that wrap: RTMP/FLV's 32-bit milliseconds, MPEG-TS's 33-bit 90 kHz clock."""

from __future__ import annotations


class WrappingClock:
    """Extends ``bits``-wide timestamps across their wrap into one growing timeline.

    A timestamp more than half the range below the last one means the clock wrapped
    forwards; one more than half the range above it is a late one from before the wrap.
    """

    __slots__ = ("_epoch", "_half", "_last", "_wrap")

    def __init__(self, bits: int) -> None:
        self._wrap = 1 << bits
        self._half = 1 << (bits - 1)
        self._epoch = 0
        self._last: int | None = None

    def extend(self, timestamp: int) -> int:
        raw = timestamp & (self._wrap - 1)
        last = self._last
        if last is not None:
            if raw < last - self._half:  # wrapped forwards
                self._epoch += self._wrap
            elif raw > last + self._half:  # a late timestamp from before the last wrap
                return raw + self._epoch - self._wrap
        self._last = raw
        return raw + self._epoch
