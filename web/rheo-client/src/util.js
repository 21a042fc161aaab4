// URLs, query parameters, ids and ETags as the rheo API spells them.

const HEX24 = /^[0-9a-fA-F]{24}$/;

/** The URL path of a collection ("notes", or "db/notes" under a `*` mount). */
export function collectionPath(coll) {
  if (typeof coll !== "string" || coll === "" || coll.startsWith("/") || coll.endsWith("/"))
    throw new TypeError(`a collection name is a non-empty string without leading or trailing "/": ${JSON.stringify(coll)}`);
  return "/" + coll.split("/").map(encodeURIComponent).join("/");
}

/**
 * The path and query of one document. An ObjectId ({$oid}) goes as its hex digits; a
 * string says id_type=STRING when it would otherwise read as an ObjectId (24 hex digits)
 * and a number says id_type=NUMBER. `idType` overrides.
 */
export function documentPath(coll, id, idType) {
  const base = collectionPath(coll) + "/";
  const query = {};
  let segment;
  if (id && typeof id === "object" && typeof id.$oid === "string") {
    segment = id.$oid;
  } else if (typeof id === "string") {
    if (id === "") throw new TypeError("an empty string is not a document id");
    segment = id;
    if (HEX24.test(id)) query.id_type = "STRING";
  } else if (typeof id === "number" && Number.isFinite(id)) {
    segment = String(id);
    query.id_type = "NUMBER";
  } else if (typeof id === "bigint") {
    segment = id.toString();
    query.id_type = "NUMBER";
  } else {
    throw new TypeError(`cannot address a document with _id ${JSON.stringify(id)}`);
  }
  if (idType) query.id_type = idType;
  return { path: base + encodeURIComponent(segment), query };
}

/** The _id named by a Location header or a bulk insert's link ("/notes/<id>[?id_type=..]"). */
export function idFromLocation(location) {
  if (typeof location !== "string" || location === "") return null;
  const url = new URL(location, "http://x");
  const segments = url.pathname.split("/");
  const raw = decodeURIComponent(segments[segments.length - 1]);
  const type = (url.searchParams.get("id_type") || "").toUpperCase();
  if (type === "NUMBER") return Number(raw);
  if (type === "STRING") return raw;
  if (type === "OID" || HEX24.test(raw)) return { $oid: raw.toLowerCase() };
  return raw;
}

/** A filter, sort, keys or avars value as a query parameter: strings as they are, else JSON. */
export function jsonParam(v) {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function repeated(params, name, v) {
  if (v === undefined || v === null) return;
  if (Array.isArray(v)) {
    for (const one of v) params.append(name, jsonParam(one));
  } else {
    params.append(name, jsonParam(v));
  }
}

/**
 * The query string parameters of a read: filter, sort, keys (each a value or an array of
 * them, repeated), page, pagesize, avars, and `params` for anything else ({explain: true}).
 */
export function queryParams(q = {}) {
  const params = new URLSearchParams();
  repeated(params, "filter", q.filter);
  repeated(params, "sort", q.sort);
  repeated(params, "keys", q.keys);
  if (q.page !== undefined && q.page !== null) params.set("page", String(q.page));
  if (q.pagesize !== undefined && q.pagesize !== null) params.set("pagesize", String(q.pagesize));
  if (q.avars !== undefined && q.avars !== null) params.set("avars", jsonParam(q.avars));
  if (q.params) for (const [k, v] of Object.entries(q.params)) if (v !== undefined && v !== null) params.set(k, String(v));
  return params;
}

/**
 * An ETag for If-Match: a string as it is, an ObjectId ({$oid}, as in a document's
 * `_etag`), or a document holding `_etag`.
 */
export function etagValue(v) {
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return v;
  if (typeof v === "object") {
    if (typeof v.$oid === "string") return v.$oid;
    if (v._etag !== undefined) return etagValue(v._etag);
  }
  throw new TypeError(`not an ETag: ${JSON.stringify(v)}`);
}

/** Base64 of a string's UTF-8 bytes (for Basic credentials), in browsers and Node. */
export function base64Utf8(s) {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** A promise with its resolve and reject, which never counts as an unhandled rejection. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Delay before reconnect attempt `attempt` (0-based): exponential, capped, jittered. */
export function backoffDelay(attempt, { initialMs = 500, maxMs = 10000, factor = 2, jitter = 0.5 } = {}, random = Math.random) {
  const base = Math.min(maxMs, initialMs * factor ** Math.min(attempt, 64));
  // "Equal jitter": between (1 - jitter) and 1 times the base, never above the cap.
  return Math.max(0, Math.round(base * (1 - jitter + jitter * random())));
}
