"""Profiling the server under load with py-spy (if installed): a raw (collapsed stacks)
record of the measurement window, and its top functions by own and total time."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def find_py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, out: Path, rate: int = 100) -> Path | None:
    """``py-spy record`` of ``pid`` for ``seconds`` (non-blocking: the server is not
    paused to sample). None when py-spy is missing or fails (e.g. no ptrace rights)."""
    py_spy = find_py_spy()
    if py_spy is None:
        return None
    proc = await asyncio.create_subprocess_exec(
        py_spy, "record", "--nonblocking", "--format", "raw", "-r", str(rate),
        "-d", str(max(1, round(seconds))), "-p", str(pid), "-o", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0 or not await asyncio.to_thread(out.exists):
        print(f"py-spy failed: {err.decode(errors='replace')[-300:]}", file=sys.stderr)
        return None
    return out


def _name(frame: str) -> str:
    # py-spy raw frames read "function (path/to/file.py:line)"
    func, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    short = "/".join(path.split("/")[-2:]) if path else ""
    return f"{func} ({short})" if short else func


def summarize_collapsed(text: str, top: int = 15) -> dict[str, Any]:
    """Top functions of a collapsed-stacks profile: own samples (the leaf) and total
    samples (anywhere on the stack), in percent of all samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        own[frames[-1]] += n
        for name in set(frames):
            total[name] += n

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / samples, 1)) for k, v in counter.most_common(top)]

    # frames on (nearly) every stack (runpy, asyncio's run loop) say nothing
    for name in [k for k, v in total.items() if v >= 0.95 * samples]:
        del total[name]
    return {"samples": samples, "own": pct(own), "total": pct(total)} if samples else {}
