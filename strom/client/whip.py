"""Publishing over WHIP (RFC 9725) with aiortc: ``strom stream --whip`` and the tests.

:class:`WhipPublisher` offers one send-only H.264 video and one Opus audio transceiver,
POSTs the offer with the stream key as a bearer token, applies the answer, and DELETEs
its session to end the broadcast. What it sends comes from aiortc tracks: either tracks
of raw pictures and samples (aiortc encodes them), or :class:`EncodedTrack` s fed with
packets already encoded (aiortc only packetizes them: no second encode).

:class:`WhipStreamer` is ``strom stream --whip``: the client's own encoders' frames (the
same x264 as over RTMP; Opus instead of AAC) go out through encoded tracks, and a lost
connection is offered again after a backoff, which the server takes as the same
broadcast within its reconnect grace. The encoder's keyframes are its own (every
``--keyframe-interval``): aiortc cannot pass a PLI on to an encoder it does not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urljoin

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from strom.client.config import ClientError, ClientLimits
from strom.client.encode import Encoded
from strom.client.publish import Backoff, PublishRefused, PublishState, PublishStats
from strom.ingest import rtc
from strom.media import h264
from strom.media.model import TrackKind

log = logging.getLogger(__name__)

#: what a WHIP publisher sends, as Strom passes it through
CODECS = {"video": "video/h264", "audio": "audio/opus"}
#: packets an :class:`EncodedTrack` holds before it drops the oldest (about 2 s)
MAX_QUEUED_PACKETS = 120
MS = fractions.Fraction(1, 1000)
#: how often the streamer looks at the connection's state (s)
CHECK_INTERVAL = 0.5


class EncodedTrack(MediaStreamTrack):
    """A track of encoded packets (H.264 Annex B for video, Opus for audio) that aiortc
    sends as they are. :meth:`put` is called on the event loop."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue[av.Packet[Any]] = asyncio.Queue(MAX_QUEUED_PACKETS)
        #: packets dropped because the network did not keep up
        self.dropped = 0

    def put(self, data: bytes, pts: int, time_base: fractions.Fraction) -> None:
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = time_base
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(packet)

    async def recv(self) -> av.Packet[Any]:
        return await self._queue.get()


class WhipPublisher:
    """One WHIP session: :meth:`start` goes live, :meth:`stop` ends the broadcast."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        stun_servers: Sequence[str] = (),
        timeout: float = 10.0,
        video_codec: str = CODECS["video"],
    ) -> None:
        self.url = url
        self.key = key
        self.codecs = {**CODECS, "video": video_codec}
        self.timeout = timeout
        #: the session's resource, once the server accepted the offer
        self.location: str | None = None
        self._pc = RTCPeerConnection(rtc.ice_configuration(stun_servers))

    @property
    def connection_state(self) -> str:
        return str(self._pc.connectionState)

    async def start(self, tracks: Sequence[MediaStreamTrack]) -> None:
        """Offer ``tracks`` (at most one video and one audio) and apply the answer;
        :class:`ClientError` with the server's reason if it refuses."""
        pc = self._pc
        for track in tracks:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            capabilities = RTCRtpSender.getCapabilities(track.kind)
            assert capabilities is not None
            wanted = self.codecs[track.kind]
            transceiver.setCodecPreferences(
                [c for c in capabilities.codecs if c.mimeType.lower() == wanted]
            )
        await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
        headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {self.key}"}
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(self.url, data=pc.localDescription.sdp, headers=headers) as resp,
        ):
            body = await resp.text()
            if resp.status != 201:
                await pc.close()
                reason = f"the server refused the stream ({resp.status}): {_reason(body)}"
                if resp.status in (400, 401, 403, 404, 415):
                    raise PublishRefused(reason)  # for good: trying again changes nothing
                raise ClientError(reason)
            self.location = urljoin(self.url, resp.headers.get("Location", ""))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))

    async def stop(self) -> None:
        """End the broadcast (DELETE the session) and close the connection."""
        location, self.location = self.location, None
        if location:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with (
                    aiohttp.ClientSession(timeout=timeout) as http,
                    http.delete(location) as resp,
                ):
                    if resp.status != 200:
                        log.warning("whip: ending the session answered %d", resp.status)
        await self._pc.close()


