// Strom player transports: how media reaches the <video> element.
//
//   WsTransport        live CMAF over /live/{channel}/ws into Media Source Extensions
//   HlsJsTransport     LL-HLS through the vendored hls.js (/static/vendor/hls.min.js)
//   NativeHlsTransport the browser's own HLS (Safari on iOS)
//   DashJsTransport    LL-DASH through the vendored dash.js (/static/vendor/dash.all.min.js),
//                      only when asked for (?transport=dash)
//
// A transport has `name`, `start()`, `stop()` and `latency()`, and drives the player
// through this interface: `video`, `state`, `setState(state, detail)`, `play()`,
// `detachMedia()`, `fallBack(reason)`, `fail(reason)`, `unplayable(sentence)`, `countMediaError()` and (MSE
// only) `onBuffered(session)`. See player.js for the server contract.

import { unplayableCodec } from "./player-codecs.js";

export const SETTINGS = Object.freeze({
  // (the WebSocket player's latency policy is in player-latency.js)
  gapTolerance: 0.05, // s: a playhead this close to the end of a range before a gap jumps it
  // LL-HLS: hls.js aims this many part targets behind the playlist's live edge (a part
  // is listed once complete; rfc8216bis 4.4.3.8 sets PART-HOLD-BACK >= 2 part targets)
  // and seeks when hlsSeekBehind s further behind than that.
  hlsPartsBehind: 2,
  hlsPartTarget: 0.334, // s: Strom's default, until the playlist says
  hlsSeekBehind: 2,
  hlsStallBump: 0.1, // s hls.js adds to its target per stall
  keepBehind: 10, // seconds of played media kept in the SourceBuffer
  trimBehind: 20, // trim once this much played media is buffered
  quotaKeepBehind: 2, // what a QuotaExceededError trims down to
  maxPendingBytes: 16 * 1024 * 1024, // unappended data before resynchronising
  tickMs: 100, // the player's latency steering
  reconnectBaseMs: 500,
  reconnectMaxMs: 10000,
  wsFailuresBeforeHls: 2, // failed connects, never opened, before falling back
  resumeAfterEndMs: 10000, // look for the next broadcast this long after an end
  hlsRetryMs: 3000,
  maxMediaErrors: 3, // consecutive media errors before giving up
  statsMs: 500,
  idleMs: 3000, // controls fade after this long without pointer activity
  historyLength: 50, // states remembered for window.stromPlayer.history
});

export const TRANSPORT_NAMES = Object.freeze({
  ws: "WebSocket",
  hls: "LL-HLS",
  native: "native HLS",
  dash: "LL-DASH",
});

// --- small helpers ---------------------------------------------------------------

export function mediaSourceClass() {
  // ManagedMediaSource is what iOS Safari (17.1+) has instead of MediaSource.
  return window.MediaSource ?? window.ManagedMediaSource ?? null;
}

export function canPlayNativeHls(video) {
  return video.canPlayType("application/vnd.apple.mpegurl") !== "";
}

export function lastRangeEnd(ranges) {
  return ranges.length ? ranges.end(ranges.length - 1) : NaN;
}

export function totalBuffered(ranges) {
  let sum = 0;
  for (let i = 0; i < ranges.length; i += 1) sum += ranges.end(i) - ranges.start(i);
  return sum;
}

export function rangeIndexAt(ranges, t) {
  for (let i = 0; i < ranges.length; i += 1) {
    if (t >= ranges.start(i) && t <= ranges.end(i)) return i;
  }
  return -1;
}

export function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

function backoffMs(attempt) {
  const base = Math.min(SETTINGS.reconnectMaxMs, SETTINGS.reconnectBaseMs * 2 ** attempt);
  return base * (0.75 + Math.random() * 0.5); // jitter: viewers do not return in lockstep
}

// What the page says when a vendored player script does not load: the server was
// installed without it (a package built without npm) or it is blocked on the way.
export function missingPlayer(what, script) {
  return `The ${what} player (${script}) is missing from this server — ask its operator to reinstall Strom.`;
}

