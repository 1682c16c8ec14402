"""The channel parts of the OpenAPI description: the stream card, the channel view, the
stream health, the recordings' schema, and the paths of profiles and the channel search
(:mod:`strom.web.profiles`). :func:`strom.web.openapi.document` includes them."""

from __future__ import annotations

from typing import Any

from strom.web.openapi_parts import AUTH as _AUTH
from strom.web.openapi_parts import ERROR as _ERROR
from strom.web.openapi_parts import json_answer as _json

_REASONS = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden (CSRF)",
    408: "The body did not arrive in time",
    413: "The picture is too large",
    422: "Invalid value (the reason says which)",
}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(_ERROR, _REASONS[c]) for c in codes}


RECORDING = {
    "type": "object",
    "required": ["id", "channel", "started", "status", "duration", "bytes", "playlist_url"],
    "properties": {
        "id": {"type": "string"},
        "channel": {"type": "string"},
        "broadcast_id": {"type": ["integer", "null"]},
        "started": {"type": "number"},
        "ended": {"type": ["number", "null"]},
        "status": {"type": "string", "enum": ["recording", "finished", "failed"]},
        "duration": {"type": "number", "minimum": 0},
        "bytes": {"type": "integer", "minimum": 0},
        "playlist_url": {"type": "string", "description": "HLS playlist (EVENT while live)"},
        "manifest_url": {"type": "string", "description": "MPEG-DASH manifest (static)"},
        "mp4_url": {
            "type": ["string", "null"],
            "description": "Downloadable MP4, once the broadcast is over",
        },
        "thumbnail_url": {
            "type": ["string", "null"],
            "description": "JPEG picture of the recording, once the broadcast is over",
        },
    },
}

_URL_OR_NULL = {"type": ["string", "null"]}

_PROFILE = {
    "type": "object",
    "required": ["display_name", "bio", "links", "avatar_url", "last_online"],
    "properties": {
        "display_name": {"type": "string", "description": "Empty: the username is shown"},
        "bio": {"type": "string"},
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["url", "label"],
                "properties": {"url": {"type": "string"}, "label": {"type": "string"}},
            },
        },
        "avatar_url": _URL_OR_NULL,
        "avatar_small_url": _URL_OR_NULL,
        "last_online": {"type": ["number", "null"], "description": "Last seen (epoch s)"},
    },
}

_AVATAR = {
    "type": "object",
    "required": ["avatar_url", "avatar_small_url"],
    "properties": {"avatar_url": _URL_OR_NULL, "avatar_small_url": _URL_OR_NULL},
}

_FOUND = {
    "type": "object",
    "required": ["channels"],
    "properties": {
        "channels": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["username", "display_name", "title", "live", "viewers"],
                "properties": {
                    "username": {"type": "string"},
                    "display_name": {"type": "string"},
                    "title": {"type": "string"},
                    "live": {"type": "boolean"},
                    "viewers": {"type": "integer", "minimum": 0},
                    "avatar_url": _URL_OR_NULL,
                    "last_online": {"type": ["number", "null"]},
                },
            },
        }
    },
}

PROFILE_PATHS: dict[str, Any] = {
    "/api/v1/me/profile": {
        "get": {
            "summary": "Your profile: display name, bio, links, avatar",
            "security": _AUTH,
            "responses": {"200": _json(_PROFILE), **_errors(401)},
        },
        "put": {
            "summary": "Replace your display name, bio and links",
            "security": _AUTH,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "display_name": {"type": "string", "maxLength": 40},
                                "bio": {"type": "string", "maxLength": 500},
                                "links": {
                                    "type": "array",
                                    "maxItems": 5,
                                    "items": {"type": "string", "format": "uri"},
                                },
                            },
                        }
                    }
                },
            },
            "responses": {"200": _json(_PROFILE), **_errors(400, 401, 403, 422)},
        },
    },
    "/api/v1/me/avatar": {
        "post": {
            "summary": "Upload your avatar (the body is the picture: JPEG, PNG or WebP)",
            "security": _AUTH,
            "requestBody": {
                "required": True,
                "content": {
                    kind: {"schema": {"type": "string", "format": "binary"}}
                    for kind in ("image/jpeg", "image/png", "image/webp")
                },
            },
            "responses": {"200": _json(_AVATAR), **_errors(401, 403, 408, 413, 422)},
        },
        "delete": {
            "summary": "Remove your avatar",
            "security": _AUTH,
            "responses": {"200": _json(_AVATAR), **_errors(401, 403)},
        },
    },
    "/api/v1/search": {
        "get": {
            "summary": "Channels by name, display name or title: live ones first, then offline",
            "parameters": [
                {
                    "name": "q",
                    "in": "query",
                    "description": "The text to look for (none: no channels)",
                    "schema": {"type": "string", "maxLength": 50},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 50},
                },
            ],
            "responses": {"200": _json(_FOUND), **_errors(400)},
        }
    },
}


