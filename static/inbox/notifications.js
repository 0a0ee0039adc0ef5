// Telling the manager that something happened: desktop notifications (asked for only when they
// press the button), an optional sound, Web Push for this device, and installing the inbox as
// an app. Settings live on the server (/api/v1/notifications/settings/): the same on every
// device, and the worker's pushes follow them too.

import { api } from "./api.js";

const RECENT_MS = 5 * 60 * 1000; // events replayed after a reconnect are not news any more
const SOUND_GAP_MS = 1500;

function base64UrlToBytes(text) {
  const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function sameKey(buffer, key) {
  if (!buffer) return false;
  const a = new Uint8Array(buffer);
  const b = base64UrlToBytes(key);
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

export class Notifier {
  constructor({ me, panel, toggle, open, toast }) {
    this.me = me;
    this.panel = panel;
    this.toggle = toggle;
    this.open = open;
    this.toast = toast;
    this.settings = null; // {level, sound, push: {available, public_key, subscriptions}}
    this.conversations = new Map(); // id → {assigneeId, title}
    this.lastSound = 0;
    this.sound = panel.dataset.sound;
    this.registration = null;
    this.installPrompt = null;
    this.form = panel.querySelector("form");
    this.wire();
    this.registerWorker();
    this.load();
  }

  // --- the panel ---------------------------------------------------------------------------
  wire() {
    this.toggle.addEventListener("click", () => this.showPanel(this.panel.hidden));
    this.panel.querySelector("[data-close]").addEventListener("click", () => this.showPanel(false));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !this.panel.hidden) {
        this.showPanel(false);
        this.toggle.focus();
      }
    });
    this.form.addEventListener("change", (event) => {
      if (event.target.name === "level") this.save({ level: event.target.value });
      else if (event.target.name === "sound") this.save({ sound: event.target.checked });
    });
    this.form.addEventListener("submit", (event) => event.preventDefault());
    this.panel.querySelector("[data-action=test-sound]").addEventListener("click", () => this.play(true));
    this.panel.querySelector("[data-action=desktop]").addEventListener("click", () => this.askDesktop());
    this.panel.querySelector("[data-action=push]").addEventListener("click", () => this.togglePush());
    const install = this.panel.querySelector("[data-action=install]");
    install.addEventListener("click", async () => {
      if (!this.installPrompt) return;
      this.installPrompt.prompt();
      await this.installPrompt.userChoice.catch(() => null);
      this.installPrompt = null;
      this.render();
    });
    window.addEventListener("beforeinstallprompt", (event) => {
      event.preventDefault(); // offered from the panel, not by the browser's own banner
      this.installPrompt = event;
      this.render();
    });
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.addEventListener("message", (event) => {
        if (event.data && event.data.type === "open-conversation") this.open(event.data.conversation_id);
      });
    }
  }

  showPanel(visible) {
    this.panel.hidden = !visible;
    this.toggle.setAttribute("aria-expanded", visible ? "true" : "false");
    if (visible) (this.panel.querySelector("input:checked") || this.panel.querySelector("input"))?.focus();
  }

  async load() {
    try {
      this.settings = await api.notificationSettings();
    } catch (error) {
      this.status(`Could not load your notification settings: ${error.detail || error.message}`);
      return;
    }
    this.render();
    this.syncPush();
  }

  async save(changes) {
    this.status("Saving…");
    try {
      this.settings = await api.saveNotificationSettings(changes);
      this.status("Saved");
    } catch (error) {
      this.status(`Not saved: ${error.detail || error.message}`);
    }
    this.render();
  }

  status(text) {
    this.panel.querySelector("[data-saved]").textContent = text;
  }

  desktopState() {
    if (!("Notification" in window)) return "unsupported";
    return Notification.permission; // "default" | "granted" | "denied"
  }

  render() {
    const settings = this.settings;
    if (settings) {
      for (const input of this.form.elements.level) input.checked = input.value === settings.level;
      this.form.elements.sound.checked = settings.sound;
    }
    const desktop = this.desktopState();
    const desktopText = {
      unsupported: "This browser cannot show desktop notifications.",
      default: "Not turned on in this browser yet.",
      granted: "On in this browser.",
      denied: "Blocked in this browser: allow notifications for this site in the browser's settings.",
    }[desktop];
    this.panel.querySelector("[data-desktop-state]").textContent = desktopText;
    this.panel.querySelector("[data-action=desktop]").hidden = desktop !== "default";

    const pushText = this.panel.querySelector("[data-push-state]");
    const pushButton = this.panel.querySelector("[data-action=push]");
    const supported = "serviceWorker" in navigator && "PushManager" in window;
    if (!settings) {
      pushText.textContent = "";
      pushButton.hidden = true;
    } else if (!settings.push.available) {
      pushText.textContent =
        "Web Push is unavailable: this server has no push keys yet (an administrator sets VAPID keys, see the docs).";
      pushButton.hidden = true;
    } else if (!supported) {
      pushText.textContent = "This browser does not support Web Push.";
      pushButton.hidden = true;
    } else if (desktop === "denied") {
      pushText.textContent = "Blocked: notifications are not allowed for this site.";
      pushButton.hidden = true;
    } else {
      pushText.textContent = this.subscribed
        ? "On for this device: you are notified even when Switchboard is closed."
        : "Off for this device.";
      pushButton.hidden = false;
      pushButton.textContent = this.subscribed ? "Turn off on this device" : "Notify me when Switchboard is closed";
    }
    this.panel.querySelector("[data-action=install]").hidden = !this.installPrompt;
  }

  // --- desktop notifications ---------------------------------------------------------------
  async askDesktop() {
    if (!("Notification" in window)) return;
    try {
      await Notification.requestPermission();
    } catch {
      /* old callback-style browsers */
    }
    this.render();
    if (Notification.permission === "granted") this.status("Desktop notifications are on");
  }

  wants(conversation, { mention = false } = {}) {
    const level = this.settings ? this.settings.level : "mine";
    if (level === "none") return false;
    if (mention || level === "all") return true;
    return Boolean(conversation && conversation.assigneeId === this.me.id);
  }

  onEvent(event) {
    const data = event.data || {};
    if (event.type === "conversation.created" || event.type === "conversation.updated") {
      const contact = data.contact || {};
      this.conversations.set(data.id, {
        assigneeId: data.assignee ? data.assignee.id : null,
        title: `${contact.name || contact.phone || contact.email || "A customer"}${data.channel ? ` · ${data.channel.name}` : ""}`,
      });
      if (this.conversations.size > 5000) this.conversations.delete(this.conversations.keys().next().value);
      return;
    }
    if (event.type !== "message.created") return;
    if (Date.now() - Date.parse(data.created_at) > RECENT_MS) return;
    const conversation = this.conversations.get(data.conversation_id);
    const mention = this.mentionsMe(data);
    if (data.direction !== "in" && !mention) return;
    if (!this.wants(conversation, { mention })) return;
    if (this.settings && this.settings.sound) this.play();
    if (document.visibilityState === "visible" && document.hasFocus()) return;
    const title = mention
      ? `${data.sender_name || "Someone"} mentioned you · ${conversation ? conversation.title : ""}`
      : conversation
        ? conversation.title
        : "New message";
    // The same tags as the server's pushes: one notification per chat (or mention), never two.
    this.show(title, data, mention ? `sb-m${data.id}` : `sb-c${data.conversation_id}`);
  }

  // A note's mentions travel in its metadata: [{id, username, name}] (or plain ids).
  mentionsMe(message) {
    if (message.kind !== "note") return false;
    const mentions = message.mentions || (message.metadata && message.metadata.mentions) || [];
    return mentions.some((m) => (typeof m === "object" && m ? m.id : Number(m)) === this.me.id);
  }

  async show(title, message, tag) {
    if (this.desktopState() !== "granted") return;
    const body = (message.content || "").replace(/\s+/g, " ").slice(0, 160) || "Attachment";
    const options = {
      body,
      tag,
      icon: this.panel.dataset.icon,
      data: { url: `/inbox/#c${message.conversation_id}`, conversation_id: message.conversation_id },
    };
    const registration = await this.readyRegistration();
    if (registration) {
      await registration.showNotification(title, options);
    } else {
      const notification = new Notification(title, options);
      notification.onclick = () => {
        window.focus();
        this.open(message.conversation_id);
        notification.close();
      };
    }
  }

  play(always = false) {
    const now = Date.now();
    if (!always && now - this.lastSound < SOUND_GAP_MS) return;
    this.lastSound = now;
    const audio = new Audio(this.sound);
    audio.volume = 0.6;
    audio.play().catch(() => {
      /* the browser blocks sound until the page was used once */
    });
  }

  // --- service worker and Web Push ---------------------------------------------------------
  async registerWorker() {
    if (!("serviceWorker" in navigator)) return;
    try {
      this.registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    } catch (error) {
      console.warn("service worker not registered", error);
    }
  }

  async readyRegistration() {
    if (!this.registration) return null;
    try {
      return await navigator.serviceWorker.ready;
    } catch {
      return null;
    }
  }

  // On every page load: the server learns of this browser's current subscription (renewed by
  // the browser, or made under an older VAPID key and no longer valid).
  async syncPush() {
    if (!this.settings || !this.settings.push.available || !("PushManager" in window)) return;
    const registration = await this.readyRegistration();
    if (!registration) return;
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription.options.applicationServerKey, this.settings.push.public_key)) {
      await subscription.unsubscribe().catch(() => null);
      subscription = this.desktopState() === "granted" ? await this.subscribe(registration) : null;
      if (!subscription) return this.render();
    }
    this.subscribed = Boolean(subscription);
    if (subscription) await api.pushSubscribe(subscription.toJSON()).catch(() => null);
    this.render();
  }

  subscribe(registration) {
    return registration.pushManager
      .subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(this.settings.push.public_key) })
      .catch((error) => {
        this.status(`This browser refused Web Push: ${error.message}`);
        return null;
      });
  }

  async togglePush() {
    const registration = await this.readyRegistration();
    if (!registration) return this.status("Web Push needs the service worker, which is not running.");
    const current = await registration.pushManager.getSubscription();
    if (current) {
      await api.pushUnsubscribe(current.endpoint).catch(() => null);
      await current.unsubscribe().catch(() => null);
      this.subscribed = false;
      this.status("Web Push is off for this device");
      return this.render();
    }
    if (this.desktopState() === "default") await this.askDesktop();
    if (this.desktopState() !== "granted") return this.render();
    const subscription = await this.subscribe(registration);
    if (!subscription) return this.render();
    try {
      await api.pushSubscribe(subscription.toJSON());
      this.subscribed = true;
      this.status("Web Push is on for this device");
    } catch (error) {
      await subscription.unsubscribe().catch(() => null);
      this.status(`Web Push could not be turned on: ${error.detail || error.message}`);
    }
    this.render();
  }
}
