// Live channel cards, as the directory (directory.js) and the Following page
// (following.js) show them, kept current without a reload. Cards are clones of
// <template id="stream-card-template"> (templates/_stream_card.html draws the same card on
// the server), filled with textContent and attributes only: no HTML is ever built from
// data. A list follows the site's channel events (events.js): a pushed viewer count goes
// straight into its card; a state or title change makes the page read its list again.

import { channelEvents } from "./events.js";
import { formatCount, plural, updateClocks } from "./live-clock.js";

export const USERNAME = /^[A-Za-z0-9_]{1,64}$/;
// Another node of the site may learn of a change a heartbeat after the event: ask again.
const RECHECK_MS = 2500;
const PUSHED_POLL_MS = 60_000; // with the events pushed, polling is only a safety net

export class CardGrid {
  constructor(grid, template) {
    this.grid = grid;
    this.template = template;
  }

  card(name) {
    for (const card of this.grid.querySelectorAll(":scope > [data-username]")) {
      if (card.dataset.username === name) return card;
    }
    return null;
  }

  /** What the card of `name` shows ("live", "reconnecting"), or "offline" without one. */
  shownState(name) {
    return this.card(name)?.dataset.state ?? "offline";
  }

  /** Show `streams` (API entries) in their order, adding, updating and removing cards;
   * the number of cards shown. */
  show(streams) {
    const cards = new Map();
    for (const card of this.grid.querySelectorAll(":scope > [data-username]")) {
      cards.set(card.dataset.username, card);
    }
    const wanted = [];
    for (const stream of streams) {
      const name = stream?.username;
      if (typeof name !== "string" || !USERNAME.test(name) || wanted.some((c) => c.dataset.username === name)) continue;
      const card = cards.get(name) ?? this.template.content.firstElementChild.cloneNode(true);
      fillCard(card, stream);
      cards.delete(name);
      wanted.push(card);
    }
    for (const ended of cards.values()) ended.remove();
    // Keep the server's order, moving only what moved.
    wanted.forEach((card, index) => {
      const at = this.grid.children[index] ?? null;
      if (at !== card) this.grid.insertBefore(card, at);
    });
    updateClocks(this.grid);
    return wanted.length;
  }

  /** A pushed viewer count ({username, viewers}) into its card. */
  count(fields) {
    const card = this.card(fields.username);
    if (card && Number.isInteger(fields.viewers)) {
      setText(role(card, "viewers"), formatCount(fields.viewers));
      setText(role(card, "viewers-label"), plural(fields.viewers, "viewer"));
    }
  }
}

/**
 * Keep a page's list current: `poller` (api.js) reads it every `pollMs` while the event
 * socket is down and every minute while it is up; `changed(fields)` gets the events that
 * matter to the page (a channel event with a state, not a bare viewer count), `count`
 * the viewer counts. `shownState(name)` says what the page shows for a channel: when a
 * read still disagrees with the event, the page reads again a little later.
 */
export function followChannels(poller, pollMs, { wanted = () => true, count, shownState }) {
  const changed = async (fields) => {
    if (poller.running) await poller.running; // asked before this change
    await poller.now();
    if (shownState(fields.username) !== fields.state) setTimeout(() => poller.now(), RECHECK_MS);
  };
  poller.start();
  channelEvents.listen({
    open: (again) => {
      poller.every(PUSHED_POLL_MS);
      if (again) poller.now(); // what changed while the socket was away
    },
    close: () => {
      poller.every(pollMs);
      poller.now();
    },
    channel: (fields) => {
      if (!wanted(fields.username)) return;
      if (typeof fields.state === "string") changed(fields);
      else count?.(fields);
    },
  });
}

export function role(el, name) {
  return el.querySelector(`[data-role="${name}"]`);
}

export function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