// Load a vendored player script unless `window[global]` is there already; when it does not
// load, the player area says which one is missing. Resolves to whether it is there.
async function loadPlayer(player, global, src, what, script) {
  try {
    if (!window[global]) await loadScript(src);
    return true;
  } catch (err) {
    console.warn("strom:", err.message);
    player.fail(missingPlayer(what, script));
    return false;
  }
}

export function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.async = true;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(script);
  });
}

// --- MSE: one MediaSource + SourceBuffer per `init` ------------------------------

// A MediaSource attached to the video. Opening one took Chromium 40-200 ms on a busy box
// (it builds the element's media pipeline), so the WebSocket transport attaches one
// before the server has said what it carries, and the first session takes it over.
export class AttachedSource {
  constructor(video) {
    const MediaSourceClass = mediaSourceClass();
    this.video = video;
    this.mediaSource = new MediaSourceClass();
    if (window.ManagedMediaSource && MediaSourceClass === window.ManagedMediaSource) {
      // A managed media source only opens with AirPlay off (or an alternative source).
      video.disableRemotePlayback = true;
    }
    this.objectUrl = URL.createObjectURL(this.mediaSource);
    video.src = this.objectUrl;
  }

  // Still the video's source, and not closed: a session can take it over.
  usable() {
    return this.video.src === this.objectUrl && this.mediaSource.readyState !== "closed";
  }

  // `onOpen` once the source is open (now, if it already is).
  whenOpen(onOpen) {
    if (this.mediaSource.readyState === "open") queueMicrotask(onOpen);
    else this.mediaSource.addEventListener("sourceopen", onOpen, { once: true });
  }
}

export class MseSession {
  constructor(video, mime, { onBuffered, onFatal }, attached = null) {
    this.video = video;
    this.mime = mime;
    this.onBuffered = onBuffered;
    this.onFatal = onFatal;
    this.queue = [];
    this.pendingBytes = 0;
    this.quotaErrors = 0;
    this.sourceBuffer = null;
    this.closed = false;
    this.ending = false;
    // the player's own state of this session (player.js)
    this.started = false;
    this.firstDataAt = 0;
    this.stalled = false;
    this.latency = null; // its LiveLatency (player-latency.js)

    const source = attached?.usable() ? attached : new AttachedSource(video);
    this.mediaSource = source.mediaSource;
    this.objectUrl = source.objectUrl;
    source.whenOpen(() => this.onSourceOpen());
  }

  onSourceOpen() {
    URL.revokeObjectURL(this.objectUrl);
    if (this.closed) return;
    try {
      this.sourceBuffer = this.mediaSource.addSourceBuffer(this.mime);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.sourceBuffer.mode = "segments"; // timestamps come from tfdt, not arrival order
    this.sourceBuffer.addEventListener("updateend", () => {
      if (this.closed) return;
      this.onBuffered(this);
      this.pump();
    });
    this.sourceBuffer.addEventListener("error", () => this.fail(new Error("append failed")));
    this.pump();
  }

  append(data) {
    if (this.closed || this.ending) return;
    this.queue.push(data);
    this.pendingBytes += data.byteLength;
    if (this.pendingBytes > SETTINGS.maxPendingBytes) {
      // The decoder cannot keep up (or the tab was frozen): dropping chunks would
      // break the reference chain, so start again from the server's last keyframe.
      this.fail(new Error("append queue overflow"));
      return;
    }
    this.pump();
  }

  // Appends run one at a time: the next one starts on `updateend`.
  pump() {
    const sb = this.sourceBuffer;
    if (this.closed || !sb || sb.updating || this.mediaSource.readyState !== "open") return;
    if (this.trim(SETTINGS.trimBehind, SETTINGS.keepBehind)) return;
    if (!this.queue.length) {
      if (this.ending) this.mediaSource.endOfStream();
      return;
    }
    const data = this.queue[0];
    try {
      sb.appendBuffer(data);
    } catch (err) {
      if (err.name === "QuotaExceededError" && this.quotaErrors < 3) {
        this.quotaErrors += 1;
        // Make room; the chunk stays at the head of the queue for the next pump.
        if (this.trim(SETTINGS.quotaKeepBehind, SETTINGS.quotaKeepBehind)) return;
      }
      this.fail(err);
      return;
    }
    this.queue.shift();
    this.pendingBytes -= data.byteLength;
    this.quotaErrors = 0;
  }

  // Remove played media once more than `above` seconds of it are buffered, keeping
  // `keep` seconds behind currentTime. Returns true when a remove() is under way.
  trim(above, keep) {
    const ranges = this.sourceBuffer.buffered;
    if (!ranges.length) return false;
    const start = ranges.start(0);
    const now = this.video.currentTime;
    if (now - start <= above) return false;
    this.sourceBuffer.remove(start, now - keep);
    return true;
  }

  end() {
    this.ending = true;
    this.pump();
  }

  fail(err) {
    if (this.closed) return;
    this.close();
    this.onFatal(err);
  }

  close() {
    this.closed = true;
    this.queue = [];
    this.pendingBytes = 0;
  }
}

// --- transports ------------------------------------------------------------------

export class WsTransport {
  constructor(player, url, { forced }) {
    this.player = player;
    this.url = url;
    this.forced = forced;
    this.name = TRANSPORT_NAMES.ws;
    this.ws = null;
    this.session = null;
    this.attempt = 0;
    this.failedConnects = 0;
    this.everOpened = false;
    this.ended = false;
    this.stopped = false;
    this.retryTimer = 0;
    this.spare = null; // an AttachedSource for the first session
  }

