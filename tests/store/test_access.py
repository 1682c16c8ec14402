"""Who may watch: the stored visibility and password (:mod:`strom.store.access`) and the
rules over them (:class:`strom.channels.access.WatchAccess`): media tokens that expire,
that a changed password ends, that no other channel takes; one read of the database
for many requests at once."""

from __future__ import annotations

import asyncio

import pytest

from strom.channels.access import Verdict, Viewer, WatchAccess
from strom.errors import ApiError
from strom.store import InvalidInput, Store

SECRET = b"a test secret of this site"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_private_channel_with_a_password(store: Store) -> None:
    await store.users.create("maker", "correct horse battery")
    await store.users.create("friend", "correct horse battery")
    await store.follows.follow("friend", "maker")
    with pytest.raises(InvalidInput):
        await store.access.set("maker", "secret")
    with pytest.raises(InvalidInput):
        await store.access.set("maker", "private", password="short")
    kept = await store.access.set("maker", "private", password="open sesame")
    assert kept.password_hash is not None
    assert "open sesame" not in kept.password_hash  # argon2id, never the password
    clock = Clock()
    access = WatchAccess(store, SECRET, cache_seconds=0.0, token_seconds=60, clock=clock)
    assert await access.may_watch("maker", Viewer()) is Verdict.PASSWORD
    assert await access.may_watch("Maker", Viewer(username="MAKER")) is Verdict.WATCH
    assert await access.may_watch("maker", Viewer(username="friend")) is Verdict.WATCH
    assert await access.may_watch("maker~480p", Viewer()) is Verdict.PASSWORD  # a rendition
    assert await access.check_password("maker", "wrong guess") is None
    channel_pass = await access.check_password("maker", "open sesame")
    assert channel_pass is not None
    assert await access.may_watch("maker", Viewer(channel_pass=channel_pass)) is Verdict.WATCH

    token = await access.media_token("maker")
    assert token is not None
    assert await access.media_grant("maker", token) is not None
    assert await access.media_grant("maker~360p", token) is not None
    for wrong in (None, "", "x", token + "A", "9" * 13 + "." + token.partition(".")[2]):
        with pytest.raises(ApiError) as refused:
            await access.media_grant("maker", wrong)
        assert refused.value.http_status == 403
    clock.now += 61  # expired
    with pytest.raises(ApiError, match="not valid"):
        await access.media_grant("maker", token)
    # A new password ends every pass and token given before.
    token = await access.media_token("maker")
    await store.access.set("maker", "private", password="another one")
    with pytest.raises(ApiError):
        await access.media_grant("maker", token)
    assert await access.may_watch("maker", Viewer(channel_pass=channel_pass)) is Verdict.PASSWORD
    # Followers only, then public: no token needed, none given.
    await store.access.set("maker", "private", clear_password=True)
    assert await access.may_watch("maker", Viewer()) is Verdict.FOLLOW
    await store.access.set("maker", "unlisted")
    assert await access.media_grant("maker", None) is None
    assert await access.media_token("maker") is None
    assert await access.play_refusal("maker", "") is None
    assert await access.play_refusal("nobody_here", "") is None  # no account: public


async def test_many_requests_at_once_read_the_database_once(store: Store) -> None:
    await store.users.create("busy", "correct horse battery")
    await store.access.set("busy", "private")
    access = WatchAccess(store, SECRET, cache_seconds=30.0)
    reads = 0
    read = store.access.get

    async def counted(name: str) -> object:
        nonlocal reads
        reads += 1
        return await read(name)

    store.access.get = counted  # type: ignore[method-assign,assignment]
    found = await asyncio.gather(*(access.access("busy") for _ in range(50)))
    assert {a.visibility for a in found} == {"private"}
    assert reads == 1
    refusal = await access.play_refusal("busy", "token=nope")
    assert refusal is not None
    assert "not valid" in refusal
