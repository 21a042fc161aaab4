// Change streams against a real rheo: every change exactly once across a server restart
// (WebSocket and SSE), snapshot + changes under concurrent writes, history lost (4410 and
// SSE history-lost) recovered by re-reading the snapshot, SSE as the fallback, and the
// close codes that end a subscription.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";

import { RheoClient } from "../src/index.js";
import { gatedFetch, gatedWebSocket } from "./helpers/gates.mjs";
import { Rheo, waitFor } from "./helpers/server.mjs";

const FAST = { initialMs: 50, maxMs: 400 };
const STREAM = { streams: [{ uri: "all", stages: [] }] };

/** A client whose connections can be held back, on `transport`. */
function gatedClient(url, transport) {
  if (transport === "websocket") {
    const { WebSocket: Gated, gate } = gatedWebSocket();
    return { db: new RheoClient(url, { WebSocket: Gated, backoff: FAST }), gate };
  }
  const { fetch: f, gate } = gatedFetch();
  return { db: new RheoClient(url, { fetch: f, backoff: FAST }), gate };
}

const nOf = (events) => events.filter((e) => e.operationType === "insert").map((e) => e.fullDocument.n);
const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);

describe("a stream across a server restart", () => {
  let server;
  before(async () => {
    server = await new Rheo().start();
  });
  after(async () => {
    await server?.dispose();
  });

  for (const transport of ["websocket", "sse"]) {
    it(`delivers every change once, in order (${transport})`, async () => {
      const coll = `restart-${transport}`;
      const writer = new RheoClient(server.url);
      await writer.createCollection(coll, STREAM);
      const { db, gate } = gatedClient(server.url, transport);
      const events = [];
      const closes = [];
      const opens = [];
      const sub = db.subscribeWithSnapshot(coll, "all", {
        transport,
        onEvent: (e) => events.push(e),
        onClose: (c) => closes.push(c),
        onOpen: (o) => opens.push(o),
      });
      await sub.opened;
      assert.equal(sub.transport, transport);

      // Written while connected; the shutdown may cut the stream before all arrive.
      for (const n of range(0, 15)) await writer.insert(coll, { n });
      gate.open = false;
      await server.restart();
      await waitFor(() => closes.length > 0, "the client to see the shutdown");
      assert.equal(closes[0].code, 1001);
      assert.equal(closes[0].willReconnect, true);
      // Written while the client cannot connect: they come back through resumeAfter.
      for (const n of range(15, 30)) await writer.insert(coll, { n });
      await writer.update(coll, (await writer.find(coll, { filter: { n: 3 } }))[0]._id, { $set: { seen: true } });
      const refused = gate.attempts;
      gate.open = true;
      await waitFor(() => sub.reconnects === 1 && sub.state === "open", "the reconnection");
      assert.ok(refused >= 1);
      assert.deepEqual(opens.map((o) => o.reconnect), [false, true]);
      // A last write, live: once it is here, nothing else can still be on its way.
      await writer.insert(coll, { n: 30 });
      await waitFor(() => nOf(events).includes(30), "the last insert");
      assert.deepEqual(nOf(events), range(0, 31));
      assert.equal(events.filter((e) => e.operationType === "update").length, 1);
      const tokens = events.map((e) => e._id._data);
      assert.equal(new Set(tokens).size, tokens.length, "no event twice");
      assert.deepEqual([...tokens].sort(), tokens, "commit order");
      assert.equal(sub.token, tokens[tokens.length - 1]);
      sub.close();
      assert.equal(sub.state, "closed");
      assert.deepEqual(await sub.closed, { code: 1000, reason: "closed by the client" });
    });
  }
});

