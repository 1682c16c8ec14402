"""The ``chat`` scenario (issue 5's load check): N guests in one room, joining over a few
seconds in worker processes; K senders in this process write R messages a second in
all; every socket records when each message reached it.

Timeline: joins, then ``IDLE_SECONDS`` with everyone connected and nobody writing (the
server's cost of idle members), then the senders start, and after ``WARMUP_SECONDS`` the
measured window of ``--seconds`` opens; it closes when the senders stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

from bench.chat import ChatLog, ChatSocket, analyze_chat, per_delivery_us, send_command
from bench.records import ViewerRecord
from bench.run import (
    WORKER_START,
    Options,
    Session,
    _r,
    limits,
    resource_row,
    run_workers,
    session,
)
from bench.stats import Window, percentile
from bench.viewers import LoopLag, ViewerGroup

CHANNEL = "bench"
IDLE_SECONDS = 3.0
WARMUP_SECONDS = 1.0
#: a sender this late (p99) is not writing at the rate asked
SEND_LATE_LIMIT = 0.05
SENDER_JOIN_TIMEOUT = 10.0


def server_env(rate: float, senders: int) -> dict[str, str]:
    """Per-user limits (docs/chat-protocol.md) raised so each sender's share of the
    rate, ``rate / senders`` a second, is never refused: twice that, and a burst."""
    per_sender = rate / max(1, senders)
    return {
        "STROM_CHAT_RATE": f"{max(1.0, 2 * per_sender):g}",
        "STROM_CHAT_BURST": str(max(5, math.ceil(2 * per_sender))),
        "STROM_CHAT_FRAMES_PER_SECOND": f"{max(20.0, 4 * per_sender):g}",
        "STROM_CHAT_FRAMES_BURST": str(max(50, math.ceil(4 * per_sender))),
    }


def send_schedule(start: float, end: float, rate: float, senders: int) -> list[tuple[float, int]]:
    """(when, which sender) for every message: evenly spaced at ``rate`` a second in
    [start, end), the senders taking turns."""
    count = max(0, math.ceil((end - start) * rate - 1e-9))
    return [(start + i / rate, i % senders) for i in range(count)]


class Senders:
    """K chat sockets in this process writing the bench messages on schedule."""

    def __init__(self, host: str, port: int, count: int, log: ChatLog) -> None:
        self.host = host
        self.port = port
        self.count = count
        self.log = log
        self.sockets: list[ChatSocket] = []
        self.lateness: list[float] = []

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        for i in range(self.count):
            rec = ViewerRecord("chat-sender", i, CHANNEL)
            rec.t_start = time.monotonic()
            path = f"/chat/{CHANNEL}/ws"
            sock = ChatSocket(rec, self.host, self.port, path, loop.create_future())
            await loop.create_connection(lambda s=sock: s, self.host, self.port)  # type: ignore[misc]
            self.sockets.append(sock)
        waits = [s.welcomed for s in self.sockets]
        await asyncio.wait_for(asyncio.gather(*waits), SENDER_JOIN_TIMEOUT)
        failed = [s.rec.error for s in self.sockets if not s.rec.t_connected]
        if failed:
            raise RuntimeError(f"{len(failed)} senders were not welcomed: {failed[0]}")

    async def run(self, start: float, end: float, rate: float) -> None:
        for when, k in send_schedule(start, end, rate, self.count):
            delay = when - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            self.lateness.append(max(0.0, now - when))
            self.sockets[k].send(send_command(self.log.add(now), time.time()))

    def close(self) -> None:
        for s in self.sockets:
            s.close()

    def refused(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.sockets:
            for code, n in s.refused.items():
                out[code] = out.get(code, 0) + n
        return out


async def scenario_chat(opts: Options) -> dict[str, Any]:
    n, rate, k = opts.chat_sockets, opts.chat_rate, max(1, opts.chat_senders)
    async with session("strom", opts, server_env=server_env(rate, k)) as sess:
        await asyncio.sleep(1)
        await sess.idle_baseline(3.0)
        row = await chat_step(sess, n, rate, k)
        _progress(row)
        return {"rows": [row], "baseline": sess.baseline, "notes": sess.notes, "files": sess.files}


async def chat_step(sess: Session, n: int, rate: float, k: int) -> dict[str, Any]:
    opts = sess.opts
    join_window = max(2.0, n / 250)
    start_at = time.monotonic() + WORKER_START
    idle = Window(start_at + join_window + 1.0, start_at + join_window + 1.0 + IDLE_SECONDS)
    window = Window(idle.end + WARMUP_SECONDS, idle.end + WARMUP_SECONDS + opts.step_seconds)
    stop_at = window.end + LOSS_GRACE_WAIT
    lowat = opts.chat_lowat
    group = ViewerGroup(
        "chat", opts.host, sess.http_port, (CHANNEL,), n, start_at, stop_at, join_window,
        probes=opts.probes if lowat else -1, bulk_lowat=lowat,
    )  # fmt: skip
    log = ChatLog()
    senders = Senders(opts.host, sess.http_port, k, log)
    await senders.connect()
    main_lag = LoopLag()
    main_lag.start()
    workers = asyncio.create_task(run_workers(sess, [group], stop_at))
    try:
        await asyncio.sleep(max(0.0, idle.end - time.monotonic()))
        await senders.run(idle.end, window.end, rate)
        records, lag, gen_names = await workers
    finally:
        main_lag.stop()
        senders.close()
        if not workers.done():
            workers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await workers
    return chat_row(sess, n, rate, k, window, idle, records, log, senders, [*lag], gen_names,
                    list(main_lag.samples))  # fmt: skip


#: seconds the sockets stay after the senders stop, for the last messages to arrive
LOSS_GRACE_WAIT = 1.5


def chat_row(
    sess: Session,
    n: int,
    rate: float,
    k: int,
    window: Window,
    idle: Window,
    records: list[ViewerRecord],
    log: ChatLog,
    senders: Senders,
    worker_lag: list[float],
    gen_names: list[str],
    main_lag: list[float],
) -> dict[str, Any]:
    lag = worker_lag + main_lag
    row = resource_row(sess, "chat", n, window, lag, gen_names, label=f"{k} senders, {rate:g}/s")
    chat = analyze_chat(records, log, window)
    row.update(chat)
    sent = len(log.sent_between(window.start, window.end))
    idle_cores = sess.sampler.cores("server", idle.start, idle.end)
    busy = row["server_cores"]
    row.update(
        {
            "viewers": n,
            "senders": k,
            "rate": rate,
            "sent_in_window": sent,
            "deliveries_expected": sent * chat["welcomed"],
            "server_cores_idle_sockets": _r(idle_cores, 3),
            "us_per_delivery": _r(per_delivery_us(busy, window.seconds, chat["deliveries"]), 1),
            "us_per_delivery_marginal": _r(
                per_delivery_us(
                    busy - idle_cores if busy is not None and idle_cores is not None else None,
                    window.seconds,
                    chat["deliveries"],
                ),
                1,
            ),
            "sender_refusals": senders.refused(),
            "sender_errors": [s.rec.error for s in senders.sockets if s.rec.error],
            "send_late_ms": {
                "p50": _r(percentile(senders.lateness, 50) * 1000, 1),
                "p99": _r(percentile(senders.lateness, 99) * 1000, 1),
            },
            "gen_main_loop_lag_p99_ms": _r(percentile(main_lag, 99) * 1000, 1),
        }
    )
    row["limits"] = limits(row, lag)
    if senders.lateness and percentile(senders.lateness, 99) > SEND_LATE_LIMIT:
        row["limits"].append("generator saturated: senders late (p99 > 50 ms)")
    if sent < 0.95 * rate * window.seconds:
        row["limits"].append(f"generator saturated: sent {sent} of {rate * window.seconds:.0f}")
    if row["server_loop_lag_max_ms"] is None:
        row["limits"].append("no answer with its numbers in the window (server too busy)")
    return row


def _progress(row: dict[str, Any]) -> None:
    lat = row["latency_ms"]
    print(
        f"  chat {row['viewers']} sockets, {row['rate']:g} msg/s: server {row['server_cores']} "
        f"cores ({row['server_cores_idle_sockets']} idle), {row['us_per_delivery']} us/delivery, "
        f"delivered {row['received']}/{row['expected']}, latency p50 {lat.get('p50')} "
        f"p95 {lat.get('p95')} p99 {lat.get('p99')} ms, gen {row['gen_cores_total']} cores "
        f"{'; '.join(row['limits'])}",
        flush=True,
    )
