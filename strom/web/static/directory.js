// The directory (/, /categories/{slug}, /search): keeps the live cards current without a
// reload (stream-cards.js). When the site's channel events say a channel went live, is
// reconnecting, ended or changed its title, it asks /api/v1/streams again (same sort,
// category and search as the page) and updates viewer counts, titles, categories, badges
// thumbnails and avatars in place, adds channels that went live and removes the ones that ended;
// viewer counts it takes from the events themselves. While that socket is down it asks
// every few seconds instead (every minute while it is up). Uptimes tick every second
// (live-clock.js).

import { fetchJson, Poller } from "./api.js";
import { formatCount, plural } from "./live-clock.js";
import { CardGrid, followChannels, watchAvatars } from "./stream-cards.js";

class Directory {
  constructor(root) {
    this.root = root;
    this.cards = new CardGrid(
      root.querySelector('[data-role="streams"]'),
      document.getElementById("stream-card-template"),
    );
    this.empty = root.querySelector('[data-role="empty"]');
    this.poller = new Poller(() => this.refresh(), root.dataset.refreshMs);
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
    const shown = this.cards.show(data.streams);
    this.showTotal(Number.isInteger(data.total) ? Math.max(data.total, shown) : shown);
  }

  showTotal(count) {
    const total = this.root.querySelector('[data-role="total"]');
    const label = this.root.querySelector('[data-role="total-label"]');
    if (total) total.textContent = formatCount(count);
    if (label) label.textContent = plural(count, "channel");
    this.cards.grid.hidden = count === 0;
    if (this.empty) this.empty.hidden = count > 0;
  }
}

function boot() {
  const root = document.querySelector("[data-directory]");
  if (!root) return;
  const directory = new Directory(root);
  watchAvatars(root);
  followChannels(directory.poller, root.dataset.refreshMs, {
    count: (fields) => directory.cards.count(fields),
    shownState: (name) => directory.cards.shownState(name),
  });
  window.stromPage = Object.freeze({ refresh: () => directory.poller.now() });
}

boot();
