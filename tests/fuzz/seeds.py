"""Seed inputs for the fuzz targets, taken from golden captures of real clients.

RTMP sessions of ffmpeg and GStreamer (``tests/data/*.rtmp``), browsers' MediaRecorder
uploads (``tests/data/mediarecorder_*``) and ffmpeg's FLV, MPEG-TS, Matroska and
fragmented MP4 (``tests/data/fuzz/``, see ``make_fuzz_seeds.py`` there). The codec
configuration seeds (avcC, AudioSpecificConfig, dOps, vpcC, av1C, ...) and first frames
are what Strom's own demuxers read out of those captures, so every seed is something a
real encoder wrote. Built once per process.
"""

from __future__ import annotations

import functools
import struct
from pathlib import Path

from strom.chat.events import (
    ChatCleared,
    LikesAdded,
    MessagePosted,
    ModesChanged,
    RoomModes,
    UserRestricted,
    dumps,
    encode_room_event,
)
from strom.chat.protocol import (
    Ban,
    Delete,
    GetModLog,
    Ping,
    Send,
    SetBlockedWords,
    SetModes,
    Timeout,
    command_to_json,
)
from strom.media import aac, av1, h264
from strom.media.amf import decode_amf0, encode_amf3
from strom.media.containers import open_demuxer, sniff
from strom.media.model import Codec, Frame, Track
from strom.media.rtmp import (
    ChunkReader,
    ConnectRequest,
    PlayRequest,
    PublishRequest,
    RtmpClientSession,
    RtmpMessage,
    RtmpServerSession,
)
from strom.media.rtmp.handshake import HANDSHAKE_SIZE
from strom.media.rtmp.messages import MessageType
from tests.media.hevc_records import PPS, SPS, VPS, hvcc

DATA = Path(__file__).resolve().parents[1] / "data"
FUZZ_DATA = DATA / "fuzz"
RTMP_HANDSHAKE_BYTES = 1 + 2 * HANDSHAKE_SIZE  # C0 + C1 + C2


def zeros(n: int) -> bytes:
    """Deterministic "random" bytes for handshakes, so runs repeat exactly."""
    return bytes(n)


# -- RTMP ---------------------------------------------------------------------------------


@functools.cache
def rtmp_captures() -> tuple[bytes, ...]:
    return tuple(p.read_bytes() for p in sorted(DATA.glob("*.rtmp")))


def rtmp_handshakes() -> list[bytes]:
    """C0 C1 C2 of each capture (plain and digest handshakes)."""
    return [c[:RTMP_HANDSHAKE_BYTES] for c in rtmp_captures()]


def rtmp_chunk_streams() -> list[bytes]:
    """Each capture after its handshake: the chunk stream."""
    return [c[RTMP_HANDSHAKE_BYTES:] for c in rtmp_captures()]


@functools.cache
def rtmp_messages() -> tuple[RtmpMessage, ...]:
    """Every message of every capture, reassembled."""
    out: list[RtmpMessage] = []
    for capture in rtmp_captures():
        out += ChunkReader().receive_data(capture[RTMP_HANDSHAKE_BYTES:])
    return tuple(out)


def _media(limit: int) -> list[RtmpMessage]:
    """The first ``limit`` audio/video messages of each capture (sequence headers first)."""
    out: list[RtmpMessage] = []
    for capture in rtmp_captures():
        messages = ChunkReader().receive_data(capture[RTMP_HANDSHAKE_BYTES:])
        media = [m for m in messages if m.message_type in (MessageType.AUDIO, MessageType.VIDEO)]
        out += media[:limit]
    return out


@functools.cache
def rtmp_payloads() -> tuple[bytes, ...]:
    """Message bodies of every kind but media (control, user control, commands, data),
    and an Aggregate message made of a capture's first media messages."""
    seen: dict[bytes, None] = {}
    for m in rtmp_messages():
        if m.message_type not in (MessageType.AUDIO, MessageType.VIDEO):
            seen.setdefault(m.payload)
    return (*seen, aggregate(_media(6)))


def aggregate(messages: list[RtmpMessage]) -> bytes:
    """An Aggregate message body (RTMP spec 7.1.6): FLV-tag-shaped sub-messages."""
    return b"".join(flv_tag(m.message_type, m.timestamp, m.payload) for m in messages)


