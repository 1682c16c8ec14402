"""Once a second: CPU time (utime+stime from /proc/PID/stat, over each process tree) and
RSS (VmRSS) of the server and of the load generator's processes, open file descriptors
(/proc/PID/fd) of the targets asked for, the machine's busy share (/proc/stat), and
Strom's own event-loop lag from its numbers (``/api/v1/stats``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.http import get_stats

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcStat:
    pid: int
    ppid: int
    #: utime + stime of this process alone, in clock ticks
    ticks: int


def parse_stat(text: str) -> ProcStat:
    """``/proc/PID/stat`` (proc(5)): the command name is in parentheses and may hold
    spaces or parentheses itself, so fields are counted from the last ')'."""
    pid = int(text[: text.index(" ")])
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15
    return ProcStat(pid, int(fields[1]), int(fields[11]) + int(fields[12]))


def parse_rss_kb(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0  # a zombie or kernel thread has none


def read_stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def read_rss_kb(pid: int, proc: Path = PROC) -> int:
    try:
        return parse_rss_kb((proc / str(pid) / "status").read_text())
    except OSError:
        return 0


def count_fds(pid: int, proc: Path = PROC) -> int | None:
    """Open file descriptors of ``pid`` (entries of /proc/PID/fd), None if unreadable."""
    try:
        return sum(1 for _ in os.scandir(proc / str(pid) / "fd"))
    except OSError:
        return None


def fd_kinds(pid: int, proc: Path = PROC) -> dict[str, int]:
    """What ``pid``'s open descriptors are: sockets, pipes, anon inodes by kind, files by
    path (for telling what a descriptor leak leaks)."""
    kinds: dict[str, int] = {}
    try:
        entries = list(os.scandir(proc / str(pid) / "fd"))
    except OSError:
        return kinds
    for entry in entries:
        try:
            target = os.readlink(entry.path)
        except OSError:
            continue
        kind = target.split(":[", 1)[0] if target.startswith(("socket:", "pipe:")) else target
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def all_stats(proc: Path = PROC) -> dict[int, ProcStat]:
    stats: dict[int, ProcStat] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name), proc)
            if stat is not None:
                stats[stat.pid] = stat
    return stats


def tree(root: int, stats: dict[int, ProcStat]) -> list[int]:
    """``root`` and its live descendants."""
    children: dict[int, list[int]] = {}
    for s in stats.values():
        children.setdefault(s.ppid, []).append(s.pid)
    out: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def tree_usage(root: int, stats: dict[int, ProcStat], proc: Path = PROC) -> tuple[float, int]:
    """CPU seconds and RSS (KiB) of ``root``'s process tree."""
    pids = tree(root, stats)
    cpu = sum(stats[p].ticks for p in pids) / CLK_TCK
    rss = sum(read_rss_kb(p, proc) for p in pids)
    return cpu, rss


def system_jiffies(proc: Path = PROC) -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat's ``cpu`` line."""
    fields = [int(v) for v in (proc / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return total - idle, total


@dataclass
class Sample:
    t: float
    cpu: dict[str, float]  # CPU seconds so far, per target
    rss_kb: dict[str, int]
    sys_busy: int
    sys_total: int
    metrics: dict[str, Any] = field(default_factory=dict)
    #: open file descriptors of the targets in ``Sampler.fd_targets`` (the process alone)
    fds: dict[str, int] = field(default_factory=dict)


class Sampler:
    """Samples named process trees every ``interval`` seconds. Targets may be added and
    removed while it runs (the generator's worker processes come and go)."""

    def __init__(
        self,
        interval: float = 1.0,
        metrics: tuple[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.metrics_at = metrics
        self.targets: dict[str, int] = {}
        #: targets whose open file descriptors are counted too
        self.fd_targets: set[str] = set()
        self.samples: list[Sample] = []
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def sample_now(self) -> Sample:
        stats = all_stats()
        cpu: dict[str, float] = {}
        rss: dict[str, int] = {}
        for name, pid in list(self.targets.items()):
            if name.startswith("self:"):  # this process alone, not its children
                s = stats.get(pid)
                cpu[name] = s.ticks / CLK_TCK if s else 0.0
                rss[name] = read_rss_kb(pid)
            else:
                cpu[name], rss[name] = tree_usage(pid, stats)
        fds: dict[str, int] = {}
        for name in self.fd_targets:
            target = self.targets.get(name)
            count = count_fds(target) if target is not None else None
            if count is not None:
                fds[name] = count
        busy, total = system_jiffies()
        sample = Sample(self._clock(), cpu, rss, busy, total, fds=fds)
        self.samples.append(sample)
        return sample

    async def _run(self) -> None:
        while True:
            sample = self.sample_now()
            if self.metrics_at is not None:
                with contextlib.suppress(Exception):
                    resp = await get_stats(*self.metrics_at, timeout=self.interval)
                    if resp.status == 200:
                        sample.metrics = json.loads(resp.body)
            await asyncio.sleep(max(0.0, sample.t + self.interval - self._clock()))

    # -- reading windows ---------------------------------------------------------------

    def window(self, t1: float, t2: float) -> list[Sample]:
        return [s for s in self.samples if t1 <= s.t <= t2]

    def cores(self, name: str, t1: float, t2: float) -> float | None:
        """Average CPU use of target ``name`` in [t1, t2], in cores (1.0 = one core)."""
        inside = [s for s in self.window(t1, t2) if name in s.cpu]
        if len(inside) < 2 or inside[-1].t <= inside[0].t:
            return None
        return (inside[-1].cpu[name] - inside[0].cpu[name]) / (inside[-1].t - inside[0].t)

    def system_cores(self, t1: float, t2: float) -> float | None:
        inside = self.window(t1, t2)
        if len(inside) < 2 or inside[-1].sys_total <= inside[0].sys_total:
            return None
        busy = inside[-1].sys_busy - inside[0].sys_busy
        total = inside[-1].sys_total - inside[0].sys_total
        return busy / total * (os.cpu_count() or 1)

    def rss_kb(self, name: str, t1: float, t2: float) -> tuple[int, int] | None:
        """(first, max) RSS of ``name`` in the window."""
        values = [s.rss_kb[name] for s in self.window(t1, t2) if name in s.rss_kb]
        return (values[0], max(values)) if values else None

    def metric_max(self, key: str, t1: float, t2: float) -> float | None:
        values = [float(s.metrics[key]) for s in self.window(t1, t2) if key in s.metrics]
        return max(values) if values else None
