// Server-Sent Events over fetch streaming: works in browsers and in Node (which has no
// EventSource), and, unlike EventSource, can send an Authorization header. Reconnection is
// not done here: the caller decides (channel.js), sending the last id as Last-Event-ID.

import { RheoError } from "./errors.js";

/**
 * The event-stream format (HTML's "server-sent events" parsing rules): lines end with
 * CRLF, LF or CR; `field: value`; a blank line dispatches the event; `:` starts a comment.
 */
export class SseParser {
  /**
   * @param {(ev: {type: string, data: string, id: string | null}) => void} onEvent
   * @param {(text: string) => void} [onComment]
   */
  constructor(onEvent, onComment = () => {}) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.buffer = "";
    this.started = false;
    this.data = [];
    this.type = "";
    this.lastId = null;
  }

  /** Feeds decoded text; events are dispatched as their blank line arrives. */
  push(text) {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.buffer += text;
    this.lines(false);
  }

  /** The stream ended: a last line without its terminator still counts; no dispatch. */
  end() {
    this.lines(true);
    if (this.buffer !== "") this.line(this.buffer);
    this.buffer = "";
  }

  lines(final) {
    const buf = this.buffer;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A CR at the end of the chunk may be the first half of a CRLF.
      if (c === 13 && i + 1 === buf.length && !final) break;
      const line = buf.slice(start, i);
      if (c === 13 && buf.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
      this.line(line);
    }
    this.buffer = buf.slice(start);
  }

  line(line) {
    if (line === "") return this.dispatch();
    if (line.charCodeAt(0) === 58 /* : */) return this.onComment(line.slice(1).replace(/^ /, ""));
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.type = value;
    else if (field === "id") {
      if (!value.includes("\0")) this.lastId = value;
    }
    // "retry" and unknown fields are ignored: the client has its own backoff.
  }

  dispatch() {
    if (this.data.length === 0) {
      this.type = "";
      return;
    }
    const ev = { type: this.type || "message", data: this.data.join("\n"), id: this.lastId };
    this.data = [];
    this.type = "";
    this.onEvent(ev);
  }
}

/** The close code a WebSocket would have had, from rheo's `: end: <reason>` comment. */
export function codeOfEndReason(reason) {
  if (reason === null) return 1006;
  if (/^(collection dropped|stream definition changed)/.test(reason)) return 1000;
  if (/^server shutting down/.test(reason)) return 1001;
  if (/^slow consumer/.test(reason)) return 1013;
  if (/^history lost/.test(reason)) return 4410;
  return 1011;
}

/**
 * Opens one SSE response. Calls onOpen(response) once the 200 arrived, onEvent for every
 * event, and onClose(info) exactly once, with info = {code, reason, status?, error?,
 * clientClosed?}: `code` is what a WebSocket would have closed with.
 * Returns {close()}.
 */
export function openSse({ fetch, url, headers = {}, lastEventId = null, idleTimeoutMs = 0, credentials,
  onOpen = () => {}, onEvent = () => {}, onClose = () => {} }) {
  const controller = new AbortController();
  let finished = false;
  let idleTimer = null;
  let endReason = null;

  const finish = (info) => {
    if (finished) return;
    finished = true;
    clearTimeout(idleTimer);
    controller.abort();
    onClose(info);
  };
  const armIdle = () => {
    if (!idleTimeoutMs) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => finish({ code: 1006, reason: `no data for ${idleTimeoutMs} ms` }), idleTimeoutMs);
  };

  (async () => {
    const h = { ...headers, Accept: "text/event-stream", "Cache-Control": "no-cache" };
    if (lastEventId !== null && lastEventId !== undefined && lastEventId !== "") h["Last-Event-ID"] = lastEventId;
    let res;
    try {
      const init = { headers: h, signal: controller.signal, cache: "no-store" };
      if (credentials) init.credentials = credentials;
      armIdle();
      res = await fetch(url, init);
    } catch (error) {
      return finish({ code: 1006, reason: "cannot connect", error: new RheoError(`cannot connect: ${error && error.message}`, { method: "GET", url, cause: error }) });
    }
    if (finished) return;
    if (!res.ok) {
      const error = await RheoError.fromResponse(res, "GET", url);
      return finish({ code: 1006, reason: error.message, status: res.status, error });
    }
    const type = res.headers.get("Content-Type") || "";
    if (!/^text\/event-stream/i.test(type) || !res.body) {
      return finish({ code: 1006, reason: "not an event stream", status: res.status,
        error: new RheoError(`expected text/event-stream, got ${type || "no body"}`, { status: res.status, method: "GET", url }) });
    }
    armIdle();
    onOpen(res);
    const parser = new SseParser(
      (ev) => { if (!finished) onEvent(ev); },
      (text) => { if (text.startsWith("end: ")) endReason = text.slice(5); },
    );
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (finished) return;
        if (done) break;
        armIdle();
        parser.push(decoder.decode(value, { stream: true }));
      }
      parser.push(decoder.decode());
      parser.end();
      finish({ code: codeOfEndReason(endReason), reason: endReason ?? "the response ended" });
    } catch (error) {
      finish({ code: 1006, reason: "connection lost", error });
    }
  })();

  return {
    close(code = 1000, reason = "closed by the client") {
      finish({ code, reason, clientClosed: true });
    },
  };
}
