"""Chat test helpers: a WebSocket chat client speaking the documented protocol, and
people (accounts with a signed session cookie, or guests) to hold it."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from strom.server import StromServer
from strom.store import Store, User
from strom.web.auth import COOKIE, CSRF_HEADER, Session, SessionCodec

PASSWORD = "a long enough password"
WAIT = 5.0  # seconds: a bound on waiting for an event, never a timing assertion


@dataclass
class Closed:
    code: int
    reason: str


class ChatClient:
    """One chat socket. Server frames are kept as they came (``frames``) and flattened into
    events (``events``), batches unpacked, so a test can look for an event by type."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.closed: Closed | None = None
        self.welcome: dict[str, Any] = {}

    async def send(self, type: str, **fields: Any) -> None:
        await self.ws.send_json({"type": type, **fields})

    async def say(self, text: str, nonce: str | None = None) -> None:
        await self.send("send", text=text, **({"nonce": nonce} if nonce else {}))

    async def _read(self) -> bool:
        msg = await self.ws.receive(timeout=WAIT)
        if msg.type is aiohttp.WSMsgType.TEXT:
            frame = msg.json()
            self.frames.append(frame)
            if frame["type"] == "batch":
                self.events.extend(frame["events"])
            else:
                self.events.append(frame)
            return True
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            self.closed = Closed(self.ws.close_code or 0, msg.extra or "")
            return False
        return True

    async def next(self, type: str, **match: Any) -> dict[str, Any]:
        """The next event of ``type`` (with the given field values) not returned before."""
        deadline = asyncio.get_running_loop().time() + WAIT
        while True:
            for i in range(len(self.events)):
                event = self.events[i]
                if event["type"] == type and all(event.get(k) == v for k, v in match.items()):
                    self.events.pop(i)
                    return event
            if self.closed is not None:
                raise AssertionError(f"closed ({self.closed}) while waiting for {type} {match}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no {type} {match}; got {self.events}")
            await self._read()

    async def error(self, code: str) -> dict[str, Any]:
        return await self.next("error", code=code)

    async def sync(self) -> None:
        """Round trip: everything the server sent this socket before now has arrived."""
        nonce = secrets.token_hex(4)
        await self.send("ping", nonce=nonce)
        await self.next("pong", nonce=nonce)

    async def closing(self) -> Closed:
        while self.closed is None:
            await self._read()
        return self.closed

    def seen(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type]

    async def close(self) -> None:
        await self.ws.close()


class ChatNode(Protocol):
    """What a person needs of a node: an in-process :class:`StromServer`, or a
    ``strom serve`` process (:class:`tests.helpers.nodes.Node`, no store: give the
    account's token)."""

    @property
    def http_port(self) -> int: ...

    @property
    def secret(self) -> bytes:
        """The key session cookies are signed with."""
        ...

    @property
    def store(self) -> Store | None: ...


@dataclass
class Person:
    """A browser: an account's signed session, or a guest's (anonymous) one."""

    server: ChatNode
    user: User | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    http: aiohttp.ClientSession | None = None
    clients: list[ChatClient] = field(default_factory=list)
    #: the log-in session's token (made in the server's store when not given)
    token: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    async def session(self) -> aiohttp.ClientSession:
        """An HTTP client with this person's cookie: for an account, a real log-in
        session (a row in the store, as the log-in form makes)."""
        if self.http is None:
            if self.user is not None and self.token is None:
                assert self.server.store is not None
                self.token, _ = await self.server.store.sessions.create(self.user.id)
            session = Session(csrf=self.csrf, token=self.token, issued=time.time())
            cookie = SessionCodec(self.server.secret).encode(session)
            self.http = aiohttp.ClientSession(cookies={COOKIE: cookie})
        return self.http

    async def join(self, channel: str) -> ChatClient:
        ws = await (await self.session()).ws_connect(f"{self.base}/chat/{channel}/ws")
        client = ChatClient(ws)
        client.welcome = await client.next("welcome")
        self.clients.append(client)
        return client

    async def api(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {CSRF_HEADER: self.csrf} if method != "GET" else {}
        async with (await self.session()).request(
            method, self.base + path, headers=headers, **kwargs
        ) as resp:
            return resp.status, await resp.json()

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        if self.http is not None:
            await self.http.close()


class People:
    def __init__(self, server: StromServer) -> None:
        self.server = server
        self.all: list[Person] = []

    async def account(self, username: str, *, admin: bool = False) -> Person:
        store = self.server.store
        assert store is not None
        user, _ = await store.users.create(username, PASSWORD, admin=admin)
        person = Person(self.server, user)
        self.all.append(person)
        return person

    def guest(self) -> Person:
        person = Person(self.server)
        self.all.append(person)
        return person
