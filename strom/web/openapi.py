"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from strom import __version__
from strom.web.openapi_admin import admin_paths
from strom.web.openapi_channels import CHANNEL as _CHANNEL
from strom.web.openapi_channels import HEALTH as _HEALTH
from strom.web.openapi_channels import PROFILE_PATHS, RECORDING, VISIBILITY_FIELDS
from strom.web.openapi_channels import STREAM as _STREAM
from strom.web.openapi_clips import CLIP, clip_paths
from strom.web.openapi_parts import AUTH as _AUTH
from strom.web.openapi_parts import ERROR as _ERROR
from strom.web.openapi_parts import json_answer as _json


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Bad request",
        401: "Not authenticated",
        403: "Forbidden (CSRF)",
        404: "Not found",
        413: "Request body too large",
        409: "Conflict (still being recorded)",
        422: "Invalid value",
    }
    return {str(c): _json(_ERROR, text[c]) for c in codes}


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}

_FOLLOW = {
    "type": "object",
    "required": ["following", "followers"],
    "properties": {
        "following": {"type": "boolean"},
        "followers": {"type": "integer", "minimum": 0},
    },
}

_MODLOG = {
    "type": "object",
    "required": ["entries"],
    "properties": {
        "entries": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["at", "actor", "action", "target", "detail"],
                "properties": {
                    "at": {"type": "integer", "description": "UNIX milliseconds"},
                    "actor": {"type": "string"},
                    "action": {"type": "string"},
                    "target": {"type": ["string", "null"]},
                    "detail": {"type": "string"},
                },
            },
        }
    },
}


_FOLLOWED = {
    "type": "object",
    "description": "A followed channel. Live: the directory card's fields as well.",
    "required": ["username", "live"],
    "properties": {
        "username": {"type": "string"},
        "live": {"type": "boolean"},
        "title": {"type": "string"},
        "category": {"oneOf": [{"$ref": "#/components/schemas/CategoryRef"}, {"type": "null"}]},
        "viewers": {"type": "integer", "minimum": 0},
        "started_at": {"type": ["number", "null"]},
        "thumbnail_url": {"type": ["string", "null"]},
        "width": {"type": ["integer", "null"]},
        "height": {"type": ["integer", "null"]},
        "last_live_at": {
            "type": ["number", "null"],
            "description": "Offline, with last_live=1: when its last broadcast ended (Unix "
            "seconds; null: never live)",
        },
    },
}


_SESSION = {
    "type": "object",
    "required": ["id", "created_at", "last_seen_at", "user_agent", "address", "current"],
    "properties": {
        "id": {"type": "integer"},
        "created_at": {"type": "number", "description": "Log-in time (Unix seconds)"},
        "last_seen_at": {"type": "number", "description": "Last use, within minutes"},
        "user_agent": {"type": "string"},
        "address": {"type": "string"},
        "current": {"type": "boolean", "description": "The session making this request"},
    },
}


