"""RTMP, sans-IO: handshake, chunk stream, commands; server and client sessions."""

from strom.media.rtmp.chunk import ChunkReader, ChunkWriter, RtmpMessage, encode_message
from strom.media.rtmp.client import ClientState, RtmpClientSession
from strom.media.rtmp.events import (
    ClientEvent,
    CommandError,
    ConnectRequest,
    ConnectResult,
    DataMessage,
    MediaMessage,
    PlayRequest,
    PublishRequest,
    RtmpEvent,
    ServerEvent,
    StatusReceived,
    StopPlayRequest,
    StreamCreated,
    UnpublishRequest,
)
from strom.media.rtmp.limits import RtmpLimits
from strom.media.rtmp.messages import (
    AUDIO_CSID,
    MESSAGE_TYPE_AUDIO,
    MESSAGE_TYPE_DATA_AMF0,
    MESSAGE_TYPE_VIDEO,
    VIDEO_CSID,
    MessageType,
)
from strom.media.rtmp.session import RtmpServerSession, SessionState, StreamState

__all__ = [
    "AUDIO_CSID",
    "MESSAGE_TYPE_AUDIO",
    "MESSAGE_TYPE_DATA_AMF0",
    "MESSAGE_TYPE_VIDEO",
    "VIDEO_CSID",
    "ChunkReader",
    "ChunkWriter",
    "ClientEvent",
    "ClientState",
    "CommandError",
    "ConnectRequest",
    "ConnectResult",
    "DataMessage",
    "MediaMessage",
    "MessageType",
    "PlayRequest",
    "PublishRequest",
    "RtmpClientSession",
    "RtmpEvent",
    "RtmpLimits",
    "RtmpMessage",
    "RtmpServerSession",
    "ServerEvent",
    "SessionState",
    "StatusReceived",
    "StopPlayRequest",
    "StreamCreated",
    "StreamState",
    "UnpublishRequest",
    "encode_message",
]
