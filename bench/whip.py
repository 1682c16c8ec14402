"""The ``whip`` scenario: server CPU per WHIP publisher against per RTMP publisher, the same
media (the 720p30 2.5 Mbit/s test file) at the same rate, no viewers.

Two runs of a fresh server each: ``--publishers`` RTMP publishers (:class:`RtmpPublisher`),
then as many WHIP publishers, which send the file's own H.264 frames as they are
(``strom stream --whip``'s :class:`~strom.client.whip.WhipStreamer`: aiortc packetizes,
encrypts and paces them) and its sound as Opus (the AAC transcoded once, before the run:
WebRTC carries no AAC). The server's CPU over the measured window, less its idle CPU before
the publishers came, divided by the publishers, is the figure; WHIP's includes ICE, DTLS,
SRTP decryption, RTCP and the depacketizer, RTMP's the chunk stream and FLV.

ICE runs on loopback (the server's ``whip_ice_addresses`` and this process's). The
publishers run in this one process: aiortc's sending side costs more CPU here than the
server's receiving side does, so keep ``--publishers`` to what one core of this process
can send (about 5 at 2.5 Mbit/s), or the generator is the limit (its CPU is reported).
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from dataclasses import dataclass
from typing import Any

import av

from bench.media import TAG_AUDIO, TAG_VIDEO, MediaFile
from bench.run import GEN_SATURATED, Options, Session, _r, session
from strom.client.config import ClientLimits
from strom.client.encode import AudioEncoder, Encoded
from strom.client.publish import PublishState
from strom.client.whip import WhipStreamer
from strom.ingest import rtc
from strom.media.flv import FlvDemuxer
from strom.media.model import Codec, Frame, Track

#: ICE stays on this machine's loopback
LOOPBACK = "127.0.0.1"
#: seconds the idle server is measured before publishers come, and after they settle
IDLE_SECONDS = 3.0
SETTLE_SECONDS = 3.0


@dataclass(frozen=True)
class WhipMedia:
    """The test file as ``strom stream --whip`` would send it: H.264 frames as they are,
    Opus packets, in send order (milliseconds)."""

    items: tuple[Encoded, ...]
    duration_ms: int


def whip_media(media: MediaFile) -> WhipMedia:
    """Demux the file's FLV tags; its AAC decoded and encoded to Opus, once."""
    demuxer = FlvDemuxer()
    video: list[Encoded] = []
    sound: list[Frame] = []
    tracks: dict[int, Track] = {}
    for tag in media.tags:
        if tag.tag_type == TAG_VIDEO:
            items = demuxer.video(tag.timestamp, tag.payload)
        elif tag.tag_type == TAG_AUDIO:
            items = demuxer.audio(tag.timestamp, tag.payload)
        else:
            continue
        for item in items:
            if isinstance(item, Track):
                tracks[item.id] = item
            elif tracks[item.track_id].codec is Codec.H264:
                video.append(Encoded(tracks[item.track_id], item))
            else:
                sound.append(item)
    aac = next((t for t in tracks.values() if t.codec is Codec.AAC), None)
    opus = _opus(aac, sound) if aac is not None else []
    ordered = sorted(video + opus, key=lambda e: e.frame.dts)
    return WhipMedia(tuple(ordered), media.duration_ms)


def _opus(aac: Track, frames: list[Frame]) -> list[Encoded]:
    decoder = av.CodecContext.create("aac", "r")
    assert isinstance(decoder, av.AudioCodecContext)
    decoder.extradata = aac.config
    encoder = AudioEncoder(128, opus=True)
    out: list[Encoded] = []
    for frame in frames:
        for pcm in decoder.decode(av.Packet(frame.data)):
            out += encoder.encode(pcm, frame.dts)
    return out


async def _publish(
    url: str, key: str, media: WhipMedia, stop_at: float, state: list[WhipStreamer]
) -> None:
    """One WHIP publisher sending ``media`` in real time, looped, until ``stop_at``."""
    streamer = WhipStreamer(url, key, ClientLimits())
    state.append(streamer)
    running = asyncio.create_task(streamer.run())
    start = time.monotonic()
    loop_count = 0
    try:
        while time.monotonic() < stop_at:
            shift = loop_count * media.duration_ms
            for item in media.items:
                due = start + (shift + item.frame.dts) / 1000
                if due > stop_at:
                    break
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                frame = dataclasses.replace(
                    item.frame, dts=item.frame.dts + shift, pts=item.frame.pts + shift
                )
                streamer.offer(Encoded(item.track, frame))
            loop_count += 1
    finally:
        streamer.stop()
        await asyncio.wait({running}, timeout=5)


