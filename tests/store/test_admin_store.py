"""What administrators change in the store, on every configured database: categories'
box art (binary, beyond MySQL's 64 KiB BLOB), renaming, merging and deleting; users
searched and paged, the last administrator kept, deletion cascading; the reason a
broadcast was stopped; a stream key kept once for its streamer."""

from __future__ import annotations

import os

import pytest

from strom.store import CategoryExists, LastAdmin, Store, UnknownCategory, UnknownUser

PASSWORD = "correct horse battery"


async def test_box_art_rename_merge_delete(store: Store) -> None:
    art = b"\xff\xd8\xff" + os.urandom(200_000)  # bigger than a MySQL TEXT
    info = await store.categories.set_art("chess", art)
    assert info.art is not None
    assert await store.categories.art("chess") == (art, info.art)
    assert (await store.channels.category("chess")) == info

    renamed = await store.categories.update("chess", name="Western Chess", is_game=False)
    assert (renamed.slug, renamed.name, renamed.is_game, renamed.art) == (
        "western-chess", "Western Chess", False, info.art,
    )  # fmt: skip
    with pytest.raises(CategoryExists):
        await store.categories.update("western-chess", name="Music")

    await store.users.create("alice", PASSWORD)
    await store.channels.update("alice", category_slug="western-chess")
    broadcast = await store.broadcasts.start("alice")
    merged = await store.categories.merge("western-chess", "board-games")
    assert merged.slug == "board-games"
    channel = await store.channels.get("alice")
    assert channel is not None
    assert channel.category == merged
    assert [b.category for b in await store.broadcasts.list("alice")] == [merged]
    assert await store.channels.category("western-chess") is None
    assert await store.categories.art("western-chess") is None  # the art went with it
    with pytest.raises(UnknownCategory):
        await store.categories.merge("board-games", "nope")

    await store.categories.delete("board-games")
    channel = await store.channels.get("alice")
    assert channel is not None
    assert channel.category is None
    assert broadcast > 0
    with pytest.raises(UnknownCategory) as exc:
        await store.categories.delete("board-games")
    assert exc.value.http_status == 404


async def test_users_search_admins_and_deletion(store: Store) -> None:
    for name in ("Zed", "alice", "al_bo", "albert", "bob"):
        await store.users.create(name, PASSWORD)
    found, total = await store.users.search("AL")
    assert ({u.username for u in found}, total) == ({"al_bo", "albert", "alice"}, 3)
    found, total = await store.users.search("_", offset=0, limit=1)
    assert ([u.username for u in found], total) == (["al_bo"], 1)  # "_" is not a wildcard
    found, total = await store.users.search("", offset=3, limit=10)
    assert ([u.username for u in found], total) == (["bob", "Zed"], 5)  # by name, any case

    await store.users.set_admin("alice", True)
    with pytest.raises(LastAdmin):
        await store.users.set_admin("alice", False)
    with pytest.raises(LastAdmin):
        await store.users.delete("alice")
    await store.users.set_admin("bob", True)
    await store.users.set_admin("alice", False)

    await store.follows.follow("bob", "zed")
    await store.broadcasts.start("zed")
    await store.users.delete("zed")
    assert await store.users.get("zed") is None
    assert await store.channels.get("zed") is None
    with pytest.raises(UnknownUser):
        await store.users.delete("zed")


async def test_stop_reason_and_a_key_kept_once(store: Store) -> None:
    await store.users.create("alice", PASSWORD)
    await store.broadcasts.start("alice")
    await store.broadcasts.stopped_by_admin("alice", "Copyrighted\x00 music " + "x" * 300)
    (last,) = await store.broadcasts.list("alice")
    assert last.stop_reason is not None
    assert last.stop_reason.startswith("Copyrighted music xxx")
    assert len(last.stop_reason) == 200

    key = await store.channels.reset_stream_key("alice", for_streamer=True)
    assert await store.channels.resolve(key) == "alice"
    assert await store.channels.take_pending_key("alice") == key
    assert await store.channels.take_pending_key("alice") is None
    await store.channels.reset_stream_key("alice")  # the streamer's own: shown to them already
    assert await store.channels.take_pending_key("alice") is None
