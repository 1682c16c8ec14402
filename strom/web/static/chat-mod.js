// The chat's moderation tools (owner, moderators, site admins): the menu of each message
// (delete, timeout, ban) and the panel (modes, blocked words, unban, moderators, clear
// chat, moderation log). Every change is a command on the chat socket
// (docs/chat-protocol.md); what it changed comes back to everyone as room events, so the
// controls show the room's state, not the click.

const MAX_WORDS = 200;
const MAX_WORD_CHARS = 50;
const CLEAR_ARM_MS = 4000;
const MENU_TIMEOUT_SECONDS = 600; // the menu's "Timeout 10 min"

function dateText(ms) {
  const at = new Date(ms);
  const today = new Date().toDateString() === at.toDateString();
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return today ? time : `${at.toLocaleDateString()} ${time}`;
}

export class ModerationPanel {
  constructor(chat, panel) {
    this.chat = chat;
    this.panel = panel;
    this.root = chat.root;
    this.toggle = this.root.querySelector('[data-chat-action="toggle-mod"]');
    this.status = panel.querySelector('[data-chat-role="mod-status"]');
    this.words = panel.querySelector('[data-chat-role="words"]');
    this.logList = panel.querySelector('[data-chat-role="modlog"]');
    this.clearButton = panel.querySelector('[data-chat-action="clear"]');
    this.mode = (name) => panel.querySelector(`[data-mode="${name}"]`);
    this.clearTimer = 0;
    this.waiting = null; // what a "Saving…" waits for: "modes", "words", "unban", "mod"
    this.bind();
  }

  bind() {
    this.toggle.addEventListener("click", () => (this.isOpen() ? this.close() : this.open()));
    this.panel.querySelector('[data-chat-action="close-mod"]').addEventListener("click", () => this.close());
    this.panel.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") this.close();
    });
    this.panel.addEventListener("change", (ev) => {
      if (ev.target.dataset.mode) this.modeChanged(ev.target.dataset.mode);
    });
    this.panel.querySelector('[data-chat-role="words-form"]').addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.saveWords();
    });
    const unban = this.panel.querySelector('[data-chat-role="unban-form"]');
    unban.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const user = unban.elements.user.value.trim().replace(/^@/, "");
      if (user && this.chat.command({ type: "unban", user })) {
        this.busy("unban", `Unbanning ${user}…`);
        unban.reset();
      }
    });
    const mods = this.panel.querySelector('[data-chat-role="mods-form"]');
    mods.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const type = ev.submitter?.value === "unmod" ? "unmod" : "mod";
      const user = mods.elements.user.value.trim().replace(/^@/, "");
      if (user && this.chat.command({ type, user })) {
        this.busy("mod", type === "mod" ? `Appointing ${user}…` : `Removing ${user}…`);
        mods.reset();
      }
    });
    this.clearButton.addEventListener("click", () => this.clear());
    this.panel.querySelector('[data-chat-action="modlog"]').addEventListener("click", () => this.requestLog());
  }

  isOpen() {
    return !this.panel.hidden;
  }

  open() {
    this.chat.chatters.close();
    this.panel.hidden = false;
    this.toggle.setAttribute("aria-expanded", "true");
    this.chat.menu.close();
    this.requestLog();
    this.panel.querySelector("input, button, textarea")?.focus();
  }

  close() {
    if (!this.isOpen()) return;
    this.panel.hidden = true;
    this.toggle.setAttribute("aria-expanded", "false");
    this.toggle.focus();
  }

  say(text, kind) {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
    if (kind !== "busy") this.waiting = null;
  }

  busy(what, text) {
    this.say(text, "busy");
    this.waiting = what;
  }

  /** The room event that answers a command of ours arrived (or someone else's). */
  done(what, text) {
    if (this.waiting === what) this.say(text, "ok");
  }

  setPermissions(perm) {
    this.panel.dataset.owner = String(Boolean(perm.is_owner || perm.is_admin));
    if (!perm.can_moderate) this.panel.hidden = true;
  }

  // --- modes ------------------------------------------------------------------------------

  showModes(modes) {
    const slow = Number(modes.slow_mode) || 0;
    this.mode("slow_mode_on").checked = slow > 0;
    if (slow > 0) this.mode("slow_mode").value = String(slow);
    this.mode("followers_only").checked = Boolean(modes.followers_only);
    this.mode("followers_min_minutes").value = String(Number(modes.followers_min_minutes) || 0);
    this.mode("block_links").checked = Boolean(modes.block_links);
    this.mode("require_account").checked = Boolean(modes.require_account);
    this.done("modes", "Saved.");
  }

  modeChanged(name) {
    const seconds = Math.min(3600, Math.max(1, Math.round(Number(this.mode("slow_mode").value) || 30)));
    const minutes = Math.min(129600, Math.max(0, Math.round(Number(this.mode("followers_min_minutes").value) || 0)));
    const change = {
      slow_mode_on: () => ({ slow_mode: this.mode("slow_mode_on").checked ? seconds : 0 }),
      slow_mode: () => (this.mode("slow_mode_on").checked ? { slow_mode: seconds } : null),
      followers_only: () => ({ followers_only: this.mode("followers_only").checked, followers_min_minutes: minutes }),
      followers_min_minutes: () => ({ followers_min_minutes: minutes }),
      block_links: () => ({ block_links: this.mode("block_links").checked }),
      require_account: () => ({ require_account: this.mode("require_account").checked }),
    }[name]?.();
    if (change && this.chat.command({ type: "set_modes", ...change })) this.busy("modes", "Saving…");
  }

  // --- blocked words ----------------------------------------------------------------------

  showWords(words) {
    if (!Array.isArray(words)) return;
    const text = words.filter((w) => typeof w === "string").join("\n");
    if (document.activeElement !== this.words) this.words.value = text;
    this.done("words", `Saved: ${words.length} blocked ${words.length === 1 ? "word" : "words"}.`);
  }

  saveWords() {
    const seen = new Set();
    const words = [];
    for (const raw of this.words.value.split("\n")) {
      const word = raw.trim().replace(/\s+/g, " ");
      if (!word || seen.has(word.toLowerCase())) continue;
      if (word.length > MAX_WORD_CHARS) {
        this.say(`“${word.slice(0, 20)}…” is longer than ${MAX_WORD_CHARS} characters.`, "error");
        return;
      }
      seen.add(word.toLowerCase());
      words.push(word);
    }
    if (words.length > MAX_WORDS) {
      this.say(`At most ${MAX_WORDS} blocked words.`, "error");
      return;
    }
    this.words.blur();
    if (this.chat.command({ type: "set_blocked_words", words })) this.busy("words", "Saving…");
  }

  // --- clear chat: a second click within a few seconds confirms ---------------------------

  clear() {
    const button = this.clearButton;
    if (!button.dataset.armed) {
      button.dataset.armed = "true";
      button.textContent = "Click again to clear everyone's chat";
      this.clearTimer = setTimeout(() => this.disarmClear(), CLEAR_ARM_MS);
      return;
    }
    this.disarmClear();
    if (this.chat.command({ type: "clear" })) this.say("Chat cleared.", "ok");
  }

  disarmClear() {
    clearTimeout(this.clearTimer);
    delete this.clearButton.dataset.armed;
    this.clearButton.textContent = "Clear chat";
  }

  // --- moderation log ---------------------------------------------------------------------

  requestLog() {
    this.chat.command({ type: "modlog", limit: 50 });
  }

  showLog(entries) {
    if (!Array.isArray(entries)) return;
    const items = entries.map((e) => {
      const li = document.createElement("li");
      const time = document.createElement("time");
      time.textContent = Number.isFinite(e.at) ? dateText(e.at) : "";
      const actor = document.createElement("strong");
      actor.textContent = String(e.actor ?? "");
      const what = [" ", String(e.action ?? "")];
      if (e.target) {
        const target = document.createElement("strong");
        target.textContent = String(e.target);
        what.push(" ", target);
      }
      if (e.detail) what.push(` (${e.detail})`);
      li.append(time, " ", actor, ...what);
      return li;
    });
    if (items.length === 0) {
      const li = document.createElement("li");
      li.className = "subtle";
      li.textContent = "Nothing yet.";
      items.push(li);
    }
    this.logList.replaceChildren(...items);
  }
}

