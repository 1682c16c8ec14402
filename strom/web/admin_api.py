"""``/api/v1/admin``: what the admin page does, for programs. Administrators only (403
for everyone else, 401 without a log-in or token); the cookie session needs the CSRF
header for changes, as the rest of the API. Errors are ``{"error": "..."}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from strom.errors import ApiError
from strom.record.pictures import ART_MAX_BYTES
from strom.store import User
from strom.store.views import CategoryInfo
from strom.web.admin_actions import SiteAdmin
from strom.web.auth import authenticated_user, get_session
from strom.web.errors import json_body
from strom.web.paths import category_art_url
from strom.web.site import Site

ADMIN_API = "/api/v1/admin"
#: request bodies the category routes take: a picture (and a form around it)
UPLOAD_MAX = ART_MAX_BYTES + 64 * 1024
_NO_STORE = {"Cache-Control": "no-store"}


def user_json(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "is_admin": user.is_admin,
        "suspended": user.suspended,
        "created_at": user.created_at.timestamp(),
        "last_online_at": user.last_online_at.timestamp() if user.last_online_at else None,
    }


def category_json(category: CategoryInfo) -> dict[str, Any]:
    return {
        "slug": category.slug,
        "name": category.name,
        "is_game": category.is_game,
        "art_url": category_art_url(category.slug, category.art),
    }


def require_admin_api(request: web.Request) -> str:
    username = authenticated_user(request)
    if not get_session(request).is_admin:
        raise ApiError(403, "only site administrators can do this")
    return username


def _typed(body: dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
    value = body.get(key, default)
    if value is not None and not isinstance(value, kind):
        raise ApiError(422, f"{key} must be {'true or false' if kind is bool else 'a string'}")
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ApiError(422, f"{key} is not valid Unicode text") from None
    return value


def _page_param(request: web.Request, name: str, default: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > high:
        raise ApiError(400, f"{name} must be an integer from 0 to {high}")
    return int(raw)


class AdminApi:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.admin = SiteAdmin(site)

    def routes(self, app: web.Application) -> None:
        r, base = app.router, ADMIN_API
        r.add_get(f"{base}/users", self.users)
        r.add_patch(f"{base}/users/{{name}}", self.update_user)
        r.add_delete(f"{base}/users/{{name}}", self.delete_user)
        r.add_post(f"{base}/users/{{name}}/stream-key", self.reset_key)
        r.add_post(f"{base}/users/{{name}}/password", self.password)
        r.add_get(f"{base}/streams", self.streams)
        r.add_post(f"{base}/streams/{{name}}/stop", self.stop)
        r.add_post(f"{base}/categories", self.add_category)
        r.add_patch(f"{base}/categories/{{slug}}", self.update_category)
        r.add_delete(f"{base}/categories/{{slug}}", self.delete_category)
        r.add_put(f"{base}/categories/{{slug}}/art", self.put_art)
        r.add_post(f"{base}/categories/{{slug}}/merge", self.merge_category)

    async def users(self, request: web.Request) -> web.Response:
        require_admin_api(request)
        q = request.query.get("q", "").strip()[:64]
        offset = _page_param(request, "offset", 0, 1_000_000)
        limit = max(1, _page_param(request, "limit", 50, 100))
        found, total = await self.site.store.users.search(q, offset=offset, limit=limit)
        return web.json_response(
            {"users": [user_json(u) for u in found], "total": total}, headers=_NO_STORE
        )

    async def update_user(self, request: web.Request) -> web.Response:
        me = require_admin_api(request)
        name = request.match_info["name"]
        body = await json_body(request, {"suspended", "is_admin"})
        suspended = _typed(body, "suspended", bool)
        admin = _typed(body, "is_admin", bool)
        user = await self.admin.user(name)
        if suspended is not None:
            user = await self.admin.set_suspended(name, suspended, by=me)
        if admin is not None:
            user = await self.admin.set_admin(name, admin, by=me)
        return web.json_response(user_json(user))

    async def delete_user(self, request: web.Request) -> web.Response:
        me = require_admin_api(request)
        name = request.match_info["name"]
        deleted = await self.admin.delete_user(name, request.query.get("confirm", ""), by=me)
        return web.json_response({"deleted": name, "recordings": deleted})

    async def reset_key(self, request: web.Request) -> web.Response:
        me = require_admin_api(request)
        await self.admin.reset_key(request.match_info["name"], by=me)
        return web.json_response({"reset": True})

    async def password(self, request: web.Request) -> web.Response:
        me = require_admin_api(request)
        password = await self.admin.set_temporary_password(request.match_info["name"], by=me)
        return web.json_response({"password": password}, headers=_NO_STORE)

    async def streams(self, request: web.Request) -> web.Response:
        require_admin_api(request)
        found = self.site.directory.broadcasts()
        return web.json_response({"streams": found}, headers=_NO_STORE)

    async def stop(self, request: web.Request) -> web.Response:
        me = require_admin_api(request)
        body = await json_body(request, {"reason"}) if request.body_exists else {}
        reason = _typed(body, "reason", str, "")
        if not await self.admin.stop(request.match_info["name"], reason, by=me):
            raise ApiError(404, "that channel is not live")
        return web.json_response({"stopped": True})

    async def add_category(self, request: web.Request) -> web.Response:
        me = require_admin_api(request)
        body = await json_body(request, {"name", "is_game"})
        name = _typed(body, "name", str, "")
        is_game = _typed(body, "is_game", bool, True)  # most categories added are games
        added = await self.admin.add_category(name, is_game=is_game, art=None, by=me)
        return web.json_response(category_json(added), status=201)

    async def update_category(self, request: web.Request) -> web.Response:
        me = require_admin_api(request)
        body = await json_body(request, {"name", "is_game"})
        info = await self.admin.update_category(
            request.match_info["slug"],
            name=_typed(body, "name", str),
            is_game=_typed(body, "is_game", bool),
            by=me,
        )
        return web.json_response(category_json(info))

    async def delete_category(self, request: web.Request) -> web.Response:
        me = require_admin_api(request)
        slug = request.match_info["slug"]
        await self.admin.delete_category(slug, by=me)
        return web.json_response({"deleted": slug})

    async def put_art(self, request: web.Request) -> web.Response:
        """The body is the picture (JPEG, PNG or WebP); an empty body removes it."""
        me = require_admin_api(request)
        data = await request.read()
        info = await self.admin.set_art(request.match_info["slug"], data or None, by=me)
        return web.json_response(category_json(info))

    async def merge_category(self, request: web.Request) -> web.Response:
        me = require_admin_api(request)
        body = await json_body(request, {"into"})
        into = _typed(body, "into", str, "")
        info = await self.admin.merge_category(request.match_info["slug"], into, by=me)
        return web.json_response(category_json(info))
