"""Per-viewer backpressure: the bookkeeping check on the hot path.

A viewer whose socket cannot keep up never slows the others and never grows server
memory without bound. Past ``skip_bytes`` of unsent data it stops receiving chunks and
resumes at the next keyframe (it skips ahead rather than falling further behind); past
``drop_bytes``, or after skipping for ``drop_seconds``, it is disconnected with a reason.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from strom.live.chunk import Chunk
from strom.settings import Settings, section, setting


@dataclass(frozen=True)
class ViewerLimits:
    skip_bytes: int = setting("viewer_skip_bytes")
    drop_bytes: int = setting("viewer_drop_bytes")
    drop_seconds: float = setting("viewer_drop_seconds")

    @classmethod
    def from_settings(cls, settings: Settings) -> ViewerLimits:
        return section(cls, settings)


class Verdict(enum.Enum):
    SEND = "send"
    SKIP = "skip"
    DROP = "drop"


class BackpressureGate:
    """Decides, chunk by chunk, whether a viewer gets it."""

    __slots__ = ("_clock", "_limits", "skipped", "skipping_since", "waiting_keyframe")

    def __init__(self, limits: ViewerLimits, clock: Callable[[], float]) -> None:
        self._limits = limits
        self._clock = clock
        #: True until the viewer has been given a keyframe to start from.
        self.waiting_keyframe = True
        self.skipping_since: float | None = None
        self.skipped = 0

    def restart(self) -> None:
        """A new init segment was sent: decoding must restart at a keyframe."""
        self.waiting_keyframe = True

    def admit(self, chunk: Chunk, buffered: int) -> Verdict:
        limits = self._limits
        if buffered > limits.drop_bytes:
            return Verdict.DROP
        if self.waiting_keyframe:
            if chunk.keyframe and buffered <= limits.skip_bytes:
                self.waiting_keyframe = False
                self.skipping_since = None
                return Verdict.SEND
            if (
                self.skipping_since is not None
                and self._clock() - self.skipping_since > limits.drop_seconds
            ):
                return Verdict.DROP
            self.skipped += 1
            return Verdict.SKIP
        if buffered > limits.skip_bytes:
            self.waiting_keyframe = True
            self.skipping_since = self._clock()
            self.skipped += 1
            return Verdict.SKIP
        return Verdict.SEND
