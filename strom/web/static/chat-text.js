// Chat lines for the chat panel (chat.js): a message as DOM nodes built with textContent
// and DOM APIs only, never from HTML. Links become plain anchors (rel="nofollow noopener
// noreferrer", a new tab) and are never embedded; @mentions are marked, the reader's own
// name more strongly. The regular expression for mentions is the server's
// (strom/chat/protocol.py), so what is highlighted is what the server counted. Emote
// words become emoji (chat-emotes.js); every line starts with its time, a <time> element.

import { emoteNodes } from "./chat-emotes.js";

const TOKEN = /(https?:\/\/[^\s]+)|(?<![\w@])@([A-Za-z0-9_][A-Za-z0-9_-]{0,31})/gi;
// Punctuation after a link belongs to the sentence, not to the address.
const LINK_TAIL = /[.,!?:;'")\]}>]+$/;
const COLORS = 10;
const BADGES = { owner: "Streamer", moderator: "Mod", admin: "Admin" };

/** A stable colour class for a name: the same name looks the same for everyone. */
export function colorClass(name) {
  let hash = 0;
  for (const ch of name.toLowerCase()) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `chat-color-${hash % COLORS}`;
}

function link(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return null;
  const a = document.createElement("a");
  a.className = "chat-link";
  a.href = parsed.href;
  a.rel = "nofollow noopener noreferrer";
  a.target = "_blank";
  a.textContent = url;
  return a;
}

/** The nodes of a message's text for a reader called `me` (null: nobody yet). */
export function textNodes(text, me) {
  const nodes = [];
  const mine = me ? me.toLowerCase() : null;
  let at = 0;
  for (const match of text.matchAll(TOKEN)) {
    let [whole, url, mention] = match;
    let end = match.index + whole.length;
    let node = null;
    if (url) {
      const tail = url.match(LINK_TAIL);
      if (tail) {
        url = url.slice(0, -tail[0].length);
        end -= tail[0].length;
      }
      node = url.length > 8 ? link(url) : null;
    } else if (mention) {
      const name = mention.replace(/-+$/, "");
      end = match.index + 1 + name.length;
      node = document.createElement("span");
      node.className = name.toLowerCase() === mine ? "chat-mention chat-mention-me" : "chat-mention";
      node.textContent = `@${name}`;
    }
    if (!node) continue;
    if (match.index > at) nodes.push(...emoteNodes(text.slice(at, match.index)));
    nodes.push(node);
    at = end;
  }
  if (at < text.length) nodes.push(...emoteNodes(text.slice(at)));
  return nodes;
}

/**
 * A message's time: <time datetime="2026-12-07T17:05:09.000Z" title="(date and time)">,
 * its text "17:05" drawn by the style sheet (data-time), so a line's text is its message.
 */
export function timeOf(ms) {
  const at = new Date(ms);
  const time = document.createElement("time");
  time.className = "chat-time";
  time.dateTime = at.toISOString();
  time.dataset.time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  time.title = at.toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
  return time;
}

function badge(kind) {
  const span = document.createElement("span");
  span.className = `chat-badge chat-badge-${kind}`;
  span.textContent = BADGES[kind];
  return span;
}

/** The sender's small avatar (64 px, drawn at 20); hidden if it does not load. */
function avatarOf(url) {
  const img = document.createElement("img");
  img.className = "chat-avatar";
  img.alt = "";
  img.width = 20;
  img.height = 20;
  img.decoding = "async";
  img.addEventListener("error", () => img.remove(), { once: true });
  img.src = url;
  return img;
}

/**
 * A <li> for a `message` event. data-id, data-user (lower case) and data-badges let the
 * panel find lines to remove and decide which ones a moderator may act on.
 */
export function messageLine(event, me, { pending = false } = {}) {
  const li = document.createElement("li");
  li.className = "chat-line";
  if (pending) li.classList.add("chat-line-pending");
  if (Number.isInteger(event.id)) li.dataset.id = String(event.id);
  li.dataset.user = event.user.toLowerCase();
  const badges = Array.isArray(event.badges) ? event.badges.filter((b) => b in BADGES) : [];
  li.dataset.badges = badges.join(" ");
  const own = me !== null && event.user.toLowerCase() === me.toLowerCase();
  if (own) li.dataset.own = "true";
  const mentions = Array.isArray(event.mentions) ? event.mentions : [];
  if (!own && me && mentions.some((m) => typeof m === "string" && m.toLowerCase() === me.toLowerCase())) {
    li.classList.add("chat-line-mention");
  }
  if (Number.isFinite(event.at) && event.at > 0) li.append(timeOf(event.at));

  if (!event.guest && typeof event.avatar === "string" && event.avatar.startsWith("/avatars/")) {
    li.append(avatarOf(event.avatar), " ");
  }
  for (const kind of badges) li.append(badge(kind), " ");
  const user = document.createElement("span");
  user.className = `chat-user ${colorClass(event.user)}`;
  if (event.guest) user.classList.add("chat-user-guest");
  user.textContent = event.user;
  const shown = typeof event.display_name === "string" ? event.display_name.trim() : "";
  if (shown && !event.guest && shown !== event.user) {
    // The display name first; the username after it, for moderators and mentions.
    const display = document.createElement("span");
    display.className = `chat-display ${colorClass(event.user)}`;
    display.textContent = shown;
    user.classList.add("chat-user-login");
    li.append(display, " ");
  }
  const body = document.createElement("span");
  body.className = "chat-text";
  body.append(...textNodes(event.text, me));
  li.append(user, ": ", body);

  if (!pending && Number.isInteger(event.id)) {
    const menu = document.createElement("button");
    menu.type = "button";
    menu.className = "chat-line-menu";
    menu.dataset.chatAction = "menu";
    menu.setAttribute("aria-haspopup", "menu");
    menu.setAttribute("aria-label", `Moderate ${event.user}'s message`);
    menu.textContent = "⋯";
    li.append(menu);
  }
  return li;
}

/** A line from the room rather than a person: "bob was timed out for 10 min." */
export function systemLine(text) {
  const li = document.createElement("li");
  li.className = "chat-line chat-line-system";
  li.textContent = text;
  return li;
}

/** 75000 → "1 min 15 s", for countdowns; with `round`, 594000 → "10 min", for news. */
export function formatLeft(ms, { round = false } = {}) {
  let total = Math.max(1, Math.ceil(ms / 1000));
  if (round && total >= 120) total = Math.round(total / 60) * 60;
  if (total < 120) return `${total} s`;
  if (total < 3600) {
    const s = total % 60;
    return `${Math.floor(total / 60)} min${s ? ` ${s} s` : ""}`;
  }
  if (total < 172_800) {
    const m = Math.floor((total % 3600) / 60);
    return `${Math.floor(total / 3600)} h${m ? ` ${m} min` : ""}`;
  }
  return `${Math.round(total / 86400)} days`;
}

/** "slow mode: wait" → "Slow mode: wait"; sentences for people from the server's reasons. */
export function sentence(text) {
  const s = String(text ?? "").trim();
  if (!s) return "";
  const first = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}