@functools.cache
def amf0_payloads() -> tuple[bytes, ...]:
    kinds = (MessageType.COMMAND_AMF0, MessageType.DATA_AMF0)
    seen = {m.payload: None for m in rtmp_messages() if m.message_type in kinds}
    return tuple(seen)


@functools.cache
def amf3_payloads() -> tuple[bytes, ...]:
    """The captures' commands and metadata, re-encoded as AMF3 (no client sends AMF3)."""
    out = []
    for payload in amf0_payloads():
        out.append(encode_amf3(*decode_amf0(payload)))
    out.append(encode_amf3([1, 2.5, "a", "a", b"\x00\x01", {"k": [True, None]}]))
    return tuple(out)


def _respond(session: RtmpServerSession, data: bytes) -> bytes:
    for event in session.receive_data(data):
        if isinstance(event, ConnectRequest):
            session.accept_connect()
        elif isinstance(event, PublishRequest):
            session.accept_publish(event.stream_id)
        elif isinstance(event, PlayRequest):
            session.accept_play(event.stream_id)
    return session.data_to_send()


@functools.cache
def rtmp_server_replies() -> tuple[bytes, ...]:
    """What Strom's server sends a client that publishes, and one that plays: the input
    of :class:`RtmpClientSession` (a Strom client, a relay's pull)."""
    out = []
    for mode in ("publish", "play"):
        client = RtmpClientSession(random_bytes=zeros)
        server = RtmpServerSession(random_bytes=zeros)
        client.connect("live", "rtmp://strom.invalid/live")
        received = bytearray()
        for _ in range(8):
            reply = _respond(server, client.data_to_send())
            received += reply
            events = client.receive_data(reply)
            if any(getattr(e, "accepted", False) for e in events):
                getattr(client, mode)("key")
        if mode == "play":  # and some media for the player
            for m in _media(4)[:4]:
                server.send_media(1, m.message_type, m.timestamp, m.payload)
            received += server.data_to_send()
        out.append(bytes(received))
    return tuple(out)


# -- FLV ----------------------------------------------------------------------------------


def flv_tag(kind: int, timestamp: int, payload: bytes) -> bytes:
    """One FLV tag and its PreviousTagSize (FLV spec E.4.1, E.3)."""
    header = (
        bytes((kind,))
        + len(payload).to_bytes(3, "big")
        + (timestamp & 0xFFFFFF).to_bytes(3, "big")
        + bytes((timestamp >> 24 & 0xFF,))
        + bytes(3)
    )
    return header + payload + struct.pack(">I", 11 + len(payload))


FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + bytes(4)


@functools.cache
def flv_streams() -> tuple[bytes, ...]:
    """ffmpeg's FLV file, and each RTMP capture's first media as an FLV stream."""
    out = [(FUZZ_DATA / "ffmpeg_h264_aac.flv").read_bytes()]
    for capture in rtmp_captures():
        messages = ChunkReader().receive_data(capture[RTMP_HANDSHAKE_BYTES:])
        tags = [
            flv_tag(m.message_type, m.timestamp, m.payload)
            for m in messages
            if m.message_type in (MessageType.AUDIO, MessageType.VIDEO)
        ]
        out.append(FLV_HEADER + b"".join(tags[:24]))
    return tuple(out)


def payload_record(message_type: int, timestamp: int, payload: bytes) -> bytes:
    """The framing of the ``flv_payloads`` target: type, timestamp, length, payload."""
    return struct.pack(">BIH", message_type, timestamp, len(payload)) + payload


@functools.cache
def flv_payload_records() -> tuple[bytes, ...]:
    """Sequences of RTMP audio/video payloads, as :class:`FlvDemuxer` gets them."""
    out = []
    for capture in rtmp_captures():
        messages = ChunkReader().receive_data(capture[RTMP_HANDSHAKE_BYTES:])
        media = [m for m in messages if m.message_type in (MessageType.AUDIO, MessageType.VIDEO)]
        out.append(b"".join(payload_record(m.message_type, m.timestamp, m.payload[:4000])
                            for m in media[:12]))  # fmt: skip
    out.append(b"".join(payload_record(kind, ts, p) for kind, ts, p in _ENHANCED_RTMP))
    return tuple(out)


