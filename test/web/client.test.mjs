// The JavaScript client (web/rheo-client) in a real browser: Debian's chromium driven by
// playwright-core, against a real rheo started here. The page is one of rheo's own (its
// origin), and it loads the client the way the chat does, as the ES module rheo serves
// from web/ (/chat/rheo-client/src/index.js); every scenario runs inside the page.
//
//   RHEO_BINARY=build/rheo node --test test/web/client.test.mjs
//
// Scenarios, over WebSocket and over SSE (fetch): snapshot + changes across a server
// restart with no event lost or repeated; a live query equal to GET after every write,
// also across a restart; REST errors as RheoError with the HTTP status. Every wait is on
// a condition with a deadline.

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { after, before, describe, it } from "node:test";

import { Rheo, launchBrowser, waitUntil } from "./harness.mjs";

const WAIT = 30000; // generous: the same tests run against the sanitizer build
const TEST_TIMEOUT = 180000;
const CLIENT_MODULE = "/chat/rheo-client/src/index.js";
// The chat's default rules, plus collections open to anonymous clients for writes and live queries.
const ACL = [
  { roles: ["$unauthenticated", "$authenticated"], predicate: "path-prefix('/messages') and (method(GET) or method(OPTIONS))" },
  { roles: ["$unauthenticated", "$authenticated"], predicate: "path('/messages') and method(POST)", mergeRequest: { timestamp: "@now" } },
  { roles: ["$unauthenticated", "$authenticated"], predicate: "path-prefix('/scores')" },
  { roles: ["$unauthenticated", "$authenticated"], predicate: "path-prefix('/live_websocket') or path-prefix('/live_sse')" },
];
const LIVE = { sort: { score: -1, name: 1 }, pagesize: 5, keys: { name: 1, score: 1 } };

let rheo;
let browser;
const pageErrors = [];

/** A page of rheo's origin with the client module loaded as `window.rc`. */
async function openClientPage(name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
  const traffic = { sockets: [], streamRequests: [] };
  page.on("websocket", (ws) => traffic.sockets.push(new URL(ws.url())));
  page.on("request", (req) => {
    if (req.url().includes("/_streams/") || req.url().includes("/_live"))
      traffic.streamRequests.push({ url: new URL(req.url()), headers: req.headers() });
  });
  await page.goto(`${rheo.url}/_ping`); // any page of the origin
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
async function restartWhileAway(context, page, handle, whileAway) {
  await context.setOffline(true);
  await rheo.restart();
  await waitUntil(() => page.evaluate((h) => window[h].state === "reconnecting", handle), `${handle} to reconnect`, WAIT);
  await whileAway();
  await context.setOffline(false);
  await waitUntil(() => page.evaluate((h) => window[h].state === "open", handle), `${handle} to be open again`, WAIT);
}

describe("rheo-client in chromium", () => {
  before(async () => {
    rheo = new Rheo({ args: ["--acl", JSON.stringify(ACL)] });
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