  start() {
    // opens while the socket connects
    if (mediaSourceClass()) this.spare = new AttachedSource(this.player.video);
    this.connect();
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    let opened = false;
    ws.addEventListener("open", () => {
      opened = true;
      this.everOpened = true;
      this.failedConnects = 0;
    });
    ws.addEventListener("message", (ev) => {
      if (ws === this.ws) this.onMessage(ev.data);
    });
    ws.addEventListener("close", (ev) => {
      if (ws === this.ws) this.onClose(ev, opened);
    });
    this.ws = ws;
  }

  onMessage(data) {
    this.attempt = 0; // the server is talking to us: the next drop retries quickly
    if (typeof data !== "string") {
      if (this.session) this.session.append(data);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      console.warn("strom: ignoring a malformed control message");
      return;
    }
    if (msg.type === "init") this.onInit(msg.mime);
    else if (msg.type === "offline") this.onOffline();
    else if (msg.type === "end") this.onEnd();
    else if (msg.type === "reconnecting") {
      // The streamer's encoder dropped; the broadcast waits for it (grace period).
      this.player.setState("reconnecting", "The stream was interrupted; it resumes here automatically.");
    } else if (msg.type === "resumed" && this.session) this.player.setState("playing");
  }

  onInit(mime) {
    const MediaSourceClass = mediaSourceClass();
    const problem = typeof mime === "string" ? unplayableCodec(mime, MediaSourceClass) : null;
    if (problem && !this.player.video.canPlayType(mime)) {
      // The codec itself: HLS through the same Media Source would fail alike (a
      // rendition of the channel's ladder may play: player.unplayable).
      this.stop();
      this.player.unplayable(problem);
      return;
    }
    if (!MediaSourceClass || typeof mime !== "string" || !MediaSourceClass.isTypeSupported(mime)) {
      this.giveUp(`this browser cannot play ${mime} through Media Source Extensions`);
      return;
    }
    // A new init means new codec parameters or a new timeline: start a fresh
    // MediaSource rather than splice it into the old SourceBuffer.
    this.closeSession();
    this.ended = false;
    const spare = this.spare;
    this.spare = null;
    this.session = new MseSession(
      this.player.video,
      mime,
      {
        onBuffered: (session) => this.player.onBuffered(session),
        onFatal: (err) => this.onSessionError(err),
      },
      spare,
    );
    this.player.setState("playing");
  }

  onOffline() {
    // After an end we quietly wait for the next broadcast behind the "ended" card.
    if (this.ended) return;
    this.closeSession();
    this.player.detachMedia();
    this.player.setState("offline");
  }

