// Go live, the media half: which recording format to use, how many bits per second, and
// the capture (camera, screen, or the screen with the camera over it in a corner).
//
// Formats, best first. What viewers can play as sent comes first: H.264 goes into the
// hub's CMAF as it is, Opus too; VP9 is carried as it is (fine in Chrome, Firefox and
// Edge); VP8 cannot go into MP4, so the server converts it to H.264 (Firefox offers only
// VP8). Matroska/WebM H.264 comes before MP4 H.264: Chromium's MP4 recorder writes one
// fragment per keyframe interval whatever the timeslice, so every chunk would wait a
// second or two; its WebM recorder honours the timeslice (~200 ms).

export const FORMATS = [
  { mime: "video/webm;codecs=h264,opus", label: "H.264 + Opus (WebM)", server: "as sent" },
  { mime: "video/mp4;codecs=avc1.42E01F,opus", label: "H.264 + Opus (MP4)", server: "as sent" },
  { mime: "video/mp4;codecs=avc1.42E01F,mp4a.40.2", label: "H.264 + AAC (MP4)", server: "as sent" },
  { mime: "video/mp4", label: "MP4 (the browser's choice)", server: "as sent" },
  { mime: "video/webm;codecs=vp9,opus", label: "VP9 + Opus (WebM)", server: "as sent" },
  { mime: "video/webm;codecs=vp8,opus", label: "VP8 + Opus (WebM)", server: "converted" },
  { mime: "video/webm", label: "WebM (the browser's choice)", server: "converted" },
];

// Offered under "Advanced" only: too heavy to encode live on most computers.
const EXTRA_FORMATS = [
  { mime: "video/webm;codecs=av1,opus", label: "AV1 + Opus (WebM)", server: "as sent" },
];

export function recorderAvailable() {
  return typeof window.MediaRecorder === "function";
}

function supported(mime) {
  try {
    return MediaRecorder.isTypeSupported(mime);
  } catch {
    return false;
  }
}

/** The formats this browser can record, best first (AV1 last). */
export function supportedFormats() {
  if (!recorderAvailable()) return [];
  return [...FORMATS, ...EXTRA_FORMATS].filter((f) => supported(f.mime));
}

/**
 * The format to record: `forced` (a MIME type from the page's select or ?mime=) when the
 * browser supports it, else the best of FORMATS. Null when there is none.
 */
export function chooseFormat(forced) {
  if (!recorderAvailable()) return null;
  if (forced) {
    if (!supported(forced)) return null;
    const known = [...FORMATS, ...EXTRA_FORMATS].find((f) => f.mime === forced);
    return known ?? { mime: forced, label: forced, server: "unknown" };
  }
  return FORMATS.find((f) => supported(f.mime)) ?? null;
}

// kb/s for "standard" quality at 30 fps, by picture height (close to the usual
// recommendations for H.264 live streams); the frame rate and quality scale it.
const BASE_KBPS = { 360: 800, 480: 1200, 720: 2500, 1080: 4500 };
const FPS_FACTOR = { 15: 0.65, 30: 1, 60: 1.5 };
const QUALITY_FACTOR = { low: 0.6, standard: 1, high: 1.6 };
export const AUDIO_BITS_PER_SECOND = 128_000;
export const MIN_VIDEO_BITS_PER_SECOND = 150_000;

/** Video bits per second for a picture height, a frame rate and a quality name. */
export function videoBitrate(height, fps, quality) {
  const base = BASE_KBPS[height] ?? BASE_KBPS[720];
  const kbps = base * (FPS_FACTOR[fps] ?? 1) * (QUALITY_FACTOR[quality] ?? 1);
  return Math.round(kbps / 50) * 50 * 1000;
}

export function widthFor(height) {
  return Math.round((height * 16) / 9 / 2) * 2;
}

// --- errors the browser gives, in words a streamer can act on -------------------------

/** A sentence for a getUserMedia/getDisplayMedia failure. `what`: "camera", "screen", "microphone". */
export function describeCaptureError(err, what) {
  const name = err?.name ?? "";
  const device = what === "screen" ? "screen sharing" : `the ${what}`;
  if (name === "NotAllowedError" || name === "PermissionDeniedError" || name === "SecurityError") {
    return what === "screen"
      ? "Screen sharing was cancelled or blocked. Press Go live again and pick a screen, window or tab to share."
      : `Your browser blocked ${device}. Allow it (the camera icon in the address bar), then press Go live again.`;
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
    return what === "screen"
      ? "There is no screen to share here."
      : `No ${what} was found. Plug one in, choose another, or pick "Screen".`;
  }
  if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
    return `Your ${what} is busy or failed to start: close other programs that use it (video calls, OBS) and try again.`;
  }
  if (name === "TypeError" && what === "screen") {
    return "This browser cannot share the screen. Choose Camera, or use a desktop browser.";
  }
  return `Could not start ${device}: ${err?.message || name || "unknown error"}.`;
}

export class CaptureError extends Error {
  constructor(message, reason = "") {
    super(message);
    this.name = "CaptureError";
    this.reason = reason; // the browser's error name: NotAllowedError, NotFoundError...
  }
}

