// The JavaScript client (web/rheo-client) in a real browser: Debian's chromium driven by
// playwright-core, against a real rheo started here. The page is one of rheo's own (its
// origin), and it loads the client the way the chat does, as the ES module rheo serves
// from web/ (/chat/rheo-client/src/index.js); every scenario runs inside the page.
//
//   RHEO_BINARY=build/rheo node --test test/web/client.test.mjs
//
// Scenarios, over WebSocket and over SSE (fetch): snapshot + changes across a server
// restart with no event lost or repeated; a live query equal to GET after every write,
// also across a restart; history lost (4410, SSE history-lost) recovered from the
// snapshot; Basic authentication with the server's Auth-Token (streams over SSE, a
// revoked token); AbortSignal on calls and subscriptions; presence and broadcast with the
// browser's own WebSocket; REST errors as RheoError with the HTTP status. Every wait is on
// a condition with a deadline.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { isDeepStrictEqual } from "node:util";
import { after, before, describe, it } from "node:test";

import { Rheo, launchBrowser, rheoBinary, waitUntil } from "./harness.mjs";

const WAIT = 30000; // generous: the same tests run against the sanitizer build
const TEST_TIMEOUT = 180000;
const CLIENT_MODULE = "/chat/rheo-client/src/index.js";
// The chat's default rules, plus collections open to anonymous clients for writes and live queries.
const ACL = [
  { roles: ["$unauthenticated", "$authenticated"], predicate: "path-prefix('/messages') and (method(GET) or method(OPTIONS))" },
  { roles: ["$unauthenticated", "$authenticated"], predicate: "path('/messages') and method(POST)", mergeRequest: { timestamp: "@now" } },
  { roles: ["$unauthenticated", "$authenticated"], predicate: "path-prefix('/scores')" },
  { roles: ["$unauthenticated", "$authenticated"], predicate: "path-prefix('/live_websocket') or path-prefix('/live_sse')" },
  { roles: ["$unauthenticated", "$authenticated"], predicate: "path-prefix('/lost_websocket') or path-prefix('/lost_sse') or path-prefix('/aborts') or path-prefix('/room')" },
  { roles: ["user"], predicate: "path-prefix('/private')" },
];
const hashPassword = (pw) => execFileSync(rheoBinary(), ["hash-password", pw], { encoding: "utf8" }).trim();
/** The user:secret of a Basic Authorization header. */
const basicOf = (header) => (header ? Buffer.from(header.replace(/^Basic /, ""), "base64").toString("utf8") : null);
const LIVE = { sort: { score: -1, name: 1 }, pagesize: 5, keys: { name: 1, score: 1 } };

let rheo;
let browser;
const pageErrors = [];

/** A page of rheo's origin with the client module loaded as `window.rc`. */
async function openClientPage(name, server = rheo) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
  const traffic = { sockets: [], streamRequests: [], requests: [], closedSockets: [] };
  page.on("websocket", (ws) => {
    traffic.sockets.push(new URL(ws.url()));
    ws.on("close", () => traffic.closedSockets.push(new URL(ws.url())));
  });
  page.on("request", (req) => {
    const url = new URL(req.url());
    traffic.requests.push({ method: req.method(), url, headers: req.headers() });
    if (req.url().includes("/_streams/") || req.url().includes("/_live"))
      traffic.streamRequests.push({ url, headers: req.headers() });
  });
  await page.goto(`${server.url}/_ping`); // any page of the origin
  await page.evaluate(async (src) => {
    window.rc = await import(src);
  }, CLIENT_MODULE);
  assert.equal(await page.evaluate(() => typeof window.rc.RheoClient), "function");
  return { context, page, traffic };
}

/** A tiny deterministic PRNG, so that a failing sequence of writes can be replayed. */
function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Takes the page away from the network while the server restarts and `whileAway` writes. */
async function restartWhileAway(context, page, handle, whileAway, server = rheo) {
  await context.setOffline(true);
  await server.restart();
  await waitUntil(() => page.evaluate((h) => window[h].state === "reconnecting", handle), `${handle} to reconnect`, WAIT);
  await whileAway();
  await context.setOffline(false);
  await waitUntil(() => page.evaluate((h) => window[h].state === "open", handle), `${handle} to be open again`, WAIT);
}