function fillCard(card, stream) {
  const name = stream.username;
  const href = `/${encodeURIComponent(name)}`;
  card.dataset.username = name;
  for (const link of card.querySelectorAll("[data-link]")) {
    if (link.getAttribute("href") !== href) link.setAttribute("href", href);
  }
  const initial = name.slice(0, 1).toUpperCase();
  setText(role(card, "avatar"), initial);
  setText(role(card, "thumb-initial"), initial);
  setText(role(card, "username"), name);
  const title = typeof stream.title === "string" ? stream.title : "";
  setText(role(card, "title"), title);
  const titleLink = role(card, "title")?.closest(".stream-title");
  if (titleLink) titleLink.hidden = !title; // no title: the name and category say it

  const reconnecting = stream.state === "reconnecting";
  card.dataset.state = reconnecting ? "reconnecting" : "live";
  const badge = role(card, "state-badge");
  if (badge) {
    setText(badge, reconnecting ? "RECONNECTING" : "LIVE");
    badge.classList.toggle("badge-live", !reconnecting);
    badge.classList.toggle("badge-reconnecting", reconnecting);
  }

  const category = role(card, "category");
  const slug = stream.category?.slug;
  if (category && typeof slug === "string" && slug) {
    category.setAttribute("href", `/categories/${encodeURIComponent(slug)}`);
    setText(category, String(stream.category.name ?? slug));
    category.hidden = false;
  } else if (category) {
    category.removeAttribute("href");
    setText(category, "");
    category.hidden = true;
  }

  const room = role(card, "room");
  if (room) room.hidden = stream.room !== true;
  setText(role(card, "viewers"), formatCount(stream.viewers ?? 0));
  setText(role(card, "viewers-label"), plural(stream.viewers ?? 0, "viewer"));
  const uptime = role(card, "uptime");
  if (uptime) uptime.dataset.since = stream.started_at ?? "";
  showThumbnail(role(card, "thumbnail"), stream.thumbnail_url);
  showAvatar(card, stream.avatar_url);
}

// The streamer's avatar, or the letter tile when they have none (or it fails to load).
function showAvatar(card, url) {
  const img = role(card, "avatar-image");
  const initial = role(card, "avatar");
  if (!img || !initial) return;
  const ok = typeof url === "string" && url.startsWith("/avatars/");
  if (ok) {
    if (img.getAttribute("src") !== url) img.setAttribute("src", url); // as the server draws it
  } else {
    img.removeAttribute("src");
  }
  img.hidden = !ok;
  initial.hidden = ok;
}

// An avatar that does not load (removed since the page was drawn): the letter instead.
function avatarFailed(event) {
  const img = event.target;
  if (!(img instanceof HTMLImageElement) || img.dataset.role !== "avatar-image") return;
  img.hidden = true;
  const initial = img.parentElement?.querySelector('[data-role="avatar"]');
  if (initial) initial.hidden = false;
}

// Cards under ``root`` whose avatar fails (now or later) show their letter instead.
export function watchAvatars(root) {
  root.addEventListener("error", avatarFailed, true);
  for (const img of root.querySelectorAll('img[data-role="avatar-image"]')) {
    if (img.complete && img.getAttribute("src") && img.naturalWidth === 0) avatarFailed({ target: img });
  }
}

// A new thumbnail is loaded off-screen first, so the card never flashes empty.
function showThumbnail(img, url) {
  if (!img) return;
  if (typeof url !== "string" || !url) {
    img.hidden = true;
    img.removeAttribute("src");
    return;
  }
  const absolute = new URL(url, window.location.href).href;
  if (img.src === absolute || img.dataset.loading === absolute) return;
  img.dataset.loading = absolute;
  const next = new Image();
  next.onload = () => {
    if (img.dataset.loading !== absolute) return;
    img.src = absolute;
    img.hidden = false;
    delete img.dataset.loading;
  };
  next.onerror = () => {
    if (img.dataset.loading === absolute) delete img.dataset.loading;
  };
  next.src = absolute;
}
