"""``strom``: the command line. A thin layer: options map to :class:`Settings` from the
one table in :mod:`strom.settings`; what each command does is :mod:`strom.commands`,
loaded only for the commands that need it (``strom stream`` starts in half a second)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from strom import __version__, client
from strom.errors import StromError
from strom.setting_sources import load, options
from strom.usernames import USERNAME_MAX, USERNAME_MIN

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
    # The server's and the store's modules: loaded only now (`strom stream` never does).
    from strom import commands  # noqa: PLC0415
    from strom.cluster.workers import worker_count  # noqa: PLC0415

    try:
        if args.command == "db":
            return asyncio.run(commands.db(settings, args.db_command))
        if args.command == "user":
            return asyncio.run(commands.user(settings, args))
        if args.command == "category":
            return asyncio.run(commands.category(settings, args))
        if not settings.worker and worker_count(settings.workers) > 1:
            return asyncio.run(commands.supervise(settings, argv[argv.index("serve") + 1 :]))
        commands.run_loop(commands.serve(settings), settings.event_loop)
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
