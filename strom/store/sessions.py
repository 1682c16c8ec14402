"""Log-in sessions, kept in the database so that every node sharing it agrees on which are
valid, and so that they can be ended: log-out, a password change, a suspension, "log out
everywhere".

A session is a random token (256 bits) carried by the browser's signed cookie; the table
keeps only its SHA-256, as for API tokens, so a leaked table logs nobody in. A session
ends ``SessionLimits.max_age`` after the log-in, or when its row is deleted.

Looking a session up on every request would cost a query per request, so a node keeps what
it found for ``SessionLimits.cache_seconds`` (a few seconds). The node that ends a session
forgets it at once; the other nodes notice within that time. Anonymous visitors (a CSRF
token and nothing else) have no row: their cookie is all there is.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from strom.settings import Settings, section, setting
from strom.store import queries as q
from strom.store.engine import Database
from strom.store.models import (
    SESSION_ADDRESS_MAX,
    SESSION_AGENT_MAX,
    UserRow,
    UserSessionRow,
)
from strom.store.security import SECRET_MAX, same_hash, secret_hash
from strom.store.views import User


def _days_to_seconds(days: float) -> float:
    return days * 86400.0


@dataclass(frozen=True)
class SessionLimits:
    #: seconds from log-in until the session ends (Django: 2 weeks; here 30 days)
    max_age: float = setting("session_days", _days_to_seconds)
    #: seconds a node trusts a session it looked up (0: ask the database every time)
    cache_seconds: float = setting("session_cache_seconds")
    #: ``last_seen_at`` is written at most this often per session (seconds)
    touch_interval: float = 300.0
    #: sessions one user may hold; logging in beyond it ends the least recently used
    max_per_user: int = 50
    #: sessions a node keeps in its cache
    cache_max: int = 20_000

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionLimits:
        return section(cls, settings)


@dataclass(frozen=True)
class SessionInfo:
    """A session as its user may see it in their list (never the token)."""

    id: int
    created_at: datetime
    last_seen_at: datetime
    user_agent: str
    address: str


@dataclass(frozen=True)
class LoggedIn:
    """A valid session and its user as they stood when it was looked up."""

    session: SessionInfo
    user: User


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


class SessionCache:
    """What this node found recently, by token hash, for ``ttl`` seconds; bounded (the
    least recently used go first). Time is passed in.

    ``epoch`` counts the sessions ended here: a look-up that started before one ended may
    have read the row just before it went, so it is not cached (:meth:`put` with the epoch
    read when the look-up began)."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.epoch = 0
        self._found: OrderedDict[str, tuple[float, LoggedIn]] = OrderedDict()
        self._by_user: dict[int, set[str]] = {}

    def get(self, digest: str, now: float) -> LoggedIn | None:
        entry = self._found.get(digest)
        if entry is None:
            return None
        if now - entry[0] >= self.ttl:
            self._drop(digest)
            return None
        self._found.move_to_end(digest)
        return entry[1]

    def put(self, digest: str, found: LoggedIn, now: float, epoch: int) -> None:
        if self.ttl <= 0 or epoch != self.epoch:
            return
        self._drop(digest)
        self._found[digest] = (now, found)
        self._by_user.setdefault(found.user.id, set()).add(digest)
        while len(self._found) > self.max_entries:
            self._drop(next(iter(self._found)))

    def forget(self, digest: str) -> None:
        """That session ended (or may have)."""
        self.epoch += 1
        self._drop(digest)

    def forget_user(self, user_id: int) -> None:
        """That user's sessions ended, or the user changed (suspended, made admin)."""
        self.epoch += 1
        for digest in list(self._by_user.get(user_id, ())):
            self._drop(digest)

    def _drop(self, digest: str) -> None:
        entry = self._found.pop(digest, None)
        if entry is not None:
            user_id = entry[1].user.id
            digests = self._by_user.get(user_id)
            if digests is not None:
                digests.discard(digest)
                if not digests:
                    del self._by_user[user_id]

    def __len__(self) -> int:
        return len(self._found)


