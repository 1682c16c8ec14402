"""Make the small container captures that seed the fuzzers where no client capture exists.

Usage, from the repository root::

    .venv/bin/python tests/data/fuzz/make_fuzz_seeds.py

The RTMP sessions (``tests/data/*.rtmp``) and the browsers' WebM/MP4 uploads
(``tests/data/mediarecorder_*``) are golden captures already; what they lack is an FLV
stream, an MPEG-TS stream, Matroska with H.264 B-frames and AAC, ffmpeg's fragmented MP4
with AAC, and a JPEG picture. Real ffmpeg makes each one, kept tiny (96x64, 10 fps, 0.8 s,
mono 22.05 kHz) so that a mutated copy is quick to feed. Made with ffmpeg 5.1 (Debian 12).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent

SOURCES = [
    "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050",
    "-t", "0.8",
]  # fmt: skip
H264 = ["-c:v", "libx264", "-profile:v", "high", "-preset", "veryfast", "-bf", "2", "-g", "4",
        "-b:v", "60k", "-pix_fmt", "yuv420p"]  # fmt: skip
AAC = ["-c:a", "aac", "-b:a", "24k", "-ac", "1"]
OUTPUTS = {
    "ffmpeg_h264_aac.flv": ["-f", "flv"],
    "ffmpeg_h264_aac.ts": ["-f", "mpegts"],
    "ffmpeg_h264_aac.mkv": ["-f", "matroska", "-live", "1"],
    "ffmpeg_h264_aac.mp4": ["-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof"],
}


def main() -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg is needed (scripts/bootstrap test installs it)")
    base = [ffmpeg, "-v", "error", "-y", "-bitexact"]
    for name, output in OUTPUTS.items():
        subprocess.run([*base, *SOURCES, *H264, *AAC, *output, str(HERE / name)], check=True)
        print(name, (HERE / name).stat().st_size, "bytes")
    jpeg = HERE / "ffmpeg_48x32.jpg"
    subprocess.run(
        [*base, "-f", "lavfi", "-i", "testsrc2=size=48x32", "-frames:v", "1", "-q:v", "8",
         str(jpeg)],
        check=True,
    )  # fmt: skip
    print(jpeg.name, jpeg.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
