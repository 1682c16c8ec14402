"""Hostile RTMP clients and what a running server shows while they run (issue 11, part 2).

``python -m bench.hostile_rtmp [--source DIR] [--probe memory,stall,deadlines]`` starts
``strom serve`` from ``DIR`` (default: this checkout) on loopback and prints, per probe:

* memory: RSS of the server before, during and after 8 clients that each finish the
  handshake, set a 1 MiB chunk size, send 7 MiB of each of four 8 MiB messages and then
  one byte every 4 s; and how long each stayed open;
* stall: an ffmpeg publisher and a WebSocket viewer of one channel, then a client that
  sets a chunk size of 1 and sends 1-byte chunks as fast as the socket takes them
  (falling back to the smallest chunk size the server accepts when it refuses 1): the
  viewer's largest gap between chunks, the node's numbers' response times and loop lag;
* deadlines: time until the server closes a socket that is silent after ``connect``,
  and one that trickles its handshake one byte a second.

The clients are plain asyncio streams writing bytes made with Strom's sans-IO encoders,
so the end-to-end tests use them too (``tests/e2e/test_rtmp_hostile.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.http import LEGACY_STATS_PATH, STATS_PATH
from strom.media.amf import encode_amf0
from strom.media.rtmp import encode_message
from strom.media.rtmp.handshake import HANDSHAKE_SIZE
from strom.media.rtmp.messages import MessageType, SetChunkSize

KIB = 1024
MIB = 1024 * KIB

# ----------------------------------------------------------------------- raw clients


async def rtmp_open(
    port: int,
    host: str = "127.0.0.1",
    *,
    local_host: str | None = None,
    receive_buffer: int | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection that has finished a plain RTMP handshake (spec 5.2).
    ``receive_buffer``: the socket's SO_RCVBUF, set before connecting (a client that
    reads nothing then stops the server's writes soon)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    if local_host:
        sock.bind((local_host, 0))
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except OSError:
        sock.close()
        raise
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"\x03" + bytes(HANDSHAKE_SIZE))  # C0 + C1 (time 0, zero, zero bytes)
    s0s1s2 = await reader.readexactly(1 + 2 * HANDSHAKE_SIZE)
    writer.write(s0s1s2[1 : 1 + HANDSHAKE_SIZE])  # C2 echoes S1
    return reader, writer


def set_chunk_size(size: int) -> bytes:
    return encode_message(2, MessageType.SET_CHUNK_SIZE, 0, 0, bytes(SetChunkSize(size)), 128)


def connect_command(port: int, app: str = "live") -> bytes:
    props = {"app": app, "type": "nonprivate", "tcUrl": f"rtmp://127.0.0.1:{port}/{app}"}
    payload = encode_amf0("connect", 1.0, props)
    return encode_message(3, MessageType.COMMAND_AMF0, 0, 0, payload, 128)


async def closed_within(reader: asyncio.StreamReader, timeout: float) -> float | None:
    """Seconds until the server closes the connection (EOF or reset), None if it is
    still open after ``timeout``. Reads and discards whatever the server sends."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - start


def close_quietly(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        writer.transport.abort()


async def _write(writer: asyncio.StreamWriter, data: bytes) -> bool:
    """Write and drain; False once the server has closed the connection."""
    try:
        writer.write(data)
        await writer.drain()
    except (OSError, RuntimeError):
        return False
    return not writer.is_closing()


async def memory_hog(
    port: int,
    *,
    messages: int = 4,
    message_size: int = 8 * MIB,
    sent: int = 7 * MIB,
    chunk_size: int = 1 * MIB,
    trickle_every: float = 4.0,
    give_up: float = 60.0,
    local_host: str | None = None,
) -> float | None:
    """Issue 11 §2.1: ``messages`` unfinished messages of ``message_size`` bytes, ``sent``
    bytes of each (a multiple of ``chunk_size``, so that every chunk is whole), then one
    byte every ``trickle_every`` s. Returns the seconds from the TCP connect until the
    server closed it (None: still open after ``give_up``)."""
    start = time.monotonic()
    try:
        reader, writer = await rtmp_open(port, local_host=local_host)
    except (OSError, asyncio.IncompleteReadError):
        return time.monotonic() - start
    closed = asyncio.create_task(closed_within(reader, give_up))
    try:
        if not await _write(writer, set_chunk_size(chunk_size)):
            return await _after(closed, start)
        for i in range(messages):
            csid = 3 + i
            # one type-0 chunk header announcing the whole message, then its payload
            # in chunk-size pieces with type-3 headers
            header = (
                bytes((csid,))
                + bytes(3)
                + message_size.to_bytes(3, "big")
                + bytes((MessageType.VIDEO,))
                + (1).to_bytes(4, "little")
            )
            body = bytearray(header)
            for offset in range(0, sent, chunk_size):
                if offset:
                    body.append(0xC0 | csid)
                body += bytes(min(chunk_size, sent - offset))
            if not await _write(writer, bytes(body)):
                return await _after(closed, start)
        while not closed.done():
            if not await _write(writer, b"\xc3"):  # a type-3 basic header, then nothing
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(closed), trickle_every)
        return await _after(closed, start)
    finally:
        closed.cancel()
        close_quietly(writer)


