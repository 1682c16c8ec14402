"""Why a channel's last publish was refused, for its streamer's dashboard.

An encoder shows a refusal briefly or not at all (OBS: "Failed to connect"); the
streamer's dashboard shows the reason the server gave (an unsupported codec, the channel
already live, ...). Kept in memory on the node that refused, for a bounded number of
channels, and forgotten once the channel goes live again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: channels whose last refusal is remembered (the oldest noted is forgotten first)
DEFAULT_MAX_CHANNELS = 1000
#: a reason longer than this is cut (it comes from our own messages, but may quote input)
MAX_REASON = 300


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    #: seconds since the epoch
    at: float


class PublishRefusals:
    def __init__(
        self, max_channels: int = DEFAULT_MAX_CHANNELS, clock: Callable[[], float] = time.time
    ) -> None:
        self._max = max_channels
        self._clock = clock
        self._last: OrderedDict[str, Refusal] = OrderedDict()

    def note(self, channel: str, reason: str) -> None:
        self._last.pop(channel, None)
        self._last[channel] = Refusal(reason[:MAX_REASON], self._clock())
        while len(self._last) > self._max:
            self._last.popitem(last=False)

    def accepted(self, channel: str) -> None:
        """``channel`` went live (the registry says so): an older refusal is no news."""
        self._last.pop(channel, None)

    def last(self, channel: str) -> Refusal | None:
        return self._last.get(channel)
