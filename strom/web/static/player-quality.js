// The quality menu and automatic rendition switching of the WebSocket player.
//
// A channel with a quality ladder (docs/ladder.md) has renditions that are channels of
// their own (alice~480p); /live/{channel}/master.m3u8 lists the source and the ones live
// now. The menu offers Auto, Source and each rendition; choosing one reconnects the
// media WebSocket to that channel, which starts with a new init segment.
//
// Auto switches down one rung when playback has trouble that lasts: several stalls in a
// short window, or the buffer below half its target for several seconds. It goes back
// up carefully: only after a long quiet spell, and if the higher rendition stalls soon
// after, it comes back down and waits twice as long before trying again.
//
// When the browser cannot play the source's codec (an HEVC stream in a browser without
// an HEVC decoder: player-codecs.js), the player plays the best rendition it can (the
// ladder's are H.264) and says so in a line over the video; the menu marks the source
// as not playable here, and Auto never goes back up to it.
//
// The state is mirrored to #player[data-quality] (the rendition playing: "Source",
// "480p"...) and [data-quality-mode] ("auto" or the viewer's choice) for tests and CSS.

export const QUALITY = Object.freeze({
  refreshMs: 15000, // how often the renditions are read again (they start with the source)
  tickMs: 500,
  stallWindow: 12, // s: stalls counted over this window...
  stallsDown: 2, // ...this many switch down
  lowBufferShare: 0.5, // the buffer below this share of its target...
  lowBufferFor: 4, // ...for this many seconds switches down
  settle: 4, // s after a switch before its stalls count (the join burst)
  upAfter: 20, // s without trouble before trying one rung up...
  upAfterMax: 160, // ...doubling after each failed try, up to this
  upFailWithin: 15, // s: a stall this soon after going up counts as a failed try
  rescueWait: 15, // s: how long an unplayable source waits for its renditions to start...
  rescuePollMs: 1000, // ...reading the master this often
});

function now() {
  return performance.now() / 1000;
}

// The variants of a master playlist (RFC 8216 4.3.4.2), best first as the server lists them.
export function parseMaster(text, sourceChannel) {
  const lines = text.split(/\r?\n/);
  const variants = [];
  for (let i = 0; i < lines.length - 1; i += 1) {
    if (!lines[i].startsWith("#EXT-X-STREAM-INF:")) continue;
    const attrs = {};
    for (const m of lines[i].slice(18).matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) {
      attrs[m[1]] = m[2].replace(/^"|"$/g, "");
    }
    const uri = lines[i + 1].trim().replace(/\?.*$/, ""); // a private channel's token query
    const found = /^\.\.\/([^/]+)\/index\.m3u8$/.exec(uri);
    const channel = uri === "index.m3u8" ? sourceChannel : found ? decodeURIComponent(found[1]) : null;
    if (!channel) continue;
    const height = Number((attrs.RESOLUTION ?? "").split("x")[1]) || 0;
    variants.push({
      channel,
      name: attrs.NAME || (height ? `${height}p` : channel),
      height,
      bandwidth: Number(attrs.BANDWIDTH) || 0,
      codecs: attrs.CODECS ?? "",
    });
  }
  return variants;
}

import { playableCodecs } from "./player-codecs.js";
import { mediaSourceClass } from "./player-transports.js";

export class QualityControl {
  constructor(player) {
    this.player = player;
    this.root = player.root;
    this.source = player.channel;
    this.sourceWs = player.urls.ws;
    this.masterUrl = player.urls.hls.replace(/index\.m3u8(\?.*)?$/, "master.m3u8");
    this.variants = [];
    this.current = 0; // index in variants (0: the source)
    this.mode = "auto";
    this.live = false; // the player plays a live broadcast (the renditions are read)
    this.stalls = [];
    this.lowSince = null;
    this.switchedAt = now();
    this.quietSince = now();
    this.upWait = QUALITY.upAfter;
    this.wentUpAt = null;
    this.select = this.root.querySelector('[data-role="quality"]');
    this.notice = this.root.querySelector('[data-role="quality-notice"]');
    this.rescuing = false;
  }

  start() {
    this.player.video.addEventListener("waiting", () => this.onStall());
    this.root.addEventListener("strom:state", (ev) => this.onState(ev.detail));
    if (this.select) this.select.addEventListener("change", () => this.choose(this.select.value));
    // Read while something plays: an offline channel has no renditions (its master is a 404).
    setInterval(() => this.live && this.refresh(), QUALITY.refreshMs);
    setInterval(() => this.tick(), QUALITY.tickMs);
    this.mirror();
  }

  usable() {
    return this.root.dataset.transport === "ws"; // the WebSocket player (HLS players switch by themselves)
  }

  async refresh() {
    let text = "";
    try {
      const resp = await fetch(this.masterUrl, { cache: "no-store" });
      if (resp.ok) text = await resp.text();
    } catch {
      return; // the next refresh tries again
    }
    const playing = this.variants[this.current]?.channel ?? this.source;
    const variants = text ? parseMaster(text, this.source) : [];
    // While a rendition plays, the source's master still lists it; offline: keep what we had.
    if (!variants.length) return;
    const MediaSourceClass = mediaSourceClass();
    for (const v of variants) v.playable = !v.codecs || playableCodecs(v.codecs, MediaSourceClass);
    this.variants = variants;
    const index = variants.findIndex((v) => v.channel === playing);
    this.current = index === -1 ? 0 : index;
    this.renderMenu();
  }

