// Past broadcasts on the channel page: plays a recording (/vod/{channel}/{id}/index.m3u8)
// in the page's player (player.js lets go of the video: window.stromPlayer.suspend()),
// through the vendored hls.js or the browser's own HLS (Safari), with a seek bar,
// play/pause, speed and "Back to live" while the channel is live. /{username}?vod={id}
// opens a recording directly. When the live ends while we watch (player state "ended"),
// the ended card offers the newest recording and switches to it after a few seconds.
// DVR: while the channel is live and recorded, "Rewind" (or ←) plays the recording so
// far (a sliding playlist of the last --dvr-window seconds) from REWIND_S behind its
// edge, with the same seek bar; "Back to live" returns to the low-latency player. While
// live, the bar shows that seek bar too (at the live edge): dragging it back rewinds.
// vod-list.js says under the player what plays, and keeps the list the server's text.

import { canPlayNativeHls, loadScript, mediaSourceClass } from "./player-transports.js";
import { fetchJson } from "./api.js";
import { VodLabel, refreshList, scrollToPlayer } from "./vod-list.js";

const AUTO_SWITCH_S = 5; // the ended card's countdown before the recording starts
const RECORDING_WAIT_MS = 1000; // between asks for the just-ended broadcast's recording
const RECORDING_TRIES = 8;
const REWIND_S = 30; // where "Rewind" starts, behind the recording's edge
const SKIP_S = 10; // ← and → in the recording
const DVR_LOOK_MS = 5000; // between asks for the live broadcast's recording
const DVR_EDGE_S = 3; // a live seek bar dragged back less than this stays live

