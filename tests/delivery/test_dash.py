"""LL-DASH over HTTP: the MPD of a live channel names the LL-HLS rendition's own files,
and the segment being written goes out as it grows (chunked), to every viewer at once.

Real media (an FLV made by ffmpeg: H.264 + AAC, a keyframe a second) fed through the hub
frame by frame; the answers are read by aiohttp's client over a real socket."""

from __future__ import annotations

import asyncio
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from strom.delivery.chunked import GrowingSegments
from strom.delivery.dash import DashDelivery
from strom.delivery.hls import HlsDelivery
from strom.errors import ApiError
from strom.live.channel import Channel
from strom.live.registry import Registry
from strom.media.dash.mpd import NAMESPACE
from strom.media.model import Frame, Track
from strom.web.errors import json_error
from tests.helpers import MediaFile, make_media
from tests.helpers.hub import read_flv

NS = {"d": NAMESPACE}
TIME_URL = "http://watch.example.org/live/time"


class Site:
    def __init__(self) -> None:
        self.registry = Registry()
        self.hls = HlsDelivery(self.registry)
        self.dash = DashDelivery(self.hls)


@pytest.fixture(scope="module")
def six_seconds(tmp_path_factory: pytest.TempPathFactory) -> MediaFile:
    """Keyframes a second apart: a segment is one GOP (1 s)."""
    return make_media(tmp_path_factory.mktemp("dash") / "six.flv", seconds=6.0)


@pytest.fixture
async def site() -> Site:
    return Site()


@pytest.fixture
async def client(site: Site) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def manifest(request: web.Request) -> web.StreamResponse:
        try:
            return await site.dash.manifest(request, request.match_info["channel"], TIME_URL)
        except ApiError as exc:
            return json_error(exc.http_status, exc.reason)

    async def media(request: web.Request) -> web.StreamResponse:
        m = request.match_info
        try:
            return await site.hls.media(request, m["channel"], m["rendition"], m["file"])
        except ApiError as exc:
            return json_error(exc.http_status, exc.reason)

    app = web.Application()
    app.router.add_get("/live/{channel}/index.mpd", manifest)
    app.router.add_get("/live/{channel}/{rendition}/{file}", media)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def go_live(site: Site, media: MediaFile) -> tuple[Channel, list[Frame]]:
    items = read_flv(media.path)
    channel = site.registry.open("alice")
    channel.claim(object())  # type: ignore[arg-type]
    for item in items:
        if isinstance(item, Track):
            channel.set_track(item)
    return channel, [i for i in items if isinstance(i, Frame)]


def feed_until(channel: Channel, frames: list[Frame], seconds: float) -> list[Frame]:
    """Feed the frames before ``seconds``; return the rest."""
    for i, frame in enumerate(frames):
        track = channel.tracks[frame.track_id]
        if frame.dts / track.timescale >= seconds:
            return frames[i:]
        channel.add_frame(frame)
    return []


async def test_the_mpd_names_the_ll_hls_files(
    site: Site, client: TestClient[web.Request, web.Application], av_media: MediaFile
) -> None:
    assert (await client.get("/live/alice/index.mpd")).status == 404  # not live
    channel, frames = go_live(site, av_media)
    feed_until(channel, frames, 1.5)  # seg0 complete (a GOP: 1 s), seg1 being written
    resp = await client.get("/live/alice/index.mpd")
    assert resp.status == 200
    assert resp.content_type == "application/dash+xml"
    assert resp.headers["Cache-Control"] == "no-cache"
    mpd = ET.fromstring(await resp.text())
    rendition = site.hls.rendition("alice")
    assert rendition is not None
    token = rendition.token
    rep = mpd.find(".//d:Representation", NS)
    assert rep is not None
    assert rep.get("codecs") == ",".join(t.codec_string for t in channel.tracks.values())
    assert (rep.get("width"), rep.get("height")) == (str(av_media.width), str(av_media.height))
    template = rep.find("d:SegmentTemplate", NS)
    assert template is not None
    assert template.get("media") == f"{token}/seg$Number$.m4s"
    assert template.get("initialization") == f"{token}/init-0.mp4"
    assert template.get("availabilityTimeComplete") == "false"
    # seg0 as it is; seg1, being written, listed with the duration it may have at most
    # (the longest so far or the target duration, and a part more)
    s = template.findall("d:SegmentTimeline/d:S", NS)
    stream = rendition.stream
    seg0, seg1 = stream.timeline()
    expected = max(seg0.duration, stream.target_duration * 100_000) + 33_400
    assert [(x.get("t"), x.get("d")) for x in s] == [
        (str(seg0.start), str(seg0.duration)),
        (None, str(expected)),
    ]
    assert not seg1.complete
    ato = float(template.get("availabilityTimeOffset", "0"))
    assert ato == round((expected - stream.chunk_duration) / 100_000, 3)  # less one chunk
    # Those names answer with the LL-HLS rendition's bytes.
    init = await client.get(f"/live/alice/{token}/init-0.mp4")
    assert await init.read() == channel.init_segment
    # Revalidation: the same MPD until the rendition changes.
    again = await client.get(
        "/live/alice/index.mpd", headers={"If-None-Match": resp.headers["ETag"]}
    )
    assert again.status == 304
    channel.close()


