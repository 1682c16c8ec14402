// The channel page (/{username}): keeps the title, description, category, viewer count,
// uptime and state (live, reconnecting, offline) current without a reload, as the site's
// channel events push them (events.js); while that socket is down, it polls
// /api/v1/channels/{username} every few seconds instead (every minute while it is up). It runs the Follow button (POST / DELETE
// /api/v1/channels/{username}/follow). The player (player.js) looks after the video,
// chat.js the chat. Text goes in with textContent only.

import { ApiError, fetchJson, Poller } from "./api.js";
import { channelEvents } from "./events.js";
import { formatCount, plural, updateClocks } from "./live-clock.js";

const PUSHED_POLL_MS = 60_000; // with the events pushed, polling is only a safety net

class ChannelPage {
  constructor(root) {
    this.root = root;
    this.username = root.dataset.username;
    this.poller = new Poller(() => this.refresh(), root.dataset.refreshMs);
  }

  async refresh() {
    const data = await fetchJson(new URL(this.root.dataset.api, window.location.href).href);
    if (data && typeof data === "object") this.show(data);
  }

  role(name) {
    return this.root.querySelector(`[data-role="${name}"]`);
  }

  text(name, value) {
    const el = this.role(name);
    if (el && el.textContent !== value) el.textContent = value;
  }

  show(channel) {
    if (typeof channel.title === "string") {
      this.text("title", channel.title);
      document.title = `${this.username}${channel.title ? ` – ${channel.title}` : ""} · Strom`;
    }
    if (typeof channel.description === "string") this.text("description", channel.description);
    if ("category" in channel) this.showCategory(channel.category);
    if (typeof channel.live === "boolean") this.root.dataset.live = String(channel.live);
    if (["live", "reconnecting", "offline"].includes(channel.state)) this.root.dataset.state = channel.state;
    if (typeof channel.viewers === "number") {
      this.text("viewers", formatCount(channel.viewers));
      this.text("viewers-label", plural(channel.viewers, "viewer"));
    }
    if (typeof channel.follower_count === "number") {
      this.text("followers", formatCount(channel.follower_count));
      this.text("followers-label", plural(channel.follower_count, "follower"));
    }
    const uptime = this.role("uptime");
    if (uptime && "started_at" in channel) uptime.dataset.since = channel.started_at ?? "";
    this.showLastLive(channel.last_broadcast);
    updateClocks(this.root);
  }

  showCategory(category) {
    const link = this.role("category");
    if (!link) return;
    const slug = category?.slug;
    if (typeof slug === "string" && slug) {
      link.setAttribute("href", `/categories/${encodeURIComponent(slug)}`);
      if (link.textContent !== String(category.name ?? slug)) link.textContent = String(category.name ?? slug);
      link.hidden = false;
    } else {
      link.removeAttribute("href");
      link.textContent = "";
      link.hidden = true;
    }
  }

  // The offline card's "Last live 3 hours ago" (when the broadcast ends while we watch).
  showLastLive(last) {
    const line = this.role("last-live");
    const at = last?.ended_at ?? last?.started_at;
    if (at === undefined || at === null) return;
    if (line) {
      line.querySelector("[data-ago]").dataset.ago = String(at);
      return;
    }
    const card = this.root.querySelector("#player .card-offline");
    const hint = card?.querySelector(".card-hint");
    if (!card) return;
    const p = document.createElement("p");
    p.className = "card-hint";
    p.dataset.role = "last-live";
    const time = document.createElement("time");
    time.dataset.ago = String(at);
    p.append("Last live ", time);
    card.insertBefore(p, hint ?? null);
  }
}

// Follow / Unfollow. Logged-out visitors get a plain link to /login?next= instead.
class FollowButton {
  constructor(button, page) {
    this.button = button;
    this.page = page;
    this.label = button.querySelector('[data-role="follow-label"]');
    this.status = page.role("follow-status");
    this.busy = false;
    button.addEventListener("click", () => this.toggle());
    button.addEventListener("pointerenter", () => this.hover(true));
    button.addEventListener("pointerleave", () => this.hover(false));
  }

  get following() {
    return this.button.getAttribute("aria-pressed") === "true";
  }

  show(following) {
    this.button.setAttribute("aria-pressed", String(following));
    this.label.textContent = following ? "Following" : "Follow";
  }

  // "Following" reads "Unfollow" under the pointer, as on Twitch.
  hover(inside) {
    if (this.following && !this.busy) this.label.textContent = inside ? "Unfollow" : "Following";
  }

  async toggle() {
    if (this.busy) return;
    this.busy = true;
    this.button.disabled = true;
    if (this.status) this.status.textContent = "";
    const follow = !this.following;
    try {
      const data = await fetchJson(this.button.dataset.followApi, { method: follow ? "POST" : "DELETE" });
      this.show(Boolean(data?.following));
      if (typeof data?.followers === "number") this.page.show({ follower_count: data.followers });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname)}`);
        return;
      }
      if (this.status) this.status.textContent = err instanceof ApiError ? err.message : "Could not reach the server";
    } finally {
      this.busy = false;
      this.button.disabled = false;
    }
  }
}

function boot() {
  const root = document.querySelector("[data-channel-page]");
  if (!root) return;
  const page = new ChannelPage(root);
  page.poller.start();
  channelEvents.listen({
    open: (again) => {
      page.poller.every(PUSHED_POLL_MS);
      if (again) page.poller.now(); // what changed while the socket was away
    },
    close: () => {
      page.poller.every(root.dataset.refreshMs);
      page.poller.now();
    },
    channel: (fields) => {
      if (fields.username.toLowerCase() === page.username.toLowerCase()) page.show(fields);
    },
  });
  const follow = root.querySelector("button[data-follow]");
  if (follow) new FollowButton(follow, page);
  window.stromPage = Object.freeze({ refresh: () => page.poller.now() });
}

boot();