_NALS = b"\x00\x00\x00\x03\x26\x01\xaf"
_OPUS_HEAD = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
#: Enhanced RTMP as FFmpeg 8 and OBS send it: HEVC, AV1 and Opus by FourCC, a ModEx
#: wrapper, and a multitrack payload (tracks 1 and 0, each with its size).
_ENHANCED_RTMP = (
    (MessageType.VIDEO, 0, b"\x90hvc1" + hvcc(VPS, SPS, PPS)),
    (MessageType.VIDEO, 0, b"\x91hvc1\x00\x00\x21" + _NALS),
    (MessageType.VIDEO, 33, b"\x97\x02\x00\x01\x02\x03hvc1" + _NALS),
    (MessageType.VIDEO, 66, b"\x96\x13hvc1\x01\x00\x00\x02\x00\x00\x00\x00\x00\x07" + _NALS),
    (MessageType.AUDIO, 0, b"\x90Opus" + _OPUS_HEAD),
    (MessageType.AUDIO, 0, b"\x94Opus\x01\x02\x00\x00\x00\x03"),
    (MessageType.AUDIO, 20, b"\x91Opus\xfc\xff\xfe"),
    (
        MessageType.VIDEO,
        99,
        b"\x90av01\x81\x00\x0c\x00\x0a\x0b\x00\x00\x00\x04\x3c\xff\xbc\x02\xf8\x00\x40",
    ),
    (MessageType.VIDEO, 132, b"\x91av01\x12\x00\x32\x01\x00"),
)


# -- containers ----------------------------------------------------------------------------


@functools.cache
def containers() -> dict[str, bytes]:
    """Every golden container capture, by file name."""
    paths = [*sorted(DATA.glob("mediarecorder_*")), *sorted(FUZZ_DATA.glob("ffmpeg_h264_aac.*"))]
    return {p.name: p.read_bytes() for p in paths if p.suffix != ".py"}


def container_seeds(*suffixes: str) -> tuple[bytes, ...]:
    return tuple(data for name, data in containers().items() if name.endswith(suffixes))


@functools.cache
def demuxed() -> tuple[Track | Frame, ...]:
    """Everything the container captures demux to (tracks and frames of every codec)."""
    out: list[Track | Frame] = []
    for data in containers().values():
        kind = sniff(data[:4096])
        assert kind is not None
        demuxer = open_demuxer(kind)
        out += demuxer.feed(data)
        flush = getattr(demuxer, "flush", None)
        if flush is not None:
            out += flush()
    return tuple(out)


def configs(codec: Codec) -> list[bytes]:
    return list({t.config: None for t in demuxed() if isinstance(t, Track) and t.codec is codec})


def first_frames(codec: Codec, count: int = 3, size: int = 2048) -> list[bytes]:
    """The first ``count`` frames of each ``codec`` track, cut to ``size`` bytes."""
    out = []
    track_codec: dict[int, Codec] = {}
    seen: dict[int, int] = {}
    for item in demuxed():
        if isinstance(item, Track):
            track_codec[item.id] = item.codec
            seen[item.id] = 0
        elif track_codec.get(item.track_id) is codec and seen[item.track_id] < count:
            seen[item.track_id] += 1
            out.append(item.data[:size])
    return list(dict.fromkeys(out))