async function grab(kind, constraints) {
  const devices = navigator.mediaDevices;
  if (!devices || (kind === "screen" && typeof devices.getDisplayMedia !== "function")) {
    throw new CaptureError(
      window.isSecureContext
        ? describeCaptureError({ name: "TypeError" }, kind)
        : "Going live from the browser needs a secure (https) connection to this site.",
      "TypeError",
    );
  }
  try {
    if (kind === "screen") return await devices.getDisplayMedia(constraints);
    return await devices.getUserMedia(constraints);
  } catch (err) {
    // A camera that cannot do the size asked for: take what it can do.
    const video = constraints.video;
    if (err?.name === "OverconstrainedError" && video && (video.width || video.height)) {
      return grab(kind, { ...constraints, video: video.deviceId ? { deviceId: video.deviceId } : true });
    }
    throw new CaptureError(describeCaptureError(err, kind), err?.name ?? "");
  }
}

// --- the compositor: screen with the camera in a corner -------------------------------

// A timer in a worker keeps ticking at the frame rate when this tab is in the background
// (the streamer is looking at what they share), where requestAnimationFrame stops and
// the page's own timers are slowed to once a second.
const TICKER_SOURCE =
  "let t=0;onmessage=(e)=>{clearInterval(t);if(e.data>0)t=setInterval(()=>postMessage(0),e.data);};";

function playingVideo(stream) {
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  video.play().catch(() => {});
  return video;
}

class Compositor {
  constructor(screen, camera, width, height, fps) {
    this.canvas = document.createElement("canvas");
    this.canvas.width = width;
    this.canvas.height = height;
    this.ctx = this.canvas.getContext("2d", { alpha: false });
    this.screen = playingVideo(screen);
    this.camera = camera ? playingVideo(camera) : null;
    this.stream = this.canvas.captureStream(fps);
    const url = URL.createObjectURL(new Blob([TICKER_SOURCE], { type: "text/javascript" }));
    this.ticker = new Worker(url);
    URL.revokeObjectURL(url);
    this.ticker.onmessage = () => this.draw();
    this.ticker.postMessage(Math.round(1000 / fps));
    this.draw();
  }

  draw() {
    const { ctx, canvas } = this;
    const W = canvas.width;
    const H = canvas.height;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, W, H);
    const s = this.screen;
    if (s.videoWidth) {
      // The whole screen, letterboxed: nothing of it is cut off.
      const scale = Math.min(W / s.videoWidth, H / s.videoHeight);
      const w = s.videoWidth * scale;
      const h = s.videoHeight * scale;
      ctx.drawImage(s, (W - w) / 2, (H - h) / 2, w, h);
    }
    const c = this.camera;
    if (c && c.videoWidth) {
      // The camera in the bottom-right corner, a quarter of the width, cropped to 16:9.
      const w = Math.round(W / 4);
      const h = Math.round((w * 9) / 16);
      const margin = Math.round(W / 64);
      const x = W - w - margin;
      const y = H - h - margin;
      const srcAspect = c.videoWidth / c.videoHeight;
      let sw = c.videoWidth;
      let sh = c.videoHeight;
      if (srcAspect > 16 / 9) sw = sh * (16 / 9);
      else sh = sw / (16 / 9);
      ctx.fillStyle = "rgba(255,255,255,0.85)";
      ctx.fillRect(x - 2, y - 2, w + 4, h + 4);
      ctx.drawImage(c, (c.videoWidth - sw) / 2, (c.videoHeight - sh) / 2, sw, sh, x, y, w, h);
    }
  }

  stop() {
    this.ticker.postMessage(0);
    this.ticker.terminate();
    for (const track of this.stream.getTracks()) track.stop();
    this.screen.srcObject = null;
    if (this.camera) this.camera.srcObject = null;
  }
}

// --- audio: one track for the recorder (MediaRecorder records one audio track) -------

function mixAudio(streams) {
  const context = new AudioContext();
  const out = context.createMediaStreamDestination();
  for (const stream of streams) context.createMediaStreamSource(stream).connect(out);
  return { context, track: out.stream.getAudioTracks()[0] };
}

// --- the capture ------------------------------------------------------------------------

/**
 * What is being captured: `stream` (one video track, at most one audio track) is what
 * gets recorded and previewed. `onended(what)` is called once if the browser ends it
 * (the "Stop sharing" button, a camera unplugged).
 */
export class Capture {
  constructor() {
    this.sources = [];
    this.compositor = null;
    this.audioContext = null;
    this.stream = null;
    this.screenTrack = null;
    this.warnings = []; // what went wrong but did not stop us ("no microphone")
    this.onended = null;
  }

  /**
   * Open the devices. `mode`: "camera", "screen" or "pip"; `camera`/`mic`: device ids
   * ("" for the default, mic "none" for no sound); `height`, `fps`: what to aim for.
   */
  static async open({ mode, camera, mic, height, fps }) {
    const capture = new Capture();
    try {
      await capture.#open({ mode, camera, mic, height, fps });
    } catch (err) {
      capture.stop();
      throw err;
    }
    return capture;
  }