class SessionStore:
    """The ``user_sessions`` table behind a small cache. Reached as ``Store.sessions``."""

    def __init__(
        self,
        db: Database,
        limits: SessionLimits | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self.limits = limits or SessionLimits()
        self._monotonic = monotonic
        self.cache = SessionCache(self.limits.cache_seconds, self.limits.cache_max)
        #: called with (user id, reason) when every session of a user ended through this
        #: node (the server closes that user's chat sockets here)
        self.listeners: list[Callable[[int, str], object]] = []

    async def create(
        self, user_id: int, *, user_agent: str = "", address: str = ""
    ) -> tuple[str, SessionInfo]:
        """A new session for ``user_id``: its token (for the cookie, nowhere else) and
        what its user may see of it. Also deletes every expired session, and this user's
        least recently used ones past ``max_per_user``."""
        token = new_session_token()
        now = self._db.now()
        async with self._db.transaction() as s:
            await s.execute(
                delete(UserSessionRow).where(UserSessionRow.created_at < self._cutoff())
            )
            surplus = (
                await s.scalars(
                    select(UserSessionRow.id)
                    .where(UserSessionRow.user_id == user_id)
                    .order_by(UserSessionRow.last_seen_at.desc(), UserSessionRow.id.desc())
                    .offset(max(0, self.limits.max_per_user - 1))
                )
            ).all()
            if surplus:
                await s.execute(delete(UserSessionRow).where(UserSessionRow.id.in_(surplus)))
            row = UserSessionRow(
                user_id=user_id,
                token_hash=secret_hash(token),
                created_at=now,
                last_seen_at=now,
                user_agent=_printable(user_agent, SESSION_AGENT_MAX),
                address=_printable(address, SESSION_ADDRESS_MAX),
            )
            s.add(row)
            await s.flush()
            info = _info(row)
        if surplus:
            self.cache.forget_user(user_id)
        return token, info

    async def resolve(self, token: str) -> LoggedIn | None:
        """The session and its user; ``None`` if it ended, expired, or the user is
        suspended. Cached for ``cache_seconds``."""
        if not token or len(token) > SECRET_MAX:
            return None
        digest = secret_hash(token)
        tick = self._monotonic()
        cached = self.cache.get(digest, tick)
        if cached is not None:
            return cached
        epoch = self.cache.epoch
        now = self._db.now()
        async with self._db.transaction() as s:
            found = (
                await s.execute(
                    select(UserSessionRow, UserRow)
                    .join(UserRow, UserRow.id == UserSessionRow.user_id)
                    .where(UserSessionRow.token_hash == digest)
                )
            ).one_or_none()
            if found is None:
                return None
            row, user = found
            if (
                not same_hash(row.token_hash, digest)
                or user.suspended
                or row.created_at < self._cutoff()
            ):
                return None
            if now - row.last_seen_at >= timedelta(seconds=self.limits.touch_interval):
                row.last_seen_at = now
            result = LoggedIn(_info(row), q.user_view(user))
        self.cache.put(digest, result, tick, epoch)
        return result

    async def end(self, token: str) -> None:
        """End one session (log-out). Unknown tokens are ignored."""
        if not token or len(token) > SECRET_MAX:
            return
        digest = secret_hash(token)
        self.cache.forget(digest)
        async with self._db.transaction() as s:
            await s.execute(delete(UserSessionRow).where(UserSessionRow.token_hash == digest))
        self.cache.forget(digest)  # again: a look-up may have cached it before the commit

    async def end_one(self, user_id: int, session_id: int) -> bool:
        """End one of ``user_id``'s sessions by its id (the sessions list); ``False`` if
        they have no such session."""
        async with self._db.transaction() as s:
            result = await s.execute(
                delete(UserSessionRow).where(
                    UserSessionRow.id == session_id, UserSessionRow.user_id == user_id
                )
            )
        self.cache.forget_user(user_id)
        return bool(getattr(result, "rowcount", 0))

    async def end_all(self, user_id: int, reason: str = "logged out everywhere") -> int:
        """Log ``user_id`` out everywhere. Returns how many sessions ended."""
        async with self._db.transaction() as s:
            ended = await self.end_all_in(s, user_id)
        self.ended_all(user_id, reason)
        return ended

    def ended_all(self, user_id: int, reason: str) -> None:
        """After the commit that ended every session of ``user_id``: forget them here and
        tell the listeners."""
        self.cache.forget_user(user_id)
        for listener in self.listeners:
            listener(user_id, reason)

    async def end_all_in(self, s: AsyncSession, user_id: int) -> int:
        """:meth:`end_all` inside the caller's transaction (a password change, a
        suspension: the change and the end of the sessions are one commit). The caller
        calls :meth:`ended_all` after the commit."""
        result = await s.execute(delete(UserSessionRow).where(UserSessionRow.user_id == user_id))
        self.cache.forget_user(user_id)
        return int(getattr(result, "rowcount", 0) or 0)

    async def list(self, user_id: int) -> list[SessionInfo]:
        """``user_id``'s current sessions, most recently seen first."""
        async with self._db.transaction() as s:
            rows = await s.scalars(
                select(UserSessionRow)
                .where(
                    UserSessionRow.user_id == user_id,
                    UserSessionRow.created_at >= self._cutoff(),
                )
                .order_by(UserSessionRow.last_seen_at.desc(), UserSessionRow.id.desc())
            )
            return [_info(r) for r in rows]

    def _cutoff(self) -> datetime:
        return self._db.now() - timedelta(seconds=self.limits.max_age)


def _info(row: UserSessionRow) -> SessionInfo:
    return SessionInfo(row.id, row.created_at, row.last_seen_at, row.user_agent, row.address)


def _printable(value: str, limit: int) -> str:
    """Kept for the user's sessions list: printable text only, cut to the column."""
    return "".join(c for c in value if c.isprintable())[:limit]
