"""Migrations: from nothing to head and back, the status Strom reports, the models in step
with the migrations, and clear errors for databases that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from strom.store import DatabaseUnavailable, SchemaOutOfDate, Store
from strom.store.models import Base

TABLES = {"users", "channels", "categories", "broadcasts", "api_tokens", "follows"}
CHAT_TABLES = {
    "chat_messages", "chat_moderators", "chat_bans", "chat_moderation_log", "chat_settings",
}  # fmt: skip
WEBHOOK_TABLES = {"user_webhooks"}
SESSION_TABLES = {"user_sessions"}
HEAD = "0011"


async def _tables(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_migrations_from_empty_reach_head(store: Store) -> None:
    # The session fixture dropped every table and migrated from nothing.
    status = await store.schema_status()
    assert status.up_to_date
    assert status.current == status.head == HEAD
    assert "up to date" in status.describe()
    assert await _tables(store) >= TABLES | CHAT_TABLES | WEBHOOK_TABLES | SESSION_TABLES | {
        "alembic_version"
    }
    await store.check_schema()  # no error
    await store.migrate()  # again: nothing to do, nothing breaks
    assert (await store.schema_status()).up_to_date


async def test_downgrade_to_base_and_upgrade_again(store: Store) -> None:
    try:
        await store.downgrade("base")
        status = await store.schema_status()
        assert status.empty
        assert not status.up_to_date
        assert not (await _tables(store) & (TABLES | CHAT_TABLES | WEBHOOK_TABLES | SESSION_TABLES))
        with pytest.raises(SchemaOutOfDate, match="strom db upgrade") as exc:
            await store.check_schema()
        assert exc.value.http_status == 503
    finally:
        await store.migrate()
    assert (await store.schema_status()).up_to_date
    assert any(c.slug == "just-chatting" for c in await store.channels.categories())  # seeded again


async def test_schema_from_a_newer_strom_is_reported(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        status = await store.schema_status()
        assert not status.up_to_date
        assert not status.known
        assert "newer Strom" in status.describe()
    finally:
        async with store.engine.begin() as conn:
            await conn.execute(text(f"UPDATE alembic_version SET version_num = '{HEAD}'"))


async def test_models_match_the_migrations(store: Store) -> None:
    def diff(conn: object) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with store.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


async def test_unreachable_database_fails_clearly() -> None:
    with pytest.raises(DatabaseUnavailable) as exc:
        await Store.open("postgresql+asyncpg://strom:hunter2@127.0.0.1:1/strom")
    message = str(exc.value)
    assert "cannot connect" in message
    assert "127.0.0.1:1" in message
    assert "hunter2" not in message  # the password never reaches a message or a log
    assert exc.value.http_status == 503


async def test_unknown_driver_fails_clearly() -> None:
    with pytest.raises(DatabaseUnavailable, match="cannot use database URL"):
        await Store.open("nosuchdb+nodriver://localhost/x")


async def test_sqlite_file_gets_its_directory_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "strom.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}")
    try:
        assert store.embedded
        assert path.parent.is_dir()
        async with store.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await store.schema_status()).empty
        await store.migrate()
        assert (await store.schema_status()).up_to_date
    finally:
        await store.close()
