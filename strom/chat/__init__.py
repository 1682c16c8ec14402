"""Per-channel chat rooms over WebSocket: messages, likes, moderation, viewer counts.

See ``docs/chat-protocol.md`` for the wire protocol and :mod:`strom.chat.bus` for the seam
where rooms are shared between processes.
"""

from strom.chat.bus import LocalBus, RoomBus
from strom.chat.limits import ChatLimits
from strom.chat.server import routes as chat_routes
from strom.chat.service import ChatService

__all__ = ["ChatLimits", "ChatService", "LocalBus", "RoomBus", "chat_routes"]
