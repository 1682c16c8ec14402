// The channel page's past broadcasts around vod.js: the "Watching: <title> · <length>" line
// under the player (with Download MP4 and Back to live / Close), the message for a
// recording that is not there, and the list brought up to date from the page's own HTML,
// so the server's text of each entry (date, length, peak viewers) is the only one.

const MISSING_TITLE = "This recording does not exist or was deleted.";

export class VodLabel {
  constructor(page, list, player) {
    this.page = page;
    this.list = list;
    this.player = player; // #player: the message over the video goes there
    this.box = page.querySelector('[data-role="vod-now"]');
    this.title = this.box?.querySelector('[data-role="vod-now-title"]');
    this.length = this.box?.querySelector('[data-role="vod-now-length"]');
    this.download = this.box?.querySelector('[data-role="vod-now-download"]');
    this.close = this.box?.querySelector('[data-role="vod-now-close"]');
    this.missingNote = this.box?.querySelector('[data-role="vod-missing"]');
    this.overlay = null;
  }

  onClose(fn) {
    this.close?.addEventListener("click", fn);
  }

  link(id) {
    return this.list.querySelector(`a[data-vod-id="${CSS.escape(String(id))}"]`);
  }

  /** Say what plays: a listed recording, or the live broadcast rewound (dvr). */
  show(id, dvr) {
    if (!this.box) return;
    this.clearMissing();
    const link = this.link(id);
    let title = "the live broadcast, rewound";
    let length = "";
    let mp4 = "";
    if (!dvr && link) {
      title = link.querySelector('[data-role="vod-title"]')?.textContent ?? "";
      length = link.dataset.length ?? "";
      mp4 = link.dataset.mp4 ?? "";
    } else if (!dvr) {
      title = `the recording ${id}`;
    }
    this.title.textContent = title;
    this.length.textContent = length ? ` · ${length}` : "";
    this.download.hidden = !mp4;
    if (mp4) this.download.setAttribute("href", mp4);
    this.box.querySelector(".vod-now-text").hidden = false;
    this.updateClose();
    this.box.hidden = false;
  }

  updateClose() {
    if (this.close) this.close.textContent = this.page.dataset.live === "true" ? "Back to live" : "Close";
  }

  /** The recording asked for is not there (a 404, or an id no one knows). */
  missing() {
    if (!this.box) return;
    this.box.querySelector(".vod-now-text").hidden = true;
    this.download.hidden = true;
    this.missingNote.hidden = false;
    this.updateClose();
    this.box.hidden = false;
    if (!this.overlay) {
      this.overlay = document.createElement("div");
      this.overlay.className = "card card-vod-missing";
      this.overlay.setAttribute("role", "alert");
      const p = document.createElement("p");
      p.className = "card-title";
      p.textContent = MISSING_TITLE;
      this.overlay.append(p);
      this.player.append(this.overlay);
    }
  }

  clearMissing() {
    this.overlay?.remove();
    this.overlay = null;
    if (this.missingNote) this.missingNote.hidden = true;
  }

  hide() {
    this.clearMissing();
    if (this.box) this.box.hidden = true;
  }
}

/** Bring the list up to date from this page as the server draws it now. */
export async function refreshList(list) {
  const response = await fetch(window.location.pathname, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  const section = fresh.querySelector("[data-vod-list]");
  if (!section) return;
  const current = list.querySelector('.vod-list, [data-role="vod-empty"]');
  const replacement = section.querySelector('.vod-list, [data-role="vod-empty"]');
  if (!replacement) return;
  const adopted = document.importNode(replacement, true);
  if (current) current.replaceWith(adopted);
  else list.append(adopted);
}

/** Bring the player into view (a recording picked far down the page plays up there). */
export function scrollToPlayer(player) {
  const top = player.getBoundingClientRect().top;
  if (top >= 0 && top < window.innerHeight / 3) return;
  const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  player.scrollIntoView({ block: "start", behavior: smooth ? "smooth" : "auto" });
}
