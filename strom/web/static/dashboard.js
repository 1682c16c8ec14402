// The streamer's dashboard: save "Stream info" (PATCH /api/v1/me/channel with the CSRF
// header), poll stream health (/api/v1/me/health: also why an administrator stopped the
// broadcast, shown at once) and run the Copy buttons.
// Text from the server goes in with textContent only.

import { fetchJson, Poller } from "./api.js";
import { formatCount, formatDuration } from "./live-clock.js";

// More than this between keyframes and viewers wait long to start: say so.
const KEYFRAME_WARN_SECONDS = 4;
const COPIED_MS = 2000;

// --- Stream info -----------------------------------------------------------------------

class StreamInfoForm {
  constructor(form, url) {
    this.form = form;
    this.url = url;
    this.status = form.querySelector('[data-role="save-status"]');
    this.button = form.querySelector('button[type="submit"]');
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.save();
    });
    for (const counter of form.querySelectorAll("[data-counter-for]")) {
      const field = form.querySelector(`#${counter.dataset.counterFor}`);
      if (!field) continue;
      const update = () => {
        counter.textContent = `${field.value.length} / ${field.maxLength}`;
      };
      field.addEventListener("input", update);
      update();
    }
    form.addEventListener("input", () => this.say("", ""));
  }

  say(text, kind) {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  async save() {
    const fields = this.form.elements;
    const body = {
      title: fields.title.value.trim(),
      description: fields.description.value,
      category: fields.category.value, // "" is "no category" (null would mean "unchanged")
    };
    if (!fields.record_broadcasts.disabled) body.record_broadcasts = fields.record_broadcasts.checked;
    if (fields.quality_ladder && !fields.quality_ladder.disabled) body.quality_ladder = fields.quality_ladder.checked;
    this.button.disabled = true;
    this.say("Saving…", "busy");
    try {
      await fetchJson(this.url, { method: "PATCH", body });
      this.say("Saved", "ok");
    } catch (err) {
      this.say(err.name === "ApiError" ? err.message : "Could not reach the server", "error");
    } finally {
      this.button.disabled = false;
    }
  }
}

// --- Stream health ---------------------------------------------------------------------

function number(value, digits = 0) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : null;
}

