"""Decode times for a stream that stores presentation times only (Matroska, RFC 9559
section 11: blocks carry presentation timestamps), reconstructed the way ffmpeg does."""

from __future__ import annotations

import heapq

from strom.media import h264

_PROFILE_BASELINE = 66
_MAX_REORDER = 16  # ISO/IEC 14496-10 A.3.1: at most 16 frames in the DPB


class DecodeTimes:
    """Decode times for a track that stores presentation times only (ffmpeg's method).

    With at most ``reorder`` frames reordered, frame *i*'s decode time is the *i*-th
    smallest presentation time delayed by ``reorder`` frames: keep the last ``reorder``
    presentation times, add the new one, and the smallest leaves as the decode time. The
    first frames take times ``step`` apart before the first presentation time; the
    demuxer shifts every timestamp by ``reorder * step`` so none of them is negative.
    """

    __slots__ = ("_last", "_pending", "_step", "reorder")

    def __init__(self, reorder: int, step: int) -> None:
        self.reorder = reorder
        self._step = step
        self._pending: list[int] | None = None
        self._last: int | None = None

    def dts(self, pts: int) -> int:
        pending = self._pending
        if pending is None:
            pending = self._pending = [
                pts - (self.reorder - k) * self._step for k in range(self.reorder)
            ]
        dts = heapq.heappushpop(pending, pts)
        if dts < 0 <= pts:
            dts = 0  # no room before the first frame (no timestamp offset): crowd at 0
        if self._last is not None and dts < self._last:
            dts = self._last  # reordered deeper than the SPS said: keep decode order
        self._last = dts
        return dts


def reorder_depth(avcc: bytes, assumed: int) -> int:
    """How many frames may be reordered: the SPS's word, else ``assumed`` (0 for
    Baseline, which has no B slices: ISO/IEC 14496-10 A.2.1)."""
    cfg = h264.parse_avcc(avcc)
    if cfg.profile_idc == _PROFILE_BASELINE:
        return 0
    reorder = h264.parse_sps(cfg.sps[0]).max_num_reorder_frames
    return assumed if reorder is None else min(reorder, _MAX_REORDER)
