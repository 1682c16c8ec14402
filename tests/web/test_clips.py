"""Clips of a real node's recordings: a viewer cuts the last 30 s of a live broadcast (fed
through the hub from real ffmpeg media, recorded by the real recorder), and gets an MP4
that decodes from a keyframe at its first frame, about as long as asked; a broadcast
that is not recorded is refused with a reason; who may delete a clip."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from strom.server import StromServer
from tests.helpers import MediaFile, make_settings
from tests.helpers.recorded import GOP, go_live, long_media, recorded
from tests.helpers.web import Browser

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaFile:
    return long_media(tmp_path_factory.mktemp("clips") / "long.flv")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StromServer]:
    srv = StromServer(make_settings(tmp_path, clips_per_hour=3))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


class Api:
    def __init__(self, server: StromServer, http: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{server.http_port}"
        self.http = http

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def read(self, url: str) -> bytes:
        assert url.startswith(self.base + "/"), "the API gives whole URLs to share"
        async with self.http.get(url) as resp:
            assert resp.status == 200, url
            return await resp.read()


async def person(server: StromServer, name: str) -> str:
    store = server.store
    await store.users.create(name, PASSWORD)
    return await store.tokens.create(name, "clips")


def first_video(mp4: Path) -> tuple[bool, float, float]:
    """Whether the first video packet is a keyframe, when the first frame shows (seconds
    after the file's start) and the file's duration."""
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        packet = next(p for p in container.demux(stream) if p.size)
        frame = next(iter(packet.decode()), None) or next(container.decode(stream))
        assert container.duration is not None
        start = container.start_time or 0
        shown = float(frame.time or 0.0) - start / av.time_base
        return (
            bool(packet.is_keyframe and frame.key_frame),
            shown,
            container.duration / av.time_base,
        )


async def test_a_viewer_clips_the_last_30_seconds(
    server: StromServer, media: MediaFile, tmp_path: Path
) -> None:
    streamer = await person(server, "streamer")
    viewer = await person(server, "viewer")
    stranger = await person(server, "stranger")
    go_live(server, "streamer", media)
    recording = await recorded(server, "streamer", 35.0)

    async with aiohttp.ClientSession() as http:
        api = Api(server, http)
        guest = Browser(server)
        try:
            await guest.get("/streamer")
            status, answer = await guest.api("POST", "/api/v1/channels/streamer/clips", json={})
        finally:
            await guest.close()
        assert status == 401, answer  # guests may not

        status, clip = await api.call(
            "POST", "/api/v1/channels/streamer/clips", viewer, {"duration": 30}
        )
        assert status == 201, clip
        assert clip["creator"] == "viewer"
        assert clip["recording"] == recording.id
        assert 30 <= clip["duration"] <= 30 + GOP + 0.1

        mp4 = tmp_path / "clip.mp4"
        mp4.write_bytes(await api.read(clip["mp4_url"]))
        keyframe, shown, duration = first_video(mp4)
        assert keyframe, "the clip starts on a keyframe"
        assert abs(shown) < 0.1, shown
        assert 29.5 <= duration <= 30 + GOP + 0.5, duration

        page = (await api.read(clip["url"])).decode()
        assert (
            f'<meta property="og:video" content="http://127.0.0.1:{server.http_port}/clips/' in page
        )
        status, listed = await api.call("GET", "/api/v1/channels/streamer/clips")
        assert [c["slug"] for c in listed["clips"]] == [clip["slug"]]
        assert listed["clips"][0]["views"] == 1

        # From a recording being watched: the 10 s before 20 s into it.
        status, earlier = await api.call(
            "POST",
            "/api/v1/channels/streamer/clips",
            viewer,
            {"duration": 10, "recording": recording.id, "end": 20.0, "title": "the good part"},
        )
        assert status == 201, earlier
        assert earlier["title"] == "the good part"
        assert earlier["start"] <= 10.0 < earlier["start"] + earlier["duration"]
        assert earlier["start"] + earlier["duration"] >= 20.0 - 0.1

        status, refused = await api.call(
            "POST", "/api/v1/channels/streamer/clips", viewer, {"duration": 600}
        )
        assert status == 422, refused

        # Its creator may rename it, nobody else.
        renamed = {"title": "a better title"}
        status, answer = await api.call(
            "PATCH", f"/api/v1/clips/{earlier['slug']}", streamer, renamed
        )
        assert status == 403, answer
        status, answer = await api.call(
            "PATCH", f"/api/v1/clips/{earlier['slug']}", viewer, renamed
        )
        assert status == 200, answer
        assert answer["title"] == "a better title"

        # A channel made private: its clips are its viewers' only (the streamer's here).
        status, answer = await api.call(
            "PATCH", "/api/v1/me/channel", streamer, {"visibility": "private"}
        )
        assert status == 200, answer
        for who in (None, stranger):
            status, answer = await api.call("GET", f"/api/v1/clips/{clip['slug']}", who)
            assert status == 403, answer
            status, answer = await api.call("GET", "/api/v1/channels/streamer/clips", who)
            assert status == 403, answer
        async with http.get(clip["mp4_url"]) as resp:
            assert resp.status == 403
        async with http.get(
            clip["mp4_url"], headers={"Authorization": f"Bearer {streamer}"}
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "private, no-store"
        status, answer = await api.call(
            "PATCH", "/api/v1/me/channel", streamer, {"visibility": "public"}
        )
        assert status == 200, answer

        # Who may delete: not a stranger; the streamer may, and the file goes with it.
        slug = clip["slug"]
        status, answer = await api.call("DELETE", f"/api/v1/clips/{slug}", stranger)
        assert status == 403, answer
        status, answer = await api.call("DELETE", f"/api/v1/clips/{slug}", streamer)
        assert status == 200, answer
        status, answer = await api.call("GET", f"/api/v1/clips/{slug}")
        assert status == 404, answer
        assert not list((server.recorder.root.parent / "clips").rglob(f"{slug}.mp4"))
        status, answer = await api.call("DELETE", f"/api/v1/clips/{earlier['slug']}", viewer)
        assert status == 200, answer  # its creator

        # The rate limit (3 an hour here) answers 429 with when to try again.
        status, answer = await api.call("POST", "/api/v1/channels/streamer/clips", viewer, {})
        assert status == 429, answer


async def test_a_broadcast_not_recorded_cannot_be_clipped(
    server: StromServer, av_media: MediaFile
) -> None:
    await person(server, "quiet")
    viewer = await person(server, "viewer")
    await server.store.channels.update("quiet", record_broadcasts=False)
    go_live(server, "quiet", av_media)
    async with aiohttp.ClientSession() as http:
        api = Api(server, http)
        async with asyncio.timeout(10):  # the recorder has asked the streamer's switch
            while server.recorder.metrics()["active"] or "quiet" in server.recorder._asking:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        status, answer = await api.call("POST", "/api/v1/channels/quiet/clips", viewer, {})
        assert status == 409, answer
        assert answer["code"] == "not_recorded"
        assert answer["error"].startswith("Clips need the recording on")
        status, answer = await api.call("POST", "/api/v1/channels/nobody/clips", viewer, {})
        assert status == 404, answer


async def test_the_oldest_clips_go_when_the_site_holds_too_many_bytes(
    tmp_path: Path, media: MediaFile
) -> None:
    # Room for about one 20 s clip of this media (~0.8 MB each).
    srv = StromServer(make_settings(tmp_path, clips_max_gb=1.2e6 / (1 << 30)))
    await srv.start()
    try:
        await person(srv, "streamer")
        viewer = await person(srv, "viewer")
        go_live(srv, "streamer", media)
        await recorded(srv, "streamer", 35.0)
        async with aiohttp.ClientSession() as http:
            api = Api(srv, http)
            made = []
            for _ in range(2):
                status, clip = await api.call(
                    "POST", "/api/v1/channels/streamer/clips", viewer, {"duration": 20}
                )
                assert status == 201, clip
                made.append(clip["slug"])
            async with asyncio.timeout(10):
                while True:
                    status, listed = await api.call("GET", "/api/v1/channels/streamer/clips")
                    if [c["slug"] for c in listed["clips"]] == made[1:]:
                        break
                    await asyncio.sleep(0.05)
            files = srv.recorder.root.parent / "clips"
            assert [p.stem for p in files.rglob("*.mp4")] == made[1:]
    finally:
        await srv.stop()
