// The chat overlay for OBS browser sources ([data-chat-overlay] in overlay.html): the
// channel's chat socket, read-only. New messages appear at the bottom in large text and
// fade out data-fade seconds later (0: they stay until newer ones push them out);
// deletions, bans, timeouts and clears remove lines as in the chat panel. Lines are built
// by chat-text.js, with textContent only.

import { messageLine } from "./chat-text.js";

const MAX_LINES = 40;
const FADE_MS = 1000; // the fade-out's own length (strom.css .overlay-gone)
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30_000;

class Overlay {
  constructor(root) {
    this.root = root;
    const fade = Number(root.dataset.fade);
    this.fadeMs = Number.isFinite(fade) && fade > 0 ? fade * 1000 : 0;
    this.attempt = 0;
    this.state = "connecting";
  }

  connect() {
    const url = new URL(this.root.dataset.wsPath, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url.href);
    ws.addEventListener("message", (ev) => this.receive(ev.data));
    ws.addEventListener("close", () => {
      this.state = "reconnecting";
      const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.attempt);
      this.attempt += 1;
      setTimeout(() => this.connect(), delay);
    });
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame?.type === "welcome") {
      this.attempt = 0;
      this.state = "open";
    } else if (frame?.type === "batch" && Array.isArray(frame.events)) {
      for (const event of frame.events) this.event(event);
    }
  }

  event(e) {
    if (!e || typeof e !== "object") return;
    if (e.type === "message") this.message(e);
    else if (e.type === "delete") this.root.querySelector(`.chat-line[data-id="${Number(e.id)}"]`)?.remove();
    else if (e.type === "clear") this.root.replaceChildren();
    else if ((e.type === "ban" || e.type === "timeout") && typeof e.user === "string") {
      const key = e.user.toLowerCase();
      for (const line of [...this.root.children]) if (line.dataset.user === key) line.remove();
    }
  }

  message(e) {
    if (typeof e.user !== "string" || typeof e.text !== "string" || !Number.isInteger(e.id)) return;
    const line = messageLine(e, null);
    this.root.append(line);
    while (this.root.childElementCount > MAX_LINES) this.root.firstElementChild.remove();
    if (this.fadeMs) {
      setTimeout(() => {
        line.classList.add("overlay-gone");
        setTimeout(() => line.remove(), FADE_MS);
      }, this.fadeMs);
    }
  }
}

const root = document.querySelector("[data-chat-overlay]");
if (root) {
  const overlay = new Overlay(root);
  overlay.connect();
  window.stromOverlay = Object.freeze({
    get state() {
      return overlay.state;
    },
  });
}
