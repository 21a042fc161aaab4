// Unit tests of the chat's pure logic (web/chat-core.js), no browser needed:
//   node --test test/web/core.test.mjs
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  FeedPosition, HISTORY_LOST, MessageStore, backoffDelay, compareMessages, dateMillis, dayKey, eventToken,
  historyPath, idKey, messageTime, streamPath, toMessage, validNickname,
} from "../../web/chat-core.js";

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

  it("asks for history newest first with _id breaking ties", () => {
    assert.equal(historyPath(3), "messages?page=3&pagesize=15&sort=%7Btimestamp%3A-1%2C_id%3A-1%7D");
  });

  it("opens the stream plain, or resuming after a token", () => {
    assert.equal(streamPath(), "messages/_streams/all");
    assert.equal(streamPath(null), "messages/_streams/all");
    assert.equal(streamPath("00000000000000a7"), "messages/_streams/all?resumeAfter=00000000000000a7");
    // Opaque: whatever the server hands out goes back intact.
    assert.equal(streamPath("a+b/c=&d"), "messages/_streams/all?resumeAfter=a%2Bb%2Fc%3D%26d");
  });

  it("reads an event's resume token from _id._data", () => {
    assert.equal(eventToken({ _id: { _data: "0000000000000002" }, operationType: "insert" }), "0000000000000002");
    assert.equal(eventToken({ _id: { _data: "" } }), null);
    assert.equal(eventToken({ _id: { $oid: "6b0f4bcc8da22b1f617b19dd" } }), null);
    assert.equal(eventToken({ from: "", message: "" }), null);
    assert.equal(eventToken(null), null);
    assert.equal(HISTORY_LOST, 4410);
  });

  it("starts from a snapshot token, resumes after the last event, reloads when history is lost", () => {
    const p = new FeedPosition();
    assert.equal(p.mode, "snapshot");
    assert.equal(p.snapshot("0000000000000010"), true);
    assert.deepEqual([p.mode, p.token], ["resume", "0000000000000010"]);
    // Before any event the snapshot's token is where a reconnection resumes.
    p.advance({ from: "", message: "" }); // no token: a keep-alive or a foreign frame
    assert.equal(p.token, "0000000000000010");
    p.advance({ _id: { _data: "0000000000000011" }, operationType: "insert" });
    p.advance({ _id: { _data: "0000000000000012" }, operationType: "update" }); // not shown, still handled
    assert.deepEqual([p.mode, p.token], ["resume", "0000000000000012"]);
    p.lost();
    assert.deepEqual([p.mode, p.token], ["snapshot", null]);
    assert.equal(p.snapshot("0000000000000020"), true);
    assert.deepEqual([p.mode, p.token], ["resume", "0000000000000020"]);
  });

  it("falls back to catching up when the server sends no Resume-Token (RESTHeart)", () => {
    const p = new FeedPosition();
    assert.equal(p.snapshot(null), false);
    assert.equal(p.mode, "catch-up");
    // RESTHeart's frames carry MongoDB resume tokens too: without the header they stay unused.
    p.advance({ _id: { _data: "8263A1..." }, operationType: "insert" });
    assert.deepEqual([p.mode, p.token], ["catch-up", null]);
    p.lost();
    assert.equal(p.mode, "catch-up");
  });

  it("backs off from half a second up to ten, with jitter", () => {
    assert.equal(backoffDelay(0, () => 0.5), 500);
    assert.equal(backoffDelay(3, () => 0.5), 4000);
    assert.equal(backoffDelay(50, () => 0.5), 10000);
    assert.ok(backoffDelay(0, () => 0) >= 375 && backoffDelay(0, () => 1) <= 625);
  });

  it("names local days", () => {
    assert.match(dayKey(Date.now()), /^\d{4}-\d{2}-\d{2}$/);
  });
});
