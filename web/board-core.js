// Pure logic of the live leaderboard (board.html), with no DOM and no network: the query
// it keeps live, the REST query that query mirrors, and how a player and a score are read
// and shown. Keeping the live query's result (its init and diffs, section 10 of the API)
// and reconnecting are rheo-client's (web/rheo-client: db.live).

export const COLLECTION = "scores";
/** Highest score first; equal scores by name (the server breaks remaining ties by _id). */
export const SORT = { score: -1, name: 1 };
export const WINDOW = 10;
export const KEYS = { name: 1, score: 1 };
export const NAME_MAX = 20;

/** The board's live query, in rheo-client's terms (db.live(COLLECTION, LIVE_QUERY)). */
export const LIVE_QUERY = Object.freeze({ sort: SORT, pagesize: WINDOW, keys: KEYS });

/** The query string of the board's query (the live query sends the same parameters). */
export function queryString({ sort = SORT, pagesize = WINDOW, keys = KEYS } = {}) {
  const q = new URLSearchParams();
  q.set("sort", JSON.stringify(sort));
  q.set("pagesize", String(pagesize));
  if (keys) q.set("keys", JSON.stringify(keys));
  return q.toString();
}

/** `GET /<coll>` page 1 with the same parameters: what the live result must equal. */
export function queryPath(coll = COLLECTION, options) {
  return `${encodeURIComponent(coll)}?${queryString(options)}`;
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
