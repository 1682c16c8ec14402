"""One Socket.IO connection as the door keeps it (:mod:`strom.web.socketio.door`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from strom.chat.room import Identity, Member, Room
from strom.ratelimit import TokenBucket


@dataclass(eq=False)
class SioClient:
    """One Socket.IO connection: who it is, and the chat rooms it is in."""

    sid: str
    guest: Identity
    peer: str
    frames: TokenBucket
    #: room key -> (room, member) for each room joined
    rooms: dict[str, tuple[Room, Member]] = field(default_factory=dict)
    #: stream key given to create_room -> room key (the broadcaster may use it as roomKey)
    keys: dict[str, str] = field(default_factory=dict)
    closed: bool = False
