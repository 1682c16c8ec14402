"""LL-DASH over HTTP: the MPD of a live channel names one-track views of the LL-HLS
rendition's own segments, and the segment being written goes out as it grows (chunked),
to every viewer at once.

Real media (an FLV made by ffmpeg: H.264 + AAC, a keyframe a second) fed through the hub
frame by frame; the answers are read by aiohttp's client over a real socket."""

from __future__ import annotations

import asyncio
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from strom.delivery import hls as hls_module
from strom.delivery.chunked import GrowingSegments
from strom.delivery.dash import DashDelivery
from strom.delivery.hls import HlsDelivery
from strom.errors import ApiError
from strom.live.channel import Channel
from strom.live.registry import Registry
from strom.media.dash.mpd import NAMESPACE
from strom.media.dash.tracks import fragments_for_track, init_for_track
from strom.media.ladder import parse_rungs
from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID, Frame, Track
from strom.web.errors import json_error
from tests.helpers import MediaFile, make_media
from tests.helpers.hub import read_flv

NS = {"d": NAMESPACE}
TIME_URL = "http://watch.example.org/live/time"


class Site:
    def __init__(self) -> None:
        self.registry = Registry()
        self.hls = HlsDelivery(self.registry)
        self.dash = DashDelivery(self.hls, rungs=parse_rungs("180p"))


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


def go_live(site: Site, media: MediaFile, name: str = "alice") -> tuple[Channel, list[Frame]]:
    items = read_flv(media.path)
    channel = site.registry.open(name)
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


async def test_the_mpd_names_one_track_views_of_the_ll_hls_segments(
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
    reps = mpd.findall(".//d:Representation", NS)
    tracks = channel.tracks
    assert [(r.get("id"), r.get("codecs")) for r in reps] == [
        (str(VIDEO_TRACK_ID), tracks[VIDEO_TRACK_ID].codec_string),
        (str(AUDIO_TRACK_ID), tracks[AUDIO_TRACK_ID].codec_string),
    ]
    rep = reps[0]
    assert (rep.get("width"), rep.get("height")) == (str(av_media.width), str(av_media.height))
    template = rep.find("d:SegmentTemplate", NS)
    assert template is not None
    assert template.get("media") == f"{token}/t$RepresentationID$-seg$Number$.m4s"
    assert template.get("initialization") == f"{token}/t$RepresentationID$-init-0.mp4"
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
    # Those names answer with each track of the LL-HLS rendition's bytes.
    assert channel.init_segment is not None
    for track_id in (VIDEO_TRACK_ID, AUDIO_TRACK_ID):
        init = await client.get(f"/live/alice/{token}/t{track_id}-init-0.mp4")
        assert await init.read() == init_for_track(channel.init_segment, track_id)
        seg = await client.get(f"/live/alice/{token}/t{track_id}-seg0.m4s")
        assert "immutable" in seg.headers["Cache-Control"]
        assert await seg.read() == fragments_for_track(stream.segment(0) or b"", track_id)
    for missing in ("t7-init-0.mp4", "t1-part0.0.m4s", "t1-seg0.mp4"):
        assert (await client.get(f"/live/alice/{token}/{missing}")).status == 404
    # Revalidation: the same MPD until the rendition changes.
    again = await client.get(
        "/live/alice/index.mpd", headers={"If-None-Match": resp.headers["ETag"]}
    )
    assert again.status == 304
    channel.close()


async def test_a_ladders_renditions_are_more_video_representations(
    site: Site, client: TestClient[web.Request, web.Application], av_media: MediaFile
) -> None:
    # The ladder's rendition is a channel of its own on the source's media clock (its
    # frames keep the source's times): here the same frames stand in for its output.
    source, frames = go_live(site, av_media)
    rung, _ = go_live(site, av_media, "alice~180p")
    feed_until(source, frames, 1.5)
    first = await client.get("/live/alice/index.mpd")
    reps = ET.fromstring(await first.text()).findall(".//d:Representation", NS)
    assert [r.get("id") for r in reps] == [str(VIDEO_TRACK_ID), str(AUDIO_TRACK_ID)]
    for frame in frames:
        if frame.dts / source.tracks[frame.track_id].timescale >= 1.5:
            break
        rung.add_frame(frame)
    resp = await client.get("/live/alice/index.mpd")
    assert resp.headers["ETag"] != first.headers["ETag"]  # the ladder changed it
    mpd = ET.fromstring(await resp.text())
    video, audio = mpd.findall(".//d:AdaptationSet", NS)
    assert [r.get("id") for r in audio.findall("d:Representation", NS)] == [str(AUDIO_TRACK_ID)]
    _, rendition = video.findall("d:Representation", NS)
    assert rendition.get("id") == "alice~180p"
    template = rendition.find("d:SegmentTemplate", NS)
    assert template is not None
    hls_rendition = site.hls.rendition("alice~180p")
    assert hls_rendition is not None
    token = hls_rendition.token
    assert template.get("media") == f"../alice~180p/{token}/t{VIDEO_TRACK_ID}-seg$Number$.m4s"
    # The names answer (resolved against the MPD's URL) with the rendition's video.
    base = "/live/alice/"
    init = await client.get(base + str(template.get("initialization")))
    assert init.status == 200
    assert rung.init_segment is not None
    assert await init.read() == init_for_track(rung.init_segment, VIDEO_TRACK_ID)
    seg = await client.get(base + str(template.get("media")).replace("$Number$", "0"))
    assert await seg.read() == fragments_for_track(
        hls_rendition.stream.segment(0) or b"", VIDEO_TRACK_ID
    )
    # Built once for every viewer until something changes.
    source_rendition = site.hls.rendition("alice")
    assert source_rendition is not None
    body = site.dash.mpd(source_rendition, TIME_URL)
    assert site.dash.mpd(source_rendition, TIME_URL) is body
    source.close()
    rung.close()


async def test_the_segment_being_written_goes_out_as_it_grows(
    site: Site, client: TestClient[web.Request, web.Application], six_seconds: MediaFile
) -> None:
    channel, frames = go_live(site, six_seconds)
    rest = feed_until(channel, frames, 1.5)  # seg1 (1 s to 2 s) has begun
    rendition = site.hls.rendition("alice")
    assert rendition is not None
    base = f"/live/alice/{rendition.token}"
    # Three viewers of the video, one of the audio; and an LL-HLS player's request for
    # the whole segment, which waits until it is complete (parts are its way early).
    growing = [await client.get(f"{base}/t1-seg1.m4s") for _ in range(3)]
    growing.append(await client.get(f"{base}/t2-seg1.m4s"))
    muxed = asyncio.create_task(client.get(f"{base}/seg1.m4s"))
    for resp in growing:
        assert resp.status == 200
        assert resp.headers["Transfer-Encoding"] == "chunked"
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Accel-Buffering"] == "no"  # nginx in front streams it too
        assert resp.content_type == "video/mp4"
    first = await growing[0].content.read(8)
    assert first[4:8] == b"moof"  # the chunks already there come at once
    # The next segment, not begun yet: the request waits for it, then it grows too.
    following = asyncio.create_task(client.get(f"{base}/t1-seg2.m4s"))
    await asyncio.sleep(0.05)
    assert not following.done()
    assert not muxed.done()
    for frame in rest:
        channel.add_frame(frame)
        await asyncio.sleep(0)
    channel.close()  # the end closes the last segment
    bodies = [first + await growing[0].read()] + [await r.read() for r in growing[1:]]
    seg1 = rendition.stream.segment(1)
    assert seg1 is not None
    video, audio = fragments_for_track(seg1, 1), fragments_for_track(seg1, 2)
    assert bodies == [video, video, video, audio]
    whole = await muxed
    assert "Transfer-Encoding" not in whole.headers
    assert await whole.read() == seg1
    tail = await following
    assert tail.status == 200
    assert await tail.read() == fragments_for_track(rendition.stream.segment(2) or b"", 1)
    # Once complete, the same URL is an ordinary immutable answer.
    done = await client.get(f"{base}/t1-seg1.m4s")
    assert "Transfer-Encoding" not in done.headers
    assert "immutable" in done.headers["Cache-Control"]
    assert await done.read() == video


async def test_a_segment_too_far_ahead_is_refused_at_once(
    site: Site, client: TestClient[web.Request, web.Application], av_media: MediaFile
) -> None:
    channel, frames = go_live(site, av_media)
    feed_until(channel, frames, 2.5)
    rendition = site.hls.rendition("alice")
    assert rendition is not None
    resp = await client.get(f"/live/alice/{rendition.token}/t1-seg9.m4s")
    assert resp.status == 404
    channel.close()


async def test_a_stopping_node_ends_the_growing_answers(
    site: Site, client: TestClient[web.Request, web.Application], av_media: MediaFile
) -> None:
    channel, frames = go_live(site, av_media)
    feed_until(channel, frames, 1.5)  # seg1 being written
    rendition = site.hls.rendition("alice")
    assert rendition is not None
    resp = await client.get(f"/live/alice/{rendition.token}/t1-seg1.m4s")
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
    path = f"/live/alice/{rendition.token}/t1-seg1.m4s"
    reader = await client.get(path)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (client.host, client.port))
    await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await asyncio.sleep(0.1)
    assert rendition.views.followers == 2
    for frame in rest:  # seg1 grows and completes, then seg2...
        channel.add_frame(frame)
        await asyncio.sleep(0)
    assert rendition.views.dropped == 1
    body = await reader.read()
    assert body == fragments_for_track(rendition.stream.segment(1) or b"", 1)
    sock.close()
    channel.close()


