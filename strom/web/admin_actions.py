"""What a site administrator does, once for the admin API and the admin pages: stop a
broadcast (with a reason the streamer sees), manage accounts, manage categories.

Each action logs who did it. Accounts and categories live in the database, so they are
site-wide; stopping a broadcast (and suspending its streamer) is an order to the node that
ingests it, whichever that is (:mod:`strom.channels.control`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

from strom.errors import ApiError
from strom.live.channel import ChannelState
from strom.record import storage
from strom.record.pictures import fit_picture
from strom.store import User
from strom.store.views import CategoryInfo
from strom.web.site import Site

log = logging.getLogger(__name__)


#: seconds an administrator's stop waits to see the broadcast end (then answers anyway)
STOP_WAIT = 5.0
STOP_LOOK = 0.05  # seconds between looks


def temporary_password() -> str:
    """16 random URL-safe characters: within the password rule, shown once."""
    return secrets.token_urlsafe(12)


class SiteAdmin:
    def __init__(self, site: Site) -> None:
        self.site = site

    # --- broadcasts --------------------------------------------------------------------

    async def stop(self, name: str, reason: str, *, by: str, anyway: bool = False) -> bool:
        """Stop ``name``'s broadcast on whichever node ingests it, telling the publisher
        and noting it for their dashboard. False if it is not on (starting, live or
        reconnecting) here nor listed by another node; ``anyway``: the order goes out
        even so (an account suspended: a publish just starting elsewhere stops too)."""
        channel = self.site.registry.get(name)
        if (
            channel is not None
            and channel.origin is None
            and (channel.publisher is not None or channel.state is ChannelState.RECONNECTING)
        ):
            found: str | None = channel.name
        else:
            card = self.site.directory.live_card(name)
            found = card["username"] if card is not None else None
        if found is not None:
            log.warning(
                "admin %s stopped the broadcast of %s (%s)", by, found, reason or "no reason"
            )
        if found is not None or anyway:
            self.site.control.stop(found or name, reason, by=by)
        if found is not None:
            await self._ended(found)
        return found is not None

    async def _ended(self, name: str) -> None:
        """Wait (a little) until the broadcast is over as this node sees it, so that the
        page the administrator sees next no longer lists it (one on another node: at
        this node's next look at the live map)."""
        for _ in range(round(STOP_WAIT / STOP_LOOK)):
            if self.site.directory.live_card(name) is None:
                return
            await asyncio.sleep(STOP_LOOK)

    # --- accounts ----------------------------------------------------------------------

    async def user(self, name: str) -> User:
        found = await self.site.store.users.get(name)
        if found is None:
            raise ApiError(404, f"no user called {name!r}")
        return found

    async def set_suspended(self, name: str, suspended: bool, *, by: str) -> User:
        """Suspend (no log-in, publishing or chat; sessions end; a live broadcast stops)
        or reinstate."""
        user = await self.user(name)
        if suspended and user.username.lower() == by.lower():
            raise ApiError(409, "you cannot suspend yourself")
        await self.site.store.users.set_suspended(user.username, suspended)
        log.warning("admin %s %s %s", by, "suspended" if suspended else "reinstated", user.username)
        if suspended:  # its chat sockets close on every node (the sessions ended)
            await self.stop(user.username, "account suspended", by=by, anyway=True)
        return await self.user(name)

    async def set_admin(self, name: str, admin: bool, *, by: str) -> User:
        user = await self.user(name)
        await self.site.store.users.set_admin(user.username, admin)  # LastAdmin: 409
        log.warning("admin %s %s %s", by, "made an admin of" if admin else "unmade admin", name)
        return await self.user(name)

    async def reset_key(self, name: str, *, by: str) -> None:
        """A new stream key: the old one stops working; the streamer's dashboard shows the
        new one once (the administrator never sees it)."""
        user = await self.user(name)
        await self.site.store.channels.reset_stream_key(user.username, for_streamer=True)
        log.warning("admin %s reset the stream key of %s", by, user.username)

    async def set_temporary_password(self, name: str, *, by: str) -> str:
        """A new random password (shown once, to the administrator); sessions end."""
        user = await self.user(name)
        password = temporary_password()
        await self.site.store.users.set_password(user.username, password)
        log.warning("admin %s set a temporary password for %s", by, user.username)
        return password

    async def delete_user(self, name: str, confirm: str, *, by: str) -> int:
        """Delete the account, its channel and its recordings on this node; ``confirm``
        must repeat the name. Returns how many recordings were deleted."""
        user = await self.user(name)
        if confirm.strip().lower() != user.username.lower():
            raise ApiError(422, f"type the username ({user.username}) to confirm")
        if user.username.lower() == by.lower():
            raise ApiError(409, "you cannot delete your own account here")
        await self.stop(user.username, "account deleted", by=by, anyway=True)
        await self.site.store.users.delete(user.username)  # LastAdmin: 409
        self.site.directory.forget(user.username)
        root = self.site.recorder.root
        recordings = await asyncio.to_thread(_delete_recordings, root, user.username)
        log.warning("admin %s deleted user %s and %d recordings", by, user.username, recordings)
        return recordings

    # --- categories --------------------------------------------------------------------

    async def add_category(
        self, name: str, *, is_game: bool, art: bytes | None, by: str
    ) -> CategoryInfo:
        jpeg = await _fitted(art) if art else None  # refused before anything is added
        added = await self.site.store.channels.add_category(name, is_game=is_game)
        if jpeg is not None:
            added = await self.site.store.categories.set_art(added.slug, jpeg)
        log.info("admin %s added category %s", by, added.slug)
        return added

    async def update_category(
        self, slug: str, *, name: str | None, is_game: bool | None, by: str
    ) -> CategoryInfo:
        info = await self.site.store.categories.update(slug, name=name, is_game=is_game)
        log.info("admin %s changed category %s (now %s)", by, slug, info.slug)
        await self._relist_live()
        return info

    async def merge_category(self, slug: str, into: str, *, by: str) -> CategoryInfo:
        info = await self.site.store.categories.merge(slug, into)
        log.info("admin %s merged category %s into %s", by, slug, info.slug)
        await self._relist_live()
        return info

    async def delete_category(self, slug: str, *, by: str) -> None:
        await self.site.store.categories.delete(slug)
        log.info("admin %s deleted category %s", by, slug)
        await self._relist_live()

    async def _relist_live(self) -> None:
        """Live channels here are listed with their category as it was when they went
        live: read them again after their category changed."""
        directory = self.site.directory
        for name in list(directory.infos):
            info = await self.site.store.channels.get(name)
            if info is not None:
                directory.info_changed(info)

    async def set_art(self, slug: str, art: bytes | None, *, by: str) -> CategoryInfo:
        jpeg = await _fitted(art) if art else None
        info = await self.site.store.categories.set_art(slug, jpeg)
        log.info("admin %s %s the box art of %s", by, "set" if jpeg else "removed", slug)
        return info


async def _fitted(data: bytes) -> bytes:
    return (await asyncio.to_thread(fit_picture, data)).jpeg


def _delete_recordings(root: Path, name: str) -> int:
    if not root.is_dir():
        return 0
    deleted = 0
    for entry in root.iterdir():  # recordings are filed under the name as it was live
        if entry.is_dir() and entry.name.lower() == name.lower():
            deleted += len(storage.list_recordings(root, entry.name))
            storage.delete(entry)
    return deleted
