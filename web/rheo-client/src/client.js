// The client: REST calls (API sections 3 and 9), authentication (Basic with the server's
// Auth-Token, or a JWT supplier), and the constructors of subscriptions and live queries.

import { RheoError, isAbortError } from "./errors.js";
import { LiveQuery } from "./live.js";
import { Subscription } from "./subscription.js";
import {
  base64Utf8, collectionPath, documentPath, etagValue, idFromLocation, queryParams,
} from "./util.js";

/** Tokens this close to their end are not used any more: the password logs in again. */
const TOKEN_MARGIN_MS = 5000;

function defaultBase() {
  const loc = globalThis.location;
  return loc && loc.origin && loc.origin !== "null" ? loc.origin : null;
}

function writeQuery(o) {
  const q = {};
  if (o.upsert) q.wm = "upsert";
  if (o.writeMode) q.wm = o.writeMode;
  return q;
}

export class RheoClient {
  /**
   * @param {string} [baseUrl] the server's URL ("http://localhost:8080", or with a path
   *   prefix); in a browser, relative URLs resolve against the page, and the default is
   *   the page's origin.
   * @param {object} [options] see index.d.ts (ClientOptions)
   */
  constructor(baseUrl, options = {}) {
    const base = baseUrl ?? defaultBase();
    if (!base) throw new TypeError("a base URL is required outside a browser");
    const url = new URL(base, globalThis.location ? globalThis.location.href : undefined);
    url.search = "";
    url.hash = "";
    /** The server's URL, without a trailing slash. */
    this.baseUrl = url.href.replace(/\/+$/, "");
    this._fetch = options.fetch ?? (typeof globalThis.fetch === "function" ? globalThis.fetch.bind(globalThis) : null);
    if (!this._fetch) throw new TypeError("no fetch: pass the fetch option");
    this._WebSocket = options.WebSocket ?? (typeof globalThis.WebSocket === "function" ? globalThis.WebSocket : null);
    // A constructor passed by the app is taken to accept (url, {headers}), as ws's does.
    this._wsHeaders = options.webSocketHeaders ?? options.WebSocket !== undefined;
    /** "auto" (default), "websocket" or "sse": how subscriptions and live queries connect. */
    this.transport = options.transport ?? "auto";
    this.backoff = { initialMs: 500, maxMs: 10000, factor: 2, jitter: 0.5, ...options.backoff };
    /**
     * fetch's credentials mode. Default "omit": the client sends its own Authorization
     * header and needs no cookie, and a browser asked to include credentials prompts for
     * a password when an answer is 401 (rheo sends WWW-Authenticate). "same-origin" or
     * "include" use the rheo_auth cookie of a login made elsewhere.
     */
    this.credentials = options.credentials ?? "omit";
    /** Headers added to every request and connection. */
    this.headers = { ...options.headers };
    this.sseIdleTimeoutMs = options.sseIdleTimeoutMs ?? 70000;
    this._onToken = options.onToken;
    this.setAuth(options.auth ?? null);
  }

  // ---------------------------------------------------------------- authentication

  /**
   * Sets the credentials: null (anonymous), {user, password} (Basic; the Auth-Token the
   * server answers is used instead of the password from then on), {user, token} (a token
   * kept from before), or {jwt} (a string, or a function called for every request and
   * connection that returns one or a promise of one).
   */
  setAuth(auth) {
    this._token = null;
    if (auth === null || auth === undefined) {
      this._auth = null;
    } else if (typeof auth.jwt === "function" || typeof auth.jwt === "string") {
      this._auth = { kind: "jwt", jwt: auth.jwt };
    } else if (typeof auth.user === "string" && auth.user !== "") {
      this._auth = { kind: "basic", user: auth.user, password: auth.password ?? null };
      if (typeof auth.token === "string" && auth.token !== "")
        this._token = { value: auth.token, validUntil: null, location: null };
      if (this._auth.password === null && this._token === null)
        throw new TypeError("auth: {user} needs a password or a token");
    } else {
      throw new TypeError("auth: expected {user, password}, {user, token} or {jwt}");
    }
  }

  /** The token the server issued at login (Basic), or null. */
  get authToken() {
    return this._token ? this._token.value : null;
  }

  /** Until when the token is valid (a Date), or null when unknown. */
  get authTokenValidUntil() {
    return this._token && this._token.validUntil !== null ? new Date(this._token.validUntil) : null;
  }

  /** The Basic user, or null. */
  get user() {
    return this._auth && this._auth.kind === "basic" ? this._auth.user : null;
  }

  _sendsAuthorization() {
    return this._auth !== null;
  }