async def _after(closed: asyncio.Task[float | None], start: float) -> float | None:
    if await closed is None:
        return None
    return time.monotonic() - start


async def tiny_chunks(
    port: int,
    seconds: float,
    *,
    chunk_size: int = 1,
    message_kib: int = 32,
    local_host: str | None = None,
) -> tuple[int, float | None]:
    """Issue 11 §2.2: Set Chunk Size ``chunk_size``, then chunks as fast as the socket
    takes them, for ``seconds``: shared-object messages (type 19, which a server takes
    and ignores) of about ``message_kib`` KiB, small enough for any pre-publish limit.
    Returns (bytes written, seconds until the server closed the connection or None if
    it stayed open)."""
    start = time.monotonic()
    reader, writer = await rtmp_open(port, local_host=local_host)
    closed = asyncio.create_task(closed_within(reader, seconds + 5.0))
    piece = b"\xc3" + bytes(chunk_size)  # a type-3 chunk: basic header + payload
    per_block = max(1, 8192 // len(piece))
    blocks = max(1, message_kib * KIB // (per_block * chunk_size))
    size = chunk_size * (1 + blocks * per_block)
    first = (
        b"\x03" + bytes(3) + size.to_bytes(3, "big") + bytes((MessageType.SHARED_OBJECT_AMF0,))
        + bytes(4) + bytes(chunk_size)
    )  # fmt: skip
    message = first + piece * (per_block * blocks)
    written = 0
    try:
        if not await _write(writer, set_chunk_size(chunk_size)):
            return written, await _after(closed, start)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):  # a server that stops reading blocks us
                while not closed.done():
                    if not await _write(writer, message):
                        return written, await _after(closed, start)
                    written += len(message)
        if closed.done():
            return written, await _after(closed, start)
        return written, None
    finally:
        closed.cancel()
        close_quietly(writer)


async def silent_after_connect(
    port: int, give_up: float = 90.0, *, local_host: str | None = None
) -> float | None:
    """Issue 11 §2.3: handshake, ``connect``, read the answer, then silence. Seconds from
    the TCP connect until the server closed it (None: still open after ``give_up``)."""
    start = time.monotonic()
    reader, writer = await rtmp_open(port, local_host=local_host)
    try:
        writer.write(connect_command(port))
        return await _after(asyncio.create_task(closed_within(reader, give_up)), start)
    finally:
        close_quietly(writer)


async def trickled_handshake(
    port: int, every: float = 1.0, give_up: float = 90.0, *, local_host: str | None = None
) -> float | None:
    """Issue 11 §2.3: C0, then one byte of C1 every ``every`` s (never finishing).
    Seconds until the server closed the connection (None: open after ``give_up``)."""
    start = time.monotonic()
    local = (local_host, 0) if local_host else None
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
    closed = asyncio.create_task(closed_within(reader, give_up))
    try:
        await _write(writer, b"\x03")
        while not closed.done():
            if not await _write(writer, b"\x00"):
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(closed), every)
        return await _after(closed, start)
    finally:
        closed.cancel()
        close_quietly(writer)


