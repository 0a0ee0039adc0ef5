// The inbox websocket: resume from the last event id, heartbeat, reconnect with backoff.
// Every event is applied at most once (ids are remembered), whatever the server replays.

const REMEMBERED = 5000;
const SERVER_SILENCE_MS = 45000;

export class Realtime {
  constructor({ lastEventId, onEvent, onState, onResync, onUnauthorized, onDropped }) {
    this.lastEventId = lastEventId || 0;
    this.onDropped = onDropped || (() => {});
    this.dropReason = null; // why the server is closing this socket, told in band before it does
    this.applied = new Set();
    this.onEvent = onEvent;
    this.onState = onState;
    this.onResync = onResync;
    this.onUnauthorized = onUnauthorized;
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !this.isOpen()) this.reconnectNow();
    });
  }

  isOpen() {
    return this.socket && this.socket.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.timer);
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // batch=1: the events of one committed batch arrive as one frame (a JSON array).
    const url = `${scheme}://${location.host}/ws/inbox/?batch=1&last_event_id=${this.lastEventId}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    this.dropReason = null;
    socket.onmessage = (message) => this.receive(socket, message);
    socket.onclose = (event) => this.closed(socket, event);
    this.watchSilence(socket);
  }

  reconnectNow() {
    if (this.isOpen() || (this.socket && this.socket.readyState === WebSocket.CONNECTING)) return;
    this.attempt = Math.max(this.attempt, 1);
    this.connect();
  }

  send(message) {
    if (this.isOpen()) this.socket.send(JSON.stringify(message));
  }

  receive(socket, message) {
    if (socket !== this.socket) return;
    this.watchSilence(socket);
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    for (const event of Array.isArray(frame) ? frame : [frame]) this.apply(event);
  }

  apply(event) {
    if (event.type === "ping") {
      this.send({ type: "pong", seq: event.seq });
    } else if (event.type === "ready") {
      this.attempt = 0;
      this.lastEventId = Math.max(this.lastEventId, event.last_event_id || 0);
      this.setState("live");
    } else if (event.type === "closing") {
      // The server is about to close (4429: this tab fell behind). The close frame may not
      // make it through; the reason has.
      this.dropReason = event.reason || "closed by the server";
    } else if (event.type === "stalled") {
      // The server process cannot hear this inbox's events right now: not live. It replays
      // what was missed and says `ready` once it hears them again.
      this.setState("stalled");
    } else if (event.type === "resync") {
      this.lastEventId = event.last_event_id;
      this.onResync();
    } else if (event.id == null) {
      this.onEvent(event); // presence: typing, viewing
    } else if (!this.applied.has(event.id)) {
      this.remember(event.id);
      this.lastEventId = Math.max(this.lastEventId, event.id);
      this.onEvent(event);
    }
  }

  remember(id) {
    this.applied.add(id);
    if (this.applied.size > REMEMBERED) {
      this.applied.delete(this.applied.values().next().value);
    }
  }

  watchSilence(socket) {
    clearTimeout(this.silence);
    // The server pings every 20 s: silence this long means the connection is dead.
    this.silence = setTimeout(() => socket.close(), SERVER_SILENCE_MS);
  }

  closed(socket, event) {
    if (socket !== this.socket) return;
    clearTimeout(this.silence);
    if (event.code === 4401) {
      this.setState("offline");
      this.onUnauthorized();
      return;
    }
    const reason = event.code === 4429 ? event.reason || this.dropReason || "this tab fell behind" : this.dropReason;
    if (reason) {
      this.onDropped(reason, event.code);
      this.attempt = 0; // the connection itself is fine: come back at once, then resume
    }
    this.attempt += 1;
    this.setState("reconnecting");
    const delay = Math.min(10000, 500 * 2 ** Math.min(this.attempt - 1, 5));
    this.timer = setTimeout(() => this.connect(), delay * (0.5 + Math.random() / 2));
  }

  setState(state) {
    this.state = state;
    this.onState(state);
  }
}
