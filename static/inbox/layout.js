// Narrow screens (phones, portrait tablets) show one pane at a time: list → thread → customer
// card. The pane shown is `data-pane` on .panes (mobile.css reads it); going deeper adds a
// history entry, so the phone's own back gesture returns to the list as the back button does.
// Also keeps the page exactly as tall as the visible viewport, so the reply box stays above
// the on-screen keyboard.

const DEPTH = { list: 0, thread: 1, card: 2 };
const narrow = window.matchMedia("(max-width: 899.98px)");
const panes = document.querySelector(".panes");

function show(name, { push = true } = {}) {
  const current = panes.dataset.pane || "list";
  panes.dataset.pane = name;
  if (push && narrow.matches && DEPTH[name] > DEPTH[current]) {
    history.pushState({ ...(history.state || {}), pane: name }, "", location.href);
  }
}

function back(target) {
  // Our own history entry: step back through history (popstate shows the pane).
  if (history.state?.pane === panes.dataset.pane && DEPTH[target] < DEPTH[panes.dataset.pane]) {
    history.back();
  } else {
    show(target, { push: false });
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-show-pane]");
  if (!button) return;
  const target = button.dataset.showPane;
  if (DEPTH[target] < DEPTH[panes.dataset.pane]) back(target);
  else show(target);
});

window.addEventListener("popstate", (event) => show(event.state?.pane || "list", { push: false }));

// The visible viewport shrinks when the on-screen keyboard opens; 100dvh does not follow it
// everywhere (iOS), visualViewport does. CSSOM writes are allowed under the page's CSP.
const viewport = window.visualViewport;
function fitViewport() {
  // height × scale: a pinch-zoom leaves the page as it is, only the keyboard shrinks it.
  const height = Math.round(viewport.height * viewport.scale);
  document.documentElement.style.setProperty("--viewport-height", `${height}px`);
  if (narrow.matches && window.scrollY) window.scrollTo(0, 0);
}
if (viewport) {
  viewport.addEventListener("resize", fitViewport);
  fitViewport();
}

export const layout = { show, get pane() { return panes.dataset.pane; } };
