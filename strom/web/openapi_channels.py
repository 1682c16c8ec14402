"""The channel parts of the OpenAPI description (:mod:`strom.web.openapi`): the stream
card, the channel view and the stream health."""

from __future__ import annotations

from typing import Any

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
    },
}

HEALTH: dict[str, Any] = {
    "type": "object",
    "description": "Offline: only live (false) and warnings; live: the rest as well.",
    "required": ["live", "warnings"],
    "properties": {
        "live": {"type": "boolean"},
        "warnings": {"type": "array", "items": {"type": "string"}},
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