async def hold_open(
    port: int, *, local_host: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sent one byte (C0) and waits: the issue's lock-out socket."""
    local = (local_host, 0) if local_host else None
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
    writer.write(b"\x03")
    await writer.drain()
    return reader, writer


# ------------------------------------------------------------------------ observers


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class ViewerGaps:
    """Arrival times of a WebSocket viewer's binary messages (media chunks)."""

    arrivals: list[float] = field(default_factory=list)

    def max_gap(self, since: float, until: float) -> float:
        times = [t for t in self.arrivals if since <= t <= until]
        if len(times) < 2:
            return float("inf")
        edges = [since, *times, until]
        return max(b - a for a, b in itertools.pairwise(edges))


async def watch(url: str, gaps: ViewerGaps, stop: asyncio.Event) -> None:
    """A WebSocket viewer of ``url`` that notes when each media chunk arrives."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        waiter = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                receive = asyncio.create_task(ws.receive())
                done, _ = await asyncio.wait({receive, waiter}, return_when="FIRST_COMPLETED")
                if receive not in done:
                    receive.cancel()
                    break
                msg = receive.result()
                if msg.type is aiohttp.WSMsgType.BINARY:
                    gaps.arrivals.append(time.monotonic())
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
        finally:
            waiter.cancel()


@dataclass
class MetricsSamples:
    response_seconds: list[float] = field(default_factory=list)
    loop_lag_max_ms: list[float] = field(default_factory=list)


async def stats(http: aiohttp.ClientSession, base: str, timeout: float = 30) -> dict[str, Any]:
    """The node's numbers (JSON), where an older Strom (404) has them too."""
    for path in (STATS_PATH, LEGACY_STATS_PATH):
        async with http.get(base + path, timeout=aiohttp.ClientTimeout(timeout)) as r:
            if r.status != 404:
                found: dict[str, Any] = json.loads(await r.text())
                return found
    raise RuntimeError(f"{base}: no numbers at {STATS_PATH} nor {LEGACY_STATS_PATH}")


async def sample_metrics(base: str, samples: MetricsSamples, stop: asyncio.Event) -> None:
    """Ask the node's numbers every 0.5 s: how long the answer took, and the loop lag it
    reports."""
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            t0 = time.monotonic()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                data = await stats(http, base)
                samples.response_seconds.append(time.monotonic() - t0)
                samples.loop_lag_max_ms.append(float(data.get("loop_lag_max_ms", 0.0)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


# --------------------------------------------------------------------------- runner


def _fmt(seconds: float | None, give_up: float) -> str:
    return f"> {give_up:.0f} s (still open)" if seconds is None else f"{seconds:.1f} s"


async def probe_memory(pid: int, port: int, connections: int = 8, give_up: float = 60.0) -> None:
    before = rss_mib(pid)
    peak = before
    hogs = [asyncio.create_task(memory_hog(port, give_up=give_up)) for _ in range(connections)]
    while not all(h.done() for h in hogs):
        peak = max(peak, rss_mib(pid))
        await asyncio.wait(hogs, timeout=0.5)
    closes = [h.result() for h in hogs]
    await asyncio.sleep(1.0)
    after = rss_mib(pid)
    print(
        f"memory: {connections} clients, RSS {before:.0f} MiB before, peak {peak:.0f} MiB "
        f"(+{peak - before:.0f}), {after:.0f} MiB after they closed (+{after - before:.0f})"
    )
    open_for = [_fmt(c, give_up) for c in closes]
    print(f"memory: each stayed open {', '.join(open_for)}")


async def probe_stall(
    base: str, port: int, channel: str, seconds: float = 5.0, chunk_size: int = 1
) -> None:
    gaps, samples, stop = ViewerGaps(), MetricsSamples(), asyncio.Event()
    viewer = asyncio.create_task(watch(f"{base}/live/{channel}/ws", gaps, stop))
    await asyncio.sleep(3.0)
    quiet_from = time.monotonic()
    await asyncio.sleep(seconds)
    quiet_until = time.monotonic()
    metrics = asyncio.create_task(sample_metrics(base, samples, stop))
    cpu_before = await server_cpu_seconds(base)
    attack_from = time.monotonic()
    written, closed = await tiny_chunks(port, seconds, chunk_size=chunk_size)
    if closed is not None and closed < 1.0 and chunk_size < 128:
        chunk_size = 128  # refused at once: the smallest size a strict server takes
        cpu_before = await server_cpu_seconds(base)
        attack_from = time.monotonic()
        written, closed = await tiny_chunks(port, seconds, chunk_size=chunk_size)
    attack_until = time.monotonic()
    cpu = await server_cpu_seconds(base) - cpu_before
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.gather(viewer, metrics, return_exceptions=True)
    quiet_gap = gaps.max_gap(quiet_from, quiet_until)
    attack_gap = gaps.max_gap(attack_from, attack_until + 1.0)
    attack = attack_until - attack_from
    state = "stayed open" if closed is None else f"closed after {closed:.1f} s"
    print(f"stall: viewer max gap without attack {quiet_gap:.2f} s")
    sent = written / MIB
    print(f"stall: chunk size {chunk_size}: {sent:.1f} MiB sent in {attack:.1f} s, {state}")
    print(f"stall: server CPU {cpu:.1f} s in those {attack:.1f} s (publisher, viewer included)")
    print(f"stall: viewer max gap during attack {attack_gap:.2f} s")
    if samples.response_seconds:
        print(
            f"stall: its numbers answered in max {max(samples.response_seconds):.2f} s "
            f"(median {statistics.median(samples.response_seconds):.3f} s), "
            f"loop lag max {max(samples.loop_lag_max_ms):.0f} ms"
        )


async def server_cpu_seconds(base: str) -> float:
    """The server's CPU time (user + system) so far, from its numbers."""
    async with aiohttp.ClientSession() as http:
        return float((await stats(http, base))["cpu_seconds"])


async def probe_deadlines(port: int, give_up: float = 90.0) -> None:
    silent, trickled = await asyncio.gather(
        silent_after_connect(port, give_up), trickled_handshake(port, 1.0, give_up)
    )
    print(f"deadlines: silent after connect closed after {_fmt(silent, give_up)}")
    print(f"deadlines: trickled handshake (1 byte/s) closed after {_fmt(trickled, give_up)}")


async def publish_loop(ffmpeg: str, media: Path, port: int, key: str) -> asyncio.subprocess.Process:
    """ffmpeg publishing ``media`` in real time, looped until killed."""
    return await asyncio.create_subprocess_exec(
        ffmpeg, "-v", "error", "-stream_loop", "-1", "-re", "-i", str(media),
        "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{port}/live/{key}",
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def main(argv: list[str] | None = None) -> int:
    from bench.media import MediaSpec, ensure_media  # noqa: PLC0415 - only the runner
    from bench.servers import StromProcess  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.hostile_rtmp", description=__doc__)
    parser.add_argument("--source", type=Path, default=Path.cwd(), help="checkout to run")
    parser.add_argument("--probe", default="memory,stall,deadlines")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/strom-hostile"))
    parser.add_argument("--give-up", type=float, default=60.0, help="seconds to wait for close")
    parser.add_argument("--chunk-size", type=int, default=1, help="the stall probe's chunk size")
    args = parser.parse_args(argv)
    probes = set(args.probe.split(","))
    key = "alice-secret-key-1234"
    shutil.rmtree(args.workdir, ignore_errors=True)
    server = StromProcess(args.workdir, {"alice": key}, source=args.source.resolve())
    await server.start()
    base = f"http://127.0.0.1:{server.http_port}"
    try:
        rss = rss_mib(server.pid)
        print(f"strom serve from {args.source} (pid {server.pid}), RSS {rss:.0f} MiB")
        # in this order: the memory probe before any broadcast (which grows the RSS)
        if "memory" in probes:
            await probe_memory(server.pid, server.rtmp_port, give_up=args.give_up)
        if "deadlines" in probes:
            await probe_deadlines(server.rtmp_port, args.give_up)
        ffmpeg = shutil.which("ffmpeg")
        if "stall" in probes and ffmpeg is None:
            print("stall: skipped, ffmpeg is not installed")
        elif "stall" in probes and ffmpeg is not None:
            media = ensure_media(MediaSpec(seconds=10, size="640x360", video_kbps=800))
            publisher = await publish_loop(ffmpeg, media, server.rtmp_port, key)
            try:
                await probe_stall(base, server.rtmp_port, "alice", chunk_size=args.chunk_size)
            finally:
                publisher.kill()
                await publisher.wait()
    finally:
        await server.stop()
        print(server.log_tail(8), file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(asyncio.run(main()))
