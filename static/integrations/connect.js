// The Connect WhatsApp page: polls the login status, shows the QR code and its countdown.
(() => {
  const root = document.querySelector(".wa-connect");
  const csrf = root.querySelector("[name=csrfmiddlewaretoken]").value;
  const $ = (id) => document.getElementById(id);
  let qrEvent = null, qrRefreshes = -1, expiresAt = 0, period = 0;

  function render(s) {
    $("wa-state").textContent = s.state_label || s.state;
    $("wa-state").dataset.state = s.state;
    const connected = s.state === "connected";
    $("wa-connected-box").hidden = !connected;
    $("wa-phone").textContent = s.phone || "";
    $("wa-error").hidden = !s.error;
    $("wa-error").textContent = s.error || "";
    $("wa-logout").hidden = !(connected || s.state === "waiting_for_scan");
    $("wa-logout").textContent = connected ? "Log out" : "Cancel";
    $("wa-start").textContent = connected ? "Reconnect" : (s.state === "error" ? "Try again" : "Connect WhatsApp");
    $("wa-start").hidden = s.state === "waiting_for_scan";
    $("wa-start").disabled = false;
    if (s.qr) {
      if (s.qr.event_id !== qrEvent || s.qr.refreshes !== qrRefreshes) {
        $("wa-qr-image").src = s.qr.image;
        $("wa-qr-image").dataset.refreshes = s.qr.refreshes;
        qrEvent = s.qr.event_id; qrRefreshes = s.qr.refreshes;
        expiresAt = Date.now() + s.qr.expires_in * 1000;
        period = Math.max(s.qr.expires_in, 1);
        tick();
      }
      $("wa-qr").hidden = false;
    } else {
      $("wa-qr").hidden = true;
    }
  }
  function tick() {
    if (!expiresAt) return;
    const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    $("wa-countdown").textContent = left;
    $("wa-bar").style.width = `${Math.min(100, 100 * left / period)}%`;
  }
  async function poll() {
    try {
      const r = await fetch(root.dataset.statusUrl, {credentials: "same-origin"});
      if (r.ok) render(await r.json());
    } catch (e) { /* next tick tries again */ }
  }
  async function post(url, button) {
    button.disabled = true;
    try {
      const r = await fetch(url, {method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrf}});
      const body = await r.json();
      if (!r.ok) { $("wa-error").hidden = false; $("wa-error").textContent = body.error; return; }
      render(body);
    } finally { button.disabled = false; }
  }
  $("wa-start").addEventListener("click", (e) => post(root.dataset.startUrl, e.currentTarget));
  $("wa-logout").addEventListener("click", (e) => post(root.dataset.logoutUrl, e.currentTarget));
  setInterval(tick, 250);
  setInterval(poll, 1000);
  poll();
})();
