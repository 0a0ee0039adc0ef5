// Admin → add channel: the settings shown depend on the kind, so choosing a kind reloads the
// page with ?kind= (the server builds that kind's form). Without this script, saving does it.
document.addEventListener("DOMContentLoaded", () => {
  const kind = document.querySelector("body.change-form select#id_kind");
  if (!kind || !location.pathname.endsWith("/add/")) return;
  kind.addEventListener("change", () => {
    const params = new URLSearchParams(location.search);
    params.set("kind", kind.value);
    location.search = params.toString();
  });
});
