"""The text messages of the browser upload (``/ingest/ws``), parsed without I/O.

The client opens with ``{"type":"start","mime":"video/webm;codecs=vp9,opus"}`` (plus a
``"key"`` from scripts, and the frame rate it chose, ``"fps"``, for the stream health),
sends the container bytes as binary messages, and may later send ``{"type":"stop"}`` or
another ``start``. The parsing lives here, apart from the aiohttp adapter
(:mod:`strom.web.ingest`), so that it is tested and fuzzed as bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from strom.errors import WS_POLICY, WS_UNSUPPORTED_DATA, ProtocolError, UnsupportedMedia
from strom.live.stats import declared_fps

#: what a browser's MediaRecorder (or a script) may announce; the bytes are sniffed anyway
ACCEPTED_MIME_TYPES = frozenset(
    {
        "video/webm", "audio/webm", "video/x-matroska", "audio/x-matroska",
        "video/mp4", "audio/mp4", "video/x-flv", "video/mp2t",
    }
)  # fmt: skip


class StartRefused(ProtocolError):
    """Not an acceptable start message: the socket closes with 1008 (policy)."""

    ws_close = WS_POLICY


class UnsupportedUpload(StartRefused, UnsupportedMedia):
    """A start message announcing a media type push ingest does not take (1003)."""

    ws_close = WS_UNSUPPORTED_DATA


@dataclass(frozen=True, slots=True)
class StartMessage:
    #: the announced media type, as sent ("" when the client did not say)
    mime: str
    #: the stream key; None: use the logged-in session's channel
    key: str | None
    #: the frame rate the client chose (``"fps"``), if it said a plausible one
    fps: float | None = None


def _json_object(text: str | bytes) -> dict[str, object] | None:
    try:
        value = json.loads(text)
    # RecursionError: a few thousand "[" nest deeper than the C decoder recurses.
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse_start(text: str | bytes) -> StartMessage:
    """The first message of an upload; :class:`StartRefused` unless it is a start."""
    start = _json_object(text)
    if start is None or start.get("type") != "start":
        raise StartRefused('the first message must be {"type":"start",...}')
    mime = start.get("mime", "")
    if not isinstance(mime, str) or (
        mime and mime.partition(";")[0].strip().lower() not in ACCEPTED_MIME_TYPES
    ):
        raise UnsupportedUpload("unsupported media type; record WebM, MP4, FLV or MPEG-TS")
    key = start.get("key")
    if key is not None and not isinstance(key, str):
        raise StartRefused("unknown stream key")
    return StartMessage(mime, key, declared_fps(start.get("fps")))


def control_type(text: str | bytes) -> str | None:
    """The ``type`` of a text message after the start (``"stop"``, ``"start"``), or None
    for anything else (ignored)."""
    message = _json_object(text)
    kind = None if message is None else message.get("type")
    return kind if isinstance(kind, str) else None
