"""An original app's Socket.IO client for tests: python-socketio's, keeping every event."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import socketio

from strom.server import StromServer
from tests.helpers.chat import WAIT

APP_EVENTS = (
    "comment", "upvote", "viewers", "error", "notification", "room-closed", "user_muted",
    "comment_deleted", "chat_cleared", "close_room",
)  # fmt: skip


class App:
    """An original app: a python-socketio client that keeps every event it receives."""

    def __init__(
        self,
        server: StromServer,
        transports: list[str] | None = None,
        *,
        events: tuple[str, ...] = APP_EVENTS,
        wait: float = WAIT,
    ) -> None:
        self.url = f"http://127.0.0.1:{server.http_port}"
        self.transports = transports
        self.wait = wait
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._arrived = asyncio.Event()
        for name in events:
            self.sio.on(name, functools.partial(self._got, name))

    async def _got(self, name: str, *args: Any) -> None:
        self.events.append((name, args[0] if args else None))
        self._arrived.set()

    async def connect(self) -> App:
        await self.sio.connect(self.url, transports=self.transports, wait_timeout=self.wait)
        return self

    async def next(self, name: str, **match: Any) -> Any:
        """The next ``name`` event (with those fields) not returned before."""
        async with asyncio.timeout(self.wait):
            while True:
                for i, (got, data) in enumerate(self.events):
                    fields = data if isinstance(data, dict) else {}
                    if got == name and all(fields.get(k) == v for k, v in match.items()):
                        del self.events[i]
                        return data
                self._arrived.clear()
                await self._arrived.wait()

    async def call(self, event: str, data: Any) -> Any:
        return await self.sio.call(event, data, timeout=self.wait)
