"""Malformed input at the Socket.IO door, answered the way the rest of Strom answers it:
one log line and a closed connection, no traceback, nothing left behind.

python-engineio and python-socketio parse what clients send as if it were well formed.
A bad packet raises from inside them (``ValueError``, ``TypeError``, ``IndexError``); they
log it at ERROR with a traceback, and an Engine.IO WebSocket whose packet does not parse
dies without closing its session, which then lingers until the ping timeout (45 s).
The soak's garbage clients found these (``bench/garbage.py``); this module holds the
checks, the door (:mod:`strom.web.socketio.door`) applies them:

- :class:`GuardedWebSocket`: the aiohttp Engine.IO WebSocket transport that ends the
  session cleanly, at once, on a text packet that is not Engine.IO (empty, or a type
  other than 0-6, Engine.IO protocol v4 "packet encoding");
- :func:`socketio_packet_problem`: what is wrong with a Socket.IO packet before the
  library dispatches it (the door then disconnects the client);
- :class:`PeerErrorsAsWarnings`: the libraries' own lines about a client's bad request
  (a long-polling payload that does not parse, an unknown session, a wrong transport) as
  one-line warnings; everything else they log (our own handlers' errors) stays as it is.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode
from engineio.async_drivers.aiohttp import WebSocket
from socketio import packet as sio_packet

log = logging.getLogger(__name__)

#: an Engine.IO v4 packet sent as WebSocket text: its type digit first
_ENGINEIO_TEXT = re.compile(r"[0-6]")
#: Socket.IO packet types a client may send (CONNECT_ERROR is the server's)
_CLIENT_TYPES = frozenset(
    {
        sio_packet.CONNECT,
        sio_packet.DISCONNECT,
        sio_packet.EVENT,
        sio_packet.ACK,
        sio_packet.BINARY_EVENT,
        sio_packet.BINARY_ACK,
    }
)
#: what the libraries log about a client's bad request (engine.io ``_log_error_once``
#: and the long-polling POST handler), matched at the start of the message
_PEER_ERRORS = (
    "post request handler error",
    "Invalid session",
    "Invalid transport",
    "Invalid websocket upgrade",
    "Invalid JSONP index",
    "Unexpected HTTP request",
    "Socket for session",
    "Unknown receive error",
)


#: the Engine.IO WebSockets open in this process, by session id
_OPEN: weakref.WeakValueDictionary[str, GuardedWebSocket] = weakref.WeakValueDictionary()


class GuardedWebSocket(WebSocket):  # type: ignore[misc]  # engineio ships no types
    """engine.io's aiohttp WebSocket wrapper, ending the session on a text message that is
    not an Engine.IO packet: ``None`` from :meth:`wait` is engine.io's "the client
    closed", after which it closes the socket and the session in order."""

    async def __call__(self, environ: dict[str, Any]) -> Any:
        sid = getattr(getattr(self.handler, "__self__", None), "sid", None)
        if sid is not None:
            _OPEN[sid] = self
        try:
            return await super().__call__(environ)
        finally:
            if sid is not None and _OPEN.get(sid) is self:
                del _OPEN[sid]

    async def wait(self) -> Any:
        data = await super().wait()
        if isinstance(data, str) and not _ENGINEIO_TEXT.match(data):
            request = getattr(self, "environ", {}).get("aiohttp.request")
            peer = getattr(request, "remote", None) or "?"
            log.warning("socket.io %s: not an Engine.IO packet %r: closing", peer, data[:32])
            return None
        return data


async def close_websocket(eio_sid: str, reason: str) -> None:
    """Close the WebSocket of Engine.IO session ``eio_sid`` (1008, ``reason``), if it has
    one: engine.io, disconnecting a session, sends its close packet but then waits for
    the client to hang up, up to its ping timeout (45 s), which a hostile one never does."""
    ws = _OPEN.get(eio_sid)
    sock = getattr(ws, "_sock", None)
    if sock is not None:
        await sock.close(code=WSCloseCode.POLICY_VIOLATION, message=reason.encode()[:120])


