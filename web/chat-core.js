// Pure logic of the chat, with no DOM and no network: how a message is identified,
// when it was sent, how messages are ordered, the history query, and a store that merges
// what arrives from the history pages and from the change stream without gaps or
// duplicates, and who is online and typing (presence and broadcast). Where the chat stands
// in the change feed (the token it resumes from) and how it reconnects are rheo-client's
// (web/rheo-client).

export const COLLECTION = "messages";
export const STREAM = "all";
export const PAGE_SIZE = 15;
export const NICK_MIN = 3;
export const NICK_MAX = 20;

/** A nickname is 3-20 characters after trimming; returns the trimmed name or null. */
export function validNickname(raw) {
  if (typeof raw !== "string") return null;
  const nick = raw.trim();
  const length = [...nick].length; // count code points, not UTF-16 units
  return length >= NICK_MIN && length <= NICK_MAX ? nick : null;
}

/** A stable string key for a document's _id (ObjectId, string, number or object). */
export function idKey(id) {
  if (id && typeof id === "object" && typeof id.$oid === "string") return id.$oid.toLowerCase();
  if (typeof id === "string") return "s:" + id;
  return "j:" + JSON.stringify(id);
}

/** The 24 hex digits of an ObjectId _id, or null. */
function oidHex(id) {
  if (id && typeof id === "object" && typeof id.$oid === "string" && /^[0-9a-fA-F]{24}$/.test(id.$oid))
    return id.$oid.toLowerCase();
  return null;
}

