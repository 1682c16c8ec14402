"""The chat scenario's parts: its frames and commands, reading bench messages out of the
server's batches, the send log and schedule, the row's numbers and its report line; and
the client against a real Strom room."""

from __future__ import annotations

import asyncio
import json
import math
import time

import pytest

from bench.chat import (
    ChatLog,
    ChatSocket,
    analyze_chat,
    client_text_frame,
    message_numbers,
    per_delivery_us,
    send_command,
)
from bench.chatrun import send_schedule, server_env
from bench.records import ViewerRecord
from bench.report import markdown
from bench.stats import Window
from bench.viewers import ViewerGroup, run_group
from strom.server import StromServer
from tests.helpers import CHANNEL


def batch(*events: dict[str, object]) -> bytes:
    # what strom/chat/room.py sends: compact JSON, "type" first
    return json.dumps({"type": "batch", "events": list(events)}, separators=(",", ":")).encode()


def message(nonce: str | None, text: str = "hi") -> dict[str, object]:
    event: dict[str, object] = {"type": "message", "id": 1, "user": "guest-000001", "text": text}
    if nonce is not None:
        event["nonce"] = nonce
    return event


def test_text_frames_are_masked_with_the_right_length() -> None:
    short = client_text_frame(b"x" * 10)
    assert short[:2] == bytes((0x81, 0x80 | 10))
    assert short[2:6] == b"\0\0\0\0"
    assert short[6:] == b"x" * 10
    long = client_text_frame(b"y" * 300)
    assert long[:4] == bytes((0x81, 0x80 | 126)) + (300).to_bytes(2, "big")
    assert len(long) == 4 + 4 + 300


def test_send_command_carries_the_nonce_and_the_wall_clock() -> None:
    cmd = json.loads(send_command(42, 1732370000.25))
    assert cmd["type"] == "send"
    assert cmd["nonce"] == "bench-42"
    assert cmd["text"].startswith("bench-42 ")
    assert cmd["text"].endswith("1732370000.250000")


def test_bench_messages_are_read_from_batches_only() -> None:
    frame = batch(
        message("bench-7"),
        {"type": "likes", "count": 1, "total": 3},
        message(None, text='"nonce":"bench-99"'),  # a person's text is no delivery
        message("someone-else"),
        message("bench-8"),
    )
    assert message_numbers(frame) == [7, 8]
    assert message_numbers(memoryview(frame)) == [7, 8]
    error = {"type": "error", "code": "rate_limited", "nonce": "bench-9"}
    assert message_numbers(json.dumps(error).encode()) == []
    assert message_numbers(b'{"type":"welcome","history":[]}') == []


def test_send_log_finds_messages_by_number_and_time() -> None:
    log = ChatLog()
    numbers = [log.add(t) for t in (10.0, 10.1, 10.2, 10.3)]
    assert numbers == [0, 1, 2, 3]
    assert log.time_of(2) == 10.2
    assert log.time_of(4) is None
    assert log.time_of(-1) is None
    assert list(log.sent_between(10.1, 10.3)) == [1, 2]
    assert list(log.sent_between(11, 12)) == []


def test_schedule_spreads_the_rate_over_the_senders() -> None:
    plan = send_schedule(100.0, 102.0, 10.0, 3)
    assert len(plan) == 20
    assert plan[0] == (100.0, 0)
    assert plan[1][1] == 1
    assert plan[3][1] == 0
    assert plan[-1][0] == pytest.approx(101.9)
    assert send_schedule(0.0, 0.0, 10.0, 3) == []


def test_server_limits_leave_room_for_each_senders_share() -> None:
    env = server_env(10.0, 10)  # 1 message/s each: the default rate would be too tight
    assert float(env["STROM_CHAT_RATE"]) >= 2.0
    assert int(env["STROM_CHAT_BURST"]) >= 5
    heavy = server_env(100.0, 2)
    assert float(heavy["STROM_CHAT_RATE"]) >= 100.0
    assert float(heavy["STROM_CHAT_FRAMES_PER_SECOND"]) >= 100.0


def record(
    index: int, arrivals: dict[int, float], connected: float = 1.0, probe: bool = True
) -> ViewerRecord:
    rec = ViewerRecord("chat", index, "bench", probe=probe, t_start=connected - 0.01)
    rec.t_connected = connected
    for number, t in arrivals.items():
        rec.ts.append(number)
        rec.t.append(t)
    return rec


