"""The Socket.IO door for the original apps (python-socketio in aiohttp mode): their chat
events bridged into Strom's rooms (:mod:`.door`), their JPEG streams into the ingest;
malformed packets refused with one log line (:mod:`.guard`); Engine.IO sessions bounded
per address and in all, and expired when unused (:mod:`.sessions`)."""

from strom.web.socketio.door import SOCKETIO_PATH, SocketIODoor
from strom.web.socketio.sessions import EngineIOLimits

__all__ = ["SOCKETIO_PATH", "EngineIOLimits", "SocketIODoor"]
