"""What a crash leaves in a recording is closed and kept: the segment being written (no
index line yet, its last chunk cut short) is cut to its whole chunks and indexed, a half
written index line is dropped, and every frame that reached the disk still plays."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import time
from pathlib import Path

import aiohttp
import pytest

from strom.record import storage
from strom.record.salvage import close_interrupted, complete_chunks
from strom.server import StromServer
from tests.helpers import CHANNEL, MediaFile, publish_args, run_process
from tests.helpers.watching import decode, wait_recording

pytestmark = pytest.mark.e2e


def test_complete_chunks() -> None:
    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(body), kind) + body

    chunk = box(b"moof", b"m" * 20) + box(b"mdat", b"d" * 50)
    assert complete_chunks(b"") == 0
    assert complete_chunks(chunk) == len(chunk)
    assert complete_chunks(chunk * 3) == 3 * len(chunk)
    for cut in range(1, len(chunk)):
        assert complete_chunks(chunk * 2 + chunk[:cut]) == 2 * len(chunk)
    assert complete_chunks(box(b"moof", b"") + box(b"moof", b"")) == 0  # not pairs
    assert complete_chunks(chunk + b"\x00\x00\x00\x01mdat") == len(chunk)  # a bad size


async def test_a_killed_recording_keeps_every_frame_on_disk(
    server: StromServer, av_media: MediaFile, tmp_path: Path
) -> None:
    code, out = await run_process(*publish_args(av_media, server.rtmp_port))
    assert code == 0, out
    async with aiohttp.ClientSession() as http:
        rec = await wait_recording(http, server, finished=True)
    assert server.recorder is not None
    done = server.recorder.root / CHANNEL / rec["id"]
    whole = storage.load(done)
    assert whole is not None
    assert len(whole.segments) >= 3
    last = whole.segments[-1]

    # The same recording as a SIGKILL in its last segment leaves it: still "recording",
    # the last segment's index line half written, the chunk after it cut in half.
    root = tmp_path / "recordings"
    crashed = root / CHANNEL / rec["id"]
    shutil.copytree(done, crashed)
    meta = json.loads((crashed / storage.META).read_text())
    storage.write_meta(crashed, {**meta, "status": storage.RECORDING, "ended": None})
    lines = (crashed / storage.INDEX).read_text().splitlines(keepends=True)
    (crashed / storage.INDEX).write_text("".join(lines[:-1]) + lines[-1][:12])
    seg = crashed / storage.segment_name(last.seq)
    media = seg.read_bytes()
    moof_size = struct.unpack_from(">I", media)[0]
    mdat_size = struct.unpack_from(">I", media, moof_size)[0]
    with seg.open("ab") as f:  # a whole moof, its mdat cut 10 bytes short
        f.write(media[: moof_size + mdat_size - 10])
    before = time.time()

    (closed,) = await asyncio.to_thread(close_interrupted, root, set())
    assert closed.status == storage.FINISHED
    assert closed.ended is not None
    assert closed.ended <= before  # when it last got media, not when it was closed
    assert [s.seq for s in closed.segments] == [s.seq for s in whole.segments]
    salvaged = closed.segments[-1]
    assert salvaged.bytes == last.bytes == len(media)
    assert seg.read_bytes() == media
    # The writer's own estimate of a segment's end and the salvage's differ by a frame or two.
    assert abs(salvaged.duration - last.duration) < 0.1
    assert abs(closed.duration - whole.duration) < 0.1
    assert close_interrupted(root, set()) == []  # once only

    playlist = crashed / "index.m3u8"
    playlist.write_text(storage.vod_playlist(closed))
    frames, errors = await decode(str(playlist))
    assert errors == ""
    assert frames == av_media.frames


def test_nothing_to_salvage(tmp_path: Path) -> None:
    """A recording killed before its first whole chunk: closed, nothing indexed."""
    path = tmp_path / "recordings" / CHANNEL / "20240101-120000"
    (path / storage.SEGMENTS).mkdir(parents=True)
    storage.write_meta(path, {"channel": CHANNEL, "started": 1.0, "status": "recording"})
    (path / storage.init_name(1)).write_bytes(b"\x00\x00\x00\x08ftyp")
    (path / storage.segment_name(1)).write_bytes(b"\x00\x00\x01\x00moof" + b"\x00" * 40)
    (closed,) = close_interrupted(tmp_path / "recordings", set())
    assert closed.finished
    assert closed.segments == ()
    assert not (path / storage.INDEX).exists()
