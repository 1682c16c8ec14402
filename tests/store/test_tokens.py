"""API tokens: shown once, refused after a revocation or for a suspended user, a few per
user."""

from __future__ import annotations

import pytest

from strom.store import InvalidInput, Store, TooManyTokens, UnknownUser
from strom.store.tokens import MAX_API_TOKENS_PER_USER

PASSWORD = "correct horse battery"


async def test_api_tokens(store: Store) -> None:
    alice, _ = await store.users.create("Alice", PASSWORD)
    await store.users.create("bob", PASSWORD)
    token = await store.tokens.create("alice", "  streaming   client ")
    assert token.startswith("strom_")
    user = await store.tokens.resolve(token)
    assert user is not None
    assert user.id == alice.id
    assert await store.tokens.resolve(token + "x") is None
    assert await store.tokens.resolve("") is None
    (listed,) = await store.tokens.list("Alice")
    assert listed.name == "streaming client"
    assert listed.last_used_at is not None  # set by the resolve above
    assert token not in repr(listed)
    # Only the owner revokes.
    assert not await store.tokens.revoke("bob", listed.id)
    assert await store.tokens.resolve(token) is not None
    assert await store.tokens.revoke("Alice", listed.id)
    assert await store.tokens.resolve(token) is None
    assert await store.tokens.list("Alice") == []
    assert not await store.tokens.revoke("Alice", listed.id)


async def test_api_tokens_of_suspended_users_are_refused(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    token = await store.tokens.create("Alice", "cli")
    await store.users.set_suspended("Alice", True)
    assert await store.tokens.resolve(token) is None
    await store.users.set_suspended("Alice", False)
    assert await store.tokens.resolve(token) is not None


async def test_api_token_limits(store: Store) -> None:
    await store.users.create("Alice", PASSWORD)
    for bad in ("", "   ", "x" * 65, "tab\x00name"):
        with pytest.raises(InvalidInput) as exc:
            await store.tokens.create("Alice", bad)
        assert exc.value.http_status == 422
    for i in range(MAX_API_TOKENS_PER_USER):
        await store.tokens.create("Alice", f"token {i}")
    with pytest.raises(TooManyTokens) as too_many:
        await store.tokens.create("Alice", "one more")
    assert too_many.value.http_status == 409
    with pytest.raises(UnknownUser):
        await store.tokens.create("nobody", "x")
