// Go live, the upload half: MediaRecorder → WebSocket /ingest/ws, reconnecting after a
// network blip so the server resumes the same broadcast.
//
// Protocol (strom/web/ingest.py): the client sends {"type":"start","mime":...,"fps":N} and then
// the container bytes as binary messages, in order; {"type":"stop"} ends the broadcast on
// purpose. The server answers {"type":"ready","channel":...}, then about once a second
// {"type":"status","state":"starting|live|reconnecting","viewers":N,"bitrate":BPS,
// "fps":F,"uptime":S,"broadcast":ID}; {"type":"error","reason":...} comes before a close
// with 1008 (not allowed, channel busy), 1003 (media it cannot use) or 1009 (too big, too
// fast). A socket that drops without "stop" leaves the broadcast waiting for its
// publisher; a new socket with a new "start" and a new container header (a fresh
// MediaRecorder) continues it.

// Recorder timeslice: small chunks keep the glass-to-glass latency low.
export const TIMESLICE_MS = 200;
// One keyframe every 2 s: a viewer who joins starts within 2 s, at little cost in bits.
const KEYFRAME_INTERVAL_MS = 2000;
// The server refuses bigger WebSocket messages (ingest_ws_max_message, 4 MiB by default).
const MAX_MESSAGE_BYTES = 1 << 20;
// Unsent bytes in the socket, in seconds of the stream: past SLOW the page warns that
// the upload cannot keep up; past STUCK the connection starts over with a lower bitrate
// (a backlog that grows only adds delay for the viewers).
const SLOW_SECONDS = 2;
const STUCK_SECONDS = 8;
const MIN_BUFFER_BYTES = 512 * 1024;
// Reconnect backoff after an unexpected close, and a watchdog for a silent server.
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const SILENT_SERVER_MS = 15_000;
// Refusals (a channel still busy with our own dropped socket) are retried this often.
const BUSY_RETRIES = 3;

// Close codes after which trying again cannot help.
const FATAL_CLOSES = new Set([1003, 1008, 1009]);

/**
 * One broadcast from this page. Events (CustomEvent, `detail` as shown):
 *   "state"  {state, reason}: "connecting" → "starting" → "live" ⇄ "reconnecting",
 *            and at the end "stopped" (the user) or "failed" (reason: what to tell them)
 *   "status" the server's latest status message
 *   "slow"   {slow: bool, reason}: the upload cannot keep up, or can again
 */
export class Broadcast extends EventTarget {
  constructor({ url, stream, mime, videoBitsPerSecond, audioBitsPerSecond, minVideoBitsPerSecond, fps }) {
    super();
    this.fps = fps; // the chosen frame rate: the server warns when far fewer arrive
    this.url = url;
    this.stream = stream;
    this.mime = mime;
    this.videoBitsPerSecond = videoBitsPerSecond;
    this.audioBitsPerSecond = audioBitsPerSecond;
    this.minVideoBitsPerSecond = minVideoBitsPerSecond;
    this.state = "idle";
    this.ws = null;
    this.recorder = null;
    this.attempt = 0;
    this.busyRefusals = 0;
    this.everLive = false;
    this.retryTimer = 0;
    this.watchdog = 0;
    this.lastError = "";
    this.status = null;
    this.slow = false;
    // Counters for the page: bytes handed to the socket (in all connections) and
    // connections made.
    this.bytesQueued = 0;
    this.bytesQueuedBefore = 0; // by the connections before this one
    this.connections = 0;
    this.recorderMime = "";
    this.onOnline = () => {
      if (this.state === "reconnecting") this.#retryNow();
    };
    window.addEventListener("online", this.onOnline);
  }

  /** Bytes that have left the browser (queued minus what the socket still holds). */
  get bytesSent() {
    const held = this.ws && this.ws.readyState === WebSocket.OPEN ? this.ws.bufferedAmount : 0;
    return Math.max(0, this.bytesQueued - held);
  }

