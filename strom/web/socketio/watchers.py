"""Sockets that watch a stream's pictures (``watch_frames``), as the original desktop
app's HTML5 viewers did (:mod:`strom.ingest.frame_relay` relays the pictures).

The watchers of a room are the Socket.IO room ``frames:{name}``, so a picture is emitted
once (python-socketio encodes it once) whatever their number. A watcher that does not
keep up (more than ``max_queued`` packets waiting in its engine.io queue) leaves that
room until its queue has drained to half that: it misses pictures rather than piling
them up, and the others do not wait for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strom.tasks import TaskSet

#: packets a watcher may have waiting before it misses pictures
MAX_QUEUED = 8


def frames_room(name: str) -> str:
    return "frames:" + name.lower()


class FrameWatchers:
    def __init__(
        self,
        sio: Any,
        queued: Callable[[str], int],
        tasks: TaskSet,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._sio = sio
        #: packets waiting to be sent to a socket
        self._queued = queued
        self._tasks = tasks
        self._max = max_queued
        self._by_room: dict[str, set[str]] = {}
        self._paused: set[str] = set()

    async def watch(self, sid: str, name: str) -> None:
        self._by_room.setdefault(name.lower(), set()).add(sid)
        await self._sio.enter_room(sid, frames_room(name))

    def gone(self, sid: str) -> None:
        """``sid`` disconnected (python-socketio leaves its rooms itself)."""
        self._paused.discard(sid)
        for name in [n for n, sids in self._by_room.items() if sid in sids]:
            self._by_room[name].discard(sid)
            if not self._by_room[name]:
                del self._by_room[name]

    def watched(self, name: str) -> bool:
        return bool(self._by_room.get(name.lower()))

    def before_relay(self, name: str) -> None:
        """Take the watchers that fell behind out of the room, put back those that caught
        up (before a picture is emitted to it)."""
        room = frames_room(name)
        for sid in self._by_room.get(name.lower(), ()):
            queued = self._queued(sid)
            if sid not in self._paused and queued > self._max:
                self._paused.add(sid)
                self._tasks.spawn(self._sio.leave_room(sid, room))
            elif sid in self._paused and queued <= self._max // 2:
                self._paused.discard(sid)
                self._tasks.spawn(self._sio.enter_room(sid, room))
