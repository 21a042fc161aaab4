// A server push that stays open: one WebSocket or SSE connection at a time, reopened with
// capped, jittered exponential backoff until the app closes it or the server says that
// reconnecting is pointless. Subscription (change streams) and LiveQuery (live queries)
// build on it and say what a connection's URL is and what its messages mean.

import { RheoError } from "./errors.js";
import { openSse } from "./sse.js";
import { backoffDelay, deferred } from "./util.js";

/**
 * Close codes after which the client does not reconnect by itself:
 * 1000 the collection was dropped or the stream's definition changed (the app must decide
 * what the stream now means); 1002, 1003, 1007, 1008, 1009, 1010 the server refused what
 * this client sent, which it would send again.
 * Every other code reconnects: 1001 (shutdown), 1005/1006 (connection lost), 1011 (server
 * error, feed ended), 1012 (restart), 1013 (slow consumer), 1014; 4410 (history lost)
 * first recovers (onHistoryLost), then reconnects.
 */
export const TERMINAL_CLOSE_CODES = new Set([1000, 1002, 1003, 1007, 1008, 1009, 1010]);

/** HTTP answers to a handshake that reconnecting would only repeat. */
const TERMINAL_STATUSES = new Set([400, 401, 403, 404, 405, 406, 410, 413, 414, 415, 422]);

export const HISTORY_LOST = 4410;

/** A connection open this long without a message counts as working: the backoff restarts. */
const STABLE_MS = 5000;

/**
 * One WebSocket connection. `sendHeaders`: the constructor takes (url, {headers}) as the
 * `ws` package's does (a browser's WebSocket cannot send headers). Returns {close(),
 * send(text)}; calls onClose(info) exactly once.
 */
export function openWebSocket({ WebSocket, url, headers, sendHeaders, onOpen, onMessage, onClose }) {
  let finished = false;
  let httpAnswer = null;
  let lastError = null;
  let ws = null;
  const finish = (info) => {
    if (finished) return;
    finished = true;
    onClose(info);
  };
  try {
    ws = sendHeaders && headers && Object.keys(headers).length > 0 ? new WebSocket(url, { headers }) : new WebSocket(url);
  } catch (error) {
    queueMicrotask(() => finish({ code: 1006, reason: "cannot connect", error: new RheoError(`cannot connect: ${error.message}`, { url, cause: error }) }));
    return { close() { finished = true; }, send() { throw new RheoError("not connected"); } };
  }
  // The `ws` package tells the HTTP answer of a refused handshake; browsers do not.
  if (typeof ws.on === "function") {
    ws.on("unexpected-response", (req, res) => {
      const chunks = [];
      const done = () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body = null;
        try { body = JSON.parse(text); } catch { body = text || null; }
        const message = body && typeof body === "object" && typeof body.message === "string" ? body.message : `${res.statusCode} ${res.statusMessage || ""}`.trim();
        const headerMap = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headerMap.set(k, v);
        httpAnswer = { status: res.statusCode, error: new RheoError(message, { status: res.statusCode, statusText: res.statusMessage, body, headers: headerMap, method: "GET", url }) };
        ws.terminate();
      };
      res.on("data", (c) => chunks.push(c));
      res.on("end", done);
      res.on("error", done);
    });
  }
  ws.onopen = () => {
    if (!finished) onOpen();
  };
  ws.onmessage = (ev) => {
    if (!finished && typeof ev.data === "string") onMessage(ev.data);
  };
  ws.onerror = (ev) => {
    lastError = ev && (ev.error || ev.message) ? ev.error || new Error(ev.message) : lastError;
  };
  ws.onclose = (ev) => {
    if (httpAnswer) finish({ code: 1006, reason: httpAnswer.error.message, status: httpAnswer.status, error: httpAnswer.error });
    else finish({ code: ev.code, reason: ev.reason || "", error: ev.code === 1006 && lastError ? new RheoError(`connection lost: ${lastError.message || lastError}`, { url, cause: lastError }) : undefined });
  };
  return {
    close() {
      if (finished) return;
      finish({ code: 1000, reason: "closed by the client", clientClosed: true });
      try {
        ws.close(1000);
      } catch {
        /* already closing */
      }
    },
    /** Sends a text frame; throws when the socket is not open (1: OPEN, in browsers and ws). */
    send(text) {
      if (finished || ws.readyState !== 1) throw new RheoError("not connected: the WebSocket is not open");
      ws.send(text);
    },
  };
}

