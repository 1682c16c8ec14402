"""Dating nginx-rtmp's HLS segments: video decode times read from MPEG-TS must be what
ffprobe reads."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.ts import TsError, video_decode_times
from tests.helpers import need_tool


def test_decode_times_match_ffprobe(bench_flv: Path, tmp_path: Path) -> None:
    ts_path = tmp_path / "seg.ts"
    subprocess.run(
        [need_tool("ffmpeg"), "-v", "error", "-i", str(bench_flv), "-c", "copy",
         "-f", "mpegts", str(ts_path)],
        check=True, timeout=60,
    )  # fmt: skip
    probe = subprocess.run(
        [need_tool("ffprobe"), "-v", "error", "-select_streams", "v:0",
         "-show_entries", "packet=dts", "-of", "csv=p=0", str(ts_path)],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    expected = [int(line.strip(",")) for line in probe.stdout.split() if line.strip(",")]
    assert len(expected) == 90  # 3 s at 30 fps
    assert video_decode_times(ts_path.read_bytes()) == expected


def _packet(pid: int, payload: bytes, start: bool) -> bytes:
    header = bytes((0x47, (0x40 if start else 0) | pid >> 8, pid & 0xFF, 0x10))
    return header + payload + b"\xff" * (184 - len(payload))


def _pts(value: int, marker: int) -> bytes:
    return bytes((
        marker << 4 | (value >> 29) & 0x0E | 1,
        (value >> 22) & 0xFF, (value >> 14) & 0xFE | 1,
        (value >> 7) & 0xFF, (value << 1) & 0xFE | 1,
    ))  # fmt: skip


def test_pes_with_pts_only_and_lost_sync() -> None:
    pat = bytes((0, 0x00, 0xB0, 13, 0, 1, 0xC1, 0, 0, 0, 1, 0xE1, 0x00)) + bytes(4)
    pmt = (
        bytes((0, 0x02, 0xB0, 18, 0, 1, 0xC1, 0, 0, 0xE1, 0x00, 0xF0, 0))
        + bytes((0x1B, 0xE1, 0x01, 0xF0, 0))  # H.264 on PID 0x101
        + bytes(4)
    )
    pes = b"\x00\x00\x01\xe0\x00\x00\x80\x80\x05" + _pts(8_589_934_000, 2)
    data = _packet(0, pat, True) + _packet(0x100, pmt, True) + _packet(0x101, pes, True)
    assert video_decode_times(data) == [8_589_934_000]
    with pytest.raises(TsError):
        video_decode_times(data[:188] + b"\x00" + data[189:])