def socketio_packet_problem(
    data: Any, connected: Callable[[str], bool] = lambda namespace: True
) -> str | None:
    """Why the Socket.IO packet ``data`` (one Engine.IO message's payload) cannot be
    dispatched, or None if it can. Parses it the way the library will; ``connected``
    says whether the client is connected to a namespace (binary packets need it)."""
    try:
        pkt = sio_packet.Packet(encoded_packet=data)
    except (ValueError, TypeError, IndexError, KeyError, RecursionError) as exc:
        return f"unreadable packet ({type(exc).__name__}: {str(exc)[:60]})"
    if pkt.packet_type not in _CLIENT_TYPES:
        return f"packet type {pkt.packet_type!r} is not one a client sends"
    if pkt.packet_type in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
        args = pkt.data
        if not isinstance(args, list) or not args or not isinstance(args[0], str):
            return "an event is a list starting with its name"
    if pkt.packet_type in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
        if not connected(pkt.namespace or "/"):
            return "a binary packet before connecting"
        count = pkt.attachment_count
        if count < 1:
            return "a binary packet without attachments"
        if not _placeholders_fit(pkt.data, count):
            return "a binary packet whose placeholders do not match its attachments"
    return None


def _placeholders_fit(data: Any, count: int, depth: int = 0) -> bool:
    """Every ``{"_placeholder": true, "num": n}`` in ``data`` names an attachment that
    comes (0 <= n < count), so that rebuilding the event cannot fail."""
    if depth > 32:
        return False
    if isinstance(data, dict):
        if data.get("_placeholder") is True:
            num = data.get("num")
            return isinstance(num, int) and not isinstance(num, bool) and 0 <= num < count
        return all(_placeholders_fit(v, count, depth + 1) for v in data.values())
    if isinstance(data, list):
        return all(_placeholders_fit(v, count, depth + 1) for v in data)
    return True


class PeerErrorsAsWarnings(logging.Filter):
    """On the libraries' loggers: their lines about a client's malformed request become
    one WARNING line (with the exception's message, without its traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if record.levelno >= logging.ERROR and message.startswith(_PEER_ERRORS):
            detail = ""
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                detail = f": {type(exc).__name__}: {str(exc)[:80]}"
            record.msg = f"socket.io: a client's bad request: {record.getMessage()}{detail}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.WARNING
            record.levelname = "WARNING"
        return True


async def checked_message(sio: Any, eio_sid: str, data: Any) -> None:
    """engine.io's message handler for ``sio`` (a python-socketio AsyncServer): its own,
    for well-formed packets; a malformed one ends the client's session with a log line."""
    sock = sio.eio.sockets.get(eio_sid)
    if sock is None or sock.closed or eio_sid not in sio.environ:
        return  # the rest of a long-polling payload whose session was just closed
    # A binary attachment completes a packet checked when it came (its placeholders).
    if eio_sid not in sio._binary_packet:
        problem = socketio_packet_problem(
            data, lambda ns: sio.manager.sid_from_eio_sid(eio_sid, ns) is not None
        )
        if problem is not None:
            environ = sio.environ.get(eio_sid) or {}
            peer = getattr(environ.get("aiohttp.request"), "remote", None) or "?"
            log.warning("socket.io %s: %s: disconnected", peer, problem)
            # Not eio.disconnect(): it waits until the close packet is sent, which
            # never happens once _disconnect has woken the socket's writer (and a
            # long-polling client may never poll again).
            await sock.close(wait=False, reason=sio.eio.reason.SERVER_DISCONNECT)
            await close_websocket(eio_sid, "malformed Socket.IO packet")
            return
    await sio._handle_eio_message(eio_sid, data)


def library_logger(name: str) -> logging.Logger:
    """A logger for python-socketio or python-engineio (``name``: which), under Strom's
    own names: configured by the application like every other, no handler of its own
    (the libraries add a stderr handler to their default loggers), WARNING and above
    (they log every event at INFO), client errors as warnings."""
    logger = logging.getLogger(f"strom.web.socketio.{name}")
    if logger.level == logging.NOTSET:  # they log every event at INFO
        logger.setLevel(logging.WARNING)
    if not any(isinstance(f, PeerErrorsAsWarnings) for f in logger.filters):
        logger.addFilter(PeerErrorsAsWarnings())
    return logger
