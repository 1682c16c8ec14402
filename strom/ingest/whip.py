"""WHIP ingest (RFC 9725): OBS 30+, a browser's RTCPeerConnection or ``strom stream
--whip`` going live over WebRTC.

The HTTP side (:mod:`strom.web.whip`) hands :meth:`WhipIngest.publish` the SDP offer and
the stream key; this module checks them, claims the channel, and answers with aiortc's
SDP (ICE candidates gathered before answering: no trickle ICE). Media then arrives over
ICE/DTLS/SRTP and goes to the hub without decoding: H.264 and Opus frames as the RTP
layer reassembled them (:mod:`strom.ingest.rtc` takes them from aiortc before its
decoder, :mod:`strom.media.rtp_frames` makes them neutral frames). VP8, a browser's
choice when it has no H.264 encoder, goes through push ingest's transcoder (and counts
against its ``transcode_max_streams``); the answer prefers H.264 whenever it is offered.

A session's end is one of (RFC 9725 4.2 for the first):

* ``DELETE`` of its resource, or an operator's stop: the broadcast ends;
* the peer connection fails or media stops for ``ingest_idle_timeout``: the publisher is
  lost, and the broadcast waits in the channel's reconnect grace (OBS reconnects with a
  new POST, which resumes it);
* no connection within ``whip_connect_timeout`` after the answer: the same (a broadcast
  that never got media ends when its grace does).
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from strom.errors import ApiError, ProtocolError, PublishRefused
from strom.ingest import rtc
from strom.ingest.push import (
    INGEST_BURST_SECONDS,
    PushIngest,
    Transcoder,
    TranscodersBusy,
    bitrate_bucket,
)
from strom.live.channel import Channel, ChannelBusy
from strom.live.registry import Registry, StreamKeyResolver
from strom.media.model import VIDEO_TRACK_ID, Codec, Frame, Track
from strom.media.rtp_frames import RtpFrames
from strom.ratelimit import AddressSlots, IPNetwork, SlotLimits
from strom.settings import Settings, exempt_networks, section, setting
from strom.tasks import TaskSet

log = logging.getLogger(__name__)

_ids = itertools.count(1)

#: what a WHIP publisher may send, best first: H.264 passed through, VP8 transcoded
VIDEO_CODECS = ("video/h264", "video/vp8")
#: seconds between keyframe requests while a publisher's first keyframe is awaited
FIRST_KEYFRAME_ASK = 0.5


def media_sections(offer: str) -> list[str]:
    """The media kinds of an SDP's ``m=`` lines (RFC 8866 5.14), in order."""
    return [line[2:].split(" ", 1)[0] for line in offer.splitlines() if line.startswith("m=")]


def _check_sections(offer: str) -> None:
    """One video and one audio section at most: each is a receiver (and aiortc would
    decode what arrives on one that is not ours)."""
    sections = media_sections(offer)
    if len(set(sections)) != len(sections) or not set(sections) <= {"video", "audio"}:
        raise ApiError(400, "the offer may hold one video and one audio section")


AUDIO_CODECS = ("audio/opus",)


