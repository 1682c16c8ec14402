"""The fuzz targets: one per sans-IO parser, the single home of what fuzzing exercises.

The in-suite hypothesis tests (``tests/fuzz/test_parsers.py``) and the atheris harness
(``python -m tests.fuzz.atheris_main TARGET``) both call :func:`check`, so a crash found
by a long atheris run replays as the same call in the suite.

A target takes the input bytes and a feeding schedule (:data:`~tests.fuzz.contract.Split`:
chunk sizes, cycled; ``()`` is one lump), appends what the parser produced to a list,
and checks the contract of :mod:`tests.fuzz.contract` on the way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from strom.chat.events import decode_room_event
from strom.chat.protocol import Send, clean_text, is_encodable, mentions, parse_command
from strom.errors import ProtocolError
from strom.ingest.upload import control_type, parse_start
from strom.media import aac, av1, h264, jpeg, opus, picture, tracks, vpx
from strom.media.amf import decode_amf0, decode_amf3
from strom.media.containers import ContainerKind, FlvStreamDemuxer, open_demuxer, sniff
from strom.media.flv import FlvDemuxer
from strom.media.hls import LiveHlsStream
from strom.media.model import Frame, Track
from strom.media.rtmp import (
    ChunkReader,
    ChunkWriter,
    ConnectRequest,
    ConnectResult,
    MediaMessage,
    PlayRequest,
    PublishRequest,
    RtmpClientSession,
    RtmpServerSession,
)
from strom.media.rtmp.chunk import ChunkStream
from strom.media.rtmp.handshake import HANDSHAKE_SIZE, ClientHandshake, ServerHandshake
from strom.media.rtmp.messages import (
    AbortMessage,
    Acknowledgement,
    Command,
    MessageType,
    SetChunkSize,
    SetPeerBandwidth,
    UserControl,
    WindowAckSize,
    parse_aggregate,
    parse_data,
)
from tests.fuzz import seeds
from tests.fuzz.contract import (
    FRAME_EXPANSION,
    REPLY_EXPANSION,
    SLACK,
    Output,
    Split,
    attempt,
    check_media,
    check_state,
    check_text,
    derived_split,
    pieces,
)

__all__ = ["TARGETS", "Split", "Target", "check", "derived_split", "run", "tokens"]

# -- RTMP -----------------------------------------------------------------------------------


def rtmp_handshake(data: bytes, split: Split, out: Output) -> None:
    """Both handshakes (server: C0 C1 C2 in; client: S0 S1 S2 in, digest checked)."""
    server = ServerHandshake(seeds.zeros)
    client = ClientHandshake(seeds.zeros, digest=True)
    client.data_to_send()
    for side in (server, client):
        sent = after = 0
        try:
            for piece in pieces(data, split):
                after += len(side.receive_data(piece))
                sent += len(side.data_to_send())
        except ProtocolError as exc:
            out.append(type(exc).__name__)
        assert sent <= 1 + 2 * HANDSHAKE_SIZE, sent
        out.append((side.complete, after))


def rtmp_chunk(data: bytes, split: Split, out: Output) -> None:
    """The chunk stream after the handshake: reassembly and protocol control (5.3, 5.4)."""
    chunks = ChunkStream(ChunkReader(), ChunkWriter())
    calls = 0
    try:
        for piece in pieces(data, split):
            calls += 1
            out += chunks.receive_data(piece)
            check_state(chunks.reader)
    finally:
        payload = sum(len(m.payload) for m in out if not isinstance(m, str))
        assert payload <= len(data), f"{payload} payload bytes from {len(data)}"
        assert len(chunks.outgoing) <= REPLY_EXPANSION * (len(data) + calls) + SLACK


def _answer(session: RtmpServerSession, event: object) -> None:
    """What Strom's ingest answers: accept every connect, publish and play."""
    if isinstance(event, ConnectRequest):
        session.accept_connect()
    elif isinstance(event, PublishRequest):
        session.accept_publish(event.stream_id, channel="fuzz")
    elif isinstance(event, PlayRequest):
        session.accept_play(event.stream_id)


