"""The HTTP listener's guard: a deadline for request heads and a cap on connections per
client address, in front of aiohttp (nginx's ``client_header_timeout`` and ``limit_conn``).

aiohttp reads a request head for as long as the peer keeps sending, so a client trickling
a byte every few seconds holds a connection (and its task) for as long as it likes, and
nothing bounds how many connections one address opens. Every accepted connection gets a
:class:`GuardedConnection`, a thin protocol around aiohttp's own ``RequestHandler``:

* the connection is counted under its peer address (an
  :class:`~strom.ratelimit.AddressSlots`); past ``http_max_connections_per_address`` it is
  answered ``429`` and closed without ever reaching aiohttp;
* a timer starts at accept: if the first request head is not complete
  ``http_header_timeout`` seconds later, however many bytes trickled in meanwhile, the
  connection is answered ``408`` and closed (a connection that sent nothing at all is just
  closed, as a browser's unused pre-connection expects). aiohttp tells the guard that a
  head is complete by calling the server's request factory
  (:meth:`ConnectionGuard.watch`);
* later heads on a kept-alive connection are bounded by aiohttp's keep-alive timer, which
  runs from the end of the previous answer and is not pushed back by bytes received: the
  next head must be complete within ``http_keepalive_timeout``;
* a request body (forms and JSON: at most the app's 64 KiB) must arrive in full within
  ``http_body_timeout`` of its head (:func:`body_deadline_middleware`), else 408; streamed
  bodies (push ingest) have their own idle timeouts.

Only bytes received pass through the wrapper (one call per read); answers and media are
written straight to the transport, as before. The client's address is the socket's peer:
no forwarding header is trusted here (a trusted proxy's connections are not counted per
address, :mod:`strom.web.forwarded` finds their clients).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Middleware

from strom.ratelimit import AddressSlots, IPNetwork, RefusalLog, SlotLimits
from strom.settings import Settings, exempt_networks, section, setting
from strom.web.errors import json_error

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: how long a refused connection stays open to read (and drop) what its client still
#: sends: closing with unread bytes would reset the connection before the answer is read
REFUSAL_LINGER = 1.0


@dataclass(frozen=True)
class HttpLimits:
    #: seconds from accept to the first complete request head
    header_timeout: float = setting("http_header_timeout")
    #: seconds an idle kept-alive connection waits for its next complete request head
    keepalive_timeout: float = setting("http_keepalive_timeout")
    #: seconds a (small, not streamed) request body may take to arrive in full
    body_timeout: float = setting("http_body_timeout")
    #: connections open at once per client address (0: no limit)
    max_per_address: int = setting("http_max_connections_per_address")
    exempt: tuple[IPNetwork, ...] = setting("connection_limit_exempt", exempt_networks)

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        # A trusted proxy's connections carry many clients: they are counted per client
        # address further in (strom.web.forwarded), not per connection here.
        limits = section(cls, settings)
        return replace(limits, exempt=limits.exempt + settings.proxy_networks)


def error_answer(status: int, phrase: str, error: str) -> bytes:
    """A complete HTTP/1.1 answer with Strom's JSON error body, closing the connection."""
    body = json.dumps({"error": error}).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class ConnectionGuard:
    """The connections of one HTTP listener, counted per address, and their first heads'
    deadlines."""

    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        self.slots = AddressSlots(
            SlotLimits(per_address=limits.max_per_address, exempt=limits.exempt)
        )
        #: aiohttp's protocol -> its guard, while its first request head is awaited
        self.awaiting_head: dict[asyncio.BaseProtocol, GuardedConnection] = {}
        self._watched: set[int] = set()
        self.refusals = RefusalLog(log)
        self.header_timeouts = 0
        self.body_timeouts = 0

    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        """What the listening socket makes per connection: aiohttp's protocol, guarded."""

        def factory() -> asyncio.Protocol:
            return GuardedConnection(self, server)

        return factory

    def watch(self, server: web.Server) -> None:
        """Learn from ``server`` when a request head is complete: aiohttp calls its request
        factory once per head it has parsed (or failed to parse), with the protocol."""
        if id(server) in self._watched:
            return
        self._watched.add(id(server))
        make_request = server.request_factory

        def request_factory(
            message: Any, payload: Any, protocol: Any, writer: Any, task: Any
        ) -> web.BaseRequest:
            conn = self.awaiting_head.pop(protocol, None)
            if conn is not None:
                conn.head_complete()
            return make_request(message, payload, protocol, writer, task)

        server.request_factory = request_factory

    def metrics(self) -> dict[str, int]:
        return {
            "open": self.slots.total,
            "addresses": len(self.slots),
            "refused": self.slots.refused,
            "header_timeouts": self.header_timeouts,
            "body_timeouts": self.body_timeouts,
        }


