"""Who is in a chat room, site-wide: the chatter list (the ``chatters`` command).

Each node knows its own members. A node asked for the list publishes a
:class:`~strom.chat.events.ChattersAsked` on the room bus (at most once per
:data:`ASK_INTERVAL`); every other node with members in the room answers with a
:class:`~strom.chat.events.ChattersSeen` of its own members, and the asking node, after
a short wait (:data:`ANSWER_WAIT`, only when the bus reaches other processes), merges
its members with the answers heard recently. Nothing is sent while nobody asks.

Sans-IO: time is passed in (monotonic seconds). Names are bounded (``max_names``), guests
are only counted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Protocol

from strom.chat.events import ChattersAsked, ChattersSeen

ASK_INTERVAL = 1.0  # seconds: asks for one room closer together share the answers
ANSWER_WAIT = 0.3  # seconds the asking node waits for the others' answers
FRESH_SECONDS = 5.0  # another node's answer older than this is not used


class ChatterRoll:
    """One room's chatter list on one node (``node`` names this node on the bus)."""

    def __init__(self, node: str, max_names: int) -> None:
        self.node = node
        self.max_names = max(1, max_names)
        self._seen: dict[str, tuple[ChattersSeen, float]] = {}
        self._asked = float("-inf")

    def ask(self, now: float) -> ChattersAsked | None:
        """The question to publish, or None: one was asked a moment ago."""
        if now - self._asked < ASK_INTERVAL:
            return None
        self._asked = now
        return ChattersAsked(self.node)

    def answer_to(
        self, event: ChattersAsked, members: Iterable[_Who], first: Collection[str] = ()
    ) -> ChattersSeen | None:
        """What this node answers another node's question with (None: its own)."""
        if event.node == self.node:
            return None
        return self.snapshot(members, first)

    def snapshot(self, members: Iterable[_Who], first: Collection[str] = ()) -> ChattersSeen:
        """This node's members; beyond ``max_names`` names the ones in ``first`` (lower
        case: the owner, the moderators) and admins are kept before the others."""
        users: dict[str, str] = {}
        admins: dict[str, str] = {}
        guests: set[str] = set()
        for who in members:
            if who.guest:
                guests.add(who.name)
            else:
                users.setdefault(who.name.lower(), who.name)
                if who.is_admin:
                    admins.setdefault(who.name.lower(), who.name)
        names = list(users)
        if len(names) > self.max_names:
            names.sort(key=lambda key: (key not in first and key not in admins, key))
            del names[self.max_names :]
        kept = tuple(users[key] for key in names)
        return ChattersSeen(self.node, kept, tuple(admins[k] for k in names if k in admins),
                            len(guests))  # fmt: skip

    def heard(self, event: ChattersSeen, now: float) -> None:
        if event.node != self.node:
            self._seen[event.node] = (event, now)

    def listing(
        self,
        members: Iterable[_Who],
        owner: str,
        moderators: Iterable[str],
        now: float,
        nonce: str | None = None,
    ) -> dict[str, Any]:
        """The ``chatters`` answer: names with badges, the owner first, then admins and
        moderators, then everyone else by name; guests as a number."""
        mods = {name.lower() for name in moderators}
        snapshots = [self.snapshot(members, {owner.lower(), *mods})]
        for node, (seen, at) in list(self._seen.items()):
            if now - at > FRESH_SECONDS:
                del self._seen[node]
            else:
                snapshots.append(seen)
        names: dict[str, str] = {}
        admins: set[str] = set()
        guests = 0
        for snap in snapshots:
            guests += snap.guests
            admins.update(name.lower() for name in snap.admins)
            for name in snap.users:
                names.setdefault(name.lower(), name)

        def badges(key: str) -> list[str]:
            found = ["owner"] if key == owner.lower() else []
            found += ["moderator"] if key in mods else []
            return found + (["admin"] if key in admins else [])

        def rank(key: str) -> tuple[int, str]:
            b = badges(key)
            return (0 if "owner" in b else 1 if "admin" in b else 2 if b else 3), key

        ordered = sorted(names, key=rank)
        shown = ordered[: self.max_names]
        obj: dict[str, Any] = {
            "type": "chatters",
            "users": [{"name": names[key], "badges": badges(key)} for key in shown],
            "guests": guests,
            "total": len(ordered) + guests,
            "truncated": len(shown) < len(ordered),
        }
        if nonce is not None:
            obj["nonce"] = nonce
        return obj


class _Who(Protocol):
    """What the roll reads of a member's identity (:class:`strom.chat.room.Identity`)."""

    @property
    def name(self) -> str: ...

    @property
    def guest(self) -> bool: ...

    @property
    def is_admin(self) -> bool: ...