def rtmp_session(data: bytes, split: Split, out: Output) -> None:
    """A whole server session from the first handshake byte, answered like Strom's ingest
    answers it, published media through :class:`FlvDemuxer`."""
    session = RtmpServerSession(random_bytes=seeds.zeros)
    demuxer = FlvDemuxer()
    sent = 0
    try:
        for piece in pieces(data, split):
            events = session.receive_data(piece)
            for event in events:
                out.append(event)
                _answer(session, event)
                if isinstance(event, MediaMessage):
                    if event.message_type == MessageType.VIDEO:
                        out += demuxer.video(event.timestamp, event.payload)
                    else:
                        out += demuxer.audio(event.timestamp, event.payload)
            sent += len(session.data_to_send())
            check_state(session._chunks.reader)
    except ProtocolError as exc:
        session.close_with_error(str(exc))  # what the adapter does; must not fail
        raise
    finally:
        sent += len(session.data_to_send())
        assert sent <= REPLY_EXPANSION * len(data) + SLACK, f"{sent} bytes sent for {len(data)}"
        check_text(out, len(data))
        check_media([i for i in out if isinstance(i, Track | Frame)], len(data))


def rtmp_client(data: bytes, split: Split, out: Output) -> None:
    """Strom's client session (``strom stream``, benchmarks) reading a server's bytes."""
    client = RtmpClientSession(random_bytes=seeds.zeros)
    client.connect("live", "rtmp://strom.invalid/live")
    client.data_to_send()
    sent = 0
    try:
        for piece in pieces(data, split):
            for event in client.receive_data(piece):
                out.append(event)
                if isinstance(event, ConnectResult) and event.accepted:
                    client.publish("key")
            sent += len(client.data_to_send())
    finally:
        assert sent <= REPLY_EXPANSION * len(data) + SLACK, f"{sent} bytes sent for {len(data)}"
        check_text(out, len(data))


def rtmp_messages(data: bytes, split: Split, out: Output) -> None:
    """Every message body parser (control 5.4, user control 7.1.7, commands 7.1.1 in AMF0
    and AMF3 form, data 7.1.2, Aggregate 7.1.6)."""
    for parse in (SetChunkSize, AbortMessage, Acknowledgement, WindowAckSize, SetPeerBandwidth):
        attempt(out, lambda parse=parse: parse.parse(data))  # type: ignore[attr-defined]
    attempt(out, lambda: UserControl.parse(data))
    attempt(out, lambda: Command.parse(data))
    attempt(out, lambda: Command.parse(data, amf3=True))
    attempt(out, lambda: parse_data(data, amf3=True))
    subs = attempt(out, lambda: parse_aggregate(data, 1000))
    if isinstance(subs, list):
        assert sum(len(s.payload) for s in subs) <= len(data)
    check_text(out, len(data))


def amf0(data: bytes, split: Split, out: Output) -> None:
    """AMF0 values (with the AVM+ switch to AMF3), as in every RTMP command."""
    values = decode_amf0(data)
    check_text(values, len(data))
    out += values


def amf3(data: bytes, split: Split, out: Output) -> None:
    """AMF3 values (RTMP's AMF3 command and data messages)."""
    values = decode_amf3(data)
    check_text(values, len(data))
    out += values


# -- FLV and containers ------------------------------------------------------------------------


def flv_payloads(data: bytes, split: Split, out: Output) -> None:
    """RTMP audio/video message bodies through :class:`FlvDemuxer`, framed as records of
    type (odd: video), timestamp (32 bits), length (16 bits), payload."""
    demuxer = FlvDemuxer()
    pos = 0
    try:
        while pos + 7 <= len(data):
            kind = data[pos]
            timestamp = int.from_bytes(data[pos + 1 : pos + 5], "big")
            length = int.from_bytes(data[pos + 5 : pos + 7], "big")
            payload = data[pos + 7 : pos + 7 + length]
            pos += 7 + length
            if kind & 1:
                out += demuxer.video(timestamp, payload)
            else:
                out += demuxer.audio(timestamp, payload)
    finally:
        check_media(out, len(data))


