"""Shared by the container demuxer tests: media made by the system ffmpeg, what ffprobe
says about it, feeding a demuxer in different splits, and muxing the result back into
fMP4 for ffmpeg to decode."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from strom.media import opus
from strom.media.containers import Demuxer
from strom.media.fmp4 import FragmentMuxer
from strom.media.model import Codec, Frame, Track, TrackKind
from tests.helpers import need_tool

DATA = Path(__file__).resolve().parents[1] / "data"
SECONDS = 2
VIDEO_SOURCE = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"]
AUDIO_SOURCE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
#: Encoder options: small and fast, a keyframe a second (the tests want several GOPs).
ENCODERS: dict[str, list[str]] = {
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "30",
             "-b:v", "300k", "-pix_fmt", "yuv420p"],
    "vp8": ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "30",
            "-b:v", "300k"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "30",
            "-b:v", "300k"],
    "av1": ["-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-g", "30",
            "-b:v", "300k"],
    "aac": ["-c:a", "aac", "-b:a", "64k"],
    "opus": ["-c:a", "libopus", "-b:a", "48k"],
    "mp2": ["-c:a", "mp2", "-b:a", "64k"],
}  # fmt: skip
_ENCODER_NAMES = {
    "h264": "libx264",
    "vp8": "libvpx",
    "vp9": "libvpx-vp9",
    "av1": "libaom-av1",
    "aac": "aac",
    "opus": "libopus",
    "mp2": "mp2",
}
_encoders: set[str] = set()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need_tool(args[0]), *args[1:]], check=True, capture_output=True, text=True, timeout=120
    )


def have_encoder(codec: str) -> bool:
    if not _encoders:
        out = run("ffmpeg", "-hide_banner", "-encoders").stdout
        for line in out.splitlines():  # " V....D libx264   libx264 H.264 ..."
            fields = line.split()
            if line[:1] == " " and len(fields) > 1:
                _encoders.add(fields[1])
    return _ENCODER_NAMES[codec] in _encoders


def encode(path: Path, video: str | None, audio: str | None, *output: str) -> Path:
    """``SECONDS`` of test pattern and tone through ffmpeg's encoders into ``path``;
    skips the test when the system ffmpeg lacks an encoder (e.g. no libaom)."""
    for codec in (video, audio):
        if codec is not None and not have_encoder(codec):
            pytest.skip(f"the system ffmpeg has no {_ENCODER_NAMES[codec]} encoder")
    cmd = ["ffmpeg", "-v", "error", "-y"]
    if video:
        cmd += VIDEO_SOURCE
    if audio:
        cmd += AUDIO_SOURCE
    cmd += ["-t", str(SECONDS)]
    cmd += ENCODERS[video] if video else ["-vn"]
    cmd += ENCODERS[audio] if audio else ["-an"]
    run(*cmd, *output, str(path))
    return path


@dataclass(frozen=True)
class Packet:
    """One packet as ffprobe sees it; times in its stream's time base (None: unknown)."""

    pts: int | None
    dts: int | None
    keyframe: bool
    size: int


@dataclass(frozen=True)
class Probed:
    codec: str
    time_base: Fraction
    packets: list[Packet]
    stream: dict[str, object]

    def ms(self, value: int) -> Fraction:
        return value * self.time_base * 1000


def probe(path: Path) -> dict[TrackKind, Probed]:
    """ffprobe's streams and packets of ``path``, by kind."""
    out = run(
        "ffprobe", "-v", "error", "-of", "json", "-show_streams",
        "-show_entries", "packet=stream_index,pts,dts,flags,size", str(path),
    ).stdout  # fmt: skip
    info = json.loads(out)
    kinds = {"video": TrackKind.VIDEO, "audio": TrackKind.AUDIO}
    result: dict[TrackKind, Probed] = {}
    by_index: dict[int, TrackKind] = {}
    for s in info["streams"]:
        kind = kinds.get(s["codec_type"])
        if kind is not None and kind not in result:
            num, den = (int(v) for v in s["time_base"].split("/"))
            result[kind] = Probed(s["codec_name"], Fraction(num, den), [], s)
            by_index[s["index"]] = kind
    for p in info["packets"]:
        kind = by_index.get(p["stream_index"])
        if kind is None:
            continue
        result[kind].packets.append(
            Packet(
                int(p["pts"]) if "pts" in p else None,
                int(p["dts"]) if "dts" in p else None,
                "K" in p["flags"],
                int(p["size"]),
            )
        )
    return result


