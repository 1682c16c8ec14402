"""Who may watch a channel: its visibility and the password of a private channel.
Reached as ``Store.access``; the rules that use them live in :mod:`strom.channels.access`.

The password is a person's choice shared with friends, so it is kept as a password is
(argon2id, :class:`~strom.store.security.Passwords`), never in the clear.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy import select, update

from strom.store import queries as q
from strom.store.engine import Database
from strom.store.errors import InvalidInput
from strom.store.models import ChannelRow, UserRow
from strom.store.security import PASSWORD_MAX, Passwords, username_key
from strom.usernames import looks_like_username

log = logging.getLogger(__name__)

PUBLIC, UNLISTED, PRIVATE = "public", "unlisted", "private"
VISIBILITIES = (PUBLIC, UNLISTED, PRIVATE)
#: shortest password of a private channel (shared with friends, not an account's)
WATCH_PASSWORD_MIN = 6
#: argon2 hashes at once (each takes ~64 MiB and a core for ~0.1 s)
_HASHING_AT_ONCE = 2


@dataclass(frozen=True)
class ChannelAccess:
    """A channel's visibility as the access rules read it."""

    name: str
    visibility: str = PUBLIC
    password_hash: str | None = None

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    @property
    def version(self) -> str:
        """Changes whenever the visibility or the password does: the watch passes signed
        for it stop working then (a new password shuts out who knew the old one)."""
        text = f"{self.visibility}\0{self.password_hash or ''}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class AccessStore:
    """``channels.visibility`` and ``channels.watch_password_hash``."""

    def __init__(self, db: Database, passwords: Passwords) -> None:
        self._db = db
        self._passwords = passwords
        self._hash_slots = asyncio.Semaphore(_HASHING_AT_ONCE)

    async def get(self, name: str) -> ChannelAccess | None:
        """``name``'s access, None if no account has that name (static channels, open
        rooms: public)."""
        if not looks_like_username(name):
            return None
        async with self._db.transaction() as s:
            found = (
                await s.execute(
                    select(UserRow.username, ChannelRow.visibility, ChannelRow.watch_password_hash)
                    .join(ChannelRow, ChannelRow.user_id == UserRow.id)
                    .where(UserRow.username_key == username_key(name))
                )
            ).one_or_none()
        if found is None:
            return None
        return ChannelAccess(found[0], found[1], found[2])

    async def set(
        self,
        name: str,
        visibility: str,
        *,
        password: str | None = None,
        clear_password: bool = False,
    ) -> ChannelAccess:
        """Set ``name``'s visibility; ``password`` (a private channel's) replaces the one
        kept, ``clear_password`` forgets it (followers only). Raises :class:`InvalidInput`
        (422) for an unknown visibility or a password too short or too long."""
        if visibility not in VISIBILITIES:
            raise InvalidInput(f"visibility is one of {', '.join(VISIBILITIES)}", "visibility")
        values: dict[str, object] = {"visibility": visibility}
        if password is not None:
            if not isinstance(password, str) or not (
                WATCH_PASSWORD_MIN <= len(password) <= PASSWORD_MAX
            ):
                raise InvalidInput(
                    f"a stream password has {WATCH_PASSWORD_MIN} to {PASSWORD_MAX} characters",
                    "password",
                )
            async with self._hash_slots:
                values["watch_password_hash"] = await asyncio.to_thread(
                    self._passwords.hash, password
                )
        elif clear_password:
            values["watch_password_hash"] = None
        async with self._db.transaction() as s:
            user_id = await q.user_id(s, name)
            await s.execute(update(ChannelRow).where(ChannelRow.user_id == user_id).values(values))
        log.info("channel %s is now %s", name, visibility)
        access = await self.get(name)
        assert access is not None  # q.user_id found it
        return access

    async def check_password(self, access: ChannelAccess, password: str) -> bool:
        """Whether ``password`` opens ``access``'s channel (False when it has none)."""
        if access.password_hash is None:
            return False
        async with self._hash_slots:
            return await asyncio.to_thread(self._passwords.verify, access.password_hash, password)
