"""The server side of an RTMP connection, sans-IO (RTMP spec 1.0, sections 5-7).

``receive_data(bytes)`` runs the handshake, the chunk stream and the NetConnection /
NetStream commands and returns :mod:`events <strom.media.rtmp.events>`; the
application answers requests with ``accept_*`` / ``reject_*`` and sends media with
``send_media``; ``data_to_send()`` returns the bytes to write. No sockets, no clocks.

Events come out in wire order. When one ``receive_data`` call carries several commands
(a replayed capture, an impatient client), later commands are handled as if the pending
request had been accepted; replies produced while ``connect`` is pending are held back
until ``accept_connect`` so that they follow its ``_result`` on the wire.
"""

from __future__ import annotations

import enum
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from strom.errors import LocalProtocolError, RtmpError
from strom.media.amf import UNDEFINED
from strom.media.rtmp.chunk import ChunkReader, ChunkStream, ChunkWriter, RtmpMessage
from strom.media.rtmp.events import (
    ConnectRequest,
    DataMessage,
    MediaMessage,
    PlayRequest,
    PublishRequest,
    ServerEvent,
    StopPlayRequest,
    UnpublishRequest,
)
from strom.media.rtmp.handshake import RandomBytes, ServerHandshake
from strom.media.rtmp.limits import RtmpLimits
from strom.media.rtmp.messages import (
    AUDIO_CSID,
    COMMAND_CSID,
    CONTROL_CSID,
    STREAM_CSID,
    VIDEO_CSID,
    BandwidthLimit,
    Command,
    MessageType,
    SetPeerBandwidth,
    SubMessage,
    UserControl,
    UserControlEvent,
    encode_data,
    parse_aggregate,
    parse_data,
    status_info,
)

logger = logging.getLogger(__name__)

#: What we claim to be in the connect ``_result`` (clients only log it).
FMS_VERSION = "FMS/3,5,7,7009"
FMS_CAPABILITIES = 31.0


class SessionState(enum.Enum):
    HANDSHAKE = "handshake"
    AWAIT_CONNECT = "awaiting connect"
    CONNECT_PENDING = "connect pending"
    CONNECTED = "connected"
    CLOSED = "closed"


class StreamState(enum.Enum):
    IDLE = "idle"
    PUBLISH_PENDING = "publish pending"
    PUBLISHING = "publishing"
    PLAY_PENDING = "play pending"
    PLAYING = "playing"


_PUBLISHING = frozenset({StreamState.PUBLISH_PENDING, StreamState.PUBLISHING})
_PLAYING = frozenset({StreamState.PLAY_PENDING, StreamState.PLAYING})
_STREAMING = frozenset({StreamState.PUBLISHING, StreamState.PLAYING})
_ACTIVE = frozenset({SessionState.CONNECT_PENDING, SessionState.CONNECTED})
_COMMAND_TYPES = frozenset({MessageType.COMMAND_AMF0.value, MessageType.COMMAND_AMF3.value})


@dataclass
class _Stream:
    stream_id: int
    state: StreamState = StreamState.IDLE
    name: str = ""
    fc_published: bool = False


_MEDIA_CSID = {MessageType.AUDIO.value: AUDIO_CSID, MessageType.VIDEO.value: VIDEO_CSID}
_Out = tuple[int, int, int, bytes]  # csid, message type, stream id, payload
_CommandHandler = Callable[["RtmpServerSession", RtmpMessage, Command, list[ServerEvent]], None]


def _number(value: object, default: float = 0.0) -> float:
    # Finite only: the caller may int() it (an AMF0 number may be NaN or infinite).
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default