def _split(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class WhipLimits:
    max_offer_bytes: int = setting("whip_max_offer_bytes")
    max_sessions: int = setting("whip_max_sessions")
    max_per_address: int = setting("whip_max_sessions_per_address")
    connect_timeout: float = setting("whip_connect_timeout")
    keyframe_interval: float = setting("whip_keyframe_interval")
    #: seconds without media before the publisher counts as lost
    idle_timeout: float = setting("ingest_idle_timeout")
    #: average bits per second a publisher may send (frames, as reassembled)
    max_bitrate: int = setting("ingest_max_bitrate")
    #: seconds of ``max_bitrate`` a publisher may send at once
    burst_seconds: float = INGEST_BURST_SECONDS
    ice_addresses: tuple[str, ...] = setting("whip_ice_addresses", _split)
    stun_servers: tuple[str, ...] = setting("whip_stun_servers", _split)
    exempt: tuple[IPNetwork, ...] = setting("connection_limit_exempt", exempt_networks)

    @classmethod
    def from_settings(cls, settings: Settings) -> WhipLimits:
        return section(cls, settings)


class WhipState(enum.Enum):
    #: answered; ICE and DTLS not done yet
    CONNECTING = "connecting"
    #: media flows into the channel
    PUBLISHING = "publishing"
    ENDED = "ended"


def _preferred(kind: str, mime_types: tuple[str, ...]) -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    assert capabilities is not None  # aiortc knows audio and video
    return [
        codec
        for mime in mime_types
        for codec in capabilities.codecs
        if codec.mimeType.lower() == mime
    ]


class WhipIngest:
    """Every WHIP session of this node, and what they share."""

    def __init__(
        self,
        registry: Registry,
        keys: StreamKeyResolver,
        limits: WhipLimits | None = None,
        *,
        push: PushIngest | None = None,
    ) -> None:
        self.registry = registry
        self.keys = keys
        self.limits = limits or WhipLimits()
        #: whose transcoders (and their budget) VP8 video uses
        self.push = push or PushIngest(registry, keys)
        #: sessions by their resource id (the ``Location`` the client deletes)
        self.sessions: dict[str, WhipSession] = {}
        self.slots = AddressSlots(
            SlotLimits(
                per_address=self.limits.max_per_address,
                total=self.limits.max_sessions,
                exempt=self.limits.exempt,
            )
        )
        self.tasks = TaskSet("whip")
        #: sessions answered since the start; offers refused, by the HTTP status sent
        self.started = 0
        self.refused: dict[int, int] = {}
        rtc.offer_addresses(self.limits.ice_addresses)

    async def publish(self, offer: str, key: str, channel: str | None, host: str) -> WhipSession:
        """Negotiate a session for ``offer``: the session, its answer in ``answer``.
        :class:`ApiError` with the WHIP status when refused (logged, never the key)."""
        refusal = self.slots.acquire(host)
        if refusal is not None:
            log.warning("whip %s refused: %s", host, refusal)
            status = 503 if refusal == "too many connections" else 429
            raise ApiError(status, f"{refusal}; try again later")
        session: WhipSession | None = None
        try:
            name = await self._channel(key, channel, host)
            _check_sections(offer)
            session = WhipSession(self, name, host)
            await session.negotiate(offer)
        except BaseException:  # refused, or cancelled mid-way: nothing may stay claimed
            if session is not None:
                session.finish("not negotiated")
            self.slots.release(host)
            raise
        self.sessions[session.id] = session
        self.started += 1
        return session

    def note_refusal(self, status: int) -> None:
        """An offer was refused with ``status`` (here or by the HTTP resource)."""
        self.refused[status] = self.refused.get(status, 0) + 1

    def metrics(self) -> dict[str, Any]:
        """``whip`` in ``/api/v1/stats``."""
        active = {state.value: 0 for state in (WhipState.CONNECTING, WhipState.PUBLISHING)}
        for session in self.sessions.values():
            if session.state.value in active:
                active[session.state.value] += 1
        return {
            "active": len(self.sessions),
            "active_by_state": active,
            "started": self.started,
            "refused": sum(self.refused.values()),
            "refused_by_status": {str(k): n for k, n in sorted(self.refused.items())},
        }

    async def _channel(self, key: str, wanted: str | None, host: str) -> str:
        name = await self.keys.resolve(key) if key else None
        if name is None or (wanted is not None and wanted != name):
            log.warning("whip %s refused: unknown stream key", host)
            raise ApiError(
                401, "unknown stream key", headers={"WWW-Authenticate": 'Bearer realm="whip"'}
            )
        try:
            await self.registry.admit(name)
        except PublishRefused as exc:
            log.warning("whip %s to %s refused: %s", host, name, exc)
            self.registry.refusals.note(name, str(exc))
            raise ApiError(exc.http_status, str(exc)) from None
        return name

    def end(self, session_id: str) -> bool:
        """``DELETE``: end the session's broadcast; False if there is no such session."""
        session = self.sessions.get(session_id)
        if session is None:
            return False
        session.finish("deleted by the client")
        return True

    def forget(self, session: WhipSession) -> None:
        if self.sessions.pop(session.id, None) is session:
            self.slots.release(session.host)

    async def close(self) -> None:
        """Server shutdown: every session ends."""
        for session in list(self.sessions.values()):
            session.finish("the server is shutting down")
        await self.tasks.close()


class WhipSession:
    """One WHIP publisher: a peer connection feeding a channel. Also the channel's
    :class:`~strom.live.channel.Publisher` (an operator may :meth:`disconnect` it)."""

    def __init__(self, ingest: WhipIngest, channel_name: str, host: str) -> None:
        self.id = secrets.token_urlsafe(16)
        self.ingest = ingest
        self.channel_name = channel_name
        self.host = host
        self.label = f"whip#{next(_ids)} {host}"
        self.state = WhipState.CONNECTING
        self.channel: Channel | None = None
        self.answer = ""
        self.frames_in = 0
        self.bytes_in = 0
        self._frames = RtpFrames()
        self._pc = RTCPeerConnection(rtc.ice_configuration(ingest.limits.stun_servers))
        self._receivers: list[RTCRtpReceiver] = []
        loop = asyncio.get_running_loop()
        self._started = loop.time()
        self._last_media = self._started
        self._last_keyframe = self._started
        self._keyframe_asked = self._started
        self._seen_keyframe = False
        limits = ingest.limits
        self._bucket = bitrate_bucket(limits.max_bitrate, limits.burst_seconds, self._started)
        #: loop time of the first frame, and each clock's offset from it (A/V alignment)
        self._origin: float | None = None
        self._offsets: dict[str, int] = {}
        self._watchdog: asyncio.Task[None] | None = None
        #: VP8 video's way to H.264, and whether audio waits for its first picture
        self._transcoder: Transcoder | None = None
        self._awaiting_video = False

    def __repr__(self) -> str:
        return f"<WhipSession {self.label} -> {self.channel_name} {self.state.value}>"

    async def negotiate(self, offer: str) -> None:
        pc = self._pc
        for kind, codecs in (("video", VIDEO_CODECS), ("audio", AUDIO_CODECS)):
            transceiver = pc.addTransceiver(kind, direction="recvonly")
            transceiver.setCodecPreferences(_preferred(kind, codecs))
            rtc.tap_encoded_frames(transceiver.receiver, self._on_frame)
            self._receivers.append(transceiver.receiver)
        pc.on("connectionstatechange", self._on_state)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        except Exception as exc:  # aiortc's parse and negotiation errors have no common root
            await pc.close()
            log.warning("%s: offer refused: %s", self.label, exc)
            raise ApiError(
                400, f"unusable SDP offer ({exc}); send H.264 (or VP8) video and/or Opus audio"
            ) from None
        self._claim()
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            self._end(release=True)
            log.warning("%s: no answer: %s", self.label, exc)
            raise ApiError(400, f"cannot answer this offer: {exc}") from None
        self.answer = pc.localDescription.sdp
        self._expect(pc.getTransceivers())
        self._watchdog = self.ingest.tasks.spawn(self._watch())
        log.info("%s: answered, connecting to %s", self.label, self.channel_name)

    def _expect(self, transceivers: list[RTCRtpTransceiver]) -> None:
        """Tell the hub what the answer accepted: the audio track before its first
        packet, no video to wait for if none comes."""
        channel = self.channel
        assert channel is not None
        kinds = {t.kind for t in transceivers if t.currentDirection == "recvonly"}
        channel.expect_tracks(video="video" in kinds)
        if "audio" in kinds:
            channel.set_track(self._frames.expect_audio())

    def _claim(self) -> None:
        """Take the channel (resuming a broadcast in its reconnect grace). An encoder that
        comes back from the same address while its old session still looks alive (OBS
        reconnects faster than a dead peer connection is noticed) replaces that session;
        anyone else gets 409."""
        registry = self.ingest.registry
        channel = registry.open(self.channel_name)
        current = channel.publisher
        if isinstance(current, WhipSession) and current.host == self.host:
            current.lost("replaced by a new offer from the same address")
        try:
            channel.claim(self)
        except ChannelBusy:
            registry.forget_if_idle(channel)
            self.ingest.tasks.spawn(self._pc.close())
            log.warning("%s: %s refused: already live", self.label, self.channel_name)
            registry.refusals.note(
                self.channel_name, f"channel {self.channel_name} is already live"
            )
            raise ApiError(409, f"channel {self.channel_name} is already live") from None
        self.channel = channel

    # -- media -----------------------------------------------------------------------------

    def _on_frame(self, mime: str, data: bytes, timestamp: int) -> None:
        channel = self.channel
        if channel is None or self.state is WhipState.ENDED:
            return
        now = asyncio.get_running_loop().time()
        self._last_media = now
        if not self._bucket.spend(now, len(data)):
            limit = self.ingest.limits.max_bitrate // 1000
            log.warning("%s: faster than %d kbit/s, closing", self.label, limit)
            self.finish(f"faster than the limit of {limit} kbit/s")
            return
        if self.state is WhipState.CONNECTING:
            self.state = WhipState.PUBLISHING
            log.info("%s: publishing to %s", self.label, channel.name)
        if self._origin is None:
            self._origin = now
        if mime == "video/h264":
            timestamp += self._offset(mime, now, 90_000, timestamp)
            items = self._frames.video(data, timestamp)
        elif mime == "video/vp8":
            timestamp += self._offset(mime, now, 90_000, timestamp)
            items = self._frames.vp8(data, timestamp)
        elif mime == "audio/opus":
            timestamp += self._offset(mime, now, 48_000, timestamp)
            items = self._frames.audio(data, timestamp)
        else:
            return
        try:
            self._feed(channel, items)
        except ProtocolError as exc:  # a frame the hub cannot carry ends the broadcast
            log.warning("%s: %s: stream error, closing: %s", self.label, channel.name, exc)
            self.finish(str(exc))

    def _offset(self, mime: str, now: float, clock: int, timestamp: int) -> int:
        """Each RTP clock starts at 0 with its own first frame: shifted by when that frame
        arrived after the session's first, audio and video line up (to the network's
        jitter: no RTCP sender reports are consulted)."""
        offset = self._offsets.get(mime)
        if offset is None:
            assert self._origin is not None
            offset = self._offsets[mime] = round((now - self._origin) * clock) - timestamp
        return offset

    def _feed(self, channel: Channel, items: list[Track | Frame]) -> None:
        for item in items:
            if isinstance(item, Track):
                if item.codec is Codec.VP8:
                    self._transcode(item)
                else:
                    channel.set_track(item)
                continue
            self.frames_in += 1
            self.bytes_in += len(item.data)
            video = item.track_id == VIDEO_TRACK_ID
            if item.keyframe and video:
                self._last_keyframe = self._last_media
                self._seen_keyframe = True
            if video and self._transcoder is not None:
                self._transcoder.feed(item)
            elif not self._awaiting_video:
                channel.add_frame(item)

    def _transcode(self, track: Track) -> None:
        """VP8 from here on: a transcoder (a new one for a new picture size)."""
        self._close_transcoder()
        push = self.ingest.push
        if len(push.transcoding) >= push.limits.max_transcodes:
            exc = TranscodersBusy("every transcoding slot is taken: send H.264")
            log.warning("%s: %s", self.label, exc)
            self.finish(str(exc))
            return
        log.info("%s: VP8 video is transcoded to H.264", self.label)
        self._transcoder = push.transcoder(track, self._transcoded, f"{self.label} VP8->H.264")
        push.transcoding.add(self)
        self._awaiting_video = True

    def _transcoded(self, items: list[Track | Frame]) -> None:
        """The transcoder's output, on the event loop."""
        channel = self.channel
        if channel is None or self._transcoder is None:
            return
        try:
            for item in items:
                if isinstance(item, Track):
                    channel.set_track(item)
                else:
                    self._awaiting_video = False
                    channel.add_frame(item)
        except ProtocolError as exc:
            log.warning("%s: %s: transcoded stream error, closing: %s", self.label,
                        channel.name, exc)  # fmt: skip
            self.finish(str(exc))

    def _close_transcoder(self) -> None:
        transcoder, self._transcoder = self._transcoder, None
        self.ingest.push.transcoding.discard(self)
        self._awaiting_video = False
        if transcoder is not None:
            transcoder.close()

    async def _watch(self) -> None:
        """The connect deadline, the idle deadline, and keyframe requests."""
        limits = self.ingest.limits
        loop = asyncio.get_running_loop()
        while self.state is not WhipState.ENDED:
            await asyncio.sleep(min(FIRST_KEYFRAME_ASK, limits.keyframe_interval) / 2)
            now = loop.time()
            if self.state is WhipState.CONNECTING:
                if now - self._started > limits.connect_timeout:
                    self.lost(f"no media within {limits.connect_timeout:g} s of the answer")
                continue
            if now - self._last_media > limits.idle_timeout:
                self.lost(f"no media for {limits.idle_timeout:g} s")
                continue
            # at the start, ask soon (a viewer waits for the first keyframe); later, every
            # keyframe_interval without one
            interval = limits.keyframe_interval if self._seen_keyframe else FIRST_KEYFRAME_ASK
            if now - self._last_keyframe > interval and now - self._keyframe_asked > interval:
                self._keyframe_asked = now
                for receiver in self._receivers[:1]:  # the video one
                    await rtc.request_keyframe(receiver)

    async def _on_state(self) -> None:
        state = self._pc.connectionState
        if state == "failed":
            self.lost("the peer connection failed")
        elif state == "closed":  # the peer closed DTLS without DELETE: as a dropped socket
            self.lost("the peer closed the connection")
        elif state == "connected":
            log.info("%s: connected", self.label)

    # -- the end ---------------------------------------------------------------------------

    def disconnect(self, reason: str) -> None:
        """An operator stopped the broadcast."""
        self.finish(reason)

    def finish(self, why: str) -> None:
        """The client deleted the session (or an operator stopped it): the broadcast ends."""
        if self.state is not WhipState.ENDED:
            log.info("%s: stream ended (%s; %d frames)", self.label, why, self.frames_in)
            self._end(release=True)

    def lost(self, why: str) -> None:
        """The connection is gone: the broadcast waits in the reconnect grace."""
        if self.state is not WhipState.ENDED:
            log.info("%s: publisher lost (%s)", self.label, why)
            self._end(release=False)

    def _end(self, *, release: bool) -> None:
        self.state = WhipState.ENDED
        self._close_transcoder()
        self.ingest.forget(self)
        if self._frames.skipped:
            log.info("%s: %d frames skipped, last: %s", self.label, self._frames.skipped,
                     self._frames.last_error)  # fmt: skip
        self.ingest.tasks.spawn(self._pc.close())
        watchdog = self._watchdog
        if watchdog is not None and watchdog is not asyncio.current_task():
            watchdog.cancel()
        channel, self.channel = self.channel, None
        if channel is None:
            return
        if release:
            channel.release(self)
        else:
            channel.publisher_lost(self)
        self.ingest.registry.forget_if_idle(channel)
