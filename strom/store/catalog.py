"""What administrators do to categories: rename, box art, merge, delete. Reached as
``Store.categories`` (listing and adding stay on ``Store.channels``, which files channels
under them).

Box art is stored in the database (``category_art``), so every node of a site serves it;
``categories.art_version`` (a hash of the picture) is part of its URL, so the picture can
be cached for good and a new one is a new URL.
"""

from __future__ import annotations

import base64
import hashlib
import logging

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from strom.store import queries as q
from strom.store.categories import category_name
from strom.store.engine import Database
from strom.store.errors import CategoryExists, InvalidCategory, UnknownCategory
from strom.store.models import (
    ART_VERSION_LENGTH,
    BroadcastRow,
    CategoryArtRow,
    CategoryRow,
    ChannelRow,
)
from strom.store.views import CategoryInfo

log = logging.getLogger(__name__)


class CategoryStore:
    """The ``categories`` and ``category_art`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def update(
        self, slug: str, *, name: str | None = None, is_game: bool | None = None
    ) -> CategoryInfo:
        """Rename (the slug follows the name) and/or say whether it is a game."""
        async with self._db.transaction() as s:
            row = await self._row(s, slug)
            if name is not None:
                row.name, new_slug = category_name(name)
                if new_slug != row.slug:
                    taken = await s.scalar(
                        select(CategoryRow.id).where(CategoryRow.slug == new_slug)
                    )
                    if taken is not None:
                        raise CategoryExists(f"there is already a category {new_slug!r}")
                    row.slug = new_slug
            if is_game is not None:
                row.is_game = bool(is_game)
            try:
                await s.flush()
            except IntegrityError:
                raise CategoryExists(f"there is already a category {row.slug!r}") from None
            return q.category_view(row)

    async def set_art(self, slug: str, jpeg: bytes | None) -> CategoryInfo:
        """The category's box art (a JPEG already made by :mod:`strom.record.pictures`);
        ``None`` removes it."""
        async with self._db.transaction() as s:
            row = await self._row(s, slug)
            await s.execute(delete(CategoryArtRow).where(CategoryArtRow.category_id == row.id))
            if jpeg is None:
                row.art_version = None
            else:
                image = base64.b64encode(jpeg).decode()
                s.add(CategoryArtRow(category_id=row.id, image=image, updated_at=self._db.now()))
                row.art_version = hashlib.sha256(jpeg).hexdigest()[:ART_VERSION_LENGTH]
            await s.flush()
            return q.category_view(row)

    async def art(self, slug: str) -> tuple[bytes, str] | None:
        """The box art's JPEG and version, None if the category has none."""
        async with self._db.transaction() as s:
            found = (
                await s.execute(
                    select(CategoryArtRow.image, CategoryRow.art_version)
                    .join(CategoryRow, CategoryRow.id == CategoryArtRow.category_id)
                    .where(CategoryRow.slug == slug)
                )
            ).one_or_none()
        if found is None or found.art_version is None:
            return None
        return base64.b64decode(found.image), str(found.art_version)

    async def merge(self, slug: str, into: str) -> CategoryInfo:
        """Move every channel and past broadcast filed under ``slug`` to ``into``, then
        delete ``slug`` (duplicates: "CS2" into "Counter-Strike 2")."""
        if slug == into:
            raise InvalidCategory("a category cannot be merged into itself", "into")
        async with self._db.transaction() as s:
            source = await self._row(s, slug)
            target = await self._row(s, into, field="into")
            for table in (ChannelRow, BroadcastRow):
                await s.execute(
                    update(table)
                    .where(table.category_id == source.id)
                    .values(category_id=target.id)
                )
            await s.delete(source)
            await s.flush()
            info = q.category_view(target)
        log.info("category %s merged into %s", slug, into)
        return info

    async def delete(self, slug: str) -> None:
        """Delete the category; its channels and past broadcasts keep no category."""
        async with self._db.transaction() as s:
            row = await self._row(s, slug)
            for table in (ChannelRow, BroadcastRow):  # as ON DELETE SET NULL, everywhere
                await s.execute(
                    update(table).where(table.category_id == row.id).values(category_id=None)
                )
            await s.delete(row)
        log.info("category %s deleted", slug)

    @staticmethod
    async def _row(s: AsyncSession, slug: str, field: str = "category") -> CategoryRow:
        row = await s.scalar(select(CategoryRow).where(CategoryRow.slug == slug))
        if row is None:
            err = UnknownCategory(slug)
            err.field = field
            if field == "category":  # the one named by the URL: not found, not invalid
                err.http_status = 404
            raise err
        return row
