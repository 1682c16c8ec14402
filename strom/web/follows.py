"""The channels a user follows, as the "Following" page and ``GET /api/v1/me/following``
show them: live ones first (most viewers first), then the others by name.

Live channels are described from the hub (no query: the directory keeps their titles);
the page (and the API with ``?last_live=1``, which the page reads again when a followed
channel's state changes) also reads each offline channel's last broadcast, which the
plain API, polled by every open tab of a logged-in user for go-live notices, leaves out.
"""

from __future__ import annotations

from typing import Any

from strom.channels.directory import display_title
from strom.web.site import Site

#: most channels listed (a follow list is unbounded; a page is not)
MAX_LISTED = 500


async def followed_channels(
    site: Site, username: str, *, last_live: bool = False
) -> list[dict[str, Any]]:
    """``username``'s followed channels. Each has ``username`` and ``live``; live ones the
    directory card's fields (title, category, viewers, started_at, thumbnail_url...);
    with ``last_live``, offline ones ``title`` and ``last_live_at`` (UNIX seconds or None)."""
    store = site.store
    names = (await store.follows.followed_channels(username))[:MAX_LISTED]
    live: list[dict[str, Any]] = []
    offline: list[dict[str, Any]] = []
    for name in names:
        card = site.directory.live_card(name)  # live here or on another node
        # unlisted: only for those with the link (a private one, its followers may watch)
        visibility = site.directory.visibility(name) if card is not None else None
        if card is not None and visibility != "unlisted":
            picture = card.get("thumbnail_url")
            if (
                visibility == "private"
                and picture
                and (token := await site.access.media_token(name))
            ):
                card = {**card, "thumbnail_url": f"{picture}&token={token}"}
            live.append({**card, "live": True})
            continue
        entry: dict[str, Any] = {"username": name, "live": False}
        if last_live:
            info = await store.channels.get(name)
            last = info.last_broadcast if info is not None else None
            entry["title"] = display_title(name, info)
            entry["last_live_at"] = (
                (last.ended_at or last.started_at).timestamp() if last is not None else None
            )
        offline.append(entry)
    live.sort(key=lambda c: (-c["viewers"], c["username"].casefold()))
    return live + offline
