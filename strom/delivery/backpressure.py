"""Per-viewer backpressure: the bookkeeping check on the hot path.

A viewer whose socket cannot keep up never slows the others and never grows server
memory without bound. Past ``skip_bytes`` of unsent data it stops receiving chunks and
resumes at the next keyframe (it skips ahead rather than falling further behind); past
``drop_bytes``, or after skipping for ``drop_seconds``, it is disconnected with a reason.

Each delivery (WebSocket, RTMP play, the internal pulls) keeps one
:class:`DeliveryCounts` for all its viewers: what it sent and how often its viewers fell
behind, which ``/metrics`` reads at scrape time.
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


class DeliveryCounts:
    """What one delivery sent and how its slow viewers fared since the server started.

    Plain ints, shared by the delivery's viewers and added to where it happens: the
    hot path pays one addition for ``bytes_sent``; the rest count on the slow path."""

    __slots__ = ("bytes_sent", "drops", "skipped_chunks", "skips")

    def __init__(self) -> None:
        #: bytes written to viewers' sockets (media and the messages around it)
        self.bytes_sent = 0
        #: times a viewer fell behind and was made to skip ahead to the next keyframe
        self.skips = 0
        #: chunks not sent to a viewer while it skipped
        self.skipped_chunks = 0
        #: viewers disconnected for being too slow
        self.drops = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class Verdict(enum.Enum):
    SEND = "send"
    SKIP = "skip"
    DROP = "drop"


class BackpressureGate:
    """Decides, chunk by chunk, whether a viewer gets it."""

    __slots__ = (
        "_clock",
        "_counts",
        "_limits",
        "skipped",
        "skipping_since",
        "waiting_keyframe",
    )

    def __init__(
        self,
        limits: ViewerLimits,
        clock: Callable[[], float],
        counts: DeliveryCounts | None = None,
    ) -> None:
        self._limits = limits
        self._clock = clock
        #: the delivery's counts (skips, drops); the caller stops feeding after a DROP
        self._counts = counts if counts is not None else DeliveryCounts()
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
            self._counts.drops += 1
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
                self._counts.drops += 1
                return Verdict.DROP
            self._skipped()
            return Verdict.SKIP
        if buffered > limits.skip_bytes:
            self.waiting_keyframe = True
            self.skipping_since = self._clock()
            self._counts.skips += 1
            self._skipped()
            return Verdict.SKIP
        return Verdict.SEND

    def _skipped(self) -> None:
        self.skipped += 1
        self._counts.skipped_chunks += 1
