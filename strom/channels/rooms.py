"""Open rooms (``--open-rooms true``): channels named by whoever publishes to them first.

The live-broadcast app Strom grew from has no accounts: it makes up a room key and uses
it for everything, publishing to ``rtmp://HOST/live/{roomKey}`` and naming the Socket.IO
room after it. With open rooms on, a stream key that is no one's key and is a name no
account or static channel has (nor could have: reserved words) is such a room: the
publish goes live on a channel of that name, which plays, lists, records and ends like
any other. Names of accounts and static channels stay theirs: publishing to them still
needs their key, whatever the case of the letters. Stream keys Strom makes are 43
characters, longer than any channel name, so a mistyped key never becomes a room.

Off by default: anyone who can reach the RTMP port can go live. For LAN events and the
original app; ``docs/compat.md`` says so.
"""

from __future__ import annotations

from strom.setting_values import valid_channel_name
from strom.store import DatabaseUnavailable, Store
from strom.usernames import RESERVED_USERNAMES


class OpenRooms:
    """Which names are open rooms (see the module doc)."""

    def __init__(self, store: Store, static_names: frozenset[str], enabled: bool) -> None:
        self.enabled = enabled
        self._store = store
        #: the static channels' names, lower case
        self._static = frozenset(n.lower() for n in static_names)
        #: room names seen live or claimed here (lower case): what the directory marks
        self._seen: dict[str, str] = {}

    def could_be(self, name: str) -> bool:
        """Whether ``name`` may be a room, as far as can be told without the database."""
        return (
            self.enabled
            and valid_channel_name(name)
            and name.lower() not in RESERVED_USERNAMES
            and name.lower() not in self._static
            and name.lower() not in self._store.users.reserved_names
        )

    async def room(self, name: str) -> str | None:
        """``name`` if it is an open room's (no account has it); None otherwise.
        :class:`~strom.store.DatabaseUnavailable` when that cannot be told now."""
        if not self.could_be(name):
            return None
        if await self._store.users.get(name) is not None:
            return None
        self._seen[name.lower()] = name
        if len(self._seen) > 10_000:  # a directory mark, not a registry: bounded
            self._seen.clear()
        return name

    def is_room(self, name: str) -> bool:
        """Whether ``name`` went live or was claimed as a room on this node."""
        return self.enabled and name.lower() in self._seen


__all__ = ["DatabaseUnavailable", "OpenRooms"]
