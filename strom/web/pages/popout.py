"""A channel's chat in windows of its own: ``/popout/{channel}/chat`` (the chat alone,
filling the window: a browser pop-out, or an OBS custom browser dock) and
``/overlay/{channel}/chat`` (for an OBS browser source: transparent, read-only, large
text, each message fading out ``?fade=`` seconds after it arrives; 0 keeps them). The
dashboard shows both addresses with copy buttons.

A private channel's chat is for those who may watch it (``docs/visibility.md``): its
windows open for a viewer the channel lets in, or with the chat token of the addresses on
the streamer's dashboard (an OBS source or dock has no log-in); anyone else gets the
channel's private page.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from strom.channels.access import TOKEN_PARAM, Viewer
from strom.settings import valid_channel_name
from strom.web.auth import get_session
from strom.web.pages.common import error_page
from strom.web.pages.private import watch_or_refuse
from strom.web.render import render
from strom.web.site import Site

#: seconds an overlay message stays unless ?fade= says otherwise
OVERLAY_FADE = 30
#: the longest ?fade= (an hour); 0 keeps messages until newer ones push them out
OVERLAY_FADE_MAX = 3600


def chat_urls(origin: str, channel: str, token: str | None = None) -> dict[str, str]:
    """The pop-out and overlay addresses of ``channel``'s chat on this site (``token``: a
    private channel's chat token, which they carry)."""
    path = f"/{quote(channel)}/chat" + (f"?{TOKEN_PARAM}={quote(token)}" if token else "")
    return {"popout": f"{origin}/popout{path}", "overlay": f"{origin}/overlay{path}"}


class PopoutPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/popout/{channel}/chat", self.popout)
        app.router.add_get("/overlay/{channel}/chat", self.overlay)

    async def _channel(self, request: web.Request) -> str | None:
        name = request.match_info["channel"]
        if not valid_channel_name(name):
            return None
        view = await self.site.directory.channel_view(name)
        return str(view["username"]) if view is not None else None

    async def _let_in(
        self, request: web.Request, name: str
    ) -> tuple[web.Response | None, str | None]:
        """(None, the token the window's chat socket carries: None for a channel that is
        not private), or (the private page, None) for a viewer the channel does not let
        in."""
        token = request.query.get(TOKEN_PARAM)
        if token and await self.site.access.may_chat(name, Viewer(), token):
            return None, token
        return await watch_or_refuse(self.site, request, name)

    async def popout(self, request: web.Request) -> web.Response:
        name = await self._channel(request)
        if name is None:
            return error_page(request, 404, "No such channel.")
        refused, token = await self._let_in(request, name)
        if refused is not None:
            return refused
        logged_in = get_session(request).user_id is not None
        return render(request, "popout.html", channel=name, logged_in=logged_in, token=token)

    async def overlay(self, request: web.Request) -> web.Response:
        name = await self._channel(request)
        if name is None:
            return error_page(request, 404, "No such channel.")
        refused, token = await self._let_in(request, name)
        if refused is not None:
            return refused
        raw = request.query.get("fade", str(OVERLAY_FADE))
        if not raw.isdigit() or int(raw) > OVERLAY_FADE_MAX:
            return error_page(
                request, 400, f"fade is a number of seconds from 0 to {OVERLAY_FADE_MAX}."
            )
        return render(request, "overlay.html", channel=name, fade=int(raw), token=token)
