// Unit tests of the chat's pure logic (web/chat-core.js), no browser needed:
//   node --test test/web/core.test.mjs
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  COLLECTION, MessageStore, PAGE_SIZE, STREAM, TYPING_SEND_INTERVAL_MS, TYPING_TIMEOUT_MS, TypingBoard, TypingThrottle,
  compareMessages, dateMillis, dayKey, historyQuery, idKey, messageTime, onlineNicks, toMessage, typingNick, typingText,
  validNickname,
} from "../../web/chat-core.js";
// Resume tokens, the stream's position and the backoff moved into rheo-client, which the
// chat uses (its own tests cover them); here only what the chat hands to it.
import { RheoClient } from "../../web/rheo-client/src/index.js";

const oid = (secs, tail = "0000000000000000") => ({ $oid: secs.toString(16).padStart(8, "0") + tail });

describe("chat-core", () => {
  it("validates nicknames: 3 to 20 characters after trimming", () => {
    assert.equal(validNickname("ab"), null);
    assert.equal(validNickname("  ab  "), null);
    assert.equal(validNickname(" abc "), "abc");
    assert.equal(validNickname("x".repeat(20)), "x".repeat(20));
    assert.equal(validNickname("x".repeat(21)), null);
    assert.equal(validNickname("😀😀😀"), "😀😀😀"); // code points, not UTF-16 units
    assert.equal(validNickname(undefined), null);
  });

  it("reads extended JSON dates", () => {
    assert.equal(dateMillis({ $date: 1700000000123 }), 1700000000123);
    assert.equal(dateMillis({ $date: "2023-11-14T22:13:20.123Z" }), 1700000000123);
    assert.equal(dateMillis({ $date: { $numberLong: "1700000000123" } }), 1700000000123);
    assert.equal(dateMillis({ $date: "not a date" }), null);
    assert.equal(dateMillis(undefined), null);
  });

  it("takes the time from timestamp, else from the ObjectId", () => {
    assert.equal(messageTime({ _id: oid(1), timestamp: { $date: 5000 } }), 5000);
    assert.equal(messageTime({ _id: oid(1700000000) }), 1700000000000);
    assert.equal(messageTime({ _id: "plain" }), null);
  });

  it("keys ids of every type", () => {
    assert.equal(idKey({ $oid: "ABCDEF0123456789ABCDEF01" }), "abcdef0123456789abcdef01");
    assert.equal(idKey("x"), "s:x");
    assert.equal(idKey(7), "j:7");
    assert.notEqual(idKey("7"), idKey(7));
  });

  it("skips keep-alives and documents without an id", () => {
    assert.equal(toMessage({ _id: oid(1), from: "", message: "" }), null);
    assert.equal(toMessage({ from: "a", message: "b" }), null);
    assert.equal(toMessage({ _id: oid(1), from: "a", message: 5 }).text, "5");
  });

  it("orders by time, then by id", () => {
    const a = toMessage({ _id: oid(10, "0000000000000002"), from: "a", message: "1", timestamp: { $date: 1 } });
    const b = toMessage({ _id: oid(10, "0000000000000001"), from: "a", message: "2", timestamp: { $date: 2 } });
    const c = toMessage({ _id: oid(10, "0000000000000003"), from: "a", message: "3", timestamp: { $date: 2 } });
    assert.deepEqual([c, b, a].sort(compareMessages).map((m) => m.text), ["1", "2", "3"]);
  });

  it("merges pages and live events without duplicates, sorted, and reports overlap", () => {
    const s = new MessageStore();
    const doc = (n) => ({ _id: oid(1000 + n), from: "u", message: `m${n}` });
    const newestFirst = (from, to) => Array.from({ length: to - from + 1 }, (_, k) => doc(to - k));
    assert.deepEqual(s.merge(newestFirst(26, 40)), { added: 15, overlap: false });
    assert.deepEqual(s.merge([doc(41)]), { added: 1, overlap: false });
    assert.deepEqual(s.merge([doc(41)]), { added: 0, overlap: true });
    // Reconnected: the newest page shares messages with what is held.
    assert.deepEqual(s.merge(newestFirst(30, 44)), { added: 3, overlap: true });
    assert.deepEqual(s.list.map((m) => m.text), Array.from({ length: 19 }, (_, k) => `m${26 + k}`));
    assert.equal(s.oldest().text, "m26");
    assert.equal(s.newest().text, "m44");
  });

  it("asks for history newest first with _id breaking ties", async () => {
    assert.deepEqual(historyQuery(3), { sort: "{timestamp:-1,_id:-1}", page: 3, pagesize: PAGE_SIZE });
    assert.equal(PAGE_SIZE, 15);
    // As the client sends it: the WebChat's query, the shell-syntax sort as written.
    const urls = [];
    const db = new RheoClient("http://rheo.test/api", {
      fetch: async (url) => {
        urls.push(url);
        return new Response("[]", { status: 200, headers: { "Content-Type": "application/json" } });
      },
    });
    await db.find(COLLECTION, historyQuery(3));
    assert.deepEqual(urls, ["http://rheo.test/api/messages?sort=%7Btimestamp%3A-1%2C_id%3A-1%7D&page=3&pagesize=15"]);
    assert.equal(STREAM, "all");
  });

  it("names local days", () => {
    assert.match(dayKey(Date.now()), /^\d{4}-\d{2}-\d{2}$/);
  });

  it("lists who is online: each nickname once, sorted, readers without one left out", () => {
    const member = (id, info) => ({ id, user: null, info, since: { $date: 1 } });
    assert.deepEqual(onlineNicks([
      member("r-1", { nick: "bob" }), member("r-2", { nick: "Ann" }), member("r-3", { nick: "bob" }),
      member("r-4", {}), member("r-5", { nick: "x" }), member("r-6", { nick: 42 }), member("r-7", { nick: " cyd " }),
    ]), ["Ann", "bob", "cyd"]);
    assert.deepEqual(onlineNicks([]), []);
    assert.deepEqual(onlineNicks(undefined), []);
  });

  it("reads typing broadcasts and says who is typing", () => {
    assert.equal(typingNick({ typing: "ann" }), "ann");
    for (const v of [null, "ann", { typing: "x" }, { typing: true }, [1], { other: "ann" }]) assert.equal(typingNick(v), null);
    assert.equal(typingText([]), "");
    assert.equal(typingText(["ann"]), "ann is typing...");
    assert.equal(typingText(["ann", "bob"]), "ann and bob are typing...");
    assert.equal(typingText(["ann", "bob", "cy"]), "ann, bob and cy are typing...");
    assert.equal(typingText(["ann", "bob", "cy", "dee"]), "Several people are typing...");
  });

  it("throttles typing broadcasts to one per interval, again at once after a send", () => {
    const t = new TypingThrottle();
    assert.equal(TYPING_SEND_INTERVAL_MS, 2000);
    assert.equal(t.due(1000), true);
    t.sent(1000);
    assert.equal(t.due(1001), false);
    assert.equal(t.due(2999), false);
    assert.equal(t.due(3000), true);
    t.sent(3000);
    t.reset();
    assert.equal(t.due(3001), true);
  });

  it("clears a typing indicator after the timeout or when the message arrives", () => {
    const b = new TypingBoard();
    assert.equal(TYPING_TIMEOUT_MS, 3000);
    b.typed("ann", 0);
    b.typed("bob", 1000);
    assert.deepEqual(b.active(500), ["ann", "bob"]);
    assert.equal(b.nextExpiry(), 3000);
    b.typed("ann", 2000); // typing again: later, and after bob
    assert.deepEqual(b.active(3500), ["bob", "ann"]);
    assert.deepEqual(b.active(4000), ["ann"]);
    assert.equal(b.nextExpiry(), 5000);
    assert.equal(b.stopped("ann"), true);
    assert.equal(b.stopped("ann"), false);
    assert.deepEqual(b.active(4001), []);
    assert.equal(b.nextExpiry(), null);
  });
});
