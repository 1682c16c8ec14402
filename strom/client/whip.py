"""Publishing over WHIP (RFC 9725) with aiortc: ``strom stream --whip`` and the tests.

:class:`WhipPublisher` offers one send-only H.264 video and one Opus audio transceiver,
POSTs the offer with the stream key as a bearer token, applies the answer, and DELETEs
its session to end the broadcast. What it sends comes from aiortc tracks: either tracks
of raw pictures and samples (aiortc encodes them), or :class:`EncodedTrack` s fed with
packets already encoded (aiortc only packetizes them: no second encode).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urljoin

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from strom.client.config import ClientError
from strom.ingest import rtc

log = logging.getLogger(__name__)

#: what a WHIP publisher sends, as Strom passes it through
CODECS = {"video": "video/h264", "audio": "audio/opus"}
#: packets an :class:`EncodedTrack` holds before it drops the oldest (about 2 s)
MAX_QUEUED_PACKETS = 120


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
        self, url: str, key: str, *, stun_servers: Sequence[str] = (), timeout: float = 10.0
    ) -> None:
        self.url = url
        self.key = key
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
            wanted = CODECS[track.kind]
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
                raise ClientError(f"the server refused the stream ({resp.status}): {_reason(body)}")
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
