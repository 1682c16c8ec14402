"""RTMP play: a channel followed by an RTMP player (ffplay, VLC, mobile players).

Each chunk's FLV tag is chunked into RTMP once (fmt-0 header, absolute timestamp, our
fixed outgoing chunk size and message stream 1) and the same bytes are written to every
player using stream id 1, which is what every player gets from its first createStream.

Only H.264 and AAC travel over RTMP play (:func:`strom.media.flv.can_carry`): a channel
pushed as H.264 + Opus (a browser's MP4 recording) plays as video only, and a channel with
no track FLV can carry (VP9/AV1 + Opus) refuses the player with ``NetStream.Play.Failed``
saying why, then closes the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from strom.delivery.backpressure import BackpressureGate, Verdict, ViewerLimits
from strom.live.channel import Channel, Chunk
from strom.media import flv
from strom.media.model import Frame, Track, TrackKind
from strom.media.rtmp import (
    AUDIO_CSID,
    MESSAGE_TYPE_AUDIO,
    MESSAGE_TYPE_VIDEO,
    VIDEO_CSID,
    RtmpServerSession,
    encode_message,
)

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

SHARED_STREAM_ID = 1


def _ms(value: int, track: Track) -> int:
    return value * 1000 // track.timescale & 0xFFFFFFFF


def _encode(track: Track, frame: Frame, stream_id: int, chunk_size: int) -> bytes:
    if track.kind is TrackKind.VIDEO:
        return encode_message(
            VIDEO_CSID, MESSAGE_TYPE_VIDEO, stream_id, _ms(frame.dts, track),
            flv.video_frame(frame), chunk_size,
        )  # fmt: skip
    return encode_message(
        AUDIO_CSID, MESSAGE_TYPE_AUDIO, stream_id, _ms(frame.dts, track),
        flv.audio_frame(track, frame), chunk_size,
    )  # fmt: skip


def rtmp_message(chunk: Chunk, stream_id: int, chunk_size: int) -> bytes | None:
    """The chunked RTMP messages carrying ``chunk``'s frames as FLV tags."""
    if not chunk.frames:  # relayed chunks carry no frames
        return None
    shared = stream_id == SHARED_STREAM_ID
    if shared and chunk.rtmp_message is not None:
        return chunk.rtmp_message
    data = b"".join(
        _encode(t, f, stream_id, chunk_size) for t, f in chunk.frames if flv.can_carry(t)
    )
    if not data:
        return None
    if shared:
        chunk.rtmp_message = data
    return data


class RtmpPlayer:
    """One RTMP player of one channel (a :class:`~strom.live.channel.Subscriber`)."""

    def __init__(
        self,
        session: RtmpServerSession,
        stream_id: int,
        transport: asyncio.Transport,
        *,
        limits: ViewerLimits,
        chunk_size: int,
        clock: Callable[[], float],
        on_drop: Callable[[str], None],
        label: str,
    ) -> None:
        self._session = session
        self._stream_id = stream_id
        self._transport = transport
        self._gate = BackpressureGate(limits, clock)
        self._chunk_size = chunk_size
        self._on_drop = on_drop
        self._label = label
        self._dropped = False

    def _flush(self) -> None:
        data = self._session.data_to_send()
        if data and not self._transport.is_closing():
            self._transport.write(data)

    def on_live(self, channel: Channel) -> None:
        every = sorted(channel.tracks.values(), key=lambda t: t.id)
        tracks = [t for t in every if flv.can_carry(t)]
        if not tracks:
            codecs = " + ".join(t.codec_string for t in every)
            self._session.send_status(
                self._stream_id, "error", "NetStream.Play.Failed",
                f"this channel's codecs ({codecs}) cannot be played over RTMP; "
                "watch it in a browser or over HLS",
            )  # fmt: skip
            self._flush()
            self._dropped = True
            self._on_drop(f"cannot play {codecs} over RTMP")
            return
        first = channel.gop[0].frames[0] if channel.gop and channel.gop[0].frames else None
        ts = _ms(first[1].dts, first[0]) if first is not None else 0
        self._session.send_data(self._stream_id, "onMetaData", flv.metadata(tracks))
        for track in tracks:
            if track.kind is TrackKind.VIDEO:
                payload = flv.video_sequence_header(track)
                self._session.send_media(self._stream_id, MESSAGE_TYPE_VIDEO, ts, payload)
            else:
                payload = flv.audio_sequence_header(track)
                self._session.send_media(self._stream_id, MESSAGE_TYPE_AUDIO, ts, payload)
        self._flush()
        self._gate.restart()

    def on_chunk(self, chunk: Chunk) -> None:
        if self._dropped or self._transport.is_closing():  # gone (see WsViewer.on_chunk)
            return
        verdict = self._gate.admit(chunk, self._transport.get_write_buffer_size())
        if verdict is Verdict.SEND:
            data = rtmp_message(chunk, self._stream_id, self._chunk_size)
            if data is not None:
                self._transport.write(data)
        elif verdict is Verdict.DROP:
            self._dropped = True
            self._on_drop("too slow: fell behind the live stream")

    def on_end(self) -> None:
        self._session.send_status(
            self._stream_id, "status", "NetStream.Play.UnpublishNotify", "broadcast ended"
        )
        self._flush()
