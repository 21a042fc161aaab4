// rheo-client: the JavaScript client of rheo (REST, auth, change streams with resume,
// snapshot + changes, live queries) for browsers and Node. No runtime dependency: in Node
// (no global WebSocket before 22) pass a WebSocket constructor, e.g. the ws package's, or
// let it use SSE over fetch.

import { RheoClient } from "./client.js";

export { RheoClient } from "./client.js";
export { RheoError } from "./errors.js";
export { Subscription, eventToken } from "./subscription.js";
export { LiveQuery, applyDiff } from "./live.js";
export { TERMINAL_CLOSE_CODES, HISTORY_LOST } from "./channel.js";
export { SseParser } from "./sse.js";
export { backoffDelay } from "./util.js";

/** createClient(url, options) is new RheoClient(url, options). */
export function createClient(baseUrl, options) {
  return new RheoClient(baseUrl, options);
}

/** An ObjectId in extended JSON: {$oid: "<24 hex>"}. */
export function oid(hex) {
  if (typeof hex !== "string" || !/^[0-9a-fA-F]{24}$/.test(hex)) throw new TypeError(`not an ObjectId: ${JSON.stringify(hex)}`);
  return { $oid: hex.toLowerCase() };
}

/** A date in extended JSON: {$date: <epoch millis>}, from a Date, millis or an ISO string. */
export function date(d = new Date()) {
  const ms = d instanceof Date ? d.getTime() : typeof d === "string" ? Date.parse(d) : d;
  if (typeof ms !== "number" || !Number.isFinite(ms)) throw new TypeError(`not a date: ${JSON.stringify(d)}`);
  return { $date: ms };
}
