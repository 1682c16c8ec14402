"""The soak's load (:mod:`bench.soak`): every client with a random lifetime, all from the
generator's main process, until a given time.

- one real-time RTMP publisher (:class:`RtmpPublisher`) per channel, publishing for
  6-40 s and then ending one of three ways: unpublishing (the broadcast ends), closing
  without unpublishing or resetting the connection (the server's reconnect grace keeps the
  broadcast; the publisher comes back after 0.2 s to twice the grace, so about half
  resume it and half find it ended);
- viewers joining and leaving (WebSocket 60 %, RTMP play 25 %, LL-HLS 15 %), 2-30 s each,
  leaving cleanly or by dropping the connection;
- chat sockets joining a room, writing a few messages, leaving, and a third as many
  Socket.IO clients (the apps' door) doing the same;
- garbage (:mod:`bench.garbage`) at a rate, at most :data:`GARBAGE_IN_FLIGHT` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

from bench import garbage
from bench.media import MediaFile
from bench.publisher import Ending, RtmpPublisher
from bench.records import ViewerRecord
from bench.run import Session
from bench.viewers import RtmpViewer, WsViewer, hls_viewer
from bench.wire import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    WireError,
    WsMessage,
    WsScanner,
    check_ws_upgrade,
    client_frame,
    parse_response_head,
    ws_request,
)

#: garbage clients connected at once, at most
GARBAGE_IN_FLIGHT = 24


@dataclass(frozen=True)
class Mix:
    """How much of each: publishers (one channel each), viewers and chat sockets at once,
    garbage clients a second; and the server's reconnect grace (when to come back)."""

    publishers: int = 3
    viewers: int = 20
    chat_sockets: int = 12
    garbage_rate: float = 3.0
    reconnect_grace: float = 4.0


@dataclass
class Tally:
    """What the clients saw, by kind: outcomes, and the media and chat that got through."""

    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    video_frames: Counter[str] = field(default_factory=Counter)
    chat_sent: int = 0
    chat_received: int = 0
    frames_sent: int = 0

    def add(self, kind: str, outcome: str) -> None:
        self.outcomes.setdefault(kind, Counter())[outcome[:70]] += 1

    def json(self) -> dict[str, Any]:
        return {
            "clients": {k: dict(v.most_common()) for k, v in sorted(self.outcomes.items())},
            "video_frames_received": dict(self.video_frames),
            "video_frames_sent": self.frames_sent,
            "chat_sent": self.chat_sent,
            "chat_events_received": self.chat_received,
        }


