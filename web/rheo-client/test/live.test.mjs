// Live queries against a real rheo: after every write the client's array equals what
// GET /<coll> with the same parameters answers, over WebSocket and SSE, also across a
// reconnection (which starts again from a fresh init).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";

import { RheoClient } from "../src/index.js";
import { gatedFetch, gatedWebSocket } from "./helpers/gates.mjs";
import { Rheo, waitFor } from "./helpers/server.mjs";

const FAST = { initialMs: 50, maxMs: 400 };

/** A small deterministic random generator (mulberry32). */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One random write: insert, $inc, toggle `active`, or delete. */
async function randomWrite(writer, coll, rnd, ids) {
  const pick = () => ids[Math.floor(rnd() * ids.length)];
  const r = rnd();
  if (ids.length < 4 || r < 0.35) {
    const id = `p${ids.length}-${Math.floor(rnd() * 1e6)}`;
    ids.push(id);
    await writer.insert(coll, { _id: id, name: id, score: Math.floor(rnd() * 20), active: rnd() < 0.8 });
  } else if (r < 0.7) {
    await writer.update(coll, pick(), { $inc: { score: Math.floor(rnd() * 11) - 5 } });
  } else if (r < 0.85) {
    await writer.update(coll, pick(), { $set: { active: rnd() < 0.5 } });
  } else {
    const id = pick();
    ids.splice(ids.indexOf(id), 1);
    await writer.delete(coll, id);
  }
}

describe("live queries", () => {
  let server;
  before(async () => {
    server = await new Rheo().start();
  });
  after(async () => {
    await server?.dispose();
  });

  for (const transport of ["websocket", "sse"]) {
    it(`keeps the array equal to GET after every write, across a reconnection (${transport})`, async () => {
      const coll = `board-${transport}`;
      const writer = new RheoClient(server.url);
      await writer.createCollection(coll);
      const params = { filter: { active: true }, sort: { score: -1 }, pagesize: 5, keys: { name: 1, score: 1 } };
      const { db, gate } = transport === "websocket"
        ? (() => { const g = gatedWebSocket(); return { db: new RheoClient(server.url, { WebSocket: g.WebSocket, backoff: FAST }), gate: g.gate }; })()
        : (() => { const g = gatedFetch(); return { db: new RheoClient(server.url, { fetch: g.fetch, backoff: FAST }), gate: g.gate }; })();
      const changes = [];
      const errors = [];
      const live = db.live(coll, {
        ...params, transport,
        onChange: (docs, info) => changes.push({ docs, ...info }),
        onError: (e) => errors.push(e),
      });
      assert.deepEqual(await live.ready, []);
      assert.equal(live.transport, transport);
      assert.equal(changes[0].type, "init");

      const rnd = random(transport === "websocket" ? 7 : 11);
      const ids = [];
      const expectEqual = async (what) => {
        let expected;
        await waitFor(async () => {
          expected = await writer.find(coll, params);
          return JSON.stringify(live.docs) === JSON.stringify(expected);
        }, what, 10000).catch((err) => {
          assert.deepEqual(live.docs, expected, err.message);
        });
      };
      for (let i = 0; i < 40; i++) {
        await randomWrite(writer, coll, rnd, ids);
        await expectEqual(`the live array after write ${i}`);
      }
      assert.ok(changes.some((c) => c.type === "diff" && c.ops.some((op) => op.op === "update")));
      const before = live.docs;
      const beforeCopy = JSON.parse(JSON.stringify(before));

      // Away during a restart and more writes: the reconnection's init replaces the array.
      gate.open = false;
      await server.restart();
      for (let i = 0; i < 10; i++) await randomWrite(writer, coll, rnd, ids);
      const inits = changes.filter((c) => c.type === "init").length;
      gate.open = true;
      await waitFor(() => live.reconnects === 1 && changes.filter((c) => c.type === "init").length === inits + 1, "a fresh init");
      await expectEqual("the live array after the reconnection");
      assert.deepEqual(before, beforeCopy, "an earlier array is left as it was");
      for (let i = 0; i < 20; i++) {
        await randomWrite(writer, coll, rnd, ids);
        await expectEqual(`the live array after write ${i} past the reconnection`);
      }
      assert.deepEqual(errors, []);
      assert.match(live.token, /^[0-9a-f]+$/);
      live.close();
      assert.equal(live.state, "closed");
    });
  }

  it("ends with the server's error for bad parameters, and when the collection is dropped", async () => {
    const db = new RheoClient(server.url, { WebSocket, backoff: FAST });
    await db.createCollection("lq");
    const bad = db.live("lq", { pagesize: 5000 });
    const end = await bad.closed;
    assert.equal(end.error.status, 400);
    assert.match(end.error.message, /live_query_max_window/);
    await assert.rejects(bad.ready);
    for (const transport of ["websocket", "sse"]) {
      await db.createCollection("lq2");
      await db.insert("lq2", { _id: 1 });
      const live = db.live("lq2", { transport });
      assert.deepEqual((await live.ready).map((d) => d._id), [1]);
      await db.dropCollection("lq2");
      const closed = await live.closed;
      assert.equal(closed.code, 1000, transport);
      assert.equal(live.state, "closed");
    }
  });
});
