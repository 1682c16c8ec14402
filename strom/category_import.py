"""``strom category add`` and ``strom category import``: categories from the command line,
one at a time or from an export (IGDB's or any other) as CSV or JSON.

A file holds one category per row (CSV with a header line) or per object (JSON: a list,
or ``{"categories": [...]}``). Columns: ``name`` (required), ``slug`` (ignored: the slug
is made from the name, as the site makes it), ``is_game`` / ``game`` (true unless
``false``, ``0``, ``no``), and the box art as ``art`` / ``cover`` / ``cover_url`` /
``image``: a file path (relative to the file) or an ``http(s)`` URL, fetched with a
bounded size and time (IGDB's ``//images.igdb.com/.../t_thumb/...`` covers are asked for
in their ``t_cover_big`` size). A category that exists keeps its name and gets the art.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from strom.errors import StromError
from strom.record.pictures import ART_MAX_BYTES, fit_picture
from strom.store import Store
from strom.store.categories import category_name

log = logging.getLogger(__name__)

#: an import file larger than this is refused (a few thousand rows is plenty)
IMPORT_MAX_BYTES = 16 << 20
#: seconds to fetch one picture
FETCH_TIMEOUT = 20.0
_ART_KEYS = ("art", "cover", "cover_url", "image", "box_art")
_GAME_KEYS = ("is_game", "game")
_FALSE = {"false", "0", "no", "n", "off", ""}


@dataclass(frozen=True)
class CategoryRecord:
    name: str
    is_game: bool
    #: a path or URL of the box art, None: none
    art: str | None


def read_records(path: Path) -> list[CategoryRecord]:
    """The categories in a CSV or JSON file; raises :class:`StromError` for a file that is
    neither, or a row without a name."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StromError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > IMPORT_MAX_BYTES:
        raise StromError(f"{path}: larger than {IMPORT_MAX_BYTES >> 20} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StromError(f"{path}: not UTF-8 text") from None
    rows = list(_json_rows(text) if path.suffix.lower() == ".json" else _csv_rows(text))
    records = []
    for number, row in enumerate(rows, 1):
        name = row.get("name")
        if not isinstance(name, str) or not name.strip():
            raise StromError(f"{path}: entry {number} has no name")
        game = next((row[k] for k in _GAME_KEYS if k in row), True)
        is_game = game if isinstance(game, bool) else str(game).strip().lower() not in _FALSE
        art = next((row[k] for k in _ART_KEYS if isinstance(row.get(k), str) and row[k]), None)
        records.append(CategoryRecord(name.strip(), is_game, art))
    return records


def _csv_rows(text: str) -> Iterator[dict[str, Any]]:
    for row in csv.DictReader(io.StringIO(text)):
        # A row longer than the header has its extra fields under None: not ours.
        yield {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}


def _json_rows(text: str) -> Iterator[dict[str, Any]]:
    try:
        found = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StromError(f"not JSON: {exc}") from None
    if isinstance(found, dict):
        found = found.get("categories")
    if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
        raise StromError('JSON: expected a list of objects (or {"categories": [...]})')
    for row in found:
        yield {str(k).lower(): v for k, v in row.items()}


async def art_bytes(where: str, base: Path, http: aiohttp.ClientSession | None) -> bytes:
    """The picture at ``where``: a URL (fetched, bounded) or a path relative to ``base``."""
    if where.startswith("//"):
        where = "https:" + where
    if where.startswith(("http://", "https://")):
        if http is None:
            raise StromError("fetching pictures is off")
        url = where.replace("/t_thumb/", "/t_cover_big/")  # IGDB: the cover, not its thumb
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
        async with http.get(url, timeout=timeout) as resp:
            if resp.status != 200:
                raise StromError(f"{url}: HTTP {resp.status}")
            return await resp.content.read(ART_MAX_BYTES + 1)
    return await asyncio.to_thread(_read_file, where, base)


def _read_file(where: str, base: Path) -> bytes:
    path = Path(where).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        with path.open("rb") as f:
            return f.read(ART_MAX_BYTES + 1)
    except OSError as exc:
        raise StromError(f"cannot read {path}: {exc.strerror or exc}") from None


async def add_category(
    store: Store, record: CategoryRecord, base: Path, http: aiohttp.ClientSession | None
) -> str:
    """Add the category (or find it) and set its art; returns what was done, a line.
    A picture that cannot be had or used adds nothing."""
    name, slug = category_name(record.name)
    picture = None
    if record.art:
        data = await art_bytes(record.art, base, http)
        picture = await asyncio.to_thread(fit_picture, data)
    existing = await store.channels.category(slug)
    if existing is None:
        await store.channels.add_category(name, is_game=record.is_game)
    done = "added" if existing is None else "exists"
    if picture is not None:
        await store.categories.set_art(slug, picture.jpeg)
        done += f", box art {picture.width}x{picture.height}"
    return f"{slug}: {done}"


async def import_file(store: Store, path: Path, *, fetch: bool = True) -> tuple[int, int]:
    """Import every category of the file, printing a line for each; a row that fails is
    reported and skipped. Returns (done, failed)."""
    records = read_records(path)
    done = failed = 0
    async with aiohttp.ClientSession() as http:
        for record in records:
            try:
                print(await add_category(store, record, path.parent, http if fetch else None))
                done += 1
            except (StromError, OSError, aiohttp.ClientError, TimeoutError) as exc:
                print(f"{record.name}: skipped: {exc}")
                failed += 1
    return done, failed
