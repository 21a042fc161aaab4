// A change stream subscription (GET /<coll>/_streams/<name>, API sections 4 and 7) that
// survives disconnects: it remembers the token of the last event it received
// (`_id._data`) and reconnects with resumeAfter (SSE: Last-Event-ID), so the app's
// onEvent sees every change once, in commit order, across reconnects and server restarts
// (as long as the server still holds the history). When it no longer does (close 4410,
// SSE `history-lost`), onHistoryLost decides where to continue; by default the
// subscription reads the snapshot again (GET /<coll>, onSnapshot) and continues after its
// Resume-Token.
//
// On a stream with presence or broadcast (API section 11) it also joins the stream's
// presence with the app's `presence` object on every connection, keeps `members` from the
// presence frames (each connection's first frame replaces the list: no member survives a
// reconnection the server has forgotten, none is listed twice), hands broadcasts to
// onBroadcast and sends the app's own with broadcast(). Presence frames and broadcasts are
// handed over as they arrive, not queued behind the change events' onEvent.

import { Channel } from "./channel.js";
import { RheoError } from "./errors.js";
import { collectionPath, deferred, jsonParam } from "./util.js";

/** The server's limits (API section 11): the presence object's JSON, a broadcast frame. */
export const MAX_PRESENCE_BYTES = 1024;
export const MAX_BROADCAST_BYTES = 4096;

const utf8Length = (s) => new TextEncoder().encode(s).length;

/** The JSON of a presence object, checked against the server's rules; null for none. */
function presenceJson(info) {
  if (info === undefined || info === null) return null;
  if (typeof info !== "object" || Array.isArray(info)) throw new TypeError("presence is a JSON object, e.g. {nick: \"ann\"}");
  const json = JSON.stringify(info);
  const bytes = utf8Length(json);
  if (bytes > MAX_PRESENCE_BYTES) throw new RangeError(`presence is ${bytes} bytes of JSON, more than ${MAX_PRESENCE_BYTES}`);
  return json;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** A WebSocket frame {"presence":{"joined":[...],"left":[...]}} (SSE names it `event: presence`). */
function isPresenceFrame(obj) {
  const keys = Object.keys(obj);
  return keys.length === 1 && keys[0] === "presence" && isObject(obj.presence)
    && Array.isArray(obj.presence.joined) && Array.isArray(obj.presence.left);
}

/** A WebSocket frame {"broadcast":<JSON>,"from":{...}} (SSE: `event: broadcast`). */
function isBroadcastFrame(obj) {
  const keys = Object.keys(obj);
  return keys.length === 2 && "broadcast" in obj && isObject(obj.from);
}

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
    this._presenceJson = presenceJson(options.presence);
    /** The stream's members (presenceEvents): [{id, user, info, since}], a new array after every change. */
    this.members = [];
    this._members = new Map(); // id -> member, in the order they joined
    this._presenceFresh = true; // the next presence frame is the connection's first
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
    if (this._presenceJson !== null) p.set("presence", this._presenceJson);
    if (this._o.presenceEvents) p.set("presenceEvents", "true");
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

  /**
   * Sends `value` to every other session of the stream, which receive it with onBroadcast
   * (API section 11: a stream with "broadcast": true; a client that may POST to the
   * collection; at most 4 KiB and, by default, 20 a second: the server drops the rest
   * without a word). Needs an open WebSocket connection: throws a RheoError over SSE or
   * while not connected, a TypeError for a value JSON cannot encode and a RangeError past
   * 4 KiB.
   */
  broadcast(value) {
    let transport = this.transport;
    if (transport === null) {
      try {
        transport = this._pickTransport();
      } catch {
        transport = null;
      }
    }
    if (transport === "sse")
      throw new RheoError("cannot broadcast over SSE: a broadcast is a WebSocket frame (use transport \"websocket\")");
    if (this.state !== "open" || !this._conn)
      throw new RheoError(`cannot broadcast: the subscription is ${this.state}, not open`);
    const text = value === undefined ? undefined : JSON.stringify({ broadcast: value });
    if (text === undefined || !text.startsWith("{\"broadcast\":"))
      throw new TypeError("a broadcast is a JSON value");
    const bytes = utf8Length(text);
    if (bytes > MAX_BROADCAST_BYTES) throw new RangeError(`a broadcast frame is ${bytes} bytes, more than ${MAX_BROADCAST_BYTES}`);
    this._conn.send(text);
  }

  /**
   * Changes the presence object (null: no longer a member) and joins again with it: the
   * open connection is closed and reopened at once, resuming after the last event.
   */
  setPresence(info) {
    const json = presenceJson(info);
    if (json === this._presenceJson) return;
    this._presenceJson = json;
    if (this._conn && !this._stopped) this._closeOwn({ kind: "restart", reason: "presence changed", now: true });
  }

  _connOpened() {
    this._presenceFresh = true;
    super._connOpened();
  }

  _message(obj, type) {
    if (type === "presence" || (type === null && isPresenceFrame(obj))) return this._presenceFrame(obj.presence);
    if (type === "broadcast" || (type === null && isBroadcastFrame(obj))) {
      this._emit("onBroadcast", obj.broadcast, obj.from, this);
      return;
    }
    const token = eventToken(obj);
    if (token !== null) this._position = token;
    this._enqueue(() => (typeof this._o.onEvent === "function" ? this._o.onEvent(obj, this) : undefined), token);
  }

  /**
   * A presence frame: the connection's first replaces the members (those the server
   * knows now), later ones remove who left and add who joined.
   */
  _presenceFrame(frame) {
    const reset = this._presenceFresh;
    this._presenceFresh = false;
    const joined = isObject(frame) && Array.isArray(frame.joined) ? frame.joined.filter((m) => isObject(m) && typeof m.id === "string") : [];
    const left = isObject(frame) && Array.isArray(frame.left) ? frame.left.filter((id) => typeof id === "string") : [];
    if (reset) this._members.clear();
    for (const id of left) this._members.delete(id);
    for (const m of joined) {
      this._members.delete(m.id); // a member listed again moves to where it joined
      this._members.set(m.id, m);
    }
    this.members = [...this._members.values()];
    this._emit("onPresence", this.members, { joined, left, reset }, this);
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
