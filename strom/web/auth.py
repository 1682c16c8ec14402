"""Sessions, CSRF protection and API tokens for the web application.

A browser holds one signed cookie (HMAC-SHA256 over a small JSON document with an issue
time): its CSRF token and, once it has logged in, a session token. The session itself is
a row in the database (:mod:`strom.store.sessions`), so log-out, a password change, a
suspension or "log out everywhere" end it on every node: the signature proves the cookie
is ours, the row that it is still valid. Anonymous visitors have the cookie only.

Every cookie session, anonymous ones included, carries a CSRF token: a state-changing
request made with the cookie must echo it in the ``csrf_token`` form field or the
``X-CSRF-Token`` header. A request that a valid ``Authorization: Bearer`` API token
authenticates needs none, and its cookie is ignored entirely (neither read nor written):
browsers never add that header by themselves, so such a request cannot be forged. A
bogus token exempts nothing: the request is judged by its cookie, CSRF check included.

Media paths (media WebSockets, LL-HLS, recordings, static files, thumbnails) neither look
the session up nor set a cookie: they need no identity, and a viewer pulls several a
second.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from strom.errors import ApiError
from strom.store import DatabaseUnavailable, Store
from strom.web.errors import Handler, json_error

if TYPE_CHECKING:
    from strom.store import User

log = logging.getLogger(__name__)

COOKIE = "strom_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: paths whose requests authenticate by a secret in the URL, never by the cookie
#: (``PUT /ingest/{stream key}`` from ffmpeg or curl): no CSRF token, bodies left unread
CSRF_EXEMPT_PREFIXES = ("/ingest/",)
#: media paths, the node's numbers and the public event stream: no session look-up, no
#: cookie (``/live/{channel}`` itself is a page)
_MEDIA = re.compile(
    r"/(?:static|vod|thumbnails|hls|avatars)/|/metrics$|/api/v1/stats$|/events/ws$"
    r"|/live/[^/]+/|/live/[^/]+\.m3u8$|/whip(?:/|$)"
)


def load_or_create_secret(data_dir: Path) -> bytes:
    """The signing secret, kept in the data directory (0600) so restarts keep sessions."""
    path = data_dir / "secret.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex())
    return secret


@dataclass(frozen=True)
class Session:
    """The request's identity: a browser's cookie session (anonymous or logged in), or the
    user of a valid API token (``via_token``)."""

    csrf: str
    user_id: int | None = None
    username: str | None = None
    is_admin: bool = False
    issued: float = 0.0
    #: the log-in's token, carried by the cookie (the database keeps its hash only)
    token: str | None = None
    #: the log-in's row id (the sessions list marks "this browser" with it)
    session_id: int | None = None
    #: authenticated by an API token: no cookie read or written, no CSRF token needed
    via_token: bool = False

    @property
    def logged_in(self) -> bool:
        return self.user_id is not None


SESSION_KEY = web.RequestKey("strom_session", Session)
_DIRTY = web.RequestKey("strom_session_dirty", bool)
_FORM_CSRF = web.RequestKey("strom_form_csrf", str)
_BEARER_REFUSED = web.RequestKey("strom_bearer_refused", bool)
_STORE = web.RequestKey("strom_session_store", Store)


class SessionCodec:
    """The cookie: ``{"c": CSRF token, "s": session token or null, "t": issued}``, signed."""

    def __init__(self, secret: bytes, max_age: float = 30 * 86400) -> None:
        self._key = hashlib.sha256(b"strom-session\0" + secret).digest()
        self.max_age = max_age

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def encode(self, session: Session) -> str:
        doc = {"c": session.csrf, "s": session.token, "t": int(session.issued)}
        body = base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode())
        sig = base64.urlsafe_b64encode(self._sign(body))
        return (body + b"." + sig).decode()

    def decode(self, value: str, now: float) -> Session | None:
        """The cookie's session, not yet looked up (anonymous until the store says whose
        its token is); ``None`` if it is forged, unreadable or too old."""
        try:
            body, _, sig = value.encode().partition(b".")
            if not hmac.compare_digest(base64.urlsafe_b64decode(sig), self._sign(body)):
                return None
            doc = json.loads(base64.urlsafe_b64decode(body))
            token = doc.get("s")  # absent from cookies made before sessions were stored
            session = Session(
                csrf=str(doc["c"]),
                issued=float(doc["t"]),
                token=token if isinstance(token, str) and token else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if now - session.issued > self.max_age:
            return None
        return session


def new_session() -> Session:
    return Session(csrf=secrets.token_urlsafe(24), issued=time.time())


def get_session(request: web.Request) -> Session:
    return request[SESSION_KEY]


def set_session(request: web.Request, session: Session) -> None:
    """Replace the session (login, logout); the middleware writes the cookie."""
    request[SESSION_KEY] = session
    request[_DIRTY] = True


def bearer_refused(request: web.Request) -> bool:
    """Whether the request offered an API token that is unknown, revoked or whose user
    is suspended (the API answers 401 rather than acting on the cookie)."""
    return bool(request.get(_BEARER_REFUSED, False))


def authenticated_user(request: web.Request) -> str:
    """The authenticated username: the API token's user, or the cookie session's (the
    session middleware looked both up and checked the CSRF header); a JSON 401 otherwise.
    A request that offers a bad token gets 401 even with a logged-in cookie."""
    if bearer_refused(request):
        raise ApiError(401, "invalid or revoked API token")
    session = get_session(request)
    if session.logged_in and session.username is not None:
        return session.username
    raise ApiError(401, "log in or send an API token")


async def login(request: web.Request, user: User) -> None:
    """Start a session for ``user`` in this browser: a new row, a new session token and a
    new CSRF token (none seen before authentication is reused; Django's
    ``cycle_key``). A session the browser had before ends."""
    current = request[SESSION_KEY]
    if current.via_token:
        raise web.HTTPBadRequest(text="Log in from a browser, without an API token.")
    sessions = request[_STORE].sessions
    if current.token is not None:
        await sessions.end(current.token)
    token, info = await sessions.create(
        user.id,
        user_agent=request.headers.get("User-Agent", ""),
        address=request.remote or "",
    )
    set_session(
        request,
        replace(
            new_session(),
            user_id=user.id,
            username=user.username,
            is_admin=user.is_admin,
            token=token,
            session_id=info.id,
        ),
    )


async def logout(request: web.Request) -> None:
    """End this browser's session (its row goes: the cookie no longer logs anyone in,
    on any node) and give it a fresh anonymous one."""
    current = request[SESSION_KEY]
    if current.token is not None:
        await request[_STORE].sessions.end(current.token)
    if not current.via_token:
        set_session(request, new_session())


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


async def identify(request: web.Request, codec: SessionCodec, store: Store) -> tuple[Session, bool]:
    """The request's session and whether its cookie must be (re)written."""
    token = _bearer_token(request)
    if token is not None:
        user = await store.tokens.resolve(token)
        if user is not None:
            session = Session(
                csrf="", user_id=user.id, username=user.username,
                is_admin=user.is_admin, via_token=True,
            )  # fmt: skip
            return session, False
        request[_BEARER_REFUSED] = True
    raw = request.cookies.get(COOKIE)
    cookie = codec.decode(raw, time.time()) if raw else None
    if cookie is None:
        return new_session(), True
    if cookie.token is None:
        return cookie, False
    found = await store.sessions.resolve(cookie.token)
    if found is None:  # ended (log-out, elsewhere) or expired: anonymous, same CSRF
        return replace(cookie, token=None), True
    user = found.user
    session = replace(
        cookie,
        user_id=user.id,
        username=user.username,
        is_admin=user.is_admin,
        session_id=found.session.id,
    )
    return session, False


