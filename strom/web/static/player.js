// Strom watch-page player: live CMAF over a WebSocket into Media Source Extensions,
// with LL-HLS (hls.js, or the browser's own HLS) as the fallback.
//
// Server contract, /live/{channel}/ws: text {"type":"init","mime":...}, one binary
// init segment (ftyp+moov), then one binary CMAF chunk (moof+mdat) per message.
// {"type":"offline"} while the channel is not live (the socket stays open and `init`
// follows when it goes live); {"type":"end"} then close 1000 when a broadcast ends.
// A new `init` may arrive mid-stream (the publisher reconnected with new codec
// parameters). Close 1008 (policy, e.g. "too slow") or 1001 (going away): reconnect.
//
// No inline script and no framework: the page passes its configuration in the data-
// attributes of #player; the state is mirrored to #player[data-state] for the CSS and
// to window.stromPlayer for tests and debugging. The transports (WebSocket + MSE,
// hls.js, native HLS) live in player-transports.js; how far behind live the WebSocket
// player plays (a target from the viewer's own arrival jitter, held by playbackRate) in
// player-latency.js. vod.js plays recordings in the same <video>: stromPlayer.suspend()
// stops the live transport (state "vod"), resume() goes back to live; every state
// change is also a "strom:state" event on #player.

import { catchUpRate, LATENCY, LiveLatency } from "./player-latency.js";
import { QualityControl } from "./player-quality.js";
import {
  canPlayNativeHls,
  clamp,
  DashJsTransport,
  HlsJsTransport,
  lastRangeEnd,
  mediaSourceClass,
  NativeHlsTransport,
  rangeIndexAt,
  SETTINGS,
  totalBuffered,
  WsTransport,
} from "./player-transports.js";

// --- the player: state, catch-up, controls, stats --------------------------------

// Wall time in seconds on the page's monotonic clock.
function nowSeconds() {
  return performance.now() / 1000;
}

class Player {
  constructor(root) {
    this.root = root;
    this.video = root.querySelector("video");
    this.channel = root.dataset.channel;
    this.state = "connecting";
    this.history = ["connecting"];
    this.transport = null;
    this.quality = null;
    this.triedHlsJs = false;
    this.mediaErrors = 0;
    this.idleTimer = 0;
    this.statsTimer = 0;
    const page = new URL(window.location.href);
    const ws = new URL(root.dataset.wsPath, page);
    ws.protocol = page.protocol === "https:" ? "wss:" : "ws:";
    this.urls = {
      ws: ws.href,
      hls: new URL(root.dataset.hlsPath, page).href,
      hlsScript: new URL(root.dataset.hlsScript, page).href,
      dash: new URL(root.dataset.dashPath, page).href,
      dashScript: new URL(root.dataset.dashScript, page).href,
    };
    this.forcedTransport = page.searchParams.get("transport");
  }

  start() {
    this.video.muted = true; // autoplay policy: browsers only start muted playback
    this.bindControls();
    this.bindVideo();
    this.syncMuted();
    setInterval(() => this.tick(), SETTINGS.tickMs);
    this.useTransport(this.chooseTransport());
    this.quality = new QualityControl(this); // the ladder's menu and automatic switching
    this.quality.start();
  }

  chooseTransport() {
    const forced = this.forcedTransport;
    if (forced === "ws" || forced === "hls" || forced === "native" || forced === "dash") return forced;
    if (mediaSourceClass() && "WebSocket" in window) return "ws";
    if (canPlayNativeHls(this.video)) return "native";
    return "hls";
  }

  useTransport(kind) {
    if (this.transport) this.transport.stop();
    this.detachMedia();
    if (kind === "ws") {
      this.transport = new WsTransport(this, this.urls.ws, { forced: this.forcedTransport === "ws" });
    } else if (kind === "hls") {
      this.triedHlsJs = true;
      this.transport = new HlsJsTransport(this, this.urls.hls, this.urls.hlsScript);
    } else if (kind === "dash") {
      this.transport = new DashJsTransport(this, this.urls.dash, this.urls.dashScript);
    } else {
      this.transport = new NativeHlsTransport(this, this.urls.hls);
    }
    this.root.dataset.transport = kind;
    this.transport.start();
  }

  // The current path cannot work: WebSocket → hls.js → native HLS → error.
  fallBack(reason) {
    console.warn(`strom: ${reason}; falling back`);
    const nativeOk = canPlayNativeHls(this.video);
    if (!this.triedHlsJs && mediaSourceClass()) this.useTransport("hls");
    else if (nativeOk && !(this.transport instanceof NativeHlsTransport)) this.useTransport("native");
    else this.fail(reason);
  }

