"""Write merging for big audiences: two frames in one write per WebSocket viewer.

On loopback and on a busy server most of a viewer's cost is the send itself (the
syscall, and the wake-up of the reader behind it), once per video frame. With more than
``ws_merge_above`` viewers of a channel, a chunk may be *held* until the next one
arrives; every viewer then writes both in one go, the same shared bytes (framed and
joined once per channel, not per viewer). That halves the writes and the wake-ups at
the price of one frame interval of latency on the held frame.

The hold is bounded: a chunk is held only when the next one is expected within
``ws_merge_hold`` seconds (the last gap between chunks), and a timer writes it anyway
when the next one is late (a stall, the end). A viewer's frames stay exact and in order:
what a viewer holds (the first chunk of the channel's :class:`Batch`) is written before
anything else it is sent.

:class:`WriteMerger` decides once per chunk, for a whole channel; the viewers
(:class:`~strom.delivery.ws.WsViewer`) follow its :class:`Step`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from strom.live.chunk import Chunk, ChunkEncoder
from strom.settings import Settings, section, setting


@dataclass(frozen=True)
class MergeLimits:
    above: int = setting("ws_merge_above")
    hold: float = setting("ws_merge_hold")

    @classmethod
    def from_settings(cls, settings: Settings) -> MergeLimits:
        return section(cls, settings)


class Step(enum.Enum):
    WRITE = "write"  # send the chunk now (after anything held)
    HOLD = "hold"  # keep it: the next chunk comes soon
    FLUSH = "flush"  # send the batch, this chunk last


class Batch:
    """A held chunk and, once the next one came, both: their merged wire form is
    joined once for every viewer of the channel."""

    __slots__ = ("_data", "_encoder", "chunks")

    def __init__(self, first: Chunk, encoder: ChunkEncoder) -> None:
        self.chunks = [first]
        self._encoder = encoder
        self._data: bytes | None = None

    @property
    def held(self) -> bytes:
        """The wire form of the held chunk alone."""
        return self.chunks[0].encoded(self._encoder)

    def data(self) -> bytes:
        """The wire form of every chunk of the batch, in order."""
        if self._data is None:
            self._data = b"".join(c.encoded(self._encoder) for c in self.chunks)
        return self._data


class Holder(Protocol):
    """A viewer that may hold a tail of a batch."""

    def release(self, batch: Batch) -> None:
        """Write what it holds of ``batch`` (the hold is over)."""


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class WriteMerger:
    """One channel's merging: for each new chunk, once, whether its viewers hold it,
    write it, or write the batch it completes. The clock and ``schedule(delay,
    callback)``, which arms the timer that bounds a hold, are passed in (``loop.time``,
    ``loop.call_later``)."""

    def __init__(
        self,
        limits: MergeLimits,
        encoder: ChunkEncoder,
        clock: Callable[[], float],
        schedule: Callable[[float, Callable[[], None]], TimerHandle],
    ) -> None:
        self.limits = limits
        self._encoder = encoder
        self._clock = clock
        self._schedule = schedule
        #: the viewers that may hold chunks (every WebSocket viewer of the channel)
        self.viewers: set[Holder] = set()
        #: the newest chunk, and what its viewers do with it
        self.current: Chunk | None = None
        self.step = Step.WRITE
        #: the batch of :attr:`step` (HOLD: the one open, FLUSH: the one completed)
        self.batch: Batch | None = None
        self._open: Batch | None = None
        self._timer: TimerHandle | None = None
        self._last_arrival: float | None = None
        self._gap = float("inf")

    def see(self, chunk: Chunk) -> Step:
        """A new chunk of the channel (the first viewer to be given it asks); the step
        and its batch are then :attr:`step` and :attr:`batch` for the other viewers."""
        now = self._clock()
        if self._last_arrival is not None:
            self._gap = now - self._last_arrival
        self._last_arrival = now
        self.current = chunk
        held = self._open
        if held is not None:
            # Closes the batch: the held chunk waited one gap, this one none.
            self._stop_timer()
            self._open = None
            held.chunks.append(chunk)
            self.batch, self.step = held, Step.FLUSH
        elif 0 < self.limits.above < len(self.viewers) and self._gap <= self.limits.hold:
            self._open = self.batch = Batch(chunk, self._encoder)
            self._timer = self._schedule(self.limits.hold, self._expire)
            self.step = Step.HOLD
        else:
            self.batch, self.step = None, Step.WRITE
        return self.step

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        """The next chunk is late: every viewer writes what it holds now."""
        self._timer = None
        batch = self._open
        if batch is None:
            return
        self._open = self.batch = None
        self.current = None  # a viewer joining now gets the held chunk as a past one
        self.step = Step.WRITE
        for viewer in list(self.viewers):
            viewer.release(batch)

    def close(self) -> None:
        """No viewer left: stop the timer (a held chunk has no one to go to)."""
        self._stop_timer()
        self._open = self.batch = self.current = None
        self.step = Step.WRITE
