"""The values inside settings that have a syntax of their own (``NAME=KEY`` stream keys,
``PORT=CHANNEL`` TCP ingest ports, channel names), and the error a bad one raises.
:mod:`strom.settings` re-exports them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any

from strom.errors import StromError
from strom.media.ladder import split_rendition


def opt(default: Any, help: str, **extra: Any) -> Any:
    """A setting: its default and its help text (``extra``: how the command line takes it)."""
    return field(default=default, metadata={"help": help, **extra})


class SettingsError(StromError):
    """A setting has a value Strom cannot use."""


def parse_stream_keys(raw: Any) -> dict[str, str]:
    """``NAME=KEY`` items, given as a list, a comma-separated string or a TOML table."""
    items = _items(raw)
    keys: dict[str, str] = {}
    for item in items:
        name, sep, key = str(item).strip().partition("=")
        if not sep or not name or not key:
            raise SettingsError("stream keys are given as NAME=KEY")
        _check_channel_name(name)
        if len(key) < 8:
            raise SettingsError(f"the stream key for {name!r} is too short (8+ characters)")
        keys[name] = key
    return keys


def _items(raw: Any) -> list[str]:
    """``A=B`` items given as a list, a comma-separated string or a TOML table."""
    if isinstance(raw, Mapping):
        return [f"{k}={v}" for k, v in raw.items()]
    if isinstance(raw, str):
        return [part for part in raw.split(",") if part.strip()]
    return [str(item) for item in raw]


def _check_channel_name(name: str) -> None:
    if not valid_channel_name(name):
        raise SettingsError(f"channel name {name!r}: use 1-32 letters, digits, '_' or '-'")


def valid_channel_name(name: str) -> bool:
    return 0 < len(name) <= 32 and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)


def valid_watch_name(name: str) -> bool:
    """A channel viewers may ask for: a channel's name, or its ladder rendition's
    (``alice~480p``, :mod:`strom.media.ladder`), which nobody publishes to."""
    found = split_rendition(name)
    return valid_channel_name(name if found is None else found[0])


def parse_tcp_ingest(raw: Any) -> dict[int, str]:
    """``PORT=CHANNEL`` items (raw TCP push ports), as a list, a comma-separated string
    or a TOML table."""
    items = _items(raw)
    ports: dict[int, str] = {}
    for item in items:
        port, sep, name = str(item).strip().partition("=")
        if not sep or not port.strip().isdigit() or not 0 <= int(port) <= 65535:
            raise SettingsError("TCP ingest ports are given as PORT=CHANNEL")
        _check_channel_name(name.strip())
        ports[int(port)] = name.strip()
    return ports