def _reason(body: str) -> str:
    try:
        found = json.loads(body).get("error")
    except (ValueError, AttributeError):
        found = None
    return str(found) if found else body[:200]


class _Dropped:
    """What the status line reads as the send queue: frames dropped on the way."""

    def __init__(self, tracks: Sequence[EncodedTrack]) -> None:
        self._tracks = tracks

    @property
    def dropped(self) -> int:
        return sum(t.dropped for t in self._tracks if t.kind == "video")


class WhipStreamer:
    """``strom stream --whip``: what :class:`strom.client.publish.Publisher` is for RTMP
    (``offer``, ``run``, ``stop``, ``stats``), over WHIP."""

    def __init__(
        self,
        url: str,
        key: str,
        limits: ClientLimits,
        on_state: Callable[[PublishState, str], None] | None = None,
    ) -> None:
        self.url = url
        self.key = key
        self.limits = limits
        self.stats = PublishStats()
        self._on_state = on_state
        self._video = EncodedTrack("video")
        self._audio = EncodedTrack("audio")
        self.queue = _Dropped((self._video, self._audio))
        self._parameter_sets = b""
        self._config = b""
        self._stopping = asyncio.Event()

    def offer(self, item: Encoded) -> None:
        """An encoded frame from the pipeline (on the event loop)."""
        frame = item.frame
        if item.track.kind is TrackKind.VIDEO:
            if item.track.config != self._config:
                # x264 keeps SPS and PPS out of band (global header); a WebRTC receiver
                # learns them in band, before every IDR.
                self._config = item.track.config
                self._parameter_sets = h264.annexb_parameter_sets(self._config)
            prefix = self._parameter_sets if frame.keyframe else b""
            self._video.put(h264.avcc_to_annexb(frame.data, prefix), frame.pts, MS)
        else:
            self._audio.put(frame.data, frame.pts, MS)
        if self.stats.state is PublishState.LIVE:
            self.stats.frames_sent += 1
            self.stats.bytes_sent += len(frame.data)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Go live, stay live (offering again after a loss), end the broadcast on stop."""
        limits = self.limits
        backoff = Backoff(limits.backoff_first, limits.backoff_factor, limits.backoff_max)
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            publisher = WhipPublisher(self.url, self.key)
            try:
                await publisher.start([self._video, self._audio])
            except PublishRefused:
                self._set(PublishState.STOPPED, "refused")
                raise
            except (ClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                await publisher.stop()
                self.stats.last_error = str(exc) or type(exc).__name__
                delay = backoff.next_delay()
                self.stats.retry_at = loop.time() + delay
                self._set(PublishState.RECONNECTING, self.stats.last_error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                continue
            backoff.reset()
            now = time.monotonic()
            self.stats.live_since = now
            self.stats.first_live = self.stats.first_live or now
            self._set(PublishState.LIVE, "")
            while not self._stopping.is_set() and publisher.connection_state not in (
                "failed",
                "closed",
            ):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), CHECK_INTERVAL)
            if self._stopping.is_set():
                await publisher.stop()
                break
            publisher.location = None  # lost: the server keeps the broadcast for a while
            await publisher.stop()
            self.stats.reconnects += 1
            self._set(PublishState.RECONNECTING, "the WebRTC connection was lost")
        self._set(PublishState.STOPPED, "stopped")

    def _set(self, state: PublishState, why: str) -> None:
        if state is self.stats.state:
            return
        self.stats.state = state
        if self._on_state is not None:
            self._on_state(state, why)
