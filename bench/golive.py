"""Going live from the browser, measured: capture → viewer latency and server CPU, per
recording format (the "Go live" page, static/golive.js).

``python -m bench.golive [--seconds 15] [--height 720] [--fps 30] [--mime TYPE ...]``

How: a Strom server runs as a subprocess (``python -m strom serve``) so that its CPU time
in ``/proc/PID/stat`` is its own. Headless Chromium logs in as a streamer and presses
Go live on ``/golive?mime=TYPE``; its camera is replaced (an init script for
``getUserMedia``) by a canvas that draws, every frame, the wall-clock time it was drawn
as 24 black/white cells (milliseconds modulo 2^24) over a moving background, plus a
tone for the microphone. A viewer in another context of the same browser (same clock)
plays ``/live/alice`` with the normal player; on every frame the video presents
(``requestVideoFrameCallback``) it reads the cells back and takes
``presentation time - drawn time``. That is the whole path: canvas capture, the
browser's encoder, the 200 ms recorder timeslice, the upload, the server's demuxing
(and, for VP8, its decoding and H.264 encoding), the hub, the WebSocket to the viewer,
the player's buffer (it aims 0.4 s behind the live edge), decoding and presentation.
It leaves out a real camera's exposure and a real screen's scan-out.

Server CPU is the process's utime+stime over the measuring window, in cores. The
browser runs on the same machine, so the figures are for comparing formats with each
other, not absolute capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright

from bench.sampler import read_stat
from bench.servers import StromProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]  # fmt: skip
USER = "alice"
PASSWORD = "a long enough password"
FORMATS = [
    "video/webm;codecs=h264,opus",
    "video/mp4;codecs=avc1.42E01F,opus",
    "video/webm;codecs=vp9,opus",
    "video/webm;codecs=vp8,opus",
]
BITS = 24
CELL = 24  # pixels per cell at 720p, scaled with the height

# The stand-in camera: a canvas stamped with the time it was drawn, and a tone.
STAMP_CAMERA = """
(() => {
  const BITS = %(bits)d;
  navigator.mediaDevices.getUserMedia = async (c) => {
    const height = (c && c.video && c.video.height && c.video.height.ideal) || 720;
    const fps = (c && c.video && c.video.frameRate && c.video.frameRate.ideal) || 30;
    const width = Math.round(height * 16 / 9 / 2) * 2;
    const cell = Math.round(%(cell)d * height / 720);
    const canvas = document.createElement("canvas");
    canvas.width = width; canvas.height = height;
    const ctx = canvas.getContext("2d");
    let n = 0;
    const draw = () => {
      n += 1;
      const hue = (n * 3) %% 360;
      ctx.fillStyle = `hsl(${hue} 60%% 40%%)`;
      ctx.fillRect(0, 0, width, height);
      ctx.fillStyle = "#ddd";
      ctx.fillRect((n * 7) %% width, height / 2, width / 8, height / 4);
      const stamp = Math.round(performance.timeOrigin + performance.now()) %% (2 ** BITS);
      ctx.fillStyle = "#808080";
      ctx.fillRect(0, 0, cell * (BITS + 2), cell * 3);
      for (let i = 0; i < BITS; i++) {
        ctx.fillStyle = (stamp >> (BITS - 1 - i)) & 1 ? "#fff" : "#000";
        ctx.fillRect(cell * (i + 1), cell, cell, cell);
      }
    };
    draw();
    setInterval(draw, 1000 / fps);
    const stream = canvas.captureStream(fps);
    if (c && c.audio) {
      const audio = new AudioContext();
      const tone = audio.createOscillator();
      const out = audio.createMediaStreamDestination();
      tone.connect(out); tone.start();
      stream.addTrack(out.stream.getAudioTracks()[0]);
    }
    return stream;
  };
})();
"""

# The viewer's side: read the cells of every presented frame.
READ_STAMPS = """
([bits, cell720]) => {
  const video = document.querySelector('#player video');
  window.latencies = [];
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const onFrame = (now, meta) => {
    const w = video.videoWidth, h = video.videoHeight;
    if (w && h) {
      const cell = Math.round(cell720 * h / 720);
      canvas.width = cell * (bits + 2); canvas.height = cell * 3;
      ctx.drawImage(video, 0, 0, canvas.width, canvas.height, 0, 0, canvas.width, canvas.height);
      const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let stamp = 0;
      for (let i = 0; i < bits; i++) {
        const x = Math.round(cell * (i + 1.5)), y = Math.round(cell * 1.5);
        const lum = px[(y * canvas.width + x) * 4];
        stamp = stamp * 2 + (lum > 128 ? 1 : 0);
      }
      const shown = (performance.timeOrigin + meta.expectedDisplayTime) % (2 ** bits);
      let delay = shown - stamp;
      if (delay < 0) delay += 2 ** bits;
      if (delay < 30000) window.latencies.push(delay);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}
"""


def create_user(data_dir: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "strom", "user", "create", USER, "--password-stdin",
         "--data-dir", str(data_dir), "--log-level", "warning"],
        input=PASSWORD.encode(), check=True, capture_output=True,
    )  # fmt: skip


def cpu_seconds(pid: int) -> float:
    stat = read_stat(pid)
    return stat.ticks / os.sysconf("SC_CLK_TCK") if stat else 0.0


async def measure(
    browser: Browser, server: StromProcess, mime: str, seconds: float, height: int, fps: int
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{server.http_port}"
    streamer_ctx = await browser.new_context()
    viewer_ctx = await browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        await streamer_ctx.add_init_script(STAMP_CAMERA % {"bits": BITS, "cell": CELL})
        streamer = await streamer_ctx.new_page()
        await streamer.goto(f"{base}/login?next=/golive")
        await streamer.fill('input[name="username"]', USER)
        await streamer.fill('input[name="password"]', PASSWORD)
        await streamer.click('form[action="/login"] button')
        await streamer.wait_for_url(f"{base}/golive")
        await streamer.goto(f"{base}/golive?mime={mime}")
        await streamer.select_option('select[name="height"]', str(height))
        await streamer.select_option('select[name="fps"]', str(fps))
        await streamer.click('[data-action="go-live"]')
        await streamer.wait_for_function(
            "() => window.stromGoLive.state() === 'live'", timeout=30_000
        )
        viewer = await viewer_ctx.new_page()
        await viewer.goto(f"{base}/live/{USER}")
        await viewer.wait_for_function(
            "() => window.stromPlayer?.state === 'playing'", timeout=30_000
        )
        await asyncio.sleep(3)  # the player settles on its target latency
        await viewer.evaluate(READ_STAMPS, [BITS, CELL])
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        sent0 = await streamer.evaluate("() => window.stromGoLive.bytesSent()")
        await asyncio.sleep(seconds)
        cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
        sent1 = await streamer.evaluate("() => window.stromGoLive.bytesSent()")
        samples: list[float] = await viewer.evaluate("() => window.latencies")
        player_latency = await viewer.evaluate("() => window.stromPlayer.latency()")
        recorder = await streamer.evaluate("() => window.stromGoLive.recorderMime()")
        await streamer.click('[data-action="stop"]')
        samples.sort()
        return {
            "mime": mime,
            "recorder": recorder,
            "samples": len(samples),
            "latency_p50_ms": round(statistics.median(samples)) if samples else None,
            "latency_p90_ms": round(samples[int(len(samples) * 0.9)]) if samples else None,
            "latency_min_ms": round(samples[0]) if samples else None,
            "player_latency_s": player_latency,
            "server_cores": round((cpu1 - cpu0) / (t1 - t0), 3),
            "upload_kbps": round((sent1 - sent0) * 8 / (t1 - t0) / 1000),
        }
    finally:
        await streamer_ctx.close()
        await viewer_ctx.close()


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.golive", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--height", type=int, default=720, choices=[360, 480, 720, 1080])
    parser.add_argument("--fps", type=int, default=30, choices=[15, 30, 60])
    parser.add_argument("--mime", action="append", help="recording format (repeatable)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="strom-golive-") as tmp:
        workdir = Path(tmp)
        create_user(workdir / "data")
        server = StromProcess(workdir, keys={})
        await server.start()
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                try:
                    for mime in args.mime or FORMATS:
                        result = await measure(
                            browser, server, mime, args.seconds, args.height, args.fps
                        )
                        print(result, flush=True)
                        await asyncio.sleep(2)
                finally:
                    await browser.close()
        finally:
            await server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
