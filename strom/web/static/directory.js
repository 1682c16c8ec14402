// The directory (/, /categories/{slug}, /search): keeps the live cards current without a
// reload. When the site's channel events (events.js) say a channel went live, is
// reconnecting, ended or changed its title, it asks /api/v1/streams again (same sort,
// category and search as the page) and updates viewer counts, titles, categories, badges
// thumbnails and avatars in place, adds channels that went live and removes the ones that ended;
// viewer counts it takes from the events themselves. While that socket is down it asks
// every few seconds instead (every minute while it is up). Uptimes tick every second (live-clock.js). Cards are clones
// of <template id="stream-card-template">, filled with textContent and attributes only:
// no HTML is ever built from data.

import { fetchJson, Poller } from "./api.js";
import { channelEvents } from "./events.js";
import { formatCount, plural, updateClocks } from "./live-clock.js";

const USERNAME = /^[A-Za-z0-9_]{1,64}$/;
// Another node of the site may learn of a change a heartbeat after the event: ask again.
const RECHECK_MS = 2500;
const PUSHED_POLL_MS = 60_000; // with the events pushed, polling is only a safety net

class Directory {
  constructor(root) {
    this.root = root;
    this.grid = root.querySelector('[data-role="streams"]');
    this.empty = root.querySelector('[data-role="empty"]');
    this.template = document.getElementById("stream-card-template");
    this.poller = new Poller(() => this.refresh(), root.dataset.refreshMs);
  }

  card(name) {
    for (const card of this.grid.querySelectorAll(":scope > [data-username]")) {
      if (card.dataset.username === name) return card;
    }
    return null;
  }

  // A pushed channel event: a count goes straight into its card; anything else is read
  // again with the page's own sort and filters.
  async changed(fields) {
    const card = this.card(fields.username);
    if (typeof fields.state !== "string") {
      if (card && Number.isInteger(fields.viewers)) {
        setText(role(card, "viewers"), formatCount(fields.viewers));
        setText(role(card, "viewers-label"), plural(fields.viewers, "viewer"));
      }
      return;
    }
    if (this.poller.running) await this.poller.running; // asked before this change
    await this.poller.now();
    const listed = this.card(fields.username);
    const agrees = listed ? listed.dataset.state === fields.state : fields.state === "offline";
    if (!agrees) setTimeout(() => this.poller.now(), RECHECK_MS);
  }

  apiUrl() {
    const url = new URL(this.root.dataset.api, window.location.href);
    for (const key of ["sort", "category", "q"]) {
      const value = this.root.dataset[key];
      if (value) url.searchParams.set(key, value);
    }
    return url.href;
  }

  async refresh() {
    const data = await fetchJson(this.apiUrl());
    if (!Array.isArray(data?.streams)) throw new Error("unexpected /api/v1/streams answer");
    this.show(data.streams, data.total);
  }

  show(streams, total) {
    const cards = new Map();
    for (const card of this.grid.querySelectorAll(":scope > [data-username]")) {
      cards.set(card.dataset.username, card);
    }
    const wanted = [];
    const seen = new Set();
    for (const stream of streams) {
      const name = stream?.username;
      if (typeof name !== "string" || !USERNAME.test(name) || seen.has(name)) continue;
      seen.add(name);
      const card = cards.get(name) ?? this.newCard();
      fillCard(card, stream);
      cards.delete(name);
      wanted.push(card);
    }
    for (const ended of cards.values()) ended.remove();
    // Keep the server's order (by viewers or category), moving only what moved.
    wanted.forEach((card, index) => {
      const at = this.grid.children[index] ?? null;
      if (at !== card) this.grid.insertBefore(card, at);
    });
    updateClocks(this.grid);
    this.showTotal(Number.isInteger(total) ? Math.max(total, wanted.length) : wanted.length);
  }

  showTotal(count) {
    const total = this.root.querySelector('[data-role="total"]');
    const label = this.root.querySelector('[data-role="total-label"]');
    if (total) total.textContent = formatCount(count);
    if (label) label.textContent = plural(count, "channel");
    this.grid.hidden = count === 0;
    if (this.empty) this.empty.hidden = count > 0;
  }

  newCard() {
    return this.template.content.firstElementChild.cloneNode(true);
  }
}

function role(card, name) {
  return card.querySelector(`[data-role="${name}"]`);
}

function setText(el, text) {
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

function boot() {
  const root = document.querySelector("[data-directory]");
  if (!root) return;
  const directory = new Directory(root);
  root.addEventListener("error", avatarFailed, true);
  for (const img of root.querySelectorAll('img[data-role="avatar-image"]')) {
    if (img.complete && img.getAttribute("src") && img.naturalWidth === 0) avatarFailed({ target: img });
  }
  directory.poller.start();
  channelEvents.listen({
    open: (again) => {
      directory.poller.every(PUSHED_POLL_MS);
      if (again) directory.poller.now(); // what changed while the socket was away
    },
    close: () => {
      directory.poller.every(root.dataset.refreshMs);
      directory.poller.now();
    },
    channel: (fields) => directory.changed(fields),
  });
  window.stromPage = Object.freeze({ refresh: () => directory.poller.now() });
}

boot();