class RtmpServerSession:
    """One RTMP connection, server side. See the module docstring."""

    def __init__(
        self,
        limits: RtmpLimits | None = None,
        *,
        random_bytes: RandomBytes = os.urandom,
        conn_id: str = "-",
    ) -> None:
        self.limits = limits = limits or RtmpLimits()
        self.conn_id = conn_id
        self.state = SessionState.HANDSHAKE
        self.app = ""
        #: True until a publish is accepted: the ``preauth_*`` limits apply (and stay for
        #: a player, which only ever sends commands and acknowledgements).
        self.preauth = True
        self._handshake = ServerHandshake(random_bytes)
        reader = ChunkReader(
            max_chunk_size=limits.max_chunk_size,
            min_chunk_size=limits.min_chunk_size,
            max_message_size=min(limits.preauth_max_message_size, limits.max_message_size),
            max_chunk_streams=limits.max_chunk_streams,
            max_pending_bytes=min(limits.preauth_max_pending_bytes, limits.max_pending_bytes),
        )
        # No header compression: AUDIO_CSID/VIDEO_CSID must stay type 0 so that the
        # application may interleave encode_message() bytes of its own.
        self._chunks = ChunkStream(reader, ChunkWriter())
        self._streams: dict[int, _Stream] = {}
        self._next_stream_id = 1
        self._connect_transaction = 0.0
        self._object_encoding = 0
        self._held: list[_Out] = []  # replies produced while connect is pending
        self._fc_published: set[str] = set()  # names announced with FCPublish

    # ----------------------------------------------------------------- bytes in, out

    def receive_data(self, data: bytes, *, max_bytes: int | None = None) -> list[ServerEvent]:
        """Feed bytes from the peer; returns the events they complete, in order.

        Without ``max_bytes`` every complete message is read (later requests handled as
        if the pending one were accepted, see the module docstring). With it, one call
        reads about ``max_bytes`` of input at most, and stops after each command: an
        event loop then answers a request (and an accepted publish raises the limits)
        before the bytes behind it are read. :attr:`input_pending` says when to call
        again, with ``b""``, to go on.
        """
        events: list[ServerEvent] = []
        if self.state is SessionState.CLOSED:
            return events
        if self.state is SessionState.HANDSHAKE:
            data = self._handshake.receive_data(data)
            self._chunks.outgoing += self._handshake.data_to_send()
            if not self._handshake.complete:
                return events
            self._set_state(SessionState.AWAIT_CONNECT)
        pause_after = _COMMAND_TYPES if max_bytes is not None else ()
        for message in self._chunks.receive_data(
            data, max_bytes=max_bytes, pause_after=pause_after
        ):
            self._dispatch(message, events)
        return events

    @property
    def input_pending(self) -> bool:
        """Whether the last budgeted ``receive_data`` left input unread (its budget spent
        or a command to answer first)."""
        return self.state is not SessionState.CLOSED and self._chunks.reader.stopped_early

    @property
    def input_work(self) -> int:
        """The chunk-stream input read so far, each chunk counted as at least
        :data:`~strom.media.rtmp.chunk.CHUNK_COST` bytes (the unit of ``max_bytes``)."""
        return self._chunks.reader.work

    @property
    def streaming(self) -> bool:
        """Whether a publish or a play is accepted and running on one of the streams."""
        return any(s.state in _STREAMING for s in self._streams.values())

    def data_to_send(self) -> bytes:
        """Everything queued for the peer; clears the queue."""
        return self._chunks.take_outgoing()

    # ------------------------------------------------------------- application calls

    def accept_connect(self) -> None:
        if not self._require(SessionState.CONNECT_PENDING, "accept_connect"):
            return
        self._set_state(SessionState.CONNECTED)
        c = self._chunks
        # Spec 7.2.1.1: Window Acknowledgement Size, Set Peer Bandwidth, Stream Begin 0,
        # then the _result. Set Chunk Size goes before anything that may need it.
        c.announce_window(self.limits.window_ack_size)
        c.send_control(
            MessageType.SET_PEER_BANDWIDTH,
            bytes(SetPeerBandwidth(self.limits.window_ack_size, BandwidthLimit.DYNAMIC)),
        )
        c.set_chunk_size(self.limits.out_chunk_size)
        self._user_control(UserControlEvent.STREAM_BEGIN, 0)
        info = status_info(
            "status",
            "NetConnection.Connect.Success",
            "Connection succeeded.",
            objectEncoding=float(self._object_encoding),
        )
        props = {"fmsVer": FMS_VERSION, "capabilities": FMS_CAPABILITIES}
        self._command(0, Command("_result", self._connect_transaction, props, (info,)))
        for csid, message_type, stream_id, payload in self._held:
            self._chunks.send(csid, message_type, stream_id, 0, payload)
        self._held.clear()

    def reject_connect(self, description: str) -> None:
        if not self._require(SessionState.CONNECT_PENDING, "reject_connect"):
            return
        info = status_info("error", "NetConnection.Connect.Rejected", description)
        self._held.clear()
        self._set_state(SessionState.CLOSED)  # the reply below is not held back
        self._command(0, Command("_error", self._connect_transaction, None, (info,)))

    def accept_publish(self, stream_id: int, channel: str = "") -> None:
        """Start publishing. ``channel``, when given, is the channel the stream key
        publishes to, told to the publisher in a ``channel`` field of the status object
        (a Strom extension: its client uses it to show viewers and chat)."""
        stream = self._stream_in(stream_id, StreamState.PUBLISH_PENDING, "accept_publish")
        if stream is None:
            return
        stream.state = StreamState.PUBLISHING
        # The peer showed a valid stream key: from now on it may send media.
        self.preauth = False
        reader = self._chunks.reader
        reader.max_message_size = self.limits.max_message_size
        reader.max_pending_bytes = self.limits.max_pending_bytes
        self._user_control(UserControlEvent.STREAM_BEGIN, stream_id)
        if stream.fc_published:
            info = {"code": "NetStream.Publish.Start", "description": stream.name}
            self._command(0, Command("onFCPublish", 0, None, (info,)))
        extra = {"channel": channel} if channel else {}
        self.send_status(
            stream_id, "status", "NetStream.Publish.Start", f"{stream.name} is now published.",
            **extra,
        )  # fmt: skip

    def reject_publish(self, stream_id: int, code: str, description: str) -> None:
        stream = self._stream_in(stream_id, StreamState.PUBLISH_PENDING, "reject_publish")
        if stream is None:
            return
        stream.state = StreamState.IDLE
        self.send_status(stream_id, "error", code, description)

    def accept_play(self, stream_id: int) -> None:
        stream = self._stream_in(stream_id, StreamState.PLAY_PENDING, "accept_play")
        if stream is None:
            return
        stream.state = StreamState.PLAYING
        # Spec 7.2.2.1: Stream Begin, then onStatus Play.Reset and Play.Start.
        self._user_control(UserControlEvent.STREAM_BEGIN, stream_id)
        name = stream.name
        self.send_status(
            stream_id, "status", "NetStream.Play.Reset", f"Playing and resetting {name}."
        )
        self.send_status(stream_id, "status", "NetStream.Play.Start", f"Started playing {name}.")
        self.send_data(stream_id, "|RtmpSampleAccess", True, True)

    def reject_play(self, stream_id: int, code: str, description: str) -> None:
        stream = self._stream_in(stream_id, StreamState.PLAY_PENDING, "reject_play")
        if stream is None:
            return
        stream.state = StreamState.IDLE
        self.send_status(stream_id, "error", code, description)

    def send_status(
        self, stream_id: int, level: str, code: str, description: str, **extra: object
    ) -> None:
        info = status_info(level, code, description, **extra)
        self._command(stream_id, Command("onStatus", 0, None, (info,)))

    def send_media(self, stream_id: int, message_type: int, timestamp: int, payload: bytes) -> None:
        csid = _MEDIA_CSID.get(message_type, STREAM_CSID)
        self._chunks.send(csid, message_type, stream_id, timestamp, payload)

    def send_data(self, stream_id: int, name: str, *values: object) -> None:
        payload = encode_data(name, *values)
        self._chunks.send(STREAM_CSID, MessageType.DATA_AMF0, stream_id, 0, payload)

    def close_with_error(self, description: str, code: str = "NetStream.Failed") -> None:
        """Best effort: tell the peer why (``code`` on each active stream); ignore input."""
        if self.state is SessionState.CONNECT_PENDING:
            self.reject_connect(description)
            return
        if self.state is SessionState.CONNECTED:
            active = [s for s in self._streams.values() if s.state is not StreamState.IDLE]
            for stream in active:
                self.send_status(stream.stream_id, "error", code, description)
            if not active:
                self.send_status(0, "error", "NetConnection.Connect.Closed", description)
        self._set_state(SessionState.CLOSED)

    def close(self) -> None:
        """Ignore input from now on (the peer was told why, e.g. by :meth:`reject_publish`)."""
        self._set_state(SessionState.CLOSED)

    # ----------------------------------------------------------------- internals

    def _set_state(self, state: SessionState) -> None:
        if state is not self.state:
            logger.debug("rtmp[%s] %s -> %s", self.conn_id, self.state.value, state.value)
            self.state = state

    def _require(self, state: SessionState, what: str) -> bool:
        """Whether to go ahead: False once closed; our bug in any other wrong state."""
        if self.state is SessionState.CLOSED:
            return False
        if self.state is not state:
            raise LocalProtocolError(f"{what} in session state {self.state.value!r}")
        return True

    def _stream_in(self, stream_id: int, state: StreamState, what: str) -> _Stream | None:
        """The stream awaiting the application's answer, or None if the peer withdrew.

        Events of one ``receive_data`` call are answered after all of them were parsed,
        so a peer may have deleted or closed the stream in the meantime: not a bug.
        """
        stream = self._streams.get(stream_id)
        if self.state is SessionState.CLOSED:
            return None
        if stream is not None and stream.state is state:
            return stream
        if 0 < stream_id < self._next_stream_id:
            # Deleted, closed, or asked something else of since (publish, closeStream,
            # play on one stream in one packet): the peer moved on.
            logger.debug("rtmp[%s] %s: stream %d already gone", self.conn_id, what, stream_id)
            return None
        problem = "unknown" if stream is None else stream.state.value
        raise LocalProtocolError(f"{what}: stream {stream_id} is {problem}, not {state.value}")

    def _send(self, csid: int, message_type: int, stream_id: int, payload: bytes) -> None:
        if self.state is SessionState.CONNECT_PENDING:
            self._held.append((csid, message_type, stream_id, payload))
        else:
            self._chunks.send(csid, message_type, stream_id, 0, payload)

    def _command(self, stream_id: int, command: Command) -> None:
        csid = STREAM_CSID if stream_id else COMMAND_CSID
        self._send(csid, MessageType.COMMAND_AMF0, stream_id, bytes(command))

    def _reply(self, request: Command, *values: object) -> None:
        """``_result`` for a request that expects one (transaction id > 0)."""
        if request.transaction_id > 0:
            self._command(0, Command("_result", request.transaction_id, None, values))

    def _reply_error(self, request: Command, code: str, description: str) -> None:
        if request.transaction_id > 0:
            info = status_info("error", code, description)
            self._command(0, Command("_error", request.transaction_id, None, (info,)))

    def _user_control(self, event: UserControlEvent, value: int) -> None:
        payload = bytes(UserControl(event, value))
        self._send(CONTROL_CSID, MessageType.USER_CONTROL, 0, payload)

    # ----------------------------------------------------------------- dispatch

    def _dispatch(self, message: RtmpMessage, events: list[ServerEvent]) -> None:
        if self.state is SessionState.CLOSED:
            return
        handler = _MESSAGE_HANDLERS.get(message.message_type)
        if handler is None:
            raise RtmpError(
                f"unknown RTMP message type {message.message_type} "
                f"on chunk stream {message.csid} ({len(message.payload)} bytes)"
            )
        handler(self, message, events)

    def _on_user_control(self, message: RtmpMessage, _events: list[ServerEvent]) -> None:
        control = UserControl.parse(message.payload)
        if control.event_type == UserControlEvent.PING_REQUEST:  # spec 7.1.7
            self._user_control(UserControlEvent.PING_RESPONSE, control.value)

    def _publishing_stream(self, message: RtmpMessage) -> _Stream | None:
        stream = self._streams.get(message.stream_id)
        if stream is None and not 0 < message.stream_id < self._next_stream_id:
            raise RtmpError(
                f"message type {message.message_type} on stream {message.stream_id}, "
                "which was never created"
            )
        if stream is None or stream.state not in _PUBLISHING:
            return None  # late data after unpublish/rejection: dropped
        return stream

    def _on_media(self, message: RtmpMessage, events: list[ServerEvent]) -> None:
        if self._publishing_stream(message) is not None:
            events.append(
                MediaMessage(
                    message.stream_id, message.message_type, message.timestamp, message.payload
                )
            )

    def _on_data(self, message: RtmpMessage, events: list[ServerEvent]) -> None:
        # Data on stream 0 (some encoders send notifications there) is dropped.
        if message.stream_id == 0 or self._publishing_stream(message) is None:
            return
        amf3 = message.message_type == MessageType.DATA_AMF3
        name, values = parse_data(message.payload, amf3=amf3)
        if name == "@setDataFrame" and values and isinstance(values[0], str):
            name, values = values[0], values[1:]
        events.append(DataMessage(message.stream_id, message.timestamp, name, values))

    def _on_aggregate(self, message: RtmpMessage, events: list[ServerEvent]) -> None:
        subs: list[SubMessage] = parse_aggregate(message.payload, message.timestamp)
        for sub in subs:
            if sub.message_type not in (
                MessageType.AUDIO,
                MessageType.VIDEO,
                MessageType.DATA_AMF0,
            ):
                raise RtmpError(f"message type {sub.message_type} inside an Aggregate message")
            inner = RtmpMessage(
                message.csid, sub.message_type, message.stream_id, sub.timestamp, sub.payload
            )
            self._dispatch(inner, events)

    def _on_ignored(self, _message: RtmpMessage, _events: list[ServerEvent]) -> None:
        """Shared objects (spec 7.1.3): accepted on the wire, not supported."""

    def _on_command(self, message: RtmpMessage, events: list[ServerEvent]) -> None:
        amf3 = message.message_type == MessageType.COMMAND_AMF3
        command = Command.parse(message.payload, amf3=amf3)
        entry = _COMMANDS.get(command.name)
        if entry is None:
            logger.debug("rtmp[%s] unknown command %r", self.conn_id, command.name)
            self._reply_error(
                command, "NetConnection.Call.Failed", f"Method not found ({command.name})."
            )
            return
        handler, states = entry
        if self.state not in states:
            raise RtmpError(f"command {command.name!r} not allowed while {self.state.value}")
        handler(self, message, command, events)

    # ----------------------------------------------------------------- commands

    def _cmd_connect(self, _m: RtmpMessage, cmd: Command, events: list[ServerEvent]) -> None:
        props = cmd.command_object
        if not isinstance(props, dict):
            raise RtmpError("connect without a command object")
        self.app = str(props.get("app") or "")
        self._object_encoding = int(_number(props.get("objectEncoding")))
        self._connect_transaction = cmd.transaction_id
        self._set_state(SessionState.CONNECT_PENDING)
        events.append(
            ConnectRequest(self.app, str(props.get("tcUrl") or ""), self._object_encoding, props)
        )

    def _cmd_create_stream(self, _m: RtmpMessage, cmd: Command, _e: list[ServerEvent]) -> None:
        if len(self._streams) >= self.limits.max_streams:
            self._reply_error(
                cmd, "NetConnection.Call.Failed", f"more than {self.limits.max_streams} streams"
            )
            return
        stream_id = self._next_stream_id
        self._next_stream_id += 1
        self._streams[stream_id] = _Stream(stream_id)
        self._reply(cmd, float(stream_id))

    def _stream_for(self, message: RtmpMessage, what: str) -> _Stream | None:
        """The idle stream a publish/play arrived on, or None after telling the peer why."""
        stream = self._streams.get(message.stream_id)
        if stream is not None and stream.state is StreamState.IDLE:
            return stream
        problem = "was not created" if stream is None else f"is already {stream.state.value}"
        self.send_status(
            message.stream_id, "error", "NetStream.Failed", f"{what}: stream {problem}"
        )
        return None

    def _cmd_publish(self, message: RtmpMessage, cmd: Command, events: list[ServerEvent]) -> None:
        stream = self._stream_for(message, "publish")
        if stream is None:
            return
        name = cmd.arguments[0] if cmd.arguments else None
        if not isinstance(name, str) or not name:
            self.send_status(
                stream.stream_id, "error", "NetStream.Publish.BadName", "No stream name given."
            )
            return
        kind = cmd.arguments[1] if len(cmd.arguments) > 1 else "live"
        stream.name = name
        stream.state = StreamState.PUBLISH_PENDING
        stream.fc_published = name in self._fc_published
        events.append(
            PublishRequest(stream.stream_id, name, kind if isinstance(kind, str) else "live")
        )

    def _cmd_play(self, message: RtmpMessage, cmd: Command, events: list[ServerEvent]) -> None:
        stream = self._stream_for(message, "play")
        if stream is None:
            return
        name = cmd.arguments[0] if cmd.arguments else None
        if not isinstance(name, str) or not name:
            self.send_status(
                stream.stream_id, "error", "NetStream.Play.StreamNotFound", "No stream name."
            )
            return
        stream.name = name
        stream.state = StreamState.PLAY_PENDING
        events.append(PlayRequest(stream.stream_id, name))

    def _stop(self, stream: _Stream, events: list[ServerEvent]) -> None:
        if stream.state in _PUBLISHING:
            events.append(UnpublishRequest(stream.stream_id))
        elif stream.state in _PLAYING:
            events.append(StopPlayRequest(stream.stream_id))
        stream.state = StreamState.IDLE

    def _cmd_fc_publish(self, _m: RtmpMessage, cmd: Command, _e: list[ServerEvent]) -> None:
        name = cmd.arguments[0] if cmd.arguments else None
        if isinstance(name, str) and len(self._fc_published) < self.limits.max_streams:
            self._fc_published.add(name)
        self._reply(cmd, UNDEFINED)

    def _cmd_fc_unpublish(self, _m: RtmpMessage, cmd: Command, events: list[ServerEvent]) -> None:
        name = cmd.arguments[0] if cmd.arguments else None
        for stream in self._streams.values():
            if stream.state in _PUBLISHING and stream.name == name:
                self._stop(stream, events)
        self._fc_published.discard(str(name))
        self._reply(cmd, UNDEFINED)

    def _cmd_close_stream(
        self, message: RtmpMessage, _c: Command, events: list[ServerEvent]
    ) -> None:
        stream = self._streams.get(message.stream_id)
        if stream is not None:
            self._stop(stream, events)

    def _cmd_delete_stream(self, _m: RtmpMessage, cmd: Command, events: list[ServerEvent]) -> None:
        stream_id = int(_number(cmd.arguments[0] if cmd.arguments else None))
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            self._stop(stream, events)

    def _cmd_reply_only(self, _m: RtmpMessage, cmd: Command, _e: list[ServerEvent]) -> None:
        """releaseStream, FCSubscribe, ...: historical FMS calls; an empty _result."""
        self._reply(cmd, UNDEFINED)

    def _cmd_get_stream_length(self, _m: RtmpMessage, cmd: Command, _e: list[ServerEvent]) -> None:
        self._reply(cmd, 0.0)  # live streams have no length

    def _cmd_ignore(self, _m: RtmpMessage, _c: Command, _e: list[ServerEvent]) -> None:
        """receiveAudio/receiveVideo/pause, and replies to our own calls."""


