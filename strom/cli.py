"""``strom``: the command line. A thin layer: options map to :class:`Settings` from the
one table in :mod:`strom.settings`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from strom import __version__
from strom.errors import StromError
from strom.server import StromServer
from strom.settings import Settings, load, options

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
    serve.add_argument("--config", type=Path, help="TOML settings file")
    for opt in options():
        kwargs: dict[str, object] = {
            "dest": opt.name,
            "help": f"{opt.help} [env {opt.env}; default {opt.default!r}]",
            "default": None,
        }
        if opt.type is dict:
            kwargs["action"] = "append"
        if opt.metavar:
            kwargs["metavar"] = opt.metavar
        serve.add_argument(opt.flag, **kwargs)  # type: ignore[arg-type]
    return parser


async def _serve(settings: Settings) -> None:
    server = StromServer(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    values = vars(args)
    config = values.pop("config", None)
    values.pop("command")
    try:
        settings = load(cli=values, config_file=config)
    except StromError as exc:
        print(f"strom: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_serve(settings))
    except OSError as exc:
        log.error("cannot start: %s", exc)  # noqa: TRY400 - a clear line, not a traceback
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
