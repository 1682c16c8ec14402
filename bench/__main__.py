"""``python -m bench SCENARIO [options]``: see ``--help`` and the README's Benchmark section."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench import browser, chatrun, ladder, nodes, report, reqcost, run, soak, whip
from bench.media import MediaError, MediaSpec, ensure_media, load_flv

#: the browser scenario's default --seconds: the issue asks for no stall over a minute
BROWSER_SECONDS = 60.0

SCENARIOS = {
    "ramp": "WebSocket viewers 100, 500, 1000, 2000... until one falls > 1 s behind or "
    "something saturates (top step: --max-viewers)",
    "compare": "--viewers (400) on nginx-rtmp (RTMP play), then Strom WebSocket and Strom "
    "RTMP play, with ratios",
    "publishers": "--publishers (100) publishers with one WebSocket viewer each",
    "slow": "--viewers WebSocket viewers all healthy, then with --slow-share (10 %) slow ones",
    "joins": "--joins (500) WebSocket viewers joining within 1 s",
    "hls": "--hls-viewers (100) WebSocket, then LL-HLS, then LL-DASH viewers of Strom in one "
    "run (the cost ratios)",
    "rtmp": "--viewers RTMP-play viewers of Strom",
    "ws": "--viewers WebSocket viewers of Strom (one step)",
    "nginx": "--viewers RTMP-play viewers of nginx-rtmp, and its HLS",
    "chat": "--chat-sockets (1000) guests in one chat room, --chat-senders (10) writing "
    "--chat-rate (10) messages/s in all",
    "soak": "--minutes (2) of churn: --soak-publishers dropping and reconnecting, "
    "--soak-viewers and --soak-chat sockets joining and leaving, --garbage-rate hostile "
    "clients a second; the server's RSS and descriptors must come back to the baseline",
    "reqcost": "server CPU per LL-HLS request (a part, the playlist; --req-count each over "
    "--req-conns connections), and a bare aiohttp app's for the same bytes (the floor)",
    "hops": "--node-viewers (30) WebSocket viewers on the ingest node, on an edge pulling "
    "from it and on an edge behind a relay, at once: the latency each hop adds",
    "coldjoin": "--cold-joins (20) viewers one by one on an edge whose pull lingered out "
    "(--pull-linger 0.5), on an edge behind a relay, and on the ingest node",
    "workers": "nginx-rtmp, Strom --workers 1 and --workers 2, each over --worker-steps "
    "until a viewer falls behind; held: the top step with p95 <= 50 ms, none behind",
    "browser": "the watch page in headless Chromium per --transports (ws,hls,dash): first "
    "frame, glass-to-glass latency over --seconds (60) after --warmup, stalls",
    "whip": "server CPU per WHIP publisher and per RTMP publisher: --publishers of each (~5), "
    "the same 720p30 2.5 Mbit/s media, no viewers",
    "ladder": "CPU of one quality ladder (720p/480p/360p of 720p30), of each rung, the "
    "latency it adds (publisher → 360p viewer), the most ladders live (--ladder-steps)",
    "all": "compare, ramp, publishers, slow, joins, hls in turn",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Strom's benchmark. Scenarios:\n"
        + "\n".join(f"  {k:11} {v}" for k, v in SCENARIOS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", choices=[*SCENARIOS, "media", "worker"])
    p.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    o = run.Options()
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"measured seconds per step ({o.step_seconds:g}; browser: {BROWSER_SECONDS:g})",
    )
    p.add_argument(
        "--warmup", type=float, default=o.warmup, help="seconds after the joins before measuring"
    )
    p.add_argument("--steps", default=",".join(map(str, o.steps)), help="ramp steps (viewers)")
    p.add_argument("--max-viewers", type=int, default=o.max_viewers, help="top ramp step")
    p.add_argument(
        "--viewers", type=int, default=o.viewers, help="viewers for compare/slow/rtmp/ws/nginx"
    )
    p.add_argument("--hls-viewers", type=int, default=o.hls_viewers)
    p.add_argument("--req-count", type=int, default=o.req_count, help="reqcost: requests each")
    p.add_argument("--req-conns", type=int, default=o.req_conns, help="reqcost: connections")
    p.add_argument("--publishers", type=int, default=o.publishers)
    p.add_argument("--joins", type=int, default=o.joins)
    p.add_argument("--slow-share", type=float, default=o.slow_share)
    p.add_argument("--gen-procs", type=int, default=o.gen_procs, help="viewer worker processes")
    p.add_argument(
        "--probes",
        type=int,
        default=o.probes,
        help="viewers per step that read every frame as it comes (-1: all); "
        "the others read in bulk once playing",
    )
    p.add_argument(
        "--bulk-lowat",
        type=int,
        default=o.bulk_lowat,
        help="SO_RCVLOWAT (bytes) of the bulk viewers",
    )
    p.add_argument(
        "--server-loop",
        default=o.server_loop,
        choices=["", "auto", "uvloop", "asyncio"],
        help="Strom's event loop (STROM_EVENT_LOOP); default: the server's own default",
    )
    p.add_argument(
        "--gen-loop",
        default=o.gen_loop,
        choices=["auto", "uvloop", "asyncio"],
        help="the generator's event loop (auto: uvloop when installed)",
    )
    p.add_argument("--chat-sockets", type=int, default=o.chat_sockets)
    p.add_argument(
        "--chat-rate", type=float, default=o.chat_rate, help="chat messages per second, in all"
    )
    p.add_argument("--chat-senders", type=int, default=o.chat_senders)
    p.add_argument(
        "--chat-lowat",
        type=int,
        default=o.chat_lowat,
        help="SO_RCVLOWAT (bytes) of the chat sockets that are no probes (0: none)",
    )
    p.add_argument("--minutes", type=float, default=o.soak_minutes, help="soak: minutes of load")
    p.add_argument(
        "--soak-warmup",
        type=float,
        default=o.soak_warmup,
        help="soak: warm-up seconds before the baseline (0: a fifth of the run, 20-60 s)",
    )
    p.add_argument("--soak-publishers", type=int, default=o.soak_publishers)
    p.add_argument(
        "--soak-viewers",
        type=int,
        default=o.soak_viewers,
        help="soak: viewers at once (WebSocket 60 %%, RTMP 25 %%, LL-HLS 15 %%)",
    )
    p.add_argument(
        "--soak-chat",
        type=int,
        default=o.soak_chat,
        help="soak: chat sockets at once (and a third as many Socket.IO clients)",
    )
    p.add_argument(
        "--garbage-rate", type=float, default=o.garbage_rate, help="soak: hostile clients a second"
    )
    p.add_argument(
        "--settle",
        type=float,
        default=o.soak_settle,
        help="soak: longest wait for the server to come back to its baseline (s)",
    )
    p.add_argument("--fd-tolerance", type=int, default=o.soak_fd_tolerance)
    p.add_argument(
        "--rss-tolerance-mb",
        type=float,
        default=o.soak_rss_tolerance_mb,
        help="soak: RSS above the baseline still accepted (or 10 %% of it)",
    )
    p.add_argument("--seed", type=int, default=o.soak_seed, help="soak: random seed")
    p.add_argument("--repeat", type=int, default=o.repeat, help="compare: rounds (median ratios)")
    p.add_argument(
        "--profile",
        default="",
        help="py-spy the server during the steps with these viewer counts (e.g. 1000)",
    )
    p.add_argument("--node-viewers", type=int, default=o.node_viewers, help="hops: per node")
    p.add_argument("--cold-joins", type=int, default=o.cold_joins, help="coldjoin: per case")
    p.add_argument(
        "--pull-linger", type=float, default=o.pull_linger, help="coldjoin: the edges' linger"
    )
    p.add_argument(
        "--ladder-steps",
        default=",".join(map(str, o.ladder_steps)),
        help="ladder: ladders live at once, per step (stops at the first that falls behind)",
    )
    p.add_argument(
        "--worker-steps",
        default=",".join(map(str, o.worker_steps)),
        help="workers: viewer steps",
    )
    p.add_argument(
        "--merge-above",
        type=int,
        default=o.merge_above,
        help="compare: also Strom merging WebSocket writes above this many viewers",
    )
    p.add_argument(
        "--transports",
        default=",".join(o.browser_transports),
        help="browser: the watch page's transports (?transport=), in turn",
    )
    p.add_argument("--bframes", action="store_true", help="use the test media with B-frames")
    p.add_argument("--media-seconds", type=int, default=o.media_seconds)
    p.add_argument("--out", type=Path, default=o.out_root, help="results directory")
    p.add_argument(
        "--strom-src",
        type=Path,
        default=o.strom_source,
        help="run the Strom server from this source tree (e.g. another revision)",
    )
    return p  # fmt: skip


def options(args: argparse.Namespace) -> run.Options:
    default_seconds = BROWSER_SECONDS if args.scenario == "browser" else run.Options.step_seconds
    return run.Options(
        step_seconds=default_seconds if args.seconds is None else args.seconds,
        warmup=args.warmup,
        steps=tuple(int(x) for x in args.steps.split(",") if x.strip()),
        max_viewers=args.max_viewers,
        viewers=args.viewers,
        hls_viewers=args.hls_viewers,
        publishers=args.publishers,
        slow_share=args.slow_share,
        joins=args.joins,
        gen_procs=args.gen_procs,
        probes=args.probes,
        repeat=args.repeat,
        server_loop=args.server_loop,
        gen_loop=args.gen_loop,
        bulk_lowat=args.bulk_lowat,
        chat_sockets=args.chat_sockets,
        chat_rate=args.chat_rate,
        chat_senders=args.chat_senders,
        chat_lowat=args.chat_lowat,
        profile_at=tuple(int(x) for x in args.profile.split(",") if x.strip()),
        bframes=2 if args.bframes else 0,
        media_seconds=args.media_seconds,
        node_viewers=args.node_viewers,
        cold_joins=args.cold_joins,
        pull_linger=args.pull_linger,
        merge_above=args.merge_above,
        browser_transports=tuple(x.strip() for x in args.transports.split(",") if x.strip()),
        worker_steps=tuple(int(x) for x in args.worker_steps.split(",") if x.strip()),
        ladder_steps=tuple(int(x) for x in args.ladder_steps.split(",") if x.strip()),
        soak_minutes=args.minutes,
        soak_warmup=args.soak_warmup,
        soak_publishers=args.soak_publishers,
        soak_viewers=args.soak_viewers,
        soak_chat=args.soak_chat,
        garbage_rate=args.garbage_rate,
        soak_settle=args.settle,
        soak_fd_tolerance=args.fd_tolerance,
        soak_rss_tolerance_mb=args.rss_tolerance_mb,
        soak_seed=args.seed,
        req_count=args.req_count,
        req_conns=args.req_conns,
        out_root=args.out,
        strom_source=args.strom_src.resolve(),
    )


def scenario_runners(
    opts: run.Options,
) -> dict[str, Callable[[], Coroutine[Any, Any, dict[str, Any]]]]:
    return {
        "ramp": lambda: run.scenario_ramp(opts),
        "compare": lambda: run.scenario_compare(opts),
        "publishers": lambda: run.scenario_publishers(opts),
        "slow": lambda: run.scenario_slow(opts),
        "joins": lambda: run.scenario_joins(opts),
        "hls": lambda: run.scenario_hls(opts),
        "rtmp": lambda: run.scenario_viewers(opts, "strom", "rtmp", opts.viewers),
        "ws": lambda: run.scenario_viewers(opts, "strom", "ws", opts.viewers),
        "nginx": lambda: run.scenario_viewers(opts, "nginx", "rtmp", opts.viewers),
        "chat": lambda: chatrun.scenario_chat(opts),
        "soak": lambda: soak.scenario_soak(opts),
        "reqcost": lambda: reqcost.scenario_reqcost(opts),
        "hops": lambda: nodes.scenario_hops(opts),
        "coldjoin": lambda: nodes.scenario_coldjoin(opts),
        "workers": lambda: nodes.scenario_workers(opts),
        "browser": lambda: browser.scenario_browser(opts),
        "whip": lambda: whip.scenario_whip(opts),
        "ladder": lambda: ladder.scenario_ladder(opts),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    if args.scenario == "worker":
        run.worker_main(*args.args)
        return 0
    opts = options(args)
    try:
        path = ensure_media(MediaSpec(seconds=opts.media_seconds, bframes=opts.bframes))
    except MediaError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.scenario == "media":
        m = load_flv(path)
        print(f"{path}: {m.duration_ms / 1000:.1f} s, {m.video_frames} video frames, "
              f"{m.bitrate_kbps:.0f} kbit/s")  # fmt: skip
        return 0
    runners = scenario_runners(opts)
    names = ["compare", "ramp", "publishers", "slow", "joins", "hls"]
    todo = names if args.scenario == "all" else [args.scenario]
    command = "python -m bench " + shlex.join(argv)
    status = 0
    for name in todo:
        print(f"== {name}: {SCENARIOS[name]}", flush=True)
        try:
            result = run.run_loop(runners[name](), opts.gen_loop)
        except run.NginxMissing as exc:
            print(f"bench: nginx-rtmp reference skipped: {exc}", file=sys.stderr)
            continue
        report.write(name, result, command, opts.out_root)
        if not result.get("soak", {}).get("passed", True):
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