class SoakLoad:
    """Runs the client mix against one server until a given time."""

    def __init__(
        self,
        sess: Session,
        mix: Mix,
        keys: dict[str, str],
        media: MediaFile,
        rng: random.Random,
    ) -> None:
        self.sess = sess
        self.mix = mix
        self.host = sess.opts.host
        self.keys = keys
        self.channels = sorted(keys)
        self.media = media
        self.rng = rng
        self.tally = Tally()
        self.target = garbage.Target(
            self.host, sess.http_port, sess.rtmp_port, self.channels[0], sess.junk_key
        )
        self._n = 0

    async def run(self, seconds: float) -> None:
        stop_at = time.monotonic() + seconds
        mix = self.mix
        viewers = mix.viewers
        hls = round(viewers * 0.15)
        rtmp = round(viewers * 0.25)
        slots: list[Callable[[random.Random, float], Coroutine[Any, Any, None]]] = []
        slots += [self._publisher_slot(c) for c in self.channels]
        slots += [self._ws_viewer] * (viewers - hls - rtmp)
        slots += [self._rtmp_viewer] * rtmp
        slots += [self._hls_viewer] * hls
        slots += [self._chat] * mix.chat_sockets
        slots += [self._socketio] * max(1, mix.chat_sockets // 3)
        tasks = [
            asyncio.create_task(self._repeat(slot, random.Random(self.rng.random()), stop_at))
            for slot in slots
        ]
        tasks.append(asyncio.create_task(self._garbage(random.Random(self.rng.random()), stop_at)))
        await asyncio.gather(*tasks)

    async def _repeat(
        self,
        client: Callable[[random.Random, float], Coroutine[Any, Any, None]],
        rng: random.Random,
        stop_at: float,
    ) -> None:
        """One client after another in this slot, with a pause between them."""
        await asyncio.sleep(rng.uniform(0, 2))
        while time.monotonic() < stop_at - 0.5:
            try:
                await client(rng, stop_at)
            # RuntimeError: uvloop writing to a transport the server closed; ValueError:
            # what bench.wire makes of an answer it does not accept
            except (OSError, TimeoutError, RuntimeError, ValueError) as exc:
                self.tally.add(getattr(client, "__name__", "client"), type(exc).__name__)
            await asyncio.sleep(min(rng.uniform(0.1, 2.0), max(0.0, stop_at - time.monotonic())))

    def _life(self, rng: random.Random, low: float, high: float, stop_at: float) -> float:
        return max(0.1, min(rng.uniform(low, high), stop_at - time.monotonic()))

    # -- publishers ----------------------------------------------------------------------

    def _publisher_slot(
        self, channel: str
    ) -> Callable[[random.Random, float], Coroutine[Any, Any, None]]:
        async def publisher(rng: random.Random, stop_at: float) -> None:
            ending = cast(Ending, rng.choices(["unpublish", "close", "reset"], [4, 3, 3])[0])
            until = time.monotonic() + self._life(rng, 6, 40, stop_at)
            pub = RtmpPublisher(self.host, self.sess.rtmp_port, self.keys[channel], self.media)
            stats = await pub.run(until, ending)
            self.tally.frames_sent += stats.frames
            self.tally.add("publisher", f"error: {stats.error}" if stats.error else ending)
            if ending != "unpublish":  # back within the grace, or after it
                grace = self.mix.reconnect_grace
                await asyncio.sleep(self._life(rng, 0.2, 2 * grace, stop_at))

        publisher.__name__ = "publisher"
        return publisher

    # -- viewers -------------------------------------------------------------------------

    async def _protocol_viewer(
        self, kind: str, rng: random.Random, stop_at: float, make: Callable[..., Any]
    ) -> None:
        loop = asyncio.get_running_loop()
        self._n += 1
        rec = ViewerRecord(kind, self._n, rng.choice(self.channels))
        done: asyncio.Future[None] = loop.create_future()
        proto = make(rec, done)
        port = self.sess.rtmp_port if kind == "rtmp" else self.sess.http_port
        rec.t_start = time.monotonic()
        await asyncio.wait_for(loop.create_connection(lambda: proto, self.host, port), 5.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(done), self._life(rng, 2, 30, stop_at))
        if rng.random() < 0.5:
            proto.close()
        elif proto.transport is not None:
            proto.transport.abort()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done, 2.0)
        self.tally.video_frames[kind] += len(rec.ts)
        self.tally.add(kind, rec.error or ("ended" if rec.ended else "left"))

    async def _ws_viewer(self, rng: random.Random, stop_at: float) -> None:
        host, port = self.host, self.sess.http_port
        await self._protocol_viewer(
            "ws",
            rng,
            stop_at,
            lambda rec, done: WsViewer(rec, host, port, f"/live/{rec.channel}/ws", done),
        )

    async def _rtmp_viewer(self, rng: random.Random, stop_at: float) -> None:
        host, port = self.host, self.sess.rtmp_port
        await self._protocol_viewer(
            "rtmp", rng, stop_at, lambda rec, done: RtmpViewer(rec, host, port, "live", done)
        )

    async def _hls_viewer(self, rng: random.Random, stop_at: float) -> None:
        self._n += 1
        rec = ViewerRecord("hls", self._n, rng.choice(self.channels))
        until = time.monotonic() + self._life(rng, 3, 30, stop_at)
        path = f"/live/{rec.channel}/index.m3u8"
        await hls_viewer(rec, self.host, self.sess.http_port, path, until)
        self.tally.video_frames["hls"] += len(rec.ts)
        self.tally.add("hls", rec.error or "left")

    # -- chat ----------------------------------------------------------------------------

    async def _websocket(
        self, path: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, list[WsMessage], WsScanner]:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.sess.http_port), 5.0
        )
        writer.write(ws_request(self.host, self.sess.http_port, path))
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        check_ws_upgrade(parse_response_head(raw[:-4]))
        inbox: list[WsMessage] = []
        return reader, writer, inbox, WsScanner(keep=-1, on_message=inbox.append)

    async def _converse(
        self,
        kind: str,
        path: str,
        rng: random.Random,
        stop_at: float,
        on_text: Callable[[bytes, asyncio.StreamWriter], None],
        say: Callable[[int], bytes],
    ) -> None:
        """A WebSocket member: says something every few seconds, answers pings, leaves."""
        try:
            reader, writer, inbox, scanner = await self._websocket(path)
        except (WireError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            self.tally.add(kind, f"connect: {exc}")
            return
        deadline = time.monotonic() + self._life(rng, 3, 30, stop_at)
        next_say = time.monotonic() + rng.uniform(0.5, 2.0)
        said = 0
        outcome = "left"
        try:
            while (now := time.monotonic()) < deadline:
                try:
                    data = await asyncio.wait_for(
                        reader.read(65536), max(0.05, min(deadline, next_say) - now)
                    )
                except TimeoutError:
                    data = None
                if data == b"":
                    outcome = "closed by server"
                    break
                if data:
                    scanner.feed(data)
                for msg in inbox:
                    if msg.opcode == OP_TEXT:
                        on_text(msg.head, writer)
                    elif msg.opcode == OP_PING:
                        writer.write(client_frame(OP_PONG, msg.head[:125]))
                    elif msg.opcode == OP_CLOSE:
                        code = int.from_bytes(msg.head[:2], "big") if len(msg.head) > 1 else 0
                        outcome = f"closed by server {code}"
                inbox.clear()
                if outcome != "left":
                    break
                if time.monotonic() >= next_say and said < 6:
                    said += 1
                    self.tally.chat_sent += 1
                    writer.write(garbage.frame(0x1, say(said)))
                    next_say = time.monotonic() + rng.uniform(1.5, 4.0)
        except (WireError, ValueError) as exc:
            outcome = f"protocol: {exc}"
        finally:
            if rng.random() < 0.5 and not writer.is_closing():
                writer.write(client_frame(OP_CLOSE, (1000).to_bytes(2, "big")))
                writer.close()
            else:
                writer.transport.abort()
        self.tally.add(kind, outcome)

    async def _chat(self, rng: random.Random, stop_at: float) -> None:
        channel = rng.choice(self.channels)

        def on_text(text: bytes, _writer: asyncio.StreamWriter) -> None:
            if text.startswith(b'{"type":"batch"'):
                self.tally.chat_received += text.count(b'"type":"message"')

        def say(n: int) -> bytes:
            return json.dumps({"type": "send", "text": f"soak says {n}", "nonce": f"s{n}"}).encode()

        await self._converse("chat", f"/chat/{channel}/ws", rng, stop_at, on_text, say)

    async def _socketio(self, rng: random.Random, stop_at: float) -> None:
        """The apps' door: Engine.IO 4 over WebSocket, Socket.IO 5 packets."""
        channel = rng.choice(self.channels)

        def on_text(text: bytes, writer: asyncio.StreamWriter) -> None:
            if text.startswith(b"0{"):  # Engine.IO open: connect the default namespace
                writer.write(garbage.frame(0x1, b"40"))
            elif text.startswith(b"40"):
                join = json.dumps(["join_room", channel]).encode()
                writer.write(garbage.frame(0x1, b"42" + join))
            elif text == b"2":  # Engine.IO ping
                writer.write(garbage.frame(0x1, b"3"))
            elif text.startswith(b'42["comment"'):
                self.tally.chat_received += 1

        def say(n: int) -> bytes:
            comment = ["comment", {"roomKey": channel, "text": f"door says {n}"}]
            return b"42" + json.dumps(comment).encode()

        path = "/socket.io/?EIO=4&transport=websocket"
        await self._converse("socketio", path, rng, stop_at, on_text, say)

    # -- garbage -------------------------------------------------------------------------

    async def _garbage(self, rng: random.Random, stop_at: float) -> None:
        running: set[asyncio.Task[None]] = set()
        kinds = sorted(garbage.KINDS)

        async def one(kind: str, seed: float) -> None:
            outcome = await garbage.run_one(kind, self.target, random.Random(seed))
            self.tally.add(f"garbage {kind}", outcome)

        while time.monotonic() < stop_at:
            await asyncio.sleep(rng.expovariate(self.mix.garbage_rate))
            if len(running) < GARBAGE_IN_FLIGHT and time.monotonic() < stop_at:
                task = asyncio.create_task(one(rng.choice(kinds), rng.random()))
                running.add(task)
                task.add_done_callback(running.discard)
        await asyncio.gather(*running, return_exceptions=True)