  onEnd() {
    this.ended = true;
    if (this.session) this.session.end();
    this.player.setState("ended");
  }

  onSessionError(err) {
    console.warn("strom: media error, resynchronising:", err);
    if (this.player.countMediaError()) this.reconnectNow("media error");
  }

  onClose(ev, opened) {
    if (this.stopped) return;
    this.ws = null;
    if (!opened) this.failedConnects += 1;
    if (!this.everOpened && !this.forced && this.failedConnects >= SETTINGS.wsFailuresBeforeHls) {
      this.giveUp("the WebSocket could not connect");
      return;
    }
    if (this.ended) {
      this.retryTimer = setTimeout(() => this.connect(), SETTINGS.resumeAfterEndMs);
      return;
    }
    if (ev.code === 1008 || ev.code === 1001) {
      console.warn(`strom: server closed the stream (${ev.code} ${ev.reason})`);
    }
    const detail = ev.reason ? `The server said: ${ev.reason}` : "";
    if (this.player.state !== "offline") this.player.setState("reconnecting", detail);
    const delay = backoffMs(this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow(reason) {
    this.closeSession();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, reason);
    }
    this.player.setState("reconnecting", "");
    const delay = backoffMs(this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  giveUp(reason) {
    this.stop();
    this.player.fallBack(reason);
  }

  closeSession() {
    if (this.session) this.session.close();
    this.session = null;
  }

  stop() {
    this.stopped = true;
    this.spare = null;
    clearTimeout(this.retryTimer);
    this.closeSession();
    if (this.ws) this.ws.close(1000, "leaving");
    this.ws = null;
  }

  latency() {
    return lastRangeEnd(this.player.video.buffered) - this.player.video.currentTime;
  }
}

export class HlsJsTransport {
  constructor(player, url, scriptUrl) {
    this.player = player;
    this.url = url;
    this.scriptUrl = scriptUrl;
    this.name = TRANSPORT_NAMES.hls;
    this.hls = null;
    this.retryTimer = 0;
    this.recoveredMedia = false;
    this.stopped = false;
  }

  async start() {
    if (!(await loadPlayer(this.player, "Hls", this.scriptUrl, "HLS", "hls.js"))) return;
    if (!window.Hls.isSupported()) {
      this.player.fallBack("hls.js is not supported in this browser");
      return;
    }
    this.create();
  }

  create() {
    if (this.stopped) return;
    const Hls = window.Hls;
    const hls = new Hls({
      lowLatencyMode: true,
      liveSyncDuration: SETTINGS.hlsPartsBehind * SETTINGS.hlsPartTarget,
      liveMaxLatencyDuration: SETTINGS.hlsPartsBehind * SETTINGS.hlsPartTarget + SETTINGS.hlsSeekBehind,
      maxLiveSyncPlaybackRate: 1, // the player steers the rate (player.js)
      liveSyncOnStallIncrease: SETTINGS.hlsStallBump,
      backBufferLength: SETTINGS.keepBehind,
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      this.player.setState("playing");
      this.player.play();
    });
    hls.on(Hls.Events.LEVEL_LOADED, (_event, data) => this.aim(data.details));
    hls.on(Hls.Events.ERROR, (_event, data) => this.onError(data));
    hls.attachMedia(this.player.video);
    hls.loadSource(this.url);
    this.hls = hls;
  }

  // The server's part target sets the floor: aim that many parts behind.
  aim(details) {
    const aim = SETTINGS.hlsPartsBehind * (details.partTarget || SETTINGS.hlsPartTarget);
    const config = this.hls.config;
    if (Math.abs(config.liveSyncDuration - aim) < 0.01) return;
    config.liveMaxLatencyDuration = aim + SETTINGS.hlsSeekBehind;
    this.hls.targetLatency = aim;
  }

  onError(data) {
    if (!data.fatal) return;
    const Hls = window.Hls;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !this.recoveredMedia) {
      this.recoveredMedia = true;
      this.hls.recoverMediaError();
      return;
    }
    const offline =
      data.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR && data.response?.code === 404;
    this.destroy();
    if (this.player.state !== "ended") {
      this.player.setState(offline ? "offline" : "reconnecting", "");
    }
    this.retryTimer = setTimeout(() => this.create(), SETTINGS.hlsRetryMs);
  }

  destroy() {
    if (this.hls) this.hls.destroy();
    this.hls = null;
    this.recoveredMedia = false;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.destroy();
  }

  latency() {
    return this.hls?.latency ?? NaN;
  }

  targetLatency() {
    return this.hls?.targetLatency ?? null;
  }
}

export class NativeHlsTransport {
  constructor(player, url) {
    this.player = player;
    this.url = url;
    this.name = TRANSPORT_NAMES.native;
    this.retryTimer = 0;
    this.onError = () => {
      if (this.player.state !== "ended") this.player.setState("reconnecting", "");
      this.retryTimer = setTimeout(() => this.load(), SETTINGS.hlsRetryMs);
    };
    this.onLoaded = () => {
      this.player.setState("playing");
      this.player.play();
    };
  }

