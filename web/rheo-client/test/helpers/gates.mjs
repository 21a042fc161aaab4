// Ways to keep a client from connecting for a while, so that a test decides what happens
// while it is away (instead of racing its backoff timer).
import WebSocket from "ws";

/** A WebSocket constructor that throws while `gate.open` is false. */
export function gatedWebSocket() {
  const gate = { open: true, attempts: 0 };
  class GatedWebSocket extends WebSocket {
    constructor(url, options) {
      gate.attempts++;
      if (!gate.open) throw new Error("gate closed");
      super(url, options);
    }
  }
  return { WebSocket: GatedWebSocket, gate };
}

/** A fetch that fails like an unreachable server while `gate.open` is false. */
export function gatedFetch() {
  const gate = { open: true, attempts: 0 };
  const f = (url, init) => {
    gate.attempts++;
    return gate.open ? fetch(url, init) : Promise.reject(new TypeError("fetch failed (gate closed)"));
  };
  return { fetch: f, gate };
}