export class Channel {
  constructor(client, options = {}) {
    this._client = client;
    this._o = options;
    /** "connecting" | "open" | "reconnecting" | "closed" */
    this.state = "connecting";
    /** "websocket" or "sse": the transport of the current (or last) connection. */
    this.transport = null;
    /** How many times a connection opened again after the first. */
    this.reconnects = 0;
    this._attempt = 0;
    this._conn = null;
    this._timer = null;
    this._stableTimer = null;
    this._stopped = false;
    this._everOpen = false;
    this._intent = null; // why this client closed its own connection: {kind: "restart", reason, now?} | {kind: "history-lost", position}
    this._recover = null; // pending recovery (snapshot) before the next connection
    this._abort = new AbortController(); // aborts reads made on the channel's behalf at close()
    this._opened = deferred();
    this._ended = deferred();
    /** Resolves when the first connection opens; rejects if the channel ends before. */
    this.opened = this._opened.promise;
    /** Resolves with {code, reason, error?} when the channel ends for good. */
    this.closed = this._ended.promise;
    if ((options.transport ?? client.transport) === "websocket" && !client._WebSocket)
      throw new TypeError("transport \"websocket\" needs a WebSocket constructor (the WebSocket option, e.g. from the ws package)");
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) {
        queueMicrotask(() => this.close());
      } else {
        const onAbort = () => this.close();
        signal.addEventListener("abort", onAbort, { once: true });
        this._ended.promise.then(() => signal.removeEventListener("abort", onAbort));
      }
    }
    queueMicrotask(() => this._connect());
  }

  /** Closes the connection and stops reconnecting. */
  close() {
    if (this._stopped) return;
    this._stopped = true;
    clearTimeout(this._timer);
    clearTimeout(this._stableTimer);
    this._timer = null;
    this._abort.abort();
    const conn = this._conn;
    this._conn = null;
    if (conn) conn.close();
    this._setState("closed");
    const info = { code: 1000, reason: "closed by the client" };
    this._opened.reject(new RheoError("closed before it opened"));
    this._ended.resolve(info);
  }

  // ---- to override
  _path() { throw new Error("abstract"); }
  _params(/* transport */) { return new URLSearchParams(); }
  _lastEventId() { return null; }
  async _prepare() {}
  _message(/* obj, type, id */) {}

  // ---- callbacks
  _emit(name, ...args) {
    const fn = this._o[name];
    if (typeof fn !== "function") return undefined;
    try {
      return fn(...args);
    } catch (err) {
      if (name !== "onError") this._emit("onError", err, this);
      return undefined;
    }
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("onStateChange", state, this);
  }

  _pickTransport() {
    const client = this._client;
    const pref = this._o.transport ?? client.transport ?? "auto";
    if (pref === "sse") return "sse";
    const ctor = client._WebSocket;
    if (pref === "websocket") {
      if (!ctor) throw new RheoError("transport \"websocket\" needs a WebSocket constructor (the WebSocket option, e.g. from the ws package)");
      return "websocket";
    }
    if (!ctor) return "sse";
    // A browser's WebSocket cannot carry an Authorization header: SSE can.
    if (client._sendsAuthorization() && !client._wsHeaders) return "sse";
    return "websocket";
  }

  async _connect() {
    this._timer = null;
    if (this._stopped) return;
    let transport;
    let auth;
    try {
      transport = this._pickTransport();
      await this._prepare();
      if (this._stopped) return;
      auth = await this._client._authorization(false);
    } catch (err) {
      if (this._stopped) return;
      return this._attemptFailed(err);
    }
    if (this._stopped) return;
    this.transport = transport;
    const headers = { ...this._client.headers };
    if (auth.header) headers.Authorization = auth.header;
    this._usedToken = auth.usedToken;
    const url = this._client._url(this._path(), this._params(transport), transport === "websocket");
    let conn = null;
    const onOpen = () => {
      if (conn === this._conn) this._connOpened();
    };
    const onClose = (info) => {
      // The callback may come before `conn` is assigned only for a constructor that throws.
      queueMicrotask(() => this._connClosed(conn, info));
    };
    if (transport === "sse") {
      conn = openSse({
        fetch: this._client._fetch, url, headers, lastEventId: this._lastEventId(),
        idleTimeoutMs: this._o.sseIdleTimeoutMs ?? this._client.sseIdleTimeoutMs, credentials: this._client.credentials,
        onOpen: (res) => {
          if (conn === this._conn) this._client._takeToken(res);
          onOpen();
        },
        onEvent: (ev) => {
          if (conn === this._conn) this._sseEvent(ev);
        },
        onClose,
      });
    } else {
      conn = openWebSocket({
        WebSocket: this._client._WebSocket, url, headers, sendHeaders: this._client._wsHeaders,
        onOpen,
        onMessage: (text) => {
          if (conn === this._conn) this._wsText(text);
        },
        onClose,
      });
    }
    this._conn = conn;
  }

  _connOpened() {
    const again = this._everOpen;
    this._everOpen = true;
    // The backoff restarts once the connection proves to work (a message, or STABLE_MS
    // open), so a server that accepts and closes at once is not hammered.
    clearTimeout(this._stableTimer);
    this._stableTimer = setTimeout(() => { this._attempt = 0; }, STABLE_MS);
    if (again) this.reconnects++;
    this._setState("open");
    this._emit("onOpen", { reconnect: again, transport: this.transport }, this);
    this._opened.resolve();
  }

  _wsText(text) {
    this._attempt = 0;
    let obj;
    try {
      obj = JSON.parse(text);
    } catch {
      this._emit("onError", new RheoError(`a frame that is not JSON: ${text.slice(0, 100)}`), this);
      return;
    }
    this._message(obj, null, null);
  }

  _sseEvent(ev) {
    this._attempt = 0;
    if (ev.type === "history-lost") {
      this._closeOwn({ kind: "history-lost", position: ev.id });
      return;
    }
    let obj;
    try {
      obj = JSON.parse(ev.data);
    } catch {
      this._emit("onError", new RheoError(`an event that is not JSON: ${ev.data.slice(0, 100)}`), this);
      return;
    }
    this._message(obj, ev.type, ev.id);
  }

  /** Closes the current connection for a reason of this client's; _connClosed acts on it. */
  _closeOwn(intent) {
    const conn = this._conn;
    if (!conn) return;
    this._intent = intent;
    conn.close();
  }

  _connClosed(conn, info) {
    if (conn !== this._conn || this._stopped) return;
    this._conn = null;
    clearTimeout(this._stableTimer);
    const intent = this._intent;
    this._intent = null;
    if (info.clientClosed && intent) {
      if (intent.kind === "history-lost") return this._historyLost(intent.position);
      this._emit("onClose", { code: info.code, reason: intent.reason ?? info.reason, willReconnect: true }, this);
      return intent.now ? this._schedule(0, true) : this._schedule();
    }
    if (info.status) {
      // An HTTP answer instead of a stream.
      if (info.status === 401 && this._usedToken && this._client._dropToken()) return this._schedule(0, true);
      return this._attemptFailed(info.error);
    }
    if (info.code === HISTORY_LOST) return this._historyLost(null);
    if (TERMINAL_CLOSE_CODES.has(info.code)) return this._end({ code: info.code, reason: info.reason });
    if (this.state === "open") this._emit("onClose", { code: info.code, reason: info.reason, willReconnect: true }, this);
    this._schedule();
  }

  /** A connection attempt failed before it opened (or its preparation did). */
  _attemptFailed(err) {
    if (err instanceof RheoError && TERMINAL_STATUSES.has(err.status)) {
      return this._end({ code: 1006, reason: err.message, error: err });
    }
    // An unreachable server shows in the state ("reconnecting"), not as an error each time.
    if (!(err instanceof RheoError && err.status === 0)) this._emit("onError", err, this);
    const wait = err && err.retryAfter ? err.retryAfter * 1000 : 0;
    this._schedule(wait);
  }

  _historyLost(position) {
    this._emit("onClose", { code: HISTORY_LOST, reason: "history lost", willReconnect: true }, this);
    this._recover = { position };
    this._attempt = 0;
    this._schedule(0, true);
  }

  _schedule(minDelay = 0, now = false) {
    if (this._stopped) return;
    this._setState(this._everOpen ? "reconnecting" : "connecting");
    const backoff = { ...this._client.backoff, ...this._o.backoff };
    const delay = now ? minDelay : Math.max(minDelay, backoffDelay(this._attempt++, backoff));
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), delay);
  }

  _end(info) {
    if (this._stopped) return;
    this._stopped = true;
    clearTimeout(this._timer);
    clearTimeout(this._stableTimer);
    this._abort.abort();
    this._setState("closed");
    this._emit("onClose", { code: info.code, reason: info.reason, willReconnect: false, error: info.error }, this);
    if (info.error) this._emit("onError", info.error, this);
    this._opened.reject(info.error ?? new RheoError(`closed (${info.code} ${info.reason})`));
    this._ended.resolve(info);
  }
}
