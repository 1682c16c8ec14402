"""The DVR's audience: someone watching a live channel rewound (its recording so far,
behind the live edge) is still one of the channel's viewers.

The player reloads the recording's playlist every few seconds with its own random id
(``?viewer=``); each id is a counted subscriber of the channel that takes no media, there
while its playlist requests keep coming and :data:`DVR_VIEWER_LINGER` seconds after the
last. So the channel's count (the directory, the channel page, the chat room, the peak of
the broadcast, the other nodes through the live map) includes them with nothing else to
add up.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

from strom.live.channel import Channel, Subscriber, TooManyViewers
from strom.live.chunk import Chunk
from strom.live.registry import Registry

log = logging.getLogger(__name__)

#: a DVR viewer counts this long after its player last asked for the playlist (s)
DVR_VIEWER_LINGER = 10.0
#: DVR viewers this node keeps at once (each is a dict entry and a subscriber)
DVR_VIEWERS_MAX = 20_000
VIEWER_ID = re.compile(r"[0-9a-f]{16,32}")


class DvrViewer(Subscriber):
    """A viewer of the DVR: counted, and takes no media from the live channel."""

    transport = "dvr"

    def on_live(self, channel: Channel) -> None:
        return

    def on_chunk(self, chunk: Chunk) -> None:
        return

    def on_end(self) -> None:
        return


class DvrAudience:
    def __init__(self, registry: Registry, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.clock = clock
        #: (channel name, viewer id) -> the channel, its subscriber, when last seen
        self._viewers: dict[tuple[str, str], tuple[Channel, DvrViewer, float]] = {}
        self._sweeping: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._viewers)

    def seen(self, name: str, viewer: str) -> bool:
        """The viewer ``viewer`` of ``name``'s DVR asked for its playlist: it counts now
        (a malformed id, an offline channel or a full one: it does not). True if it does."""
        channel = self.registry.get(name)
        if not VIEWER_ID.fullmatch(viewer) or channel is None or not channel.live:
            return False
        now = self.clock()
        key = (channel.name, viewer)
        known = self._viewers.get(key)
        if known is not None:
            self._viewers[key] = (known[0], known[1], now)
            return True
        if len(self._viewers) >= DVR_VIEWERS_MAX:
            return False
        subscriber = DvrViewer()
        try:
            channel.subscribe(subscriber)
        except TooManyViewers:
            return False
        self._viewers[key] = (channel, subscriber, now)
        self._schedule()
        return True

    def sweep(self) -> int:
        """Let go of the viewers not seen for DVR_VIEWER_LINGER seconds; how many went."""
        self._sweeping = None
        limit = self.clock() - DVR_VIEWER_LINGER
        gone = [key for key, (_, _, at) in self._viewers.items() if at < limit]
        for key in gone:
            channel, subscriber, _ = self._viewers.pop(key)
            channel.unsubscribe(subscriber)
        if self._viewers:
            self._schedule()
        return len(gone)

    def close(self) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
            self._sweeping = None
        for channel, subscriber, _ in self._viewers.values():
            channel.unsubscribe(subscriber)
        self._viewers.clear()

    def _schedule(self) -> None:
        if self._sweeping is None:
            self._sweeping = asyncio.get_running_loop().call_later(
                DVR_VIEWER_LINGER / 2, self.sweep
            )