async def test_the_segment_being_written_goes_out_as_it_grows(
    site: Site, client: TestClient[web.Request, web.Application], six_seconds: MediaFile
) -> None:
    channel, frames = go_live(site, six_seconds)
    rest = feed_until(channel, frames, 1.5)  # seg1 (1 s to 2 s) has begun
    rendition = site.hls.rendition("alice")
    assert rendition is not None
    base = f"/live/alice/{rendition.token}"
    growing = [await client.get(f"{base}/seg1.m4s") for _ in range(3)]  # three viewers
    for resp in growing:
        assert resp.status == 200
        assert resp.headers["Transfer-Encoding"] == "chunked"
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Accel-Buffering"] == "no"  # nginx in front streams it too
        assert resp.content_type == "video/mp4"
    first = await growing[0].content.read(8)
    assert first[4:8] == b"moof"  # the chunks already there come at once
    # The next segment, not begun yet: the request waits for it, then it grows too.
    following = asyncio.create_task(client.get(f"{base}/seg2.m4s"))
    await asyncio.sleep(0.05)
    assert not following.done()
    for frame in rest:
        channel.add_frame(frame)
        await asyncio.sleep(0)
    channel.close()  # the end closes the last segment
    bodies = [first + await growing[0].read()] + [await r.read() for r in growing[1:]]
    assert bodies == [rendition.stream.segment(1)] * 3
    tail = await following
    assert tail.status == 200
    assert await tail.read() == rendition.stream.segment(2)
    # Once complete, the same URL is an ordinary immutable answer.
    done = await client.get(f"{base}/seg1.m4s")
    assert "Transfer-Encoding" not in done.headers
    assert "immutable" in done.headers["Cache-Control"]
    assert await done.read() == rendition.stream.segment(1)


async def test_a_segment_too_far_ahead_is_refused_at_once(
    site: Site, client: TestClient[web.Request, web.Application], av_media: MediaFile
) -> None:
    channel, frames = go_live(site, av_media)
    feed_until(channel, frames, 2.5)
    rendition = site.hls.rendition("alice")
    assert rendition is not None
    resp = await client.get(f"/live/alice/{rendition.token}/seg9.m4s")
    assert resp.status == 404
    channel.close()


async def test_a_stopping_node_ends_the_growing_answers(
    site: Site, client: TestClient[web.Request, web.Application], av_media: MediaFile
) -> None:
    channel, frames = go_live(site, av_media)
    feed_until(channel, frames, 1.5)  # seg1 being written
    rendition = site.hls.rendition("alice")
    assert rendition is not None
    resp = await client.get(f"/live/alice/{rendition.token}/seg1.m4s")
    assert resp.status == 200
    site.hls.let_go()  # the publisher is still on, seg1 still open
    # The answer breaks off at once, without its last chunk: the player knows the
    # segment is not whole (and asks another node).
    async with asyncio.timeout(5):
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    so_far = rendition.stream.segment_so_far(1)
    assert so_far is not None
    assert so_far[1] is False
    channel.close()


async def test_a_viewer_that_stops_reading_is_cut_off_alone(
    site: Site,
    client: TestClient[web.Request, web.Application],
    six_seconds: MediaFile,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two viewers of the growing segment, one of which reads nothing (its socket's
    receive buffer is tiny): once its unsent bytes pass the bound it is cut off, and the
    other gets the whole segment."""
    monkeypatch.setattr("strom.delivery.chunked.MAX_BUFFERED", 16 * 1024)
    follow = GrowingSegments.follow

    def small_send_buffers(
        self: GrowingSegments, msn: int, transport: asyncio.Transport
    ) -> asyncio.Future[bool]:
        # the kernel's buffers of a loopback socket would take a whole 1 s segment
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return follow(self, msn, transport)

    monkeypatch.setattr(GrowingSegments, "follow", small_send_buffers)
    channel, frames = go_live(site, six_seconds)
    rest = feed_until(channel, frames, 1.05)  # seg1 has just begun
    rendition = site.hls.rendition("alice")
    assert rendition is not None
    path = f"/live/alice/{rendition.token}/seg1.m4s"
    reader = await client.get(path)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (client.host, client.port))
    await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await asyncio.sleep(0.1)
    assert rendition.growing.followers == 2
    for frame in rest:  # seg1 grows and completes, then seg2...
        channel.add_frame(frame)
        await asyncio.sleep(0)
    assert rendition.growing.dropped == 1
    body = await reader.read()
    assert body == rendition.stream.segment(1)
    sock.close()
    channel.close()
