// The client's pure parts, no server: the SSE parser, live query diffs, URLs and ids,
// ETags, backoff.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { RheoClient, SseParser, applyDiff, backoffDelay, date, eventToken, oid } from "../src/index.js";
import { codeOfEndReason } from "../src/sse.js";
import { documentPath, etagValue, idFromLocation, queryParams } from "../src/util.js";

function parse(chunks) {
  const events = [];
  const comments = [];
  const p = new SseParser((e) => events.push(e), (c) => comments.push(c));
  for (const c of chunks) p.push(c);
  p.end();
  return { events, comments };
}

describe("SseParser", () => {
  it("reads id, event and multi-line data, and comments", () => {
    const { events, comments } = parse([": keep-alive\n\nid: 01\nevent: change\ndata: {\"a\":\ndata: 1}\n\n"]);
    assert.deepEqual(events, [{ type: "change", data: "{\"a\":\n1}", id: "01" }]);
    assert.deepEqual(comments, ["keep-alive"]);
  });

  it("accepts CRLF and CR line ends, split anywhere, and a BOM", () => {
    const text = "\ufeffid: 7\r\nevent: init\r\ndata: x\r\n\r\nid: 8\rdata: y\r\r";
    for (let cut = 0; cut <= text.length; cut++) {
      const { events } = parse([text.slice(0, cut), text.slice(cut)]);
      assert.deepEqual(events, [{ type: "init", data: "x", id: "7" }, { type: "message", data: "y", id: "8" }], `cut at ${cut}`);
    }
  });

  it("keeps the last id across events and does not dispatch without data", () => {
    const { events } = parse(["id: 5\n\nevent: x\n\ndata: a\n\n", "data:b\n\n", "data: c"]);
    assert.deepEqual(events, [{ type: "message", data: "a", id: "5" }, { type: "message", data: "b", id: "5" }]);
  });

  it("maps rheo's end comments to the WebSocket close codes", () => {
    assert.equal(codeOfEndReason("server shutting down"), 1001);
    assert.equal(codeOfEndReason("slow consumer: 1048576 bytes queued"), 1013);
    assert.equal(codeOfEndReason("collection dropped"), 1000);
    assert.equal(codeOfEndReason("stream definition changed"), 1000);
    assert.equal(codeOfEndReason("change feed ended: x"), 1011);
    assert.equal(codeOfEndReason(null), 1006);
  });
});

describe("applyDiff", () => {
  const d = (id) => ({ _id: id });
  it("applies add, remove and update in order", () => {
    const start = [d("a"), d("b"), d("c")];
    const out = applyDiff(start, [
      { op: "remove", at: 1 },
      { op: "add", at: 0, doc: d("z") },
      { op: "update", at: 2, to: 0, doc: { _id: "c", v: 1 } },
    ]);
    assert.deepEqual(out, [{ _id: "c", v: 1 }, d("z"), d("a")]);
    assert.deepEqual(start, [d("a"), d("b"), d("c")], "the input is left as it was");
  });

  it("throws on ops that do not fit", () => {
    assert.throws(() => applyDiff([], [{ op: "remove", at: 0 }]), RangeError);
    assert.throws(() => applyDiff([d("a")], [{ op: "add", at: 2, doc: d("b") }]), RangeError);
    assert.throws(() => applyDiff([d("a")], [{ op: "update", at: 0, to: 1, doc: d("a") }]), RangeError);
    assert.throws(() => applyDiff([d("a")], [{ op: "add", at: 0 }]), TypeError);
    assert.throws(() => applyDiff([d("a")], [{ op: "move", at: 0 }]), TypeError);
  });
});

