// The offline shell: try the server again with backoff (and at once when the device comes back
// online); the first answer of any kind means it is reachable, so the page the manager asked
// for is loaded again.
(function () {
  let delay = 2000;
  let timer = null;
  const title = document.getElementById("offline-title");

  async function attempt() {
    clearTimeout(timer);
    title.textContent = "Reconnecting…";
    try {
      await fetch("/manifest.webmanifest", { cache: "no-store", credentials: "same-origin" });
      location.reload();
      return;
    } catch {
      /* still unreachable */
    }
    delay = Math.min(delay * 2, 30000);
    timer = setTimeout(attempt, delay);
  }

  document.getElementById("offline-retry").addEventListener("click", () => {
    delay = 2000;
    attempt();
  });
  window.addEventListener("online", () => {
    delay = 2000;
    attempt();
  });
  timer = setTimeout(attempt, delay);
})();
