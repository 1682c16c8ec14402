"""Results as a markdown summary and JSON, in ``bench/results/<timestamp>-<scenario>/``."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any


def _who(r: dict[str, Any]) -> str:
    return f"{r['viewers']} {r['kind']}" + (f" ({r['label']})" if r["label"] else "")


def _pair(a: Any, b: Any) -> str:
    return f"{_v(a)} ({_v(b)})"


COLUMNS = (
    ("server", lambda r: r["server"]),
    ("viewers", _who),
    ("server CPU (cores)", lambda r: _v(r["server_cores"])),
    ("µs CPU / viewer·s (marginal)",
     lambda r: _pair(r["us_per_viewer_s"], r["us_per_viewer_s_marginal"])),
    ("RSS MB (KB/viewer)", lambda r: _pair(r["server_rss_mb"], r["kb_per_viewer"])),
    ("latency p50/p95/p99 ms (probes)", lambda r: f"{_trio(r['latency_ms'])} ({r['probes']})"),
    ("join p50/p95 ms", lambda r: f"{_v(r['join_ms'].get('p50'))} / {_v(r['join_ms'].get('p95'))}"),
    ("behind / stalled / playing", lambda r: f"{r['behind']} / {r['stalled']} / {r['playing']}"),
    ("frame loss", lambda r: _v(r["frame_loss"])),
    ("server loop lag max ms", lambda r: _v(r["server_loop_lag_max_ms"])),
    ("generator cores (lag p99 ms)",
     lambda r: _pair(r["gen_cores_total"], r["gen_loop_lag_ms"]["p99"])),
    ("limits / notes", lambda r: "; ".join(r["limits"]) or "-"),
)  # fmt: skip


CHAT_COLUMNS = (
    ("sockets (senders, msg/s)", lambda r: f"{r['viewers']} ({r['senders']}, {r['rate']:g})"),
    ("server CPU cores (idle sockets)",
     lambda r: _pair(r["server_cores"], r["server_cores_idle_sockets"])),
    ("µs CPU / delivery (marginal)",
     lambda r: _pair(r["us_per_delivery"], r["us_per_delivery_marginal"])),
    ("RSS MB (KB/socket)", lambda r: _pair(r["server_rss_mb"], r["kb_per_viewer"])),
    ("delivered / expected (loss)",
     lambda r: f"{r['received']} / {r['expected']} ({_v(r['loss'])})"),
    ("latency p50/p95/p99 ms (probes)", lambda r: f"{_trio(r['latency_ms'])} ({r['probes']})"),
    ("join p50/p95 ms", lambda r: f"{_v(r['join_ms'].get('p50'))} / {_v(r['join_ms'].get('p95'))}"),
    ("behind / welcomed", lambda r: f"{r['behind']} / {r['welcomed']}"),
    ("server loop lag max ms", lambda r: _v(r["server_loop_lag_max_ms"])),
    ("generator cores (lag p99 ms)",
     lambda r: _pair(r["gen_cores_total"], r["gen_loop_lag_ms"]["p99"])),
    ("limits / notes", lambda r: "; ".join(r["limits"]) or "-"),
)  # fmt: skip


def _v(value: Any) -> str:
    return "-" if value is None else str(value)


def _trio(s: dict[str, Any]) -> str:
    return f"{_v(s.get('p50'))} / {_v(s.get('p95'))} / {_v(s.get('p99'))}"


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "strom_commit": _git_head(),
    }


def _git_head() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "strom"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return ""


def markdown(scenario: str, result: dict[str, Any], info: dict[str, Any]) -> str:
    lines = [
        f"## {scenario} — {info['date']}",
        "",
        f"Machine: {info['machine']['nproc']} CPUs, {info['machine']['cpu']}, "
        f"Python {info['machine']['python']}, Strom {info['machine']['strom_commit']}. "
        f"Command: `{info['command']}`",
        "",
    ]
    rows = result.get("rows", [])
    if rows:
        columns = CHAT_COLUMNS if rows[0]["kind"] == "chat" else COLUMNS
        lines.append("| " + " | ".join(name for name, _ in columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in rows:
            lines.append("| " + " | ".join(fn(row) for _, fn in columns) + " |")
        lines.append("")
    for row in rows:
        lines += _details(row)
    lines += result.get("lines", [])
    for key in ("stop", "healthy_p95_rise_ms"):
        if key in result:
            lines.append(f"- {key}: {result[key]}")
    if result.get("ratios"):
        lines.append("")
        lines.append("Ratios (row / reference: `a/b` in the name), same run (median of rounds):")
        lines.append("")
        lines.append(
            "| | CPU/viewer | CPU/viewer marginal | latency p50 | latency p95 | join p50 |"
        )
        lines.append("|---|---|---|---|---|---|")
        for name, r in result["ratios"].items():
            lines.append(
                f"| {name} | {_v(r['cpu_per_viewer'])} | {_v(r['cpu_per_viewer_marginal'])} | "
                f"{_v(r['latency_p50'])} | {_v(r['latency_p95'])} | {_v(r['join_p50'])} |"
            )
    if "soak" in result:
        lines += soak_lines(result["soak"])
    for note in result.get("notes", []):
        lines.append(f"- note: {note}")
    return "\n".join(lines) + "\n"


def soak_lines(s: dict[str, Any]) -> list[str]:
    """The soak's verdict, its memory and descriptor figures, and what the clients saw."""
    plan = s["plan"]
    verdict = "**PASS**" if s["passed"] else "**FAIL**: " + "; ".join(s["failures"])
    log = s["server_log"]
    lines = [
        f"Soak {verdict}. {s['load_seconds']:g} s of load: {plan['publishers']} publishers, "
        f"{plan['viewers']} viewers, {plan['chat_sockets']} chat sockets (+ Socket.IO), "
        f"{plan['garbage_rate']:g} garbage clients/s (seed {plan['seed']}).",
        "",
        "| | cold | baseline (after warm-up) | peak (load) | end | end - baseline |",
        "|---|---|---|---|---|---|",
        f"| server RSS MB | {_v(s['cold']['rss_mb'])} | {_v(s['baseline']['rss_mb'])} | "
        f"{_v(s['peak']['rss_mb'])} | {_v(s['end']['rss_mb'])} | {_v(s['rss_delta_mb'])} "
        f"(allowed {_v(s['rss_allowance_mb'])}) |",
        f"| open fds | {s['cold']['fds']} | {s['baseline']['fds']} | {s['peak']['fds']} | "
        f"{s['end']['fds']} | {s['fds_delta']:+d} |",
        f"| of them the database pool's | {s['cold']['db_fds']} | {s['baseline']['db_fds']} | "
        f"- | {s['end']['db_fds']} | {s['end']['db_fds'] - s['baseline']['db_fds']:+d} |",
        f"| other fds | {s['cold']['fds'] - s['cold']['db_fds']} | "
        f"{s['baseline']['fds'] - s['baseline']['db_fds']} | - | "
        f"{s['end']['fds'] - s['end']['db_fds']} | {s['other_fds_delta']:+d} "
        f"(allowed +{plan['fd_tolerance']}) |",
        "",
        f"- descriptors that differ from the baseline: {s.get('fds_changed') or 'none'}; "
        f"database pool at the end: {s.get('database_pool')}",
        f"- settled: baseline after {s['baseline_settle_s']} s, back after the load in "
        f"{s['end_settle_s']} s; RSS slope during the load {_v(s['rss_slope_mb_per_min'])} "
        f"MB/min",
        f"- server: {_v(s['server_cores'])} cores, loop lag max "
        f"{_v(s['server_loop_lag_ms']['max'])} ms (p95 of samples "
        f"{_v(s['server_loop_lag_ms']['p95_of_samples'])} ms); left open {s['left_open']}",
        f"- generator: {_v(s['gen_cores'])} cores, loop lag p99 / max "
        f"{_v(s['gen_loop_lag_ms']['p99'])} / {_v(s['gen_loop_lag_ms']['max'])} ms",
        f"- server log: {log['tracebacks']} tracebacks, {log['error_lines']} ERROR lines, "
        f"{log['warnings']} warnings",
    ]
    lines += [f"  - traceback: {name} x{n}" for name, n in log["traceback_exceptions"].items()]
    lines += [f"  - `{line[:160]}`" for line in log["first_errors"][:5]]
    lines += [f"  - warning x{n}: `{kind}`" for kind, n in log["warning_kinds"].items()]
    frames = ", ".join(f"{k} {v}" for k, v in s["video_frames_received"].items())
    lines.append(
        f"- media: {s['video_frames_sent']} video frames published; received by viewers: "
        f"{frames or 'none'}; chat: {s['chat_sent']} sent, {s['chat_events_received']} "
        "messages received"
    )
    lines.append("- clients (outcome x count):")
    for kind, outcomes in s["clients"].items():
        shown = ", ".join(f"{o} x{n}" for o, n in list(outcomes.items())[:6])
        lines.append(f"  - {kind}: {shown}")
    return lines


