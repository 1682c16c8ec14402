// The site header on phones: one row with the logo, a search button and a menu button;
// the search box and the links (site and account) open under it. strom.css folds the
// header only once this script has marked it (.site-header.foldable), so without the
// script every link stays on screen. Escape closes what is open.

function boot() {
  const header = document.querySelector(".site-header");
  if (!header) return;
  const toggles = [...header.querySelectorAll("[data-header-toggle]")];
  const open = (what) => {
    const now = header.dataset.open === what ? "" : what;
    header.dataset.open = now;
    for (const t of toggles) t.setAttribute("aria-expanded", String(t.dataset.headerToggle === now));
    if (now === "search") header.querySelector(".site-search input")?.focus();
  };
  for (const t of toggles) {
    t.hidden = false;
    t.addEventListener("click", () => open(t.dataset.headerToggle));
  }
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && header.dataset.open) open(header.dataset.open);
  });
  header.dataset.open = "";
  header.classList.add("foldable");
}

boot();
