// Presence and broadcast (API section 11) against a real rheo: members joining and leaving
// as another client sees them, the list after a reconnection (no member the server forgot,
// none twice), rejoining with a new presence object, broadcasts reaching every other session
// (also SSE) but not the sender, the errors of broadcast(), and the REST list.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import WebSocket from "ws";

import { RheoClient, RheoError } from "../src/index.js";
import { gatedWebSocket } from "./helpers/gates.mjs";
import { Rheo, failure, waitFor } from "./helpers/server.mjs";

const FAST = { initialMs: 50, maxMs: 400 };
const ROOM = {
  streams: [
    { uri: "all", stages: [], presence: true, broadcast: true },
    { uri: "plain", stages: [] },
  ],
};

const nicks = (members) => members.map((m) => m.info.nick).sort();
const ids = (members) => members.map((m) => m.id).sort();

describe("presence and broadcast", () => {
  let server;
  let db;
  let room = null; // each test's own collection: no member of another test in its lists
  let rooms = 0;
  const subs = [];
  /** A subscription to the room's `all`, closed after the test. */
  const join = (options, client = db) => {
    const sub = client.subscribe(room, "all", options);
    subs.push(sub);
    return sub;
  };

  before(async () => {
    server = await new Rheo().start();
    db = new RheoClient(server.url, { WebSocket, backoff: FAST });
  });
  beforeEach(async () => {
    room = `room-${++rooms}`;
    await db.createCollection(room, ROOM);
  });
  after(async () => {
    for (const sub of subs) sub.close();
    await server?.dispose();
  });

  it("another client sees a member join and leave", async () => {
    const changes = [];
    const ann = join({ presence: { nick: "ann" }, presenceEvents: true, onPresence: (m, change) => changes.push(change) });
    await waitFor(() => nicks(ann.members).join() === "ann", "ann in her own list");
    assert.equal(changes[0].reset, true, "the connection's first frame");
    assert.equal(ann.members[0].user, null);
    assert.equal(typeof ann.members[0].since.$date, "number");

    const bob = join({ presence: { nick: "bob" } });
    await waitFor(() => nicks(ann.members).join() === "ann,bob", "bob in ann's list");
    const bobId = ann.members.find((m) => m.info.nick === "bob").id;
    assert.ok(changes.some((c) => !c.reset && c.joined.some((m) => m.id === bobId)));
    assert.deepEqual(bob.members, [], "bob did not ask for presence events");

    bob.close();
    await waitFor(() => nicks(ann.members).join() === "ann", "bob gone from ann's list");
    assert.ok(changes.some((c) => c.left.includes(bobId)), "a frame said bob left");
    ann.close();
  });

  it("after a reconnection the list is the server's: no member it forgot, none twice", async () => {
    const { WebSocket: Gated, gate } = gatedWebSocket();
    const away = new RheoClient(server.url, { WebSocket: Gated, backoff: FAST });
    const resets = [];
    const ann = join({
      presence: { nick: "ann" }, presenceEvents: true,
      onPresence: (m, change) => { if (change.reset) resets.push(change); },
    }, away);
    const dan = join({ presence: { nick: "dan" } });
    await waitFor(() => nicks(ann.members).join() === "ann,dan", "ann and dan in ann's list");
    const before = ids(ann.members);

    // Ann is away across a restart; dan comes back, then leaves while she cannot hear it.
    gate.open = false;
    await server.restart();
    await waitFor(() => dan.reconnects === 1 && dan.state === "open", "dan back");
    await waitFor(async () => nicks(await db.presence(room, "all")).join() === "dan", "dan listed again");
    dan.close();
    await waitFor(async () => (await db.presence(room, "all")).length === 0, "dan gone");
    assert.deepEqual(ids(ann.members), before, "ann has heard nothing yet");

    gate.open = true;
    await waitFor(() => ann.state === "open" && nicks(ann.members).join() === "ann", "ann's list after her reconnection");
    assert.equal(resets.length, 2, "each connection's first frame restarted the list");
    assert.ok(ann.members.every((m) => !before.includes(m.id)), "only the new connection's id");
    // The list GET answers is published at most once per interval too: it may lag the frames.
    await waitFor(
      async () => JSON.stringify(ids(ann.members)) === JSON.stringify(ids(await db.presence(room, "all"))),
      "ann's list equal to the server's",
    );
    ann.close();
  });

  it("setPresence joins again with the new object, losing no event", async () => {
    const events = [];
    const watcher = join({ presenceEvents: true });
    const ann = join({ presence: { nick: "ann" }, onEvent: (e) => events.push(e.fullDocument.n) });
    await ann.opened;
    await waitFor(() => nicks(watcher.members).join() === "ann", "ann listed");
    const oldId = watcher.members[0].id;
    await db.insert(room, { n: 1 });
    await waitFor(() => events.includes(1), "the first insert");

    ann.setPresence({ nick: "annie" });
    await db.insert(room, { n: 2 });
    await waitFor(() => nicks(watcher.members).join() === "annie", "annie instead of ann");
    assert.notEqual(watcher.members[0].id, oldId);
    await db.insert(room, { n: 3 });
    await waitFor(() => events.includes(3), "the last insert");
    assert.deepEqual(events, [1, 2, 3]);

    ann.setPresence(null);
    await waitFor(() => watcher.members.length === 0, "ann no longer a member");
    ann.close();
    watcher.close();
  });

  it("a broadcast reaches every other session, also SSE, but not its sender", async () => {
    const got = { ann: [], bob: [], sse: [] };
    const ann = join({ presence: { nick: "ann" }, onBroadcast: (v, from) => got.ann.push({ v, from }) });
    const bob = join({ presence: { nick: "bob" }, onBroadcast: (v, from) => got.bob.push({ v, from }) });
    const sse = join({ transport: "sse", onBroadcast: (v, from) => got.sse.push({ v, from }) });
    const events = [];
    const plain = join({ onEvent: (e) => events.push(e) });
    const stored = await db.count(room);
    await Promise.all([ann.opened, bob.opened, sse.opened, plain.opened]);
    assert.equal(sse.transport, "sse");

    ann.broadcast({ typing: "ann" });
    await waitFor(() => got.bob.length === 1 && got.sse.length === 1, "ann's broadcast at bob's and over SSE");
    for (const { v, from } of [got.bob[0], got.sse[0]]) {
      assert.deepEqual(v, { typing: "ann" });
      assert.deepEqual(from.info, { nick: "ann" });
      assert.equal(from.user, null);
      assert.equal(typeof from.id, "string");
    }
    // Bob answers once he has ann's: when it reaches ann, hers would have come before it.
    bob.broadcast("hi");
    await waitFor(() => got.ann.length === 1, "bob's broadcast at ann's");
    assert.deepEqual(got.ann.map((b) => b.v), ["hi"], "ann did not get her own");
    assert.deepEqual(got.ann[0].from.info, { nick: "bob" });
    await waitFor(() => got.sse.length === 2, "bob's broadcast over SSE");
    // Nothing stored, and a broadcast is not a change event.
    assert.equal(await db.count(room), stored);
    assert.deepEqual(events, []);
    // The SSE session receives without having joined: from.info is its presence or null.
    sse.close();
    const anon = join({ onBroadcast: () => {} });
    await anon.opened;
    anon.broadcast([1, 2]);
    await waitFor(() => got.ann.length === 2 && got.bob.length === 2, "a broadcast of a session that did not join");
    assert.equal(got.ann[1].from.info, null);
    for (const s of [ann, bob, plain, anon]) s.close();
  });

  it("broadcast() says why it cannot send", async () => {
    const sse = join({ transport: "sse" });
    await sse.opened;
    assert.throws(() => sse.broadcast({ a: 1 }), (err) => err instanceof RheoError && /SSE/.test(err.message));
    sse.close();

    const { WebSocket: Gated, gate } = gatedWebSocket();
    gate.open = false;
    const offline = new RheoClient(server.url, { WebSocket: Gated, backoff: FAST });
    const waiting = join({}, offline);
    await waitFor(() => gate.attempts > 0, "a refused attempt");
    assert.throws(() => waiting.broadcast({ a: 1 }), (err) => err instanceof RheoError && /not open/.test(err.message));
    waiting.close();
    assert.throws(() => waiting.broadcast({ a: 1 }), /closed, not open/);

    const ws = join({});
    await ws.opened;
    assert.throws(() => ws.broadcast(undefined), TypeError);
    assert.throws(() => ws.broadcast(() => 1), TypeError);
    assert.throws(() => ws.broadcast("x".repeat(4096)), RangeError);
    ws.broadcast("x".repeat(4000)); // within 4 KiB
    assert.throws(() => join({ presence: { big: "x".repeat(1100) } }), RangeError);
    assert.throws(() => join({ presence: ["not", "an", "object"] }), TypeError);
    ws.close();
  });

  it("GET _presence lists the members; a stream without presence refuses", async () => {
    const ann = join({ presence: { nick: "ann", color: "red" } });
    const bob = join({ presence: { nick: "bob" }, transport: "sse" });
    await Promise.all([ann.opened, bob.opened]);
    await waitFor(async () => (await db.presence(room, "all")).length === 2, "both listed");
    const list = await db.presence(room, "all");
    assert.deepEqual(nicks(list), ["ann", "bob"]);
    assert.deepEqual(list.find((m) => m.info.nick === "ann").info, { nick: "ann", color: "red" });
    for (const m of list) assert.deepEqual(Object.keys(m).sort(), ["id", "info", "since", "user"]);

    assert.equal((await failure(db.presence(room, "plain"))).status, 400);
    assert.equal((await failure(db.presence(room, "nope"))).status, 404);
    const ac = new AbortController();
    ac.abort();
    assert.equal((await failure(db.presence(room, "all", { signal: ac.signal }))).name, "AbortError");

    // Joining a stream without presence is refused at the handshake (the ws package tells
    // the 400; a browser's WebSocket cannot, so an app asks GET _presence first).
    const plain = db.subscribe(room, "plain", { presence: { nick: "x" } });
    subs.push(plain);
    const info = await plain.closed;
    assert.equal(info.error.status, 400);
    assert.match(info.error.message, /has no presence/);
    ann.close();
    bob.close();
  });
});