describe("URLs, ids and ETags", () => {
  it("addresses documents by id type", () => {
    assert.deepEqual(documentPath("notes", "n1"), { path: "/notes/n1", query: {} });
    assert.deepEqual(documentPath("notes", "a b/c"), { path: "/notes/a%20b%2Fc", query: {} });
    assert.deepEqual(documentPath("notes", oid("6b16a12b9c49369e1fa4aece")), { path: "/notes/6b16a12b9c49369e1fa4aece", query: {} });
    assert.deepEqual(documentPath("notes", "6b16a12b9c49369e1fa4aece"), { path: "/notes/6b16a12b9c49369e1fa4aece", query: { id_type: "STRING" } });
    assert.deepEqual(documentPath("notes", 7), { path: "/notes/7", query: { id_type: "NUMBER" } });
    assert.deepEqual(documentPath("db/notes", "x", "STRING"), { path: "/db/notes/x", query: { id_type: "STRING" } });
    assert.throws(() => documentPath("notes", { a: 1 }), TypeError);
    assert.throws(() => documentPath("/notes", "x"), TypeError);
  });

  it("reads ids back from Location headers and links", () => {
    assert.equal(idFromLocation("/notes/n1"), "n1");
    assert.equal(idFromLocation("/notes/7?id_type=NUMBER"), 7);
    assert.deepEqual(idFromLocation("/notes/6B16A12B9C49369E1FA4AECE"), { $oid: "6b16a12b9c49369e1fa4aece" });
    assert.equal(idFromLocation("/notes/6b16a12b9c49369e1fa4aece?id_type=STRING"), "6b16a12b9c49369e1fa4aece");
    assert.equal(idFromLocation("/notes/a%20b"), "a b");
  });

  it("builds query parameters: JSON, strings as given, repeated filters", () => {
    const p = queryParams({ filter: [{ a: 1 }, "{b:2}"], sort: "-n", keys: { n: 1 }, page: 2, pagesize: 5, avars: { x: 1 }, params: { explain: true } });
    assert.deepEqual([...p], [["filter", "{\"a\":1}"], ["filter", "{b:2}"], ["sort", "-n"], ["keys", "{\"n\":1}"], ["page", "2"], ["pagesize", "5"], ["avars", "{\"x\":1}"], ["explain", "true"]]);
  });

  it("takes an ETag as a string, an ObjectId or a document's _etag", () => {
    assert.equal(etagValue("abc"), "abc");
    assert.equal(etagValue({ $oid: "6b16a12b9c49369e1fa4aece" }), "6b16a12b9c49369e1fa4aece");
    assert.equal(etagValue({ _id: 1, _etag: { $oid: "6b16a12b9c49369e1fa4aece" } }), "6b16a12b9c49369e1fa4aece");
    assert.equal(etagValue(undefined), null);
  });

  it("builds URLs under a path prefix, and WebSocket URLs", () => {
    const c = new RheoClient("http://h:8080/api/");
    assert.equal(c.baseUrl, "http://h:8080/api");
    assert.equal(c._url("/notes", { sort: { n: -1 } }), "http://h:8080/api/notes?sort=%7B%22n%22%3A-1%7D");
    assert.equal(c._url("/notes/_streams/all", {}, true), "ws://h:8080/api/notes/_streams/all");
    assert.equal(new RheoClient("https://h")._url("/x", {}, true), "wss://h/x");
  });

  it("checks names before connecting anything", () => {
    const c = new RheoClient("http://127.0.0.1:9");
    assert.throws(() => c.subscribe("/notes", "all"), TypeError);
    assert.throws(() => c.subscribe("notes", ""), TypeError);
    assert.throws(() => c.live(""), TypeError);
    assert.throws(() => c.subscribe("notes", "all", { transport: "websocket" }), /WebSocket constructor/);
  });

  it("makes extended JSON values and reads event tokens", () => {
    assert.deepEqual(date(new Date(5)), { $date: 5 });
    assert.deepEqual(date("1970-01-01T00:00:00.007Z"), { $date: 7 });
    assert.throws(() => oid("xyz"), TypeError);
    assert.equal(eventToken({ _id: { _data: "00a" } }), "00a");
    assert.equal(eventToken({ fullDocument: {} }), null);
  });
});

describe("backoffDelay", () => {
  it("doubles from the initial delay up to the cap, with jitter below the base", () => {
    const opts = { initialMs: 100, maxMs: 1000 };
    assert.equal(backoffDelay(0, opts, () => 1), 100);
    assert.equal(backoffDelay(0, opts, () => 0), 50);
    assert.equal(backoffDelay(3, opts, () => 1), 800);
    assert.equal(backoffDelay(4, opts, () => 1), 1000);
    assert.equal(backoffDelay(1000, opts, () => 1), 1000);
    for (let i = 0; i < 100; i++) {
      const v = backoffDelay(10, opts);
      assert.ok(v >= 500 && v <= 1000, String(v));
    }
  });
});

describe("the package", () => {
  it("exports at runtime what index.d.ts declares", async () => {
    const { readFile } = await import("node:fs/promises");
    const dts = await readFile(new URL("../index.d.ts", import.meta.url), "utf8");
    const declared = [...dts.matchAll(/^export declare (?:class|function|const) (\w+)/gm)].map((m) => m[1]).sort();
    const mod = await import("rheo-client");
    assert.deepEqual(Object.keys(mod).sort(), declared);
  });
});
