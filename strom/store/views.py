"""What the store hands out: frozen snapshots, detached from any database session.

None of them carries a secret: no password hash, no stream key or token hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class User:
    id: int
    username: str  # as registered, e.g. "Alice"; look-ups ignore case
    is_admin: bool
    suspended: bool
    created_at: datetime
    last_online_at: datetime | None


@dataclass(frozen=True)
class CategoryInfo:
    id: int
    slug: str
    name: str
    is_game: bool
    #: the box art's version (its URL changes with it); None: no box art
    art: str | None = None


@dataclass(frozen=True)
class BroadcastInfo:
    id: int
    username: str
    title: str  # as it was when the broadcast started
    category: CategoryInfo | None
    started_at: datetime
    ended_at: datetime | None  # None: live, or the server stopped before it ended
    peak_viewers: int
    #: an administrator stopped it, saying this ("" for no reason); None: they did not
    stop_reason: str | None = None


@dataclass(frozen=True)
class ChannelInfo:
    """A channel as its page shows it (whether it is live is the hub's business)."""

    username: str
    title: str
    description: str
    category: CategoryInfo | None
    require_account_for_chat: bool
    stream_key_created_at: datetime
    last_broadcast: BroadcastInfo | None  # the newest one (ended or not)
    record_broadcasts: bool = True
    #: the streamer's quality-ladder switch (it works where the site's ``ladder`` is on)
    quality_ladder: bool = False
    #: the version of the streamer's avatar (its URLs carry it); None: no avatar
    avatar_etag: str | None = None
    #: public, unlisted or private (:mod:`strom.channels.access`)
    visibility: str = "public"


@dataclass(frozen=True)
class ApiTokenInfo:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database's schema stands against the migrations this Strom ships."""

    current: str | None  # revision recorded in the database; None: no schema yet
    head: str  # the newest revision this Strom knows
    known: bool  # whether this Strom knows ``current`` (False: a newer Strom migrated it)

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def empty(self) -> bool:
        return self.current is None

    def describe(self) -> str:
        if self.up_to_date:
            return f"database schema is up to date (revision {self.head})"
        if self.empty:
            return "the database has no Strom schema yet: run `strom db upgrade`"
        if not self.known:
            return (
                f"the database schema is at revision {self.current}, which this version of "
                "Strom does not know: a newer Strom migrated it"
            )
        return (
            f"the database schema is at revision {self.current}, this Strom needs "
            f"{self.head}: run `strom db upgrade`"
        )
