// The "Go live" page: pick a source (camera, screen, or the screen with the camera in a
// corner), a microphone and a quality, see the preview, press Go live. The capture and
// the formats are in golive-media.js, the recorder and the upload in golive-upload.js.
//
// Defaults work with one click: camera + default microphone, 720p, 30 fps, the best
// format the browser records (?mime=<type> in the URL forces one, for tests). The
// choices are remembered in localStorage. The page's state is mirrored to
// [data-golive][data-state] for the CSS ("idle", "previewing", "connecting", "starting",
// "live", "reconnecting") and to window.stromGoLive for tests and debugging.

import { fetchJson } from "./api.js";
import {
  AUDIO_BITS_PER_SECOND,
  Capture,
  CaptureError,
  chooseFormat,
  LevelMeter,
  MIN_VIDEO_BITS_PER_SECOND,
  recorderAvailable,
  supportedFormats,
  videoBitrate,
} from "./golive-media.js";
import { Broadcast } from "./golive-upload.js";
import { formatCount, formatDuration } from "./live-clock.js";

const STORAGE_KEY = "strom.golive";
const TICK_MS = 1000;
const STATE_LABELS = {
  idle: "Offline",
  previewing: "Offline · preview only",
  connecting: "Connecting…",
  starting: "Starting…",
  live: "You are live",
  reconnecting: "Reconnecting…",
};
const NO_FORMAT =
  "This browser cannot record video in a format Strom takes. Use a recent Chrome, Edge, Firefox or Safari, or stream with OBS (the settings are on your dashboard).";

class GoLivePage {
  constructor(root) {
    this.root = root;
    this.form = root.querySelector('[data-role="settings"]');
    this.preview = root.querySelector('[data-role="preview"]');
    this.meter = new LevelMeter(root.querySelector('[data-role="mic-level"]'));
    this.state = "idle";
    this.capture = null;
    this.captureKey = "";
    this.broadcast = null;
    this.format = null;
    this.liveSince = 0;
    this.rate = { at: 0, bytes: 0, bps: 0 };
    this.busy = false;
    this.attempts = 0;
    const page = new URL(window.location.href);
    const ws = new URL(root.dataset.ingestPath, page);
    ws.protocol = page.protocol === "https:" ? "wss:" : "ws:";
    this.ingestUrl = ws.href;
    this.forcedMime = page.searchParams.get("mime") || "";
    this.grace = Number(root.dataset.grace) || 0;
    this.title = this.form.elements.title.value;
  }