/** The "⋯" menu of a chat line: delete it, time its author out, ban them (asks twice). */
export class MessageMenu {
  constructor(chat, menu) {
    this.chat = chat;
    this.menu = menu;
    this.title = menu.querySelector('[data-chat-role="menu-title"]');
    this.ban = menu.querySelector('[data-chat-action="ban"]');
    this.line = null;
    this.button = null;
    chat.log.addEventListener("click", (ev) => {
      const button = ev.target.closest('[data-chat-action="menu"]');
      if (button) this.open(button.closest(".chat-line"), button);
    });
    menu.addEventListener("click", (ev) => {
      const button = ev.target.closest("button[data-chat-action]");
      if (button) this.act(button.dataset.chatAction, button);
    });
    document.addEventListener("click", (ev) => {
      if (!menu.hidden && !menu.contains(ev.target) && !ev.target.closest('[data-chat-action="menu"]')) {
        this.close();
      }
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && !menu.hidden) this.close(true);
    });
  }

  user() {
    return this.line?.querySelector(".chat-user")?.textContent ?? "";
  }

  open(line, button) {
    if (!line || this.chat.root.dataset.canModerate !== "true") return;
    if (this.line === line && !this.menu.hidden) {
      this.close(true);
      return;
    }
    this.close();
    this.line = line;
    this.button = button;
    this.title.textContent = this.user();
    this.ban.textContent = `Ban ${this.user()}`;
    delete this.ban.dataset.armed;
    // Under the "⋯" button, or above it when there is no room below.
    const body = this.menu.parentElement.getBoundingClientRect();
    const at = button.getBoundingClientRect();
    this.menu.hidden = false;
    const height = this.menu.offsetHeight;
    const below = at.bottom - body.top + 4;
    const top = below + height > body.height ? Math.max(0, at.top - body.top - height - 4) : below;
    this.menu.style.top = `${top}px`;
    button.setAttribute("aria-expanded", "true");
    this.menu.querySelector("button")?.focus();
  }

  close(refocus = false) {
    if (this.menu.hidden) return;
    this.menu.hidden = true;
    this.button?.setAttribute("aria-expanded", "false");
    if (refocus && this.button?.isConnected) this.button.focus();
    this.line = null;
  }

  /** Its line was deleted (or its author's lines removed): nothing left to act on. */
  lineGone() {
    if (this.line && !this.line.isConnected) this.close();
  }

  act(action, button) {
    const user = this.user();
    if (!this.line) return;
    if (action === "delete") this.chat.command({ type: "delete", id: Number(this.line.dataset.id) });
    else if (action === "timeout") this.chat.command({ type: "timeout", user, seconds: MENU_TIMEOUT_SECONDS });
    else if (action === "ban") {
      if (!button.dataset.armed) {
        button.dataset.armed = "true";
        button.textContent = `Click again to ban ${user}`;
        return;
      }
      this.chat.command({ type: "ban", user });
    } else return;
    this.close(true);
  }
}
