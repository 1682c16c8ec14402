"""The command line as an operator uses it: accounts, keys and schema upgrades."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from strom.cli import main
from strom.server import SchemaOutOfDate, StromServer
from strom.store import Store
from tests.conftest import make_settings


def run(argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "") -> tuple[int, str]:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(argv)
    finally:
        sys.stdin = old
    out = capsys.readouterr()
    return code, out.out + out.err


async def test_user_create_and_reset_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out = await _in_thread(
        run,
        ["user", "create", "Operator", "--admin", "--password-stdin", *data],
        capsys,
        "a very good password\n",
    )
    assert code == 0, out
    assert "created Operator (admin)" in out
    key = out.split("stream key: ")[1].split()[0]
    code, out = await _in_thread(run, ["user", "reset-key", "operator", *data], capsys)
    assert code == 0, out
    new_key = out.split("stream key: ")[1].split()[0]
    assert new_key != key
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'strom.db'}")
    try:
        assert await store.resolve(key) is None  # the old key no longer publishes
        assert await store.resolve(new_key) == "Operator"
        user = await store.get_user("operator")
        assert user is not None
        assert user.is_admin
    finally:
        await store.close()
    code, out = await _in_thread(run, ["user", "reset-key", "nobody", *data], capsys)
    assert code == 1
    assert "no user called nobody" in out


async def test_serve_refuses_an_out_of_date_external_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'external.db'}"
    store = await Store.open(url)
    await store.migrate("0001")
    await store.close()
    server = StromServer(make_settings(tmp_path, database_url=url))
    with pytest.raises(SchemaOutOfDate, match="strom db upgrade"):
        await server.start()
    await server.stop()


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    # main() runs its own event loop; keep it off the test's loop.
    return await asyncio.to_thread(fn, *args)