def session_middleware(
    codec: SessionCodec, store: Store, *, secure_cookies: bool
) -> web.middleware:  # type: ignore[valid-type]
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[_STORE] = store
        if _MEDIA.match(request.path):
            raw = request.cookies.get(COOKIE)
            request[SESSION_KEY] = (codec.decode(raw, time.time()) if raw else None) or Session(
                csrf=""
            )
            return await handler(request)
        try:
            session, rewrite = await identify(request, codec, store)
        except DatabaseUnavailable:
            log.warning("%s %s: no session look-up, the database is unavailable",
                        request.method, request.path)  # fmt: skip
            return json_error(503, "the site's database is unavailable; try again shortly")
        request[SESSION_KEY] = session
        if rewrite:
            request[_DIRTY] = True
        exempt = session.via_token or request.path.startswith(CSRF_EXEMPT_PREFIXES)
        if request.method in _UNSAFE and not exempt and not _csrf_ok(request):
            if bearer_refused(request) and COOKIE not in request.cookies:
                return json_error(401, "invalid or revoked API token")
            return json_error(403, "CSRF token missing or wrong; reload the page and retry")
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects after login/logout carry the cookie
            _store(request, exc)
            raise
        _store(request, response)
        return response

    def _store(request: web.Request, response: web.StreamResponse) -> None:
        session = request[SESSION_KEY]
        if session.via_token or not request.get(_DIRTY) or response.prepared:
            return
        response.set_cookie(
            COOKIE,
            codec.encode(session),
            max_age=int(codec.max_age),
            httponly=True,
            samesite="Lax",
            secure=secure_cookies or request.secure,
            path="/",
        )

    return middleware


def admin_uploads(codec: SessionCodec, store: Store) -> Callable[[web.Request], Awaitable[bool]]:
    """Whether a request may send an upload's larger body: an administrator's (by cookie
    or API token) only, asked before the body is read; a stranger's stays within the
    app's limit."""

    async def allowed(request: web.Request) -> bool:
        try:
            session, _ = await identify(request, codec, store)
        except DatabaseUnavailable:
            return False
        return session.is_admin

    return allowed


def _csrf_ok(request: web.Request) -> bool:
    expected = request[SESSION_KEY].csrf
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None:
        # Form posts: the field is read by the handler via request.post(); peek here.
        supplied = request.get(_FORM_CSRF)
    return (
        bool(expected)
        and supplied is not None
        and hmac.compare_digest(supplied.encode(), expected.encode())
    )


def csrf_form_middleware() -> web.middleware:  # type: ignore[valid-type]
    """Reads urlencoded form bodies early so the CSRF check can see the hidden field."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            request.method in _UNSAFE
            and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
            and not request.path.startswith(CSRF_EXEMPT_PREFIXES)
        ):
            form = await request.post()
            value = form.get(CSRF_FIELD)
            if isinstance(value, str):
                request[_FORM_CSRF] = value
        return await handler(request)

    return middleware