#: the node's numbers (a few required, the rest may grow; 403 outside ``metrics_allow``)
_STATS = {
    "type": "object",
    "required": ["version", "uptime", "loop_lag_ms", "channels", "delivery", "hls"],
    "properties": {
        "channels": {"type": "array", "items": {"type": "object",
            "required": ["name", "state", "viewers", "viewers_by_transport", "bitrate", "fps"],
        }},
        "delivery": {"type": "object"}, "hls": {"type": "object"}},
}  # fmt: skip


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Strom API",
            "version": __version__,
            "description": "Live channels, categories and a streamer's own channel.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "strom_session"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "CategoryRef": {
                    "type": "object",
                    "required": ["slug", "name"],
                    "properties": {"slug": {"type": "string"}, "name": {"type": "string"}},
                },
                "Stream": _STREAM,
                "Channel": _CHANNEL,
                "Health": _HEALTH,
                "FollowedChannel": _FOLLOWED,
                "Recording": RECORDING,
                "Clip": CLIP,
            },
        },
        "paths": PROFILE_PATHS
        | {
            "/api/v1/streams": {
                "get": {
                    "summary": "Live streams",
                    "parameters": [
                        {
                            "name": "sort",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["viewers", "category"]},
                        },
                        {"name": "category", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "q",
                            "in": "query",
                            "description": "Search titles and usernames; only the first "
                            "100 characters are used.",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                        {
                            "name": "offset",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0, "maximum": 1000000},
                        },
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["streams", "total"],
                                "properties": {
                                    "streams": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Stream"},
                                    },
                                    "total": {"type": "integer"},
                                },
                            }
                        ),
                        **_errors(400),
                    },
                }
            },
            "/api/v1/channels/{username}": {
                "get": {
                    "summary": "A channel",
                    "parameters": [
                        {
                            "name": "username",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Channel"}),
                        **_errors(404),
                    },
                }
            },
            "/api/v1/channels/{username}/recordings": {
                "get": {
                    "summary": "A channel's recordings, newest first",
                    "parameters": [
                        {
                            "name": "username",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["recordings"],
                                "properties": {
                                    "recordings": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Recording"},
                                    }
                                },
                            }
                        ),
                        **_errors(404),
                    },
                }
            },
            "/api/v1/me/recordings/{id}": {
                "delete": {
                    "summary": "Delete one of your recordings",
                    "security": _AUTH,
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "pattern": "^[0-9]{8}-[0-9]{6}(-[0-9]{1,3})?$",
                            },
                        }
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["deleted"],
                                "properties": {"deleted": {"type": "string"}},
                            }
                        ),
                        **_errors(401, 403, 404, 409),
                    },
                }
            },
            "/api/v1/stats": {
                "get": {
                    "summary": "The node's numbers (for Prometheus: /metrics)",
                    "responses": {"200": _json(_STATS), "403": _json(_ERROR, "metrics_allow")},
                }
            },
            "/api/v1/ingest": {
                "get": {
                    "summary": "Where publishers connect (used by strom stream)",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["rtmp_url", "rtmps_url", "whip_url"],
                                "properties": {
                                    "rtmp_url": {"type": "string", "pattern": "^rtmp://"},
                                    "rtmps_url": {
                                        "type": ["string", "null"],
                                        "pattern": "^rtmps://",
                                        "description": "null: the node has no certificate",
                                    },
                                    "whip_url": {"type": "string", "pattern": "^https?://"},
                                },
                            }
                        )
                    },
                }
            },
            "/api/v1/categories": {
                "get": {
                    "summary": "Categories with live counts",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["categories"],
                                "properties": {
                                    "categories": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["slug", "name", "live_count"],
                                            "properties": {
                                                "slug": {"type": "string"},
                                                "name": {"type": "string"},
                                                "is_game": {"type": "boolean"},
                                                "live_count": {"type": "integer"},
                                                "art_url": {"type": ["string", "null"]},
                                            },
                                        },
                                    }
                                },
                            }
                        )
                    },
                }
            },
            "/api/v1/me": {
                "get": {
                    "summary": "The authenticated user and their channel",
                    "security": _AUTH,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["username", "channel"],
                                "properties": {
                                    "username": {"type": "string"},
                                    "channel": {"$ref": "#/components/schemas/Channel"},
                                },
                            }
                        ),
                        **_errors(401),
                    },
                }
            },
            "/api/v1/me/channel": {
                "patch": {
                    "summary": "Edit your channel (title, description, category, recording)",
                    "security": _AUTH,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "description": "Absent or null fields are left as they are.",
                                    "properties": {
                                        "title": {"type": ["string", "null"], "maxLength": 140},
                                        "description": {
                                            "type": ["string", "null"],
                                            "maxLength": 2000,
                                        },
                                        "category": {
                                            "type": ["string", "null"],
                                            "description": "A slug from /api/v1/categories; "
                                            '"" for no category.',
                                        },
                                        "record_broadcasts": {
                                            "type": ["boolean", "null"],
                                            "description": "Record your broadcasts (past "
                                            "broadcasts and rewind); from the next one.",
                                        },
                                        **VISIBILITY_FIELDS,
                                        "quality_ladder": {
                                            "type": ["boolean", "null"],
                                            "description": "Lower renditions (720p, 480p, "
                                            "360p) for viewers on weak connections, where "
                                            "the site allows it; from the next broadcast.",
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Channel"}),
                        **_errors(400, 401, 403, 413, 422),
                    },
                }
            },
            "/api/v1/me/stream-key": {
                "post": {
                    "summary": "Regenerate your stream key (shown once)",
                    "security": _AUTH,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["stream_key"],
                                "properties": {"stream_key": {"type": "string"}},
                            }
                        ),
                        **_errors(401, 403),
                    },
                }
            },
            "/api/v1/me/health": {
                "get": {
                    "summary": "Your live stream's health",
                    "security": _AUTH,
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Health"}),
                        **_errors(401),
                    },
                }
            },
            "/api/v1/me/sessions": {
                "get": {
                    "summary": "Where you are logged in: your browser sessions",
                    "security": _AUTH,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["sessions"],
                                "properties": {
                                    "sessions": {"type": "array", "items": _SESSION},
                                },
                            }
                        ),
                        **_errors(401),
                    },
                },
                "delete": {
                    "summary": "Log out everywhere: end every browser session (yours too)",
                    "description": "API tokens are not affected.",
                    "security": _AUTH,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["ended"],
                                "properties": {"ended": {"type": "integer", "minimum": 0}},
                            }
                        ),
                        **_errors(401, 403),
                    },
                },
            },
            "/api/v1/me/sessions/{id}": {
                "delete": {
                    "summary": "End one of your browser sessions",
                    "security": _AUTH,
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["ended"],
                                "properties": {"ended": {"type": "integer", "minimum": 0}},
                            }
                        ),
                        **_errors(401, 403, 404),
                    },
                }
            },
            "/api/v1/me/following": {
                "get": {
                    "summary": "The channels you follow, live ones first (most viewers first)",
                    "security": _AUTH,
                    "parameters": [
                        {
                            "name": "last_live",
                            "in": "query",
                            "description": "1 (or true): offline channels with their "
                            "title and last_live_at too; anything else: without",
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["channels"],
                                "properties": {
                                    "channels": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/FollowedChannel"},
                                    }
                                },
                            }
                        ),
                        **_errors(401),
                    },
                }
            },
            "/api/v1/channels/{name}/follow": {
                "get": {
                    "summary": "Whether you follow the channel, and its follower count",
                    "parameters": [_NAME],
                    "responses": {"200": _json(_FOLLOW), **_errors(404)},
                },
                "post": {
                    "summary": "Follow the channel",
                    "security": _AUTH,
                    "parameters": [_NAME],
                    "responses": {"200": _json(_FOLLOW), **_errors(401, 403, 404, 422)},
                },
                "delete": {
                    "summary": "Stop following the channel",
                    "security": _AUTH,
                    "parameters": [_NAME],
                    "responses": {"200": _json(_FOLLOW), **_errors(401, 403, 404, 422)},
                },
            },
            "/api/v1/channels/{name}/chat/modlog": {
                "get": {
                    "summary": "The channel's moderation log (its owner and moderators)",
                    "security": _AUTH,
                    "parameters": [
                        _NAME,
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        },
                    ],
                    "responses": {"200": _json(_MODLOG), **_errors(400, 401, 403, 404)},
                }
            },
            **admin_paths(),
            **clip_paths(),
        },
    }
