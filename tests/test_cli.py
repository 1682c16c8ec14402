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
from strom.server import StromServer
from strom.store import SchemaOutOfDate, Store
from tests.helpers import make_settings
from tests.helpers.pictures import png


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
        assert await store.channels.resolve(key) is None  # the old key no longer publishes
        assert await store.channels.resolve(new_key) == "Operator"
        user = await store.users.get("operator")
        assert user is not None
        assert user.is_admin
    finally:
        await store.close()
    code, out = await _in_thread(run, ["user", "reset-key", "nobody", *data], capsys)
    assert code == 1
    assert "no user called nobody" in out


async def test_user_create_refuses_a_static_channel_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path), "--stream-key", "demo=operator-key-123"]
    for name in ("demo", "DEMO", "Demo"):
        code, out = await _in_thread(
            run,
            ["user", "create", name, "--password-stdin", *data],
            capsys,
            "a very good password\n",
        )
        assert code == 1, out
        assert f"the name '{name}' belongs to a channel of this site" in out
    code, out = await _in_thread(
        run, ["user", "create", "demo", "--password-stdin", "--data-dir", str(tmp_path)],
        capsys, "a very good password\n",
    )  # fmt: skip
    assert code == 0, out  # no static channel of that name on this site: a fine name
    # And now the operator cannot add the static key without renaming it.
    code, out = await _in_thread(run, ["serve", *data, "--http-port", "0", "--rtmp-port", "0",
                                       "--host", "127.0.0.1"], capsys)  # fmt: skip
    assert code == 1
    assert "static channel 'demo'" in out
    assert "account 'demo'" in out


async def test_user_commands_end_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    url = f"sqlite+aiosqlite:///{tmp_path / 'strom.db'}"
    code, out = await _in_thread(
        run, ["user", "create", "Kim", "--password-stdin", *data], capsys, "a very good password\n"
    )
    assert code == 0, out

    async def new_session() -> str:
        store = await Store.open(url)
        try:
            user = await store.users.get("kim")
            assert user is not None
            return (await store.sessions.create(user.id))[0]
        finally:
            await store.close()

    async def valid(token: str) -> bool:
        store = await Store.open(url)
        try:
            return await store.sessions.resolve(token) is not None
        finally:
            await store.close()

    for argv, stdin, said in (
        (["user", "logout", "kim"], "", "Kim logged out everywhere (1 sessions ended)"),
        (["user", "set-password", "kim", "--password-stdin"], "another good one\n",
         "password of Kim set"),
        (["user", "suspend", "kim"], "", "Kim suspended"),
    ):  # fmt: skip
        token = await new_session()
        code, out = await _in_thread(run, [*argv, *data], capsys, stdin)
        assert code == 0, out
        assert said in out
        assert not await valid(token)
    code, out = await _in_thread(run, ["user", "reinstate", "kim", *data], capsys)
    assert (code, out.strip()) == (0, "Kim reinstated")
    store = await Store.open(url)
    try:
        assert await store.users.authenticate("kim", "another good one") is not None
    finally:
        await store.close()


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


def test_serve_raises_the_open_file_limit_to_the_hard_limit() -> None:
    """Every viewer is a socket: the soft limit (often 1024) must not cap the audience."""
    import resource  # noqa: PLC0415

    from strom.commands import raise_open_file_limit  # noqa: PLC0415

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        raise_open_file_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_the_account_commands_speak_plainly(tmp_path: Path) -> None:
    """As an operator meets them in a shell: each command lists its own options, a
    reserved name is refused with one to use instead, the password rule is the web
    form's, no terminal for the prompt is one line (not a traceback), and no Alembic
    chatter."""

    async def strom(*argv: str, stdin: bytes | None = None) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "strom", *argv, "--data-dir", str(tmp_path),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(stdin), 60)
        return proc.returncode or 0, out.decode()

    code, out = await strom("user", "create", "--help")
    assert code == 0
    assert "--database-url" in out
    assert "--rtmp-port" not in out  # a server option
    assert "admin, root" in out  # what a name may not be
    code, out = await strom("user", "create", "root", "--admin")
    assert code == 1
    assert out.strip() == (
        "strom: the username 'root' is reserved (the site uses it for its own pages): "
        "choose another, such as 'root_admin'"
    )
    code, out = await strom("user", "create", "carol")  # stdin is no terminal
    assert code == 1
    assert out.strip().splitlines() == [
        "strom: no terminal to ask the password on: give it on standard input with "
        "--password-stdin (echo ... | strom user create NAME --password-stdin)"
    ]
    code, out = await strom("user", "create", "carol", "--password-stdin", stdin=b"nine char\n")
    assert code == 1
    assert out.strip() == "strom: a password has at least 10 characters"
    code, out = await strom("user", "create", "carol", "--password-stdin", stdin=b"ten chars!\n")
    assert code == 0, out
    assert "created carol" in out.splitlines()
    assert "alembic" not in out.lower()


async def test_category_add_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path)]
    (tmp_path / "covers").mkdir()
    (tmp_path / "covers" / "factorio.png").write_bytes(png(264, 352))
    (tmp_path / "hades.png").write_bytes(png(600, 400))
    export = tmp_path / "igdb.csv"
    export.write_text(
        "name,slug,is_game,cover_url\n"
        "Hades II,hades-ii,true,hades.png\n"  # exists already: gets the art
        "Outer Wilds,outer-wilds,1,covers/factorio.png\n"
        "Knitting,,false,\n"
        "Broken,broken,1,covers/missing.png\n"
    )
    code, out = await _in_thread(run, ["category", "import", str(export), *data], capsys)
    assert code == 1, out  # one row failed, and says so
    assert "hades-ii: exists, box art 284x190" in out
    assert "outer-wilds: added, box art 264x352" in out
    assert "knitting: added" in out
    assert "Broken: skipped:" in out
    assert "3 categories imported, 1 skipped" in out
    code, out = await _in_thread(
        run,
        ["category", "add", "Tunic", "--art", str(tmp_path / "hades.png"), *data],
        capsys,
    )
    assert (code, out.strip()) == (0, "tunic: added, box art 284x190")
    code, out = await _in_thread(
        run, ["category", "import", str(tmp_path / "no.csv"), *data], capsys
    )
    assert (code, out.strip()) == (
        1,
        f"strom: cannot read {tmp_path / 'no.csv'}: No such file or directory",
    )
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'strom.db'}")
    try:
        outer = await store.channels.category("outer-wilds")
        knitting = await store.channels.category("knitting")
        assert outer is not None
        assert outer.is_game
        assert outer.art is not None
        assert knitting is not None
        assert not knitting.is_game
        assert knitting.art is None
        assert await store.channels.category("broken") is None  # its picture was missing
        found = await store.categories.art("tunic")
        assert found is not None
        assert found[0][:3] == b"\xff\xd8\xff"  # kept as a JPEG made here
    finally:
        await store.close()
