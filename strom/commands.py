"""What ``strom`` commands do once parsed (:mod:`strom.cli`): run the server (one process,
or ``--workers`` under a supervisor), the database and account commands. Apart from the
parser so that ``strom stream`` starts without loading any of it (the server, the
store, Redis: seconds of imports the streaming client never uses).
"""

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

from strom import category_import
from strom.category_import import CategoryRecord
from strom.channels import load_or_create_node_id
from strom.channels.control import order_site
from strom.chat.events import RoomEvent, SessionsEnded, StopOrdered
from strom.cluster.workers import Supervisor, worker_count
from strom.errors import StromError
from strom.record import salvage
from strom.server import StromServer, database_url, open_store
from strom.settings import Settings
from strom.store import Store
from strom.tls import ServerTls
from strom.usernames import RESERVED_USERNAMES, looks_like_username
from strom.web.auth import load_or_create_secret

log = logging.getLogger("strom")


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


async def serve(settings: Settings) -> None:
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


async def supervise(settings: Settings, serve_argv: list[str]) -> int:
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


async def db(settings: Settings, command: str) -> int:
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


async def user(settings: Settings, args: argparse.Namespace) -> int:
    store = await open_store(settings)
    try:
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


async def category(settings: Settings, args: argparse.Namespace) -> int:
    store = await open_store(settings)
    try:
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