  fail(reason) {
    if (this.transport) this.transport.stop();
    this.setState("error", reason);
  }

  // The browser cannot play the stream's codec: it says so, and plays a rendition of
  // the channel's ladder that it can play if there is one (player-quality.js).
  unplayable(sentence) {
    this.fail(sentence);
    this.quality?.rescue(sentence);
  }

  setState(state, detail = "") {
    if (state === "reconnecting") this.text("reconnect-detail", detail);
    if (state === "error") this.text("error-detail", detail);
    if (state === this.state) return;
    this.state = state;
    this.history.push(state);
    if (this.history.length > SETTINGS.historyLength) this.history.shift();
    this.root.dataset.state = state;
    if (state !== "playing" && state !== "vod") this.video.playbackRate = 1;
    // The publisher dropped: its arrivals after the gap start a new series.
    if (state === "reconnecting" && this.transport?.session) this.transport.session.latency = null;
    this.root.dispatchEvent(new CustomEvent("strom:state", { detail: state }));
  }

  // VOD mode (static/vod.js): the live transport lets go of the video, and takes it back.
  suspend() {
    if (this.transport) this.transport.stop();
    this.transport = null;
    delete this.root.dataset.transport;
    this.detachMedia();
    this.setState("vod");
  }

  resume() {
    if (this.state !== "vod") return;
    this.detachMedia();
    this.video.playbackRate = 1;
    this.setState("connecting");
    this.useTransport(this.chooseTransport());
  }

  text(role, value) {
    const el = this.root.querySelector(`[data-role="${role}"]`);
    if (el) el.textContent = value;
  }

  detachMedia() {
    const video = this.video;
    if (!video.src && !video.srcObject) return;
    video.removeAttribute("src");
    video.srcObject = null;
    video.load();
  }

  play() {
    const attempt = this.video.play();
    if (!attempt) return;
    attempt.catch((err) => {
      if (err.name === "NotAllowedError" && !this.video.muted) {
        this.video.muted = true; // the browser refused sound: play muted instead
        this.play();
      } else if (err.name !== "AbortError") {
        console.warn("strom: play() failed:", err);
      }
    });
  }

  // Returns true when the caller should resynchronise, false when it is time to stop.
  countMediaError() {
    this.mediaErrors += 1;
    if (this.mediaErrors <= SETTINGS.maxMediaErrors) return true;
    this.fallBack("the media could not be decoded");
    return false;
  }

  // --- MSE live edge: start, catch up, skip gaps ---------------------------------
  // The latency policy (target from the viewer's own jitter, playbackRate) is in
  // player-latency.js; this part feeds it arrivals and stalls and applies its steps.

  liveControl(session = this.transport?.session) {
    if (!session || !(this.transport instanceof WsTransport)) return null;
    session.latency ??= new LiveLatency();
    return session.latency;
  }

  onBuffered(session) {
    const control = this.liveControl(session);
    const edge = lastRangeEnd(this.video.buffered);
    // Only appends that make more media playable are arrivals (not trims, not audio
    // that is still waiting for its video).
    if (control && edge > (control.last?.[1] ?? -Infinity)) control.arrival(nowSeconds(), edge);
    if (!session.started) this.maybeStart(session);
  }

  // The first keyframe shows at once (paused); playback starts at the target latency
  // once the join burst (the GOP so far) is in.
  maybeStart(session) {
    const ranges = this.video.buffered;
    if (!ranges.length || this.state !== "playing") return;
    if (!session.firstDataAt) {
      session.firstDataAt = performance.now();
      // The first chunk need not start at 0 (late joiners start at the last keyframe).
      this.video.currentTime = ranges.start(ranges.length - 1);
    }
    const waited = performance.now() - session.firstDataAt;
    if (!this.liveControl(session).live && waited < LATENCY.maxBurst * 1000) return;
    session.started = true;
    this.seekToEdge(session, ranges);
    this.play();
  }

  seekToEdge(session, ranges) {
    const control = this.liveControl(session);
    const now = nowSeconds();
    const last = ranges.length - 1;
    const end = ranges.end(last);
    const edge = control?.liveEdge(now) ?? end;
    const target = control ? control.target(now) : LATENCY.floor;
    const to = clamp(edge - target, ranges.start(last), end - LATENCY.floor / 2);
    // No data for a while (the edge ran on without it): nowhere better to go.
    if (Math.abs(to - this.video.currentTime) < SETTINGS.gapTolerance) return;
    this.video.currentTime = to;
    this.video.playbackRate = 1;
  }

