"""Accounts: registering (with the user's channel), logging in, passwords, suspension and
the admin flag. Reached as ``Store.users``.

Users are named by username, compared without case; methods that change something about
a user who does not exist raise :class:`UnknownUser`. Changes that end a user's log-ins
(a new password, a suspension) end them in the same transaction (:mod:`.sessions`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from strom.store import queries as q
from strom.store.engine import Database
from strom.store.errors import InvalidUsername, LastAdmin, UnknownUser, UsernameTaken
from strom.store.models import ChannelRow, UserRow
from strom.store.security import (
    Passwords,
    check_password,
    check_username,
    new_stream_key,
    secret_hash,
    username_key,
)
from strom.store.sessions import SessionStore
from strom.store.views import User
from strom.usernames import looks_like_username

log = logging.getLogger(__name__)

T = TypeVar("T")

# argon2 with the default cost takes 64 MiB and tens of ms per hash: run off the event
# loop, at most this many at once, so a burst of log-ins queues instead of eating memory.
MAX_CONCURRENT_HASHES = 2
#: most users :meth:`UserStore.search` returns at once
MAX_LISTED = 100


class UserStore:
    """The ``users`` table (and, on registration, the new user's ``channels`` row)."""

    def __init__(self, db: Database, passwords: Passwords, sessions: SessionStore) -> None:
        self._db = db
        self._passwords = passwords
        self._sessions = sessions
        self._hash_slots = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        #: names (lower case) no account may take: the static channels of this site
        self.reserved_names: frozenset[str] = frozenset()

    def reserve_names(self, names: Iterable[str]) -> None:
        """Refuse these names (any case) to new accounts: the site's static channels
        (``--stream-key NAME=KEY``), which an account of the same name would take over."""
        self.reserved_names = frozenset(name.lower() for name in names)

    async def create(
        self, username: str, password: str, *, admin: bool = False
    ) -> tuple[User, str]:
        """Register ``username`` with its channel. Returns the user and the channel's
        stream key, which exists nowhere else from now on: show it once."""
        check_username(username)
        if username_key(username) in self.reserved_names:
            raise InvalidUsername(
                f"the name {username!r} belongs to a channel of this site: choose another"
            )
        check_password(password, username)
        if await self._row(username) is not None:  # fail fast, before hashing
            raise UsernameTaken(username)
        password_hash = await self._hashing(self._passwords.hash, password)
        key = new_stream_key()
        now = self._db.now()
        try:
            async with self._db.transaction() as s:
                user = UserRow(
                    username=username,
                    username_key=username_key(username),
                    password_hash=password_hash,
                    is_admin=admin,
                    suspended=False,
                    created_at=now,
                )
                s.add(user)
                await s.flush()  # a concurrent twin fails here, on the unique key
                s.add(
                    ChannelRow(
                        user_id=user.id,
                        title="",
                        description="",
                        stream_key_hash=secret_hash(key),
                        stream_key_created_at=now,
                    )
                )
                await s.flush()
                info = q.user_view(user)
        except IntegrityError:
            raise UsernameTaken(username) from None
        log.info("user %s created%s", username, " (admin)" if admin else "")
        return info, key

    async def authenticate(self, username: str, password: str) -> User | None:
        """The user, if the password is right and the account is not suspended. Takes
        about one argon2 verification whether or not the user exists."""
        row = await self._row(username) if looks_like_username(username) else None
        stored = row.password_hash if row is not None else None
        ok = await self._hashing(self._passwords.verify, stored, password)
        if row is None or not ok or row.suspended:
            return None
        values: dict[str, Any] = {"last_online_at": self._db.now()}
        if self._passwords.needs_rehash(row.password_hash):
            values["password_hash"] = await self._hashing(self._passwords.hash, password)
        async with self._db.transaction() as s:
            await s.execute(update(UserRow).where(UserRow.id == row.id).values(**values))
        return q.user_view(row, last_online_at=values["last_online_at"])

    async def get(self, username: str) -> User | None:
        """Look-up ignoring case: ``alice`` finds ``Alice``."""
        row = await self._row(username) if looks_like_username(username) else None
        return q.user_view(row) if row is not None else None

    async def set_password(self, username: str, password: str) -> None:
        """A new password; every session of the user ends with the old one (the web page
        that changed it then starts a fresh session for the browser that did)."""
        check_password(password, username)
        password_hash = await self._hashing(self._passwords.hash, password)
        await self._update(username, end_sessions="password changed", password_hash=password_hash)
        log.info("password of %s changed; their sessions ended", username)

    async def touch_last_online(self, user_id: int) -> None:
        async with self._db.transaction() as s:
            await s.execute(
                update(UserRow).where(UserRow.id == user_id).values(last_online_at=self._db.now())
            )

    async def set_suspended(self, username: str, suspended: bool) -> None:
        """A suspended user cannot log in, use API tokens or publish with their key;
        suspending ends their sessions (reinstating does not bring them back)."""
        ended = "account suspended" if suspended else None
        await self._update(username, end_sessions=ended, suspended=suspended)
        log.info("user %s %s", username, "suspended" if suspended else "reinstated")

    async def set_admin(self, username: str, admin: bool) -> None:
        """Make or unmake a site administrator; the last one stays one (:class:`LastAdmin`)."""
        if not admin:
            async with self._db.transaction() as s:
                admins = await s.scalar(
                    select(func.count()).select_from(UserRow).where(UserRow.is_admin.is_(True))
                )
                row = await s.scalar(
                    select(UserRow).where(UserRow.username_key == username_key(username))
                )
                if row is not None and row.is_admin and (admins or 0) <= 1:
                    raise LastAdmin(f"{row.username} is the last administrator of the site")
        await self._update(username, is_admin=admin)
        log.info("user %s %s", username, "made an admin" if admin else "no longer an admin")

    async def search(
        self, text: str = "", *, offset: int = 0, limit: int = 50
    ) -> tuple[list[User], int]:
        """Users whose name contains ``text`` (any case), by name: a page of them (at
        most ``MAX_LISTED``) and how many there are in all."""
        limit = max(1, min(int(limit), MAX_LISTED))
        where = []
        if text:
            # "!" escapes: no username has one ("_" matches only itself, "%" nothing)
            escaped = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
            where.append(UserRow.username_key.like(f"%{escaped}%", escape="!"))
        async with self._db.transaction() as s:
            total = await s.scalar(select(func.count()).select_from(UserRow).where(*where))
            rows = await s.scalars(
                select(UserRow)
                .where(*where)
                .order_by(UserRow.username_key)
                .offset(max(0, int(offset)))
                .limit(limit)
            )
            return [q.user_view(r) for r in rows], int(total or 0)

    async def delete(self, username: str) -> None:
        """Delete the account with its channel, broadcasts, follows, tokens and sessions
        (the database cascades); their chat messages stay, without the account. The last
        administrator cannot be deleted. Recordings on disk are the caller's to delete."""
        async with self._db.transaction() as s:
            row = await s.scalar(
                select(UserRow).where(UserRow.username_key == username_key(username))
            )
            if row is None:
                raise UnknownUser(username)
            if row.is_admin:
                admins = await s.scalar(
                    select(func.count()).select_from(UserRow).where(UserRow.is_admin.is_(True))
                )
                if (admins or 0) <= 1:
                    raise LastAdmin(f"{row.username} is the last administrator of the site")
            user_id = row.id
            await self._sessions.end_all_in(s, user_id)
            await s.delete(row)
        self._sessions.ended_all(user_id, "account deleted")
        log.info("user %s deleted", username)

    async def _hashing(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._hash_slots:
            return await asyncio.to_thread(fn, *args)

    async def _row(self, username: str) -> UserRow | None:
        async with self._db.transaction() as s:
            return await s.scalar(
                select(UserRow).where(UserRow.username_key == username_key(username))
            )

    async def _update(
        self, username: str, *, end_sessions: str | None = None, **values: Any
    ) -> None:
        """Change the user's row; with ``end_sessions`` (the reason), end their sessions in
        the same transaction. Their sessions cached on this node are forgotten either way
        (they carry the user as it was)."""
        async with self._db.transaction() as s:
            user_id = await s.scalar(
                select(UserRow.id).where(UserRow.username_key == username_key(username))
            )
            if user_id is None:
                raise UnknownUser(username)
            await s.execute(update(UserRow).where(UserRow.id == user_id).values(**values))
            if end_sessions is not None:
                await self._sessions.end_all_in(s, user_id)
        if end_sessions is not None:
            self._sessions.ended_all(user_id, end_sessions)
        else:
            self._sessions.cache.forget_user(user_id)
