"""RTMP message types and their payloads (RTMP spec 1.0, sections 5.4, 6.2 and 7).

Each control message is a frozen dataclass with ``parse(payload)`` and ``bytes(msg)``.
Commands and data messages are AMF0 value lists (or, for types 17 and 15, a format byte
0 followed by AMF0 values that may switch to AMF3 per value).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Final, Self

from strom.errors import AmfError, RtmpError
from strom.media.amf import decode_amf0, encode_amf0


class MessageType(enum.IntEnum):
    """RTMP message type ids (spec sections 5.4, 6.2, 7.1)."""

    SET_CHUNK_SIZE = 1
    ABORT = 2
    ACKNOWLEDGEMENT = 3
    USER_CONTROL = 4
    WINDOW_ACK_SIZE = 5
    SET_PEER_BANDWIDTH = 6
    AUDIO = 8
    VIDEO = 9
    DATA_AMF3 = 15
    SHARED_OBJECT_AMF3 = 16
    COMMAND_AMF3 = 17
    DATA_AMF0 = 18
    SHARED_OBJECT_AMF0 = 19
    COMMAND_AMF0 = 20
    AGGREGATE = 22


MESSAGE_TYPE_AUDIO: Final = 8
MESSAGE_TYPE_VIDEO: Final = 9
MESSAGE_TYPE_DATA_AMF0: Final = 18

#: Chunk stream ids we send on. Spec 5.4: protocol control goes on csid 2; the rest is
#: convention (the same numbers ffmpeg uses, so captures look familiar).
CONTROL_CSID: Final = 2
COMMAND_CSID: Final = 3
AUDIO_CSID: Final = 4
STREAM_CSID: Final = 5  # onStatus and data messages on a media stream
VIDEO_CSID: Final = 6

_U32 = struct.Struct(">I")


def _u32(payload: bytes, what: str) -> int:
    if len(payload) < 4:
        raise RtmpError(f"{what} message too short: {len(payload)} bytes, need 4")
    return int(_U32.unpack_from(payload)[0])


@dataclass(frozen=True, slots=True)
class SetChunkSize:
    """Spec 5.4.1. Bit 31 must be zero; valid sizes are 1..0x7FFFFFFF."""

    size: int

    @classmethod
    def parse(cls, payload: bytes) -> Self:
        size = _u32(payload, "Set Chunk Size")
        if size == 0 or size & 0x80000000:
            raise RtmpError(f"invalid chunk size {size:#x} in Set Chunk Size")
        return cls(size)

    def __bytes__(self) -> bytes:
        return _U32.pack(self.size)


@dataclass(frozen=True, slots=True)
class AbortMessage:
    """Spec 5.4.2: discard the partly received message on ``csid``."""

    csid: int

    @classmethod
    def parse(cls, payload: bytes) -> Self:
        return cls(_u32(payload, "Abort"))

    def __bytes__(self) -> bytes:
        return _U32.pack(self.csid)


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Spec 5.4.3: the number of bytes received so far (mod 2**32)."""

    sequence_number: int

    @classmethod
    def parse(cls, payload: bytes) -> Self:
        return cls(_u32(payload, "Acknowledgement"))

    def __bytes__(self) -> bytes:
        return _U32.pack(self.sequence_number & 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class WindowAckSize:
    """Spec 5.4.4: acknowledge after every ``size`` bytes received."""

    size: int

    @classmethod
    def parse(cls, payload: bytes) -> Self:
        return cls(_u32(payload, "Window Acknowledgement Size"))

    def __bytes__(self) -> bytes:
        return _U32.pack(self.size)


class BandwidthLimit(enum.IntEnum):
    HARD = 0
    SOFT = 1
    DYNAMIC = 2


@dataclass(frozen=True, slots=True)
class SetPeerBandwidth:
    """Spec 5.4.5."""

    size: int
    limit_type: int = BandwidthLimit.DYNAMIC

    @classmethod
    def parse(cls, payload: bytes) -> Self:
        size = _u32(payload, "Set Peer Bandwidth")
        return cls(size, payload[4] if len(payload) > 4 else BandwidthLimit.DYNAMIC)

    def __bytes__(self) -> bytes:
        return _U32.pack(self.size) + bytes((self.limit_type,))


class UserControlEvent(enum.IntEnum):
    """Spec 7.1.7 (event types of the User Control message)."""

    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7


@dataclass(frozen=True, slots=True)
class UserControl:
    """Spec 6.2 / 7.1.7: a 16-bit event type and event data.

    ``value`` is the stream id or the ping timestamp; ``buffer_length`` is the extra
    field of Set Buffer Length. Unknown event types are kept, not rejected.
    """

    event_type: int
    value: int = 0
    buffer_length: int = 0

    @classmethod
    def parse(cls, payload: bytes) -> Self:
        if len(payload) < 2:
            raise RtmpError(f"User Control message too short: {len(payload)} bytes")
        event_type = int.from_bytes(payload[:2], "big")
        value = int.from_bytes(payload[2:6], "big") if len(payload) >= 6 else 0
        buffer_length = 0
        if event_type == UserControlEvent.SET_BUFFER_LENGTH and len(payload) >= 10:
            buffer_length = int.from_bytes(payload[6:10], "big")
        return cls(event_type, value, buffer_length)

    def __bytes__(self) -> bytes:
        out = self.event_type.to_bytes(2, "big") + (self.value & 0xFFFFFFFF).to_bytes(4, "big")
        if self.event_type == UserControlEvent.SET_BUFFER_LENGTH:
            out += self.buffer_length.to_bytes(4, "big")
        return out


def _amf_values(payload: bytes, amf3: bool) -> list[object]:
    # Types 17/15 start with a format selector byte 0, then AMF0 values (which may
    # switch to AMF3 with the avmplus marker). Some encoders leave the byte out.
    if amf3 and payload[:1] == b"\x00":
        payload = payload[1:]
    return decode_amf0(payload)


@dataclass(frozen=True, slots=True)
class Command:
    """Spec 7.1.1: a command name, a transaction id, a command object, arguments."""

    name: str
    transaction_id: float = 0.0
    command_object: object = None
    arguments: tuple[object, ...] = field(default=())

    @classmethod
    def parse(cls, payload: bytes, *, amf3: bool = False) -> Self:
        values = _amf_values(payload, amf3)
        if not values or not isinstance(values[0], str):
            raise AmfError("command message does not start with a command name string")
        transaction_id = values[1] if len(values) > 1 else 0.0
        if isinstance(transaction_id, bool) or not isinstance(transaction_id, int | float):
            raise AmfError(f"command {values[0]!r} has a non-numeric transaction id")
        return cls(
            values[0],
            float(transaction_id),
            values[2] if len(values) > 2 else None,
            tuple(values[3:]),
        )

    def __bytes__(self) -> bytes:
        return encode_amf0(self.name, self.transaction_id, self.command_object, *self.arguments)


def parse_data(payload: bytes, *, amf3: bool = False) -> tuple[str, list[object]]:
    """Spec 7.1.2: a data message is a name followed by values."""
    values = _amf_values(payload, amf3)
    if not values or not isinstance(values[0], str):
        raise AmfError("data message does not start with a name string")
    return values[0], values[1:]


def encode_data(name: str, *values: object) -> bytes:
    return encode_amf0(name, *values)


def status_info(level: str, code: str, description: str, **extra: object) -> dict[str, object]:
    """The information object of ``onStatus`` / ``_result`` / ``_error`` (spec 7.2)."""
    return {"level": level, "code": code, "description": description, **extra}


@dataclass(frozen=True, slots=True)
class SubMessage:
    message_type: int
    timestamp: int
    payload: bytes


def parse_aggregate(payload: bytes, timestamp: int) -> list[SubMessage]:
    """Spec 7.1.6: FLV-tag-shaped sub-messages, re-based on the aggregate's timestamp."""
    out: list[SubMessage] = []
    pos = 0
    base: int | None = None
    while pos < len(payload):
        if len(payload) - pos < 11:
            raise RtmpError("truncated sub-message header in Aggregate message")
        raw_type = payload[pos]
        size = int.from_bytes(payload[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(payload[pos + 4 : pos + 7], "big") | payload[pos + 7] << 24
        end = pos + 11 + size
        if end + 4 > len(payload):
            raise RtmpError("sub-message of Aggregate message overruns it")
        if base is None:
            base = ts
        out.append(
            SubMessage(raw_type, (timestamp + ts - base) & 0xFFFFFFFF, payload[pos + 11 : end])
        )
        pos = end + 4  # skip the back pointer
    return out
