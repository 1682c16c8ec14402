"""RTMP play: a channel followed by an RTMP player (ffplay, VLC, mobile players).

One RTMP port serves publishers and players: the connection (:mod:`strom.ingest.rtmp`)
owns the session and the socket and routes play requests to this side,
:class:`RtmpPlayback`, which subscribes one :class:`RtmpPlayer` per played stream.

Each chunk's FLV tags are chunked into RTMP once (fmt-0 header, absolute timestamp, our
fixed outgoing chunk size and message stream 1: the :class:`FlvOverRtmp` encoding, cached
on the chunk) and the same bytes are written to every player using stream id 1, which is
what every player gets from its first createStream.

Only H.264 and AAC travel over RTMP play (:func:`strom.media.flv.can_carry`): a channel
pushed as H.264 + Opus (a browser's MP4 recording) plays as video only, and a channel with
no track FLV can carry (VP9/AV1 + Opus) refuses the player with ``NetStream.Play.Failed``
saying why, then closes the connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from strom.delivery.backpressure import (
    BackpressureGate,
    DeliveryCounts,
    Verdict,
    ViewerLimits,
)
from strom.live.channel import Channel, Subscriber, TooManyViewers
from strom.live.chunk import Chunk
from strom.media import flv
from strom.media.model import Frame, Track, TrackKind
from strom.media.rtmp import (
    AUDIO_CSID,
    MESSAGE_TYPE_AUDIO,
    MESSAGE_TYPE_VIDEO,
    VIDEO_CSID,
    PlayRequest,
    RtmpServerSession,
    StopPlayRequest,
    encode_message,
)
from strom.settings import valid_channel_name

if TYPE_CHECKING:
    from strom.live.registry import Registry

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


@dataclass(frozen=True, slots=True, eq=False)
class FlvOverRtmp:
    """A chunk's frames as FLV tags in RTMP messages on message stream ``stream_id``,
    chunked at ``chunk_size`` (a :class:`~strom.live.chunk.ChunkEncoder`); empty when no
    frame of the chunk can travel over RTMP."""

    stream_id: int
    chunk_size: int

    def __call__(self, chunk: Chunk) -> bytes:
        return b"".join(
            _encode(t, f, self.stream_id, self.chunk_size)
            for t, f in chunk.frames
            if flv.can_carry(t)
        )


@functools.cache
def _shared(chunk_size: int) -> FlvOverRtmp:
    """The encoder of the shared stream id at ``chunk_size`` (a server uses one size):
    always the same object, so a chunk's cache finds it by identity, at C speed."""
    return FlvOverRtmp(SHARED_STREAM_ID, chunk_size)


def rtmp_message(chunk: Chunk, stream_id: int, chunk_size: int) -> bytes | None:
    """The chunked RTMP messages carrying ``chunk``'s frames as FLV tags (None: nothing
    to send). Made once per chunk for every player on the shared stream id; a player on
    another id (rare) gets its own, not kept."""
    if not chunk.frames:  # relayed chunks carry no frames
        return None
    if stream_id == SHARED_STREAM_ID:
        data = chunk.encoded(_shared(chunk_size))
    else:
        data = FlvOverRtmp(stream_id, chunk_size)(chunk)
    return data or None


def _flush(session: RtmpServerSession, transport: asyncio.Transport) -> int:
    """Write what the session has to send; the bytes written."""
    data = session.data_to_send()
    if data and not transport.is_closing():
        transport.write(data)
        return len(data)
    return 0


class RtmpPlayer(Subscriber):
    """One RTMP player of one channel."""

    transport = "rtmp"

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
        counts: DeliveryCounts | None = None,
    ) -> None:
        self._session = session
        self._stream_id = stream_id
        self._transport = transport
        #: the RTMP server's play counts, shared by its players (bytes sent, skips, drops)
        self._counts = counts if counts is not None else DeliveryCounts()
        self._gate = BackpressureGate(limits, clock, self._counts)
        self._chunk_size = chunk_size
        self._on_drop = on_drop
        self._label = label
        self._dropped = False

    def _flush(self) -> None:
        self._counts.bytes_sent += _flush(self._session, self._transport)

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
        self._session.send_data(
            self._stream_id, "onMetaData", flv.metadata(tracks, frame_rate(channel.gop))
        )
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
        if self._dropped or self._transport.is_closing():
            return  # uvloop raises on a write to a closed transport (into the publisher)
        verdict = self._gate.admit(chunk, self._transport.get_write_buffer_size())
        if verdict is Verdict.SEND:
            data = rtmp_message(chunk, self._stream_id, self._chunk_size)
            if data is not None:
                self._transport.write(data)
                self._counts.bytes_sent += len(data)
        elif verdict is Verdict.DROP:
            self._dropped = True
            self._on_drop("too slow: fell behind the live stream")

    def on_end(self) -> None:
        self._session.send_status(
            self._stream_id, "status", "NetStream.Play.UnpublishNotify", "broadcast ended"
        )
        self._flush()


