// Switchboard's service worker (served at /sw.js, scope /): keeps the offline shell, answers a
// page load the network cannot with it ("Reconnecting…"), and shows Web Push notifications.
// Nothing else is cached: the inbox and its API always come from the server.
const CONFIG = JSON.parse("{{ config_json|escapejs }}");

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CONFIG.cache)
      .then((cache) => cache.addAll([CONFIG.shell, ...CONFIG.assets]))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(names.filter((name) => name.startsWith("switchboard-shell-") && name !== CONFIG.cache).map((name) => caches.delete(name))),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    // The page itself always comes from the server; only when it cannot be reached at all
    // does the shell stand in (it reloads the page once the server answers again).
    event.respondWith(fetch(request).catch(() => caches.match(CONFIG.shell)));
    return;
  }
  if (CONFIG.assets.includes(url.pathname)) {
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  }
});

// --- Web Push ------------------------------------------------------------------------------
self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  const title = data.title || "Switchboard";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: data.body || "",
      tag: data.tag || undefined,
      renotify: Boolean(data.tag),
      icon: CONFIG.icon,
      badge: CONFIG.badge,
      timestamp: Date.now(),
      data: { url: data.url || "/inbox/", conversation_id: data.conversation_id || null },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const target = new URL(data.url || "/inbox/", self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const inbox = windows.find((client) => new URL(client.url).pathname === "/inbox/");
      if (inbox) {
        if (data.conversation_id) inbox.postMessage({ type: "open-conversation", conversation_id: data.conversation_id });
        return inbox.focus();
      }
      return self.clients.openWindow(target.href);
    }),
  );
});

// The browser renewed the subscription: take the new one; the inbox page sends it to the server
// the next time it opens (the old endpoint answers 410 and is deleted there).
self.addEventListener("pushsubscriptionchange", (event) => {
  const options = event.oldSubscription ? event.oldSubscription.options : null;
  if (options) event.waitUntil(self.registration.pushManager.subscribe(options));
});
