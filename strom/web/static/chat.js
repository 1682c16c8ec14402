// The chat panel of a channel page ([data-chat] in templates/_chat.html).
//
// One WebSocket to /chat/{channel}/ws speaking the protocol of docs/chat-protocol.md: a
// `welcome` (history, modes, permissions), then `batch`es of room events, and replies for
// this member alone (`permissions`, `error`, `modlog`...). A message typed here shows at
// once as a pending line and is replaced by the server's copy (matched by its nonce);
// a refusal removes it and says why next to the input. The socket reconnects with
// exponential backoff. Everything from the network goes into the page with textContent
// and DOM APIs (chat-text.js); the moderation tools live in chat-mod.js, slash commands
// in chat-commands.js, the chatter list in chat-chatters.js, emotes in chat-emotes.js.
//
// The banner above the input follows the server: a `permissions` event (timed out, banned,
// unbanned) replaces whatever an earlier refusal said about the member's standing, and a
// timeout's banner counts down and goes away by itself when it ends.
//
// Tests read window.stromChat.state ("connecting", "open", "reconnecting") and
// window.stromChat.permissions (the last `permissions` the server sent).

import { formatCount, plural, serverNow } from "./live-clock.js";
import { MessageMenu, ModerationPanel } from "./chat-mod.js";
import { ChatterList } from "./chat-chatters.js";
import { slashCommand } from "./chat-commands.js";
import { EmotePicker } from "./chat-emotes.js";
import { formatLeft, messageLine, sentence, systemLine } from "./chat-text.js";

const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30_000;
const MAX_LINES = 300;
const STATUS_MS = 8000; // how long a refusal without a countdown stays
const STICK_PX = 48; // this close to the bottom, the log follows new messages
const LIKES_PER_SECOND = 5; // the server's default; more are dropped there anyway
const MAX_HEARTS = 6;

const CANNOT_CHAT = {
  banned: "You are banned from this chat.",
  suspended: "Your account is suspended.",
  account_required: "Log in to chat in this channel.",
};

// Refusals about who the member is rather than what they wrote: the next `permissions`
// event is the truth about them, so it replaces such a refusal's banner.
const STANDING_CODES = new Set(["timed_out", "banned", "suspended", "account_required"]);

const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

function isName(value) {
  return typeof value === "string" && value.length > 0 && value.length <= 64;
}

class Chat {
  constructor(root) {
    this.root = root;
    const part = (name) => root.querySelector(`[data-chat-role="${name}"]`);
    this.log = part("log");
    this.form = part("form");
    this.input = part("input");
    this.sendButton = part("send");
    this.statusEl = part("status");
    this.connection = part("connection");
    this.more = root.querySelector('[data-chat-action="scroll"]');
    this.likeButton = part("like");
    this.likesEl = part("likes");
    this.hearts = part("hearts");
    this.viewersEl = part("viewers");
    this.modesEl = part("modes");
    this.identity = part("identity");
    this.page = root.closest("[data-channel-page]");

    this.ws = null;
    this.welcomed = false; // the current socket got its welcome
    this.state = "connecting";
    this.attempt = 0;
    this.reconnectTimer = 0;
    this.perm = null;
    this.modes = {};
    this.maxChars = 500;
    this.pending = new Map(); // nonce → pending line
    this.nonceBase = Math.random().toString(36).slice(2, 8);
    this.nonceCount = 0;
    this.likesTotal = 0;
    this.bursts = 0;
    this.likeTimes = [];
    this.transient = null; // a refusal: {text(now) → string|null, link?}
    this.persistent = null; // a standing restriction (timeout, ban...)
    this.statusTicker = 0;
    this.mod = new ModerationPanel(this, root.querySelector('[data-chat-role="mod"]'));
    this.menu = new MessageMenu(this, part("menu"));
    this.chatters = new ChatterList(this, part("chatters"));
    this.emotes = new EmotePicker(root.querySelector('[data-chat-action="emotes"]'), part("emotes"), this.input);
    this.bind();
  }

