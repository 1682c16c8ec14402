// The channel page's clips: the Clip button under the player cuts the last 30-60 s of
// what plays (the live broadcast from its recording, the live broadcast rewound, or a
// past broadcast up to where it is watched: vod.js says which recording) through
// POST /api/v1/channels/{name}/clips, and the channel's clips are listed from
// GET on the same address (which also gives the lengths this site allows).

import { fetchJson } from "./api.js";

const NOT_RECORDED = "Clips need the recording on";

function formatLength(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

class ClipBar {
  constructor(page, bar) {
    this.page = page;
    this.bar = bar;
    this.api = bar.dataset.clipsApi;
    this.button = bar.querySelector('[data-action="clip"]');
    this.length = bar.querySelector('[data-role="clip-length"]');
    this.status = bar.querySelector('[data-role="clip-status"]');
    this.list = page.querySelector('[data-role="clips-list"]');
    this.empty = page.querySelector('[data-role="clips-empty"]');
    this.busy = false;
  }

  start() {
    this.button?.addEventListener("click", () => this.clip());
    this.refresh();
  }

  /** What the clip ends at: the recording watched and where, or the live edge. */
  where() {
    const video = document.querySelector("#player video");
    const recording = window.stromVod?.current ?? null;
    if (!recording || !video) return {};
    return { recording, end: Math.max(0, video.currentTime || 0) };
  }

  async clip() {
    if (this.busy) return;
    this.busy = true;
    this.button.disabled = true;
    this.say("Cutting the clip…");
    try {
      const body = { duration: Number(this.length?.value) || 30, ...this.where() };
      const clip = await fetchJson(this.api, { method: "POST", body });
      this.say("Your clip is ready: ");
      const link = document.createElement("a");
      link.href = clip.url;
      link.target = "_blank";
      link.rel = "noopener";
      link.dataset.role = "clip-link";
      link.textContent = new URL(clip.url, window.location.href).href;
      this.status.append(link);
      this.show([clip], true);
    } catch (err) {
      if (err.status === 409 && err.message.startsWith(NOT_RECORDED)) {
        this.button.textContent = NOT_RECORDED;
        this.say("");
        return; // stays disabled: this broadcast has no recording to cut from
      }
      this.say(`No clip: ${err.message}`);
    } finally {
      this.busy = false;
      if (this.button.textContent !== NOT_RECORDED) this.button.disabled = false;
    }
  }

  say(text) {
    if (this.status) this.status.textContent = text;
  }

  async refresh() {
    try {
      const data = await fetchJson(this.api);
      this.lengths(data);
      this.show(data?.clips ?? [], false);
    } catch (err) {
      console.warn("strom: could not list the clips:", err);
    }
  }

  /** The length chooser offers what the site allows (30, 45, 60 s within its bounds). */
  lengths(data) {
    if (!this.length || !data?.max_seconds) return;
    const low = data.min_seconds;
    const high = data.max_seconds;
    const choices = [...new Set([low, 30, 45, 60, high].filter((s) => s >= low && s <= high))];
    choices.sort((a, b) => a - b);
    const wanted = data.default_seconds;
    this.length.replaceChildren(
      ...choices.map((s) => new Option(`${s} s`, String(s), s === wanted, s === wanted)),
    );
  }

  show(clips, first) {
    if (!this.list) return;
    const items = clips.map((clip) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = clip.url;
      const title = document.createElement("span");
      title.className = "vod-title";
      title.textContent = clip.title || "Clip";
      const facts = document.createElement("span");
      facts.className = "vod-facts";
      const by = clip.creator ? ` · by ${clip.creator}` : "";
      facts.textContent = `${formatLength(clip.duration)}${by} · ${clip.views} views`;
      link.append(title, facts);
      item.append(link);
      return item;
    });
    if (first) this.list.prepend(...items);
    else this.list.replaceChildren(...items);
    if (this.empty) this.empty.hidden = this.list.children.length > 0;
  }
}

function boot() {
  const page = document.querySelector("[data-channel-page]");
  const bar = page?.querySelector("[data-clip-bar]");
  if (!page || !bar) return;
  new ClipBar(page, bar).start();
}

boot();