def _annexb(avcc_frame: bytes) -> bytes:
    out, pos = [], 0
    while pos + 4 <= len(avcc_frame):
        size = int.from_bytes(avcc_frame[pos : pos + 4], "big")
        out.append(b"\x00\x00\x00\x01" + avcc_frame[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return b"".join(out)


@functools.cache
def h264_seeds() -> tuple[bytes, ...]:
    records = configs(Codec.H264)
    sps = [s for r in records for s in h264.parse_avcc(r).sps]
    frames = first_frames(Codec.H264)
    return (*records, *sps, *frames, *(_annexb(f) for f in frames[:3]))


def _adts(asc: bytes, frame: bytes) -> bytes:
    cfg = aac.parse_audio_specific_config(asc)
    index = aac.SAMPLE_RATES.index(cfg.sample_rate) if cfg.sample_rate in aac.SAMPLE_RATES else 4
    size = 7 + len(frame)
    header = (
        0xFFF << 44 | 1 << 40 | (cfg.object_type - 1) << 38 | index << 34 | cfg.channels << 30
    ) | size << 13 | 0x7FF << 2  # fmt: skip
    return header.to_bytes(7, "big") + frame


@functools.cache
def aac_seeds() -> tuple[bytes, ...]:
    records = configs(Codec.AAC)
    frames = first_frames(Codec.AAC, count=2, size=400)
    # HE-AAC v1/v2 (explicit SBR/PS), a 960-sample frame, a program config element.
    extra = [bytes.fromhex("2b920800"), bytes.fromhex("eb098800"), bytes.fromhex("1214"),
             bytes.fromhex("1200050848001c80")]  # fmt: skip
    adts = [_adts(records[0], f) for f in frames]
    return (*records, *extra, *adts)


@functools.cache
def opus_seeds() -> tuple[bytes, ...]:
    dops = configs(Codec.OPUS)
    heads = []
    for body in dops:
        _, channels, pre_skip, rate, gain, family = struct.unpack_from(">BBHIhB", body)
        fields = (1, channels, pre_skip, rate, gain, family)
        heads.append(b"OpusHead" + struct.pack("<BBHIhB", *fields) + body[11:])
    surround = (
        b"OpusHead"
        + struct.pack("<BBHIhB", 1, 6, 312, 48000, 0, 1)
        + bytes((4, 2, 0, 4, 1, 2, 3, 5))
    )
    return (*dops, *heads, surround, *first_frames(Codec.OPUS, count=2, size=200))


@functools.cache
def vpx_seeds() -> tuple[bytes, ...]:
    vp9 = first_frames(Codec.VP9, count=2, size=64)
    vp8 = first_frames(Codec.VP8, count=2, size=64)
    private = bytes((1, 1, 0, 2, 1, 31, 3, 1, 8, 4, 1, 1))  # Matroska VP9 codec features
    return (*configs(Codec.VP9), *vp9, *vp8, private)


@functools.cache
def av1_seeds() -> tuple[bytes, ...]:
    records = configs(Codec.AV1)
    frames = first_frames(Codec.AV1, count=2, size=4096)
    headers = [obu for f in frames for kind, obu in av1.obus(f) if kind == av1.OBU_SEQUENCE_HEADER]
    return (*records, *frames, *headers)


@functools.cache
def jpeg_seeds() -> tuple[bytes, ...]:
    return ((FUZZ_DATA / "ffmpeg_48x32.jpg").read_bytes(),)


# -- text protocols --------------------------------------------------------------------------


@functools.cache
def chat_commands() -> tuple[bytes, ...]:
    commands = [
        Send("hello @alice and @bob-2 https://example.org", "n1"),
        Delete(42),
        Timeout("guest-123456", 600, "spam", "n2"),
        Ban("@mallory", "abuse"),
        SetModes(slow_mode=30, followers_only=True, followers_min_minutes=10),
        SetBlockedWords(("spoiler", "bad phrase")),
        GetModLog(20),
        Ping("p"),
    ]
    out = [dumps(command_to_json(c)) for c in commands]
    out += [b'{"type":"like"}', b'{"type":"clear","nonce":"x"}', b'{"type":"unban","user":"a"}']
    return tuple(out)


@functools.cache
def room_events() -> tuple[bytes, ...]:
    events = [
        MessagePosted(
            7, "alice", False, ("owner",), "hi @bob", ("bob",), 1_700_000_000_000, "n", 3
        ),
        ChatCleared("alice"),
        UserRestricted("bob", "u:4", None, "alice", "spam"),
        ModesChanged(RoomModes(slow_mode=5, blocked_words=("x",)), "alice"),
        LikesAdded(3),
    ]
    return tuple(encode_room_event(e) for e in events)


@functools.cache
def upload_messages() -> tuple[bytes, ...]:
    return (
        b'{"type":"start","mime":"video/webm;codecs=vp9,opus"}',
        b'{"type":"start","mime":"video/mp4","key":"alice-secret-key-1234"}',
        b'{"type":"start"}',
        b'{"type":"stop"}',
    )


@functools.cache
def hls_names() -> tuple[bytes, ...]:
    return (b"seg12.m4s", b"part12.3.m4s", b"init-1.mp4", b"init.mp4", b"playlist.m3u8")
