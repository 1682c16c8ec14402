// The site's channel events: GET /events/ws, a WebSocket on which the server says what
// changes on any channel as it happens ({"type":"channel","channel":{...}}: its state,
// title, category and viewers; docs/channel-events.md). One socket per page, shared by
// every module that listens (channel.js, directory.js, notify.js). It reconnects by
// itself, waiting longer after each failure. Listeners are told when it opens (poll
// rarely from then on; `again` when it opens after a drop: read what may have changed
// meanwhile) and when it closes (poll as before).
//
// Tests read window.stromEvents.open.

const PATH = "/events/ws";
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;
const USERNAME = /^[A-Za-z0-9_]{1,64}$/;

class ChannelEvents {
  constructor() {
    this.listeners = new Set();
    this.ws = null;
    this.open = false;
    this.delay = RETRY_MIN_MS;
    this.timer = 0;
    this.opened = false; // it was open once: an open after that may have missed events
  }

  /**
   * `listener` has any of: open(again), close(), channel(fields). Returns a function that
   * stops listening. The socket opens with the first listener.
   */
  listen(listener) {
    this.listeners.add(listener);
    if (this.open) call(listener, "open", false);
    else if (!this.ws && !this.timer && typeof WebSocket === "function") this.connect();
    return () => this.listeners.delete(listener);
  }

  connect() {
    this.timer = 0;
    const url = new URL(PATH, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(url.href);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.open = true;
      this.delay = RETRY_MIN_MS;
      this.tell("open", this.opened);
      this.opened = true;
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      const fields = msg?.channel;
      if (msg?.type !== "channel" || typeof fields?.username !== "string") return;
      if (!USERNAME.test(fields.username)) return;
      this.tell("channel", fields);
    };
    ws.onclose = () => {
      const wasOpen = this.open;
      this.open = false;
      this.ws = null;
      if (wasOpen) this.tell("close");
      this.retry();
    };
  }

  retry() {
    const wait = this.delay * (0.8 + Math.random() * 0.4);
    this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
    this.timer = setTimeout(() => this.connect(), wait);
  }

  tell(what, arg) {
    for (const listener of this.listeners) call(listener, what, arg);
  }
}

// One listener's mistake must not keep the event from the others.
function call(listener, what, arg) {
  try {
    listener[what]?.(arg);
  } catch (err) {
    console.warn(`strom: channel event listener failed (${what}):`, err);
  }
}

export const channelEvents = new ChannelEvents();

window.stromEvents = Object.freeze({
  get open() {
    return channelEvents.open;
  },
});
