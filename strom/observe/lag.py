"""How late the event loop runs a timer: the server's own health number.

A node whose loop runs late serves every viewer late; the lag is the first thing to
look at when players stall. Sampled a few times a second by a timer, kept as the last
sample, the worst of the last ten seconds, and a histogram of every sample.
"""

from __future__ import annotations

import asyncio

from strom.observe.histogram import Histogram

#: from a healthy loop's fraction of a millisecond to a stall of seconds
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: seconds over which :attr:`LoopLagMonitor.max_recent` is the worst sample
_RECENT = 10.0


class LoopLagMonitor:
    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        #: seconds late, the last sample and the worst of the last ten seconds or so
        self.last = 0.0
        self.max_recent = 0.0
        #: every sample since the start
        self.samples = Histogram(LAG_BUCKETS)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        window_start = loop.time()
        peak = 0.0
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.last = max(0.0, loop.time() - before - self.interval)
            self.samples.observe(self.last)
            peak = max(peak, self.last)
            if loop.time() - window_start > _RECENT:
                self.max_recent, peak, window_start = peak, 0.0, loop.time()
            else:
                self.max_recent = max(self.max_recent, peak)
