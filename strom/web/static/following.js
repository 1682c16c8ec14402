// The Following page (/following): keeps the followed channels current without a reload.
// When the site's channel events (events.js) say a followed channel went live, is
// reconnecting, ended or changed its title, it asks /api/v1/me/following again and moves
// the channel between the live cards (stream-cards.js, as the directory draws them) and
// the offline list; viewer counts it takes from the events themselves. While that socket
// is down it asks every 15 s instead. Rows are clones of <template id="channel-row-template">
// filled with textContent and attributes only.
//
// Tests call window.stromPage.refresh() instead of waiting for the timer.

import { fetchJson, Poller } from "./api.js";
import { formatCount, plural, updateClocks } from "./live-clock.js";
import { CardGrid, followChannels, role, setText, USERNAME, watchAvatars } from "./stream-cards.js";

class Following {
  constructor(root) {
    this.root = root;
    this.cards = new CardGrid(role(root, "streams"), document.getElementById("stream-card-template"));
    this.rows = role(root, "offline");
    this.rowTemplate = document.getElementById("channel-row-template");
    this.poller = new Poller(() => this.refresh(), root.dataset.refreshMs);
    // Whom the page lists: the events of other channels are none of its business.
    this.followed = new Set(
      [...root.querySelectorAll("[data-username]")].map((el) => el.dataset.username),
    );
  }

  async refresh() {
    let data;
    try {
      data = await fetchJson(new URL(this.root.dataset.api, window.location.href).href);
    } catch (err) {
      if (err?.status === 401) {
        this.poller.stop(); // logged out (in another tab, say): stop asking
        return;
      }
      throw err;
    }
    if (!Array.isArray(data?.channels)) throw new Error("unexpected /api/v1/me/following answer");
    const channels = data.channels.filter((c) => typeof c?.username === "string" && USERNAME.test(c.username));
    this.followed = new Set(channels.map((c) => c.username));
    const live = this.cards.show(channels.filter((c) => c.live === true));
    const offline = this.showOffline(channels.filter((c) => c.live !== true));
    this.showCounts(live, live + offline);
  }

  showOffline(channels) {
    const rows = new Map();
    for (const row of this.rows.querySelectorAll(":scope > [data-username]")) {
      rows.set(row.dataset.username, row);
    }
    channels.forEach((channel, index) => {
      const row = rows.get(channel.username) ?? this.rowTemplate.content.firstElementChild.cloneNode(true);
      rows.delete(channel.username);
      fillRow(row, channel);
      const at = this.rows.children[index] ?? null;
      if (at !== row) this.rows.insertBefore(row, at);
    });
    for (const gone of rows.values()) gone.remove();
    updateClocks(this.rows);
    return channels.length;
  }

  showCounts(live, total) {
    setText(role(this.root, "live-count"), formatCount(live));
    setText(role(this.root, "total"), formatCount(total));
    setText(role(this.root, "total-label"), plural(total, "channel"));
    role(this.root, "counts").hidden = total === 0;
    role(this.root, "intro").hidden = total > 0;
    role(this.root, "empty").hidden = total > 0;
    role(this.root, "live-section").hidden = live === 0;
    role(this.root, "offline-section").hidden = live === total;
  }
}

function fillRow(row, channel) {
  const name = channel.username;
  row.dataset.username = name;
  const link = row.querySelector("a");
  const href = `/${encodeURIComponent(name)}`;
  if (link && link.getAttribute("href") !== href) link.setAttribute("href", href);
  setText(role(row, "avatar"), name.slice(0, 1).toUpperCase());
  setText(role(row, "username"), name);
  setText(role(row, "title"), typeof channel.title === "string" ? channel.title : "");
  const when = role(row, "when");
  if (!when) return;
  const at = Number.isFinite(channel.last_live_at) ? String(channel.last_live_at) : "";
  const time = when.querySelector("time");
  if (!at) {
    setText(when, "Not live yet");
  } else if (time?.dataset.ago !== at) {
    const ago = document.createElement("time");
    ago.dataset.ago = at;
    ago.textContent = "recently";
    when.replaceChildren("Last live ", ago);
  }
}

function boot() {
  const root = document.querySelector("[data-following]");
  if (!root) return;
  const page = new Following(root);
  watchAvatars(root);
  followChannels(page.poller, root.dataset.refreshMs, {
    wanted: (name) => page.followed.has(name),
    count: (fields) => page.cards.count(fields),
    shownState: (name) => page.cards.shownState(name),
  });
  window.stromPage = Object.freeze({ refresh: () => page.poller.now() });
}

boot();
