"""The media timeline as players see it, with real ffmpeg publishing over RTMP: every
fragment a WebSocket viewer gets starts exactly where the track's previous one ended, an
LL-HLS segment of a 2 s GOP lasts 2.00000 s, and VLC joining LL-HLS mid-stream plays
without dropping pictures."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import struct
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import aiohttp
import pytest

from strom.media.model import AUDIO_TRACK_ID, VIDEO_TRACK_ID
from strom.server import StromServer
from tests.helpers import CHANNEL, STREAM_KEY, MediaFile, make_media, need_tool, publish_args
from tests.helpers.fmp4 import root
from tests.helpers.watching import base, wait_live

pytestmark = pytest.mark.e2e

BOB, BOB_KEY = "bob", "bob-secret-key-5678"  # the second channel of make_settings


@dataclass(frozen=True)
class Variant:
    fps: Fraction
    sample_rate: int

    @property
    def frame_ticks(self) -> int:  # at 90 kHz
        return int(90_000 / self.fps)


#: 30 fps with 44.1 kHz audio, and NTSC's 29.97 fps with 48 kHz: RTMP's millisecond
#: timestamps round both the picture spacing and the AAC frame spacing.
VARIANTS = (Variant(Fraction(30), 44_100), Variant(Fraction(30_000, 1001), 48_000))


@pytest.fixture(scope="module")
def timeline_media(media_dir: Path) -> list[MediaFile]:
    """7 s of each variant, with a keyframe every 60 pictures (2 s, or 2.002 s)."""
    return [
        make_media(
            media_dir / f"timeline-{n}.flv",
            seconds=7.0,
            size="320x180",
            fps=v.fps,
            gop=60,
            sample_rate=v.sample_rate,
            bitrate="300k",
        )
        for n, v in enumerate(VARIANTS)
    ]


async def watch_ws(url: str, seconds: float) -> list[bytes]:
    """The binary messages a WebSocket viewer gets in ``seconds``: init, then chunks."""
    messages: list[bytes] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        try:
            async with asyncio.timeout(seconds):
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.BINARY:
                        messages.append(msg.data)
        except TimeoutError:
            pass
    return messages


def samples_by_track(chunks: list[bytes]) -> dict[int, list[tuple[int, int]]]:
    """(decode time, duration) of every sample in the chunks, per track, from each
    ``traf``'s ``tfdt`` and ``trun`` (ISO/IEC 14496-12 8.8.12, 8.8.8)."""
    found: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for chunk in chunks:
        for traf in root(chunk).find("moof/traf"):
            (track_id,) = struct.unpack_from(">I", traf.one("tfhd").payload, 4)
            (start,) = struct.unpack_from(">Q", traf.one("tfdt").payload, 4)
            trun = traf.one("trun").payload
            (count,) = struct.unpack_from(">I", trun, 4)
            for n in range(count):
                (duration,) = struct.unpack_from(">I", trun, 12 + 16 * n)
                found[track_id].append((start, duration))
                start += duration
    return found


async def test_fragments_and_segments_last_exactly_as_long_as_their_media(
    server: StromServer, timeline_media: list[MediaFile]
) -> None:
    channels = ((CHANNEL, STREAM_KEY), (BOB, BOB_KEY))
    publishers = [
        await asyncio.create_subprocess_exec(*publish_args(media, server.rtmp_port, key))
        for media, (_, key) in zip(timeline_media, channels, strict=True)
    ]
    try:
        for name, _ in channels:
            await wait_live(server, name)
        captured = await asyncio.gather(
            *(watch_ws(f"{base(server)}/live/{name}/ws", 5.0) for name, _ in channels)
        )
        for proc in publishers:
            assert await proc.wait() == 0
        await asyncio.sleep(0.3)
        async with aiohttp.ClientSession() as http:
            playlists = [
                await (await http.get(f"{base(server)}/live/{name}/index.m3u8")).text()
                for name, _ in channels
            ]
    finally:
        for proc in publishers:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    for variant, messages, playlist in zip(VARIANTS, captured, playlists, strict=True):
        samples = samples_by_track(messages[1:])  # after the init segment
        video, audio = samples[VIDEO_TRACK_ID], samples[AUDIO_TRACK_ID]
        assert len(video) > 100
        assert len(audio) > 150
        for track in (video, audio):
            # Every sample's duration is the next one's decode time minus its own.
            gaps = [(a, b) for a, b in itertools.pairwise(track) if a[0] + a[1] != b[0]]
            assert gaps == []
        assert {d for _, d in audio} == {1024}  # AAC frames, at the sample rate
        # The picture spacing settles on 1/30 s (or 1/29.97 s) exactly.
        assert {d for _, d in video[-60:]} == {variant.frame_ticks}

        # LL-HLS: a segment is a GOP, 60 pictures, and its parts add up to it.
        gop = f"{float(60 / variant.fps):.5f}"
        extinf = re.findall(r"#EXTINF:([\d.]+),", playlist)
        assert len(extinf) >= 3
        assert extinf[:-1] == [gop] * (len(extinf) - 1)  # the last one ends with the stream
        blocks = re.split(r"#EXTINF:[\d.]+,\n", playlist)
        for block, duration in zip(blocks, extinf, strict=False):
            parts = [Fraction(p) for p in re.findall(r"#EXT-X-PART:DURATION=([\d.]+)", block)]
            if parts and "EXT-X-PROGRAM-DATE-TIME" in block:  # a segment listed with parts
                assert sum(parts) == Fraction(duration)