  renderMenu() {
    const select = this.select;
    if (!select) return;
    select.hidden = this.variants.length < 2 || !this.usable();
    const options = [
      ["auto", "Auto"],
      ...this.variants.map((v, i) => {
        const label = i === 0 ? "Source" : v.name;
        return [String(i), v.playable ? label : `${label} (cannot play here)`, !v.playable];
      }),
    ];
    const wanted = options.map(([value, label]) => `${value}:${label}`).join("|");
    if (select.dataset.options !== wanted) {
      select.replaceChildren(
        ...options.map(([value, label, disabled]) => {
          const option = document.createElement("option");
          option.value = value;
          option.textContent = label;
          option.disabled = Boolean(disabled);
          return option;
        }),
      );
      select.dataset.options = wanted;
    }
    select.value = this.mode === "auto" ? "auto" : String(this.current);
  }

  mirror() {
    const variant = this.variants[this.current];
    this.root.dataset.quality = this.current === 0 || !variant ? "Source" : variant.name;
    this.root.dataset.qualityMode = this.mode;
  }

  // The viewer's choice: "auto", or a variant's index.
  choose(value) {
    if (value === "auto") {
      this.mode = "auto";
      this.mirror();
      return;
    }
    const index = Number(value);
    if (!this.variants[index]?.playable) return;
    this.mode = this.variants[index].name;
    this.switchTo(index, "chosen");
  }

  switchTo(index, why) {
    const variant = this.variants[index];
    if (!variant || !this.usable()) return;
    const from = this.current;
    this.current = index;
    this.switchedAt = now();
    this.quietSince = now();
    this.stalls = [];
    this.lowSince = null;
    this.wentUpAt = index < from ? now() : null;
    const url = new URL(this.sourceWs);
    if (variant.channel !== this.source) {
      url.pathname = url.pathname.replace(/\/live\/[^/]+\/ws$/, `/live/${encodeURIComponent(variant.channel)}/ws`);
    }
    console.info(`strom: quality ${this.variants[from]?.name ?? "?"} → ${variant.name} (${why})`);
    this.player.urls.ws = url.href;
    this.player.useTransport("ws");
    this.renderMenu();
    this.mirror();
  }

  onStall() {
    const session = this.player.transport?.session;
    if (!session?.started || this.player.video.seeking) return;
    const t = now();
    if (t - this.switchedAt < QUALITY.settle) return;
    this.stalls.push(t);
    this.quietSince = t;
    // Up did not work out: back down, and wait longer before the next try.
    if (this.mode === "auto" && this.wentUpAt !== null && t - this.wentUpAt < QUALITY.upFailWithin) {
      this.upWait = Math.min(this.upWait * 2, QUALITY.upAfterMax);
      this.down("the higher quality stalled");
    }
  }

  onState(state) {
    const live = state === "playing" || state === "starting" || state === "reconnecting";
    if (live && !this.live) this.refresh();
    this.live = live;
    // A rendition ends with its source (or alone, if its ladder stopped); the next
    // broadcast may have none: follow the source again.
    if ((state === "ended" || state === "offline") && this.current !== 0 && this.usable()) {
      this.current = 0;
      this.say("");
      this.player.urls.ws = this.sourceWs;
      this.mirror();
      this.player.useTransport("ws");
    }
    this.renderMenu();
  }

  down(why) {
    const below = this.variants.findIndex((v, i) => i > this.current && v.playable);
    if (below !== -1) this.switchTo(below, why);
  }

  // The browser cannot play the source (`sentence` says why): the best rendition it can
  // play, once the master lists one (renditions start a moment after their source).
  // Resolves to whether one plays; without, the player's error card keeps the sentence.
  async rescue(sentence) {
    if (this.rescuing || !this.usable()) return false;
    this.rescuing = true;
    try {
      const until = now() + QUALITY.rescueWait;
      for (;;) {
        await this.refresh();
        const index = this.variants.findIndex((v, i) => i > 0 && v.playable);
        if (index !== -1 && this.player.state === "error") {
          this.variants[0].playable = false; // the codec the player just refused
          this.say(`${sentence} Playing ${this.variants[index].name} instead.`);
          this.player.setState("connecting");
          this.switchTo(index, "the browser cannot play the source");
          return true;
        }
        if (now() >= until || this.player.state !== "error") return false;
        await new Promise((resolve) => setTimeout(resolve, QUALITY.rescuePollMs));
      }
    } finally {
      this.rescuing = false;
    }
  }

  say(text) {
    if (!this.notice) return;
    this.notice.textContent = text;
    this.notice.hidden = !text;
  }

  tick() {
    if (this.mode !== "auto" || !this.usable() || this.player.state !== "playing") return;
    const t = now();
    this.stalls = this.stalls.filter((s) => t - s < QUALITY.stallWindow);
    if (this.stalls.length >= QUALITY.stallsDown) {
      this.down(`${this.stalls.length} stalls in ${QUALITY.stallWindow} s`);
      return;
    }
    const stats = this.player.stats();
    const target = stats.targetLatency;
    const low = stats.bufferAhead !== null && target && stats.bufferAhead < target * QUALITY.lowBufferShare;
    if (!low || t - this.switchedAt < QUALITY.settle) {
      this.lowSince = null;
    } else {
      this.lowSince ??= t;
      if (t - this.lowSince >= QUALITY.lowBufferFor) {
        this.quietSince = t;
        this.down("the buffer stayed low");
        return;
      }
    }
    const above = this.variants[this.current - 1];
    if (above?.playable && !low && t - this.quietSince >= this.upWait) this.switchTo(this.current - 1, "quiet");
  }
}
