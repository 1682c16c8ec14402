"""The store: every query Strom makes, behind one async facade.

One :class:`~sqlalchemy.ext.asyncio.AsyncEngine` per process; every method runs its own
short transaction and returns frozen views (:mod:`strom.store.views`), never ORM rows.
Database driver errors are translated here, once: a lost or refused connection becomes
:class:`DatabaseUnavailable`, a unique-key race becomes the matching :class:`Conflict`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from strom.store import crashes, schema
from strom.store import queries as q
from strom.store import webhooks as wh
from strom.store.categories import CATEGORY_NAME_MAX, slugify
from strom.store.engine import connect, transaction
from strom.store.errors import (
    CategoryExists,
    DatabaseUnavailable,
    InvalidCategory,
    InvalidInput,
    InvalidUsername,
    SchemaOutOfDate,
    TooManyTokens,
    UnknownUser,
    UsernameTaken,
)
from strom.store.models import (
    DESCRIPTION_MAX,
    TITLE_MAX,
    TOKEN_NAME_MAX,
    ApiTokenRow,
    BroadcastRow,
    CategoryRow,
    ChannelRow,
    FollowRow,
    UserRow,
)
from strom.store.security import (
    SECRET_MAX,
    Argon2Params,
    Passwords,
    check_password,
    check_username,
    looks_like_username,
    new_api_token,
    new_stream_key,
    same_hash,
    secret_hash,
    username_key,
)
from strom.store.sessions import SessionLimits, SessionStore
from strom.store.views import (
    ApiTokenInfo,
    BroadcastInfo,
    CategoryInfo,
    ChannelInfo,
    SchemaStatus,
    User,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_API_TOKENS_PER_USER = 20
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at: at most one write a minute
# argon2 with the default cost takes 64 MiB and tens of ms per hash: run off the event
# loop, at most this many at once, so a burst of log-ins queues instead of eating memory.
MAX_CONCURRENT_HASHES = 2


class Store:
    """Accounts, channels, keys, categories, broadcasts, tokens and follows.

    Open with :meth:`open`, close with :meth:`close`. Users and channels are named by
    username, compared without case; methods that change something about a user who does
    not exist raise :class:`UnknownUser`."""

    def __init__(
        self,
        engine: AsyncEngine,
        passwords: Passwords,
        clock: Callable[[], datetime] | None = None,
        sessions: SessionLimits | None = None,
    ) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._passwords = passwords
        self._clock = clock or (lambda: datetime.now(UTC))
        self._hash_slots = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        #: log-in sessions (:mod:`strom.store.sessions`)
        self.sessions = SessionStore(self._transaction, self._now, sessions)
        #: names (lower case) no account may take: the static channels of this site
        self.reserved_names: frozenset[str] = frozenset()

    # --- lifecycle ---------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        create_dirs: bool = True,
        argon2: Argon2Params | None = None,
        clock: Callable[[], datetime] | None = None,
        sessions: SessionLimits | None = None,
    ) -> Store:
        """Connect to ``url`` (checked at once: :class:`DatabaseUnavailable` if it cannot).

        SQLite: the file's directory is created if ``create_dirs``; every connection gets
        WAL journaling (readers do not block the writer), foreign keys and a busy timeout.
        ``argon2`` sets the password-hash cost (default: RFC 9106 parameters), ``sessions``
        how long log-ins last and how long a node caches them."""
        engine = await connect(url, create_dirs=create_dirs)
        passwords = await asyncio.to_thread(Passwords, argon2)
        return cls(engine, passwords, clock, sessions)

    async def close(self) -> None:
        await self._engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def pool_status(self) -> dict[str, int]:
        """The connection pool: its size, connections in use and idle in it, overflow
        (connections beyond the size, closed when given back). Empty for pools that keep
        none. A connection in use with nothing running is a leak."""
        pool = self._engine.pool
        counts = {}
        for name, method in (
            ("size", "size"),
            ("checked_out", "checkedout"),
            ("idle", "checkedin"),
            ("overflow", "overflow"),
        ):
            fn = getattr(pool, method, None)
            if callable(fn):
                counts[name] = int(fn())
        return counts

    @property
    def embedded(self) -> bool:
        """SQLite: the database belongs to this process, so it may migrate it freely."""
        return self._engine.dialect.name == "sqlite"

    async def migrate(self, revision: str = "head") -> None:
        """Apply the migrations up to ``revision`` (``alembic upgrade``)."""
        async with self._connection() as conn:
            await conn.run_sync(schema.upgrade, revision)

    async def downgrade(self, revision: str) -> None:
        """Undo migrations down to ``revision`` (``"base"``: drop every table)."""
        async with self._connection() as conn:
            await conn.run_sync(schema.downgrade, revision)

    async def schema_status(self) -> SchemaStatus:
        async with self._connection() as conn:
            status: SchemaStatus = await conn.run_sync(schema.status)
            return status

    async def check_schema(self) -> None:
        """Raise :class:`SchemaOutOfDate` (with what to do) unless the schema is current."""
        status = await self.schema_status()
        if not status.up_to_date:
            raise SchemaOutOfDate(status.describe())

    # --- users -------------------------------------------------------------------------

    def reserve_names(self, names: Iterable[str]) -> None:
        """Refuse these names (any case) to new accounts: the site's static channels
        (``--stream-key NAME=KEY``), which an account of the same name would take over."""
        self.reserved_names = frozenset(name.lower() for name in names)

    async def create_user(
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
        if await self._user_row(username) is not None:  # fail fast, before hashing
            raise UsernameTaken(username)
        password_hash = await self._hashing(self._passwords.hash, password)
        key = new_stream_key()
        now = self._now()
        try:
            async with self._transaction() as s:
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
        row = await self._user_row(username) if looks_like_username(username) else None
        stored = row.password_hash if row is not None else None
        ok = await self._hashing(self._passwords.verify, stored, password)
        if row is None or not ok or row.suspended:
            return None
        values: dict[str, Any] = {"last_online_at": self._now()}
        if self._passwords.needs_rehash(row.password_hash):
            values["password_hash"] = await self._hashing(self._passwords.hash, password)
        async with self._transaction() as s:
            await s.execute(update(UserRow).where(UserRow.id == row.id).values(**values))
        return q.user_view(row, last_online_at=values["last_online_at"])

    async def set_password(self, username: str, password: str) -> None:
        """A new password; every session of the user ends with the old one (the web page
        that changed it then starts a fresh session for the browser that did)."""
        check_password(password, username)
        password_hash = await self._hashing(self._passwords.hash, password)
        await self._update_user(
            username, end_sessions="password changed", password_hash=password_hash
        )
        log.info("password of %s changed; their sessions ended", username)

    async def get_user(self, username: str) -> User | None:
        """Look-up ignoring case: ``alice`` finds ``Alice``."""
        row = await self._user_row(username) if looks_like_username(username) else None
        return q.user_view(row) if row is not None else None

    async def touch_last_online(self, user_id: int) -> None:
        async with self._transaction() as s:
            await s.execute(
                update(UserRow).where(UserRow.id == user_id).values(last_online_at=self._now())
            )

    async def set_suspended(self, username: str, suspended: bool) -> None:
        """A suspended user cannot log in, use API tokens or publish with their key;
        suspending ends their sessions (reinstating does not bring them back)."""
        ended = "account suspended" if suspended else None
        await self._update_user(username, end_sessions=ended, suspended=suspended)
        log.info("user %s %s", username, "suspended" if suspended else "reinstated")

    async def set_admin(self, username: str, admin: bool) -> None:
        await self._update_user(username, is_admin=admin)

    # --- channels and stream keys ------------------------------------------------------

    async def channel(self, username: str) -> ChannelInfo | None:
        if not looks_like_username(username):
            return None
        async with self._transaction() as s:
            return await q.channel_info(s, username)

    async def update_channel(
        self,
        username: str,
        *,
        title: str | None = None,
        description: str | None = None,
        category_slug: str | None = None,
        require_account_for_chat: bool | None = None,
        record_broadcasts: bool | None = None,
    ) -> ChannelInfo:
        """Change what is given (``None``: leave as is; ``category_slug=""``: no
        category). Raises :class:`InvalidChannel`/:class:`UnknownCategory` (422)."""
        values: dict[str, Any] = {}
        if title is not None:
            values["title"] = q.clean_text(title, TITLE_MAX, "title", multiline=False)
        if description is not None:
            values["description"] = q.clean_text(
                description, DESCRIPTION_MAX, "description", multiline=True
            )
        if require_account_for_chat is not None:
            values["require_account_for_chat"] = bool(require_account_for_chat)
        if record_broadcasts is not None:
            values["record_broadcasts"] = bool(record_broadcasts)
        async with self._transaction() as s:
            user_id = await q.user_id(s, username)
            if category_slug is not None:
                values["category_id"] = await q.category_id(s, category_slug)
            if values:
                await s.execute(
                    update(ChannelRow).where(ChannelRow.user_id == user_id).values(**values)
                )
            info = await q.channel_info(s, username)
        if info is None:  # pragma: no cover - q.user_id found the user in this transaction
            raise UnknownUser(username)
        return info

    async def reset_stream_key(self, username: str) -> str:
        """A new key, returned once; the old one is refused from now on (a broadcast
        already running with it goes on)."""
        key = new_stream_key()
        async with self._transaction() as s:
            user_id = await q.user_id(s, username)
            await s.execute(
                update(ChannelRow)
                .where(ChannelRow.user_id == user_id)
                .values(stream_key_hash=secret_hash(key), stream_key_created_at=self._now())
            )
        log.info("stream key of %s reset", username)
        return key

    async def resolve(self, key: str) -> str | None:
        """:class:`~strom.live.registry.StreamKeyResolver`: the username (channel name)
        whose stream key this is; ``None`` for unknown keys and suspended users."""
        if not key or len(key) > SECRET_MAX:
            return None
        digest = secret_hash(key)
        async with self._transaction() as s:
            row = (
                await s.execute(
                    select(ChannelRow.stream_key_hash, UserRow.username, UserRow.suspended)
                    .join(UserRow, UserRow.id == ChannelRow.user_id)
                    .where(ChannelRow.stream_key_hash == digest)
                )
            ).one_or_none()
        if row is None or not same_hash(row.stream_key_hash, digest) or row.suspended:
            return None
        return str(row.username)

    # --- categories --------------------------------------------------------------------

    async def categories(self) -> list[CategoryInfo]:
        async with self._transaction() as s:
            rows = await s.scalars(select(CategoryRow))
            # Sorted here, not by the database: collations differ between databases.
            return sorted((q.category_view(r) for r in rows), key=lambda c: c.name.casefold())

    async def category(self, slug: str) -> CategoryInfo | None:
        async with self._transaction() as s:
            row = await s.scalar(select(CategoryRow).where(CategoryRow.slug == slug))
            return q.category_view(row) if row is not None else None

    async def add_category(self, name: str, *, is_game: bool) -> CategoryInfo:
        name = " ".join(name.split()) if isinstance(name, str) else ""
        slug = slugify(name)
        if not slug or len(name) > CATEGORY_NAME_MAX or q.CONTROL_CHARS.search(name):
            raise InvalidCategory(
                f"a category name has 1-{CATEGORY_NAME_MAX} characters, some letters or "
                "digits among them",
                "name",
            )
        if await self.category(slug) is not None:
            raise CategoryExists(f"there is already a category {slug!r}")
        try:
            async with self._transaction() as s:
                row = CategoryRow(slug=slug, name=name, is_game=is_game, created_at=self._now())
                s.add(row)
                await s.flush()
                return q.category_view(row)
        except IntegrityError:
            raise CategoryExists(f"there is already a category {slug!r}") from None

    # --- broadcasts --------------------------------------------------------------------

    async def start_broadcast(self, username: str, node: str | None = None) -> int:
        """Record that ``username`` went live on ``node``; remembers the title and category
        now. The broadcast counts as seen on air now (see :meth:`broadcasts_seen`)."""
        now = self._now()
        async with self._transaction() as s:
            channel = await s.scalar(
                select(ChannelRow)
                .join(UserRow, UserRow.id == ChannelRow.user_id)
                .where(UserRow.username_key == username_key(username))
            )
            if channel is None:
                raise UnknownUser(username)
            row = BroadcastRow(
                channel_id=channel.id,
                started_at=now,
                last_seen_at=now,
                node=node,
                title=channel.title,
                category_id=channel.category_id,
                peak_viewers=0,
            )
            s.add(row)
            await s.flush()
            return row.id

    async def end_broadcast(self, broadcast_id: int, peak_viewers: int) -> None:
        async with self._transaction() as s:
            await s.execute(
                update(BroadcastRow)
                .where(BroadcastRow.id == broadcast_id, BroadcastRow.ended_at.is_(None))
                .values(ended_at=self._now(), peak_viewers=q.raised_peak(peak_viewers))
            )

    async def update_peak(self, broadcast_id: int, viewers: int) -> None:
        """Raise the broadcast's peak to ``viewers`` if that is higher (never lowers)."""
        async with self._transaction() as s:
            await s.execute(
                update(BroadcastRow)
                .where(BroadcastRow.id == broadcast_id, BroadcastRow.peak_viewers < viewers)
                .values(peak_viewers=viewers)
            )

    async def broadcasts_seen(self, peaks: Mapping[int, int]) -> None:
        """The live node's heartbeat (broadcast id -> peak viewers so far): each of these
        broadcasts still open is marked on air now and its peak raised, in one transaction.
        What a crash leaves behind is then at most one heartbeat old."""
        if not peaks:
            return
        async with self._transaction() as s:
            await crashes.mark_seen(s, peaks, self._now())

    async def close_unfinished_broadcasts(
        self,
        node: str | None = None,
        *,
        last_media: Mapping[int, datetime] | None = None,
        stale_after: timedelta | None = None,
    ) -> dict[int, datetime]:
        """At start-up: end the broadcasts a previous run left open (it crashed or was
        killed), each at the last moment it is known to have been on air, never at the
        restart: the later of its heartbeat (``last_seen_at``) and the last media its
        recording wrote (``last_media``: broadcast id -> time), at most now. Returns when
        each broadcast closed ended (id -> ended_at).

        ``node``: only this node's broadcasts (and those without a node, from before
        migration 0006); another node's only once its heartbeat is older than
        ``stale_after`` (that node is gone), so a restart never ends a broadcast another
        node is still running. ``None``: every open broadcast."""
        async with self._transaction() as s:
            return await crashes.close_left_open(
                s, self._now(), node, last_media or {}, stale_after
            )

    async def broadcasts(self, username: str, limit: int = 20) -> list[BroadcastInfo]:
        """The channel's broadcasts, newest first (at most ``limit``, capped at 100)."""
        limit = max(1, min(int(limit), 100))
        async with self._transaction() as s:
            rows = await s.execute(
                select(BroadcastRow, UserRow.username, CategoryRow)
                .join(ChannelRow, ChannelRow.id == BroadcastRow.channel_id)
                .join(UserRow, UserRow.id == ChannelRow.user_id)
                .outerjoin(CategoryRow, CategoryRow.id == BroadcastRow.category_id)
                .where(UserRow.username_key == username_key(username))
                .order_by(BroadcastRow.started_at.desc(), BroadcastRow.id.desc())
                .limit(limit)
            )
            return [q.broadcast_view(b, c, name) for b, name, c in rows]

    # --- API tokens --------------------------------------------------------------------

    async def create_api_token(self, username: str, name: str) -> str:
        """A new bearer token for ``username``'s API clients, returned once."""
        name = " ".join(name.split()) if isinstance(name, str) else ""
        if not name or len(name) > TOKEN_NAME_MAX or q.CONTROL_CHARS.search(name):
            raise InvalidInput(f"a token name has 1-{TOKEN_NAME_MAX} characters", "name")
        token = new_api_token()
        async with self._transaction() as s:
            user_id = await q.user_id(s, username)
            count = await s.scalar(
                select(func.count()).select_from(ApiTokenRow).where(ApiTokenRow.user_id == user_id)
            )
            if (count or 0) >= MAX_API_TOKENS_PER_USER:
                raise TooManyTokens(
                    f"at most {MAX_API_TOKENS_PER_USER} API tokens per user: revoke one first"
                )
            s.add(
                ApiTokenRow(
                    user_id=user_id, name=name, token_hash=secret_hash(token),
                    created_at=self._now(),
                )
            )  # fmt: skip
        return token

    async def api_tokens(self, username: str) -> list[ApiTokenInfo]:
        async with self._transaction() as s:
            user_id = await q.user_id(s, username)
            rows = await s.scalars(
                select(ApiTokenRow).where(ApiTokenRow.user_id == user_id).order_by(ApiTokenRow.id)
            )
            return [ApiTokenInfo(r.id, r.name, r.created_at, r.last_used_at) for r in rows]

    async def resolve_api_token(self, token: str) -> User | None:
        """The token's user (``None``: unknown, revoked, or the user is suspended)."""
        if not token or len(token) > SECRET_MAX:
            return None
        digest = secret_hash(token)
        now = self._now()
        async with self._transaction() as s:
            found = (
                await s.execute(
                    select(ApiTokenRow, UserRow)
                    .join(UserRow, UserRow.id == ApiTokenRow.user_id)
                    .where(ApiTokenRow.token_hash == digest)
                )
            ).one_or_none()
            if found is None:
                return None
            token_row, user = found
            if not same_hash(token_row.token_hash, digest) or user.suspended:
                return None
            last = token_row.last_used_at
            if last is None or now - last >= TOKEN_TOUCH_INTERVAL:
                token_row.last_used_at = now
            return q.user_view(user)

    async def revoke_api_token(self, username: str, token_id: int) -> bool:
        """Delete one of ``username``'s tokens; ``False`` if they have no such token."""
        async with self._transaction() as s:
            user_id = await q.user_id(s, username)
            result = await s.execute(
                delete(ApiTokenRow).where(
                    ApiTokenRow.id == token_id, ApiTokenRow.user_id == user_id
                )
            )
            return bool(getattr(result, "rowcount", 0))

    # --- follows -----------------------------------------------------------------------

    async def follow(self, follower: str, channel: str) -> bool:
        """``follower`` follows ``channel``'s channel; ``False`` if they already did."""
        if username_key(follower) == username_key(channel):
            raise InvalidInput("you cannot follow your own channel", "channel")
        try:
            async with self._transaction() as s:
                follower_id = await q.user_id(s, follower)
                channel_id = await q.channel_id(s, channel)
                exists = await s.get(FollowRow, (follower_id, channel_id))
                if exists is not None:
                    return False
                s.add(
                    FollowRow(
                        follower_id=follower_id, channel_id=channel_id, created_at=self._now()
                    )
                )
                await s.flush()
                return True
        except IntegrityError:  # the same follow, at the same moment, from another request
            return False

    async def unfollow(self, follower: str, channel: str) -> bool:
        async with self._transaction() as s:
            follower_id = await q.user_id(s, follower)
            channel_id = await q.channel_id(s, channel)
            result = await s.execute(
                delete(FollowRow).where(
                    FollowRow.follower_id == follower_id, FollowRow.channel_id == channel_id
                )
            )
            return bool(getattr(result, "rowcount", 0))

    async def is_following(self, follower: str, channel: str) -> bool:
        async with self._transaction() as s:
            found = await s.scalar(
                select(FollowRow.channel_id)
                .join(UserRow, UserRow.id == FollowRow.follower_id)
                .where(
                    UserRow.username_key == username_key(follower),
                    FollowRow.channel_id == q.channel_id_select(channel).scalar_subquery(),
                )
            )
            return found is not None

    async def follower_count(self, channel: str) -> int:
        async with self._transaction() as s:
            count = await s.scalar(
                select(func.count())
                .select_from(FollowRow)
                .where(FollowRow.channel_id == q.channel_id_select(channel).scalar_subquery())
            )
            return int(count or 0)

    async def followed_channels(self, username: str) -> list[str]:
        """The usernames whose channels ``username`` follows, in alphabetical order."""
        async with self._transaction() as s:
            follower = select(UserRow.id).where(UserRow.username_key == username_key(username))
            rows = await s.scalars(
                select(UserRow.username)
                .join(ChannelRow, ChannelRow.user_id == UserRow.id)
                .join(FollowRow, FollowRow.channel_id == ChannelRow.id)
                .where(FollowRow.follower_id == follower.scalar_subquery())
                .order_by(UserRow.username_key)
            )
            return list(rows)

    # --- go-live webhooks (strom.store.webhooks) ----------------------------------------

    async def set_webhook(self, username: str, url: str | None) -> str | None:
        """Set ``username``'s go-live webhook (``None``: remove it). Returns the new signing
        secret, shown to the user this once; :class:`InvalidInput` for a URL Strom will
        not call."""
        checked = wh.check_webhook_url(url) if url is not None else None
        async with self._transaction() as s:
            return await wh.set_webhook(s, username, checked, self._now())

    async def webhook(self, username: str) -> wh.WebhookInfo | None:
        async with self._transaction() as s:
            return await wh.webhook(s, username)

    async def webhooks_for_followers(self, channel: str) -> list[tuple[str, str]]:
        """``(url, secret)`` of each follower of ``channel`` with a webhook (suspended
        accounts left out). Carries secrets: for the sender only."""
        async with self._transaction() as s:
            return await wh.webhooks_for_followers(s, channel)

    # --- plumbing ----------------------------------------------------------------------

    def _transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(self._sessions)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        try:
            async with self._engine.begin() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailable(f"database error: {exc.orig}") from exc

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    async def _hashing(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._hash_slots:
            return await asyncio.to_thread(fn, *args)

    async def _user_row(self, username: str) -> UserRow | None:
        async with self._transaction() as s:
            return await s.scalar(
                select(UserRow).where(UserRow.username_key == username_key(username))
            )

    async def _update_user(
        self, username: str, *, end_sessions: str | None = None, **values: Any
    ) -> None:
        """Change the user's row; with ``end_sessions`` (the reason), end their sessions in
        the same transaction. Their sessions cached on this node are forgotten either way
        (they carry the user as it was)."""
        async with self._transaction() as s:
            user_id = await s.scalar(
                select(UserRow.id).where(UserRow.username_key == username_key(username))
            )
            if user_id is None:
                raise UnknownUser(username)
            await s.execute(update(UserRow).where(UserRow.id == user_id).values(**values))
            if end_sessions is not None:
                await self.sessions.end_all_in(s, user_id)
        if end_sessions is not None:
            self.sessions.ended_all(user_id, end_sessions)
        else:
            self.sessions.cache.forget_user(user_id)
