"""Where settings come from: defaults, a TOML file, the environment and the command
line, in that order of precedence (later wins), merged into one
:class:`~strom.settings.Settings`.

Every field is one option. Its command-line flag is ``--field-name``, its environment
variable ``STROM_FIELD_NAME`` and its config-file key ``field_name``; the CLI builds its
parser from this table (see :func:`options`), so nothing is copied by hand.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strom.setting_values import SettingsError, parse_stream_keys
from strom.settings import Settings

__all__ = ["Option", "load", "options"]


@dataclass(frozen=True)
class Option:
    """One setting as the CLI, the environment and the config file see it."""

    name: str
    type: type
    default: Any
    help: str
    metavar: str | None
    flag: str
    parser: Callable[[Any], Any] | None = None

    @property
    def env(self) -> str:
        return "STROM_" + self.name.upper()

    def parse(self, raw: Any) -> Any:
        """Convert a string (env, CLI) or TOML value to this option's type."""
        if self.parser is not None:
            return self.parser(raw)
        if self.type is dict:
            return parse_stream_keys(raw)
        if self.type is bool and isinstance(raw, str):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        try:
            return self.type(raw)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{self.name}: cannot use {raw!r}: {exc}") from None


def options() -> Iterator[Option]:
    hints = typing.get_type_hints(Settings)
    for f in dataclasses.fields(Settings):
        hint = hints[f.name]
        origin = typing.get_origin(hint) or hint
        if isinstance(origin, types.UnionType):  # pragma: no cover - no optional fields yet
            origin = typing.get_args(hint)[0]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        yield Option(
            name=f.name,
            type=origin,
            default=default,
            help=f.metadata.get("help", ""),
            metavar=f.metadata.get("metavar"),
            flag=f.metadata.get("flag", "--" + f.name.replace("_", "-")),
            parser=f.metadata.get("parse"),
        )


def load(
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge defaults < config file < environment < command line into :class:`Settings`."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    by_name = {opt.name: opt for opt in options()}
    path = config_file or (Path(environ["STROM_CONFIG"]) if "STROM_CONFIG" in environ else None)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"config file {path}: {exc}") from None
        for key, raw in data.items():
            if key not in by_name:
                raise SettingsError(f"config file {path}: unknown setting {key!r}")
            values[key] = by_name[key].parse(raw)
    for opt in by_name.values():
        if opt.env in environ:
            values[opt.name] = opt.parse(environ[opt.env])
    for name, raw in (cli or {}).items():
        if raw is not None:
            values[name] = by_name[name].parse(raw)
    return Settings(**values)
