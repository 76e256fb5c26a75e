// The live event feed: GET /api/events/stream read with fetch() so the token travels in the
// Authorization header, never in a URL. Reconnects with Last-Event-ID after a drop, ends the
// session when the gateway closes the stream because the token expired.

import { sseParser } from "/js/sse.js";
import { endSession, EXPIRED_MESSAGE, REJECTED_MESSAGE, sessionToken } from "/js/session.js";

const STREAM_PATH = "/api/events/stream";
const QUIET_LIMIT_MS = 75_000; // no byte (not even a keep-alive) for this long: reconnect

export class LiveFeed {
  constructor() {
    this.listeners = new Set();
    this.statusListeners = new Set();
    this.lastId = null;
    this.status = "idle";
    this.controller = null;
    this.retryMs = 1000;
    this.stopped = false;
    this.everReady = false;
    this.timer = null;
  }

  /** `listener(event)` for each event envelope, and `{type: "resync"}` after a gap. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** `listener(status, detail)`: connecting, live, reconnecting, unavailable, stopped. */
  onStatus(listener) {
    this.statusListeners.add(listener);
    listener(this.status, "");
    return () => this.statusListeners.delete(listener);
  }

  setStatus(status, detail = "") {
    this.status = status;
    for (const listener of this.statusListeners) {
      listener(status, detail);
    }
  }

  emit(event) {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        console.error("live feed listener failed", error);
      }
    }
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.controller?.abort();
    this.setStatus("stopped");
  }

  scheduleReconnect(status, detail, delay) {
    if (this.stopped) {
      return;
    }
    this.setStatus(status, detail);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  async connect() {
    if (this.stopped) {
      return;
    }
    const token = sessionToken();
    if (!token) {
      endSession(EXPIRED_MESSAGE, { keepPlace: true });
      return;
    }
    this.setStatus(this.everReady ? "reconnecting" : "connecting");
    const controller = new AbortController();
    this.controller = controller;
    const headers = { Authorization: `Bearer ${token}`, Accept: "text/event-stream" };
    const resumed = this.lastId !== null;
    if (resumed) {
      headers["Last-Event-ID"] = this.lastId;
    }
    let response;
    try {
      response = await fetch(STREAM_PATH, { headers, signal: controller.signal, cache: "no-store" });
    } catch {
      this.retryLater("The live feed lost its connection; reconnecting…");
      return;
    }
    if (response.status === 401) {
      endSession(sessionToken() ? REJECTED_MESSAGE : EXPIRED_MESSAGE, { keepPlace: true });
      return;
    }
    if (response.status === 404 || response.status === 405 || response.status === 501) {
      this.scheduleReconnect("unavailable", "Live updates are not available on this server yet.", 30_000);
      return;
    }
    if (!response.ok || !response.body) {
      this.retryLater(`The live feed answered ${response.status}; retrying…`);
      return;
    }
    await this.read(response, controller, resumed);
    if (this.stopped) {
      return;
    }
    if (!sessionToken()) {
      // The gateway closes the stream when the token expires.
      endSession(EXPIRED_MESSAGE, { keepPlace: true });
      return;
    }
    this.retryLater("The live feed was interrupted; reconnecting…");
  }

  retryLater(detail) {
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 30_000);
    this.scheduleReconnect("reconnecting", detail, delay);
  }

  async read(response, controller, resumed) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), QUIET_LIMIT_MS);
    };
    const push = sseParser(
      (message) => this.handle(message, resumed),
      (ms) => {
        this.retryMs = Math.max(ms, 250);
      },
    );
    arm();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          break;
        }
        arm();
        push(decoder.decode(value, { stream: true }));
      }
    } catch {
      // Aborted or the connection dropped: the caller decides what comes next.
    } finally {
      clearTimeout(watchdog);
    }
  }

  handle(message, resumed) {
    if (message.event === "ready") {
      let sequence = null;
      try {
        sequence = JSON.parse(message.data).last_sequence;
      } catch {
        // Tolerate an empty ready message.
      }
      if (this.lastId === null && sequence !== null && sequence !== undefined) {
        this.lastId = String(sequence);
      }
      const wasReady = this.everReady;
      this.everReady = true;
      this.retryMs = 1000;
      this.setStatus("live");
      if (wasReady && !resumed) {
        this.emit({ type: "resync" });
      }
      return;
    }
    let envelope;
    try {
      envelope = JSON.parse(message.data);
    } catch {
      return;
    }
    if (message.id !== null && message.id !== undefined) {
      if (this.lastId !== null && /^\d+$/.test(message.id) && /^\d+$/.test(this.lastId)
        && Number(message.id) <= Number(this.lastId)) {
        return; // already seen (a replay overlapping what we had)
      }
      this.lastId = message.id;
    }
    if (!envelope.type && message.event) {
      envelope.type = message.event;
    }
    this.emit(envelope);
  }
}

/** The one feed of the dashboard. */
export const liveFeed = new LiveFeed();
