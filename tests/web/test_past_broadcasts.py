"""The channel page's past broadcasts (``web.pages.directory.past_broadcasts``): finished
recordings with something in them, newest first, with the broadcast's title and peak
viewers when the store knows them and the channel's title otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from strom.record import storage
from strom.store.views import BroadcastInfo
from strom.web.pages.directory import past_broadcasts
from strom.web.paths import clock_text

STARTED = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
REQUEST: Any = None  # only handed on to the other nodes


def record(root: Path, day: int, *, status: str, seconds: list[float], bid: int | None) -> None:
    path = root / "alice" / f"202611{day}-070640"
    path.mkdir(parents=True)
    started = STARTED + (day - 18) * 86400
    meta = {"channel": "alice", "started": started, "ended": None, "status": status}
    storage.write_meta(path, {**meta, "broadcast_id": bid, "error": None})
    lines = [
        json.dumps({"seq": i + 1, "start": 0.0, "duration": d, "bytes": 10, "init": 1})
        for i, d in enumerate(seconds)
    ]
    (path / storage.INDEX).write_text("".join(line + "\n" for line in lines))


class FakeBroadcasts:
    async def list(self, username: str, limit: int = 20) -> list[BroadcastInfo]:
        then = datetime.fromtimestamp(STARTED, UTC)
        return [BroadcastInfo(7, username, "Then", None, then, then, 12)]


class FakeStore:
    broadcasts = FakeBroadcasts()


class FakeElsewhere:
    """The site's other nodes: what they list."""

    def __init__(self, items: list[dict[str, Any]] | None = None) -> None:
        self.items = items or []

    async def gather(self, request: Any, key: str) -> list[dict[str, Any]]:
        assert key == "recordings"
        return self.items


def fake_site(data_dir: Path, store: Any, elsewhere: FakeElsewhere | None = None) -> Any:
    recorder = SimpleNamespace(root=data_dir / "recordings")
    return SimpleNamespace(recorder=recorder, store=store, elsewhere=elsewhere or FakeElsewhere())


async def test_lists_finished_recordings_with_their_title_at_the_time(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    record(root, 18, status="finished", seconds=[2.0, 2.0, 1.5], bid=7)
    record(root, 19, status="finished", seconds=[61.0], bid=None)
    record(root, 20, status="recording", seconds=[2.0], bid=8)  # the live
    record(root, 21, status="failed", seconds=[], bid=None)  # nothing in it
    found = await past_broadcasts(fake_site(tmp_path, FakeStore()), "alice", "Now", REQUEST)
    assert [(r["id"], r["title"], r["length"], r["peak_viewers"]) for r in found] == [
        ("20261119-070640", "Now", "1:01", None),
        ("20261118-070640", "Then", "0:05", 12),
    ]
    assert found[1]["playlist_url"] == "/vod/alice/20261118-070640/index.m3u8"
    assert found[1]["date"] == "2026-11-18 11:06 UTC"


async def test_recordings_on_other_nodes_are_listed_too(tmp_path: Path) -> None:
    """Each recording is on the node that ingested it; the page lists them all."""
    root = tmp_path / "recordings"
    record(root, 18, status="finished", seconds=[2.0], bid=None)
    elsewhere = FakeElsewhere(
        [
            {"id": "20261120-070640", "started": STARTED + 2 * 86400, "duration": 30.0,
             "broadcast_id": 7, "mp4_url": "/vod/alice/20261120-070640.mp4",
             "playlist_url": "/vod/alice/20261120-070640/index.m3u8", "thumbnail_url": None},
            {"id": "20261121-070640", "started": STARTED + 3 * 86400, "duration": 0.0,
             "broadcast_id": None, "mp4_url": None},  # still recording there
        ]
    )  # fmt: skip
    site = fake_site(tmp_path, FakeStore(), elsewhere)
    found = await past_broadcasts(site, "alice", "Now", REQUEST)
    assert [(r["id"], r["title"]) for r in found] == [
        ("20261120-070640", "Then"),
        ("20261118-070640", "Now"),
    ]


async def test_no_recordings_directory_is_an_empty_list(tmp_path: Path) -> None:
    assert await past_broadcasts(fake_site(tmp_path, FakeStore()), "alice", "Now", REQUEST) == []


def test_clock_text() -> None:
    assert [clock_text(s) for s in (0, 5.9, 65, 3725.5, -3)] == [
        "0:00", "0:05", "1:05", "1:02:05", "0:00",
    ]  # fmt: skip
