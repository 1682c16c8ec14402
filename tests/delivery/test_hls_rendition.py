"""LL-HLS as a subscriber of the hub: one rendition per broadcast, attached when a channel
goes live, kept across a stall, served ended until a little after the registry forgets the
channel, and blocking reloads woken when the part they wait for completes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from strom.delivery import hls as hls_module
from strom.delivery.hls import HlsDelivery
from strom.errors import ApiError
from strom.live.channel import Channel, Subscriber
from strom.live.chunk import Chunk
from strom.live.registry import Registry
from strom.media.containers.mp4 import Mp4Demuxer
from strom.media.model import Frame, Track
from strom.web.errors import json_error

DATA = Path(__file__).resolve().parents[1] / "data"


def media() -> tuple[list[Track], list[Frame]]:
    events = Mp4Demuxer().feed((DATA / "mediarecorder_h264_opus.mp4").read_bytes())
    return [e for e in events if isinstance(e, Track)], [e for e in events if isinstance(e, Frame)]


class Waiting(Subscriber):
    """A WebSocket viewer stand-in: keeps the channel in the registry after the end."""

    def on_live(self, channel: Channel) -> None:
        pass

    def on_chunk(self, chunk: Chunk) -> None:
        pass

    def on_end(self) -> None:
        pass


async def get(hls: HlsDelivery, path: str) -> web.Response:
    """The answer a viewer gets (a refusal is what the app's error middleware sends)."""
    request = make_mocked_request("GET", path)
    name = request.path.split("/")[2]
    try:
        if request.path.endswith("index.m3u8"):
            response = await hls.playlist(request, name)
        else:
            token, file = request.path.split("/")[3:5]
            response = await hls.media(request, name, token, file)
    except ApiError as exc:
        return json_error(exc.http_status, exc.reason)
    assert isinstance(response, web.Response)
    return response


def text(response: web.Response) -> str:
    assert isinstance(response.body, bytes)
    return response.body.decode()


async def test_a_broadcast_has_one_rendition_from_live_to_end() -> None:
    registry = Registry()
    hls = HlsDelivery(registry)
    tracks, frames = media()
    channel = registry.open("alice")
    channel.subscribe(Waiting())
    assert (await get(hls, "/live/alice/index.m3u8")).status == 404  # not live yet
    channel.claim(first := object())  # type: ignore[arg-type]
    for track in tracks:
        channel.set_track(track)
    half = len(frames) // 2
    for frame in frames[:half]:
        channel.add_frame(frame)
    assert channel.viewers == 1  # the rendition is no audience
    playlist = text(await get(hls, "/live/alice/index.m3u8"))
    assert "#EXT-X-PART:" in playlist
    token = hls._renditions["alice"].token
    assert f'#EXT-X-MAP:URI="{token}/init-0.mp4"' in playlist
    assert (await get(hls, f"/live/alice/{token}/init-0.mp4")).body == channel.init_segment
    # The publisher drops and comes back with the same codecs: the same playlist goes on.
    channel.publisher_lost(first)  # type: ignore[arg-type]
    channel.claim(second := object())  # type: ignore[arg-type]
    for track in tracks:
        channel.set_track(track)
    for frame in frames[half:]:
        channel.add_frame(frame)
    playlist = text(await get(hls, "/live/alice/index.m3u8"))
    assert "#EXT-X-DISCONTINUITY" not in playlist
    assert "init-1.mp4" not in playlist
    channel.release(second)  # type: ignore[arg-type]
    # Ended, and served so while the channel is kept (a viewer waits on it)...
    assert text(await get(hls, "/live/alice/index.m3u8")).endswith("#EXT-X-ENDLIST\n")
    # ...and a new broadcast starts a new rendition: new media names, and media sequence
    # numbers going on from the last broadcast's, so that no URL an HTTP cache may hold
    # (not even a blocking reload's ?_HLS_msn=) names something of the old one.
    ended = hls._renditions["alice"]
    channel.claim(third := object())  # type: ignore[arg-type]
    for track in tracks:
        channel.set_track(track)
    for frame in frames[:half]:
        channel.add_frame(frame)
    playlist = text(await get(hls, "/live/alice/index.m3u8"))
    assert "#EXT-X-ENDLIST" not in playlist
    assert f"#EXT-X-MEDIA-SEQUENCE:{ended.stream.next_msn}" in playlist
    assert ended.stream.next_msn > 0
    assert ended.token not in playlist
    assert f"{hls._renditions['alice'].token}/part{ended.stream.next_msn}.0.m4s" in playlist
    channel.release(third)  # type: ignore[arg-type]


async def test_a_forgotten_channel_takes_its_rendition_along(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hls_module, "_ENDED_KEEP_TARGET_DURATIONS", 0.05)  # 0.1 s
    registry = Registry()
    hls = HlsDelivery(registry)
    tracks, frames = media()
    channel = registry.open("bob")
    channel.claim(publisher := object())  # type: ignore[arg-type]
    for track in tracks:
        channel.set_track(track)
    for frame in frames:
        channel.add_frame(frame)
    assert (await get(hls, "/live/bob/index.m3u8")).status == 200
    channel.release(publisher)  # nobody else follows it: the registry forgets it
    assert registry.get("bob") is None
    # An LL-HLS player's next reload still finds the end: the last segment, EXT-X-ENDLIST.
    playlist = text(await get(hls, "/live/bob/index.m3u8"))
    assert playlist.endswith("#EXT-X-ENDLIST\n")
    last = [line for line in playlist.splitlines() if line.endswith(".m4s")][-1]
    assert (await get(hls, f"/live/bob/{last}")).status == 200
    # A few target durations later it is gone.
    await asyncio.sleep(0.3)
    assert (await get(hls, "/live/bob/index.m3u8")).status == 404
    assert not hls._renditions


async def test_a_new_broadcast_replaces_the_ended_one_kept() -> None:
    registry = Registry()
    hls = HlsDelivery(registry)
    tracks, frames = media()
    for name in ("first", "second"):
        channel = registry.open("erin")
        channel.claim(publisher := object())  # type: ignore[arg-type]
        for track in tracks:
            channel.set_track(track)
        for frame in frames:
            channel.add_frame(frame)
        playlist = text(await get(hls, "/live/erin/index.m3u8"))
        assert "#EXT-X-ENDLIST" not in playlist, name
        token = hls._renditions["erin"].token
        channel.release(publisher)  # type: ignore[arg-type]
        assert registry.get("erin") is None
        assert text(await get(hls, "/live/erin/index.m3u8")).endswith("#EXT-X-ENDLIST\n")
    assert len(hls._renditions) == 1
    assert hls._renditions["erin"].token == token


async def test_a_delivery_made_while_a_channel_is_live_serves_it() -> None:
    registry = Registry()
    tracks, frames = media()
    channel = registry.open("carol")
    channel.claim(object())  # type: ignore[arg-type]
    for track in tracks:
        channel.set_track(track)
    channel.add_frame(next(f for f in frames if f.keyframe))
    assert channel.live
    hls = HlsDelivery(registry)
    for frame in frames:
        channel.add_frame(frame)
    assert "#EXT-X-PART:" in text(await get(hls, "/live/carol/index.m3u8"))
    channel.close()


async def test_a_blocking_reload_is_answered_when_its_part_completes() -> None:
    registry = Registry()
    hls = HlsDelivery(registry)
    channel, frames, fed = await live_with_a_part(hls, registry)
    waiting = asyncio.create_task(get(hls, "/live/erin/index.m3u8?_HLS_msn=0&_HLS_part=1"))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # part 0.1 is not there yet
    while not waiting.done() and fed < len(frames):
        channel.add_frame(frames[fed])
        fed += 1
        await asyncio.sleep(0)
    response = await waiting
    assert response.status == 200
    assert "part0.1.m4s" in text(response)
    channel.close()


async def live_with_a_part(
    hls: HlsDelivery, registry: Registry
) -> tuple[Channel, list[Frame], int]:
    tracks, frames = media()
    channel = registry.open("erin")
    channel.claim(object())  # type: ignore[arg-type]
    for track in tracks:
        channel.set_track(track)
    fed = 0
    while "#EXT-X-PART:" not in text(await get(hls, "/live/erin/index.m3u8")):
        channel.add_frame(frames[fed])
        fed += 1
    return channel, frames, fed


async def test_the_viewers_blocked_on_one_part_get_one_answer() -> None:
    """A hundred blocked reloads woken by the same part: the very same bytes for all
    (rendered and encoded once), each with the same ETag."""
    registry = Registry()
    hls = HlsDelivery(registry)
    channel, frames, fed = await live_with_a_part(hls, registry)
    url = "/live/erin/index.m3u8?_HLS_msn=0&_HLS_part=1"
    waiting = [asyncio.create_task(get(hls, url)) for _ in range(100)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiting)
    while not all(w.done() for w in waiting) and fed < len(frames):
        channel.add_frame(frames[fed])
        fed += 1
        await asyncio.sleep(0)
    answers = [await w for w in waiting]
    assert all(a.status == 200 for a in answers)
    assert "part0.1.m4s" in text(answers[0])
    assert len({id(a.body) for a in answers}) == 1  # one body, written a hundred times
    assert len({a.headers["ETag"] for a in answers}) == 1
    channel.close()


async def test_a_blocked_reload_of_a_stalled_channel_ends_with_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The part never comes (the encoder stalled): the wait ends at its deadline (three
    target durations; shortened here) with 503, as rfc8216bis 6.2.6 asks, even though no
    part wakes the waiters."""
    monkeypatch.setattr(hls_module, "_BLOCK_TARGET_DURATIONS", 0.15)  # 0.3 s
    monkeypatch.setattr(hls_module, "_RECHECK_SECONDS", 0.05)
    registry = Registry()
    hls = HlsDelivery(registry)
    channel, _, _ = await live_with_a_part(hls, registry)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await get(hls, "/live/erin/index.m3u8?_HLS_msn=0&_HLS_part=3")
    assert answer.status == 503
    assert 0.3 <= loop.time() - started < 5
    channel.close()
