"""Per-channel chat rooms: messages, likes, moderation, viewer counts (the engine; its
WebSocket endpoint is :mod:`strom.web.chat`, the Socket.IO door :mod:`strom.web.socketio`).

See ``docs/chat-protocol.md`` for the wire protocol and :mod:`strom.chat.bus` for the seam
where rooms are shared between processes.
"""

from strom.chat.bus import LocalBus, RoomBus
from strom.chat.limits import ChatLimits
from strom.chat.service import ChatService

__all__ = ["ChatLimits", "ChatService", "LocalBus", "RoomBus"]