def _demux(make: Callable[[], object], data: bytes, split: Split, out: Output) -> None:
    demuxer = make()
    try:
        for piece in pieces(data, split):
            out += demuxer.feed(piece)  # type: ignore[attr-defined]
            check_state(demuxer)
        flush = getattr(demuxer, "flush", None)
        if flush is not None:
            out += flush()
    finally:
        check_media(out, len(data))


def flv_stream(data: bytes, split: Split, out: Output) -> None:
    """An FLV byte stream pushed over HTTP or TCP (``ffmpeg -f flv``)."""
    _demux(FlvStreamDemuxer, data, split, out)


def webm(data: bytes, split: Split, out: Output) -> None:
    """WebM/Matroska as MediaRecorder uploads it and ``ffmpeg -f webm`` pushes it (EBML)."""
    _demux(lambda: open_demuxer(ContainerKind.WEBM), data, split, out)


def mp4(data: bytes, split: Split, out: Output) -> None:
    """Fragmented MP4 (ISO BMFF): MediaRecorder's, ffmpeg's ``frag_keyframe+empty_moov``."""
    _demux(lambda: open_demuxer(ContainerKind.MP4), data, split, out)


def mpegts(data: bytes, split: Split, out: Output) -> None:
    """MPEG-TS (PAT, PMT, PES; H.264 and ADTS AAC), then the end-of-stream flush."""
    _demux(lambda: open_demuxer(ContainerKind.MPEGTS), data, split, out)


def push(data: bytes, split: Split, out: Output) -> None:
    """What push ingest does with an upload: sniff the container, then demux it."""
    kind = sniff(data[:4096])
    out.append(kind)
    if kind is not None:
        _demux(lambda: open_demuxer(kind), data, split, out)


# -- codec configuration ---------------------------------------------------------------------


def h264_config(data: bytes, split: Split, out: Output) -> None:
    """avcC (14496-15), SPS (14496-10 7.3.2.1.1), NAL length rewriting, Annex B."""
    cfg = attempt(out, lambda: h264.parse_avcc(data))
    if isinstance(cfg, h264.AvcConfig):
        out.append(h264.codec_string(cfg))
        if cfg.pps:
            attempt(out, lambda: h264.build_avcc(cfg.sps[0], cfg.pps[0]))
    attempt(out, lambda: tracks.h264_track(data, 1000))
    attempt(out, lambda: h264.parse_sps(data))
    attempt(out, lambda: h264.normalize_avcc(data))
    attempt(out, lambda: h264.avcc_from_extradata(data))
    for size in (1, 2, 4):
        frame = attempt(out, lambda size=size: h264.to_length_prefixed(data, size))
        if isinstance(frame, bytes):
            assert len(frame) <= FRAME_EXPANSION * len(data)
            out.append(h264.scan_access_unit(frame))
    avcc = attempt(out, lambda: h264.annexb_to_avcc(data))
    if isinstance(avcc, bytes):
        assert len(avcc) <= 2 * len(data)
        out.append(h264.scan_access_unit(avcc))


def aac_config(data: bytes, split: Split, out: Output) -> None:
    """AudioSpecificConfig (14496-3 1.6.2.1) and ADTS headers (1.A.2)."""
    attempt(out, lambda: aac.parse_audio_specific_config(data))
    attempt(out, lambda: tracks.aac_track(data, 1000))
    header = attempt(out, lambda: aac.parse_adts_header(data))
    if isinstance(header, aac.AdtsHeader):
        asc = aac.adts_audio_specific_config(header)
        attempt(out, lambda: tracks.aac_track(asc, 48000))


def opus_config(data: bytes, split: Split, out: Output) -> None:
    """OpusHead (RFC 7845 5.1), dOps, and packet durations (RFC 6716 3.1)."""
    attempt(out, lambda: opus.parse_opus_head(data))
    attempt(out, lambda: opus.dops_from_opus_head(data))
    attempt(out, lambda: opus.parse_dops(data))
    attempt(out, lambda: tracks.opus_track(data, 48000))
    attempt(out, lambda: opus.packet_samples(data))


