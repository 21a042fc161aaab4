// Unit tests of the chat's pure logic (web/chat-core.js), no browser needed:
//   node --test test/web/core.test.mjs
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  COLLECTION, MessageStore, PAGE_SIZE, STREAM, compareMessages, dateMillis, dayKey, historyQuery, idKey, messageTime,
  toMessage, validNickname,
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
});