  /** The Authorization header of the next request: {header, usedToken}. */
  async _authorization(fresh) {
    const a = this._auth;
    if (!a) return { header: null, usedToken: false };
    if (a.kind === "jwt") {
      const jwt = typeof a.jwt === "function" ? await a.jwt() : a.jwt;
      return { header: jwt ? `Bearer ${jwt}` : null, usedToken: false };
    }
    const t = this._token;
    const tokenUsable = t && (a.password === null || (!fresh && (t.validUntil === null || t.validUntil - TOKEN_MARGIN_MS > Date.now())));
    const secret = tokenUsable ? t.value : a.password;
    return { header: `Basic ${base64Utf8(`${a.user}:${secret}`)}`, usedToken: !!tokenUsable };
  }

  /** Keeps the Auth-Token of an answer (Basic only). */
  _takeToken(res) {
    if (!this._auth || this._auth.kind !== "basic") return;
    const value = res.headers.get("Auth-Token");
    if (!value) return;
    const until = Date.parse(res.headers.get("Auth-Token-Valid-Until") || "");
    const changed = !this._token || this._token.value !== value;
    this._token = {
      value, validUntil: Number.isNaN(until) ? null : until, location: res.headers.get("Auth-Token-Location"),
    };
    if (changed && typeof this._onToken === "function") this._onToken(value, this.authTokenValidUntil);
  }

  /** Forgets a token the server refused, when a password can log in again; true if so. */
  _dropToken() {
    if (!this._auth || this._auth.kind !== "basic" || this._auth.password === null || !this._token) return false;
    this._token = null;
    if (typeof this._onToken === "function") this._onToken(null, null);
    return true;
  }

  /**
   * Logs in with the password (Basic) and returns the token the server issued,
   * {token, validUntil}. Any call logs in by itself; this one only makes it explicit.
   */
  async login(options = {}) {
    const a = this._auth;
    if (!a || a.kind !== "basic") throw new TypeError("login needs Basic credentials ({user, password})");
    const res = await this._request("GET", `/tokens/${encodeURIComponent(a.user)}`, { signal: options.signal, fresh: true });
    const body = await readJson(res);
    return { token: this.authToken ?? (body && body.auth_token) ?? null, validUntil: this.authTokenValidUntil };
  }

  /**
   * Logs out: revokes the token at the server (DELETE on its Auth-Token-Location) and
   * forgets every credential; the client is anonymous afterwards. A token the server no
   * longer knows is not an error. JWT credentials are only forgotten.
   */
  async logout(options = {}) {
    const a = this._auth;
    try {
      if (a && a.kind === "basic") {
        const location = (this._token && this._token.location) || `/tokens/${encodeURIComponent(a.user)}`;
        try {
          const res = await this._request("DELETE", location, { signal: options.signal, noRetry: true });
          await drain(res);
        } catch (err) {
          if (!(err instanceof RheoError && err.status === 401)) throw err;
        }
      }
    } finally {
      const hadToken = this._token !== null;
      this._auth = null;
      this._token = null;
      if (hadToken && typeof this._onToken === "function") this._onToken(null, null);
    }
  }

  // ---------------------------------------------------------------- HTTP

  _url(path, query, websocket = false) {
    const url = new URL(this.baseUrl + path);
    const params = query instanceof URLSearchParams ? query : queryParams(query ?? {});
    for (const [k, v] of params) url.searchParams.append(k, v);
    if (websocket) url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  /**
   * One HTTP call. Throws RheoError for answers that are not 2xx (and for a server that
   * cannot be reached: status 0), and the signal's reason when aborted. A Basic client
   * whose token the server refuses logs in again with its password, once.
   */
  async _request(method, path, { query, body, headers, signal, ifMatch, fresh = false, noRetry = false } = {}) {
    const url = this._url(path, query);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      if (signal && signal.aborted) throw signal.reason ?? new DOMException("aborted", "AbortError");
      const auth = await this._authorization(fresh || attempt > 0);
      const h = { Accept: "application/json", ...this.headers, ...headers };
      if (payload !== undefined) h["Content-Type"] = "application/json";
      if (auth.header) h.Authorization = auth.header;
      const tag = etagValue(ifMatch);
      if (tag !== null) h["If-Match"] = tag;
      const init = { method, headers: h, body: payload, signal };
      if (this.credentials) init.credentials = this.credentials;
      let res;
      try {
        res = await this._fetch(url, init);
      } catch (err) {
        if (isAbortError(err, signal)) throw err;
        throw new RheoError(`cannot reach the server: ${err && err.message}`, { method, url, cause: err });
      }
      this._takeToken(res);
      if (res.status === 401 && auth.usedToken && attempt === 0 && !noRetry && this._dropToken()) {
        await drain(res);
        continue;
      }
      if (!res.ok) throw await RheoError.fromResponse(res, method, url);
      return res;
    }
  }

  // ---------------------------------------------------------------- collections

