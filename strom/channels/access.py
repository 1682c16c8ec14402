"""Who may watch a channel: public, unlisted and private channels, in one place.

* **public** (the default): listed everywhere, anyone plays it.
* **unlisted**: anyone with the link plays it, but it is not listed: not in the
  directory, search, category pages, the API's list of streams or the site's channel
  events (:meth:`Directory.streams` and :class:`ChannelEvents` leave it out).
* **private**: unlisted, and played only by the streamer, the site's administrators,
  the channel's followers and whoever knows the password the streamer set (none set:
  followers only).

:meth:`WatchAccess.may_watch` answers for a page (a viewer with a session); media routes
have no session and no cookie (they are cached by HTTP caches, ``docs/http-cache.md``),
so a viewer the page let in gets a **media token**: an HMAC of the site secret over the
channel, the channel's access version and an expiry. It rides in the query of every media
URL (``?token=``: the WebSocket, LL-HLS and LL-DASH, whose playlists have it written into
every URI, the recordings, the thumbnails) and in RTMP play's stream name
(``live/alice?token=...``). :meth:`WatchAccess.media_grant` checks it: every delivery
path calls it, so one rule holds everywhere. A private answer is ``Cache-Control:
private, no-store``: no shared cache keeps it.

Changing the visibility or the password changes the access version, which ends every
token and pass signed before (:attr:`ChannelAccess.version`). A rendition channel of a
quality ladder (``alice~480p``) is watched as its channel (:func:`base_channel`).

The visibility lives in the SQL database, shared by every node of a site; a node keeps
what it read for ``visibility_cache_seconds`` (a playlist asked six times a second per
viewer costs no query).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from strom.errors import ApiError
from strom.store import Store, StoreError
from strom.store.access import PRIVATE, PUBLIC, UNLISTED, ChannelAccess

log = logging.getLogger(__name__)

__all__ = ["PRIVATE", "PUBLIC", "UNLISTED", "Grant", "Verdict", "Viewer", "WatchAccess"]

#: the query parameter of a media token (and of RTMP play's stream name)
TOKEN_PARAM = "token"  # noqa: S105 - a parameter name
#: what a private answer tells caches: this viewer's, never a shared cache's
PRIVATE_CACHE = "private, no-store"
#: channels whose access a node remembers at most
_CACHE_MAX = 10_000
#: how long a password, once given, opens a channel in that browser (the pass cookie)
PASS_SECONDS = 30 * 86400
#: how long the chat address the dashboard gives a private channel's streamer (an OBS
#: overlay or dock, which has no log-in) reads the chat: until the streamer changes who
#: may watch, or a year
CHAT_TOKEN_SECONDS = 365 * 86400
_MEDIA, _PASS, _CHAT = "media", "pass", "chat"


def base_channel(name: str) -> str:
    """The channel whose visibility ``name`` has: itself, or for a quality ladder's
    rendition (``alice~480p``) the channel it is made from."""
    return name.partition("~")[0]


class Verdict(Enum):
    """What a page does for a viewer of a channel."""

    #: plays it
    WATCH = "watch"
    #: a private channel with a password: the password form
    PASSWORD = "password"  # noqa: S105 - a verdict, not a password
    #: a private channel for its followers only: "follow to watch"
    FOLLOW = "follow"


@dataclass(frozen=True)
class Viewer:
    """Who asks: a logged-in user (or nobody), and the pass a password gave them."""

    username: str | None = None
    is_admin: bool = False
    #: the channel's pass (a cookie set when the right password was given), if any
    channel_pass: str | None = None


@dataclass(frozen=True)
class Grant:
    """A private channel's media answer: the query its playlists' URIs carry on."""

    query: str
    cache_control: str = PRIVATE_CACHE


class WatchAccess:
    """The one check of who may watch what (see the module's docstring)."""

    def __init__(
        self,
        store: Store,
        secret: bytes,
        *,
        cache_seconds: float = 3.0,
        token_seconds: float = 4 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._key = hmac.new(secret, b"strom channel access", hashlib.sha256).digest()
        self.cache_seconds = cache_seconds
        self.token_seconds = token_seconds
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, ChannelAccess]] = OrderedDict()
        self._reading: dict[str, asyncio.Task[ChannelAccess]] = {}
        #: media requests refused (no token, a wrong or expired one)
        self.refused = 0

    # -- the channel's access -------------------------------------------------------------

    async def access(self, channel: str) -> ChannelAccess:
        """``channel``'s visibility (a channel without an account is public), read from
        the database at most every ``cache_seconds`` (one read at a time per channel,
        however many requests wait for it). A database that does not answer: the last
        known access, else the error (503)."""
        name = base_channel(channel).lower()
        cached = self._cache.get(name)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        reading = self._reading.get(name)
        if reading is None:
            # A task of its own: a request that goes away does not cancel the others' read.
            reading = asyncio.get_running_loop().create_task(self._read(name))
            self._reading[name] = reading
            reading.add_done_callback(self._read_done)
        return await asyncio.shield(reading)

    def _read_done(self, task: asyncio.Task[ChannelAccess]) -> None:
        for name, reading in list(self._reading.items()):
            if reading is task:
                del self._reading[name]
        if not task.cancelled():
            task.exception()  # read: its waiters may all have gone (no "never retrieved")

    async def _read(self, name: str) -> ChannelAccess:
        cached = self._cache.get(name)
        try:
            found = await self.store.access.get(name)
        except StoreError as exc:
            if cached is None:
                raise
            log.warning("channel %s: visibility not read again (%s), the last one holds", name, exc)
            return cached[1]
        access = found if found is not None else ChannelAccess(name)
        self._remember(name, access)
        return access

    def _remember(self, name: str, access: ChannelAccess) -> None:
        self._cache[name] = (self._clock() + self.cache_seconds, access)
        self._cache.move_to_end(name)
        while len(self._cache) > _CACHE_MAX:
            self._cache.popitem(last=False)

    def changed(self, access: ChannelAccess) -> None:
        """The streamer changed it on this node: this node knows at once."""
        self._remember(access.name.lower(), access)

    async def may_watch(self, channel: str, viewer: Viewer) -> Verdict:
        """Whether ``viewer`` may watch ``channel``: :attr:`Verdict.WATCH`, or what a
        private channel asks of them first (its password, or a follow)."""
        access = await self.access(channel)
        if access.visibility != PRIVATE:
            return Verdict.WATCH
        name = base_channel(channel)
        who = viewer.username
        if who is not None and (viewer.is_admin or who.lower() == access.name.lower()):
            return Verdict.WATCH
        if viewer.channel_pass is not None and self._valid(_PASS, access, viewer.channel_pass):
            return Verdict.WATCH
        if who is not None and await self.store.follows.is_following(who, name):
            return Verdict.WATCH
        return Verdict.PASSWORD if access.has_password else Verdict.FOLLOW

    async def check_password(self, channel: str, password: str) -> str | None:
        """The channel's pass (for a cookie) if ``password`` opens it, else None."""
        access = await self.access(channel)
        if access.visibility != PRIVATE or not await self.store.access.check_password(
            access, password
        ):
            return None
        return self._sign(_PASS, access, self._clock() + PASS_SECONDS)

    async def may_chat(self, channel: str, viewer: Viewer, token: str | None) -> bool:
        """Whether ``viewer`` may read and write ``channel``'s chat: whoever may watch it,
        or brings a media token or the streamer's chat token (:meth:`chat_token`)."""
        access = await self.access(channel)
        if access.visibility != PRIVATE:
            return True
        if token is not None and any(self._valid(p, access, token) for p in (_MEDIA, _CHAT)):
            return True
        return await self.may_watch(channel, viewer) is Verdict.WATCH

    async def chat_token(self, channel: str) -> str | None:
        """The token of a private channel's chat addresses on its streamer's dashboard
        (None: the channel is not private, its chat needs none)."""
        access = await self.access(channel)
        if access.visibility != PRIVATE:
            return None
        return self._sign(_CHAT, access, self._clock() + CHAT_TOKEN_SECONDS)

    # -- media tokens ---------------------------------------------------------------------

    async def media_token(self, channel: str) -> str | None:
        """A media token for a viewer :meth:`may_watch` let in (None: the channel is not
        private, its media need none)."""
        access = await self.access(channel)
        if access.visibility != PRIVATE:
            return None
        return self._sign(_MEDIA, access, self._clock() + self.token_seconds)

    async def media_grant(self, channel: str, token: str | None) -> Grant | None:
        """Every media route's check, before it answers: None for a channel that is not
        private (its answer as it is, cacheable), a :class:`Grant` for a private one and
        a valid ``token``; else :class:`ApiError` 403 (a refusal no cache keeps)."""
        access = await self.access(channel)
        if access.visibility != PRIVATE:
            return None
        if token is None or not self._valid(_MEDIA, access, token):
            self.refused += 1
            raise ApiError(
                403,
                "this stream is private: open its page to watch"
                if token is None
                else "this stream's access token is not valid (expired, or the streamer "
                "changed who may watch): open its page again",
                headers={"Cache-Control": PRIVATE_CACHE},
            )
        return Grant(f"{TOKEN_PARAM}={token}")

    async def play_refusal(self, channel: str, query: str) -> str | None:
        """RTMP play's check: why ``channel`` may not be played with the stream name's
        ``query`` (``token=...``), or None."""
        token = _query_token(query)
        try:
            await self.media_grant(channel, token)
        except ApiError as exc:
            return exc.reason
        except StoreError as exc:
            return f"cannot check who may watch: {exc}"
        return None

    # -- signing --------------------------------------------------------------------------

    def _sign(self, purpose: str, access: ChannelAccess, expires: float) -> str:
        at = int(expires)
        return f"{at}.{self._mac(purpose, access, at)}"

    def _mac(self, purpose: str, access: ChannelAccess, expires: int) -> str:
        text = f"{purpose}\0{access.name.lower()}\0{access.version}\0{expires}"
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode()

    def _valid(self, purpose: str, access: ChannelAccess, token: str) -> bool:
        expires, dot, mac = token.partition(".")
        if not dot or not expires.isdigit() or len(expires) > 12 or len(mac) != 24:
            return False
        if int(expires) < self._clock():
            return False
        return hmac.compare_digest(mac, self._mac(purpose, access, int(expires)))


def _query_token(query: str) -> str | None:
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == TOKEN_PARAM:
            return value
    return None
