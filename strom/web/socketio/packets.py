"""The shapes the original apps' Socket.IO events come in: a room key or a stream key, bare
or in an object under one of the names those apps used; and the rooms' own WebSocket
frames unwrapped for re-emitting as Socket.IO events."""

from __future__ import annotations

from typing import Any

from strom.store.security import SECRET_MAX


def unframe(frame: bytes) -> bytes:
    """The payload of one of the rooms' own frames: final, unmasked, with a 7-, 16- or
    64-bit length (RFC 6455 section 5.2)."""
    length = frame[1] & 0x7F
    return frame[2 if length < 126 else 4 if length == 126 else 10 :]


def room_name(data: Any) -> str | None:
    if isinstance(data, dict):
        data = data.get("roomKey", data.get("room", data.get("key")))
    return data if isinstance(data, str) else None


def stream_key(data: Any) -> str | None:
    if isinstance(data, dict):
        data = data.get("key", data.get("streamKey", data.get("roomKey")))
    return data if isinstance(data, str) and 0 < len(data) <= SECRET_MAX else None


class RoomClaims:
    """Which socket created each open room on this node (its broadcaster: it may close
    the room, and its disconnect closes it). Names compare in any case."""

    def __init__(self) -> None:
        self._owner: dict[str, tuple[str, str]] = {}  # lower-case name -> (name, sid)

    def claim(self, name: str, sid: str) -> bool:
        """Make ``sid`` the room's broadcaster, unless another socket is."""
        found = self._owner.get(name.lower())
        if found is not None and found[1] != sid:
            return False
        self._owner[name.lower()] = (name, sid)
        return True

    def owner(self, name: str) -> str | None:
        found = self._owner.get(name.lower())
        return found[1] if found is not None else None

    def release(self, name: str) -> None:
        self._owner.pop(name.lower(), None)

    def rooms_of(self, sid: str) -> list[str]:
        return [name for name, owner in self._owner.values() if owner == sid]