_STATE = {
    "type": "string",
    "enum": ["live", "reconnecting", "offline"],
    "description": "reconnecting: the streamer's connection dropped and the broadcast "
    "waits for it (the reconnect grace); viewers stay, the stream resumes where it stopped",
}

STREAM: dict[str, Any] = {
    "type": "object",
    "required": ["username", "title", "viewers"],
    "properties": {
        "username": {"type": "string"},
        "state": _STATE,
        "title": {"type": "string", "description": "empty when the streamer set none"},
        "category": {"oneOf": [{"$ref": "#/components/schemas/CategoryRef"}, {"type": "null"}]},
        "viewers": {"type": "integer", "minimum": 0},
        "started_at": {"type": ["number", "null"]},
        "thumbnail_url": {"type": ["string", "null"]},
        "avatar_url": {
            "type": ["string", "null"],
            "description": "the streamer's avatar, 64x64 (null: none; show the initial)",
        },
        "width": {"type": ["integer", "null"]},
        "height": {"type": ["integer", "null"]},
        "room": {"type": "boolean", "description": "an open room (no account behind it)"},
    },
}

CHANNEL: dict[str, Any] = {
    "type": "object",
    "required": ["username", "state", "title", "description", "live", "viewers"],
    "properties": {
        "username": {"type": "string"},
        "state": _STATE,
        "title": {"type": "string", "description": "empty when the streamer set none"},
        "description": {"type": "string"},
        "category": {"oneOf": [{"$ref": "#/components/schemas/CategoryRef"}, {"type": "null"}]},
        "live": {
            "type": "boolean",
            "description": "the broadcast is on: true while live and while reconnecting",
        },
        "viewers": {"type": "integer", "minimum": 0},
        "started_at": {"type": ["number", "null"]},
        "last_broadcast": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "id": {
                            "type": "integer",
                            "description": "The broadcast's id: the same across a "
                            "publisher's reconnection within the grace, on any node",
                        },
                        "started_at": {"type": "number"},
                        "ended_at": {"type": ["number", "null"]},
                    },
                },
                {"type": "null"},
            ]
        },
        "follower_count": {"type": "integer", "minimum": 0},
        "visibility": {
            "enum": ["public", "unlisted", "private"],
            "description": "public: listed; unlisted: only by its link; private: its "
            "followers and who knows its password (docs/visibility.md). A private "
            "channel answers 403 to others.",
        },
        "quality_ladder": {
            "type": "boolean",
            "description": "the streamer's switch for lower qualities (where the site offers "
            "them); the renditions live now are in /live/{name}/master.m3u8",
        },
    },
}

#: what ``PATCH /api/v1/me/channel`` takes to set who may watch
VISIBILITY_FIELDS: dict[str, Any] = {
    "visibility": {"enum": ["public", "unlisted", "private", None]},
    "watch_password": {
        "type": ["string", "null"],
        "minLength": 6,
        "description": "A private channel's password (anyone who gives it may watch); "
        "null removes it (followers only). Stored hashed.",
    },
}

HEALTH: dict[str, Any] = {
    "type": "object",
    "description": "Offline: only live (false), warnings and stopped; live: the rest as well.",
    "required": ["live", "warnings"],
    "properties": {
        "live": {"type": "boolean"},
        "stopped": {
            "type": ["string", "null"],
            "description": "offline: why an administrator stopped the last broadcast "
            '("Stopped by an administrator: ..."), null if none did',
        },
        "warnings": {"type": "array", "items": {"type": "string"}},
        "refused": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["reason", "at"],
                    "properties": {"reason": {"type": "string"}, "at": {"type": "number"}},
                },
                {"type": "null"},
            ],
            "description": "why this node refused the channel's last publish (an unsupported "
            "codec, already live...), null if it has not since the channel last went live",
        },
        "codec": {"type": "string"},
        "width": {"type": ["integer", "null"]},
        "height": {"type": ["integer", "null"]},
        "fps": {
            "type": "number",
            "minimum": 0,
            "description": "video frames per second of media, over its last 5 seconds",
        },
        "chosen_fps": {
            "type": ["number", "null"],
            "description": "the frame rate the publisher said it sends (RTMP onMetaData "
            "framerate, the browser's choice); far fewer arriving is a warning",
        },
        "bitrate_kbps": {"type": "integer", "minimum": 0},
        "keyframe_interval": {"type": ["number", "null"]},
        "uptime": {"type": "integer", "minimum": 0},
        "viewers": {"type": "integer", "minimum": 0},
    },
}