describe("a plain subscription", () => {
  let server;
  before(async () => {
    server = await new Rheo().start();
  });
  after(async () => {
    await server?.dispose();
  });

  it("starts at a position, so a drop before its first event loses nothing", async () => {
    const writer = new RheoClient(server.url);
    await writer.createCollection("plain", STREAM);
    await writer.insert("plain", { n: -1 }); // before subscribe(): not delivered
    const { db, gate } = gatedClient(server.url, "websocket");
    const events = [];
    const sub = db.subscribe("plain", "all", { onEvent: (e) => events.push(e) });
    await sub.opened;
    assert.match(sub.token, /^[0-9a-f]+$/, "the position it started at");
    gate.open = false;
    await server.restart();
    for (const n of range(0, 3)) await writer.insert("plain", { n });
    gate.open = true;
    await waitFor(() => nOf(events).length === 3, "the inserts made while it was away");
    await writer.insert("plain", { n: 3 });
    await waitFor(() => nOf(events).includes(3), "a live insert");
    assert.deepEqual(nOf(events), range(0, 4));
    sub.close();
  });
});

describe("snapshot + changes", () => {
  let server;
  before(async () => {
    server = await new Rheo().start();
  });
  after(async () => {
    await server?.dispose();
  });

  for (const transport of ["websocket", "sse"]) {
    it(`reads the snapshot and continues after it, while writes go on (${transport})`, async () => {
      const coll = `snap-${transport}`;
      const writer = new RheoClient(server.url);
      await writer.createCollection(coll, STREAM);
      for (const n of range(0, 20)) await writer.insert(coll, { n });
      let writing = true;
      let next = 20;
      const written = (async () => {
        while (writing) await writer.insert(coll, { n: next++ });
      })();
      const db = new RheoClient(server.url, { WebSocket, backoff: FAST });
      let snapshot = null;
      const events = [];
      const sub = db.subscribeWithSnapshot(coll, "all", {
        transport,
        query: { pagesize: 1000, sort: { n: 1 } },
        onSnapshot: (docs, token) => { snapshot = { docs, token }; },
        onEvent: (e) => events.push(e),
      });
      await sub.opened;
      await waitFor(() => events.length >= 5, "events after the snapshot");
      writing = false;
      await written;
      await writer.insert(coll, { n: next });
      await waitFor(() => nOf(events).includes(next), "the last insert");
      const fromSnapshot = snapshot.docs.map((d) => d.n);
      assert.deepEqual(fromSnapshot, range(0, fromSnapshot.length));
      assert.deepEqual(nOf(events), range(fromSnapshot.length, next + 1), "no gap, no duplicate");
      assert.match(snapshot.token, /^[0-9a-f]+$/);
      sub.close();
    });
  }
});

describe("history lost", () => {
  let server;
  before(async () => {
    server = await new Rheo({ args: ["--changelog-retention", "5"] }).start();
  });
  after(async () => {
    await server?.dispose();
  });

  for (const transport of ["websocket", "sse"]) {
    it(`re-reads the snapshot and continues from its Resume-Token (${transport})`, async () => {
      const coll = `lost-${transport}`;
      const writer = new RheoClient(server.url);
      await writer.createCollection(coll, STREAM);
      const { db, gate } = gatedClient(server.url, transport);
      const snapshots = [];
      const events = [];
      const sub = db.subscribeWithSnapshot(coll, "all", {
        transport,
        query: { sort: { n: 1 } },
        onSnapshot: (docs, token) => snapshots.push({ n: docs.map((d) => d.n), token }),
        onEvent: (e) => events.push(e),
      });
      await sub.opened;
      await writer.insert(coll, { n: 0 });
      await waitFor(() => events.length === 1, "the first event");
      // Away while more changes than the server keeps are committed.
      gate.open = false;
      await server.restart();
      for (const n of range(1, 12)) await writer.insert(coll, { n });
      gate.open = true;
      await waitFor(() => snapshots.length === 2 && sub.state === "open", "the snapshot read again");
      assert.deepEqual(snapshots[0].n, []);
      assert.deepEqual(snapshots[1].n, range(0, 12));
      assert.equal(sub.token, snapshots[1].token);
      await writer.insert(coll, { n: 12 });
      await waitFor(() => nOf(events).includes(12), "the insert after the snapshot");
      assert.deepEqual(nOf(events), [0, 12], "the snapshot stands for what was lost; nothing twice");
      sub.close();
    });

    it(`lets onHistoryLost decide where to continue (${transport})`, async () => {
      const coll = `lost-cb-${transport}`;
      const writer = new RheoClient(server.url);
      await writer.createCollection(coll, STREAM);
      const old = (await writer.snapshot(coll)).token;
      for (const n of range(0, 8)) await writer.insert(coll, { n });
      const db = new RheoClient(server.url, { WebSocket, backoff: FAST });
      const calls = [];
      const events = [];
      const sub = db.subscribe(coll, "all", {
        transport,
        resumeAfter: old,
        onHistoryLost: async (ctx) => {
          calls.push(ctx);
          return null; // continue live from now
        },
        onEvent: (e) => events.push(e),
      });
      await waitFor(() => calls.length === 1 && sub.state === "open", "onHistoryLost and the reconnection");
      assert.equal(calls[0].subscription, sub);
      if (transport === "sse") assert.match(calls[0].position, /^[0-9a-f]+$/, "SSE tells the current position");
      else assert.equal(calls[0].position, null);
      await writer.insert(coll, { n: 100 });
      await waitFor(() => nOf(events).includes(100), "a live insert");
      assert.deepEqual(nOf(events), [100]);
      sub.close();
    });
  }
});

