// The clip page (/clip/{slug}): the share link's copy button, and for those allowed the
// title field (its creator) and the delete button (creator, streamer, administrators).

import { fetchJson } from "./api.js";
import { copy } from "./dashboard.js";

function boot() {
  const page = document.querySelector("[data-clip-page]");
  if (!page) return;
  const status = page.querySelector('[data-role="clip-status"]');
  const say = (text) => {
    if (status) status.textContent = text;
  };
  page.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-copy]");
    if (button) copy(button);
  });
  const form = page.querySelector('[data-role="clip-rename"]');
  form?.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const title = form.elements.title.value;
    try {
      const clip = await fetchJson(page.dataset.api, { method: "PATCH", body: { title } });
      page.querySelector('[data-role="clip-title"]').textContent = clip.title || "Clip";
      document.title = `${clip.title || "Clip"} – ${clip.channel} · Strom`;
      say("Title saved.");
    } catch (err) {
      say(`Could not save the title: ${err.message}`);
    }
  });
  const remove = page.querySelector('[data-role="clip-delete"]');
  remove?.addEventListener("click", async () => {
    if (!window.confirm("Delete this clip for everyone?")) return;
    try {
      await fetchJson(page.dataset.api, { method: "DELETE" });
      window.location.assign(page.dataset.channelUrl);
    } catch (err) {
      say(`Could not delete the clip: ${err.message}`);
    }
  });
}

boot();
