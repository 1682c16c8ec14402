// Go-live notices for logged-in visitors, on every page (base.html loads this module).
//
// It asks /api/v1/me/following which channels the visitor follows and which of them are
// live; then the site's channel events (events.js) say when one goes live, and a channel
// that this page saw offline and now sees live gets a small toast ("alice is live:
// <title>", linking to the channel). While that socket is down it asks every 15 s instead
// (and every few minutes anyway, for follows made in other tabs). The first answer is
// only the starting point: channels that were live already when the page opened are not
// announced. Text goes in with textContent only.
//
// Tests call window.stromNotify.poll() instead of waiting for the timer.

import { fetchJson, Poller } from "./api.js";
import { channelEvents } from "./events.js";

const API = "/api/v1/me/following";
const POLL_MS = 15_000;
const PUSHED_POLL_MS = 300_000; // with events pushed: only to learn of new follows
const TOAST_MS = 12_000;
const MAX_TOASTS = 3;
const USERNAME = /^[A-Za-z0-9_]{1,64}$/;

class GoLiveNotifier {
  constructor() {
    this.live = null; // usernames seen live at the last answer; null before the first
    this.followed = new Set(); // every followed username, at the last answer
    this.region = null;
    this.poller = new Poller(() => this.poll(), POLL_MS);
  }

  async poll() {
    let data;
    try {
      data = await fetchJson(API);
    } catch (err) {
      if (err?.status === 401) {
        this.poller.stop(); // logged out (in another tab, say): stop asking
        return;
      }
      throw err;
    }
    const channels = Array.isArray(data?.channels) ? data.channels : [];
    this.followed = new Set(channels.map((c) => c?.username).filter((n) => typeof n === "string"));
    const live = new Map();
    for (const channel of channels) {
      if (channel?.live === true && typeof channel.username === "string" && USERNAME.test(channel.username)) {
        live.set(channel.username, channel);
      }
    }
    const before = this.live;
    this.live = new Set(live.keys());
    if (before === null) return;
    for (const [name, channel] of live) {
      if (!before.has(name) && !this.watching(name)) this.toast(channel);
    }
  }

  // A channel event (events.js): a followed channel going live gets its toast at once.
  pushed(fields) {
    const name = fields.username;
    if (this.live === null || typeof fields.state !== "string" || !this.followed.has(name)) return;
    if (fields.state === "offline") {
      this.live.delete(name);
    } else if (!this.live.has(name)) {
      this.live.add(name);
      // A broadcast first seen reconnecting was on already: no notice.
      if (fields.state === "live" && !this.watching(name)) this.toast(fields);
    }
  }

  // No notice for the channel this page already shows.
  watching(name) {
    return window.location.pathname.toLowerCase() === `/${name.toLowerCase()}`;
  }

  ensureRegion() {
    if (this.region?.isConnected) return this.region;
    const region = document.createElement("div");
    region.className = "toasts";
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    region.dataset.role = "toasts";
    document.body.append(region);
    this.region = region;
    return region;
  }

  toast(channel) {
    const region = this.ensureRegion();
    while (region.children.length >= MAX_TOASTS) region.firstElementChild.remove();
    const name = channel.username;
    const toast = document.createElement("div");
    toast.className = "toast";
    toast.dataset.username = name;

    const link = document.createElement("a");
    link.className = "toast-link";
    link.href = `/${encodeURIComponent(name)}`;
    const avatar = document.createElement("span");
    avatar.className = "avatar avatar-xs";
    avatar.setAttribute("aria-hidden", "true");
    avatar.textContent = name.slice(0, 1).toUpperCase();
    const text = document.createElement("span");
    text.className = "toast-text";
    const who = document.createElement("strong");
    who.textContent = name;
    const title = typeof channel.title === "string" && channel.title ? channel.title : "";
    text.append(who, title ? " is live: " : " is live", title);
    const badge = document.createElement("span");
    badge.className = "badge badge-live";
    badge.textContent = "LIVE";
    link.append(avatar, text, badge);

    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => toast.remove());

    toast.append(link, close);
    region.append(toast);
    let timer = setTimeout(() => toast.remove(), TOAST_MS);
    // Hovering keeps it: someone reaching for the link should not see it vanish.
    toast.addEventListener("pointerenter", () => clearTimeout(timer));
    toast.addEventListener("pointerleave", () => {
      timer = setTimeout(() => toast.remove(), TOAST_MS / 2);
    });
  }
}

const notifier = new GoLiveNotifier();
notifier.poller.now();
channelEvents.listen({
  open: (again) => {
    notifier.poller.every(PUSHED_POLL_MS);
    if (again) notifier.poller.now(); // what changed while the socket was away
  },
  close: () => {
    notifier.poller.every(POLL_MS);
    notifier.poller.now();
  },
  channel: (fields) => notifier.pushed(fields),
});
window.stromNotify = Object.freeze({ poll: () => notifier.poller.now() });