/** Milliseconds since the epoch of an extended-JSON date ({$date: n | "iso" | {$numberLong}}). */
export function dateMillis(v) {
  if (v === null || v === undefined) return null;
  let d = typeof v === "object" && "$date" in v ? v.$date : v;
  if (d && typeof d === "object" && typeof d.$numberLong === "string") d = Number(d.$numberLong);
  if (typeof d === "number") return Number.isFinite(d) ? d : null;
  if (typeof d === "string") {
    const t = Date.parse(d);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}

/**
 * When a message was sent: its `timestamp` when the server stamped one, else the
 * creation time held in the first 4 bytes of its ObjectId (seconds), else null.
 */
export function messageTime(doc) {
  const t = dateMillis(doc && doc.timestamp);
  if (t !== null) return t;
  const hex = oidHex(doc && doc._id);
  if (hex) return parseInt(hex.slice(0, 8), 16) * 1000;
  return null;
}

/**
 * Turns a stored document into the chat's view of a message, or null when it is not
 * a chat message (no _id, or a keep-alive like the WebChat's empty frames).
 */
export function toMessage(doc) {
  if (!doc || typeof doc !== "object" || doc._id === undefined) return null;
  const text = doc.message === undefined || doc.message === null ? "" : String(doc.message);
  const from = doc.from === undefined || doc.from === null ? "" : String(doc.from);
  if (text === "" && from === "") return null;
  // Without a timestamp or an ObjectId, the time it reached this page is the best guess.
  const time = messageTime(doc) ?? Date.now();
  return { key: idKey(doc._id), id: doc._id, from, text, time };
}

/** Order of the conversation: oldest first, by time, then by _id (as the server sorts ties). */
export function compareMessages(a, b) {
  if (a.time !== b.time) return a.time - b.time;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The history order: newest first, _id breaking ties so that pages never overlap or skip. */
export const HISTORY_SORT = "{timestamp:-1,_id:-1}";

/** The query of history page `page` (1 = the newest messages), as rheo-client takes it. */
export function historyQuery(page, pageSize = PAGE_SIZE) {
  return { sort: HISTORY_SORT, page, pagesize: pageSize };
}

/**
 * The messages on screen, kept sorted and unique by _id. `merge` returns how many
 * messages were new, and whether any of the given ones was already known (the overlap
 * that proves there is no gap between what was held and what arrived).
 */
export class MessageStore {
  constructor() {
    this.byKey = new Map();
    this.list = [];
  }

  get size() {
    return this.list.length;
  }

  has(key) {
    return this.byKey.has(key);
  }

  oldest() {
    return this.list[0] ?? null;
  }

  newest() {
    return this.list[this.list.length - 1] ?? null;
  }

  merge(docs) {
    let added = 0;
    let overlap = false;
    for (const doc of docs) {
      const m = toMessage(doc);
      if (!m) continue;
      if (this.byKey.has(m.key)) {
        overlap = true;
        continue;
      }
      this.byKey.set(m.key, m);
      added++;
    }
    if (added) this.list = [...this.byKey.values()].sort(compareMessages);
    return { added, overlap };
  }

  clear() {
    this.byKey.clear();
    this.list = [];
  }
}

/** Local calendar day of a time, as a sortable key ("2026-11-01"). */
export function dayKey(millis) {
  const d = new Date(millis);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** "Today", "Yesterday" or a long date, for the divider above each day's messages. */
export function dayLabel(millis, now = Date.now()) {
  const key = dayKey(millis);
  if (key === dayKey(now)) return "Today";
  const y = new Date(now);
  y.setDate(y.getDate() - 1);
  if (key === dayKey(y.getTime())) return "Yesterday";
  return new Date(millis).toLocaleDateString(undefined, {
    weekday: "long", year: "numeric", month: "long", day: "numeric",
  });
}

/** "14:05" in the browser's locale. */
export function timeLabel(millis) {
  return new Date(millis).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

// ---- who is online and who is typing (the stream's presence and broadcasts)

/** At most one "typing" broadcast per this many ms while typing (the server allows 20 a second). */
export const TYPING_SEND_INTERVAL_MS = 2000;
/** A "typing" indicator clears this long after that nickname's last typing broadcast. */
export const TYPING_TIMEOUT_MS = 3000;

/** The nicknames of the stream's members, each once, sorted; members without one are readers. */
export function onlineNicks(members) {
  const nicks = new Set();
  for (const m of members ?? []) {
    const nick = validNickname(m && m.info && m.info.nick);
    if (nick) nicks.add(nick);
  }
  return [...nicks].sort((a, b) => a.localeCompare(b));
}

/** The nickname a typing broadcast names ({typing: "<nick>"}), or null for any other value. */
export function typingNick(value) {
  return value && typeof value === "object" ? validNickname(value.typing) : null;
}

/** "ann is typing...", "ann and bob are typing...", "ann, bob and cy are typing...", "Several people are typing...". */
export function typingText(nicks) {
  if (nicks.length === 0) return "";
  if (nicks.length === 1) return `${nicks[0]} is typing...`;
  if (nicks.length <= 3) return `${nicks.slice(0, -1).join(", ")} and ${nicks.at(-1)} are typing...`;
  return "Several people are typing...";
}

/** The sending side: whether a keystroke now should broadcast "typing" (at most one per interval). */
export class TypingThrottle {
  constructor(intervalMs = TYPING_SEND_INTERVAL_MS) {
    this.intervalMs = intervalMs;
    this.last = null;
  }

  /** True when a broadcast is due; the caller sends it (and calls sent()). */
  due(now) {
    return this.last === null || now - this.last >= this.intervalMs;
  }

  sent(now) {
    this.last = now;
  }

  /** The message was sent: the next keystroke is news again. */
  reset() {
    this.last = null;
  }
}

/** The receiving side: who is typing, each until TYPING_TIMEOUT_MS after their last broadcast or their message. */
export class TypingBoard {
  constructor(timeoutMs = TYPING_TIMEOUT_MS) {
    this.timeoutMs = timeoutMs;
    this.until = new Map(); // nick -> when the indicator clears
  }

  typed(nick, now) {
    this.until.delete(nick); // the order is the order of their latest broadcast
    this.until.set(nick, now + this.timeoutMs);
  }

  /** Their message arrived (or they left): no longer typing. Returns whether they were. */
  stopped(nick) {
    return this.until.delete(nick);
  }

  clear() {
    this.until.clear();
  }

  /** The nicknames typing at `now`, in the order of their latest broadcast; drops the expired. */
  active(now) {
    for (const [nick, until] of this.until) if (until <= now) this.until.delete(nick);
    return [...this.until.keys()];
  }

  /** When the next indicator clears, or null. */
  nextExpiry() {
    let next = null;
    for (const until of this.until.values()) if (next === null || until < next) next = until;
    return next;
  }
}