function clock(seconds) {
  const total = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

class VodPlayer {
  constructor(page, list, live) {
    this.page = page;
    this.list = list;
    this.live = live; // window.stromPlayer
    this.root = live.root;
    this.video = live.video;
    this.channel = page.dataset.username;
    this.hls = null;
    this.current = null; // the recording id playing
    this.countdown = 0;
    this.bar = this.root.querySelector(".vod-controls");
    this.seek = this.bar.querySelector('[data-vod="seek"]');
    this.speed = this.bar.querySelector('[data-vod="speed"]');
    this.seeking = false;
    this.rewindButton = this.root.querySelector('[data-action="rewind"]');
    this.liveRecording = null; // the recording of the broadcast on air, if any
    this.dvr = false; // playing the live broadcast's recording
    this.lookingSince = 0;
    this.liveRecordingAt = 0; // when liveRecording.duration was read (ms)
    this.label = new VodLabel(page, list, this.root);
    // Who we are to the DVR's playlist: a rewound viewer still counts as a viewer.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    this.viewerId = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  start() {
    this.list.addEventListener("click", (ev) => {
      const link = ev.target.closest("a[data-vod-id]");
      if (!link || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
      ev.preventDefault();
      this.open(link.dataset.vodId, link.dataset.playlist, true);
      scrollToPlayer(this.root);
    });
    this.label.onClose(() => this.backToLive());
    this.bindControls();
    this.root.addEventListener("strom:state", (ev) => this.onState(ev.detail));
    const offer = this.root.querySelector('[data-action="watch-recording"]');
    if (offer) offer.addEventListener("click", () => this.openNewest());
    window.addEventListener("popstate", () => this.fromUrl(false));
    this.fromUrl(false);
    setInterval(() => {
      this.showLiveButton();
      this.showLiveSeek();
    }, 1000);
    this.rewindButton?.addEventListener("click", () => this.rewind());
    this.lookForLiveRecording();
    setInterval(() => this.lookForLiveRecording(), DVR_LOOK_MS);
  }

  // --- DVR -----------------------------------------------------------------------

  async lookForLiveRecording() {
    if (this.page.dataset.live !== "true") {
      this.liveRecording = null;
    } else if (!this.liveRecording || !this.dvr) {
      try {
        const data = await fetchJson(this.list.dataset.recordingsApi);
        this.liveRecording =
          (data?.recordings ?? []).find((r) => r.status === "recording" && r.duration > 0) ?? null;
        this.liveRecordingAt = Date.now();
      } catch (err) {
        console.warn("strom: could not list the recordings:", err);
      }
    }
    if (this.rewindButton) this.rewindButton.hidden = !this.liveRecording;
    this.showLiveSeek();
  }

  // The live player's seek bar: the DVR window, its thumb at the live edge.
  liveEdge() {
    const rec = this.liveRecording;
    return rec ? Number(rec.duration) + (Date.now() - this.liveRecordingAt) / 1000 : 0;
  }

  showLiveSeek() {
    const on = Boolean(this.liveRecording) && this.live.state === "playing";
    this.root.dataset.dvrBar = on ? "true" : "false";
    if (!on || this.seeking) return;
    const edge = this.liveEdge();
    this.seek.max = String(edge);
    this.seek.value = String(edge);
    this.bar.querySelector('[data-role="vod-time"]').textContent = "LIVE";
  }

  rewind(seconds = REWIND_S) {
    const rec = this.liveRecording;
    if (!rec) return;
    this.open(rec.id, rec.playlist_url, false, { behind: seconds });
  }

  fromUrl(push) {
    const id = new URL(window.location.href).searchParams.get("vod");
    if (id && !this.label.link(id)) {
      this.checkExists(id);
    }
    if (id) this.open(id, null, push);
    else if (this.current) this.backToLive(false);
  }

  // A ?vod= that is not in the page's list: one the API knows (still recording, or older
  // than the list) plays; one it does not know says so.
  async checkExists(id) {
    try {
      const data = await fetchJson(this.list.dataset.recordingsApi);
      const known = (data?.recordings ?? []).some((r) => String(r.id) === id);
      if (!known && this.current === id) this.label.missing();
    } catch (err) {
      console.warn("strom: could not list the recordings:", err);
    }
  }

  playlistUrl(id) {
    // A private channel's media token (data-media-query on the player) goes along.
    const query = document.querySelector("#player")?.dataset.mediaQuery;
    const url = `/vod/${encodeURIComponent(this.channel)}/${encodeURIComponent(id)}/index.m3u8`;
    return query ? `${url}?${query}` : url;
  }

  async open(id, playlist, push, dvr = null) {
    this.cancelOffer();
    if (push) {
      const url = new URL(window.location.href);
      url.searchParams.set("vod", id);
      history.pushState({ vod: id }, "", url);
    }
    this.destroy();
    this.live.suspend();
    this.current = id;
    this.dvr = Boolean(dvr);
    this.root.dataset.dvr = this.dvr ? "true" : "false";
    this.markCurrent();
    this.label.show(id, this.dvr);
    const src = new URL(playlist || this.playlistUrl(id), window.location.href);
    if (dvr) src.searchParams.set("viewer", this.viewerId);
    this.video.playbackRate = Number(this.speed.value) || 1;
    try {
      if (mediaSourceClass()) {
        if (!window.Hls) await loadScript(this.root.dataset.hlsScript);
        if (this.current !== id) return;
        if (window.Hls.isSupported()) {
          // startPosition 0: a recording still growing (an EVENT playlist) starts at its
          // beginning too, not at its live edge; a rewind starts `behind` its edge.
          const where = dvr
            ? { startPosition: -1, liveSyncDuration: dvr.behind }
            : { startPosition: 0 };
          this.hls = new window.Hls({ ...where, enableWorker: true });
          this.hls.on(window.Hls.Events.ERROR, (_e, data) => {
            if (!data.fatal) return;
            console.warn("strom: recording playback failed:", data.details);
            if (data.response?.code === 404 && this.current === id) this.label.missing();
          });
          this.hls.loadSource(src.href);
          this.hls.attachMedia(this.video);
          this.play();
          return;
        }
      }
      if (canPlayNativeHls(this.video)) {
        this.video.addEventListener("error", () => this.current === id && this.label.missing(), {
          once: true,
        });
        this.video.src = src.href;
        this.play();
        return;
      }
      throw new Error("this browser cannot play HLS");
    } catch (err) {
      console.warn("strom: cannot play the recording:", err);
    }
  }

  play() {
    const attempt = this.video.play();
    if (attempt) attempt.catch((err) => err.name !== "AbortError" && console.warn("strom:", err));
  }

  destroy() {
    if (this.hls) this.hls.destroy();
    this.hls = null;
  }

  backToLive(push = true) {
    this.destroy();
    this.current = null;
    this.dvr = false;
    this.root.dataset.dvr = "false";
    this.markCurrent();
    this.label.hide();
    if (push) {
      const url = new URL(window.location.href);
      url.searchParams.delete("vod");
      history.pushState({}, "", url);
    }
    this.live.resume();
  }

  // The recording of the live that just ended is not in the list the page came with:
  // the list is drawn again by the server (its one text of dates and peak viewers).
  async addToList() {
    try {
      await refreshList(this.list);
    } catch (err) {
      console.warn("strom: could not refresh the past broadcasts:", err);
    }
  }

  markCurrent() {
    for (const link of this.list.querySelectorAll("a[data-vod-id]")) {
      if (link.dataset.vodId === this.current) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
  }

  // --- controls ------------------------------------------------------------------

  bindControls() {
    const video = this.video;
    const active = () => this.live.state === "vod";
    this.bar.querySelector('[data-vod="play"]').addEventListener("click", () => {
      if (video.paused) this.play();
      else video.pause();
    });
    this.bar.querySelector('[data-vod="live"]').addEventListener("click", () => this.backToLive());
    this.speed.addEventListener("change", () => {
      video.playbackRate = Number(this.speed.value) || 1;
    });
    this.seek.addEventListener("input", () => {
      this.seeking = true;
      if (active()) this.showTime(Number(this.seek.value));
      else this.showBehind(this.liveEdge() - Number(this.seek.value));
    });
    this.seek.addEventListener("change", () => {
      this.seeking = false;
      if (active()) {
        video.currentTime = Number(this.seek.value);
      } else if (this.root.dataset.dvrBar === "true") {
        const behind = this.liveEdge() - Number(this.seek.value);
        if (behind >= DVR_EDGE_S) this.rewind(behind);
        else this.showLiveSeek();
      }
    });
    for (const name of ["timeupdate", "durationchange", "loadedmetadata", "play", "pause"]) {
      video.addEventListener(name, () => active() && this.showProgress());
    }
    video.addEventListener("ratechange", () => {
      // hls.js and the live player may reset the rate; keep the chosen speed.
      const wanted = Number(this.speed.value) || 1;
      if (active() && video.playbackRate !== wanted) video.playbackRate = wanted;
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (/^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(ev.target.tagName) || ev.target.isContentEditable) return;
      if (!active()) {
        // ← on the live player rewinds it (when the broadcast is being recorded).
        if (ev.key === "ArrowLeft" && this.live.state === "playing" && this.liveRecording) {
          ev.preventDefault();
          this.rewind();
        }
        return;
      }
      if (ev.key === " ") {
        ev.preventDefault();
        if (video.paused) this.play();
        else video.pause();
      } else if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
        ev.preventDefault();
        const step = ev.key === "ArrowLeft" ? -SKIP_S : SKIP_S;
        video.currentTime = Math.min(Math.max(0, video.currentTime + step), this.duration());
      }
    });
  }

  duration() {
    const d = this.video.duration;
    if (Number.isFinite(d)) return d;
    const s = this.video.seekable;
    return s.length ? s.end(s.length - 1) : 0;
  }

  showProgress() {
    const d = this.duration();
    this.seek.max = String(d);
    if (!this.seeking) this.seek.value = String(this.video.currentTime);
    this.showTime(this.video.currentTime);
    const label = this.bar.querySelector('[data-role="vod-play-label"]');
    label.textContent = this.video.paused ? "Play" : "Pause";
  }

  showTime(t) {
    const el = this.bar.querySelector('[data-role="vod-time"]');
    el.textContent = `${clock(t)} / ${clock(this.duration())}`;
    const behind = this.bar.querySelector('[data-role="vod-behind"]');
    behind.hidden = !this.dvr;
    if (this.dvr) behind.textContent = `${clock(this.duration() - t)} behind live`;
  }

  showBehind(seconds) {
    const el = this.bar.querySelector('[data-role="vod-time"]');
    el.textContent = seconds < DVR_EDGE_S ? "LIVE" : `-${clock(seconds)}`;
  }

  showLiveButton() {
    const button = this.bar.querySelector('[data-vod="live"]');
    button.hidden = this.page.dataset.live !== "true";
  }

  // --- the end of a live ---------------------------------------------------------

  onState(state) {
    this.showLiveSeek();
    this.label.updateClose();
    if (state === "ended") this.offerRecording();
    else if (state !== "vod") this.cancelOffer();
  }

  offerRecording() {
    const offer = this.root.querySelector('[data-role="vod-offer"]');
    if (!offer) return;
    offer.hidden = false;
    let left = AUTO_SWITCH_S;
    const note = offer.querySelector('[data-role="vod-countdown"]');
    const step = () => {
      note.textContent = `Starting in ${left} s…`;
      if (left <= 0) {
        this.cancelOffer();
        this.openNewest();
        return;
      }
      left -= 1;
      this.countdown = setTimeout(step, 1000);
    };
    step();
  }

  cancelOffer() {
    clearTimeout(this.countdown);
    this.countdown = 0;
    const offer = this.root.querySelector('[data-role="vod-offer"]');
    if (offer) offer.hidden = true;
  }

  // The newest recording with something in it (the one just ended is written a moment
  // after the end message, so ask a few times).
  async openNewest() {
    for (let i = 0; i < RECORDING_TRIES; i += 1) {
      try {
        const data = await fetchJson(this.list.dataset.recordingsApi);
        const found = (data?.recordings ?? []).find((r) => r.duration > 0);
        if (found && (found.status !== "recording" || i === RECORDING_TRIES - 1)) {
          await this.addToList();
          this.open(found.id, found.playlist_url, true);
          return;
        }
      } catch (err) {
        console.warn("strom: could not list the recordings:", err);
      }
      await new Promise((resolve) => setTimeout(resolve, RECORDING_WAIT_MS));
    }
  }
}

function boot() {
  const page = document.querySelector("[data-channel-page]");
  const list = page?.querySelector("[data-vod-list]");
  const live = window.stromPlayer;
  if (!page || !list || !live || !live.root.querySelector(".vod-controls")) return;
  const vod = new VodPlayer(page, list, live);
  vod.start();
  window.stromVod = Object.freeze({
    get current() {
      return vod.current;
    },
    open: (id) => vod.open(id, null, true),
    backToLive: () => vod.backToLive(),
  });
}

boot();
