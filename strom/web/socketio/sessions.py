"""The Socket.IO door's Engine.IO sessions, bounded: how many one address may open, how
many exist in all, and how long one may sit unused.

python-socketio's Engine.IO server makes a session for every handshake (``GET
/socket.io/?EIO=4&transport=polling``, no ``sid``) and keeps it until its pings go
unanswered, 45-60 s later: 3,000 handshakes in a burst from one address held ~21 MiB for
about a minute. :class:`EngineIOSessions` stands in front of it (the door's middleware
hands it every request on ``/socket.io/``):

* a handshake beyond ``socketio_max_sessions_per_address`` open sessions from its address
  (IPv6 per /64, exempt networks aside) is answered 429, beyond ``socketio_max_sessions``
  in all 503, with a JSON reason, before Engine.IO makes anything;
* a session that has not connected to Socket.IO ``socketio_connect_timeout`` seconds
  after its handshake is closed;
* a long-polling session with no request for ``socketio_poll_timeout`` seconds is closed:
  a live polling client always has a GET waiting, or sends the next one at once (an
  upgraded session's WebSocket is one long request, so it never idles this way);
* a session has at most one polling GET and one POST in flight (a second is refused with
  400, as Engine.IO's reference server does).

The count follows Engine.IO's own ``connect`` and ``disconnect`` events, so a session is
released exactly once however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from strom.ratelimit import AddressSlots, IPNetwork, RefusalLog, SlotLimits
from strom.settings import Settings, exempt_networks, section, setting
from strom.web.errors import Handler, json_error

log = logging.getLogger(__name__)

#: how often sessions are checked for expiry (seconds)
SWEEP_INTERVAL = 1.0


@dataclass(frozen=True)
class EngineIOLimits:
    #: sessions open at once (0: no limit)
    max_sessions: int = setting("socketio_max_sessions")
    #: sessions open at once per client address (0: no limit)
    max_per_address: int = setting("socketio_max_sessions_per_address")
    exempt: tuple[IPNetwork, ...] = setting("connection_limit_exempt", exempt_networks)
    #: seconds from the handshake to the Socket.IO connect
    connect_timeout: float = setting("socketio_connect_timeout")
    #: seconds a long-polling session may go without a request
    poll_timeout: float = setting("socketio_poll_timeout")

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineIOLimits:
        return section(cls, settings)


@dataclass(eq=False)
class EngineIOSession:
    """One handshake, then (once Engine.IO made it) one session."""

    host: str
    opened: float
    last_seen: float
    #: requests of this session being served now (an upgraded WebSocket is one)
    in_flight: int = 0
    #: the long-polling requests being served now: "poll" (a GET), "send" (a POST)
    polling: set[str] = field(default_factory=set)
    #: connected to Socket.IO (its namespace), not only to Engine.IO
    joined: bool = False
    #: Engine.IO's session id, once it made the session
    sid: str | None = None
    #: holds a slot in the per-address count
    counted: bool = True

    def expired(self, now: float, limits: EngineIOLimits) -> str | None:
        """Why this session should be closed now, if it should."""
        if not self.joined and now - self.opened > limits.connect_timeout:
            return f"no Socket.IO connect within {limits.connect_timeout:g} s"
        if self.in_flight == 0 and now - self.last_seen > limits.poll_timeout:
            return f"no request for {limits.poll_timeout:g} s"
        return None


#: the session a handshake request is making (Engine.IO's connect event finds it here)
SESSION_KEY = web.RequestKey("strom_engineio_session", EngineIOSession)


class EngineIOSessions:
    """The sessions of one Engine.IO server (``socketio.AsyncServer.eio``)."""

    def __init__(self, eio: Any, limits: EngineIOLimits) -> None:
        self.eio = eio
        self.limits = limits
        self.slots = AddressSlots(
            SlotLimits(
                per_address=limits.max_per_address,
                total=limits.max_sessions,
                exempt=limits.exempt,
            )
        )
        self.sessions: dict[str, EngineIOSession] = {}
        self.expired = 0
        self._refusals = RefusalLog(log)
        self._on_connect = eio.handlers["connect"]
        self._on_disconnect = eio.handlers["disconnect"]
        eio.on("connect", self._connected)
        eio.on("disconnect", self._disconnected)

    # -- requests --------------------------------------------------------------------------

    async def handle(self, request: web.Request, handle: Handler) -> web.StreamResponse:
        """Serve one request on the Engine.IO path with ``handle`` (Engine.IO's own), if
        it may be: a new handshake must find a free slot."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        sid = request.query.get("sid")
        if sid is not None:
            session = self.sessions.get(sid)
        elif request.method == "GET":
            host = request.remote or ""
            full = bool(self.limits.max_sessions) and self.slots.total >= self.limits.max_sessions
            refusal = self.slots.acquire(host)
            if refusal is not None:
                self._refusals.warning(
                    "socket.io handshake", now, "socket.io %s refused: %s", host, refusal
                )
                if full:
                    return json_error(503, "too many Socket.IO sessions; try again later")
                return json_error(429, refusal)
            session = EngineIOSession(host, now, now)
            request[SESSION_KEY] = session
        else:
            session = None  # Engine.IO answers it (a bad request)
        if session is None:
            return await handle(request)
        kind = _polling_kind(request)
        if kind is not None:
            if kind in session.polling:
                # One GET and one POST at a time, as Engine.IO's reference server has it:
                # and so one session holds at most one slow body.
                return json_error(400, f"overlapping {kind} requests in one session")
            session.polling.add(kind)
        session.in_flight += 1
        try:
            return await handle(request)
        finally:
            session.in_flight -= 1
            session.polling.discard(kind or "")
            session.last_seen = loop.time()
            if session.sid is None:  # the handshake made no session
                self._release(session)

    def joined(self, environ: dict[str, Any]) -> None:
        """The session whose handshake ``environ`` was connected to Socket.IO."""
        request = environ.get("aiohttp.request")
        if isinstance(request, web.Request):
            session = request.get(SESSION_KEY)
            if session is not None:
                session.joined = True

    # -- Engine.IO's events ----------------------------------------------------------------

    async def _connected(self, sid: str, environ: dict[str, Any]) -> Any:
        request = environ.get("aiohttp.request")
        session = request.get(SESSION_KEY) if isinstance(request, web.Request) else None
        if session is not None:
            session.sid = sid
            self.sessions[sid] = session
        result = await self._on_connect(sid, environ)
        if result is not None and result is not True and session is not None:
            self.sessions.pop(sid, None)  # refused: no disconnect event will follow
            self._release(session)
        return result

    async def _disconnected(self, sid: str, reason: Any = None) -> None:
        session = self.sessions.pop(sid, None)
        if session is not None:
            self._release(session)
        await self._on_disconnect(sid, reason)

    def _release(self, session: EngineIOSession) -> None:
        if session.counted:
            session.counted = False
            self.slots.release(session.host)

    # -- expiry ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Close expired sessions, every :data:`SWEEP_INTERVAL` seconds, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = loop.time()
            for sid, session in list(self.sessions.items()):
                why = session.expired(now, self.limits)
                if why is not None:
                    await self._expire(sid, session, why, now)

    async def _expire(self, sid: str, session: EngineIOSession, why: str, now: float) -> None:
        self.expired += 1
        if session.joined:  # a client that went away without a goodbye: nothing unusual
            log.debug("socket.io %s: session closed: %s", session.host, why)
        else:
            self._refusals.warning(
                "socket.io session", now, "socket.io %s: session closed: %s", session.host, why
            )
        sock = self.eio.sockets.get(sid)
        if sock is not None:
            # Closed without waiting for the client to collect a CLOSE packet (it is gone,
            # or never meant to): the disconnect event releases the slot.
            try:
                await sock.close(wait=False, abort=True, reason=self.eio.reason.SERVER_DISCONNECT)
            except Exception as exc:  # Engine.IO's own state; the session goes anyway
                log.debug("socket.io %s: closing %s: %r", session.host, sid, exc)
            wake(sock)
            self.eio.sockets.pop(sid, None)
        if self.sessions.pop(sid, None) is not None:
            self._release(session)

    def metrics(self) -> dict[str, int]:
        return {
            "open": self.slots.total,
            "addresses": len(self.slots),
            "refused": self.slots.refused,
            "expired": self.expired,
        }


def _polling_kind(request: web.Request) -> str | None:
    """ "poll" for a long-polling GET, "send" for a POST, None for a WebSocket upgrade."""
    if request.method == "POST":
        return "send"
    if request.method == "GET" and "upgrade" not in request.headers.get("Connection", "").lower():
        return "poll"
    return None


def wake(sock: Any) -> None:
    """End the long-poll GET (or the WebSocket writer) waiting on Engine.IO socket ``sock``:
    it gets an empty answer."""
    queue = getattr(sock, "queue", None)
    if isinstance(queue, asyncio.Queue):
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)