def _details(row: dict[str, Any]) -> list[str]:
    out = []
    who = f"{row['server']} {row['viewers']} {row['kind']}"
    if row.get("errors"):
        out.append(f"- {who}: viewer errors {row['errors']}")
    for part in ("healthy", "slow"):
        if part in row:
            g = row[part]
            # slow viewers are no probes: their latencies are all exact (they never read
            # in bulk), so the all-viewers figure is the one to show
            lat = g["latency_ms"] if part == "healthy" else g["latency_all_ms"]
            out.append(
                f"- {who} {part} viewers ({g['viewers']}): latency p50/p95/p99 "
                f"{_trio(lat)} ms, behind {g['behind']}, loss {_v(g['frame_loss'])}"
            )
    if "hls" in row:
        h = row["hls"]
        out.append(
            f"- {who}: part delivered after its last frame was sent p50/p95/p99 "
            f"{_trio(h['part_delivered_ms'])} ms; listed p50/p95/p99 "
            f"{_trio(h['part_listed_ms'])} ms; listed after the next frame was sent "
            f"{_trio(h['listed_after_next_ms'])} ms; "
            f"{_v(h.get('requests_per_viewer_s'))} requests per viewer and second"
        )
    if "dash" in row:
        out.append(
            f"- {who}: {_v(row['dash'].get('requests_per_viewer_s'))} requests per viewer "
            "and second"
        )
    if "extra" in row and "answered_after_part_ms" in row["extra"]:
        a = row["extra"]["answered_after_part_ms"]
        out.append(
            f"- {who}: server side, a request blocked on a part answered after the chunk "
            f"that completed it p50/p95/p99 {_trio(a)} ms"
        )
    if "extra" in row and "segment_listed_ms" in row["extra"]:
        e = row["extra"]
        out.append(
            f"- {who}: nginx HLS segment listed after its last frame was sent p50/p95 "
            f"{_v(e['segment_listed_ms'].get('p50'))} / {_v(e['segment_listed_ms'].get('p95'))}"
            f" ms, downloaded p50 {_v(e['segment_arrived_ms'].get('p50'))} ms; per frame "
            f"(frame sent -> its segment downloaded) p50/p95 "
            f"{_v(e['frame_to_segment_ms'].get('p50'))} / "
            f"{_v(e['frame_to_segment_ms'].get('p95'))} ms ({e['segments']} segments)"
        )
    if row.get("profile", {}).get("own"):
        prof = row["profile"]
        out.append(f"- {who}: py-spy, {prof['samples']} samples ({prof['file']}); top own time:")
        out += [f"  - {pct} % {name}" for name, pct in prof["own"][:10]]
        out.append("  top total time:")
        out += [f"  - {pct} % {name}" for name, pct in prof["total"][:10]]
    if row["kind"] == "chat":
        out.append(
            f"- {who}: {row['sent_in_window']} messages sent in the window, "
            f"{row['deliveries']} deliveries in it ({row['deliveries_expected']} for every "
            f"welcomed socket); latency all sockets p50/p95/p99 "
            f"{_trio(row['latency_all_ms'])} ms; duplicates {row['duplicates']}; sender "
            f"lateness p50/p99 {row['send_late_ms']['p50']} / {row['send_late_ms']['p99']} ms; "
            f"sender refusals {row['sender_refusals'] or 'none'}"
        )
        if row["sender_errors"]:
            out.append(f"- {who}: sender errors {row['sender_errors'][:3]}")
    if "publishers" in row:
        p = row["publishers"]
        out.append(
            f"- {p['count']} publishers: server {p['server_cores_publishers_only']} cores with "
            f"no viewer, {p['mb_per_channel']} MB per channel, {p['errors']} publisher errors, "
            f"publisher lateness p50/p99 {p['publisher_lateness_ms']['p50']} / "
            f"{p['publisher_lateness_ms']['p99']} ms"
        )
    return out


def write(scenario: str, result: dict[str, Any], command: str, out_root: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), "command": command}
    out = out_root / f"{stamp}-{scenario}"
    out.mkdir(parents=True, exist_ok=True)
    for path in result.pop("files", []):
        shutil.copy(path, out / Path(path).name)
    (out / "result.json").write_text(
        json.dumps({"scenario": scenario, **info, **result}, indent=1, default=str)
    )
    text = markdown(scenario, result, info)
    (out / "summary.md").write_text(text)
    print(text)
    print(f"results: {out}")
    return out