class GuardedConnection(asyncio.Protocol):
    """One HTTP connection: counted under its address, its first head under a deadline,
    everything else handed to aiohttp's ``RequestHandler``."""

    def __init__(self, guard: ConnectionGuard, server: web.Server) -> None:
        self._guard = guard
        self._server = server
        self._handler: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._host = ""
        self._counted = False
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        #: bytes received before the first head was complete
        self._received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's classes: no isinstance check
        self._transport = transport = cast(asyncio.Transport, transport)
        guard = self._guard
        peer = transport.get_extra_info("peername")
        self._host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        loop = asyncio.get_running_loop()
        refusal = guard.slots.acquire(self._host)
        if refusal is not None:
            guard.refusals.warning(
                "http connection", loop.time(), "http %s refused: %s", self._host, refusal
            )
            self._hang_up(error_answer(429, "Too Many Requests", refusal))
            return
        self._counted = True
        handler = self._handler = self._server()
        guard.awaiting_head[handler] = self
        self._timer = loop.call_later(guard.limits.header_timeout, self._head_late)
        handler.connection_made(transport)

    def head_complete(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_late(self) -> None:
        self._timer = None
        guard = self._guard
        if self._handler is not None:
            guard.awaiting_head.pop(self._handler, None)
        limit = guard.limits.header_timeout
        if not self._received:  # a browser's unused pre-connection, as often as not
            log.debug("http %s closed: no request within %g s", self._host, limit)
            if self._transport is not None:
                self._closing = True
                self._transport.close()
            return
        guard.header_timeouts += 1
        loop = asyncio.get_running_loop()
        guard.refusals.warning(
            "http header timeout",
            loop.time(),
            "http %s closed: no complete request head within %g s (%d bytes received)",
            self._host,
            limit,
            self._received,
        )
        error = f"the request head was not complete within {limit:g} s"
        self._hang_up(error_answer(408, "Request Timeout", error))

    def _hang_up(self, answer: bytes) -> None:
        """Answer and close; what the client still sends meanwhile is read and dropped."""
        transport = self._transport
        if transport is None or self._closing:
            return
        self._closing = True
        transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(REFUSAL_LINGER, transport.abort)
        else:
            transport.close()

    # -- asyncio.Protocol: everything else goes to aiohttp ----------------------------------

    def data_received(self, data: bytes) -> None:
        if self._closing or self._handler is None:
            return
        if self._timer is not None:
            self._received += len(data)
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        if self._closing or self._handler is None:
            return False  # close
        return self._handler.eof_received()

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._counted:
            self._counted = False
            self._guard.slots.release(self._host)
        handler, self._handler = self._handler, None
        self._transport = None
        if handler is not None:
            self._guard.awaiting_head.pop(handler, None)
            handler.connection_lost(exc)


def body_deadline_middleware(
    guard: ConnectionGuard,
    streamed: tuple[str, ...],
    larger: tuple[tuple[str, int], ...] = (),
    may_send_larger: Callable[[web.Request], Awaitable[bool]] | None = None,
) -> Middleware:
    """Read a request's body before its handler runs, within the guard's ``body_timeout``
    (a body trickled in never finishes); paths starting with one of ``streamed`` read
    their bodies as they come, under their own timeouts. Paths starting with a prefix in
    ``larger`` may send bodies up to its size (uploads) instead of the app's limit, if
    ``may_send_larger`` says so of the request (asked before any of the body is read)."""
    timeout = guard.limits.body_timeout

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        for prefix, size in larger:
            if request.path.startswith(prefix):
                if may_send_larger is None or await may_send_larger(request):
                    request = request.clone(client_max_size=size)
                break
        if request.body_exists and not request.path.startswith(streamed):
            try:
                async with asyncio.timeout(timeout):
                    if request.content_type == "multipart/form-data":
                        await request.post()  # parsed once, kept for the handler
                    else:
                        await request.read()  # kept for the handler's post(), json()
            except TimeoutError:
                guard.body_timeouts += 1
                guard.refusals.warning(
                    "http body timeout",
                    asyncio.get_running_loop().time(),
                    "http %s %s %s: the body did not arrive within %g s",
                    request.remote,
                    request.method,
                    request.path,
                    timeout,
                )
                error = f"the request body did not arrive within {timeout:g} s"
                response = json_error(408, error)
                response.force_close()
                return response
        return await handler(request)

    return middleware


class GuardedSite(web.BaseSite):
    """A TCP listening socket whose connections pass a :class:`ConnectionGuard` first
    (after a TLS handshake when given ``tls``: HTTPS)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: ConnectionGuard,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner)
        self._guard = guard
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        self._tls = tls
        self.bound_port = port

    @property
    def name(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self._host}:{self.bound_port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._guard.watch(server)
        loop = asyncio.get_running_loop()
        self._server = listener = await loop.create_server(
            self._guard.protocol_factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
            ssl=self._tls,
            # the TLS handshake comes before the first head, under the same deadline
            ssl_handshake_timeout=self._guard.limits.header_timeout if self._tls else None,
        )
        # asyncio's or uvloop's server: both list their sockets (port 0: the one chosen)
        sockets = getattr(listener, "sockets", None) or ()
        if sockets:
            self.bound_port = int(sockets[0].getsockname()[1])
