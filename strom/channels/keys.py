"""Stream keys: which channel a key publishes to (the static keys of the configuration
first, then the accounts', then, with open rooms on, the key as a room's name), and the
rule that a name means one channel."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from strom.channels.rooms import OpenRooms
from strom.errors import StromError
from strom.live.registry import StaticStreamKeys
from strom.store import Store

log = logging.getLogger(__name__)


class ChannelNameClash(StromError):
    """A static channel (``--stream-key NAME=KEY``) has the name of an account."""


class StreamKeys:
    """:class:`~strom.live.registry.StreamKeyResolver` for the site: static keys, then
    the accounts' keys (an account never resolves to a static channel's name)."""

    def __init__(self, store: Store, static: StaticStreamKeys | None = None) -> None:
        self.store = store
        self.static = static
        #: the static channels' names, as configured
        self.static_names: Sequence[str] = static.names if static is not None else ()
        self._static_lower = frozenset(n.lower() for n in self.static_names)
        #: open rooms: a key that is no one's may name a room (off unless configured)
        self.rooms: OpenRooms | None = None

    def is_static(self, name: str) -> bool:
        return name.lower() in self._static_lower

    async def resolve(self, key: str) -> str | None:
        """Stream key -> channel name: the static keys first, then the accounts."""
        if self.static is not None:
            name = await self.static.resolve(key)
            if name is not None:
                return name
        name = await self.store.channels.resolve(key)
        if name is not None and self.is_static(name):
            # Start-up and sign-up keep this from happening; a node configured differently
            # from the one that created the account must not let it in.
            log.warning("channel %s: an account's key refused, a static channel has its name", name)
            return None
        if name is None and self.rooms is not None:
            return await self.rooms.room(key)  # the key is the room's name
        return name

    async def check_static_names(self) -> None:
        """Reserve the static channels' names (sign-up and ``strom user create`` refuse
        them, in any case) and refuse to start if an account already has one of them.

        Why refuse to start rather than drop that one static key: a channel name must
        mean one channel, and Strom cannot tell which of the two the operator meant.
        Served anyway, the name would be the account's page, chat room and recordings
        while the operator's key went live on it; dropped, the operator's channel would
        be gone behind one log line while whoever registered the name kept it (the
        operator may well be streaming to it from a script that retries forever).
        Stopping with the reason is the loud, safe failure: nothing runs under an
        ambiguous name, and the operator picks another static name."""
        self.store.users.reserve_names(self.static_names)
        for name in self.static_names:
            user = await self.store.users.get(name)
            if user is not None:
                raise ChannelNameClash(
                    f"the static channel {name!r} (--stream-key {name}=...) has the name of "
                    f"the account {user.username!r}: one name cannot be both. Give the "
                    "static channel another name"
                )
