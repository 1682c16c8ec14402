"""RTMP publish: OBS, ffmpeg or a mobile app feeding a channel.

One RTMP port serves publishers and players: the connection (:mod:`strom.ingest.rtmp`)
owns the session and the socket and routes publish requests, media and metadata to this
side, :class:`RtmpPublishing` (and play requests to :mod:`strom.delivery.rtmp_play`).
It resolves the stream key, claims the channel, and demuxes the FLV tags into the hub's
neutral tracks and frames.
"""

from __future__ import annotations

import logging

from strom.errors import PublishRefused
from strom.live.channel import Channel, ChannelBusy, Publisher
from strom.live.registry import Registry, StreamKeyResolver
from strom.live.stats import declared_fps
from strom.media.flv import FlvDemuxer
from strom.media.model import Frame
from strom.media.rtmp import (
    DataMessage,
    MediaMessage,
    MessageType,
    PublishRequest,
    RtmpServerSession,
    UnpublishRequest,
)

log = logging.getLogger(__name__)

#: the onStatus code of a refused publish
REJECTED = "NetStream.Publish.Rejected"
#: a declared picture side beyond this is not believed (fMP4 cannot carry it anyway)
_MAX_DECLARED_SIDE = 0xFFFF


def declared_size(meta: dict[object, object]) -> tuple[int, int]:
    """The picture size ``onMetaData`` declares, or (0, 0): it stands in for a codec
    record that does not say (an AV1 or HEVC record without a sequence header)."""
    width, height = meta.get("width"), meta.get("height")
    if not isinstance(width, float | int) or not isinstance(height, float | int):
        return 0, 0
    if not (0 < width <= _MAX_DECLARED_SIDE and 0 < height <= _MAX_DECLARED_SIDE):
        return 0, 0
    return int(width), int(height)


class RtmpPublishing:
    """The publish side of one RTMP connection (at most one stream published)."""

    def __init__(
        self,
        registry: Registry,
        keys: StreamKeyResolver,
        session: RtmpServerSession,
        publisher: Publisher,
        label: str,
    ) -> None:
        self._registry = registry
        self._keys = keys
        self._session = session
        #: what the channel is claimed by: the connection (an operator's disconnect
        #: closes it)
        self._publisher = publisher
        #: "rtmp#ID PEER": the connection's log prefix
        self._label = label
        #: the channel being published to, once a publish was accepted
        self.channel: Channel | None = None
        self._stream_id: int | None = None
        self._demuxer = FlvDemuxer()

    async def on_publish(self, event: PublishRequest) -> bool:
        """Resolve the stream key (may need the database), then accept or refuse.
        Whether the publish was accepted."""
        key = event.name.partition("?")[0]  # an encoder may add a query string
        name = await self._keys.resolve(key)
        if name is not None and self.channel is None:
            try:
                await self._registry.admit(name)
            except PublishRefused as exc:
                self._refuse(event.stream_id, name, str(exc))
                return False
        return self._start(event.stream_id, name)

    def _refuse(self, stream_id: int, name: str | None, reason: str) -> None:
        # NetStream.Publish.Rejected: the code librtmp (OBS) and ffmpeg end a publish on.
        if name is None:
            log.warning("%s: publish refused: %s", self._label, reason)  # never log the key
        else:
            log.warning("%s: publish to %s refused: %s", self._label, name, reason)
            self._registry.refusals.note(name, reason)
        self._session.reject_publish(stream_id, REJECTED, reason)

    def _start(self, stream_id: int, name: str | None) -> bool:
        if name is None:
            self._refuse(stream_id, None, "unknown stream key")
            return False
        if self.channel is not None:
            self._session.reject_publish(
                stream_id, "NetStream.Publish.BadConnection", "this connection already publishes"
            )
            return False
        channel = self._registry.open(name)
        try:
            channel.claim(self._publisher)
        except ChannelBusy:
            self._refuse(stream_id, name, f"channel {name} is already live")
            self._registry.forget_if_idle(channel)
            return False
        self.channel = channel
        self._stream_id = stream_id
        self._demuxer = FlvDemuxer()
        self._session.accept_publish(stream_id, channel=name)
        log.info("%s: publishing to %s", self._label, name)
        return True

    def failed(self, reason: str) -> None:
        """The publisher sent what Strom cannot take (the connection tells it and closes):
        the broadcast ends, and the channel's dashboard says why."""
        if self.channel is not None:
            self._registry.refusals.note(self.channel.name, reason)
        self.stop(reason)

    def on_media(self, event: MediaMessage) -> None:
        channel = self.channel
        if channel is None or event.stream_id != self._stream_id:
            return  # media for a stream we did not accept: ignore, as FMS does
        if event.message_type == MessageType.VIDEO:
            items = self._demuxer.video(event.timestamp, event.payload)
        else:
            items = self._demuxer.audio(event.timestamp, event.payload)
        for item in items:
            if isinstance(item, Frame):
                channel.add_frame(item)
            else:
                channel.set_track(item)
        if self._demuxer.notices:  # said once each: other tracks of a multitrack stream
            for notice in self._demuxer.notices:
                log.info("%s: %s: %s", self._label, channel.name, notice)
            self._demuxer.notices.clear()

    def on_data(self, event: DataMessage) -> None:
        if self.channel is None or event.name != "onMetaData" or not event.values:
            return
        meta = event.values[0]
        if isinstance(meta, dict):
            self.channel.expect_tracks(video="videocodecid" in meta or "width" in meta)
            self.channel.stats.declared_fps = declared_fps(meta.get("framerate"))
            self._demuxer.declared_size = declared_size(meta)

    def on_unpublish(self, event: UnpublishRequest) -> None:
        if event.stream_id == self._stream_id or self._stream_id is None:
            self.stop("unpublished")

    def stop(self, why: str, *, lost: bool = False) -> None:
        """Stop publishing: the broadcast ends, or, for a publisher ``lost`` without
        unpublishing, waits for it to come back (the channel's reconnect grace)."""
        channel, self.channel = self.channel, None
        self._stream_id = None
        if channel is None:
            return
        if lost:
            log.info("%s: %s: publisher lost (%s)", self._label, channel.name, why)
            channel.publisher_lost(self._publisher)
            return
        log.info("%s: %s stopped publishing (%s)", self._label, channel.name, why)
        channel.release(self._publisher)
        self._registry.forget_if_idle(channel)