  tick() {
    const session = this.transport instanceof WsTransport ? this.transport.session : null;
    if (session && this.state === "playing") {
      if (session.started) this.holdLatency(session);
      else this.maybeStart(session);
    }
    if (this.transport instanceof HlsJsTransport && this.state === "playing") this.holdHlsLatency();
    if (this.mediaErrors && this.video.currentTime > 5 && !this.video.paused) this.mediaErrors = 0;
  }

  holdLatency(session) {
    const video = this.video;
    const ranges = video.buffered;
    if (!ranges.length || video.paused || video.seeking) return;
    const now = video.currentTime;
    const i = rangeIndexAt(ranges, now);
    // MSE does not jump over gaps (a skipped GOP, a reconnect): seek past them.
    if (i === -1 || (i < ranges.length - 1 && ranges.end(i) - now < SETTINGS.gapTolerance)) {
      this.seekToEdge(session, ranges);
      return;
    }
    const ahead = ranges.end(i) - now;
    const control = this.liveControl(session);
    // Chromium resumes after an underflow only once it has buffered more than before
    // (more with each underflow): with the target buffered again, seek to restart now.
    if (session.stalled && control.live && ahead > control.target(nowSeconds()) + SETTINGS.gapTolerance) {
      session.stalled = false;
      this.seekToEdge(session, ranges);
      return;
    }
    const step = control.steer(nowSeconds(), now, ahead);
    if (!step) return;
    if (step.seekTo !== undefined) this.seekToEdge(session, ranges);
    else if (step.rate !== video.playbackRate) video.playbackRate = step.rate;
  }

  // hls.js knows where its live edge is and what it aims for; the rate is ours.
  holdHlsLatency() {
    const video = this.video;
    const latency = this.transport.latency();
    const target = this.transport.targetLatency();
    if (video.paused || video.seeking || !Number.isFinite(latency) || target === null) return;
    const rate = catchUpRate(latency - target, lastRangeEnd(video.buffered) - video.currentTime);
    if (rate !== video.playbackRate) video.playbackRate = rate;
  }

  latency() {
    const control = this.liveControl();
    let value = control ? control.latency(nowSeconds(), this.video.currentTime) : null;
    if (value === null) value = this.transport ? this.transport.latency() : NaN;
    return Number.isFinite(value) ? Math.max(0, value) : null;
  }

  // --- controls ------------------------------------------------------------------

  bindVideo() {
    const video = this.video;
    video.addEventListener("waiting", () => {
      this.root.dataset.waiting = "true";
      const session = this.transport?.session;
      // The buffer ran dry while playing: this viewer needs a bigger one.
      if (session?.started && !video.seeking) {
        session.stalled = true;
        this.liveControl(session)?.stall(nowSeconds());
      }
    });
    video.addEventListener("playing", () => {
      this.root.dataset.waiting = "false";
      const session = this.transport?.session;
      if (session) session.stalled = false;
    });
    video.addEventListener("error", () => {
      // A decode error closes the MediaSource: start again from the next keyframe.
      const session = this.transport?.session;
      if (session && video.error) session.fail(new Error(`media error ${video.error.code}`));
    });
    video.addEventListener("volumechange", () => this.syncMuted());
    video.addEventListener("ended", () => {
      if (this.state === "playing") this.setState("ended");
    });
    document.addEventListener("fullscreenchange", () => this.syncFullscreen());
    document.addEventListener("webkitfullscreenchange", () => this.syncFullscreen());
  }