  start() {
    const video = this.player.video;
    video.addEventListener("error", this.onError);
    video.addEventListener("loadedmetadata", this.onLoaded);
    this.load();
  }

  load() {
    this.player.video.src = this.url;
  }

  stop() {
    clearTimeout(this.retryTimer);
    this.player.video.removeEventListener("error", this.onError);
    this.player.video.removeEventListener("loadedmetadata", this.onLoaded);
  }

  latency() {
    const video = this.player.video;
    return lastRangeEnd(video.seekable) - video.currentTime;
  }
}

// LL-DASH (the MPD at /live/{channel}/index.mpd): dash.js turns its low-latency mode on by
// itself (the MPD says availabilityTimeComplete="false"), fetches the segment being
// written as it grows, and holds the latency the MPD's ServiceDescription asks for by
// playing a little faster or slower; its clock follows the server's (UTCTiming).
export class DashJsTransport {
  constructor(player, url, scriptUrl) {
    this.player = player;
    this.url = url;
    this.scriptUrl = scriptUrl;
    this.name = TRANSPORT_NAMES.dash;
    this.dash = null;
    this.retryTimer = 0;
    this.stopped = false;
  }

  async start() {
    if (!(await loadPlayer(this.player, "dashjs", this.scriptUrl, "MPEG-DASH", "dash.js"))) return;
    if (!mediaSourceClass()) {
      this.player.fail("this browser has no Media Source Extensions, which dash.js needs");
      return;
    }
    this.create();
  }

  create() {
    if (this.stopped) return;
    const dashjs = window.dashjs;
    const events = dashjs.MediaPlayer.events;
    const dash = dashjs.MediaPlayer().create();
    dash.updateSettings({
      streaming: {
        buffer: { bufferToKeep: SETTINGS.keepBehind },
        liveCatchup: { enabled: true },
      },
    });
    dash.on(events.STREAM_INITIALIZED, () => {
      this.player.setState("playing");
      this.player.play();
    });
    dash.on(events.PLAYBACK_ENDED, () => {
      // The broadcast is over (the MPD stopped updating): look for the next one later.
      this.player.setState("ended");
      this.retry(SETTINGS.resumeAfterEndMs);
    });
    dash.on(events.ERROR, (event) => this.onError(event.error));
    dash.initialize(this.player.video, this.url, true);
    this.dash = dash;
  }

  onError(error) {
    const code = error?.code;
    // dash.js codes: 10 the MPD could not be loaded (the channel is not live: 404).
    const offline = code === 10 || this.player.state === "connecting";
    console.warn("strom: dash.js error", code, error?.message ?? "");
    if (this.player.state !== "ended") {
      this.player.setState(offline ? "offline" : "reconnecting", "");
    }
    this.retry(SETTINGS.hlsRetryMs);
  }

  retry(delayMs) {
    this.destroy();
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.create(), delayMs);
  }

  destroy() {
    if (this.dash) this.dash.destroy();
    this.dash = null;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.destroy();
  }

  latency() {
    return this.dash?.getCurrentLiveLatency() ?? NaN;
  }
}