describe("transports and close codes", () => {
  let server;
  before(async () => {
    server = await new Rheo().start();
  });
  after(async () => {
    await server?.dispose();
  });

  it("falls back to SSE when there is no WebSocket constructor", async () => {
    assert.equal(typeof globalThis.WebSocket, "undefined", "Node 20 has no WebSocket");
    const writer = new RheoClient(server.url);
    await writer.createCollection("fallback", STREAM);
    const db = new RheoClient(server.url);
    assert.throws(() => db.subscribe("fallback", "all", { transport: "websocket" }), TypeError);
    const events = [];
    const sub = db.subscribeWithSnapshot("fallback", "all", { onEvent: (e) => events.push(e) });
    await sub.opened;
    assert.equal(sub.transport, "sse");
    await writer.insert("fallback", { _id: "x" });
    await waitFor(() => events.length === 1, "the event over SSE");
    assert.equal(events[0].documentKey._id, "x");
    sub.close();
  });

  for (const transport of ["websocket", "sse"]) {
    it(`ends without reconnecting when the collection is dropped (${transport})`, async () => {
      const coll = `drop-${transport}`;
      const db = new RheoClient(server.url, { WebSocket, backoff: FAST });
      await db.createCollection(coll, STREAM);
      const closes = [];
      const states = [];
      const sub = db.subscribe(coll, "all", { transport, onClose: (c) => closes.push(c), onStateChange: (s) => states.push(s) });
      await sub.opened;
      await db.dropCollection(coll);
      const end = await sub.closed;
      assert.equal(end.code, 1000);
      assert.equal(end.reason, "collection dropped");
      assert.deepEqual(closes, [{ code: 1000, reason: "collection dropped", willReconnect: false, error: undefined }]);
      assert.deepEqual(states, ["open", "closed"]);
      assert.equal(sub.reconnects, 0);
    });

    it(`ends with the server's error for an unknown stream (${transport})`, async () => {
      const db = new RheoClient(server.url, { WebSocket });
      await db.createCollection("known", STREAM);
      const sub = db.subscribe("known", "nope", { transport });
      const end = await sub.closed;
      assert.equal(end.error.status, 404);
      assert.equal(end.error.message, "stream 'nope' does not exist on collection 'known'");
      await assert.rejects(sub.opened);
      const bad = db.subscribe("known", "all", { transport, avars: [1] });
      assert.equal((await bad.closed).error.status, 400);
    });
  }

  it("closes when its AbortSignal is aborted", async () => {
    const db = new RheoClient(server.url, { WebSocket });
    await db.createCollection("aborted", STREAM);
    const controller = new AbortController();
    const sub = db.subscribe("aborted", "all", { signal: controller.signal });
    await sub.opened;
    controller.abort();
    assert.equal(sub.state, "closed");
    assert.equal((await sub.closed).code, 1000);
  });
});
