// The chatter list (the people button in the chat's header): who is in the chat, asked
// of the server with a `chatters` command each time the list opens or is refreshed. The
// streamer first, then admins and moderators, then everyone else; guests as a number.

import { formatCount, plural } from "./live-clock.js";
import { colorClass } from "./chat-text.js";

const GROUPS = [
  ["owner", "Streamer"],
  ["moderator", "Moderators"],
  ["viewer", "Everyone else"],
];

export class ChatterList {
  constructor(chat, panel) {
    this.chat = chat;
    this.panel = panel;
    this.toggle = chat.root.querySelector('[data-chat-action="toggle-chatters"]');
    this.body = panel.querySelector('[data-chat-role="chatters-list"]');
    this.summary = panel.querySelector('[data-chat-role="chatters-summary"]');
    this.toggle.addEventListener("click", () => (this.isOpen() ? this.close() : this.open()));
    panel.querySelector('[data-chat-action="close-chatters"]').addEventListener("click", () => this.close());
    panel.querySelector('[data-chat-action="refresh-chatters"]').addEventListener("click", () => this.request());
    panel.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") this.close();
    });
  }

  isOpen() {
    return !this.panel.hidden;
  }

  open() {
    this.chat.mod.close();
    this.panel.hidden = false;
    this.toggle.setAttribute("aria-expanded", "true");
    this.request();
    this.panel.querySelector("button")?.focus();
  }

  close() {
    if (!this.isOpen()) return;
    this.panel.hidden = true;
    this.toggle.setAttribute("aria-expanded", "false");
    this.toggle.focus();
  }

  request() {
    this.summary.textContent = this.chat.send({ type: "chatters" }) ? "Loading…" : "Not connected to the chat.";
  }

  show(frame) {
    const users = Array.isArray(frame.users) ? frame.users.filter((u) => typeof u?.name === "string") : [];
    const guests = Number.isInteger(frame.guests) ? frame.guests : 0;
    const total = Number.isInteger(frame.total) ? frame.total : users.length + guests;
    this.summary.textContent = `${formatCount(total)} in chat`;
    const groups = new Map(GROUPS.map(([key]) => [key, []]));
    for (const u of users) {
      const badges = Array.isArray(u.badges) ? u.badges : [];
      const key = badges.includes("owner") ? "owner" : badges.length ? "moderator" : "viewer";
      groups.get(key).push(u);
    }
    const parts = [];
    for (const [key, title] of GROUPS) {
      const members = groups.get(key);
      if (members.length === 0) continue;
      const h = document.createElement("h4");
      h.className = "chat-mod-label";
      h.textContent = title;
      const ul = document.createElement("ul");
      ul.className = "chat-chatters-names";
      ul.dataset.group = key;
      for (const u of members) {
        const li = document.createElement("li");
        li.className = `chat-user ${colorClass(u.name)}`;
        li.textContent = u.name;
        ul.append(li);
      }
      parts.push(h, ul);
    }
    const more = total - guests - users.length;
    if (frame.truncated && more > 0) parts.push(note(`and ${formatCount(more)} more`));
    if (guests > 0) parts.push(note(`and ${formatCount(guests)} ${plural(guests, "guest")}`, "guests"));
    if (parts.length === 0) parts.push(note("Nobody else is here yet."));
    this.body.replaceChildren(...parts);
  }
}

function note(text, role = "") {
  const p = document.createElement("p");
  p.className = "subtle";
  if (role) p.dataset.chatRole = role;
  p.textContent = text;
  return p;
}
