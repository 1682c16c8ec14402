"""A channel's player on other sites: ``/embed/{channel}`` (the player alone, framed by
any site: ``frame-ancestors *``; ``?chat=1`` adds the channel's chat beside it, read by
anyone, written by whoever is logged in here where the browser sends this site's cookie
to a frame) and oEmbed (``/oembed?url=...``, oembed.com 2.0: the
JSON a blog or chat app asks for to turn a channel link into that player).

The iframe code is the same the channel page shows under "Embed"; its media come from
this node with CORS (:mod:`strom.web.cors`), and nothing of the visitor's session is
needed: an embed is what a guest sees.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote, urlsplit

from aiohttp import web

from strom.errors import ApiError
from strom.settings import valid_channel_name
from strom.store.access import PRIVATE
from strom.web.auth import get_session
from strom.web.pages.common import RESERVED, error_page
from strom.web.pages.private import watch_or_refuse
from strom.web.render import render
from strom.web.site import Site

#: the player's size in the iframe code unless the consumer asks for less
WIDTH, HEIGHT = 640, 360
#: the smallest player worth embedding
MIN_WIDTH = 160
#: the player and its chat: twice as wide as the player alone would need
CHAT_WIDTH = 960
#: ``?chat=`` values that ask for the chat beside the player
_YES = frozenset({"1", "true", "yes", "on"})


def site_origin(site: Site, request: web.Request) -> str:
    """This site's origin as visitors reach it: ``--public-url``, else the request's."""
    public = site.settings.public_url.rstrip("/")
    return public or f"{request.scheme}://{request.host}"


def iframe_code(
    origin: str, channel: str, width: int = WIDTH, height: int = HEIGHT, *, chat: bool = False
) -> str:
    """The ``<iframe>`` a site pastes to show ``channel``'s player (and its chat beside)."""
    src = f"{origin}/embed/{quote(channel)}" + ("?chat=1" if chat else "")
    return (
        f'<iframe src="{escape(src)}" width="{width}" height="{height}" frameborder="0" '
        f'allow="autoplay; fullscreen" allowfullscreen title="{escape(channel)} on Strom">'
        "</iframe>"
    )


def _fit(width: int, height: int, max_width: int | None, max_height: int | None) -> tuple[int, int]:
    """16:9 within the consumer's bounds (oEmbed's maxwidth and maxheight)."""
    if max_width is not None and width > max_width:
        width, height = max_width, max_width * 9 // 16
    if max_height is not None and height > max_height:
        width, height = max_height * 16 // 9, max_height
    return max(width, MIN_WIDTH), max(height, MIN_WIDTH * 9 // 16)


def _bound(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= 10_000:
        raise ApiError(400, f"{name} must be a positive number of pixels")
    return int(raw)


class EmbedPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/embed/{channel}", self.embed)
        app.router.add_get("/oembed", self.oembed)

    async def embed(self, request: web.Request) -> web.Response:
        name = request.match_info["channel"]
        if not valid_channel_name(name) or await self.site.directory.channel_view(name) is None:
            return error_page(request, 404, "No such channel.")
        chat = request.query.get("chat", "") in _YES
        session = get_session(request)
        refusal, token = await watch_or_refuse(self.site, request, name)
        return refusal or render(
            request, "embed.html", channel=name, chat=chat, media_token=token,
            logged_in=session.user_id is not None, frame_ancestors="*",
        )  # fmt: skip

    async def oembed(self, request: web.Request) -> web.Response:
        """oEmbed for a channel page (``/{channel}``) or watch page (``/live/{channel}``)
        of this site; JSON only (``format=xml``: 501, as the spec says)."""
        if request.query.get("format", "json") != "json":
            raise ApiError(501, "only format=json is offered")
        url = urlsplit(request.query.get("url", ""))
        path = [p for p in url.path.split("/") if p]
        if path[:1] == ["live"] and len(path) == 2:
            path = path[1:]
        name = path[0] if len(path) == 1 else ""
        view = None
        if valid_channel_name(name) and name.lower() not in RESERVED:
            view = await self.site.directory.channel_view(name)
        if view is None or view["visibility"] == PRIVATE:  # private: not for other sites
            raise ApiError(404, "not a channel of this site")
        name = view["username"]
        bounds = _bound(request, "maxwidth"), _bound(request, "maxheight")
        width, height = _fit(WIDTH, HEIGHT, *bounds)
        origin = site_origin(self.site, request)
        found: dict[str, object] = {
            "version": "1.0",
            "type": "video",
            "provider_name": "Strom",
            "provider_url": origin + "/",
            "title": view.get("title") or name,
            "author_name": name,
            "author_url": f"{origin}/{quote(name)}",
            "html": iframe_code(origin, name, width, height),
            "width": width,
            "height": height,
        }
        card = self.site.directory.live_card(name)
        if card is not None and card.get("thumbnail_url"):
            found["thumbnail_url"] = origin + str(card["thumbnail_url"])
        return web.json_response(found, headers={"Cache-Control": "public, max-age=60"})