describe("rheo-client in chromium", () => {
  before(async () => {
    const users = [{ userid: "ann", password: hashPassword("ann-pw"), roles: ["user"] }];
    rheo = new Rheo({ args: ["--acl", JSON.stringify(ACL), "--users", JSON.stringify(users)] });
    await rheo.start();
    await rheo.ensureMessagesStream();
    browser = await launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (rheo) await rheo.dispose();
  });

  it("is served as a JavaScript module tree under /chat/", { timeout: TEST_TIMEOUT }, async () => {
    for (const file of ["index.js", "client.js", "channel.js", "subscription.js", "live.js", "sse.js", "errors.js", "util.js"]) {
      const res = await fetch(`${rheo.url}/chat/rheo-client/src/${file}`);
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get("content-type"), /^text\/javascript/, file);
    }
  });

  for (const transport of ["websocket", "sse"]) {
    it(`subscribeWithSnapshot over ${transport}: every change once across a server restart`, { timeout: TEST_TIMEOUT }, async () => {
      const tag = `${transport}:`;
      for (let i = 1; i <= 3; i++) await rheo.post({ message: `${tag} seed ${i}`, from: "node" });
      const { context, page, traffic } = await openClientPage(`subscribe-${transport}`);
      await page.evaluate(async (t) => {
        const log = { snapshot: null, events: [], opens: [], errors: [] };
        window.log = log;
        window.db = new window.rc.RheoClient(undefined, { transport: t });
        window.sub = window.db.subscribeWithSnapshot("messages", "all", {
          query: { sort: { timestamp: -1 }, pagesize: 3 },
          onSnapshot: (docs, token) => { log.snapshot = { messages: docs.map((d) => d.message), token }; },
          onEvent: (ev) => { log.events.push({ message: ev.fullDocument.message, token: ev._id._data }); },
          onOpen: (info) => { log.opens.push(info); },
          onError: (err) => { log.errors.push(String(err && err.message)); },
        });
        await window.sub.opened;
      }, transport);
      const log = () => page.evaluate(() => window.log);
      const snapshot = (await log()).snapshot;
      assert.deepEqual(snapshot.messages, [3, 2, 1].map((i) => `${tag} seed ${i}`));
      assert.ok(snapshot.token, "the snapshot's Resume-Token");
      assert.equal(await page.evaluate(() => window.sub.transport), transport);

      const batch = (name) => Array.from({ length: 5 }, (_, i) => `${tag} ${name} ${i + 1}`);
      const [beforeRestart, away, afterwards] = [batch("before"), batch("while away"), batch("after")];
      const received = (n) => async () => (await log()).events.length >= n;
      for (const text of beforeRestart) await rheo.post({ message: text, from: "node" });
      await waitUntil(received(beforeRestart.length), "the first events", WAIT);
      const lastBefore = (await log()).events.at(-1).token;

      // Written while the browser is away: only resuming after lastBefore can bring them.
      await restartWhileAway(context, page, "sub", async () => {
        for (const text of away) await rheo.post({ message: text, from: "node" });
      });
      for (const text of afterwards) await rheo.post({ message: text, from: "node" });
      const expected = [...beforeRestart, ...away, ...afterwards];
      await waitUntil(received(expected.length), "every event", WAIT);

      const l = await log();
      assert.deepEqual(l.events.map((e) => e.message), expected, "each change once, in commit order");
      assert.equal(new Set(l.events.map((e) => e.token)).size, expected.length, "every token once");
      assert.ok(l.opens.length >= 2 && l.opens.at(-1).reconnect, "reconnected");
      assert.ok(l.opens.every((o) => o.transport === transport));
      assert.deepEqual(l.errors, []);
      assert.equal(await page.evaluate(() => window.sub.token), l.events.at(-1).token);

      // On the wire: the first connection starts after the snapshot, every later one after
      // the last event received before the restart.
      if (transport === "websocket") {
        const positions = traffic.sockets.filter((u) => u.pathname === "/messages/_streams/all")
          .map((u) => u.searchParams.get("resumeAfter"));
        assert.ok(positions.length >= 2, `sockets: ${positions.length}`);
        assert.equal(positions[0], snapshot.token);
        for (const p of positions.slice(1)) assert.equal(p, lastBefore);
      } else {
        assert.equal(traffic.sockets.length, 0, "no WebSocket");
        const streams = traffic.streamRequests.filter((r) => r.url.pathname === "/messages/_streams/all");
        assert.ok(streams.length >= 2, `stream requests: ${streams.length}`);
        assert.match(streams[0].headers.accept, /text\/event-stream/);
        assert.equal(streams[0].headers["last-event-id"], snapshot.token);
        for (const r of streams.slice(1)) assert.equal(r.headers["last-event-id"], lastBefore);
      }
      await page.evaluate(async () => {
        window.sub.close();
        await window.sub.closed;
      });
      await context.close();
    });

    it(`live query over ${transport}: equal to GET after every write, also across a restart`, { timeout: TEST_TIMEOUT }, async () => {
      const coll = `live_${transport}`; // empty: every write can move the window
      const { context, page, traffic } = await openClientPage(`live-${transport}`);
      await page.evaluate(async ([t, c, live]) => {
        window.coll = c;
        window.db = new window.rc.RheoClient(undefined, { transport: t });
        await window.db.createCollection(c);
        window.frames = { init: 0, diff: 0 };
        window.lq = window.db.live(c, {
          ...live,
          onChange: (docs, change) => { window.frames[change.type]++; },
        });
        await window.lq.ready;
      }, [transport, coll, LIVE]);
      assert.equal(await page.evaluate(() => window.lq.transport), transport);

      const getPath = `/${coll}?${new URLSearchParams({
        sort: JSON.stringify(LIVE.sort), pagesize: String(LIVE.pagesize), keys: JSON.stringify(LIVE.keys),
      })}`;
      const expectEqual = async (what) => {
        let live;
        let want;
        try {
          await waitUntil(async () => {
            const res = await rheo.request("GET", getPath);
            assert.equal(res.status, 200, res.text);
            want = res.json();
            live = await page.evaluate(() => window.lq.docs);
            return isDeepStrictEqual(live, want);
          }, `the live result to equal GET after ${what}`, WAIT);
        } catch (err) {
          assert.fail(`${err.message}\nlive: ${JSON.stringify(live)}\nGET:  ${JSON.stringify(want)}`);
        }
      };
      await expectEqual("the init");

      // Random writes, half from the browser's client and half from node over HTTP.
      const random = prng(transport === "sse" ? 7 : 3);
      const ids = [];
      const write = async (n, { pageOnline = true } = {}) => {
        const fromPage = random() < 0.5 && pageOnline;
        const r = random();
        const score = Math.floor(random() * 40);
        if (ids.length < 4 || r < 0.4) {
          const doc = { name: `p${transport[0]}${n}`, score };
          if (fromPage) {
            ids.push(await page.evaluate(async (d) => (await window.db.insert(window.coll, d)).id.$oid, doc));
          } else {
            const res = await rheo.request("POST", `/${coll}`, doc);
            assert.equal(res.status, 201, res.text);
            ids.push(res.headers.get("location").split("/").pop());
          }
          return `insert ${doc.name}`;
        }
        const id = ids[Math.floor(random() * ids.length)];
        if (r < 0.8) {
          const update = r < 0.6 ? { $inc: { score: score - 20 } } : { $set: { score } };
          if (fromPage) await page.evaluate(async ([i, u]) => window.db.update(window.coll, window.rc.oid(i), u), [id, update]);
          else assert.equal((await rheo.request("PATCH", `/${coll}/${id}`, update)).status, 200);
          return `update ${id} ${JSON.stringify(update)}`;
        }
        ids.splice(ids.indexOf(id), 1);
        if (fromPage) await page.evaluate(async (i) => window.db.delete(window.coll, window.rc.oid(i)), id);
        else assert.equal((await rheo.request("DELETE", `/${coll}/${id}`)).status, 204);
        return `delete ${id}`;
      };
      for (let n = 1; n <= 40; n++) await expectEqual(`write ${n}: ${await write(n)}`);

      await restartWhileAway(context, page, "lq", async () => {
        for (let n = 41; n <= 44; n++) await write(n, { pageOnline: false });
      });
      await expectEqual("the restart");
      for (let n = 45; n <= 50; n++) await expectEqual(`write ${n}: ${await write(n)}`);

      const frames = await page.evaluate(() => window.frames);
      assert.ok(frames.init >= 2, `a fresh init after the restart: ${JSON.stringify(frames)}`);
      assert.ok(frames.diff >= 20, `diffs: ${JSON.stringify(frames)}`);
      assert.ok(await page.evaluate(() => window.lq.reconnects) >= 1);
      if (transport === "sse") assert.equal(traffic.sockets.length, 0, "no WebSocket");
      else assert.ok(traffic.sockets.every((u) => u.pathname === `/${coll}/_live`));
      await page.evaluate(() => window.lq.close());
      await context.close();
    });
  }

  for (const transport of ["websocket", "sse"]) {
    it(`history lost over ${transport}: the snapshot is read again and the stream continues after it`, { timeout: TEST_TIMEOUT }, async () => {
      // A server that keeps 5 changes: a client away for more has lost its place.
      const small = new Rheo({ args: ["--acl", JSON.stringify(ACL), "--changelog-retention", "5"] });
      try {
        await small.start();
        const coll = `lost_${transport}`;
        const { context, page, traffic } = await openClientPage(`lost-${transport}`, small);
        await page.evaluate(async ([t, c]) => {
          const log = { snapshots: [], events: [], closes: [], errors: [] };
          window.log = log;
          window.db = new window.rc.RheoClient(undefined, { transport: t, backoff: { initialMs: 50, maxMs: 400 } });
          await window.db.createCollection(c, { streams: [{ uri: "all", stages: [] }] });
          window.sub = window.db.subscribeWithSnapshot(c, "all", {
            query: { sort: { n: 1 } },
            onSnapshot: (docs, token) => { log.snapshots.push({ n: docs.map((d) => d.n), token }); },
            onEvent: (ev) => { log.events.push(ev.fullDocument.n); },
            onClose: (info) => { log.closes.push(info.code); },
            onError: (err) => { log.errors.push(String(err && err.message)); },
          });
          await window.sub.opened;
        }, [transport, coll]);
        const log = () => page.evaluate(() => window.log);
        const post = async (n) => assert.equal((await small.request("POST", `/${coll}`, { n })).status, 201);
        await post(0);
        await waitUntil(async () => (await log()).events.length === 1, "the first event", WAIT);
        const lastToken = await page.evaluate(() => window.sub.token);

        await restartWhileAway(context, page, "sub", async () => {
          for (let n = 1; n < 12; n++) await post(n);
        }, small);
        await waitUntil(async () => (await log()).snapshots.length === 2, "the snapshot read again", WAIT);
        await post(12);
        await waitUntil(async () => (await log()).events.includes(12), "the insert after the snapshot", WAIT);

        const l = await log();
        assert.deepEqual(l.snapshots[0].n, []);
        assert.deepEqual(l.snapshots[1].n, Array.from({ length: 12 }, (_, i) => i), "the snapshot stands for what was lost");
        assert.deepEqual(l.events, [0, 12], "nothing twice, nothing after the snapshot missed");
        assert.ok(l.closes.includes(4410), `closes: ${l.closes.join(",")}`);
        assert.deepEqual(l.errors, []);
        const fresh = l.snapshots[1].token;
        assert.ok(fresh && fresh !== lastToken);
        // On the wire: the old position tried first, then the snapshot's.
        const positions = transport === "websocket"
          ? traffic.sockets.filter((u) => u.pathname === `/${coll}/_streams/all`).map((u) => u.searchParams.get("resumeAfter"))
          : traffic.streamRequests.filter((r) => r.url.pathname === `/${coll}/_streams/all`).map((r) => r.headers["last-event-id"]);
        assert.ok(positions.includes(lastToken), `positions: ${positions.join(", ")}`);
        assert.equal(positions.at(-1), fresh);
        if (transport === "sse") assert.equal(traffic.sockets.length, 0, "no WebSocket");
        await page.evaluate(() => window.sub.close());
        await context.close();
      } finally {
        await small.dispose();
      }
    });
  }

  it("Basic auth: the password once, then the server's Auth-Token, streams over SSE, a revoked token replaced", { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, traffic } = await openClientPage("auth");
    const authOf = (method, path) => traffic.requests
      .filter((r) => r.method === method && r.url.pathname === path).map((r) => basicOf(r.headers.authorization ?? null));
    const first = await page.evaluate(async () => {
      const log = { tokens: [], events: [] };
      window.log = log;
      window.db = new window.rc.RheoClient(undefined, {
        auth: { user: "ann", password: "ann-pw" },
        onToken: (token) => { log.tokens.push(token); },
      });
      await window.db.createCollection("private", { streams: [{ uri: "all", stages: [] }] });
      await window.db.insert("private", { _id: "p1" });
      await window.db.get("private", "p1");
      // A browser's WebSocket cannot send Authorization: "auto" picks SSE, which can.
      window.sub = window.db.subscribeWithSnapshot("private", "all", {
        query: { pagesize: 1 },
        onEvent: (ev) => { log.events.push(ev.documentKey._id); },
      });
      await window.sub.opened;
      await window.db.insert("private", { _id: "p2" });
      return { token: window.db.authToken, until: window.db.authTokenValidUntil && window.db.authTokenValidUntil.getTime() };
    });
    assert.ok(first.token && first.token.length >= 16);
    assert.ok(first.until > Date.now());
    await waitUntil(async () => (await page.evaluate(() => window.log.events)).includes("p2"), "the insert over the stream", WAIT);
    assert.equal(await page.evaluate(() => window.sub.transport), "sse");
    assert.equal(traffic.sockets.length, 0, "no WebSocket");
    assert.deepEqual(authOf("PUT", "/private"), ["ann:ann-pw"], "the password, once");
    assert.deepEqual(authOf("POST", "/private"), [`ann:${first.token}`, `ann:${first.token}`]);
    assert.deepEqual(authOf("GET", "/private/p1"), [`ann:${first.token}`]);
    assert.deepEqual(authOf("GET", "/private/_streams/all"), [`ann:${first.token}`]);
    assert.deepEqual(await page.evaluate(() => window.log.tokens), [first.token]);

    // Another client of ann's, from the kept token, logs out: the token is revoked. The
    // first client's next call is refused, logs in with the password once, and goes on.
    const second = await page.evaluate(async (token) => {
      const kept = new window.rc.RheoClient(undefined, { auth: { user: "ann", token } });
      const docs = await kept.find("private");
      await kept.logout();
      const after = await window.db.find("private");
      return { keptSaw: docs.length, after: after.length, token: window.db.authToken, tokens: window.log.tokens };
    }, first.token);
    assert.equal(second.keptSaw, 2);
    assert.equal(second.after, 2);
    assert.ok(second.token && second.token !== first.token);
    assert.deepEqual(second.tokens, [first.token, null, second.token]);
    assert.deepEqual(authOf("GET", "/private").slice(-2), [`ann:${first.token}`, "ann:ann-pw"]);

    const refused = await page.evaluate(async () => {
      const { RheoClient, RheoError } = window.rc;
      const outcome = async (db) => {
        try {
          await db.find("private");
          return { ok: true };
        } catch (err) {
          return { isRheoError: err instanceof RheoError, status: err.status, message: err.message };
        }
      };
      // The anonymous stream is refused too: over SSE the client sees the 401 and stops.
      const anonymousSub = new RheoClient(undefined, { transport: "sse" }).subscribe("private", "all");
      const end = await anonymousSub.closed;
      return {
        wrong: await outcome(new RheoClient(undefined, { auth: { user: "ann", password: "nope" } })),
        anonymous: await outcome(new RheoClient()),
        stream: { status: end.error && end.error.status, state: anonymousSub.state },
      };
    });
    assert.deepEqual(refused.wrong, { isRheoError: true, status: 401, message: "wrong user or password" });
    assert.equal(refused.anonymous.status, 401);
    assert.deepEqual(refused.stream, { status: 401, state: "closed" });
    await page.evaluate(() => window.sub.close());
    await context.close();
  });

  it("AbortSignal: an aborted call rejects and sends nothing; aborting closes a subscription and a live query", { timeout: TEST_TIMEOUT }, async () => {
    const { context, page, traffic } = await openClientPage("abort");
    const calls = await page.evaluate(async () => {
      const db = new window.rc.RheoClient();
      window.db = db;
      await db.createCollection("aborts", { streams: [{ uri: "all", stages: [] }] });
      const outcome = async (promise) => {
        try {
          await promise;
          return "resolved";
        } catch (err) {
          return err.name === "AbortError" ? "AbortError" : err;
        }
      };
      const pre = new AbortController();
      pre.abort();
      const before = await outcome(db.insert("aborts", { _id: "never" }, { signal: pre.signal }));
      const mid = new AbortController();
      const pending = db.find("aborts", { signal: mid.signal });
      mid.abort();
      const during = await outcome(pending);
      const reason = new Error("the user left");
      const custom = new AbortController();
      custom.abort(reason);
      let sameReason;
      try {
        await db.ping({ signal: custom.signal });
      } catch (err) {
        sameReason = err === reason;
      }
      let missing;
      try {
        await db.get("aborts", "never");
      } catch (err) {
        missing = err.status;
      }
      return { before, during, sameReason, missing, alive: await db.ping() };
    });
    assert.deepEqual(calls, { before: "AbortError", during: "AbortError", sameReason: true, missing: 404, alive: true });
    assert.equal(traffic.requests.filter((r) => r.method === "POST").length, 0, "the aborted insert was never sent");

    for (const transport of ["websocket", "sse"]) {
      const ended = await page.evaluate(async (t) => {
        const ac = new AbortController();
        const sub = window.db.subscribe("aborts", "all", { transport: t, signal: ac.signal });
        const live = window.db.live("aborts", { transport: t, signal: ac.signal });
        await Promise.all([sub.opened, live.ready]);
        const open = [sub.state, live.state];
        ac.abort();
        const [subEnd, liveEnd] = await Promise.all([sub.closed, live.closed]);
        // Already aborted: closed before it ever connects.
        const late = window.db.subscribe("aborts", "all", { transport: t, signal: ac.signal });
        let lateOpened = "pending";
        late.opened.then(() => { lateOpened = "opened"; }, () => { lateOpened = "rejected"; });
        const lateEnd = await late.closed;
        await Promise.resolve();
        return { open, states: [sub.state, live.state, late.state], subEnd, liveEnd, lateEnd, lateOpened };
      }, transport);
      assert.deepEqual(ended.open, ["open", "open"], transport);
      assert.deepEqual(ended.states, ["closed", "closed", "closed"], transport);
      for (const end of [ended.subEnd, ended.liveEnd, ended.lateEnd]) assert.deepEqual(end, { code: 1000, reason: "closed by the client" });
      assert.equal(ended.lateOpened, "rejected");
      if (transport === "websocket") {
        // The browser closed both sockets (the stream's and the live query's).
        await waitUntil(() => traffic.closedSockets.length === traffic.sockets.length, "the sockets to close", WAIT);
        assert.equal(traffic.sockets.length, 2, "the late one never connected");
      }
    }
    await context.close();
  });

  it("presence and broadcast with the browser's WebSocket; SSE receives broadcasts but cannot send", { timeout: TEST_TIMEOUT }, async () => {
    const a = await openClientPage("presence-a");
    const b = await openClientPage("presence-b");
    await a.page.evaluate(async () => {
      window.db = new window.rc.RheoClient();
      await window.db.createCollection("room", { streams: [{ uri: "all", stages: [], presence: true, broadcast: true }] });
    });
    for (const [{ page }, nick, transport] of [[a, "ann", "websocket"], [b, "bob", "sse"]]) {
      await page.evaluate(async ([n, t]) => {
        window.got = [];
        window.db = new window.rc.RheoClient(undefined, { transport: t });
        window.sub = window.db.subscribe("room", "all", {
          presence: { nick: n }, presenceEvents: true,
          onBroadcast: (value, from) => { window.got.push({ value, from: from.info && from.info.nick }); },
        });
        await window.sub.opened;
      }, [nick, transport]);
    }
    const nicks = (page) => page.evaluate(() => window.sub.members.map((m) => m.info.nick).sort().join());
    for (const { page } of [a, b]) await waitUntil(async () => (await nicks(page)) === "ann,bob", "both listed", WAIT);
    // GET _presence is published at most once per interval too: it may lag the frames.
    const listed = () => a.page.evaluate(async () => (await window.db.presence("room", "all")).map((m) => m.info.nick).sort().join());
    await waitUntil(async () => (await listed()) === "ann,bob", "GET _presence lists both", WAIT);

    await a.page.evaluate(() => window.sub.broadcast({ typing: "ann" }));
    await waitUntil(async () => (await b.page.evaluate(() => window.got.length)) === 1, "ann's broadcast over SSE", WAIT);
    assert.deepEqual(await b.page.evaluate(() => window.got), [{ value: { typing: "ann" }, from: "ann" }]);
    const sseError = await b.page.evaluate(() => {
      try {
        window.sub.broadcast({ typing: "bob" });
        return null;
      } catch (err) {
        return { isRheoError: err instanceof window.rc.RheoError, message: err.message };
      }
    });
    assert.equal(sseError.isRheoError, true);
    assert.match(sseError.message, /SSE/);
    assert.deepEqual(await a.page.evaluate(() => window.got), [], "not to its sender");

    await b.context.close();
    await waitUntil(async () => (await nicks(a.page)) === "ann", "bob gone from ann's list", WAIT);
    await a.page.evaluate(() => window.sub.close());
    await a.context.close();
  });

  it("REST errors reject with a RheoError carrying the status and the server's message", { timeout: TEST_TIMEOUT }, async () => {
    const { context, page } = await openClientPage("errors");
    const outcome = await page.evaluate(async () => {
      const { RheoClient, RheoError, oid } = window.rc;
      const db = new RheoClient();
      const caught = async (fn) => {
        try {
          await fn();
          return { ok: true };
        } catch (err) {
          return {
            isRheoError: err instanceof RheoError, name: err.name, status: err.status, message: err.message,
            method: err.method, etag: err.etag, bodyMessage: err.body && err.body.message,
          };
        }
      };
      const { id, etag } = await db.insert("scores", { name: "err", score: 1 });
      return {
        missing: await caught(() => db.get("scores", oid("6b169d989e9a90885b271885"))),
        forbidden: await caught(() => db.insert("notes", { text: "not allowed" })),
        stale: await caught(() => db.update("scores", id, { $set: { score: 2 } }, { ifMatch: "6b169d989e9a90885b271885" })),
        current: etag,
        unreachable: await caught(() => new RheoClient("http://127.0.0.1:1").ping()),
        fine: await caught(() => db.update("scores", id, { $set: { score: 3 } }, { ifMatch: etag })),
      };
    });
    const { missing, forbidden, stale, unreachable } = outcome;
    for (const err of [missing, forbidden, stale, unreachable]) {
      assert.equal(err.isRheoError, true, JSON.stringify(err));
      assert.equal(err.name, "RheoError");
    }
    assert.equal(missing.status, 404);
    assert.equal(missing.method, "GET");
    assert.ok(missing.message && missing.message === missing.bodyMessage, `the server's message: ${missing.message}`);
    assert.equal(forbidden.status, 401, "anonymous clients may not write /notes");
    assert.equal(forbidden.method, "POST");
    assert.equal(stale.status, 412);
    assert.equal(stale.etag, outcome.current, "a 412 carries the current ETag");
    assert.equal(unreachable.status, 0);
    assert.deepEqual(outcome.fine, { ok: true });
    await context.close();
  });

  it("had no script errors", () => {
    assert.deepEqual(pageErrors, []);
  });
});