  async #open({ mode, camera, mic, height, fps }) {
    const width = widthFor(height);
    const micWanted = mic !== "none";
    const micConstraints = micWanted ? (mic ? { deviceId: { exact: mic } } : true) : false;
    const cameraId = camera ? { deviceId: { exact: camera } } : {};
    const audio = [];
    let video = null;
    if (mode === "camera") {
      const size = { width: { ideal: width }, height: { ideal: height }, frameRate: { ideal: fps } };
      const cam = await this.#grabWithSound("camera", { ...cameraId, ...size }, micConstraints);
      video = cam.getVideoTracks()[0];
      audio.push(...cam.getAudioTracks().map((t) => new MediaStream([t])));
    } else {
      const screen = await grab("screen", {
        video: { width: { max: width }, height: { max: height }, frameRate: { ideal: fps, max: fps } },
        audio: true, // the tab's or the system's sound, where the browser offers it
        selfBrowserSurface: "exclude",
        surfaceSwitching: "include",
        systemAudio: "include",
      });
      this.sources.push(screen);
      this.screenTrack = screen.getVideoTracks()[0];
      if (screen.getAudioTracks().length) audio.push(new MediaStream(screen.getAudioTracks()));
      let cam = null;
      if (mode === "pip") {
        const small = { ...cameraId, width: { ideal: 640 }, height: { ideal: 360 } };
        try {
          cam = await this.#grabWithSound("camera", small, micConstraints);
        } catch (err) {
          if (!(err instanceof CaptureError)) throw err;
          this.warnings.push(`${err.message} Streaming the screen without the camera.`);
        }
      } else if (micWanted) {
        try {
          cam = await grab("microphone", { audio: micConstraints });
          this.sources.push(cam);
        } catch (err) {
          if (!(err instanceof CaptureError)) throw err;
          this.warnings.push(`${err.message} Streaming without the microphone.`);
        }
      }
      if (cam) audio.push(...cam.getAudioTracks().map((t) => new MediaStream([t])));
      if (mode === "pip") {
        const camVideo = cam?.getVideoTracks().length ? new MediaStream(cam.getVideoTracks()) : null;
        this.compositor = new Compositor(new MediaStream([this.screenTrack]), camVideo, width, height, fps);
        video = this.compositor.stream.getVideoTracks()[0];
      } else {
        video = this.screenTrack;
      }
    }
    let audioTrack = null;
    if (audio.length === 1) audioTrack = audio[0].getAudioTracks()[0];
    else if (audio.length > 1) {
      const mixed = mixAudio(audio);
      this.audioContext = mixed.context;
      audioTrack = mixed.track;
    }
    this.stream = new MediaStream(audioTrack ? [video, audioTrack] : [video]);
    // The browser ends a capture by itself: "Stop sharing", a camera unplugged. Only the
    // main picture ends the broadcast (the corner camera going away leaves the screen).
    const main = this.screenTrack ?? video;
    main.addEventListener("ended", () => this.#ended(main));
  }

  // Camera and microphone in one request (one permission prompt). No microphone, or a
  // microphone that is refused or busy, is not a reason to stay offline: go on without.
  async #grabWithSound(kind, video, audio) {
    let stream;
    try {
      stream = await grab(kind, { video, audio });
    } catch (err) {
      if (!audio || !(err instanceof CaptureError)) throw err;
      stream = await grab(kind, { video, audio: false });
      const sound = await grab("microphone", { audio }).catch((e) => e);
      if (sound instanceof MediaStream) {
        for (const track of sound.getAudioTracks()) stream.addTrack(track);
      } else {
        this.warnings.push(`${sound.message} Streaming without sound.`);
      }
    }
    this.sources.push(stream);
    return stream;
  }

  #ended(track) {
    if (!this.onended || !this.stream) return;
    const done = this.onended;
    this.onended = null;
    done(track === this.screenTrack ? "screen" : "camera");
  }

  stop() {
    this.onended = null;
    this.compositor?.stop();
    this.compositor = null;
    this.audioContext?.close().catch(() => {});
    this.audioContext = null;
    for (const source of this.sources) for (const track of source.getTracks()) track.stop();
    this.sources = [];
    this.stream = null;
  }
}

// --- microphone level, so a streamer sees that the sound is on ----------------------------

export class LevelMeter {
  constructor(meter) {
    this.meter = meter;
    this.context = null;
    this.timer = 0;
  }

  watch(stream) {
    this.stop();
    const track = stream?.getAudioTracks()[0];
    if (!track) return;
    this.context = new AudioContext();
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 512;
    this.context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    this.meter.hidden = false;
    this.timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let peak = 0;
      for (const v of samples) peak = Math.max(peak, Math.abs(v));
      this.meter.value = Math.min(1, peak * 1.5);
    }, 100);
  }

  stop() {
    clearInterval(this.timer);
    this.context?.close().catch(() => {});
    this.context = null;
    this.meter.hidden = true;
    this.meter.value = 0;
  }
}