def feed(demuxer: Demuxer, data: bytes, split: str) -> list[Track | Frame]:
    """Everything a fresh ``demuxer`` returns for ``data`` fed whole, a byte at a time, or
    in random pieces (seeded), and at the end (``flush()``, where there is one)."""
    out: list[Track | Frame] = []
    if split == "whole":
        out += demuxer.feed(data)
    elif split == "bytes":
        for i in range(len(data)):
            out += demuxer.feed(data[i : i + 1])
    else:
        rng = random.Random(split)
        pos = 0
        while pos < len(data):
            step = rng.choice((1, 2, 3, 7, 100, 188, 1000, 4096, 65536))
            out += demuxer.feed(data[pos : pos + step])
            pos += step
    flush = getattr(demuxer, "flush", None)
    if flush is not None:
        out += flush()
    return out


SPLITS = ["whole", "bytes", "random-1", "random-2"]


def tracks_of(events: Sequence[Track | Frame]) -> dict[TrackKind, Track]:
    """The last track announced of each kind."""
    return {e.kind: e for e in events if isinstance(e, Track)}


def frames_of(events: Sequence[Track | Frame], track: Track) -> list[Frame]:
    return [e for e in events if isinstance(e, Frame) and e.track_id == track.id]


def ms(value: int, track: Track) -> Fraction:
    return Fraction(value * 1000, track.timescale)


def mux(events: Sequence[Track | Frame], out: Path) -> Path:
    """The demuxed stream as Strom's hub muxes it: one fMP4, init segment + chunks."""
    tracks = list(tracks_of(events).values())
    muxer = FragmentMuxer(tracks)
    chunks = [muxer.add_frame(e) for e in events if isinstance(e, Frame)]
    out.write_bytes(muxer.init_segment() + b"".join(chunks))
    return out


def decoded_counts(events: Sequence[Track | Frame]) -> dict[str, int]:
    """How many frames a decoder outputs for each track: all of them, but Opus frames
    that lie wholly inside the pre-skip decode to nothing (Chromium's MP4 recordings
    declare 80 ms of pre-skip)."""
    counts = {}
    for kind, track in tracks_of(events).items():
        frames = frames_of(events, track)
        skipped = 0
        if track.codec is Codec.OPUS:
            pre_skip = opus.parse_dops(track.config).pre_skip
            for frame in frames:
                pre_skip -= opus.packet_samples(frame.data)
                if pre_skip < 0:
                    break
                skipped += 1
        counts[kind.value] = len(frames) - skipped
    return counts


def decode(path: Path) -> tuple[str, dict[str, int]]:
    """ffmpeg's complaints decoding ``path`` (empty: none) and frames decoded per kind."""
    # Passthrough: a browser's jittery frame times must not collide in ffmpeg's 1/fps
    # output time base (a complaint about ffmpeg's null output, not about the file).
    errors = run(
        "ffmpeg", "-v", "error", "-i", str(path), "-fps_mode", "passthrough",
        "-enc_time_base", "-1", "-f", "null", "-",
    ).stderr  # fmt: skip
    out = run(
        "ffprobe", "-v", "error", "-count_frames", "-of", "json",
        "-show_entries", "stream=codec_type,nb_read_frames", str(path),
    ).stdout  # fmt: skip
    counts = {s["codec_type"]: int(s["nb_read_frames"]) for s in json.loads(out)["streams"]}
    return errors, counts
