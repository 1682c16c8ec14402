"""Record what a browser's MediaRecorder uploads when a streamer goes live from a tab.

Usage, from the repository root::

    .venv/bin/python tests/data/make_mediarecorder_captures.py

Debian's Chromium (``/usr/bin/chromium``, driven by Playwright) records ~1.5 s of a
320x240 canvas animation (opaque, like a camera) and a 440 Hz tone with ``MediaRecorder``
and a 250 ms timeslice, the way a go-live page streams it, and the concatenated chunks are
written to ``tests/data/mediarecorder_<video>_<audio>.<webm|mp4>``:

* WebM (Matroska): VP8, VP9, AV1, and H.264 (``video/webm;codecs=h264``, which Chromium
  writes as Matroska with an Annex B byte stream and no CodecPrivate), each with Opus
* MP4 (Chromium >= 126): H.264, VP9 and AV1, each with Opus (this build has no AAC
  encoder)

Recorded with Chromium 156 (Debian 12). The demuxer tests read them as golden captures.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from playwright.async_api import async_playwright

DATA = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
SECONDS = 1.5

CAPTURES = {
    "mediarecorder_vp8_opus.webm": "video/webm;codecs=vp8,opus",
    "mediarecorder_vp9_opus.webm": "video/webm;codecs=vp9,opus",
    "mediarecorder_av1_opus.webm": "video/webm;codecs=av1,opus",
    "mediarecorder_h264_opus.webm": "video/webm;codecs=h264,opus",
    "mediarecorder_h264_opus.mp4": "video/mp4;codecs=avc1,opus",
    "mediarecorder_vp9_opus.mp4": "video/mp4;codecs=vp9,opus",
    "mediarecorder_av1_opus.mp4": "video/mp4;codecs=av01,opus",
}

RECORD = r"""async ([mime, seconds]) => {
  const canvas = document.createElement('canvas');
  canvas.width = 320; canvas.height = 240;
  document.body.appendChild(canvas);
  const g = canvas.getContext('2d', {alpha: false});
  let n = 0, running = true;
  const draw = () => {
    g.fillStyle = `hsl(${(n * 7) % 360} 70% 50%)`; g.fillRect(0, 0, 320, 240);
    g.fillStyle = '#fff'; g.font = '48px sans-serif'; g.fillText(String(n++), 20 + (n % 200), 130);
    if (running) requestAnimationFrame(draw);
  };
  draw();
  const audio = new AudioContext({sampleRate: 48000});
  const tone = audio.createOscillator();
  const sink = audio.createMediaStreamDestination();
  tone.connect(sink); tone.start();
  const stream = new MediaStream([...canvas.captureStream(30).getVideoTracks(),
                                  ...sink.stream.getAudioTracks()]);
  const recorder = new MediaRecorder(stream, {mimeType: mime, videoBitsPerSecond: 120000,
                                              audioBitsPerSecond: 32000});
  const parts = [];
  recorder.ondataavailable = e => parts.push(e.data);
  const stopped = new Promise(resolve => recorder.onstop = resolve);
  recorder.start(250);
  await new Promise(resolve => setTimeout(resolve, seconds * 1000));
  recorder.stop(); await stopped; running = false; await audio.close();
  const bytes = new Uint8Array(await new Blob(parts).arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 8192)
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return [recorder.mimeType, btoa(text)];
}"""


async def main() -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless=new", "--no-sandbox", "--disable-gpu",
                  "--autoplay-policy=no-user-gesture-required"],
        )  # fmt: skip
        try:
            page = await browser.new_page()
            await page.set_content("<!doctype html><body></body>")
            for name, mime in CAPTURES.items():
                got, data = await page.evaluate(RECORD, [mime, SECONDS])
                (DATA / name).write_bytes(base64.b64decode(data))
                print(f"{name}: {got}, {len(base64.b64decode(data))} bytes")
        finally:
            await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