  bindControls() {
    const actions = {
      mute: () => this.toggleMute(),
      unmute: () => this.toggleMute(false),
      fullscreen: () => this.toggleFullscreen(),
      stats: () => this.toggleStats(),
    };
    this.root.addEventListener("click", (ev) => {
      const button = ev.target.closest("[data-action]");
      if (button && actions[button.dataset.action]) actions[button.dataset.action]();
    });
    this.video.addEventListener("dblclick", () => this.toggleFullscreen());
    const keys = { m: actions.mute, f: actions.fullscreen, i: actions.stats };
    // A small player on a busy page (the dashboard's preview) leaves the keyboard alone.
    const keyboard = this.root.dataset.keys !== "off";
    document.addEventListener("keydown", (ev) => {
      if (!keyboard || ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
      const target = ev.target;
      if (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
      const action = keys[(ev.key ?? "").toLowerCase()];
      if (!action) return;
      ev.preventDefault();
      action();
    });
    const wake = () => {
      this.root.dataset.idle = "false";
      clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(() => {
        this.root.dataset.idle = "true";
      }, SETTINGS.idleMs);
    };
    this.root.addEventListener("pointermove", wake);
    this.root.addEventListener("pointerdown", wake);
  }

  toggleMute(muted = !this.video.muted) {
    this.video.muted = muted;
    if (!muted && this.video.volume === 0) this.video.volume = 1;
    if (!muted && this.video.paused && this.state === "playing") this.play();
  }

  syncMuted() {
    const muted = this.video.muted;
    this.root.dataset.muted = String(muted);
    const button = this.root.querySelector('[data-action="mute"]');
    button.setAttribute("aria-pressed", String(muted));
    button.title = muted ? "Unmute (m)" : "Mute (m)";
    this.text("mute-label", muted ? "Unmute" : "Mute");
  }

  toggleFullscreen() {
    const doc = document;
    const current = doc.fullscreenElement ?? doc.webkitFullscreenElement;
    if (current) {
      (doc.exitFullscreen ?? doc.webkitExitFullscreen).call(doc);
      return;
    }
    const root = this.root;
    const request = root.requestFullscreen ?? root.webkitRequestFullscreen;
    if (request) {
      const result = request.call(root);
      if (result?.catch) result.catch((err) => console.warn("strom: fullscreen refused:", err));
    } else if (this.video.webkitEnterFullscreen) {
      this.video.webkitEnterFullscreen(); // iPhone: only the video element can go fullscreen
    }
  }

  syncFullscreen() {
    const on = (document.fullscreenElement ?? document.webkitFullscreenElement) === this.root;
    this.root.querySelector('[data-action="fullscreen"]').setAttribute("aria-pressed", String(on));
  }

  toggleStats() {
    const panel = this.root.querySelector('[data-role="stats"]');
    panel.hidden = !panel.hidden;
    this.root.querySelector('[data-action="stats"]').setAttribute("aria-pressed", String(!panel.hidden));
    clearInterval(this.statsTimer);
    if (!panel.hidden) {
      this.renderStats();
      this.statsTimer = setInterval(() => this.renderStats(), SETTINGS.statsMs);
    }
  }

  stats() {
    const video = this.video;
    const quality = video.getVideoPlaybackQuality?.();
    const ahead = lastRangeEnd(video.buffered) - video.currentTime;
    const control = this.liveControl();
    const live = control?.live;
    return {
      transport: this.transport?.name ?? null,
      state: this.state,
      targetLatency: live ? control.target(nowSeconds()) : (this.transport?.targetLatency?.() ?? null),
      jitter: live ? control.jitter() : null,
      width: video.videoWidth,
      height: video.videoHeight,
      latency: this.latency(),
      bufferAhead: Number.isFinite(ahead) ? Math.max(0, ahead) : null,
      bufferTotal: totalBuffered(video.buffered),
      playbackRate: video.playbackRate,
      droppedFrames: quality?.droppedVideoFrames ?? null,
      totalFrames: quality?.totalVideoFrames ?? null,
    };
  }

  renderStats() {
    const s = this.stats();
    const seconds = (v) => (v === null ? "–" : `${v.toFixed(2)} s`);
    const values = {
      transport: s.transport ?? "–",
      resolution: s.width ? `${s.width}×${s.height}` : "–",
      latency: s.targetLatency === null ? seconds(s.latency) : `${seconds(s.latency)} (aim ${seconds(s.targetLatency)})`,
      buffer: `${seconds(s.bufferAhead)} ahead, ${s.bufferTotal.toFixed(1)} s kept`,
      rate: `${s.playbackRate.toFixed(2)}×`,
      dropped: s.droppedFrames === null ? "–" : `${s.droppedFrames} / ${s.totalFrames}`,
    };
    for (const [key, value] of Object.entries(values)) {
      const el = this.root.querySelector(`[data-stat="${key}"]`);
      if (el) el.textContent = value;
    }
  }
}

// --- boot ------------------------------------------------------------------------

function boot() {
  const root = document.getElementById("player");
  if (!root) return;
  const player = new Player(root);
  window.stromPlayer = Object.freeze({
    get transport() {
      return player.transport?.name ?? null;
    },
    get state() {
      return player.state;
    },
    get history() {
      return [...player.history];
    },
    get channel() {
      return player.channel;
    },
    latency: () => player.latency(),
    suspend: () => player.suspend(),
    resume: () => player.resume(),
    root,
    stats: () => player.stats(),
    video: player.video,
  });
  player.start();
}

boot();
