// REST against a real rheo: collections, documents, bulk writes, aggregations, indexes,
// ETags, errors (status and the server's message) and AbortSignal.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { RheoClient, RheoError, oid } from "../src/index.js";
import { Rheo, failure } from "./helpers/server.mjs";

let server;
let db;

before(async () => {
  server = await new Rheo().start();
  db = new RheoClient(server.url);
});
after(async () => {
  await server?.dispose();
});


describe("collections", () => {
  it("creates, reads, merges metadata and drops with If-Match", async () => {
    const made = await db.createCollection("c1", { streams: [{ uri: "all", stages: [] }] });
    assert.equal(made.created, true);
    assert.match(made.etag, /^[0-9a-f]{24}$/);
    const again = await db.createCollection("c1", { streams: [{ uri: "all", stages: [] }] });
    assert.equal(again.created, false);
    assert.ok((await db.listCollections()).includes("c1"));
    const merged = await db.updateCollection("c1", { aggrs: [{ uri: "n", stages: [{ $count: "n" }] }] });
    const meta = await db.getCollection("c1");
    assert.deepEqual(meta.streams, [{ uri: "all", stages: [] }]);
    assert.equal(meta.aggrs[0].uri, "n");
    assert.equal(meta._etag.$oid, merged.etag);

    const stale = await failure(db.dropCollection("c1", { ifMatch: again.etag }));
    assert.ok(stale instanceof RheoError);
    assert.equal(stale.status, 412);
    assert.equal(stale.etag, merged.etag, "a 412 tells the current ETag");
    await db.dropCollection("c1", { ifMatch: meta._etag });
    assert.equal((await failure(db.getCollection("c1"))).status, 404);

    await db.createCollection("c2");
    await db.dropCollection("c2"); // reads the ETag itself
    assert.equal((await failure(db.find("c2"))).status, 404);
  });

  it("refuses a bad stream definition with the server's message", async () => {
    const err = await failure(db.createCollection("c3", { streams: [{ uri: "x", stages: [{ $lookup: {} }] }] }));
    assert.equal(err.status, 400);
    assert.match(err.message, /lookup/);
    assert.equal(err.body["http status code"], 400);
  });
});

