// Strom's page clocks: uptimes and "3 hours ago" texts that tick without a reload.
//
// Loaded by every page (base.html). Any element with data-since="<unix seconds>" shows the
// time since then as an uptime (1:02:03); any element with data-ago="<unix seconds or ISO
// date>" shows it as a relative time ("5 minutes ago"). Times come from the server's clock:
// the page modules pass their fetch responses to noteServerDate() so a visitor whose
// computer clock is off still sees the right uptime.

const TICK_MS = 1000;
const SKEW_IGNORE_MS = 2000; // the Date header has one-second resolution

let skewMs = 0;

/** Learn the server's clock from a fetch Response's Date header. */
export function noteServerDate(response) {
  const header = response?.headers?.get("Date");
  const serverMs = header ? Date.parse(header) : NaN;
  if (!Number.isFinite(serverMs)) return;
  const skew = serverMs - Date.now();
  skewMs = Math.abs(skew) > SKEW_IGNORE_MS ? skew : 0;
}

/** The server's idea of now, in unix seconds. */
export function serverNow() {
  return (Date.now() + skewMs) / 1000;
}

/** Unix seconds from a number, a numeric string or an ISO date; NaN when there is none. */
export function toUnixSeconds(value) {
  if (typeof value === "number") return value;
  if (typeof value !== "string" || value.trim() === "") return NaN;
  const number = Number(value);
  if (Number.isFinite(number)) return number;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms / 1000 : NaN;
}

/** 3725 → "1:02:05"; 65 → "0:01:05". */
export function formatDuration(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}

const AGO_UNITS = [
  ["year", 365 * 86400],
  ["month", 30 * 86400],
  ["week", 7 * 86400],
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
];

/** Seconds in the past → "just now", "1 minute ago", "3 days ago". */
export function formatAgo(seconds) {
  if (!Number.isFinite(seconds)) return "";
  for (const [unit, size] of AGO_UNITS) {
    const count = Math.floor(seconds / size);
    if (count >= 1) return `${count} ${unit}${count === 1 ? "" : "s"} ago`;
  }
  return "just now";
}

/** 1234 → "1,234". */
export function formatCount(value) {
  const n = Number(value);
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–";
}

/** "viewer" / "viewers" for a count. */
export function plural(count, word) {
  return Number(count) === 1 ? word : `${word}s`;
}

/** Redraw every data-since and data-ago element under root. */
export function updateClocks(root = document) {
  const now = serverNow();
  for (const el of root.querySelectorAll("[data-since]")) {
    const since = toUnixSeconds(el.dataset.since);
    const text = Number.isFinite(since) ? formatDuration(now - since) : "";
    if (el.textContent !== text) el.textContent = text;
  }
  for (const el of root.querySelectorAll("[data-ago]")) {
    const at = toUnixSeconds(el.dataset.ago);
    if (!Number.isFinite(at)) continue;
    const text = formatAgo(now - at);
    if (el.textContent !== text) el.textContent = text;
    if (!el.title) el.title = new Date(at * 1000).toLocaleString();
  }
}

updateClocks();
setInterval(() => updateClocks(), TICK_MS);
