"""``strom``: the command line. A thin layer: options map to :class:`Settings` from the
one table in :mod:`strom.settings`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import resource
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from strom import __version__, category_import, client
from strom.category_import import CategoryRecord
from strom.channels import load_or_create_node_id
from strom.channels.control import order_site
from strom.chat.events import RoomEvent, SessionsEnded, StopOrdered
from strom.cluster.workers import Supervisor, worker_count
from strom.errors import StromError
from strom.record import salvage
from strom.server import StromServer, database_url, open_store
from strom.setting_sources import load, options
from strom.settings import Settings
from strom.store import Store
from strom.store.security import (
    RESERVED_USERNAMES,
    USERNAME_MAX,
    USERNAME_MIN,
    looks_like_username,
)
from strom.tls import ServerTls
from strom.web.auth import load_or_create_secret

log = logging.getLogger("strom")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="strom", description="Strom: self-hosted live streaming.")
    parser.add_argument("--version", action="version", version=f"strom {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the server",
        description="Run Strom. Every option can also be set as the environment variable "
        "shown, or as a key in a TOML file given with --config (STROM_CONFIG).",
    )
    _add_settings(serve)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    _add_settings(db_commands.add_parser("upgrade", help="apply the migrations"), STORE_SETTINGS)
    _add_settings(db_commands.add_parser("status", help="show the schema revision"), STORE_SETTINGS)

    user = commands.add_parser("user", help="manage accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    create = user_commands.add_parser(
        "create", help="create a user and print their stream key (shown once)"
    )
    create.add_argument(
        "name",
        help=f"{USERNAME_MIN}-{USERNAME_MAX} letters a-z, digits and _; not a word the site "
        "uses for its own pages (admin, root, live, api, ...)",
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.add_argument("--admin", action="store_true", help="make the user a site admin")
    _add_settings(create, STORE_SETTINGS)
    reset = user_commands.add_parser("reset-key", help="print a new stream key for a user")
    reset.add_argument("name")
    _add_settings(reset, STORE_SETTINGS)
    password = user_commands.add_parser(
        "set-password", help="set a user's password (their sessions end)"
    )
    password.add_argument("name")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    _add_settings(password, SITE_SETTINGS)
    for command, text in (
        ("suspend", "suspend a user: no log-in, API token or stream key; sessions end"),
        ("reinstate", "lift a user's suspension (also: unsuspend)"),
        ("logout", "end every session of a user (log them out everywhere)"),
    ):
        aliases = ["unsuspend"] if command == "reinstate" else []
        sub = user_commands.add_parser(command, help=text, aliases=aliases)
        sub.add_argument("name")
        _add_settings(sub, SITE_SETTINGS)

    category = commands.add_parser("category", help="manage categories (games and others)")
    category_commands = category.add_subparsers(dest="category_command", required=True)
    add = category_commands.add_parser("add", help="add a category, with box art")
    add.add_argument("name")
    add.add_argument("--art", type=Path, metavar="FILE", help="box art: a JPEG, PNG or WebP file")
    add.add_argument(
        "--not-game", action="store_true", help="not a game (Creative & IRL: Music, Art...)"
    )
    _add_settings(add, STORE_SETTINGS)
    imp = category_commands.add_parser(
        "import",
        help="add categories from a CSV or JSON export (name, slug, is_game, art/cover)",
        description="Columns or keys: name (required), slug, is_game, and the box art as "
        "art, cover or cover_url: a path (relative to the file) or an http(s) URL.",
    )
    imp.add_argument("file", type=Path, help="FILE.csv or FILE.json")
    imp.add_argument("--no-fetch", action="store_true", help="skip pictures given as URLs")
    _add_settings(imp, STORE_SETTINGS)

    stream = commands.add_parser(
        "stream",
        help="go live from this computer: screen, camera, microphone or a test pattern",
        description="Stream to a Strom site: capture the screen and/or a camera (and a "
        "microphone), encode H.264 + AAC and publish over RTMP, showing status, viewers "
        "and chat while live.",
    )
    client.add_arguments(stream)
    return parser


#: the settings the database and account commands read (the rest are the server's)
STORE_SETTINGS = ("data_dir", "database_url", "stream_keys", "log_level")
#: and the commands that tell the site's running nodes (a suspension, sessions ended)
SITE_SETTINGS = (*STORE_SETTINGS, "redis_url", "redis_prefix")


def _add_settings(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """The settings as options of ``parser``: all of them, or ``only`` those (a command
    shows the options it reads, not the server's seventy)."""
    parser.add_argument("--config", type=Path, help="TOML settings file")
    for opt in options():
        if only is not None and opt.name not in only:
            continue
        kwargs: dict[str, object] = {
            "dest": opt.name,
            "help": f"{opt.help} [env {opt.env}; default {opt.default!r}]",
            "default": None,
        }
        if opt.type is dict:
            kwargs["action"] = "append"
        if opt.metavar:
            kwargs["metavar"] = opt.metavar
        parser.add_argument(opt.flag, **kwargs)  # type: ignore[arg-type]


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard limit, as nginx's
    ``worker_rlimit_nofile`` does: every viewer is a socket, and a 1024 soft limit would
    refuse viewers long before any of Strom's own limits. Returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
            return soft, soft
        return soft, target
    return soft, soft


async def _serve(settings: Settings) -> None:
    before, after = raise_open_file_limit()
    if after < 4096:
        log.warning(
            "open files are limited to %d: that many viewers at most (raise `ulimit -n`)", after
        )
    elif after != before:
        log.debug("open-file limit raised from %d to %d", before, after)
    server = StromServer(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if settings.tls_cert:  # a renewed certificate (certbot's deploy hook): kill -HUP
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, server.reload_tls)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await server.stop()


async def _supervise(settings: Settings, serve_argv: list[str]) -> int:
    """``--workers N``: prepare once what the workers share, then run them."""
    if settings.tls_cert:  # a bad certificate: one line here, not N workers failing
        ServerTls(settings.tls_cert, settings.tls_key)
    store = await open_store(settings)  # the embedded database migrated once, here
    await store.close()
    if not settings.secret_key:
        load_or_create_secret(settings.data_dir)
    load_or_create_node_id(settings.data_dir)  # the workers' ids derive from it
    closed = await asyncio.to_thread(
        salvage.close_interrupted, settings.data_dir / "recordings", set()
    )
    if closed:
        log.info("recordings: closed %d left unfinished by the last run", len(closed))
    supervisor = Supervisor(
        worker_count(settings.workers),
        serve_argv,
        redis_url=settings.redis_url,
        tls=bool(settings.tls_cert),
    )
    return await supervisor.run()


async def _db(settings: Settings, command: str) -> int:
    url, _ = database_url(settings)
    store = await Store.open(url)
    try:
        if command == "upgrade":
            await store.migrate()
        status = await store.schema_status()
        state = "up to date" if status.up_to_date else "out of date"
        print(f"schema at {status.current or 'nothing'} (head {status.head}): {state}")
    finally:
        await store.close()
    return 0


async def _user(settings: Settings, args: argparse.Namespace) -> int:
    url, embedded = database_url(settings)
    store = await Store.open(url)
    try:
        if embedded:
            await store.migrate()
        # The static channels' names are not for accounts (the server refuses them too).
        store.users.reserve_names(settings.stream_keys)
        command = args.user_command
        if command == "create":
            _check_new_name(args.name)
            password = _read_password(args)
            created, key = await store.users.create(args.name, password, admin=args.admin)
            print(f"created {created.username}{' (admin)' if created.is_admin else ''}")
            print(f"stream key: {key}")
            return 0
        user = await store.users.get(args.name)
        if user is None:
            print(f"strom: no user called {args.name}", file=sys.stderr)
            return 1
        if command == "reset-key":
            print(f"stream key: {await store.channels.reset_stream_key(user.username)}")
        elif command == "set-password":
            await store.users.set_password(user.username, _read_password(args))
            print(f"password of {user.username} set; their sessions ended")
            await _tell_site(settings, SessionsEnded(user.id, "password changed"))
        elif command in ("suspend", "reinstate", "unsuspend"):
            await store.users.set_suspended(user.username, command == "suspend")
            print(f"{user.username} {'suspended' if command == 'suspend' else 'reinstated'}")
            if command == "suspend":
                await _tell_site(
                    settings,
                    StopOrdered(user.username, "account suspended", "strom user suspend"),
                    SessionsEnded(user.id, "account suspended"),
                )
        else:
            ended = await store.sessions.end_all(user.id)
            print(f"{user.username} logged out everywhere ({ended} sessions ended)")
            await _tell_site(settings, SessionsEnded(user.id, "logged out everywhere"))
    finally:
        await store.close()
    return 0


async def _tell_site(settings: Settings, *events: RoomEvent) -> None:
    """The running nodes of the site (``--redis-url``) act at once: a broadcast stops
    wherever it is, chat sockets close. Without Redis there is no way to reach them: a
    suspended publisher goes on until it reconnects (refused), sessions end within the
    nodes' session cache time; the admin page or API does it all at once."""
    if not settings.redis_url:
        return
    try:
        heard = await order_site(settings.redis_url, settings.redis_prefix, *events)
    except (RedisError, OSError) as exc:
        print(f"strom: the running nodes were not told (Redis: {exc})", file=sys.stderr)
        return
    print(f"the site's running nodes were told ({heard} listening)")


async def _category(settings: Settings, args: argparse.Namespace) -> int:
    url, embedded = database_url(settings)
    store = await Store.open(url)
    try:
        if embedded:
            await store.migrate()
        if args.category_command == "add":
            record = CategoryRecord(
                args.name, not args.not_game, str(args.art.resolve()) if args.art else None
            )
            print(await category_import.add_category(store, record, Path.cwd(), None))
            return 0
        done, failed = await category_import.import_file(store, args.file, fetch=not args.no_fetch)
        print(f"{done} categories imported, {failed} skipped")
        return 1 if failed else 0
    finally:
        await store.close()


def _check_new_name(name: str) -> None:
    """A reserved name is refused before the password is asked, with one to use instead."""
    if name.lower() in RESERVED_USERNAMES:
        other = next(
            n for n in (f"{name}_admin", f"{name}1", f"the_{name}") if looks_like_username(n)
        )
        raise StromError(
            f"the username {name!r} is reserved (the site uses it for its own pages): "
            f"choose another, such as {other!r}"
        )


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise StromError(
            "no terminal to ask the password on: give it on standard input with "
            "--password-stdin (echo ... | strom user create NAME --password-stdin)"
        )
    return getpass.getpass(f"Password for {args.name}: ")


def run_loop(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """Run the server on uvloop where it is installed (faster socket writes), else asyncio."""
    if event_loop != "asyncio":
        try:
            import uvloop  # noqa: PLC0415 - optional dependency
        except ImportError:
            if event_loop == "uvloop":
                raise StromError("--event-loop uvloop: uvloop is not installed") from None
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.command == "stream":
        return client.gui_main(args) if args.gui else client.main(args)
    values = {opt.name: getattr(args, opt.name, None) for opt in options()}
    try:
        settings = load(cli=values, config_file=args.config)
    except StromError as exc:
        print(f"strom: {exc}", file=sys.stderr)
        return 2
    worker = f"[worker {settings.worker}] " if settings.worker else ""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)-7s {worker}%(name)s: %(message)s",
    )
    if settings.log_level.lower() != "debug":
        # Alembic says which migration context it uses at INFO on every start: noise.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        if args.command == "db":
            return asyncio.run(_db(settings, args.db_command))
        if args.command == "user":
            return asyncio.run(_user(settings, args))
        if args.command == "category":
            return asyncio.run(_category(settings, args))
        if not settings.worker and worker_count(settings.workers) > 1:
            return asyncio.run(_supervise(settings, argv[argv.index("serve") + 1 :]))
        run_loop(_serve(settings), settings.event_loop)
    except StromError as exc:
        print(f"strom: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        log.error("cannot start: %s", exc)  # noqa: TRY400 - a clear line, not a traceback
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