  /** GET / : the names of the mounted database's collections. */
  async listCollections(options = {}) {
    return readJson(await this._request("GET", "/", { signal: options.signal }));
  }

  /**
   * PUT /<coll>: creates the collection (created: true) or replaces its metadata, e.g.
   * {streams: [{uri: "all", stages: []}], aggrs: [...]}. Returns {created, etag}.
   */
  async createCollection(coll, metadata, options = {}) {
    const res = await this._request("PUT", collectionPath(coll), {
      body: metadata === undefined ? undefined : metadata, signal: options.signal, ifMatch: options.ifMatch,
    });
    await drain(res);
    return { created: res.status === 201, etag: res.headers.get("ETag") };
  }

  /** PATCH /<coll>: merges into the collection's metadata. Returns {etag}. */
  async updateCollection(coll, metadata, options = {}) {
    const res = await this._request("PATCH", collectionPath(coll), { body: metadata, signal: options.signal, ifMatch: options.ifMatch });
    await drain(res);
    return { etag: res.headers.get("ETag") };
  }

  /** GET /<coll>/_meta: the metadata document (with `streams`, `aggrs` and `_etag`). */
  async getCollection(coll, options = {}) {
    return readJson(await this._request("GET", `${collectionPath(coll)}/_meta`, { signal: options.signal }));
  }

  /**
   * DELETE /<coll>: drops the collection. The server requires its ETag (If-Match):
   * `ifMatch` gives it (412 when stale); without it the current one is read first.
   */
  async dropCollection(coll, options = {}) {
    let ifMatch = options.ifMatch;
    if (ifMatch === undefined || ifMatch === null) {
      const res = await this._request("GET", `${collectionPath(coll)}/_meta`, { signal: options.signal });
      ifMatch = res.headers.get("ETag");
      await drain(res);
    }
    await drain(await this._request("DELETE", collectionPath(coll), { signal: options.signal, ifMatch }));
  }

  // ---------------------------------------------------------------- reads

  /**
   * GET /<coll>: a page of documents and the change-feed position it reflects,
   * {docs, token} (token: the Resume-Token header, null from a server without one).
   */
  async snapshot(coll, query = {}) {
    const res = await this._request("GET", collectionPath(coll), { query, signal: query.signal });
    const docs = await readJson(res);
    if (!Array.isArray(docs)) throw new RheoError("expected a JSON array", { status: res.status, method: "GET", url: res.url });
    return { docs, token: res.headers.get("Resume-Token") };
  }

  /** GET /<coll> with filter, sort, keys, page, pagesize: the documents. */
  async find(coll, query = {}) {
    return (await this.snapshot(coll, query)).docs;
  }

  /** GET /<coll>/_size: how many documents match `filter`. */
  async count(coll, query = {}) {
    const res = await this._request("GET", `${collectionPath(coll)}/_size`, { query: { filter: query.filter }, signal: query.signal });
    return (await readJson(res))._size;
  }

  /** GET /<coll>/<id>: the document (with `_etag`); RheoError 404 when absent. */
  async get(coll, id, options = {}) {
    const { path, query } = documentPath(coll, id, options.idType);
    const params = queryParams({ keys: options.keys, params: query });
    return readJson(await this._request("GET", path, { query: params, signal: options.signal }));
  }

  // ---------------------------------------------------------------- writes

  /** POST /<coll>: inserts one document. Returns {id, etag, location}. */
  async insert(coll, doc, options = {}) {
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new TypeError("insert takes one document (insertMany takes an array)");
    const res = await this._request("POST", collectionPath(coll), { body: doc, signal: options.signal, query: writeQuery(options) });
    await drain(res);
    const location = res.headers.get("Location");
    return { id: doc._id !== undefined ? doc._id : idFromLocation(location), etag: res.headers.get("ETag"), location };
  }

  /**
   * POST /<coll> with an array: inserts all of them in one transaction (or none: 409 or
   * 400). Returns the server's {inserted, links, ...} plus `ids`, the _id of each.
   */
  async insertMany(coll, docs, options = {}) {
    if (!Array.isArray(docs)) throw new TypeError("insertMany takes an array of documents");
    const res = await this._request("POST", collectionPath(coll), { body: docs, signal: options.signal });
    const out = await readJson(res);
    out.ids = (out.links ?? []).map(idFromLocation);
    return out;
  }

  /**
   * PATCH /<coll>/<id>: update operators ($set, $inc, ...; plain fields mean $set).
   * `ifMatch` (an ETag string or the document's `_etag`) guards it: 412 when stale;
   * `upsert` creates a missing document. Returns {etag, created}.
   */
  async update(coll, id, update, options = {}) {
    return this._writeOne("PATCH", coll, id, update, options);
  }

