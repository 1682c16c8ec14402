"""Strom's exception tree.

::

    StromError                       http_status  ws_close
     ├── ProtocolError                       400      1003   the peer sent what we cannot accept
     │    ├── UnsupportedMedia               415      1003   well-formed, a variant not taken
     │    │    └── (UnsupportedMp4, UnsupportedWebm, UnsupportedTs)
     │    ├── AmfError · RtmpError · FlvError · CodecError   malformed AMF / RTMP / FLV / codec
     │    │    (Mp4Error, WebmError, TsError, ChatProtocolError, StartRefused,
     │    │     PullProtocolError)
     │    └── LimitExceeded                  413      1009   within the protocol, past a bound
     │         ├── RateExceeded              429      1009   faster than allowed on average
     │         └── Busy                      503      1013   the server is full: try later
     ├── ApiError                       (given)      1008   an HTTP request refused, with a reason
     ├── PublishRefused                 409/403      1008   a publish this node or site refuses
     ├── LocalProtocolError                  500      1011   asked to break a protocol (a bug)
     ├── SettingsError (strom.setting_values)               a setting Strom cannot use
     └── StoreError (strom.store.errors)     500            NotFound 404, Conflict 409,
                                                            InvalidInput 422, DatabaseUnavailable
                                                            and SchemaOutOfDate 503

Protocol code raises these; each network adapter translates them, at one boundary, into a
close the peer can read: RTMP ``_error``/``onStatus``, a WebSocket close with
:attr:`~StromError.ws_close` and the message as its reason, or an HTTP answer with
:attr:`~StromError.http_status` and ``{"error": message}`` (the web app's error middleware
does that for every handler). The codes are class attributes, read directly: no getattr.
"""

from __future__ import annotations

#: WebSocket close codes (RFC 6455 section 7.4.1 and the IANA registry)
WS_NORMAL = 1000
WS_GOING_AWAY = 1001
WS_UNSUPPORTED_DATA = 1003
WS_POLICY = 1008
WS_TOO_BIG = 1009
WS_INTERNAL_ERROR = 1011
WS_TRY_LATER = 1013


class StromError(Exception):
    """Root of every error Strom raises on purpose."""

    #: the HTTP status an adapter answers with
    http_status: int = 500
    #: the WebSocket close code an adapter closes with
    ws_close: int = WS_INTERNAL_ERROR


class ProtocolError(StromError):
    """The remote peer violated a protocol or container format."""

    http_status = 400
    ws_close = WS_UNSUPPORTED_DATA


class UnsupportedMedia(ProtocolError):
    """Well-formed media in a codec or container variant Strom does not take (HTTP 415,
    WebSocket close 1003), as opposed to corrupt media (400)."""

    http_status = 415


class AmfError(ProtocolError):
    """Malformed or unsupported AMF data."""


class RtmpError(ProtocolError):
    """RTMP handshake, chunk stream or command violation."""


class FlvError(ProtocolError):
    """Malformed FLV audio/video tag payload."""


class CodecError(ProtocolError):
    """Malformed codec configuration record."""


class LimitExceeded(ProtocolError):
    """The peer stayed within the protocol but beyond a configured limit."""

    http_status = 413
    ws_close = WS_TOO_BIG


class RateExceeded(LimitExceeded):
    """The peer sends faster than a configured average rate."""

    http_status = 429


class Busy(LimitExceeded):
    """The server is at a configured capacity: come back later."""

    http_status = 503
    ws_close = WS_TRY_LATER


class ApiError(StromError):
    """An HTTP request refused with a status and a reason the client can read: handlers
    raise it, the web app's error middleware answers ``{"error": reason}`` (plus
    ``extra`` fields and ``headers``)."""

    ws_close = WS_POLICY

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: object,
    ) -> None:
        super().__init__(reason)
        self.http_status = status
        self.reason = reason
        self.headers = headers or {}
        self.extra = extra


class PublishRefused(StromError):
    """A publish the site refuses before the channel is claimed: the channel is live on
    another node (409), or this node takes no publishers (403). The message says why and,
    where it can, where to publish instead; RTMP answers ``NetStream.Publish.Rejected``."""

    ws_close = WS_POLICY

    def __init__(self, reason: str, *, status: int = 409) -> None:
        super().__init__(reason)
        self.http_status = status


class LocalProtocolError(StromError):
    """Strom itself tried to do something the protocol forbids."""
