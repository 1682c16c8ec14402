// Talking to Strom's JSON API from the pages: one fetch helper and a polite poller.

import { noteServerDate } from "./live-clock.js";

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The CSRF token of this page (base.html puts it in <meta name="csrf-token">). */
export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

/**
 * fetch() a JSON resource of this site. Resolves to the parsed body; rejects with an
 * ApiError carrying the server's `error` text (or the HTTP status) when it is not 2xx.
 */
export async function fetchJson(url, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store", signal };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  noteServerDate(response);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null; // an empty or non-JSON body (a proxy's error page)
  }
  if (!response.ok) {
    const text = typeof data?.error === "string" && data.error ? data.error : `HTTP ${response.status}`;
    throw new ApiError(text, response.status);
  }
  return data;
}

/**
 * Calls `task` every `intervalMs`, never two at once, and not while the tab is hidden
 * (it catches up at once when the tab is shown again). `task` errors are logged once per
 * run of failures, so a server restart does not flood the console.
 */
export class Poller {
  constructor(task, intervalMs) {
    this.task = task;
    this.intervalMs = Math.max(250, Number(intervalMs) || 5000);
    this.timer = 0;
    this.running = null;
    this.failing = false;
    this.stopped = false;
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && !this.stopped) this.now();
    });
  }

  start() {
    this.schedule();
    return this;
  }

  /** No more runs (a run in progress finishes). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Every `intervalMs` from now on (the next run too). */
  every(intervalMs) {
    this.intervalMs = Math.max(250, Number(intervalMs) || 5000);
    if (!this.running) this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      if (document.hidden) return; // visibilitychange restarts us
      this.now();
    }, this.intervalMs);
  }

  /** Run the task now (or join the run in progress); resolves when it is done. */
  now() {
    if (this.running) return this.running;
    clearTimeout(this.timer);
    this.running = (async () => {
      try {
        await this.task();
        this.failing = false;
      } catch (err) {
        if (!this.failing) console.warn("strom: refresh failed:", err.message ?? err);
        this.failing = true;
      } finally {
        this.running = null;
        this.schedule();
      }
    })();
    return this.running;
  }
}
