"""Profiles: what a user tells about themselves (display name, bio, links, avatar), when
they were last seen, and the channel search. Reached as ``Store.profiles``.

"Last seen" is ``users.last_online_at``, written on activity (log-in, going live,
chatting) by :meth:`ProfileStore.seen`: at most once a minute per user, on this node by
a memory of the last write and across nodes by the ``WHERE`` of the write itself.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select, update

from strom.store import queries as q
from strom.store.engine import Database
from strom.store.errors import InvalidInput
from strom.store.models import (
    BIO_MAX,
    DISPLAY_NAME_MAX,
    LINK_MAX,
    LINKS_MAX,
    ChannelRow,
    ProfileRow,
    UserRow,
)
from strom.store.security import username_key

#: a user's activity is written at most this often
SEEN_EVERY = timedelta(minutes=1)
#: users whose last write this node remembers (oldest forgotten first)
SEEN_MEMORY = 10_000
#: the longest search text and the most results a search gives
SEARCH_QUERY_MAX = 50
SEARCH_RESULTS_MAX = 50


@dataclass(frozen=True)
class Profile:
    username: str
    display_name: str  # "" when the user set none
    bio: str
    links: tuple[str, ...]  # http(s) URLs, checked on the way in
    avatar_etag: str | None  # None: no avatar
    last_online_at: datetime | None


@dataclass(frozen=True)
class Avatar:
    jpeg: bytes
    etag: str


@dataclass(frozen=True)
class ChannelMatch:
    """A channel the search found (live or not: the directory knows which are live)."""

    username: str
    display_name: str
    title: str
    avatar_etag: str | None
    last_online_at: datetime | None


def check_links(links: list[str]) -> tuple[str, ...]:
    """The links, blank lines dropped; each an absolute http or https URL."""
    if not isinstance(links, list) or not all(isinstance(link, str) for link in links):
        raise InvalidInput("links must be a list of URLs", "links")
    found = tuple(link.strip() for link in links if link.strip())
    if len(found) > LINKS_MAX:
        raise InvalidInput(f"at most {LINKS_MAX} links", "links")
    for link in found:
        parts = urlsplit(link)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or len(link) > LINK_MAX
            or any(c.isspace() for c in link)
            or q.CONTROL_CHARS.search(link)
        ):
            raise InvalidInput(
                f"a link must be an http:// or https:// address of at most {LINK_MAX} "
                f"characters: {link[:60]!r}",
                "links",
            )
    return found


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ProfileStore:
    """The ``profiles`` table, and ``users.last_online_at``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._seen: OrderedDict[int | str, datetime] = OrderedDict()

    async def get(self, username: str) -> Profile | None:
        """None if there is no such user; an empty profile if they wrote none."""
        async with self._db.transaction() as s:
            found = (
                await s.execute(
                    select(UserRow, ProfileRow)
                    .outerjoin(ProfileRow, ProfileRow.user_id == UserRow.id)
                    .where(UserRow.username_key == username_key(username))
                )
            ).one_or_none()
        if found is None:
            return None
        user, row = found
        return Profile(
            username=user.username,
            display_name=row.display_name if row is not None else "",
            bio=row.bio if row is not None else "",
            links=tuple(row.links.split("\n")) if row is not None and row.links else (),
            avatar_etag=row.avatar_etag if row is not None else None,
            last_online_at=user.last_online_at,
        )

    async def update(
        self, username: str, *, display_name: str, bio: str, links: list[str]
    ) -> Profile:
        """Replace the display name, bio and links (checked: :class:`InvalidInput`)."""
        values = {
            "display_name": q.clean_text(
                display_name, DISPLAY_NAME_MAX, "display name", multiline=False
            ),
            "bio": q.clean_text(bio, BIO_MAX, "bio", multiline=True),
            "links": "\n".join(check_links(links)),
        }
        await self._write(username, **values)
        profile = await self.get(username)
        assert profile is not None  # _write raised UnknownUser otherwise
        return profile

    async def set_avatar(self, username: str, large: bytes, small: bytes) -> str:
        """Store a new avatar (already resized); returns its version."""
        etag = hashlib.sha256(large + small).hexdigest()[:16]
        await self._write(username, avatar_large=large, avatar_small=small, avatar_etag=etag)
        return etag

    async def remove_avatar(self, username: str) -> None:
        await self._write(username, avatar_large=None, avatar_small=None, avatar_etag=None)

    async def avatar(self, username: str, *, small: bool) -> Avatar | None:
        column = ProfileRow.avatar_small if small else ProfileRow.avatar_large
        async with self._db.transaction() as s:
            found = (
                await s.execute(
                    select(column, ProfileRow.avatar_etag)
                    .join(UserRow, UserRow.id == ProfileRow.user_id)
                    .where(UserRow.username_key == username_key(username))
                )
            ).one_or_none()
        if found is None or found[0] is None or found[1] is None:
            return None
        return Avatar(jpeg=bytes(found[0]), etag=found[1])

    async def avatars(self, usernames: list[str]) -> dict[str, str]:
        """The avatar versions of those of ``usernames`` who have one (lower-case keys)."""
        keys = {username_key(n) for n in usernames}
        if not keys:
            return {}
        async with self._db.transaction() as s:
            rows = await s.execute(
                select(UserRow.username_key, ProfileRow.avatar_etag)
                .join(ProfileRow, ProfileRow.user_id == UserRow.id)
                .where(UserRow.username_key.in_(keys), ProfileRow.avatar_etag.is_not(None))
            )
            return {key: etag for key, etag in rows if etag is not None}

    async def names(self, user_ids: list[int]) -> dict[int, tuple[str, str, str | None]]:
        """The username, display name ("" for none) and avatar version (None for none) of
        each of ``user_ids`` that is a user: what their chat messages show."""
        ids = set(user_ids)
        if not ids:
            return {}
        async with self._db.transaction() as s:
            rows = await s.execute(
                select(UserRow.id, UserRow.username, ProfileRow.display_name)
                .add_columns(ProfileRow.avatar_etag)
                .outerjoin(ProfileRow, ProfileRow.user_id == UserRow.id)
                .where(UserRow.id.in_(ids))
            )
            return {i: (name, display or "", etag) for i, name, display, etag in rows}

    async def seen(self, user: int | str) -> bool:
        """The user (by id or by name) did something: their "last seen" is now, written at
        most once a minute per user. True if written."""
        now = self._db.now()
        key = user if isinstance(user, int) else username_key(user)
        last = self._seen.get(key)
        if last is not None and now - last < SEEN_EVERY:
            return False
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > SEEN_MEMORY:
            self._seen.popitem(last=False)
        which = UserRow.id == user if isinstance(user, int) else UserRow.username_key == key
        async with self._db.transaction() as s:
            result = await s.execute(
                update(UserRow)
                .where(
                    which,
                    or_(
                        UserRow.last_online_at.is_(None),
                        UserRow.last_online_at < now - SEEN_EVERY,
                    ),
                )
                .values(last_online_at=now)
            )
        return bool(getattr(result, "rowcount", 0))

    async def search(self, text: str, limit: int = SEARCH_RESULTS_MAX) -> list[ChannelMatch]:
        """Channels whose name, display name or title contains ``text`` (any case): names
        that start with it first, then by name."""
        text = text.strip()[:SEARCH_QUERY_MAX].casefold()
        if not text:
            return []
        like = f"%{_escape_like(text)}%"
        starts = f"{_escape_like(text)}%"
        query = (
            select(UserRow, ChannelRow.title, ProfileRow.display_name, ProfileRow.avatar_etag)
            .join(ChannelRow, ChannelRow.user_id == UserRow.id)
            .outerjoin(ProfileRow, ProfileRow.user_id == UserRow.id)
            .where(
                UserRow.suspended.is_(False),
                ChannelRow.visibility == "public",  # unlisted and private: not found
                or_(
                    UserRow.username_key.like(like, escape="\\"),
                    func.lower(ChannelRow.title).like(like, escape="\\"),
                    func.lower(ProfileRow.display_name).like(like, escape="\\"),
                ),
            )
            .order_by(UserRow.username_key.like(starts, escape="\\").desc(), UserRow.username_key)
            .limit(max(1, min(limit, SEARCH_RESULTS_MAX)))
        )
        async with self._db.transaction() as s:
            rows = (await s.execute(query)).all()
        return [
            ChannelMatch(
                username=user.username,
                display_name=display or "",
                title=title,
                avatar_etag=etag,
                last_online_at=user.last_online_at,
            )
            for user, title, display, etag in rows
        ]

    async def _write(self, username: str, **values: object) -> None:
        """Set ``values`` on the user's profile row, made if it is not there yet."""
        async with self._db.transaction() as s:
            user_id = await q.user_id(s, username)
            row = await s.get(ProfileRow, user_id)
            if row is None:
                row = ProfileRow(
                    user_id=user_id, display_name="", bio="", links="", updated_at=self._db.now()
                )
                s.add(row)
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = self._db.now()
