"""The client side of an RTMP connection, sans-IO: connect, then publish or play.

Used by Strom's benchmark, relay and tests as a publisher or player::

    client = RtmpClientSession()
    client.connect("live", "rtmp://host/live")
    write(client.data_to_send())
    for event in client.receive_data(read()):   # ConnectResult, StreamCreated, ...
        ...
    client.publish("key")                       # after ConnectResult(accepted=True)
    client.send_media(MESSAGE_TYPE_VIDEO, 0, flv_video_tag_body)

The command sequence follows what ffmpeg and OBS send (RTMP spec 1.0, section 7.2):
releaseStream, FCPublish, createStream, publish; or createStream, play.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from strom.errors import LocalProtocolError, RtmpError
from strom.media.amf import EcmaArray
from strom.media.rtmp.chunk import ChunkReader, ChunkStream, ChunkWriter, RtmpMessage
from strom.media.rtmp.events import (
    ClientEvent,
    CommandError,
    ConnectResult,
    DataMessage,
    MediaMessage,
    StatusReceived,
    StreamCreated,
)
from strom.media.rtmp.handshake import ClientHandshake, RandomBytes
from strom.media.rtmp.limits import RtmpLimits
from strom.media.rtmp.messages import (
    AUDIO_CSID,
    COMMAND_CSID,
    CONTROL_CSID,
    STREAM_CSID,
    VIDEO_CSID,
    Command,
    MessageType,
    UserControl,
    UserControlEvent,
    encode_data,
    parse_aggregate,
    parse_data,
)

logger = logging.getLogger(__name__)

#: Set Buffer Length we announce when playing (spec 7.1.7), in milliseconds.
PLAY_BUFFER_MS = 1000


class ClientState(enum.Enum):
    IDLE = "idle"
    HANDSHAKE = "handshake"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class _Pending:
    """A command awaiting ``_result``; for createStream, what to do with the stream."""

    command: str
    then: str = ""  # "publish" or "play"
    name: str = ""
    publish_type: str = "live"


_DEFAULT_LIMITS = RtmpLimits()
_MEDIA_CSID = {MessageType.AUDIO.value: AUDIO_CSID, MessageType.VIDEO.value: VIDEO_CSID}


class RtmpClientSession:
    """One RTMP connection, client side. See the module docstring."""

    def __init__(
        self,
        limits: RtmpLimits = _DEFAULT_LIMITS,
        *,
        random_bytes: RandomBytes = os.urandom,
        digest: bool = False,
        flash_version: str = "FMLE/3.0 (compatible; Strom)",
    ) -> None:
        self.limits = limits
        self.state = ClientState.IDLE
        self.flash_version = flash_version
        #: The message stream we publish or play on, once created.
        self.stream_id: int | None = None
        self.stream_name = ""
        self._handshake = ClientHandshake(random_bytes, digest=digest)
        reader = ChunkReader(
            max_chunk_size=limits.max_chunk_size,
            min_chunk_size=limits.min_chunk_size,
            max_message_size=limits.max_message_size,
            max_chunk_streams=limits.max_chunk_streams,
            max_pending_bytes=limits.max_pending_bytes,
        )
        self._chunks = ChunkStream(reader, ChunkWriter(compress=True))
        self._connect: Command | None = None
        self._transactions: dict[float, _Pending] = {}
        self._next_transaction = 1

    # ----------------------------------------------------------------- bytes in, out

    def data_to_send(self) -> bytes:
        return self._chunks.take_outgoing()

    def receive_data(self, data: bytes) -> list[ClientEvent]:
        events: list[ClientEvent] = []
        if self.state in (ClientState.IDLE, ClientState.CLOSED):
            return events
        if self.state is ClientState.HANDSHAKE:
            data = self._handshake.receive_data(data)
            self._chunks.outgoing += self._handshake.data_to_send()
            if not self._handshake.complete:
                return events
            self._after_handshake()
        for message in self._chunks.receive_data(data):
            self._dispatch(message, events)
        return events

    # ----------------------------------------------------------------- application calls

    def connect(
        self, app: str, tc_url: str, properties: Mapping[str, object] | None = None
    ) -> None:
        """Start the handshake; ``connect`` is sent as soon as it completes."""
        if self.state is not ClientState.IDLE:
            raise LocalProtocolError(f"connect while {self.state.value}")
        props: dict[str, object] = {
            "app": app,
            "type": "nonprivate",
            "flashVer": self.flash_version,
            "tcUrl": tc_url,
        }
        props.update(properties or {})
        self._connect = Command("connect", self._transaction("connect"), props)
        self._chunks.outgoing += self._handshake.data_to_send()
        self.state = ClientState.HANDSHAKE

    def publish(self, name: str, publish_type: str = "live") -> None:
        """releaseStream, FCPublish, createStream; publish follows on its ``_result``."""
        self._require_connected("publish")
        self._call("releaseStream", name)
        self._call("FCPublish", name)
        pending = _Pending("createStream", "publish", name, publish_type)
        self._call_pending(pending)

    def play(self, name: str) -> None:
        """createStream; play follows on its ``_result``."""
        self._require_connected("play")
        self._call_pending(_Pending("createStream", "play", name))

    def send_media(self, message_type: int, timestamp: int, payload: bytes) -> None:
        """An FLV audio (8) or video (9) tag body on the published stream."""
        stream_id = self._require_stream("send_media")
        csid = _MEDIA_CSID.get(message_type, STREAM_CSID)
        self._chunks.send(csid, message_type, stream_id, timestamp, payload)

    def send_metadata(self, metadata: Mapping[str, object], timestamp: int = 0) -> None:
        """``@setDataFrame onMetaData`` as ffmpeg and OBS send it."""
        stream_id = self._require_stream("send_metadata")
        payload = encode_data("@setDataFrame", "onMetaData", EcmaArray(metadata))
        self._chunks.send(STREAM_CSID, MessageType.DATA_AMF0, stream_id, timestamp, payload)

    def unpublish(self) -> None:
        """FCUnpublish and deleteStream, as ffmpeg does at the end of a stream."""
        self._require_stream("unpublish")
        self._call("FCUnpublish", self.stream_name)
        self.close_stream()

    def close_stream(self) -> None:
        """deleteStream: stop publishing or playing."""
        stream_id = self._require_stream("close_stream")
        self._send_command(0, Command("deleteStream", 0, None, (float(stream_id),)))
        self.stream_id = None

    # ----------------------------------------------------------------- internals

    def _require_connected(self, what: str) -> None:
        if self.state is not ClientState.CONNECTED:
            raise LocalProtocolError(f"{what} while {self.state.value}")

    def _require_stream(self, what: str) -> int:
        if self.stream_id is None:
            raise LocalProtocolError(f"{what} without a stream (publish or play first)")
        return self.stream_id

    def _transaction(self, command: str, pending: _Pending | None = None) -> float:
        tid = float(self._next_transaction)
        self._next_transaction += 1
        self._transactions[tid] = pending or _Pending(command)
        return tid

    def _send_command(self, stream_id: int, command: Command) -> None:
        csid = STREAM_CSID if stream_id else COMMAND_CSID
        self._chunks.send(csid, MessageType.COMMAND_AMF0, stream_id, 0, bytes(command))

    def _call(self, name: str, *arguments: object) -> None:
        self._send_command(0, Command(name, self._transaction(name), None, arguments))

    def _call_pending(self, pending: _Pending) -> None:
        tid = self._transaction(pending.command, pending)
        self._send_command(0, Command(pending.command, tid, None))

    def _after_handshake(self) -> None:
        self._chunks.set_chunk_size(self.limits.out_chunk_size)
        if self._connect is not None:
            self._send_command(0, self._connect)
        self.state = ClientState.CONNECTING

    def _dispatch(self, message: RtmpMessage, events: list[ClientEvent]) -> None:
        kind = message.message_type
        if kind in (MessageType.AUDIO, MessageType.VIDEO):
            events.append(MediaMessage(message.stream_id, kind, message.timestamp, message.payload))
        elif kind in (MessageType.DATA_AMF0, MessageType.DATA_AMF3):
            name, values = parse_data(message.payload, amf3=kind == MessageType.DATA_AMF3)
            if name == "@setDataFrame" and values and isinstance(values[0], str):
                name, values = values[0], values[1:]
            events.append(DataMessage(message.stream_id, message.timestamp, name, values))
        elif kind in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
            command = Command.parse(message.payload, amf3=kind == MessageType.COMMAND_AMF3)
            self._on_command(message, command, events)
        elif kind == MessageType.USER_CONTROL:
            control = UserControl.parse(message.payload)
            if control.event_type == UserControlEvent.PING_REQUEST:
                response = UserControl(UserControlEvent.PING_RESPONSE, control.value)
                self._chunks.send(CONTROL_CSID, kind, 0, 0, bytes(response))
        elif kind == MessageType.AGGREGATE:
            for sub in parse_aggregate(message.payload, message.timestamp):
                inner = RtmpMessage(
                    message.csid, sub.message_type, message.stream_id, sub.timestamp, sub.payload
                )
                self._dispatch(inner, events)
        elif kind not in (MessageType.SHARED_OBJECT_AMF0, MessageType.SHARED_OBJECT_AMF3):
            raise RtmpError(f"unknown RTMP message type {kind} on chunk stream {message.csid}")

    def _on_command(self, message: RtmpMessage, cmd: Command, events: list[ClientEvent]) -> None:
        info = cmd.arguments[0] if cmd.arguments else None
        fields = info if isinstance(info, dict) else {}
        if cmd.name == "onStatus":
            events.append(
                StatusReceived(
                    message.stream_id,
                    str(fields.get("level", "")),
                    str(fields.get("code", "")),
                    str(fields.get("description", "")),
                    dict(fields),
                )
            )
            return
        if cmd.name not in ("_result", "_error"):
            logger.debug("rtmp client: ignoring server call %r", cmd.name)
            return
        pending = self._transactions.pop(cmd.transaction_id, None)
        if pending is None:
            return
        ok = cmd.name == "_result"
        if pending.command == "connect":
            self.state = ClientState.CONNECTED if ok else ClientState.CLOSED
            code, description = str(fields.get("code", "")), str(fields.get("description", ""))
            events.append(ConnectResult(ok, code, description, dict(fields)))
        elif not ok:
            events.append(CommandError(pending.command, info))
        elif pending.command == "createStream":
            self._on_stream_created(info, pending, events)

    def _on_stream_created(
        self, value: object, pending: _Pending, events: list[ClientEvent]
    ) -> None:
        # A message stream id is 32 bits (spec 5.3.1.2.1); not NaN, not infinite.
        if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value < 2**32:
            raise RtmpError(f"createStream _result carries no stream id: {value!r}")
        stream_id = self.stream_id = int(value)
        self.stream_name = pending.name
        events.append(StreamCreated(stream_id))
        if pending.then == "publish":
            args: tuple[object, ...] = (pending.name, pending.publish_type)
            self._send_command(stream_id, Command("publish", 0, None, args))
        elif pending.then == "play":
            self._send_command(stream_id, Command("play", 0, None, (pending.name, -2.0)))
            control = UserControl(UserControlEvent.SET_BUFFER_LENGTH, stream_id, PLAY_BUFFER_MS)
            self._chunks.send(CONTROL_CSID, MessageType.USER_CONTROL, 0, 0, bytes(control))