// ISO/IEC 14496-15 profile_idc (the first byte after "avc1.") → the name OBS shows.
const H264_PROFILES = { 66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High 10", 122: "High 4:2:2", 244: "High 4:4:4" };
// ISO/IEC 14496-3 audio object types in "mp4a.40.N".
const AAC_TYPES = { 2: "AAC-LC", 5: "HE-AAC", 29: "HE-AAC v2" };
const CODEC_NAMES = { opus: "Opus", vp8: "VP8", vp09: "VP9", av01: "AV1", hvc1: "H.265", hev1: "H.265", "mp4a.6b": "MP3", "mp4a.69": "MP3" };

/** "avc1.64001f / mp4a.40.2" → "H.264 High 3.1 / AAC-LC"; unknown strings pass through. */
export function describeCodecs(text) {
  return text
    .split(/[/,]/)
    .map((part) => {
      const codec = part.trim();
      const lower = codec.toLowerCase();
      const avc = /^avc[13]\.([0-9a-f]{2})[0-9a-f]{2}([0-9a-f]{2})$/.exec(lower);
      if (avc) {
        const profile = H264_PROFILES[parseInt(avc[1], 16)] ?? `profile ${parseInt(avc[1], 16)}`;
        return `H.264 ${profile} ${(parseInt(avc[2], 16) / 10).toFixed(1)}`;
      }
      const aac = /^mp4a\.40\.(\d+)$/.exec(lower);
      if (aac) return AAC_TYPES[aac[1]] ?? `AAC (type ${aac[1]})`;
      return CODEC_NAMES[lower] ?? CODEC_NAMES[lower.split(".")[0]] ?? codec;
    })
    .join(" / ");
}

function healthValues(h) {
  const fps = number(h.fps, Number.isInteger(h.fps) ? 0 : 1);
  const keyframe = number(h.keyframe_interval, 1);
  const uptime = number(h.uptime);
  return {
    codec: typeof h.codec === "string" && h.codec ? describeCodecs(h.codec) : null,
    resolution: h.width && h.height ? `${h.width}×${h.height}` : null,
    // "19.9 of 30 fps" when the encoder said what it aims for (the server warns if far off)
    fps: fps && (typeof h.chosen_fps === "number" ? `${fps} of ${h.chosen_fps} fps` : `${fps} fps`),
    bitrate: number(h.bitrate_kbps) && `${formatCount(h.bitrate_kbps)} kb/s`,
    keyframe_interval: keyframe && `${keyframe} s`,
    uptime: uptime && formatDuration(h.uptime),
    viewers: typeof h.viewers === "number" ? formatCount(h.viewers) : null,
  };
}

class HealthPanel {
  constructor(panel, url, intervalMs, stopped, refused) {
    this.panel = panel;
    this.url = url;
    this.stopped = stopped; // the "Stopped by an administrator: ..." alert
    this.refused = refused; // "Your last publish was refused: ..." (an unsupported codec...)
    this.warnings = panel.querySelector('[data-role="health-warnings"]');
    this.poller = new Poller(() => this.refresh(), intervalMs);
  }

  async refresh() {
    let health;
    try {
      health = await fetchJson(this.url);
    } catch (err) {
      if (err.name === "ApiError" && (err.status === 401 || err.status === 403)) {
        this.show({ live: false, warnings: ["You are logged out: log in again to see your stream's health."] });
        return;
      }
      throw err;
    }
    if (health && typeof health === "object") this.show(health);
  }

  show(health) {
    const live = health.live === true;
    this.panel.dataset.live = String(live);
    const values = live ? healthValues(health) : {};
    for (const el of this.panel.querySelectorAll("[data-health]")) {
      const text = values[el.dataset.health] ?? "–";
      if (el.textContent !== text) el.textContent = text;
    }
    const codec = this.panel.querySelector('[data-health="codec"]');
    if (codec) codec.title = live && typeof health.codec === "string" ? health.codec : "";
    const keyframe = this.panel.querySelector('[data-health="keyframe_interval"]');
    if (keyframe) {
      const bad = live && health.keyframe_interval > KEYFRAME_WARN_SECONDS;
      keyframe.closest("div").classList.toggle("health-bad", bad);
    }
    this.showWarnings(Array.isArray(health.warnings) ? health.warnings : []);
    if (this.refused && "refused" in health) {
      const r = health.refused;
      const text = r && typeof r.reason === "string"
        ? `Your encoder was refused at ${new Date(r.at * 1000).toLocaleTimeString()}: ${r.reason}`
        : "";
      if (this.refused.textContent !== text) this.refused.textContent = text;
      this.refused.hidden = !text;
    }
    if (this.stopped && (live || "stopped" in health)) {
      const text = !live && typeof health.stopped === "string" ? health.stopped : "";
      if (this.stopped.textContent !== text) this.stopped.textContent = text;
      this.stopped.hidden = !text;
    }
  }

  showWarnings(warnings) {
    const texts = warnings.filter((w) => typeof w === "string" && w);
    const current = [...this.warnings.children].map((li) => li.textContent);
    if (texts.length === current.length && texts.every((t, i) => t === current[i])) return;
    this.warnings.replaceChildren(
      ...texts.map((text) => {
        const li = document.createElement("li");
        li.textContent = text;
        return li;
      }),
    );
    this.warnings.hidden = texts.length === 0;
  }
}

// --- Copy buttons ----------------------------------------------------------------------

function selectText(el) {
  if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) {
    el.focus();
    el.select();
    return;
  }
  const range = document.createRange();
  range.selectNodeContents(el);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

export async function copy(button) {
  const target = document.getElementById(button.dataset.copy);
  if (!target) return;
  const text = "value" in target ? target.value : target.textContent;
  button.dataset.label ??= button.textContent;
  const label = button.dataset.label;
  let copied = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      copied = true;
    }
  } catch {
    copied = false; // permission refused: fall back to selecting the text
  }
  selectText(target);
  if (!copied) {
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
  }
  button.textContent = copied ? "Copied!" : "Press Ctrl+C";
  button.dataset.copied = String(copied);
  setTimeout(() => {
    button.textContent = label;
    delete button.dataset.copied;
  }, COPIED_MS);
}

// --- boot ------------------------------------------------------------------------------

function boot() {
  const root = document.querySelector("[data-dashboard]");
  if (!root) return;
  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-copy]");
    if (button) copy(button);
  });
  const form = root.querySelector('[data-role="stream-info-form"]');
  if (form) new StreamInfoForm(form, root.dataset.channelApi);
  const panel = root.querySelector('[data-role="health"]');
  const stopped = root.querySelector('[data-role="stopped-by-admin"]');
  const refused = root.querySelector('[data-role="publish-refused"]');
  const health = panel
    ? new HealthPanel(panel, root.dataset.healthApi, root.dataset.healthMs, stopped, refused)
    : null;
  health?.poller.now();
  window.stromPage = Object.freeze({
    refresh: () => health?.poller.now(),
  });
}

boot();