async def test_a_viewer_that_goes_away_ends_its_answer_at_once(
    site: Site, six_seconds: MediaFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A viewer of the growing segment closes its connection: its answer ends with the
    next chunk, not at the idle timeout (30 s of a handler held; a stopping node waited
    for it). Served as Strom serves it: aiohttp does not cancel a handler whose client
    went (the test client's server does)."""
    ended = asyncio.Event()
    stream_segment = hls_module.stream_segment

    async def watched(*args: Any, **kwargs: Any) -> web.StreamResponse:
        try:
            return await stream_segment(*args, **kwargs)
        finally:
            ended.set()

    async def media(request: web.Request) -> web.StreamResponse:
        m = request.match_info
        return await site.hls.media(request, m["channel"], m["rendition"], m["file"])

    monkeypatch.setattr(hls_module, "stream_segment", watched)
    app = web.Application()
    app.router.add_get("/live/{channel}/{rendition}/{file}", media)
    runner = web.AppRunner(app)
    await runner.setup()
    server = web.TCPSite(runner, "127.0.0.1", 0)
    await server.start()
    port = runner.addresses[0][1]
    try:
        channel, frames = go_live(site, six_seconds)
        rest = feed_until(channel, frames, 1.05)  # seg1 has just begun
        rendition = site.hls.rendition("alice")
        assert rendition is not None
        path = f"/live/alice/{rendition.token}/t1-seg1.m4s"
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        async with asyncio.timeout(5):
            while rendition.views.followers != 1:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        sock.close()
        await asyncio.sleep(0.1)
        feed_until(channel, rest, 1.3)  # seg1 grows, still open
        async with asyncio.timeout(5):
            await ended.wait()
        so_far = rendition.stream.segment_so_far(1)
        assert so_far is not None
        assert so_far[1] is False
        channel.close()
    finally:
        await runner.cleanup()
