"""Test media for the benchmark: 720p30 H.264 (2 s GOP, ~2.5 Mbit/s) + AAC in FLV, made
once by ffmpeg and cached, and read back as a list of FLV tags for the publisher."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from strom.media.flv import FlvReader, FlvTag

CACHE_DIR = Path(__file__).parent / ".cache"

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18


@dataclass(frozen=True)
class MediaSpec:
    """What to encode. ``bframes=0`` gets ``-tune zerolatency`` (what low-latency
    streamers use); with B-frames it is x264's default tuning, like OBS's default."""

    seconds: int = 60
    size: str = "1280x720"
    fps: int = 30
    gop_seconds: float = 2.0
    video_kbps: int = 2500
    audio_kbps: int = 128
    bframes: int = 0

    @property
    def name(self) -> str:
        tune = f"bf{self.bframes}" if self.bframes else "zl"
        gop = f"g{self.gop_seconds:g}"
        return f"{self.size}p{self.fps}-{self.video_kbps}k-{gop}-{tune}-{self.seconds}s"

    def ffmpeg_args(self, ffmpeg: str, out: Path) -> list[str]:
        gop = round(self.fps * self.gop_seconds)
        args = [
            ffmpeg, "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={self.size}:rate={self.fps}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", str(self.seconds),
            "-c:v", "libx264", "-profile:v", "high", "-preset", "veryfast",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-b:v", f"{self.video_kbps}k", "-maxrate", f"{self.video_kbps}k",
            "-bufsize", f"{self.video_kbps * 2}k", "-pix_fmt", "yuv420p",
        ]  # fmt: skip
        if self.bframes:
            args += ["-bf", str(self.bframes)]
        else:
            args += ["-tune", "zerolatency", "-bf", "0"]
        args += ["-c:a", "aac", "-b:a", f"{self.audio_kbps}k", "-ar", "44100", "-ac", "2"]
        args += ["-f", "flv", str(out)]
        return args


class MediaError(Exception):
    """Test media cannot be made (no ffmpeg) or read."""


def ensure_media(spec: MediaSpec, cache_dir: Path = CACHE_DIR) -> Path:
    """The FLV file for ``spec``, encoded on first use (tens of seconds) and cached."""
    path = cache_dir / f"{spec.name}.flv"
    if path.exists() and path.stat().st_size > 0:
        return path
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise MediaError("ffmpeg is not installed: it is needed once to make the test media")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.flv")
    subprocess.run(spec.ffmpeg_args(ffmpeg, tmp), check=True, timeout=600)
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class MediaFile:
    """An FLV file in memory: its tags (script data first, if any), and its length."""

    tags: tuple[FlvTag, ...]
    #: milliseconds from the first to one frame past the last tag: the loop period
    duration_ms: int
    video_frames: int

    @property
    def bitrate_kbps(self) -> float:
        size = sum(len(t.payload) for t in self.tags)
        return size * 8 / max(self.duration_ms, 1)


def load_flv(path: Path) -> MediaFile:
    """The file's tags without AVC end-of-sequence tags (a live encoder sends none until
    it stops, and the file loops). The loop period is one frame past the last frame of
    whichever track ends later, so timestamps never repeat across loops."""
    reader = FlvReader(max_tag_size=16 << 20)
    tags = [t for t in reader.feed(path.read_bytes()) if not _is_end_of_sequence(t)]
    media = [t for t in tags if t.tag_type in (TAG_AUDIO, TAG_VIDEO)]
    if not media:
        raise MediaError(f"{path}: no audio or video tags")
    start = min(t.timestamp for t in media)
    end = start
    video_frames = 0
    for kind in (TAG_VIDEO, TAG_AUDIO):
        stamps = [t.timestamp for t in media if t.tag_type == kind and not _is_config(t)]
        if kind == TAG_VIDEO:
            video_frames = len(stamps)
        if stamps:
            step = stamps[-1] - stamps[-2] if len(stamps) >= 2 else 33
            end = max(end, stamps[-1] + max(step, 1))
    return MediaFile(tuple(tags), end - start, video_frames)


def _is_end_of_sequence(tag: FlvTag) -> bool:
    """E.4.3.1 AVCPacketType 2: AVC end of sequence."""
    p = tag.payload
    return tag.tag_type == TAG_VIDEO and len(p) >= 2 and (p[0] & 0x0F) == 7 and p[1] == 2


def _is_config(tag: FlvTag) -> bool:
    """An AVC or AAC sequence header (E.4.3.1 AVCPacketType 0, E.4.2.2 AACPacketType 0)."""
    p = tag.payload
    if tag.tag_type == TAG_VIDEO:
        return len(p) >= 2 and (p[0] & 0x0F) == 7 and p[1] == 0
    if tag.tag_type == TAG_AUDIO:
        return len(p) >= 2 and (p[0] >> 4) == 10 and p[1] == 0
    return False


is_config = _is_config
