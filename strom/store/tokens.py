"""API tokens: bearer tokens a user makes for their API clients. Reached as
``Store.tokens``.

A token is shown once, when made; the table keeps only its hash, so a leaked table lets
nobody in. A token works while it exists and its user is not suspended.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select

from strom.store import queries as q
from strom.store.engine import Database
from strom.store.errors import InvalidInput, TooManyTokens
from strom.store.models import TOKEN_NAME_MAX, ApiTokenRow, UserRow
from strom.store.security import SECRET_MAX, new_api_token, same_hash, secret_hash
from strom.store.views import ApiTokenInfo, User

MAX_API_TOKENS_PER_USER = 20
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at: at most one write a minute


class ApiTokenStore:
    """The ``api_tokens`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, username: str, name: str) -> str:
        """A new bearer token for ``username``'s API clients, returned once."""
        name = " ".join(name.split()) if isinstance(name, str) else ""
        if not name or len(name) > TOKEN_NAME_MAX or q.CONTROL_CHARS.search(name):
            raise InvalidInput(f"a token name has 1-{TOKEN_NAME_MAX} characters", "name")
        token = new_api_token()
        async with self._db.transaction() as s:
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
                    created_at=self._db.now(),
                )
            )  # fmt: skip
        return token

    async def resolve(self, token: str) -> User | None:
        """The token's user (``None``: unknown, revoked, or the user is suspended)."""
        if not token or len(token) > SECRET_MAX:
            return None
        digest = secret_hash(token)
        now = self._db.now()
        async with self._db.transaction() as s:
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

    async def revoke(self, username: str, token_id: int) -> bool:
        """Delete one of ``username``'s tokens; ``False`` if they have no such token."""
        async with self._db.transaction() as s:
            user_id = await q.user_id(s, username)
            result = await s.execute(
                delete(ApiTokenRow).where(
                    ApiTokenRow.id == token_id, ApiTokenRow.user_id == user_id
                )
            )
            return bool(getattr(result, "rowcount", 0))

    async def list(self, username: str) -> list[ApiTokenInfo]:
        """``username``'s tokens, oldest first (names and dates, never the tokens)."""
        async with self._db.transaction() as s:
            user_id = await q.user_id(s, username)
            rows = await s.scalars(
                select(ApiTokenRow).where(ApiTokenRow.user_id == user_id).order_by(ApiTokenRow.id)
            )
            return [ApiTokenInfo(r.id, r.name, r.created_at, r.last_used_at) for r in rows]
