// A change stream subscription (GET /<coll>/_streams/<name>, API sections 4 and 7) that
// survives disconnects: it remembers the token of the last event it received
// (`_id._data`) and reconnects with resumeAfter (SSE: Last-Event-ID), so the app's
// onEvent sees every change once, in commit order, across reconnects and server restarts
// (as long as the server still holds the history). When it no longer does (close 4410,
// SSE `history-lost`), onHistoryLost decides where to continue; by default the
// subscription reads the snapshot again (GET /<coll>, onSnapshot) and continues after its
// Resume-Token.

import { Channel } from "./channel.js";
import { RheoError } from "./errors.js";
import { collectionPath, deferred, jsonParam } from "./util.js";

/** The resume token of a change event (its `_id._data`), or null. */
export function eventToken(event) {
  const data = event && typeof event === "object" && event._id && event._id._data;
  return typeof data === "string" && data !== "" ? data : null;
}

export class Subscription extends Channel {
  constructor(client, coll, stream, options = {}, withSnapshot = false) {
    // Arguments are checked before the channel starts connecting.
    if (typeof stream !== "string" || stream === "") throw new TypeError("a stream name is a non-empty string");
    const basePath = collectionPath(coll) + "/_streams/" + encodeURIComponent(stream);
    super(client, options);
    this.collection = coll;
    this.stream = stream;
    this._basePath = basePath;
    /** Where the next connection resumes: the last event received (or the snapshot's token). */
    this._position = options.resumeAfter ?? null;
    /** The token of the last event the app's onEvent has handled (or of the last snapshot). */
    this.token = options.resumeAfter ?? null;
    this._queue = [];
    this._draining = false;
    if (withSnapshot) this._recover = { initial: true, position: null };
    // Without a starting token, the first connection starts after the position read by
    // _prepare, so that a drop before the first event loses nothing either.
    this._needStart = !withSnapshot && this._position === null;
  }

  /** Closes the connection, stops reconnecting and drops events not yet handed to onEvent. */
  close() {
    for (const item of this._queue.splice(0)) if (item.done) item.done.reject(new Error("subscription closed"));
    super.close();
  }

  _path() {
    return this._basePath;
  }

  _params(transport) {
    const p = new URLSearchParams();
    if (this._o.avars !== undefined && this._o.avars !== null) p.set("avars", jsonParam(this._o.avars));
    for (const [k, v] of Object.entries(this._o.params ?? {})) if (v !== undefined && v !== null) p.set(k, jsonParam(v));
    // SSE resumes with Last-Event-ID (the server prefers it to the URL's resumeAfter).
    if (transport === "websocket" && this._position) p.set("resumeAfter", this._position);
    return p;
  }

  _lastEventId() {
    return this._position;
  }

  /** Reads the snapshot (first connection of subscribeWithSnapshot, or after history was lost). */
  async _prepare() {
    if (this._needStart) await this._readStart();
    const rec = this._recover;
    if (!rec) return;
    const handler = rec.initial || typeof this._o.onHistoryLost !== "function"
      ? () => this._readSnapshot()
      : () => this._o.onHistoryLost({ position: rec.position, subscription: this });
    // In line with the events before it: the handler runs once they have been handled.
    const token = await this._inOrder(handler);
    this._recover = null;
    const next = typeof token === "string" && token !== "" ? token : rec.position ?? null;
    this._position = next;
    this.token = next;
  }

  /**
   * The position to start from: the Resume-Token of a one-document read of the
   * collection. A client that may not read the collection (or a server without the
   * header) starts live, without one.
   */
  async _readStart() {
    try {
      const snap = await this._client.snapshot(this.collection, { pagesize: 1, keys: { _id: 1 }, signal: this._abort.signal });
      if (this._position === null && snap.token) {
        this._position = snap.token;
        this.token = snap.token;
      }
    } catch (err) {
      if (!(err instanceof RheoError) || err.status === 0 || err.status >= 500 || err.status === 429) throw err;
    }
    this._needStart = false;
  }

  async _readSnapshot() {
    const snap = await this._client.snapshot(this.collection, { ...(this._o.query ?? {}), signal: this._abort.signal });
    if (typeof this._o.onSnapshot === "function") await this._o.onSnapshot(snap.docs, snap.token, this);
    return snap.token;
  }

  _message(obj) {
    const token = eventToken(obj);
    if (token !== null) this._position = token;
    this._enqueue(() => (typeof this._o.onEvent === "function" ? this._o.onEvent(obj, this) : undefined), token);
  }

  /** Runs the app's handlers one at a time, in arrival order, awaiting those that return promises. */
  _enqueue(run, token = null, done = null) {
    this._queue.push({ run, token, done });
    if (!this._draining) this._drain();
  }

  _inOrder(fn) {
    const d = deferred();
    this._enqueue(fn, null, d);
    return d.promise;
  }

  async _drain() {
    this._draining = true;
    while (this._queue.length > 0) {
      const item = this._queue.shift();
      try {
        let r = item.run();
        if (r && typeof r.then === "function") r = await r;
        if (item.done) item.done.resolve(r);
      } catch (err) {
        if (item.done) item.done.reject(err);
        else this._emit("onError", err, this);
      }
      if (item.token !== null) this.token = item.token;
    }
    this._draining = false;
  }
}
