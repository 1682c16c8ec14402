"""Alembic, driven from code: the migration environment ships inside the package
(``strom/store/migrations``), so an installed Strom needs no ``alembic.ini``.

The functions here take a *synchronous* SQLAlchemy connection, as Alembic does; the
store calls them through ``AsyncConnection.run_sync``. To write a new migration during
development::

    from alembic import command
    from strom.store.schema import alembic_config
    command.revision(alembic_config("sqlite+aiosqlite:///dev.db"), "add x", autogenerate=True)

then review the generated file in ``migrations/versions``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from strom.store.views import SchemaStatus

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """A configuration with our script location; with ``connection``, ``env.py`` runs the
    migrations on it (inside the caller's transaction) instead of connecting to ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    command.upgrade(alembic_config(connection=connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection=connection), revision)


def status(connection: Connection) -> SchemaStatus:
    script = ScriptDirectory.from_config(alembic_config())
    current = MigrationContext.configure(connection).get_current_heads()
    known = {rev.revision for rev in script.walk_revisions()}
    # Strom's history is linear; were it ever to branch, several heads read "a,b".
    return SchemaStatus(
        current=",".join(sorted(current)) or None,
        head=",".join(sorted(script.get_heads())),
        known=all(rev in known for rev in current),
    )