# -- VLC joining LL-HLS mid-stream --------------------------------------------------------


def cvlc_command(url: str, seconds: float, home: Path) -> list[str]:
    """VLC 3 playing ``url`` for ``seconds`` with no screen and no sound card. VLC refuses
    to run as root, so as root (CI) it runs as ``nobody``."""
    cvlc = need_tool("cvlc")
    command = [
        cvlc, "--play-and-exit", "--run-time", str(seconds), "--no-video-title-show",
        "-V", "dummy", "-A", "dummy", "-vv", url,
    ]  # fmt: skip
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "setpriv (util-linux) runs VLC as nobody"
        home.chmod(0o777)
        return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    return command


async def test_vlc_joins_llhls_mid_stream_without_dropping_pictures(
    server: StromServer, media_dir: Path, tmp_path: Path
) -> None:
    """Issue 14: VLC 3 joining mid-stream dropped pictures as ~10 s late. Its MP4 demuxer
    reads a track's ``tfdt`` only in the first fragment it gets and sums durations after:
    that fragment must carry every track, and durations must add up to the next ``tfdt``."""
    media = make_media(media_dir / "timeline-vlc.flv", seconds=4.0, size="320x180", gop=30,
                       bitrate="300k")  # fmt: skip
    publisher = await asyncio.create_subprocess_exec(*publish_args(media, server.rtmp_port,
                                                                   loop=True))  # fmt: skip
    try:
        await wait_live(server)
        await asyncio.sleep(7.0)  # 1 s segments: VLC starts a few of them from the end
        home = tmp_path / "vlc-home"
        home.mkdir()
        vlc = await asyncio.create_subprocess_exec(
            *cvlc_command(f"{base(server)}/live/{CHANNEL}/index.m3u8", 6.0, home),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "HOME": str(home)},
        )
        out, _ = await asyncio.wait_for(vlc.communicate(), 30)
    finally:
        publisher.kill()
        await publisher.wait()
    log = out.decode(errors="replace")
    (tmp_path / "vlc.log").write_text(log)

    fetched = [int(n) for n in re.findall(r"Retrieving \S+/seg(\d+)\.m4s", log)]
    assert fetched, "VLC fetched no segment"
    assert fetched[0] > 0, "VLC did not join mid-stream"
    assert len(fetched) >= 4  # it kept playing, segment after segment
    assert "Received first picture" in log
    # From the start of playback until VLC stops the input at --run-time (its teardown
    # makes the last pictures late too):
    start = log.find("Stream buffering done")
    assert start >= 0
    stop = log.find("EOF reached", start)
    playing = log[start : stop if stop >= 0 else None]
    assert "dropping frame" not in playing
    late = [int(ms) for ms in re.findall(r"too late to be displayed \(missing (\d+) ms", playing)]
    # A picture placed on the wrong timeline is seconds late (the bug: ~10 s); a busy test
    # machine may stall VLC for a few frames (CI saw 166, 132, 99, 66, 32 ms: one stall).
    assert all(ms < 500 for ms in late), late
    assert len(late) <= 15, late