describe("documents", () => {
  before(async () => {
    await db.createCollection("docs");
  });

  it("inserts, reads, updates with operators, replaces and deletes, with ETags", async () => {
    const a = await db.insert("docs", { _id: "a", n: 1, tags: [] });
    assert.equal(a.id, "a");
    assert.equal(a.location, "/docs/a");
    assert.match(a.etag, /^[0-9a-f]{24}$/);
    const gen = await db.insert("docs", { n: 2 });
    assert.match(gen.id.$oid, /^[0-9a-f]{24}$/);
    assert.equal((await db.get("docs", gen.id)).n, 2);

    const doc = await db.get("docs", "a");
    assert.deepEqual({ ...doc, _etag: undefined }, { _id: "a", n: 1, tags: [], _etag: undefined });
    assert.equal(doc._etag.$oid, a.etag);

    const u = await db.update("docs", "a", { $inc: { n: 5 }, $push: { tags: "x" }, done: true }, { ifMatch: doc });
    assert.equal(u.created, false);
    assert.notEqual(u.etag, a.etag);
    assert.deepEqual(await db.get("docs", "a", { keys: { n: 1, tags: 1, done: 1, _id: 0 } }), { n: 6, tags: ["x"], done: true });

    const stale = await failure(db.update("docs", "a", { n: 0 }, { ifMatch: a.etag }));
    assert.equal(stale.status, 412);
    assert.equal(stale.message, "the document ETag does not match If-Match");
    assert.equal(stale.etag, u.etag);

    const r = await db.replace("docs", "a", { m: 1 }, { ifMatch: u.etag });
    assert.deepEqual({ ...(await db.get("docs", "a")), _etag: undefined }, { _id: "a", m: 1, _etag: undefined });
    assert.equal((await db.replace("docs", "b", { m: 2 }, { upsert: true })).created, true);
    assert.equal((await db.update("docs", "c", { $set: { m: 3 } }, { upsert: true })).created, true);
    assert.equal((await failure(db.replace("docs", "zz", { m: 2 }))).status, 404);

    await db.delete("docs", "a", { ifMatch: r.etag });
    const gone = await failure(db.get("docs", "a"));
    assert.equal(gone.status, 404);
    assert.match(gone.message, /not exist|not found/);
    assert.equal((await failure(db.delete("docs", "a"))).status, 404);
  });

  it("addresses numbers and strings of 24 hex digits", async () => {
    const n = await db.insert("docs", { _id: 42, v: "number" });
    assert.equal(n.id, 42);
    const hex = "6b16a12b9c49369e1fa4aece";
    await db.insert("docs", { _id: hex, v: "string" });
    await db.insert("docs", { _id: oid(hex), v: "oid" });
    assert.equal((await db.get("docs", 42)).v, "number");
    assert.equal((await db.get("docs", hex)).v, "string");
    assert.equal((await db.get("docs", oid(hex))).v, "oid");
    await db.update("docs", hex, { $set: { w: 1 } });
    assert.equal((await db.get("docs", hex)).w, 1);
    assert.equal((await db.get("docs", oid(hex))).w, undefined);
    await db.delete("docs", 42);
    assert.equal((await failure(db.get("docs", 42))).status, 404);
    const dup = await failure(db.insert("docs", { _id: hex }));
    assert.equal(dup.status, 409);
  });

  it("finds with filter, sort, keys, page and pagesize, and counts", async () => {
    await db.createCollection("q");
    await db.insertMany("q", Array.from({ length: 12 }, (_, i) => ({ _id: `d${String(i).padStart(2, "0")}`, n: i, odd: i % 2 === 1 })));
    const page2 = await db.find("q", { filter: { odd: true }, sort: { n: -1 }, keys: { n: 1 }, page: 2, pagesize: 2 });
    assert.deepEqual(page2, [{ _id: "d07", n: 7 }, { _id: "d05", n: 5 }]);
    // Shell syntax and repeated filters (ANDed) pass through as strings.
    const shell = await db.find("q", { filter: ["{n:{$gte:3}}", { n: { $lt: 6 } }], sort: "n", keys: "{n:1,_id:0}" });
    assert.deepEqual(shell, [{ n: 3 }, { n: 4 }, { n: 5 }]);
    assert.equal(await db.count("q", { filter: { odd: false } }), 6);
    assert.equal(await db.count("q"), 12);
    const snap = await db.snapshot("q", { pagesize: 1 });
    assert.equal(snap.docs.length, 1);
    assert.match(snap.token, /^[0-9a-f]{16}$/);
  });

  it("answers errors with status and the server's message", async () => {
    const bad = await failure(db.find("q", { pagesize: 5000 }));
    assert.equal(bad.status, 400);
    assert.match(bad.message, /pagesize/);
    const filter = await failure(db.find("q", { filter: "{n:" }));
    assert.equal(filter.status, 400);
    assert.match(filter.message, /filter/);
    const missing = await failure(db.find("nothing-here"));
    assert.equal(missing.status, 404);
    assert.equal(missing.message, "collection 'nothing-here' does not exist");
    const code = await failure(db.find("q", { filter: { $where: "1" } }));
    assert.equal(code.status, 400);
    assert.equal(code.name, "RheoError");
  });
});