def vpx_config(data: bytes, split: Split, out: Output) -> None:
    """VP9 uncompressed headers and vpcC, VP8 key frame headers, Matroska's VP9 private."""
    header = attempt(out, lambda: vpx.parse_vp9_header(data))
    if isinstance(header, vpx.Vp9Header) and header.keyframe:
        vpcc = vpx.build_vpcc(header)
        attempt(out, lambda: tracks.vp9_track(vpcc, header.width, header.height, 1000))
    attempt(out, lambda: vpx.parse_vpcc(data))
    attempt(out, lambda: tracks.vp9_track(data, 320, 240, 1000))
    out.append(vpx.vp8_is_keyframe(data))
    attempt(out, lambda: vpx.vp8_picture_size(data))
    out.append(vpx.matroska_vp9_level(data))


def av1_config(data: bytes, split: Split, out: Output) -> None:
    """av1C, temporal units in the low-overhead format, sequence header OBUs."""
    cfg = attempt(out, lambda: av1.parse_av1c(data))
    if isinstance(cfg, av1.Av1Config):
        out.append(av1.codec_string(cfg))
    attempt(out, lambda: tracks.av1_track(data, 320, 240, 1000))
    units = attempt(out, lambda: av1.obus(data))
    if isinstance(units, list):
        assert sum(len(obu) for _, obu in units) <= len(data)
    found = attempt(out, lambda: av1.config_from_temporal_unit(data))
    if isinstance(found, av1.Av1Config):
        record = av1.build_av1c(found)
        attempt(out, lambda: tracks.av1_track(record, found.width, found.height, 1000))
    attempt(out, lambda: av1.parse_sequence_header(data))


def jpeg_header(data: bytes, split: Split, out: Output) -> None:
    """A JPEG's frame header, read before anything decodes the picture (T.81 B.2); and
    any picture's (PNG, WebP) the same way."""
    attempt(out, lambda: jpeg.parse_jpeg_header(data))
    attempt(out, lambda: picture.parse_picture_header(data))


# -- text protocols ----------------------------------------------------------------------------

#: ``chat_max_frame_bytes``' default
CHAT_MAX_FRAME = 8192


def chat_command(data: bytes, split: Split, out: Output) -> None:
    """A chat client's frame (``/chat/{channel}/ws``), as bytes and as the text aiohttp
    would hand over."""
    for frame in (data, data.decode("utf-8", "replace")):
        command = attempt(out, lambda frame=frame: parse_command(frame, CHAT_MAX_FRAME))
        if isinstance(command, Send):
            text = clean_text(command.text)
            out += [text, is_encodable(text), mentions(text)]
    check_text(out, len(data))


def chat_room_event(data: bytes, split: Split, out: Output) -> None:
    """A room event from the bus between processes (Redis)."""
    attempt(out, lambda: decode_room_event(data))


def ingest_upload(data: bytes, split: Split, out: Output) -> None:
    """The text messages of ``/ingest/ws``: the start message, and the control messages."""
    for text in (data, data.decode("utf-8", "replace")):
        attempt(out, lambda text=text: parse_start(text))
        out.append(control_type(text))


_HLS = LiveHlsStream()


def hls_name(data: bytes, split: Split, out: Output) -> None:
    """The last path component of an LL-HLS request: segment, part or init segment."""
    out.append(_HLS.parse_name(data.decode("utf-8", "replace")))


# -- the table ---------------------------------------------------------------------------------


DICTIONARIES = Path(__file__).resolve().parent / "dicts"


@functools.cache
def tokens(dictionary: str) -> tuple[bytes, ...]:
    """The tokens of a libFuzzer dictionary in ``tests/fuzz/dicts/`` (``name="\\xNN..."``
    lines): command names, markers, IDs and special values that random mutation rarely
    spells."""
    out = []
    for line in (DICTIONARIES / f"{dictionary}.dict").read_text().splitlines():
        if line.startswith("#") or '"' not in line:
            continue
        quoted = line[line.index('"') + 1 : line.rindex('"')]
        out.append(quoted.encode("latin-1").decode("unicode_escape").encode("latin-1"))
    return tuple(out)