class PlayGate(Protocol):
    """Who may play a channel (:class:`strom.channels.access.WatchAccess`): a private
    channel's token rides in the stream name's query (``live/alice?token=...``)."""

    async def play_refusal(self, channel: str, query: str) -> str | None:
        """Why ``channel`` may not be played with ``query``, or None."""
        ...


class RtmpPlayback:
    """The play side of one RTMP connection: its players, one per played stream.

    The connection routes ``play`` and stop-play requests here (and publish requests to
    the ingest side); the session and the socket are the connection's, shared by both.
    """

    def __init__(
        self,
        registry: Registry,
        session: RtmpServerSession,
        transport: asyncio.Transport,
        *,
        limits: ViewerLimits,
        chunk_size: int,
        clock: Callable[[], float],
        close: Callable[[], None],
        label: str,
        counts: DeliveryCounts | None = None,
        gate: PlayGate | None = None,
    ) -> None:
        self._registry = registry
        self._gate = gate
        #: plays waiting for the gate's answer
        self._checks: set[asyncio.Task[None]] = set()
        self._session = session
        self._transport = transport
        self._limits = limits
        self._chunk_size = chunk_size
        self._clock = clock
        self._close = close
        #: "rtmp#ID PEER": the connection's log prefix
        self._label = label
        self._counts = counts if counts is not None else DeliveryCounts()
        self._players: dict[int, tuple[Channel, RtmpPlayer]] = {}

    def on_play(self, event: PlayRequest) -> None:
        name, _, query = event.name.partition("?")  # a player may add a query string
        if not valid_channel_name(name):
            self._session.reject_play(
                event.stream_id, "NetStream.Play.StreamNotFound", "no such channel"
            )
            return
        if self._gate is None:
            self._play(event, name)
            return
        task = asyncio.get_running_loop().create_task(self._checked_play(event, name, query))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _checked_play(self, event: PlayRequest, name: str, query: str) -> None:
        assert self._gate is not None
        refusal = await self._gate.play_refusal(name, query)
        if refusal is not None:
            log.info("%s: play of %s refused: %s", self._label, name, refusal)
            self._session.reject_play(event.stream_id, "NetStream.Play.Failed", refusal)
            _flush(self._session, self._transport)
            return
        self._play(event, name)

    def _play(self, event: PlayRequest, name: str) -> None:
        if event.stream_id in self._players:
            self.on_stop_play(StopPlayRequest(event.stream_id))
        channel = self._registry.open(name)
        player = RtmpPlayer(
            self._session,
            event.stream_id,
            self._transport,
            limits=self._limits,
            chunk_size=self._chunk_size,
            clock=self._clock,
            on_drop=self._drop,
            label=self._label,
            counts=self._counts,
        )
        self._session.accept_play(event.stream_id)
        _flush(self._session, self._transport)
        try:
            channel.subscribe(player)
        except TooManyViewers:
            self._session.send_status(
                event.stream_id, "error", "NetStream.Play.Failed", "channel is full"
            )
            self._registry.forget_if_idle(channel)
            return
        self._players[event.stream_id] = (channel, player)
        # Joined while the broadcast waits for its streamer: the sequence headers and the
        # picture it stopped on now, so that the media after the resumption decodes.
        channel.catch_up(player)
        log.info("%s: playing %s", self._label, name)

    def on_stop_play(self, event: StopPlayRequest) -> None:
        entry = self._players.pop(event.stream_id, None)
        if entry is not None:
            channel, player = entry
            channel.unsubscribe(player)
            self._registry.forget_if_idle(channel)

    def stop(self) -> None:
        """The connection is gone: every player leaves its channel."""
        for task in self._checks:
            task.cancel()
        for stream_id in list(self._players):
            self.on_stop_play(StopPlayRequest(stream_id))

    def _drop(self, reason: str) -> None:
        log.warning("%s: player %s, closing", self._label, reason)
        self._close()


def frame_rate(chunks: Sequence[Chunk]) -> float | None:
    """Video frames per second in ``chunks`` (the GOP cache: a second or more), from
    their timestamps, to three decimals (29.97 stays 29.97); None without two frames."""
    times = [
        frame.dts / track.timescale
        for chunk in chunks
        for track, frame in chunk.frames
        if track.kind is TrackKind.VIDEO
    ]
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return round((len(times) - 1) / (times[-1] - times[0]), 3)