async def _measure(sess: Session, publish: Any, n: int, seconds: float) -> dict[str, Any]:
    """Idle CPU, then ``publish(stop_at)`` for ``n`` publishers: server cores per one."""
    t0 = time.monotonic()
    await asyncio.sleep(IDLE_SECONDS)
    idle = sess.sampler.cores("server", t0, time.monotonic()) or 0.0
    stop_at = time.monotonic() + SETTLE_SECONDS + seconds + 2
    task = asyncio.create_task(publish(stop_at))
    await asyncio.sleep(SETTLE_SECONDS)
    t1 = time.monotonic()
    await asyncio.sleep(seconds)
    t2 = time.monotonic()
    busy = sess.sampler.cores("server", t1, t2) or 0.0
    gen = sess.sampler.cores("self:gen-main", t1, t2)
    last = sess.sampler.samples[-1].metrics if sess.sampler.samples else {}
    live = sum(1 for c in last.get("channels", []) if c.get("state") == "live")
    await task
    return {
        "publishers": n,
        "live_channels": live,
        "server_cores_idle": _r(idle, 4),
        "server_cores": _r(busy, 4),
        "server_cores_per_publisher": _r((busy - idle) / n, 4),
        "generator_cores": _r(gen, 3),
        "generator_saturated": gen is not None and gen >= GEN_SATURATED,
    }


async def scenario_whip(opts: Options) -> dict[str, Any]:
    n = opts.publishers
    keys = {f"w{i:02d}": f"key-{i:02d}-{secrets.token_hex(6)}" for i in range(n)}
    env = {"STROM_WHIP_ICE_ADDRESSES": LOOPBACK}
    rtc.offer_addresses([LOOPBACK])
    async with session("strom", opts, channels=keys, server_env=env) as sess:

        async def rtmp(stop_at: float) -> None:
            await sess.publish(keys, stagger=0.5 / n)
            await asyncio.sleep(max(0.0, stop_at - time.monotonic()))

        rtmp_row = await _measure(sess, rtmp, n, opts.step_seconds)
    async with session("strom", opts, channels=keys, server_env=env) as sess:
        media = whip_media(sess.media)
        url = f"http://{opts.host}:{sess.http_port}/whip"
        streamers: list[WhipStreamer] = []

        async def whip(stop_at: float) -> None:
            await asyncio.gather(
                *(_publish(url, key, media, stop_at, streamers) for key in keys.values())
            )

        whip_row = await _measure(sess, whip, n, opts.step_seconds)
        whip_row["refused"] = sum(1 for s in streamers if s.stats.state is PublishState.STOPPED
                                  and not s.stats.first_live)  # fmt: skip
    ratio = None
    if rtmp_row["server_cores_per_publisher"] and whip_row["server_cores_per_publisher"]:
        ratio = round(
            whip_row["server_cores_per_publisher"] / rtmp_row["server_cores_per_publisher"], 2
        )
    kbps = sess.media.bitrate_kbps
    lines = [
        f"Media: {kbps:.0f} kbit/s, {n} publishers each, no viewers, {opts.step_seconds:g} s.",
        "",
        "| ingest | live | server cores (idle) | server cores | per publisher | generator |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in (("RTMP", rtmp_row), ("WHIP", whip_row)):
        lines.append(
            f"| {name} | {row['live_channels']}/{n} | {row['server_cores_idle']} | "
            f"{row['server_cores']} | {row['server_cores_per_publisher']} | "
            f"{row['generator_cores']} |"
        )
    lines += ["", f"- WHIP/RTMP CPU per publisher: {ratio}"]
    if whip_row["generator_saturated"] or rtmp_row["generator_saturated"]:
        lines.append("- the generator saturated a core: fewer --publishers")
    return {"rtmp": rtmp_row, "whip": whip_row, "whip_over_rtmp": ratio, "lines": lines}
