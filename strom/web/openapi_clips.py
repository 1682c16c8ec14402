"""The OpenAPI description of the clips API (:mod:`strom.web.clips`), part of the
document :mod:`strom.web.openapi` serves."""

from __future__ import annotations

from typing import Any

from strom.web.openapi_parts import AUTH as _AUTH
from strom.web.openapi_parts import ERROR as _ERROR
from strom.web.openapi_parts import json_answer as _json

_TEXT = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed (not the creator, the streamer or an administrator; or no CSRF header)",
    404: "No such channel, clip or recording",
    409: "Nothing to cut: the broadcast is not recorded (code not_recorded), the channel is "
    "not live (offline) or live on another node (elsewhere), nothing recorded yet (empty), "
    "keyframes too far apart (keyframes)",
    422: "Invalid value",
    429: "Too many clips: try again after Retry-After seconds",
    503: "Too many clips being cut on the site right now: try again after Retry-After seconds",
}

CLIP = {
    "type": "object",
    "required": [
        "slug", "channel", "broadcast_id", "creator", "title", "recording", "start",
        "duration", "bytes", "created_at", "views", "url", "mp4_url",
    ],
    "properties": {
        "slug": {"type": "string"},
        "channel": {"type": "string"},
        "broadcast_id": {"type": ["integer", "null"]},
        "creator": {"type": ["string", "null"]},
        "title": {"type": "string"},
        "recording": {"type": "string", "description": "the recording it was cut from"},
        "start": {"type": "number", "description": "seconds from the recording's start"},
        "duration": {"type": "number"},
        "bytes": {"type": "integer"},
        "created_at": {"type": "number"},
        "views": {"type": "integer"},
        "url": {"type": "string", "description": "the clip's page"},
        "mp4_url": {"type": "string"},
    },
}  # fmt: skip
_REF = {"$ref": "#/components/schemas/Clip"}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(_ERROR, _TEXT[c]) for c in codes}


def _param(name: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", **schema}}


def _body(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": list(required),
    }
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_NAME = _param("name")
_SLUG = _param("slug", pattern="^[A-Za-z0-9_-]{16}$")
_TITLE = {"type": "string", "maxLength": 140}


def clip_paths() -> dict[str, Any]:
    return {
        "/api/v1/channels/{name}/clips": {
            "get": {
                "summary": "A channel's clips, newest first, and the clip lengths allowed",
                "parameters": [_NAME],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["clips", "min_seconds", "max_seconds", "default_seconds"],
                            "properties": {
                                "clips": {"type": "array", "items": _REF},
                                "min_seconds": {"type": "number"},
                                "max_seconds": {"type": "number"},
                                "default_seconds": {"type": "number"},
                            },
                        }
                    ),
                    **_errors(404),
                },
            },
            "post": {
                "summary": "Cut a clip: the last `duration` seconds of the live broadcast, "
                "or of `recording` up to `end` seconds into it; at keyframes, not re-encoded",
                "security": _AUTH,
                "parameters": [_NAME],
                "requestBody": _body(
                    {
                        "duration": {"type": "number", "description": "seconds (default 30)"},
                        "title": _TITLE,
                        "recording": {"type": "string"},
                        "end": {"type": "number", "minimum": 0},
                    }
                ),
                "responses": {
                    "201": _json(_REF, "The clip, cut"),
                    **_errors(400, 401, 403, 404, 409, 422, 429, 503),
                },
            },
        },
        "/api/v1/clips/{slug}": {
            "get": {
                "summary": "One clip",
                "parameters": [_SLUG],
                "responses": {"200": _json(_REF), **_errors(404)},
            },
            "patch": {
                "summary": "Rename your clip",
                "security": _AUTH,
                "parameters": [_SLUG],
                "requestBody": _body({"title": _TITLE}, required=("title",)),
                "responses": {"200": _json(_REF), **_errors(400, 401, 403, 404, 422)},
            },
            "delete": {
                "summary": "Delete a clip (its creator, the streamer, an administrator)",
                "security": _AUTH,
                "parameters": [_SLUG],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["deleted"],
                            "properties": {"deleted": {"type": "string"}},
                        }
                    ),
                    **_errors(401, 403, 404),
                },
            },
        },
    }
