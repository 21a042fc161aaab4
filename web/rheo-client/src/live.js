// A live query (GET /<coll>/_live, API section 10): the client's copy of a query's
// result, kept equal to what GET /<coll> with the same parameters answers after every
// commit. The server sends {"init":[...],"token":t} first and then
// {"diff":[op,...],"token":t}; each connection (also after a reconnect) starts with a
// fresh init that replaces the copy.

import { Channel } from "./channel.js";
import { collectionPath, deferred, queryParams } from "./util.js";

function checkIndex(op, name, limit) {
  const v = op[name];
  if (!Number.isInteger(v) || v < 0 || v > limit)
    throw new RangeError(`live query: ${op.op} op with ${name} ${JSON.stringify(v)} outside 0..${limit}`);
  return v;
}

function checkDoc(op) {
  if (!op.doc || typeof op.doc !== "object" || Array.isArray(op.doc))
    throw new TypeError(`live query: ${op.op} op without a document`);
  return op.doc;
}

/**
 * Applies a diff's ops in order to a copy of `docs` and returns the copy: add inserts
 * `doc` at `at`; remove erases `at`; update erases `at`, then inserts `doc` at `to`.
 * Throws (leaving `docs` untouched) on an op that does not fit the array.
 */
export function applyDiff(docs, ops) {
  if (!Array.isArray(ops)) throw new TypeError("live query: a diff is an array of ops");
  const out = docs.slice();
  for (const op of ops) {
    if (!op || typeof op !== "object") throw new TypeError(`live query: not an op: ${JSON.stringify(op)}`);
    if (op.op === "add") {
      const doc = checkDoc(op);
      out.splice(checkIndex(op, "at", out.length), 0, doc);
    } else if (op.op === "remove") {
      out.splice(checkIndex(op, "at", out.length - 1), 1);
    } else if (op.op === "update") {
      const doc = checkDoc(op);
      out.splice(checkIndex(op, "at", out.length - 1), 1);
      out.splice(checkIndex(op, "to", out.length), 0, doc);
    } else {
      throw new TypeError(`live query: unknown op ${JSON.stringify(op.op)}`);
    }
  }
  return out;
}

export class LiveQuery extends Channel {
  constructor(client, coll, options = {}) {
    const basePath = collectionPath(coll) + "/_live"; // checked before the channel starts
    super(client, options);
    this.collection = coll;
    this._basePath = basePath;
    this._query = {
      filter: options.filter, sort: options.sort, keys: options.keys, pagesize: options.pagesize,
      avars: options.avars,
    };
    /** The result: a new array after every frame (the previous one is left as it was). */
    this.docs = [];
    /** The position the docs reflect (the last frame's token). */
    this.token = null;
    /** True once the first init arrived. */
    this.initialized = false;
    this._fresh = true; // the current connection has not sent its init yet
    this._ready = deferred();
    /** Resolves with the docs of the first init; rejects if the query ends before. */
    this.ready = this._ready.promise;
    this.closed.then(() => this._ready.reject(new Error("live query closed before its first result")));
  }

  _path() {
    return this._basePath;
  }

  _params() {
    return queryParams(this._query);
  }

  _connOpened() {
    this._fresh = true;
    super._connOpened();
  }

  _message(frame) {
    let change;
    try {
      if (!frame || typeof frame !== "object") throw new TypeError("live query: a frame is a JSON object");
      if (Array.isArray(frame.init)) {
        change = { type: "init", docs: frame.init.slice(), ops: null };
      } else if (Array.isArray(frame.diff)) {
        if (this._fresh) throw new Error("live query: a diff before the init");
        change = { type: "diff", docs: applyDiff(this.docs, frame.diff), ops: frame.diff };
      } else {
        return; // not a live query frame (a future extension): ignored
      }
    } catch (err) {
      // The copy no longer follows the server's result: start over from a fresh init.
      this._emit("onError", err, this);
      this._closeOwn({ kind: "restart", reason: err.message });
      return;
    }
    this._fresh = false;
    this.docs = change.docs;
    if (typeof frame.token === "string") this.token = frame.token;
    const first = !this.initialized;
    this.initialized = true;
    if (first) this._ready.resolve(this.docs);
    this._emit("onChange", this.docs, { type: change.type, ops: change.ops, token: this.token }, this);
  }
}