def test_latency_delivered_and_expected() -> None:
    log = ChatLog()
    for i in range(10):  # message i written at 10 + i
        log.add(10.0 + i)
    window = Window(12.0, 20.0)  # grace 1 s: messages 2..8 expected
    full = record(0, {i: 10.0 + i + 0.1 for i in range(10)})
    # a bulk reader got messages 2-6 late and lost 7-8; 1 arrived before the window
    partial = record(1, {1: 11.5, **{i: 10.0 + i + 0.3 for i in range(2, 7)}}, probe=False)
    late_joiner = record(2, {i: 10.0 + i + 0.1 for i in range(6, 10)}, connected=15.5)
    never = ViewerRecord("chat", 3, "bench", error="connect: refused")
    out = analyze_chat([full, partial, late_joiner, never], log, window)
    assert out["sockets"] == 4
    assert out["welcomed"] == 3
    assert out["probes"] == 3
    assert out["errors"] == {"connect": 1}
    # expected: 7 (2..8) + 7 + 3 (6..8: joined at 15.5)
    assert out["expected"] == 17
    assert out["received"] == 7 + 5 + 3
    assert out["loss"] == pytest.approx(1 - 15 / 17, abs=1e-5)
    # arrivals in [12, 20): full 2..9 (9 at 19.1), partial 2..6, late joiner 6..9
    assert out["deliveries"] == 8 + 5 + 4
    assert out["latency_ms"]["n"] == 12
    assert out["latency_ms"]["p50"] == 100.0
    assert out["latency_all_ms"]["n"] == 17
    assert out["latency_all_ms"]["max"] == 300.0
    assert out["behind"] == 1  # the one never welcomed
    assert out["duplicates"] == 0


def test_a_late_message_or_a_lost_connection_is_behind() -> None:
    log = ChatLog()
    log.add(10.0)
    log.add(11.0)
    window = Window(9.0, 20.0)
    slow = record(0, {0: 10.2, 1: 12.5})
    cut = record(1, {0: 10.1, 1: 11.1})
    cut.error, cut.t_end = "connection lost: reset", 15.0
    twice = record(2, {0: 10.1})
    twice.ts.append(0)
    twice.t.append(10.2)
    out = analyze_chat([slow, cut, twice], log, window)
    assert out["behind"] == 2
    assert out["duplicates"] == 1


def test_cpu_per_delivery() -> None:
    assert per_delivery_us(0.5, 20.0, 10_000) == pytest.approx(1000.0)
    assert per_delivery_us(None, 20.0, 10) is None
    assert per_delivery_us(0.5, 20.0, 0) is None
    assert per_delivery_us(math.nan, 20.0, 10) is None


def test_the_report_has_a_chat_table() -> None:
    summary = {"n": 3, "p50": 80.0, "p95": 150.0, "p99": 160.0}
    row = {
        "server": "strom", "kind": "chat", "label": "10 senders, 10/s", "viewers": 1000,
        "senders": 10, "rate": 10.0, "server_cores": 0.2, "server_cores_idle_sockets": 0.01,
        "us_per_delivery": 20.0, "us_per_delivery_marginal": 19.0, "server_rss_mb": 140.0,
        "kb_per_viewer": 25.0, "received": 190_000, "expected": 190_000, "loss": 0.0,
        "latency_ms": summary, "latency_all_ms": summary, "probes": 1000,
        "join_ms": {"p50": 3.0, "p95": 9.0}, "behind": 0, "welcomed": 1000,
        "server_loop_lag_max_ms": 12.0, "gen_cores_total": 0.4, "gen_loop_lag_ms": {"p99": 3.0},
        "limits": [], "sent_in_window": 200, "deliveries": 199_000,
        "deliveries_expected": 200_000, "duplicates": 0, "send_late_ms": {"p50": 0.1, "p99": 2.0},
        "sender_refusals": {}, "sender_errors": [],
    }  # fmt: skip
    info = {
        "date": "today",
        "command": "python -m bench chat",
        "machine": {"nproc": 2, "cpu": "x", "python": "3.11", "strom_commit": "abc"},
    }
    text = markdown("chat", {"rows": [row]}, info)
    assert "| 1000 (10, 10) | 0.2 (0.01) | 20.0 (19.0) | 140.0 (25.0) |" in text
    assert "190000 / 190000 (0.0)" in text
    assert "80.0 / 150.0 / 160.0 (1000)" in text
    assert "200 messages sent in the window" in text


@pytest.mark.e2e
async def test_every_member_of_a_real_room_gets_the_bench_messages(
    server: StromServer,
) -> None:
    loop = asyncio.get_running_loop()
    rec = ViewerRecord("chat-sender", 0, CHANNEL)
    sender = ChatSocket(rec, "127.0.0.1", server.http_port, f"/chat/{CHANNEL}/ws",
                        loop.create_future())  # fmt: skip
    await loop.create_connection(lambda: sender, "127.0.0.1", server.http_port)
    await asyncio.wait_for(sender.welcomed, 5)
    now = time.monotonic()
    group = ViewerGroup("chat", "127.0.0.1", server.http_port, (CHANNEL,), 3, now, now + 2.0, 0.2)
    readers = asyncio.create_task(run_group(group))
    await asyncio.sleep(0.6)  # all three welcomed
    log = ChatLog()
    for _ in range(3):
        sender.send(send_command(log.add(time.monotonic()), time.time()))
    records = await readers
    sender.close()
    assert sender.refused == {}
    assert all(r.t_connected > 0 and not r.error for r in records)
    assert [sorted(r.ts) for r in records] == [[0, 1, 2]] * 3
    out = analyze_chat(records, log, Window(now, now + 2.0))
    assert out["received"] == out["expected"] == 9
    assert 0 < out["latency_ms"]["max"] < 2000
