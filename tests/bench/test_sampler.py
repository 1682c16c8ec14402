"""The /proc sampler: stat parsing, process trees, and the CPU time of a known busy child
agreeing with what the child measured itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.sampler import (
    CLK_TCK,
    ProcStat,
    Sample,
    Sampler,
    all_stats,
    parse_rss_kb,
    parse_stat,
    read_stat,
    system_jiffies,
    tree,
    tree_usage,
)


def test_stat_with_a_hostile_command_name() -> None:
    fields = ["S", "4242"] + ["0"] * 9 + ["150", "50"] + ["0"] * 30
    text = "777 (evil) name ) (x) " + " ".join(fields) + "\n"
    assert parse_stat(text) == ProcStat(777, 4242, 200)


def test_rss_from_status() -> None:
    assert parse_rss_kb("Name:\tpython\nVmPeak:\t 9000 kB\nVmRSS:\t  12345 kB\n") == 12345
    assert parse_rss_kb("Name:\tkthreadd\n") == 0


def test_tree_follows_parents() -> None:
    stats = {
        1: ProcStat(1, 0, 0),
        10: ProcStat(10, 1, 5),
        11: ProcStat(11, 10, 7),
        12: ProcStat(12, 11, 9),
        20: ProcStat(20, 1, 100),
    }
    assert sorted(tree(10, stats)) == [10, 11, 12]
    assert tree(99, stats) == []


def test_system_jiffies(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text("cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 1 2 3 4\n")
    busy, total = system_jiffies(tmp_path)
    assert total == 100 + 5 + 50 + 800 + 20 + 1 + 2 + 3
    assert busy == total - 800 - 20


BUSY_CHILD = """
import sys, time
while time.process_time() < 0.4:
    pass
print(time.process_time(), flush=True)
sys.stdin.read()
"""


def test_cpu_of_a_busy_child_matches_its_own_account() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", BUSY_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        own = float(child.stdout.readline())  # the child's CPU time, as it measured it
        stat = read_stat(child.pid)
        assert stat is not None
        assert stat.ppid == os.getpid()
        seen = stat.ticks / CLK_TCK
        assert abs(seen - own) <= 3 / CLK_TCK + 0.02
        # and it is part of this process's tree
        stats = all_stats()
        assert child.pid in tree(os.getpid(), stats)
        cpu, rss = tree_usage(os.getpid(), stats)
        assert cpu >= seen
        assert rss > 0
        # the sampler reports the same for the child as a named target
        sampler = Sampler()
        sampler.targets = {"child": child.pid, "self:me": os.getpid()}
        sample = sampler.sample_now()
        assert abs(sample.cpu["child"] - own) <= 3 / CLK_TCK + 0.02
        assert sample.rss_kb["child"] > 0
        assert sample.cpu["self:me"] < cpu  # this process alone, without the child
        child.stdin.close()
        child.wait(timeout=10)


def test_window_arithmetic() -> None:
    sampler = Sampler()
    for i in range(6):
        sampler.samples.append(
            Sample(float(i), {"server": 0.25 * i}, {"server": 1000 + 10 * i}, 150 * i, 200 * i)
        )
    assert sampler.cores("server", 1.0, 5.0) == 0.25
    assert sampler.rss_kb("server", 1.0, 3.0) == (1010, 1030)
    assert sampler.cores("missing", 0, 5) is None
    assert sampler.system_cores(0, 5) == 0.75 * (os.cpu_count() or 1)
