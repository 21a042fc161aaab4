// Pure logic of the live leaderboard (board.html), with no DOM and no network: the query
// it keeps live, the URLs it calls, and the client's copy of a live query's result, which
// applies the server's frames exactly as the API describes them (section 10 of the API):
//   {"init":[doc,...],"token":t}   the whole result: replaces the copy
//   {"diff":[op,...],"token":t}    ops applied in order to the copy:
//     {"op":"add","at":i,"doc":d}          insert d at index i
//     {"op":"remove","at":i}               erase index i
//     {"op":"update","at":i,"to":j,"doc":d} erase index i, then insert d at index j
// An op whose index is out of range means the copy is no longer the server's result: it
// throws, and the app starts over from a fresh init.

export const COLLECTION = "scores";
/** Highest score first; equal scores by name (the server breaks remaining ties by _id). */
export const SORT = { score: -1, name: 1 };
export const WINDOW = 10;
export const KEYS = { name: 1, score: 1 };
export const NAME_MAX = 20;

/** The query string shared by the live query and the REST query it mirrors. */
export function queryString({ sort = SORT, pagesize = WINDOW, keys = KEYS } = {}) {
  const q = new URLSearchParams();
  q.set("sort", JSON.stringify(sort));
  q.set("pagesize", String(pagesize));
  if (keys) q.set("keys", JSON.stringify(keys));
  return q.toString();
}

/** The live query (WebSocket or SSE), relative to the API base. */
export function livePath(coll = COLLECTION, options) {
  return `${encodeURIComponent(coll)}/_live?${queryString(options)}`;
}

/** `GET /<coll>` page 1 with the same parameters: what the live copy must equal. */
export function queryPath(coll = COLLECTION, options) {
  return `${encodeURIComponent(coll)}?${queryString(options)}`;
}

/**
 * The URL of one document, relative to the API base. An ObjectId goes as its 24 hex
 * digits; a string or a number says its type, so that "7" and 7, or a string of 24 hex
 * digits, name the right document.
 */
export function docPath(coll, id) {
  const base = `${encodeURIComponent(coll)}/`;
  if (id && typeof id === "object" && typeof id.$oid === "string") return base + encodeURIComponent(id.$oid);
  if (typeof id === "string") return `${base}${encodeURIComponent(id)}?id_type=STRING`;
  if (typeof id === "number" && Number.isFinite(id)) return `${base}${id}?id_type=NUMBER`;
  throw new Error(`cannot address a document with _id ${JSON.stringify(id)}`);
}

/** A new player from the form: {name, score}, or a string saying what is wrong. */
export function parsePlayer(rawName, rawScore) {
  const name = typeof rawName === "string" ? rawName.trim() : "";
  const length = [...name].length;
  if (length === 0 || length > NAME_MAX) return `A name has 1 to ${NAME_MAX} characters.`;
  const text = String(rawScore ?? "").trim();
  const score = text === "" ? 0 : Number(text);
  if (!Number.isSafeInteger(score)) return "A score is a whole number.";
  return { name, score };
}

/** A score as shown: numbers as they are, extended-JSON numbers by their digits. */
export function scoreLabel(v) {
  if (typeof v === "number") return String(v);
  if (v && typeof v === "object") {
    for (const k of ["$numberInt", "$numberLong", "$numberDouble", "$numberDecimal"])
      if (typeof v[k] === "string") return v[k];
  }
  if (v === undefined || v === null) return "–";
  return typeof v === "string" ? v : JSON.stringify(v);
}

function index(op, name, value, limit) {
  if (!Number.isInteger(value) || value < 0 || value > limit)
    throw new RangeError(`${op.op} op: ${name} ${JSON.stringify(value)} is outside 0..${limit}`);
  return value;
}

function opDoc(op) {
  if (!op.doc || typeof op.doc !== "object" || Array.isArray(op.doc))
    throw new TypeError(`${op.op} op without a document`);
  return op.doc;
}

/**
 * Applies a diff's ops, in order, to a copy of `docs` and returns it; `docs` is left as
 * it was, also when an op is invalid (then this throws).
 */
export function applyOps(docs, ops) {
  if (!Array.isArray(ops)) throw new TypeError("a diff is an array of ops");
  const out = docs.slice();
  for (const op of ops) {
    if (!op || typeof op !== "object") throw new TypeError(`not an op: ${JSON.stringify(op)}`);
    switch (op.op) {
      case "add":
        out.splice(index(op, "at", op.at, out.length), 0, opDoc(op));
        break;
      case "remove":
        out.splice(index(op, "at", op.at, out.length - 1), 1);
        break;
      case "update": {
        const doc = opDoc(op);
        out.splice(index(op, "at", op.at, out.length - 1), 1);
        out.splice(index(op, "to", op.to, out.length), 0, doc);
        break;
      }
      default:
        throw new TypeError(`unknown op ${JSON.stringify(op.op)}`);
    }
  }
  return out;
}

/** The client's copy of a live query's result and the position (token) it stands at. */
export class LiveResult {
  constructor() {
    this.docs = [];
    this.token = null;
    this.initialized = false;
  }

  /**
   * Applies one frame (parsed JSON). Returns "init" or "diff". Throws, changing nothing,
   * on a frame that is neither, on a diff before any init, and on an invalid op.
   */
  apply(frame) {
    if (!frame || typeof frame !== "object") throw new TypeError("a frame is a JSON object");
    if (Array.isArray(frame.init)) {
      this.docs = frame.init.slice();
      this.initialized = true;
      this.token = frame.token ?? null;
      return "init";
    }
    if (Array.isArray(frame.diff)) {
      if (!this.initialized) throw new Error("a diff before the init");
      this.docs = applyOps(this.docs, frame.diff);
      this.token = frame.token ?? this.token;
      return "diff";
    }
    throw new TypeError("a frame holds init or diff");
  }

  /** Forgets the copy: the next frame must be an init. */
  reset() {
    this.docs = [];
    this.token = null;
    this.initialized = false;
  }
}
