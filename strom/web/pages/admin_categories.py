"""Categories by administrators (``/admin/categories``: add with box art, edit, merge,
delete; forms with the CSRF field) and the box art itself, served to everyone at
``/categories/{slug}/art/{version}.jpg`` (a new picture is a new URL: cached for good)."""

from __future__ import annotations

from aiohttp import web

from strom.delivery.caching import AnswerKind, cache_headers
from strom.errors import ApiError, StromError
from strom.store.categories import CATEGORY_NAME_MAX
from strom.web.admin_actions import SiteAdmin
from strom.web.pages.common import require_admin, sentence
from strom.web.paths import category_art_url
from strom.web.render import render
from strom.web.site import Site


async def _form(request: web.Request) -> tuple[dict[str, str], bytes | None]:
    """The form's text fields and the uploaded picture (None: no file chosen)."""
    fields: dict[str, str] = {}
    art = None
    for key, value in (await request.post()).items():
        if isinstance(value, str):
            fields[key] = value.strip()
        elif isinstance(value, web.FileField):
            with value.file:  # a temporary file aiohttp spooled the upload to
                if key == "art" and value.filename:
                    art = value.file.read()
    return fields, art


class CategoryAdminPages:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.admin = SiteAdmin(site)

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/admin/categories", self.page)
        r.add_post("/admin/categories", self.add)
        r.add_post("/admin/categories/{slug}/{action}", self.change)
        r.add_get("/categories/{slug}/art/{version}.jpg", self.art)

    async def page(
        self,
        request: web.Request,
        *,
        status: int = 200,
        notice: str | None = None,
        error: str | None = None,
    ) -> web.Response:
        require_admin(request)
        counts = self.site.directory.live_counts()
        categories = await self.site.store.channels.categories()
        return render(
            request,
            "admin_categories.html",
            status=status,
            notice=notice,
            error=error,
            name_max=CATEGORY_NAME_MAX,
            categories=[
                {
                    "slug": c.slug,
                    "name": c.name,
                    "is_game": c.is_game,
                    "art_url": category_art_url(c.slug, c.art),
                    "live_count": counts.get(c.slug, 0),
                }
                for c in categories
            ],
        )

    async def add(self, request: web.Request) -> web.Response:
        me = require_admin(request)
        fields, art = await _form(request)
        try:
            added = await self.admin.add_category(
                fields.get("name", ""), is_game=bool(fields.get("is_game")), art=art, by=me
            )
        except StromError as exc:
            return await self.page(request, status=exc.http_status, error=sentence(str(exc)))
        return await self.page(request, notice=f"Added {added.name}.")

    async def change(self, request: web.Request) -> web.Response:
        me = require_admin(request)
        slug, action = request.match_info["slug"], request.match_info["action"]
        fields, art = await _form(request)
        try:
            if action == "edit":
                info = await self.admin.update_category(
                    slug,
                    name=fields.get("name") or None,
                    is_game=bool(fields.get("is_game")),
                    by=me,
                )
                if art is not None or fields.get("remove_art"):
                    info = await self.admin.set_art(info.slug, art, by=me)
                notice = f"Saved {info.name}."
            elif action == "merge":
                info = await self.admin.merge_category(slug, fields.get("into", ""), by=me)
                notice = f"Merged {slug} into {info.name}."
            elif action == "delete":
                await self.admin.delete_category(slug, by=me)
                notice = f"Deleted {slug}."
            else:
                raise web.HTTPNotFound(text="No such action.")
        except StromError as exc:
            return await self.page(request, status=exc.http_status, error=sentence(str(exc)))
        return await self.page(request, notice=notice)

    async def art(self, request: web.Request) -> web.Response:
        found = await self.site.store.categories.art(request.match_info["slug"])
        if found is None or found[1] != request.match_info["version"]:
            raise ApiError(404, "no such picture")
        return web.Response(
            body=found[0], content_type="image/jpeg", headers=cache_headers(AnswerKind.VOD_MEDIA)
        )