describe("bulk writes", () => {
  it("inserts many in one transaction, updates and deletes by filter", async () => {
    await db.createCollection("bulk");
    const res = await db.insertMany("bulk", [{ _id: "x", n: 1 }, { n: 2 }, { _id: 3, n: 3 }]);
    assert.equal(res.inserted, 3);
    assert.equal(res.ids[0], "x");
    assert.match(res.ids[1].$oid, /^[0-9a-f]{24}$/);
    assert.equal(res.ids[2], 3);

    const dup = await failure(db.insertMany("bulk", [{ _id: "y" }, { _id: "x" }]));
    assert.equal(dup.status, 409);
    assert.equal((await failure(db.get("bulk", "y"))).status, 404, "nothing of a refused bulk insert is written");

    const upd = await db.updateMany("bulk", { n: { $gte: 2 } }, { $set: { big: true } });
    assert.equal(upd.matched, 2);
    assert.equal(upd.modified, 2);
    assert.equal(await db.count("bulk", { filter: { big: true } }), 2);
    const everything = await failure(db.deleteMany("bulk", {}));
    assert.equal(everything.status, 400);
    const del = await db.deleteMany("bulk", { big: true });
    assert.equal(del.deleted, 2);
    assert.deepEqual((await db.find("bulk")).map((d) => d._id), ["x"]);
  });
});

describe("aggregations and indexes", () => {
  it("runs a declared aggregation with avars, page and pagesize", async () => {
    await db.createCollection("sales", {
      aggrs: [{
        uri: "revenue",
        stages: [
          { _$match: { quantity: { _$gte: { _$var: ["min", 0] } } } },
          { _$group: { _id: "$item", total: { _$sum: { _$multiply: ["$price", "$quantity"] } } } },
          { _$sort: { total: -1 } }, { _$skip: "@skip" }, { _$limit: "@limit" },
        ],
      }],
    });
    await db.insertMany("sales", [
      { item: "abc", price: 10, quantity: 2 }, { item: "jkl", price: 20, quantity: 1 },
      { item: "xyz", price: 5, quantity: 10 }, { item: "abc", price: 10, quantity: 10 },
    ]);
    assert.deepEqual(await db.aggregate("sales", "revenue"), [
      { _id: "abc", total: 120 }, { _id: "xyz", total: 50 }, { _id: "jkl", total: 20 }]);
    assert.deepEqual(await db.aggregate("sales", "revenue", { avars: { min: 2 }, page: 2, pagesize: 1 }), [{ _id: "xyz", total: 50 }]);
    assert.equal((await failure(db.aggregate("sales", "nope"))).status, 404);
  });

  it("lists, creates and drops indexes", async () => {
    await db.createCollection("ix");
    await db.createIndex("ix", "by_n", { n: -1 }, { unique: true });
    const list = await db.listIndexes("ix");
    assert.deepEqual(list.map((i) => i._id).sort(), ["_id_", "by_n"]);
    assert.equal(list.find((i) => i._id === "by_n").unique, true);
    await db.insert("ix", { n: 1 });
    assert.equal((await failure(db.insert("ix", { n: 1 }))).status, 409);
    await db.dropIndex("ix", "by_n");
    await db.insert("ix", { n: 1 });
    assert.equal((await failure(db.dropIndex("ix", "by_n"))).status, 404);
    assert.equal((await failure(db.createIndex("ix", "_bad", { n: 1 }))).status, 400);
  });
});

describe("AbortSignal and unreachable servers", () => {
  it("rejects an aborted call with the signal's reason and sends nothing", async () => {
    await db.createCollection("ab");
    const pre = new AbortController();
    pre.abort();
    const err = await failure(db.insert("ab", { _id: "no" }, { signal: pre.signal }));
    assert.equal(err.name, "AbortError");
    assert.equal((await failure(db.get("ab", "no"))).status, 404);

    const mid = new AbortController();
    const call = db.find("ab", { signal: mid.signal });
    mid.abort();
    assert.equal((await failure(call)).name, "AbortError");

    const reason = new Error("user left");
    const custom = new AbortController();
    custom.abort(reason);
    assert.equal(await failure(db.ping({ signal: custom.signal })), reason);
    assert.equal(await db.ping(), true);
  });

  it("reports a server that cannot be reached as status 0", async () => {
    const probe = new Rheo();
    await probe.start();
    const url = probe.url;
    await probe.dispose();
    const err = await failure(new RheoClient(url).find("x"));
    assert.ok(err instanceof RheoError);
    assert.equal(err.status, 0);
    assert.match(err.message, /cannot reach/);
  });
});