@dataclass(frozen=True)
class Target:
    name: str
    feed: Callable[[bytes, Split, Output], None]
    seeds: Callable[[], Sequence[bytes]]
    #: the dictionary of tokens (``tests/fuzz/dicts/NAME.dict``) both fuzzers use
    dictionary: str = "media"
    #: the input is a byte stream fed in pieces (the split matters, and must not)
    streaming: bool = False
    #: one result whatever the split; False where the application's answers interleave
    #: with the input and may change it (a client publishes once connected)
    split_invariant: bool = True

    @property
    def doc(self) -> str:
        return " ".join((self.feed.__doc__ or self.name).split("\n\n")[0].split())


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "rtmp_handshake",
            rtmp_handshake,
            seeds.rtmp_handshakes,
            streaming=True,
            dictionary="rtmp",
        ),
        Target(
            "rtmp_chunk", rtmp_chunk, seeds.rtmp_chunk_streams, streaming=True, dictionary="rtmp"
        ),
        Target(
            "rtmp_session", rtmp_session, seeds.rtmp_captures, streaming=True, dictionary="rtmp"
        ),
        Target(
            "rtmp_client",
            rtmp_client,
            seeds.rtmp_server_replies,
            streaming=True,
            split_invariant=False,
            dictionary="rtmp",
        ),
        Target("rtmp_messages", rtmp_messages, seeds.rtmp_payloads, dictionary="rtmp"),
        Target("amf0", amf0, seeds.amf0_payloads, dictionary="rtmp"),
        Target("amf3", amf3, seeds.amf3_payloads, dictionary="rtmp"),
        Target("flv_payloads", flv_payloads, seeds.flv_payload_records, dictionary="rtmp"),
        Target("flv_stream", flv_stream, seeds.flv_streams, streaming=True),
        Target("webm", webm, lambda: seeds.container_seeds(".webm", ".mkv"), streaming=True),
        Target("mp4", mp4, lambda: seeds.container_seeds(".mp4"), streaming=True),
        Target("mpegts", mpegts, lambda: seeds.container_seeds(".ts"), streaming=True),
        Target("push", push, lambda: list(seeds.containers().values()), streaming=True),
        Target("h264", h264_config, seeds.h264_seeds),
        Target("aac", aac_config, seeds.aac_seeds),
        Target("opus", opus_config, seeds.opus_seeds),
        Target("vpx", vpx_config, seeds.vpx_seeds),
        Target("av1", av1_config, seeds.av1_seeds),
        Target("jpeg", jpeg_header, seeds.jpeg_seeds),
        Target("chat_command", chat_command, seeds.chat_commands, dictionary="text"),
        Target("chat_room_event", chat_room_event, seeds.room_events, dictionary="text"),
        Target("ingest_upload", ingest_upload, seeds.upload_messages, dictionary="text"),
        Target("hls_name", hls_name, seeds.hls_names, dictionary="text"),
    )
}


def run(target: Target, data: bytes, split: Split) -> tuple[Output, str | None]:
    """What ``target`` produced for ``data`` fed as ``split``, and the protocol error that
    ended it (its class name), if any. Any other exception propagates: a bug."""
    out: Output = []
    try:
        target.feed(data, split, out)
    except ProtocolError as exc:
        return out, type(exc).__name__
    return out, None


def check(target: Target, data: bytes, split: Split = ()) -> None:
    """Feed ``data`` as ``split`` and in one lump: only protocol errors, the invariants in
    the module docstring, and one result whatever the split."""
    out, error = run(target, data, split)
    if not target.streaming or not target.split_invariant or not split:
        return
    whole, whole_error = run(target, data, ())
    # Which error ends a broken stream may depend on the split (an RTMP chunk stream is
    # reassembled a whole call at a time before its messages are handled), but not
    # whether one does.
    assert (error is None) == (whole_error is None), (
        f"split {split} ends with {error}, one lump with {whole_error}"
    )
    if error is None:
        assert repr(out) == repr(whole), f"split {split} and one lump give different results"
