"""The soak scenario: its parts (WebSocket frames for the garbage, the server-log reading,
the report), and a short real soak of `strom serve` that must come back to its
baseline (descriptors within a few, RSS within the allowance, no traceback)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from bench import garbage, run, soak
from bench.report import markdown


def test_frames_right_and_wrong() -> None:
    text = garbage.frame(0x1, b"hi")
    assert text[:2] == bytes((0x81, 0x82))
    key = text[2:6]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(text[6:])) == b"hi"
    assert garbage.frame(0x1, b"x", masked=False) == b"\x81\x01x"
    assert garbage.frame(0x9, b"", fin=False)[0] == 0x09
    assert garbage.frame(0x1, b"", rsv=5)[0] == 0x80 | 0x50 | 0x1
    huge = garbage.frame(0x2, b"abc", length=64 << 20)
    assert huge[1] == 0x80 | 127
    assert struct.unpack(">Q", huge[2:10])[0] == 64 << 20
    assert len(garbage.frame(0x2, b"z" * 300)) == 2 + 2 + 4 + 300


def test_every_garbage_kind_is_listed() -> None:
    assert len(garbage.KINDS) == 12
    assert all(callable(fn) for fn in garbage.KINDS.values())


LOG = """\
2026-12-07 02:27:27,794 WARNING strom.ingest.rtmp: rtmp#12 127.0.0.1:5455: no connect in time
2026-12-07 02:27:27,800 WARNING strom.ingest.rtmp: rtmp#13 127.0.0.1:5466: no connect in time
message async handler error
Traceback (most recent call last):
  File "x.py", line 1, in f
    g()
ValueError: invalid literal for int() with base 10: 'Z'
2026-12-07 02:27:28,214 ERROR   aiohttp.server: Error handling request from 127.0.0.1
Traceback (most recent call last):
  File "y.py", line 2, in h

KeyError: 'sid'
2026-12-07 02:27:29,000 INFO    strom.live.channel: channel soak0: live -> offline
"""


def test_server_log_counts_tracebacks_errors_and_warning_kinds() -> None:
    found = soak.server_log(LOG)
    assert found["tracebacks"] == 2
    assert found["traceback_exceptions"] == {
        "ValueError: invalid literal for int() with base 10: 'Z'": 1,
        "KeyError: 'sid'": 1,
    }
    assert found["error_lines"] == 1
    assert found["warnings"] == 2
    assert found["warning_kinds"] == {"strom.ingest.rtmp: rtmp## #.#.#.#:#: no connect in time": 2}
    assert soak.server_log("")["tracebacks"] == 0


def test_the_allowance_is_the_larger_of_megabytes_and_share() -> None:
    plan = soak.SoakPlan(rss_tolerance_mb=16, rss_tolerance_share=0.1)
    assert plan.rss_allowance_kb(100 * 1024) == 16 * 1024
    assert plan.rss_allowance_kb(400 * 1024) == 40 * 1024
    base = soak.Level(rss_kb=100 * 1024, fds=20, t=0.0)
    assert soak.within(soak.Level(116 * 1024, 22, 1.0), base, plan)
    assert not soak.within(soak.Level(117 * 1024, 22, 1.0), base, plan)
    assert not soak.within(soak.Level(100 * 1024, 23, 1.0), base, plan)
    assert soak.SoakPlan(minutes=10).warmup_seconds == 60
    assert soak.SoakPlan(minutes=0.5).warmup_seconds == 20
    assert soak.SoakPlan(warmup=7).warmup_seconds == 7


@pytest.mark.e2e
async def test_a_short_soak_comes_back_to_its_baseline(tmp_path: Path) -> None:
    """~25 s of churn against `strom serve` (publishers dropping, viewers, chat, garbage):
    bounded (warm-up 8 s, settles of at most 60 s) and tolerant of a loaded machine
    (descriptors back within 5, RSS within 24 MB)."""
    opts = run.Options(
        out_root=tmp_path,
        soak_minutes=0.4,
        soak_warmup=8.0,
        soak_publishers=2,
        soak_viewers=8,
        soak_chat=6,
        garbage_rate=2.0,
        soak_settle=60.0,
        soak_fd_tolerance=5,
        soak_rss_tolerance_mb=24.0,
    )
    result = await soak.scenario_soak(opts)
    s = result["soak"]
    assert s["passed"], (s["failures"], s["server_log"]["first_errors"])
    assert s["server_log"]["tracebacks"] == 0
    # the database pool's idle connections are a working set (one more after the load
    # adds its file and journal): the leak check is on every other descriptor
    assert abs(s["other_fds_delta"]) <= 5
    assert s["end"]["db_checked_out"] == 0
    assert s["left_open"] == {
        "rtmp_connections": 0, "ws_viewers": 0, "socketio_clients": 0, "live_channels": 0,
    }  # fmt: skip
    assert s["video_frames_sent"] > 0
    assert sum(s["video_frames_received"].values()) > 0
    assert any(kind.startswith("garbage ") for kind in s["clients"])
    assert "publisher" in s["clients"]
    text = markdown("soak", result, {"date": "now", "machine": _machine(), "command": "x"})
    assert "Soak **PASS**" in text
    assert "| open fds |" in text


def _machine() -> dict[str, object]:
    return {"nproc": 2, "cpu": "test", "python": "3", "strom_commit": "abc"}


def test_a_servers_close_frame_is_recognised() -> None:
    text = bytes((0x81, 3)) + b"abc"
    close = bytes((0x88, 4)) + (1008).to_bytes(2, "big") + b"no"
    assert garbage._ws_outcome(text + close, "held 5 s") == "ws close 1008"
    assert garbage._ws_outcome(text, "held 5 s") == "held 5 s"
    assert garbage._ws_outcome(bytes((0x88, 0)), "x") == "ws close 1005"
    long_text = bytes((0x81, 126)) + (300).to_bytes(2, "big") + b"t" * 300
    assert garbage._ws_outcome(long_text + close, "x") == "ws close 1008"