  start() {
    this.#connect();
  }

  /** End the broadcast now: tell the server, close, stop recording. */
  stop() {
    if (this.state === "stopped" || this.state === "failed") return;
    this.#finish("stopped", "");
  }

  #setState(state, reason = "") {
    if (state === this.state && !reason) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, reason } }));
  }

  #finish(state, reason) {
    clearTimeout(this.retryTimer);
    clearTimeout(this.watchdog);
    window.removeEventListener("online", this.onOnline);
    const ws = this.ws;
    this.ws = null;
    this.#stopRecorder();
    if (ws) {
      if (state === "stopped" && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ type: "stop" }));
      }
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        ws.close(1000, state === "stopped" ? "stopped by the streamer" : "");
      }
    }
    this.#setSlow(false, "");
    this.#setState(state, reason);
  }

  #connect() {
    clearTimeout(this.retryTimer);
    this.#setState(this.everLive ? "reconnecting" : "connecting");
    this.connections += 1;
    this.lastError = "";
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.#finish("failed", `Cannot open the upload connection: ${err.message}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.#armWatchdog();
      let recorder;
      try {
        recorder = this.#newRecorder();
      } catch (err) {
        this.#finish("failed", `This browser could not start recording (${err.message}). Choose another video format under Advanced.`);
        return;
      }
      ws.send(JSON.stringify({ type: "start", mime: recorder.mimeType || this.mime, fps: this.fps }));
      this.bytesQueuedBefore = this.bytesQueued;
      this.recorder = recorder;
      recorder.ondataavailable = (ev) => this.#send(ws, recorder, ev.data);
      recorder.onerror = (ev) => {
        if (this.ws !== ws) return;
        console.warn("strom: recorder error", ev.error?.message ?? ev);
        ws.close(4000, "recorder failed"); // start over with a fresh recorder
      };
      recorder.start(TIMESLICE_MS);
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws || typeof ev.data !== "string") return;
      this.#armWatchdog();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.#onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.#stopRecorder();
      this.#onClose(ev);
    };
  }

  #newRecorder() {
    const options = {
      videoBitsPerSecond: this.videoBitsPerSecond,
      audioBitsPerSecond: this.audioBitsPerSecond,
      videoKeyFrameIntervalDuration: KEYFRAME_INTERVAL_MS, // Chromium; others ignore it
    };
    if (this.mime) options.mimeType = this.mime;
    const recorder = new MediaRecorder(this.stream, options);
    this.recorderMime = recorder.mimeType || this.mime;
    return recorder;
  }

  #stopRecorder() {
    const recorder = this.recorder;
    this.recorder = null;
    if (!recorder) return;
    recorder.ondataavailable = null;
    recorder.onerror = null;
    if (recorder.state !== "inactive") {
      try {
        recorder.stop();
      } catch {
        // already stopped by the browser (the tracks ended)
      }
    }
  }

  #send(ws, recorder, blob) {
    if (this.ws !== ws || this.recorder !== recorder || !blob || blob.size === 0) return;
    if (ws.readyState !== WebSocket.OPEN) return;
    for (let at = 0; at < blob.size; at += MAX_MESSAGE_BYTES) {
      ws.send(blob.size > MAX_MESSAGE_BYTES ? blob.slice(at, at + MAX_MESSAGE_BYTES) : blob);
    }
    this.bytesQueued += blob.size;
    this.#checkBacklog(ws);
  }

  #checkBacklog(ws) {
    const bytesPerSecond = (this.videoBitsPerSecond + this.audioBitsPerSecond) / 8;
    const backlog = ws.bufferedAmount;
    const seconds = backlog / bytesPerSecond;
    if (backlog > MIN_BUFFER_BYTES && seconds > STUCK_SECONDS) {
      // Start over at a lower bitrate: the server keeps the broadcast for us meanwhile.
      const lower = Math.max(this.minVideoBitsPerSecond, Math.round(this.videoBitsPerSecond / 2));
      const kbps = Math.round(lower / 1000);
      this.#setSlow(true, `Your upload could not keep up, so the quality went down to ${kbps} kb/s. Choose a lower resolution or quality next time.`);
      this.videoBitsPerSecond = lower;
      this.bytesQueued -= backlog; // never sent
      ws.close(4001, "upload backlog");
      return;
    }
    if (backlog > MIN_BUFFER_BYTES && seconds > SLOW_SECONDS) {
      this.#setSlow(true, `Your upload is not keeping up: viewers are ${Math.round(seconds)} s behind. Choose a lower resolution or quality.`);
    } else if (this.slow && seconds < 0.5) {
      this.#setSlow(false, "");
    }
  }

  #setSlow(slow, reason) {
    if (slow === this.slow && !reason) return;
    this.slow = slow;
    this.dispatchEvent(new CustomEvent("slow", { detail: { slow, reason } }));
  }

  #onMessage(msg) {
    if (msg.type === "ready") {
      this.attempt = 0;
      if (this.state !== "live") this.#setState("starting");
    } else if (msg.type === "status") {
      this.status = msg;
      const state = msg.state === "live" ? "live" : msg.state === "reconnecting" ? "reconnecting" : "starting";
      if (state === "live") {
        this.everLive = true;
        this.attempt = 0;
        this.busyRefusals = 0;
      }
      this.#setState(state);
      this.dispatchEvent(new CustomEvent("status", { detail: msg }));
    } else if (msg.type === "error" && typeof msg.reason === "string") {
      this.lastError = msg.reason;
    }
  }

  #onClose(ev) {
    clearTimeout(this.watchdog);
    if (this.state === "stopped" || this.state === "failed") return;
    const reason = this.lastError || ev.reason || "";
    // Our own channel still held by the socket that just dropped: wait and try again.
    // Stopped by an administrator is final, whatever words their reason has.
    const stopped = reason.startsWith("Stopped by an administrator");
    const busy = ev.code === 1008 && !stopped && /busy|already|in use|live/i.test(reason);
    // The server heard nothing for a while (a frozen tab, a stalled network): start over.
    const idle = ev.code === 1008 && /nothing received|idle|stalled/i.test(reason);
    if (busy && this.everLive && this.busyRefusals < BUSY_RETRIES) {
      this.busyRefusals += 1;
    } else if (FATAL_CLOSES.has(ev.code) && !idle) {
      this.#finish("failed", explainRefusal(ev.code, reason));
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.#setState("reconnecting", `Connection lost${reason ? ` (${reason})` : ""}. Trying again in ${Math.ceil(delay / 1000)} s…`);
    this.retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #retryNow() {
    clearTimeout(this.retryTimer);
    this.#connect();
  }

  // An open socket on which the server says nothing (it sends a status every second)
  // is dead in a way TCP has not noticed yet: drop it and connect again.
  #armWatchdog() {
    clearTimeout(this.watchdog);
    const ws = this.ws;
    this.watchdog = setTimeout(() => {
      if (this.ws === ws && ws) ws.close(4002, "server silent");
    }, SILENT_SERVER_MS);
  }
}

/** What to tell the streamer when the server refuses the upload. */
export function explainRefusal(code, reason) {
  const why = reason ? ` (${reason})` : "";
  if (code === 1003) {
    return `The server cannot use the video this browser records${why}. Choose another video format under Advanced, or use another browser.`;
  }
  if (code === 1009) {
    return `The server refused the stream as too big or too fast${why}. Choose a lower resolution or quality.`;
  }
  if (/log ?in|auth|session|origin/i.test(reason)) {
    return `The server did not accept your login${why}. Reload the page (log in again if asked), then press Go live.`;
  }
  if (/busy|already|in use|live/i.test(reason)) {
    return `Your channel is already live from somewhere else${why}. Stop that stream first (OBS?), then press Go live.`;
  }
  return `The server ended the stream${why}.`;
}