_MESSAGE_HANDLERS: dict[
    int, Callable[[RtmpServerSession, RtmpMessage, list[ServerEvent]], None]
] = {
    MessageType.USER_CONTROL: RtmpServerSession._on_user_control,
    MessageType.AUDIO: RtmpServerSession._on_media,
    MessageType.VIDEO: RtmpServerSession._on_media,
    MessageType.DATA_AMF0: RtmpServerSession._on_data,
    MessageType.DATA_AMF3: RtmpServerSession._on_data,
    MessageType.COMMAND_AMF0: RtmpServerSession._on_command,
    MessageType.COMMAND_AMF3: RtmpServerSession._on_command,
    MessageType.SHARED_OBJECT_AMF0: RtmpServerSession._on_ignored,
    MessageType.SHARED_OBJECT_AMF3: RtmpServerSession._on_ignored,
    MessageType.AGGREGATE: RtmpServerSession._on_aggregate,
}

_CONNECT = frozenset({SessionState.AWAIT_CONNECT})
#: Command name -> (handler, session states in which it is allowed). Stream-level state
#: (is this stream idle, publishing, playing?) is checked by the handlers themselves.
_COMMANDS: dict[str, tuple[_CommandHandler, frozenset[SessionState]]] = {
    "connect": (RtmpServerSession._cmd_connect, _CONNECT),
    "createStream": (RtmpServerSession._cmd_create_stream, _ACTIVE),
    "releaseStream": (RtmpServerSession._cmd_reply_only, _ACTIVE),
    "FCPublish": (RtmpServerSession._cmd_fc_publish, _ACTIVE),
    "publish": (RtmpServerSession._cmd_publish, _ACTIVE),
    "FCUnpublish": (RtmpServerSession._cmd_fc_unpublish, _ACTIVE),
    "play": (RtmpServerSession._cmd_play, _ACTIVE),
    "FCSubscribe": (RtmpServerSession._cmd_reply_only, _ACTIVE),
    "FCUnsubscribe": (RtmpServerSession._cmd_reply_only, _ACTIVE),
    "getStreamLength": (RtmpServerSession._cmd_get_stream_length, _ACTIVE),
    "closeStream": (RtmpServerSession._cmd_close_stream, _ACTIVE),
    "deleteStream": (RtmpServerSession._cmd_delete_stream, _ACTIVE),
    "receiveAudio": (RtmpServerSession._cmd_ignore, _ACTIVE),
    "receiveVideo": (RtmpServerSession._cmd_ignore, _ACTIVE),
    "pause": (RtmpServerSession._cmd_ignore, _ACTIVE),
    "_result": (RtmpServerSession._cmd_ignore, _ACTIVE),
    "_error": (RtmpServerSession._cmd_ignore, _ACTIVE),
    "onStatus": (RtmpServerSession._cmd_ignore, _ACTIVE),
}
