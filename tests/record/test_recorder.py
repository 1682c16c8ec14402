"""Recordings end to end: real ffmpeg publishes; the VOD playlist (during and after the
live), the DASH manifest and the MP4 download play in real ffmpeg with every frame; a
write error stops the recording, never the live; the owner deletes a recording;
retention deletes old ones."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import logging
import time
from pathlib import Path
from typing import BinaryIO

import aiohttp
import av
import pytest

from strom.live.registry import Registry
from strom.record import recorder as recorder_module
from strom.record import storage
from strom.record.recorder import Recorder, RecorderSettings
from strom.server import StromServer
from tests.helpers import CHANNEL, MediaFile, need_tool, publish_args, run_process
from tests.helpers.hub import feed, read_flv
from tests.helpers.watching import base, collect_ws, decode, recordings, wait_live, wait_recording

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough password"


async def probe_duration(url: str) -> float:
    code, out = await run_process(
        need_tool("ffprobe"), "-v", "error", "-show_entries", "format=duration",
        "-of", "default=nw=1:nk=1", url,
    )  # fmt: skip
    assert code == 0, out
    return float(out.strip())


@pytest.mark.parametrize("media_fixture", ["av_media", "video_only_media"])
async def test_broadcast_is_recorded_and_plays_as_vod_and_mp4(
    server: StromServer, media_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    media: MediaFile = request.getfixturevalue(media_fixture)
    publisher = asyncio.create_task(run_process(*publish_args(media, server.rtmp_port)))
    async with aiohttp.ClientSession() as http:
        await wait_live(server)
        # During the live: an EVENT playlist over the segments recorded so far.
        live = await wait_recording(http, server, finished=False)
        assert live["mp4_url"] is None
        async with http.get(base(server) + live["playlist_url"]) as resp:
            assert resp.status == 200
            text = await resp.text()
        assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text
        assert "#EXT-X-ENDLIST" not in text
        assert '#EXT-X-MAP:URI="init-1.mp4"' in text

        code, log = await publisher
        assert code == 0, log
        rec = await wait_recording(http, server, finished=True)
        assert rec["status"] == "finished"
        assert rec["id"] == live["id"]
        assert abs(rec["duration"] - media.frames / 30) < 0.2
        async with http.get(base(server) + rec["playlist_url"]) as resp:
            text = await resp.text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text
        assert text.endswith("#EXT-X-ENDLIST\n")

    frames, errors = await decode(base(server) + rec["playlist_url"])
    assert errors == ""
    assert frames == media.frames

    # The same files as a static MPEG-DASH presentation, which ffprobe reads.
    code, out = await run_process(
        need_tool("ffprobe"), "-v", "error", "-show_entries", "stream=codec_type:format=duration",
        "-of", "default=nw=1", base(server) + rec["manifest_url"],
    )  # fmt: skip
    assert code == 0, out
    kinds = {"codec_type=video"} | ({"codec_type=audio"} if media.audio else set())
    assert {line for line in out.split() if line.startswith("codec_type")} == kinds
    duration = float(next(v for v in out.split() if v.startswith("duration=")).split("=")[1])
    assert abs(duration - media.frames / 30) < 0.2
    # ... and ffmpeg decodes: every video frame, and the audio (a Representation each).
    frames, errors = await decode(base(server) + rec["manifest_url"])
    assert errors == ""
    assert frames == media.frames
    if media.audio:
        code, out = await run_process(
            need_tool("ffmpeg"), "-v", "error", "-i", base(server) + rec["manifest_url"],
            "-map", "0:a", "-f", "framemd5", "-",
        )  # fmt: skip
        assert code == 0, out
        audio_frames = [line for line in out.splitlines() if line.startswith("0,")]
        assert len(audio_frames) > 40 * media.frames / 30  # AAC: 43 frames a second

    # Its picture for the past-broadcasts list: a JPEG of the video, made once.
    async with (
        aiohttp.ClientSession() as http,
        http.get(base(server) + rec["thumbnail_url"]) as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "image/jpeg"
        jpeg = await resp.read()
    with av.open(io.BytesIO(jpeg)) as picture:
        frame = next(picture.decode(video=0))
    assert frame.width == 320
    assert frame.height == round(320 * media.height / media.width / 2) * 2

    mp4_url = base(server) + rec["mp4_url"]
    frames, errors = await decode(mp4_url)
    assert errors == ""
    assert frames == media.frames
    assert abs(await probe_duration(mp4_url) - media.frames / 30) <= 0.2
    # Seekable: ffmpeg starts 2 s in and decodes the rest.
    frames, errors = await decode(mp4_url, "-ss", "2")
    assert errors == ""
    assert 0 < frames < media.frames


async def test_write_error_stops_the_recording_not_the_live(
    server: StromServer,
    av_media: MediaFile,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    writes = 0

    def disk_fills_up(f: BinaryIO, data: bytes) -> None:
        nonlocal writes
        writes += 1
        if writes > 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        f.write(data)

    monkeypatch.setattr(recorder_module, "write_chunk", disk_fills_up)
    out = tmp_path / "ws.mp4"
    viewer = asyncio.create_task(collect_ws(f"{base(server)}/live/{CHANNEL}/ws", out))
    await asyncio.sleep(0.3)
    with caplog.at_level(logging.ERROR, logger="strom.record.recorder"):
        code, log = await run_process(*publish_args(av_media, server.rtmp_port))
        assert code == 0, log
        await viewer

    frames, errors = await decode(str(out))
    assert errors == ""
    assert frames == av_media.frames  # the viewer got every frame
    assert any("recording" in r.message and "No space left" in r.message for r in caplog.records), (
        caplog.text
    )
    async with aiohttp.ClientSession() as http:
        async with http.get(base(server) + "/api/v1/stats") as resp:
            metrics = await resp.json()
        failed = metrics["recordings"]["failed"]
        assert failed
        assert failed[0]["channel"] == CHANNEL
        assert "No space left" in failed[0]["error"]
        rec = (await recordings(http, server))[0]
        assert rec["status"] == "failed"


def fake_recording(root: Path, channel: str, rec_id: str, started: float, size: int = 0) -> Path:
    path = root / channel / rec_id
    (path / storage.SEGMENTS).mkdir(parents=True)
    (path / storage.SEGMENTS / "1.m4s").write_bytes(b"\0" * size)
    (path / storage.init_name(1)).write_bytes(b"init")
    line = {"seq": 1, "start": 0.0, "duration": 2.0, "bytes": size, "init": 1}
    (path / storage.INDEX).write_text(json.dumps(line) + "\n")
    storage.write_meta(path, {"started": started, "ended": started + 2, "status": "finished"})
    return path


async def test_only_the_owner_deletes_a_recording(server: StromServer) -> None:
    store = server.store
    assert store is not None
    assert server.recorder is not None
    await store.users.create("carol", PASSWORD)
    await store.users.create("dave", PASSWORD)
    carol = await store.tokens.create("carol", "t")
    dave = await store.tokens.create("dave", "t")
    path = fake_recording(server.recorder.root, "carol", "20240101-120000", time.time())
    url = f"{base(server)}/api/v1/me/recordings/20240101-120000"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base(server)}/api/v1/channels/carol/recordings") as resp:
            assert [r["id"] for r in (await resp.json())["recordings"]] == ["20240101-120000"]
        async with http.delete(url) as resp:
            assert resp.status == 403  # no session, no CSRF token: refused
        async with http.delete(url, headers={"Authorization": f"Bearer {dave}"}) as resp:
            assert resp.status == 404
        assert path.exists()
        async with http.delete(url, headers={"Authorization": f"Bearer {carol}"}) as resp:
            assert resp.status == 200
        assert not path.exists()
        async with http.get(f"{base(server)}/vod/carol/20240101-120000/index.m3u8") as resp:
            assert resp.status == 404


async def test_retention_deletes_old_and_excess_recordings(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    now = time.time()
    old = fake_recording(root, "alice", "20240101-120000", now - 10 * 86400)
    older_big = fake_recording(root, "bob", "20240102-120000", now - 3600, size=3000)
    newer_big = fake_recording(root, "bob", "20240103-120000", now - 60, size=3000)
    fresh = fake_recording(root, "alice", "20240104-120000", now - 60)
    settings = RecorderSettings(keep_days=1, max_bytes_per_channel=5000)
    recorder = Recorder(Registry(), root, settings)
    deleted = await recorder.apply_retention()
    assert set(deleted) == {old, older_big}
    assert fresh.exists()
    assert newer_big.exists()
    assert recorder.disk_bytes == storage.disk_usage(root)


def test_a_writer_that_falls_behind_stops_the_recording(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = recorder_module.Recording(
        "alice", tmp_path / "alice" / "20240101-120000", time.time(),
        RecorderSettings(queue_max_bytes=1000),
    )  # fmt: skip
    # The writer thread is not started: nothing drains the queue.
    assert rec.put((recorder_module._CHUNK, b"x" * 600, True, 0.0), 600)
    with caplog.at_level(logging.ERROR, logger="strom.record.recorder"):
        assert not rec.put((recorder_module._CHUNK, b"x" * 600, False, 0.03), 600)
    assert rec.failed
    assert "too slow" in caplog.text
    assert rec._queued == 0  # the memory is let go


async def test_a_streamer_who_turns_recording_off_is_not_recorded(
    server: StromServer, av_media: MediaFile
) -> None:
    """The dashboard's switch (PATCH record_broadcasts): off, a broadcast leaves no
    recording; back on, the next one is recorded."""
    store = server.store
    assert store is not None
    _, key = await store.users.create("erin", PASSWORD)
    token = await store.tokens.create("erin", "t")
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{base(server)}/api/v1/channels/erin/recordings"
    async with aiohttp.ClientSession() as http:
        async with http.patch(
            f"{base(server)}/api/v1/me/channel", json={"record_broadcasts": "no"}, headers=auth
        ) as resp:
            assert resp.status == 422
        async with http.patch(
            f"{base(server)}/api/v1/me/channel", json={"record_broadcasts": False}, headers=auth
        ) as resp:
            assert resp.status == 200
        info = await store.channels.get("erin")
        assert info is not None
        assert not info.record_broadcasts

        code, out = await run_process(*publish_args(av_media, server.rtmp_port, key))
        assert code == 0, out
        async with http.get(url) as resp:
            assert (await resp.json())["recordings"] == []
        assert not (server.recorder.root / "erin").exists()  # type: ignore[union-attr]

        async with http.patch(
            f"{base(server)}/api/v1/me/channel", json={"record_broadcasts": True}, headers=auth
        ) as resp:
            assert resp.status == 200
        code, out = await run_process(*publish_args(av_media, server.rtmp_port, key))
        assert code == 0, out
        async with asyncio.timeout(15):
            while True:
                async with http.get(url) as resp:
                    found = (await resp.json())["recordings"]
                if found and found[0]["status"] == "finished":
                    break
                await asyncio.sleep(0.1)
        assert found[0]["duration"] > 0


class _Publisher:
    def disconnect(self, reason: str) -> None:
        return


@pytest.mark.parametrize(
    ("wanted", "ends_first", "held_max"),
    [(True, False, None), (True, True, None), (False, False, None), (True, False, 250_000)],
)
async def test_a_slow_recording_switch_costs_no_seconds_of_the_broadcast(
    tmp_path: Path,
    video_only_media: MediaFile,
    wanted: bool,
    ends_first: bool,
    held_max: int | None,
) -> None:
    """The streamer's switch is read from the database when a broadcast starts; on a
    loaded server that can take longer than a group of pictures. The recording still
    starts at the broadcast's first keyframe (it once lost the first second); switched
    off, nothing is written."""
    answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def wants_recording(name: str) -> bool:
        return await answer

    registry = Registry()
    settings = (
        RecorderSettings() if held_max is None else RecorderSettings(queue_max_bytes=held_max)
    )
    recorder = Recorder(registry, tmp_path / "rec", settings, wants_recording=wants_recording)
    await recorder.start()
    channel = registry.open("alice")
    channel.claim(_Publisher())
    feed(channel, read_flv(video_only_media.path))  # every group of pictures, all of 3 s
    await asyncio.sleep(0.05)
    if ends_first:
        channel.release(channel.publisher)  # type: ignore[arg-type]
        channel.close()
    answer.set_result(wanted)
    await asyncio.sleep(0.05)
    if not ends_first:
        channel.release(channel.publisher)  # type: ignore[arg-type]
        channel.close()
    await recorder.stop()
    found = storage.list_recordings(tmp_path / "rec", "alice")
    if not wanted:
        assert found == []
        return
    [rec] = found
    assert rec.status == "finished"
    if held_max is not None:
        # an answer slower than the memory bound: the oldest pictures went, whole groups
        # of them, and what is kept starts at a keyframe and decodes
        assert rec.segments[0].start > 0
        assert rec.duration < video_only_media.frames / 30
    else:
        assert rec.segments[0].start == 0
        assert abs(rec.duration - video_only_media.frames / 30) < 0.1
    whole = (rec.path / storage.init_name(1)).read_bytes() + b"".join(
        (rec.path / storage.segment_name(s.seq)).read_bytes() for s in rec.segments
    )
    with av.open(io.BytesIO(whole)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == round(rec.duration * 30)
