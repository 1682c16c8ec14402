"""Settings for a test node on loopback (random ports), a node started and stopped around
a test (:func:`serving`), and the migrated template database a node starts from, so each
start skips the migrations (Alembic costs ~0.3 s a start; the schema is the same every
time)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import create_engine

from strom.server import StromServer
from strom.settings import Settings
from strom.store import schema

STREAM_KEY = "alice-secret-key-1234"
CHANNEL = "alice"


@functools.cache
def template_database() -> Path:
    """An SQLite file migrated to head, made once per test process."""
    folder = Path(tempfile.mkdtemp(prefix="strom-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "strom.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            schema.upgrade(conn)
    finally:
        engine.dispose()
    return path


def seed_data_dir(data_dir: Path) -> Path:
    """Give ``data_dir`` a migrated embedded database unless it has one already (a node
    restarted on the same directory keeps its data)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = data_dir / "strom.db"
    if not db.exists():
        shutil.copyfile(template_database(), db)
    return data_dir


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "http_port": 0,
        "rtmp_port": 0,
        "data_dir": tmp_path / "data",
        "stream_keys": {CHANNEL: STREAM_KEY, "bob": "bob-secret-key-5678"},
        "rtmp_handshake_timeout": 3.0,
        "rtmp_idle_timeout": 3.0,
    }
    values.update(overrides)
    if not values.get("database_url"):
        seed_data_dir(Path(str(values["data_dir"])))
    return Settings(**values)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, **overrides: object) -> AsyncIterator[StromServer]:
    """A node with :func:`make_settings`'s settings (and ``overrides``), running for the
    ``async with`` block, stopped after it."""
    server = StromServer(make_settings(tmp_path, **overrides))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
