"""Chat moderation on every configured database: moderators, bans and timeouts, the
moderation log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from strom.store import Store

PASSWORD = "a long enough password"


async def test_moderators_bans_and_log(store: Store) -> None:
    await store.users.create("owner", PASSWORD)
    mod, _ = await store.users.create("mod_one", PASSWORD)
    chat = store.moderation
    assert await chat.add_moderator("owner", mod.id)
    assert not await chat.add_moderator("OWNER", mod.id)
    assert await chat.moderators("owner") == {mod.id: "mod_one"}
    assert await chat.remove_moderator("owner", mod.id)
    assert not await chat.remove_moderator("owner", mod.id)

    now = datetime.now(UTC)
    await chat.ban(
        "owner", f"u:{mod.id}", user_id=mod.id, target_name="mod_one", until=None,
        reason="spam", by="owner",
    )  # fmt: skip
    await chat.ban(
        "owner", "g:guest-000001", user_id=None, target_name="guest-000001",
        until=now + timedelta(minutes=10), reason="", by="owner",
    )  # fmt: skip
    await chat.ban(
        "owner", "g:guest-000002", user_id=None, target_name="guest-000002",
        until=now - timedelta(seconds=1), reason="", by="owner",
    )  # fmt: skip
    # A second ban of the same target replaces the first (a timeout becomes a ban).
    await chat.ban(
        "owner", "g:guest-000001", user_id=None, target_name="guest-000001",
        until=now + timedelta(minutes=20), reason="again", by="owner",
    )  # fmt: skip
    bans = {b.target: b for b in await chat.bans("owner")}
    assert set(bans) == {f"u:{mod.id}", "g:guest-000001"}  # the expired timeout is over
    assert bans[f"u:{mod.id}"].until is None
    assert bans["g:guest-000001"].reason == "again"
    until = bans["g:guest-000001"].until
    assert until is not None
    assert abs((until - (now + timedelta(minutes=20))).total_seconds()) < 1
    assert await chat.unban("owner", f"u:{mod.id}")
    assert not await chat.unban("owner", f"u:{mod.id}")

    await chat.log("owner", "owner", "ban", "mod_one", "spam")
    await chat.log("owner", "owner", "clear", None, "3 messages")
    entries = await chat.log_entries("owner", 10)
    assert [(e.action, e.target) for e in entries] == [("clear", None), ("ban", "mod_one")]
    assert await chat.log_entries("someone_else", 10) == []
