"""What an RTMP session tells its application: one frozen dataclass per event."""

from __future__ import annotations

from dataclasses import dataclass, field

# --------------------------------------------------------------- server side (ingest/play)


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """The peer sent ``connect``; answer with ``accept_connect`` or ``reject_connect``."""

    app: str
    tc_url: str
    object_encoding: int
    properties: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """The peer wants to publish; answer with ``accept_publish`` or ``reject_publish``.

    ``name`` is the stream key as sent, query string included.
    """

    stream_id: int
    name: str
    publish_type: str = "live"


@dataclass(frozen=True, slots=True)
class PlayRequest:
    """The peer wants to play; answer with ``accept_play`` or ``reject_play``."""

    stream_id: int
    name: str


@dataclass(frozen=True, slots=True)
class MediaMessage:
    """An audio (8) or video (9) message: an FLV tag body, timestamp in ms."""

    stream_id: int
    message_type: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class DataMessage:
    """A data message such as ``onMetaData`` (``@setDataFrame`` already stripped)."""

    stream_id: int
    timestamp: int
    name: str
    values: list[object] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UnpublishRequest:
    """The publisher stopped (FCUnpublish, or closeStream/deleteStream while publishing)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StopPlayRequest:
    """The player stopped (closeStream/deleteStream while playing)."""

    stream_id: int


# --------------------------------------------------------------------------- client side


@dataclass(frozen=True, slots=True)
class ConnectResult:
    """The server answered our ``connect``."""

    accepted: bool
    code: str
    description: str
    information: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamCreated:
    """``createStream`` succeeded; publish or play follows on ``stream_id``."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StatusReceived:
    """An ``onStatus`` from the server, e.g. ``NetStream.Publish.Start``."""

    stream_id: int
    level: str
    code: str
    description: str
    #: the whole status object (e.g. Strom's ``channel`` on ``NetStream.Publish.Start``)
    information: dict[str, object] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class CommandError:
    """The server answered one of our commands (other than ``connect``) with ``_error``."""

    command: str
    information: object


ServerEvent = (
    ConnectRequest
    | PublishRequest
    | PlayRequest
    | MediaMessage
    | DataMessage
    | UnpublishRequest
    | StopPlayRequest
)
ClientEvent = (
    ConnectResult | StreamCreated | StatusReceived | CommandError | MediaMessage | DataMessage
)
RtmpEvent = ServerEvent | ClientEvent
