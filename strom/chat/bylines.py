"""What a chat message shows of its sender besides the username: their display name and
the URL of their small avatar (64 px). Worked out once when the message is posted (and
for a room's history when it opens) and carried in the ``message`` event, so viewers
never ask; :class:`Bylines` remembers them per user for a while, so a busy chatter costs
no query per message either.

A change made on this node (a new avatar, a new display name) is forgotten at once
(:meth:`Bylines.forget`); one made on another node shows within :data:`BYLINE_TTL`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from strom.record.avatars import avatar_url
from strom.store import Store

#: users whose byline a node remembers (oldest forgotten first)
BYLINE_MEMORY = 10_000
#: seconds a remembered byline is trusted (a change made on another node shows after this)
BYLINE_TTL = 60.0


@dataclass(frozen=True)
class Byline:
    display_name: str = ""
    #: the small avatar's URL; None: no avatar
    avatar: str | None = None


NONE = Byline()


class Bylines:
    def __init__(
        self, store: Store, *, memory: int = BYLINE_MEMORY, ttl: float = BYLINE_TTL
    ) -> None:
        self.store = store
        self.memory = memory
        self.ttl = ttl
        #: user id -> (username, byline, when read: monotonic)
        self._known: OrderedDict[int, tuple[str, Byline, float]] = OrderedDict()

    async def of(self, user_id: int | None) -> Byline:
        """``user_id``'s byline (a guest's, None, is empty)."""
        return (await self.many([user_id]))[user_id]

    async def many(self, user_ids: list[int | None]) -> dict[int | None, Byline]:
        """The bylines of ``user_ids`` (guests: None): the ones not remembered read in one
        query."""
        now = time.monotonic()
        found: dict[int | None, Byline] = {None: NONE}
        missing = []
        for user_id in dict.fromkeys(user_ids):
            if user_id is None:
                continue
            known = self._known.get(user_id)
            if known is not None and now - known[2] < self.ttl:
                found[user_id] = known[1]
            else:
                missing.append(user_id)
        if missing:
            read = await self.store.profiles.names(missing)
            for user_id in missing:
                name, display, etag = read.get(user_id, ("", "", None))
                byline = Byline(display, avatar_url(name, etag, small=True) if name else None)
                found[user_id] = byline
                self._remember(user_id, name, byline, now)
        return found

    def forget(self, username: str) -> None:
        """``username`` changed their display name or avatar (here): read it again."""
        key = username.lower()
        for user_id, (name, _, _) in list(self._known.items()):
            if name.lower() == key:
                del self._known[user_id]

    def _remember(self, user_id: int, name: str, byline: Byline, now: float) -> None:
        self._known[user_id] = (name, byline, now)
        self._known.move_to_end(user_id)
        while len(self._known) > self.memory:
            self._known.popitem(last=False)
