// The channel page's tabs on narrow screens: Chat, About and Past broadcasts share the
// space under the player, one at a time (the page's data-tab names it; strom.css shows
// the one chosen only below 900 px, where the tabs show). Without this script, or on a
// wide screen, every panel shows. ← and → move between the tabs (WAI-ARIA tabs pattern).

function boot() {
  const page = document.querySelector("[data-channel-page]");
  const bar = page?.querySelector("[data-channel-tabs]");
  if (!page || !bar) return;
  const tabs = [...bar.querySelectorAll('[role="tab"]')];
  const choose = (tab, focus = false) => {
    page.dataset.tab = tab.dataset.tab;
    for (const t of tabs) {
      const chosen = t === tab;
      t.setAttribute("aria-selected", String(chosen));
      t.tabIndex = chosen ? 0 : -1;
    }
    if (focus) tab.focus();
  };
  bar.addEventListener("click", (ev) => {
    const tab = ev.target.closest('[role="tab"]');
    if (tab) choose(tab);
  });
  bar.addEventListener("keydown", (ev) => {
    const at = tabs.indexOf(document.activeElement);
    if (at < 0 || (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight")) return;
    ev.preventDefault();
    const step = ev.key === "ArrowLeft" ? -1 : 1;
    choose(tabs[(at + step + tabs.length) % tabs.length], true);
  });
  choose(tabs.find((t) => t.dataset.tab === page.dataset.tab) ?? tabs[0]);
  bar.hidden = false;
  window.stromTabs = Object.freeze({ show: (name) => {
    const tab = tabs.find((t) => t.dataset.tab === name);
    if (tab) choose(tab);
  } });
}

boot();
