"""The OpenAPI description of ``/api/v1/admin`` (:mod:`strom.web.admin_api`), part of the
document :mod:`strom.web.openapi` serves."""

from __future__ import annotations

from typing import Any

from strom.web.openapi_parts import AUTH as _AUTH
from strom.web.openapi_parts import ERROR as _ERROR
from strom.web.openapi_parts import json_answer as _json

_TEXT = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not an administrator (or no CSRF header)",
    404: "No such user, category or live channel",
    409: "Not allowed: the last administrator, yourself, a name taken",
    413: "Picture too large (bytes or pixels)",
    415: "Not a JPEG, PNG or WebP picture",
    422: "Invalid value",
}


def _op(summary: str, answer: dict[str, Any], *codes: int, **more: Any) -> dict[str, Any]:
    errors = {str(c): _json(_ERROR, _TEXT[c]) for c in (400, 401, 403, *codes)}
    return {
        "summary": summary,
        "security": _AUTH,
        "responses": {"200": _json(answer), **errors},
        **more,
    }


def _param(name: str, where: str = "path", **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": {"type": "string", **schema},
    }


def _body(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": list(required),
    }
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_USER = {
    "type": "object",
    "required": ["username", "is_admin", "suspended", "created_at", "last_online_at"],
    "properties": {
        "username": {"type": "string"},
        "is_admin": {"type": "boolean"},
        "suspended": {"type": "boolean"},
        "created_at": {"type": "number"},
        "last_online_at": {"type": ["number", "null"]},
    },
}
_CATEGORY = {
    "type": "object",
    "required": ["slug", "name", "is_game", "art_url"],
    "properties": {
        "slug": {"type": "string"},
        "name": {"type": "string"},
        "is_game": {"type": "boolean"},
        "art_url": {"type": ["string", "null"]},
    },
}
_OBJECT = {"type": "object"}
_NAME = _param("name")
_SLUG = _param("slug")
_BOOL = {"type": "boolean"}
_STR = {"type": "string"}


def admin_paths() -> dict[str, Any]:
    base = "/api/v1/admin"
    users = {
        "type": "object",
        "required": ["users", "total"],
        "properties": {"users": {"type": "array", "items": _USER}, "total": {"type": "integer"}},
    }
    return {
        f"{base}/users": {
            "get": _op(
                "Users whose name contains q, by name, a page at a time",
                users,
                parameters=[
                    _param("q", "query"),
                    _param("offset", "query", pattern="^[0-9]+$"),
                    _param("limit", "query", pattern="^[0-9]+$"),
                ],
            )
        },
        f"{base}/users/{{name}}": {
            "patch": _op(
                "Suspend or reinstate; make or unmake an administrator",
                _USER,
                404,
                409,
                422,
                parameters=[_NAME],
                requestBody=_body({"suspended": _BOOL, "is_admin": _BOOL}),
            ),
            "delete": _op(
                "Delete the user, their channel and recordings (confirm=the name)",
                _OBJECT,
                404,
                409,
                422,
                parameters=[_NAME, _param("confirm", "query")],
            ),
        },
        f"{base}/users/{{name}}/stream-key": {
            "post": _op(
                "A new stream key: the old one stops working; the streamer's dashboard shows "
                "the new one once",
                _OBJECT,
                404,
                parameters=[_NAME],
            )
        },
        f"{base}/users/{{name}}/password": {
            "post": _op(
                "A temporary password, shown once; the user's sessions end",
                _OBJECT,
                404,
                parameters=[_NAME],
            )
        },
        f"{base}/streams": {
            "get": _op(
                "Every broadcast of the site (live or reconnecting), with the node that "
                "ingests it (node: its URL, null for the node answering)",
                {
                    "type": "object",
                    "required": ["streams"],
                    "properties": {"streams": {"type": "array", "items": _OBJECT}},
                },
            )
        },
        f"{base}/streams/{{name}}/stop": {
            "post": _op(
                "Stop a live broadcast, on whichever node ingests it; the streamer is told "
                "the reason",
                _OBJECT,
                404,
                422,
                parameters=[_NAME],
                requestBody=_body({"reason": _STR}),
            )
        },
        f"{base}/categories": {
            "post": _op(
                "Add a category",
                _CATEGORY,
                409,
                422,
                requestBody=_body({"name": _STR, "is_game": _BOOL}, ("name",)),
            )
        },
        f"{base}/categories/{{slug}}": {
            "patch": _op(
                "Rename a category or say whether it is a game",
                _CATEGORY,
                404,
                409,
                422,
                parameters=[_SLUG],
                requestBody=_body({"name": _STR, "is_game": _BOOL}),
            ),
            "delete": _op(
                "Delete a category (its channels keep none)", _OBJECT, 404, parameters=[_SLUG]
            ),
        },
        f"{base}/categories/{{slug}}/art": {
            "put": _op(
                "Set the box art (the body is a JPEG, PNG or WebP picture; empty: remove it)",
                _CATEGORY,
                404,
                413,
                415,
                422,
                parameters=[_SLUG],
                requestBody={
                    "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}
                },
            )
        },
        f"{base}/categories/{{slug}}/merge": {
            "post": _op(
                "Move the category's channels and broadcasts to another, delete it",
                _CATEGORY,
                404,
                409,
                422,
                parameters=[_SLUG],
                requestBody=_body({"into": _STR}, ("into",)),
            )
        },
    }