  /** PUT /<coll>/<id>: replaces the document. Options as for update. Returns {etag, created}. */
  async replace(coll, id, doc, options = {}) {
    return this._writeOne("PUT", coll, id, doc, options);
  }

  async _writeOne(method, coll, id, body, options) {
    const { path, query } = documentPath(coll, id, options.idType);
    const res = await this._request(method, path, {
      body, signal: options.signal, ifMatch: options.ifMatch, query: { params: { ...query, ...writeQuery(options) } },
    });
    await drain(res);
    return { etag: res.headers.get("ETag"), created: res.status === 201 };
  }

  /** DELETE /<coll>/<id> (ifMatch guards it). RheoError 404 when absent. */
  async delete(coll, id, options = {}) {
    const { path, query } = documentPath(coll, id, options.idType);
    await drain(await this._request("DELETE", path, { signal: options.signal, ifMatch: options.ifMatch, query: { params: query } }));
  }

  /** PATCH /<coll>/*?filter=: updates every match. Returns {matched, modified, ...}. */
  async updateMany(coll, filter, update, options = {}) {
    const res = await this._request("PATCH", `${collectionPath(coll)}/*`, { query: { filter }, body: update, signal: options.signal });
    return readJson(res);
  }

  /** DELETE /<coll>/*?filter=: deletes every match. Returns {deleted, ...}. */
  async deleteMany(coll, filter, options = {}) {
    const res = await this._request("DELETE", `${collectionPath(coll)}/*`, { query: { filter }, signal: options.signal });
    return readJson(res);
  }

  // ---------------------------------------------------------------- aggregations, indexes

  /** GET /<coll>/_aggrs/<name> with avars, page, pagesize: the pipeline's output. */
  async aggregate(coll, name, options = {}) {
    const res = await this._request("GET", `${collectionPath(coll)}/_aggrs/${encodeURIComponent(name)}`, {
      query: { avars: options.avars, page: options.page, pagesize: options.pagesize }, signal: options.signal,
    });
    return readJson(res);
  }

  /** GET /<coll>/_indexes. */
  async listIndexes(coll, options = {}) {
    return readJson(await this._request("GET", `${collectionPath(coll)}/_indexes`, { signal: options.signal }));
  }

  /** PUT /<coll>/_indexes/<name> {keys, ops}: e.g. createIndex("notes", "by_n", {n: -1}, {unique: true}). */
  async createIndex(coll, name, keys, ops, options = {}) {
    const body = ops === undefined || ops === null ? { keys } : { keys, ops };
    await drain(await this._request("PUT", `${collectionPath(coll)}/_indexes/${encodeURIComponent(name)}`, { body, signal: options.signal }));
  }

  /** DELETE /<coll>/_indexes/<name>. */
  async dropIndex(coll, name, options = {}) {
    await drain(await this._request("DELETE", `${collectionPath(coll)}/_indexes/${encodeURIComponent(name)}`, { signal: options.signal }));
  }

  /** GET /_ping: true when the server answers. */
  async ping(options = {}) {
    await drain(await this._request("GET", "/_ping", { signal: options.signal }));
    return true;
  }

  // ---------------------------------------------------------------- push

  /**
   * GET /<coll>/_streams/<stream>/_presence: who is joined to the stream's presence,
   * [{id, user, info, since}] (API section 11). RheoError 400 when the stream has no presence.
   */
  async presence(coll, stream, options = {}) {
    if (typeof stream !== "string" || stream === "") throw new TypeError("a stream name is a non-empty string");
    const path = `${collectionPath(coll)}/_streams/${encodeURIComponent(stream)}/_presence`;
    const list = await readJson(await this._request("GET", path, { signal: options.signal }));
    if (!Array.isArray(list)) throw new RheoError("expected a JSON array of members", { status: 200, method: "GET", url: this._url(path) });
    return list;
  }

  /** Subscribes to the change stream `stream` of `coll` (declared in its metadata). */
  subscribe(coll, stream, options = {}) {
    return new Subscription(this, coll, stream, options, false);
  }

  /**
   * Snapshot + changes: reads GET /<coll> with `query` (onSnapshot(docs, token)), then
   * subscribes after its Resume-Token, so every change after the read arrives once.
   */
  subscribeWithSnapshot(coll, stream, options = {}) {
    return new Subscription(this, coll, stream, options, true);
  }

  /** A live query: `docs` equals GET /<coll> with the same parameters after every change. */
  live(coll, options = {}) {
    return new LiveQuery(this, coll, options);
  }
}

async function readJson(res) {
  const text = await res.text();
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RheoError(`the server's answer is not JSON: ${err.message}`, { status: res.status, url: res.url, cause: err });
  }
}

async function drain(res) {
  try {
    if (res.body && !res.bodyUsed) await res.arrayBuffer();
  } catch {
    /* the body does not matter */
  }
}