  bind() {
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });
    this.likeButton.addEventListener("click", () => this.like());
    this.more.addEventListener("click", () => this.scrollToEnd());
    this.log.addEventListener("scroll", () => {
      if (this.nearEnd()) this.more.hidden = true;
    });
    window.addEventListener("online", () => {
      if (this.ws === null) this.connect(); // back online: no need to wait out the backoff
    });
  }

  // --- the socket -----------------------------------------------------------------------

  connect() {
    clearTimeout(this.reconnectTimer);
    const url = new URL(this.root.dataset.wsPath, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url.href);
    this.ws = ws;
    this.welcomed = false;
    ws.addEventListener("message", (ev) => {
      if (this.ws === ws) this.receive(ev.data);
    });
    ws.addEventListener("close", (ev) => {
      if (this.ws === ws) this.closed(ev);
    });
  }

  setState(state, text = "") {
    this.state = state;
    this.root.dataset.state = state;
    this.connection.textContent = text;
    this.connection.hidden = state === "open";
    this.updateInput();
  }

  closed(ev) {
    this.ws = null;
    for (const line of this.pending.values()) line.remove();
    this.pending.clear();
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    const why = ev.reason ? `: ${ev.reason}` : "";
    const what = this.welcomed ? `Chat disconnected${why}` : `Cannot reach the chat${why}`;
    this.setState("reconnecting", `${what}. Trying again in ${Math.ceil(delay / 1000)} s…`);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.perm !== null;
  }

  send(command) {
    if (!this.isOpen()) return false;
    this.ws.send(JSON.stringify(command));
    return true;
  }

  nonce(kind) {
    this.nonceCount += 1;
    return `${kind}${this.nonceBase}${this.nonceCount}`;
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    const handler = frame && typeof frame === "object" ? FRAMES[frame.type] : undefined;
    if (handler) handler(this, frame);
  }

  welcome(frame) {
    this.attempt = 0;
    this.welcomed = true;
    const max = frame.limits?.max_chars;
    if (Number.isInteger(max) && max > 0) {
      this.maxChars = max;
      this.input.maxLength = max;
    }
    this.perm = frame.permissions ?? null;
    for (const line of [...this.log.children]) line.remove();
    for (const event of Array.isArray(frame.history) ? frame.history : []) this.message(event, false);
    this.modes = frame.modes ?? {};
    this.showViewers(frame.viewers);
    this.likesTotal = Number.isFinite(frame.likes) ? frame.likes : 0;
    this.likesEl.textContent = formatCount(this.likesTotal);
    this.permissions(this.perm);
    this.showModes();
    if (Array.isArray(frame.blocked_words)) this.mod.showWords(frame.blocked_words);
    this.setState("open");
    this.scrollToEnd();
  }

  // --- room events ------------------------------------------------------------------------

  batch(events) {
    if (!Array.isArray(events)) return;
    const stick = this.nearEnd();
    for (const event of events) {
      const handler = event && typeof event === "object" ? ROOM_EVENTS[event.type] : undefined;
      if (handler) handler(this, event);
    }
    this.trim();
    if (stick) this.scrollToEnd();
    else if (events.some((e) => e?.type === "message")) this.more.hidden = false;
  }

  me() {
    return this.perm && isName(this.perm.name) ? this.perm.name : null;
  }

  message(event, live = true) {
    if (!isName(event.user) || typeof event.text !== "string" || !Number.isInteger(event.id)) return;
    if (this.lineById(event.id)) return;
    const line = messageLine(event, this.me());
    const pending = live && typeof event.nonce === "string" && line.dataset.own ? this.pending.get(event.nonce) : null;
    if (pending) {
      pending.replaceWith(line);
      this.pending.delete(event.nonce);
    } else {
      this.log.append(line);
    }
  }

  lineById(id) {
    return this.log.querySelector(`.chat-line[data-id="${Number(id)}"]`);
  }

  removeLinesOf(user) {
    const key = user.toLowerCase();
    for (const line of [...this.log.children]) {
      if (line.dataset.user === key) line.remove();
    }
    this.menu.lineGone();
  }

  system(text) {
    this.log.append(systemLine(text));
  }

  restricted(event) {
    if (!isName(event.user)) return;
    this.removeLinesOf(event.user);
    if (event.type === "ban") {
      this.system(`${event.user} was banned.`);
    } else {
      const left = Number.isFinite(event.until) ? event.until - serverNow() * 1000 : 0;
      this.system(`${event.user} was timed out for ${formatLeft(left, { round: true })}.`);
    }
  }

  showModes() {
    const m = this.modes;
    const chips = [];
    if (m.slow_mode > 0) chips.push(`Slow mode: ${formatLeft(m.slow_mode * 1000)}`);
    if (m.followers_only) {
      chips.push(m.followers_min_minutes > 0 ? `Followers-only (${formatLeft(m.followers_min_minutes * 60_000)})` : "Followers-only");
    }
    if (m.block_links) chips.push("No links");
    if (m.require_account) chips.push("Accounts only");
    this.modesEl.replaceChildren(
      ...chips.map((text) => {
        const li = document.createElement("li");
        li.className = "chat-mode";
        li.textContent = text;
        return li;
      }),
    );
    this.modesEl.hidden = chips.length === 0;
    this.mod.showModes(m);
    this.updateInput();
  }

  showViewers(count) {
    if (!Number.isInteger(count) || count < 0) return;
    this.viewersEl.textContent = formatCount(count);
    // The channel page's own counter follows the pushed count between its polls.
    const viewers = this.page?.querySelector('[data-role="viewers"]');
    const label = this.page?.querySelector('[data-role="viewers-label"]');
    if (viewers) viewers.textContent = formatCount(count);
    if (label) label.textContent = plural(count, "viewer");
  }

  likes(event) {
    if (Number.isFinite(event.total)) this.likesTotal = event.total;
    else if (Number.isFinite(event.count)) this.likesTotal += event.count;
    this.likesEl.textContent = formatCount(this.likesTotal);
    if (Number.isInteger(event.count) && event.count > 0) this.burst(event.count);
  }

  // Everyone sees likes arrive: the button pops and a few hearts float up.
  burst(count) {
    const button = this.likeButton;
    button.classList.remove("chat-like-burst");
    void button.offsetWidth; // restart the animation
    button.classList.add("chat-like-burst");
    this.bursts += 1;
    button.dataset.bursts = String(this.bursts);
    if (reducedMotion.matches) return;
    for (let i = 0; i < Math.min(count, MAX_HEARTS); i++) {
      if (this.hearts.childElementCount >= MAX_HEARTS * 2) break;
      const heart = document.createElement("span");
      heart.className = `chat-heart chat-heart-${(this.bursts + i) % 4}`;
      const done = () => heart.remove();
      heart.addEventListener("animationend", done);
      setTimeout(done, 2500);
      this.hearts.append(heart);
    }
  }

  // --- what this member may do -----------------------------------------------------------

  permissions(perm) {
    if (!perm || typeof perm !== "object") return;
    const was = this.perm;
    this.perm = perm;
    if (was && was !== perm && !was.can_chat && ["banned", "timed_out"].includes(was.cannot_chat) && perm.can_chat) {
      this.system("You can chat again.");
    }
    const rank = perm.is_owner || perm.is_admin ? "owner" : perm.is_moderator ? "moderator" : "viewer";
    this.root.dataset.rank = rank;
    this.root.dataset.canModerate = String(Boolean(perm.can_moderate));
    if (!perm.can_moderate) this.menu.close();
    this.showIdentity();
    this.persistent = this.restriction(perm);
    if (this.transient?.standing) this.transient = null;
    this.renderStatus();
    this.mod.setPermissions(perm);
    this.updateInput();
  }

  showIdentity() {
    const perm = this.perm;
    const name = document.createElement("strong");
    name.textContent = perm.name;
    if (!perm.guest) {
      this.identity.replaceChildren("Chatting as ", name);
      return;
    }
    const login = document.createElement("a");
    login.href = this.root.dataset.loginUrl;
    this.leaveBy(login);
    login.textContent = "Log in";
    this.identity.title = `You chat as a guest, ${perm.name}: log in to use your own name`;
    this.identity.replaceChildren(name, " · ", login);
  }

  // In an embed (another site's frame) a link out of the chat opens a tab of its own.
  leaveBy(a) {
    const target = this.root.dataset.loginTarget;
    if (target) {
      a.target = target;
      a.rel = "noopener";
    }
  }

  restriction(perm) {
    if (perm.can_chat || !perm.cannot_chat) return null;
    if (perm.cannot_chat === "timed_out" && Number.isFinite(perm.muted_until)) {
      const until = perm.muted_until;
      return {
        text: (now) => (now < until ? `You are timed out for ${formatLeft(until - now)}.` : null),
        expired: () => this.permissions({ ...this.perm, can_chat: true, cannot_chat: null, muted_until: null }),
      };
    }
    const text = CANNOT_CHAT[perm.cannot_chat] ?? (sentence(perm.restriction_reason) || "You cannot chat here.");
    const link = perm.cannot_chat === "account_required" ? { href: this.root.dataset.loginUrl, text: "Log in" } : null;
    return { text: () => text, link };
  }

  // The input is off while the socket is down and when writing is refused for good (a
  // ban, guests not allowed); a timeout leaves it on and counts down next to it.
  updateInput() {
    const perm = this.perm;
    let off = null;
    if (this.state !== "open" || !perm) off = this.state === "reconnecting" ? "Reconnecting…" : "Connecting…";
    else if (!perm.can_chat && perm.cannot_chat !== "timed_out") off = CANNOT_CHAT[perm.cannot_chat] ?? "You cannot chat here.";
    this.input.disabled = off !== null;
    this.sendButton.disabled = off !== null;
    this.likeButton.disabled = this.state !== "open";
    this.emotes.button.disabled = off !== null;
    this.input.placeholder = off ?? this.hint();
  }

  hint() {
    const m = this.modes;
    const perm = this.perm;
    if (perm?.can_moderate) return "Send a message";
    if (m.followers_only && perm?.guest) return "Followers-only: log in and follow to chat";
    if (m.followers_only && perm?.followed_at == null) return "Followers-only: follow to chat";
    if (m.slow_mode > 0) return `Slow mode: one message every ${formatLeft(m.slow_mode * 1000)}`;
    return "Send a message";
  }

  // --- refusals and notices next to the input ---------------------------------------------

  error(frame) {
    const code = String(frame.code ?? "");
    const nonce = typeof frame.nonce === "string" ? frame.nonce : null;
    const line = nonce ? this.pending.get(nonce) : null;
    if (line) {
      this.pending.delete(nonce);
      line.remove();
      if (!this.input.value) this.input.value = line.dataset.text ?? "";
    }
    if (nonce?.startsWith("m") && this.mod.isOpen()) {
      this.mod.say(sentence(frame.reason), "error");
      return;
    }
    this.refusal(code, frame);
  }

  refusal(code, frame) {
    const now = serverNow() * 1000;
    const retry = Number.isFinite(frame.retry_after) ? frame.retry_after * 1000 : null;
    const until = code === "timed_out" && Number.isFinite(frame.until) ? frame.until : retry !== null ? now + retry : null;
    const countdowns = {
      timed_out: (left) => `You are timed out for ${formatLeft(left)}.`,
      slow_mode: (left) => `Slow mode: wait ${formatLeft(left)}.`,
      rate_limited: (left) => `You are sending messages too fast: wait ${formatLeft(left)}.`,
      followers_only: (left) => `Followers-only chat: you can write in ${formatLeft(left)}.`,
    };
    let text;
    if (until !== null && countdowns[code]) {
      const say = countdowns[code];
      text = (t) => (t < until ? say(until - t) : null);
    } else {
      const reason = sentence(frame.reason) || "The server refused that.";
      const end = now + STATUS_MS;
      text = (t) => (t < end ? reason : null);
    }
    const link = code === "account_required" ? { href: this.root.dataset.loginUrl, text: "Log in" } : null;
    this.transient = { text, link, standing: STANDING_CODES.has(code) };
    this.statusEl.dataset.code = code;
    this.renderStatus();
  }

  renderStatus() {
    const now = serverNow() * 1000;
    for (const slot of ["transient", "persistent"]) {
      const entry = this[slot];
      if (!entry) continue;
      const text = entry.text(now);
      if (text === null) {
        this[slot] = null;
        entry.expired?.();
        continue;
      }
      const parts = [text];
      if (entry.link) {
        const a = document.createElement("a");
        a.href = entry.link.href;
        this.leaveBy(a);
        a.textContent = entry.link.text;
        parts.push(" ", a);
      }
      if (this.statusEl.textContent !== parts.map((p) => (typeof p === "string" ? p : p.textContent)).join("")) {
        this.statusEl.replaceChildren(...parts);
      }
      this.statusEl.hidden = false;
      this.statusEl.dataset.kind = slot;
      if (!this.statusTicker) this.statusTicker = setInterval(() => this.renderStatus(), 1000);
      return;
    }
    this.statusEl.hidden = true;
    this.statusEl.replaceChildren();
    clearInterval(this.statusTicker);
    this.statusTicker = 0;
  }

  // --- sending ----------------------------------------------------------------------------

  submit() {
    const text = this.input.value.trim();
    if (!text || this.input.disabled) return;
    const slash = slashCommand(text, this.perm);
    if (slash) {
      this.slash(slash);
      return;
    }
    const nonce = this.nonce("c");
    if (!this.send({ type: "send", text, nonce })) {
      this.refusal("offline", { reason: "not connected to the chat; try again in a moment" });
      return;
    }
    this.input.value = "";
    const line = messageLine({ user: this.perm.name, guest: this.perm.guest, badges: [], text, mentions: [] }, this.me(), {
      pending: true,
    });
    line.dataset.text = text;
    this.pending.set(nonce, line);
    this.log.append(line);
    this.trim();
    this.scrollToEnd();
  }

  /** A slash command typed in the box: sent as its protocol command, or a note why not. */
  slash({ command, help, error }) {
    if (command) {
      if (this.command(command)) this.input.value = "";
      else this.refusal("offline", { reason: "not connected to the chat; try again in a moment" });
      return;
    }
    this.refusal(help ? "help" : "command", { reason: help ?? error });
  }

  like() {
    const now = performance.now();
    this.likeTimes = this.likeTimes.filter((t) => now - t < 1000);
    if (this.likeTimes.length >= LIKES_PER_SECOND) return;
    this.likeTimes.push(now);
    this.send({ type: "like" });
  }

  /** A moderation command; its refusal, if any, shows in the moderation panel (or next
   * to the input when the panel is closed). */
  command(fields) {
    const sent = this.send({ ...fields, nonce: this.nonce("m") });
    if (!sent && this.mod.isOpen()) this.mod.say("Not connected to the chat.", "error");
    return sent;
  }

  // --- the log ----------------------------------------------------------------------------

  nearEnd() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < STICK_PX;
  }

  scrollToEnd() {
    this.log.scrollTop = this.log.scrollHeight;
    this.more.hidden = true;
  }

  trim() {
    while (this.log.childElementCount > MAX_LINES) this.log.firstElementChild.remove();
  }
}

