"""Background tasks a service starts and must not lose: one home for "spawn and keep".

asyncio keeps only a weak reference to a task, so a fire-and-forget task can vanish
mid-flight; and a service that stops must wait for (or cancel) what it started. A
:class:`TaskSet` holds its tasks until they finish, logs a task that failed, and at
:meth:`close` either waits for the rest or cancels them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskSet:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s: a background task failed: %r", self.name, exc, exc_info=exc)

    async def close(self, *, cancel: bool = False) -> None:
        """Wait for every task (``cancel``: cancel them first); failures are logged."""
        while self._tasks:
            tasks = list(self._tasks)
            if cancel:
                for task in tasks:
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)