  start() {
    this.fillFormats();
    this.restoreChoices();
    this.bind();
    this.showSettings();
    this.setState("idle");
    if (!recorderAvailable() || !supportedFormats().length) this.error(NO_FORMAT);
    this.refreshDevices();
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.refreshDevices());
    setInterval(() => this.tick(), TICK_MS);
    window.stromGoLive = Object.freeze({
      state: () => this.state,
      format: () => this.format?.mime ?? null,
      recorderMime: () => this.broadcast?.recorderMime ?? null,
      bytesSent: () => this.broadcast?.bytesSent ?? 0,
      connections: () => this.broadcast?.connections ?? 0,
      status: () => this.broadcast?.status ?? null,
      capture: () => this.capture?.stream ?? null,
    });
  }

  // --- controls -------------------------------------------------------------------

  bind() {
    this.root.querySelector('[data-action="go-live"]').addEventListener("click", () => this.goLive());
    this.root.querySelector('[data-action="stop"]').addEventListener("click", () => this.stop());
    this.root.querySelector('[data-action="preview"]').addEventListener("click", () => this.togglePreview());
    this.form.addEventListener("submit", (ev) => ev.preventDefault());
    this.form.addEventListener("change", (ev) => {
      this.saveChoices();
      this.showSettings();
      // A new source while previewing: show it (the next Go live uses it anyway).
      if (ev.target.name !== "mime" && ev.target.name !== "title" && this.state === "previewing") {
        this.openCapture().catch(() => {});
      }
    });
    const title = this.form.elements.title;
    const counter = this.form.querySelector('[data-counter-for="golive-title"]');
    const count = () => {
      counter.textContent = `${title.value.length} / ${title.maxLength}`;
    };
    title.addEventListener("input", count);
    count();
    // Leaving the page ends the broadcast: ask first.
    window.addEventListener("beforeunload", (ev) => {
      if (this.broadcast) ev.preventDefault();
    });
    window.addEventListener("pagehide", () => this.broadcast?.stop());
  }

  choices() {
    const f = this.form.elements;
    return {
      mode: f.mode.value || "camera",
      camera: f.camera.value,
      mic: f.mic.value,
      height: Number(f.height.value) || 720,
      fps: Number(f.fps.value) || 30,
      quality: f.quality.value || "standard",
      mime: this.forcedMime || f.mime.value,
    };
  }

  saveChoices() {
    const { mode, camera, mic, height, fps, quality } = this.choices();
    const mime = this.form.elements.mime.value;
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify({ mode, camera, mic, height, fps, quality, mime }));
    } catch {
      // private mode: nothing remembered
    }
  }

  restoreChoices() {
    let saved = null;
    try {
      saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    } catch {
      saved = null;
    }
    if (!saved || typeof saved !== "object") return;
    const f = this.form.elements;
    for (const name of ["mode", "height", "fps", "quality", "mime"]) {
      if (saved[name] === undefined) continue;
      const value = String(saved[name]);
      if (name === "mode") {
        for (const radio of f.mode) radio.checked = radio.value === value;
      } else if ([...f[name].options].some((o) => o.value === value)) {
        f[name].value = value;
      }
    }
    // Devices are known only after the browser lists them: refreshDevices() selects these.
    this.wanted = { camera: String(saved.camera ?? ""), mic: String(saved.mic ?? "") };
    if (this.wanted.mic === "none") f.mic.value = "none";
  }

  fillFormats() {
    const select = this.form.elements.mime;
    for (const format of supportedFormats()) {
      const option = new Option(`${format.label}${format.server === "converted" ? " — converted by the server" : ""}`, format.mime);
      select.append(option);
    }
    if (this.forcedMime) {
      if (![...select.options].some((o) => o.value === this.forcedMime)) select.append(new Option(this.forcedMime, this.forcedMime));
      select.value = this.forcedMime;
    }
  }

  showSettings() {
    const { mode, height, fps, quality } = this.choices();
    for (const el of this.form.querySelectorAll("[data-needs]")) {
      const need = el.dataset.needs;
      el.hidden = need === "camera" ? mode === "screen" : mode === "camera";
    }
    const kbps = (videoBitrate(height, fps, quality) + AUDIO_BITS_PER_SECOND) / 1000;
    this.text('[data-role="bitrate-hint"]', `About ${formatCount(kbps)} kb/s: your upload needs at least ${formatCount(kbps * 1.5)} kb/s.`);
  }

  async refreshDevices() {
    const devices = navigator.mediaDevices;
    if (!devices?.enumerateDevices) return;
    let list = [];
    try {
      list = await devices.enumerateDevices();
    } catch {
      return;
    }
    const f = this.form.elements;
    this.fillDevices(f.camera, list.filter((d) => d.kind === "videoinput"), "Default camera", "Camera", this.wanted?.camera);
    this.fillDevices(f.mic, list.filter((d) => d.kind === "audioinput"), "Default microphone", "Microphone", this.wanted?.mic);
  }

  // Labels are empty until the page has had permission once; then the real names show.
  fillDevices(select, devices, defaultLabel, noun, wanted) {
    const current = select.value || wanted || "";
    const keep = [...select.options].filter((o) => o.value === "" || o.value === "none");
    const options = devices
      .filter((d) => d.deviceId && d.deviceId !== "default" && d.deviceId !== "communications")
      .map((d, i) => new Option(d.label || `${noun} ${i + 1}`, d.deviceId));
    keep[0].textContent = defaultLabel;
    select.replaceChildren(keep[0], ...options, ...keep.slice(1));
    if ([...select.options].some((o) => o.value === current)) select.value = current;
  }

  // --- capture --------------------------------------------------------------------

  async openCapture() {
    const c = this.choices();
    const key = JSON.stringify([c.mode, c.camera, c.mic, c.height, c.fps]);
    if (this.capture && this.captureKey === key) return this.capture;
    this.closeCapture();
    this.clearMessages();
    const capture = await Capture.open(c);
    this.capture = capture;
    this.captureKey = key;
    capture.onended = (what) => this.captureEnded(what);
    this.preview.srcObject = new MediaStream(capture.stream.getVideoTracks());
    this.preview.play().catch(() => {});
    this.root.dataset.preview = "on";
    this.meter.watch(capture.stream);
    if (capture.warnings.length) this.warn(capture.warnings.join(" "));
    this.refreshDevices(); // permission given: the devices have names now
    return capture;
  }

  closeCapture() {
    this.meter.stop();
    this.capture?.stop();
    this.capture = null;
    this.captureKey = "";
    this.preview.srcObject = null;
    delete this.root.dataset.preview;
  }

  captureEnded(what) {
    const message = what === "screen" ? "You stopped sharing the screen." : "The camera stopped (unplugged?).";
    if (this.broadcast) {
      this.endBroadcast();
      this.warn(`${message} The broadcast has ended.`);
    } else {
      this.warn(message);
    }
    this.closeCapture();
    this.setState("idle");
  }

  async togglePreview() {
    if (this.broadcast || this.busy) return;
    if (this.capture) {
      this.closeCapture();
      this.setState("idle");
      return;
    }
    this.busy = true;
    try {
      await this.openCapture();
      this.setState("previewing");
    } catch (err) {
      this.error(err instanceof CaptureError ? err.message : `Could not start the preview: ${err.message}`);
    } finally {
      this.busy = false;
    }
  }

  // --- going live -----------------------------------------------------------------

  async goLive() {
    if (this.broadcast || this.busy) return;
    const c = this.choices();
    const format = chooseFormat(c.mime);
    if (!format) {
      this.error(c.mime ? `This browser cannot record ${c.mime}. Choose another video format under Advanced.` : NO_FORMAT);
      return;
    }
    this.busy = true;
    this.clearMessages();
    this.setState("connecting");
    const attempt = ++this.attempts;
    try {
      await this.openCapture();
    } catch (err) {
      this.busy = false;
      if (attempt !== this.attempts) return; // stopped meanwhile
      this.setState("idle");
      this.error(err instanceof CaptureError ? err.message : `Could not start: ${err.message}`);
      return;
    }
    this.busy = false;
    if (attempt !== this.attempts) {
      this.closeCapture(); // Stop was pressed while the browser asked: camera off again
      return;
    }
    this.saveTitle();
    this.format = format;
    const converted = format.server === "converted" ? " → H.264 on the server" : "";
    this.text('[data-stat="format"]', `${format.label}${converted}`);
    const broadcast = new Broadcast({
      url: this.ingestUrl,
      stream: this.capture.stream,
      mime: format.mime,
      videoBitsPerSecond: videoBitrate(c.height, c.fps, c.quality),
      audioBitsPerSecond: AUDIO_BITS_PER_SECOND,
      minVideoBitsPerSecond: MIN_VIDEO_BITS_PER_SECOND,
      fps: c.fps,
    });
    this.broadcast = broadcast;
    this.rate = { at: performance.now(), bytes: 0, bps: 0 };
    broadcast.addEventListener("state", (ev) => this.onBroadcastState(broadcast, ev.detail));
    broadcast.addEventListener("status", () => this.tick());
    broadcast.addEventListener("slow", (ev) => {
      if (ev.detail.slow) this.warn(ev.detail.reason, "slow");
      else this.clearWarning("slow");
    });
    broadcast.start();
  }

  onBroadcastState(broadcast, { state, reason }) {
    if (broadcast !== this.broadcast) return;
    if (state === "stopped" || state === "failed") {
      this.broadcast = null;
      this.liveSince = 0;
      if (state === "failed") this.error(reason);
      this.closeCapture();
      this.setState("idle");
      return;
    }
    if (state === "live" && !this.liveSince) this.liveSince = performance.now();
    if (state === "reconnecting") {
      const grace = this.grace ? ` Your viewers wait up to ${this.grace} s for you.` : "";
      this.warn(`${reason || "Connection lost. Reconnecting…"}${grace}`, "reconnect");
    } else if (state === "live") {
      this.clearWarning("reconnect");
    }
    this.setState(state);
  }

  stop() {
    this.attempts += 1; // a Go live still waiting for the devices gives up
    this.endBroadcast();
    this.closeCapture();
    this.setState("idle");
  }

  endBroadcast() {
    const broadcast = this.broadcast;
    this.broadcast = null;
    this.liveSince = 0;
    broadcast?.stop();
  }

  async saveTitle() {
    const title = this.form.elements.title.value.trim();
    if (title === this.title.trim()) return;
    try {
      await fetchJson(this.root.dataset.channelApi, { method: "PATCH", body: { title } });
      this.title = title;
    } catch (err) {
      this.warn(`The title was not saved: ${err.message}`);
    }
  }

  // --- what the page shows --------------------------------------------------------

  setState(state) {
    this.state = state;
    this.root.dataset.state = state;
    const onAir = ["connecting", "starting", "live", "reconnecting"].includes(state);
    for (const fieldset of this.root.querySelectorAll('[data-role="lockable"]')) fieldset.disabled = onAir;
    this.text('[data-role="status-line"]', STATE_LABELS[state] ?? state);
    this.text('[data-action="preview"]', state === "previewing" ? "Stop preview" : "Preview");
    const badge = document.createElement("span");
    badge.className = `badge ${state === "live" ? "badge-live" : "badge-offline"}`;
    badge.textContent = state === "live" ? "LIVE" : onAir ? STATE_LABELS[state].replace("…", "").toUpperCase() : "OFFLINE";
    this.root.querySelector('[data-stat="state"]').replaceChildren(badge);
    if (!onAir) {
      for (const stat of ["elapsed", "bitrate", "viewers"]) this.text(`[data-stat="${stat}"]`, "–");
      this.text('[data-role="onair-time"]', "0:00:00");
    }
    this.tick();
  }

  tick() {
    const broadcast = this.broadcast;
    if (!broadcast) return;
    const now = performance.now();
    const sent = broadcast.bytesSent;
    if (now - this.rate.at >= 900) {
      this.rate.bps = Math.max(0, ((sent - this.rate.bytes) * 8 * 1000) / (now - this.rate.at));
      this.rate = { at: now, bytes: sent, bps: this.rate.bps };
    }
    const status = broadcast.status;
    const uptime = typeof status?.uptime === "number" ? status.uptime : this.liveSince ? (now - this.liveSince) / 1000 : null;
    if (uptime !== null) {
      this.text('[data-stat="elapsed"]', formatDuration(uptime));
      this.text('[data-role="onair-time"]', formatDuration(uptime));
    }
    this.text('[data-stat="bitrate"]', `${formatCount(this.rate.bps / 1000)} kb/s`);
    this.root.querySelector('[data-stat="bitrate"]').title = `${formatCount(sent / 1024)} KiB sent`;
    if (typeof status?.viewers === "number") this.text('[data-stat="viewers"]', formatCount(status.viewers));
  }

  text(selector, value) {
    const el = this.root.querySelector(selector);
    if (el && el.textContent !== value) el.textContent = value;
  }

  error(message) {
    const el = this.root.querySelector('[data-role="error"]');
    el.textContent = message;
    el.hidden = !message;
  }

  warn(message, kind = "") {
    const el = this.root.querySelector('[data-role="warning"]');
    el.textContent = message;
    el.hidden = !message;
    el.dataset.kind = kind;
  }

  /** Take the warning down if it is of this kind (a reconnect that succeeded...). */
  clearWarning(kind) {
    if (this.root.querySelector('[data-role="warning"]').dataset.kind === kind) this.warn("");
  }

  clearMessages() {
    this.error("");
    this.warn("");
  }
}

function boot() {
  const root = document.querySelector("[data-golive]");
  if (!root) return;
  new GoLivePage(root).start();
}

boot();