// Frames by type (dispatch table), then the events inside a batch.
const FRAMES = {
  welcome: (chat, f) => chat.welcome(f),
  batch: (chat, f) => chat.batch(f.events),
  permissions: (chat, f) => chat.permissions(f),
  error: (chat, f) => chat.error(f),
  blocked_words: (chat, f) => chat.mod.showWords(f.words),
  modlog: (chat, f) => chat.mod.showLog(f.entries),
  chatters: (chat, f) => chat.chatters.show(f),
};

const ROOM_EVENTS = {
  message: (chat, e) => chat.message(e),
  delete: (chat, e) => {
    chat.lineById(e.id)?.remove();
    chat.menu.lineGone();
  },
  clear: (chat) => {
    for (const line of [...chat.log.children]) line.remove();
    chat.menu.close();
    chat.system("The chat was cleared by a moderator.");
  },
  timeout: (chat, e) => chat.restricted(e),
  ban: (chat, e) => chat.restricted(e),
  unban: (chat, e) => {
    if (!chat.perm?.can_moderate || !isName(e.user)) return;
    chat.system(`${e.user} may chat again.`);
    chat.mod.done("unban", `${e.user} may chat again.`);
  },
  modes: (chat, e) => {
    chat.modes = e;
    chat.showModes();
  },
  moderator: (chat, e) => {
    if (!isName(e.user)) return;
    const text = e.added ? `${e.user} is now a moderator.` : `${e.user} is no longer a moderator.`;
    chat.system(text);
    chat.mod.done("mod", text);
  },
  likes: (chat, e) => chat.likes(e),
  viewers: (chat, e) => chat.showViewers(e.count),
};

function boot() {
  const root = document.querySelector("[data-chat]");
  if (!root) return;
  const chat = new Chat(root);
  chat.setState("connecting", "Connecting to chat…");
  chat.connect();
  window.stromChat = Object.freeze({
    get state() {
      return chat.state;
    },
    get permissions() {
      return chat.perm;
    },
  });
}

boot();
