// End-to-end tests of the web chat (web/, served at /chat/) in a real browser:
// Debian's chromium driven by playwright-core, against a real rheo started here.
//
//   RHEO_BINARY=build/rheo node --test test/web/chat.test.mjs
//
// Screenshots go to test-artifacts/web/. Every wait is on a condition with a deadline.

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { PAGE_SIZE } from "../../web/chat-core.js";
import { Rheo, ensureArtifactsDir, launchBrowser, waitUntil } from "./harness.mjs";

const WAIT = 30000; // generous: the same tests run against the sanitizer build
const TEST_TIMEOUT = 180000;

let rheo;
let browser;
let artifacts;
const pageErrors = [];
const contexts = {};
const pages = {};
const traffic = {};

/**
 * Records what a page asks of the server: its history requests (GET /messages?...) and
 * its WebSockets, with the resume token of every frame each one received and the frames
 * it sent.
 */
function watchTraffic(page) {
  const t = { history: [], sockets: [] };
  page.on("request", (req) => {
    if (req.method() === "GET" && /\/messages\?/.test(req.url())) t.history.push(req);
  });
  page.on("websocket", (ws) => {
    const socket = { url: new URL(ws.url()), tokens: [], sent: [] };
    t.sockets.push(socket);
    ws.on("framesent", ({ payload }) => socket.sent.push(payload));
    ws.on("framereceived", ({ payload }) => {
      try {
        const token = JSON.parse(payload)?._id?._data;
        if (typeof token === "string") socket.tokens.push(token);
      } catch { /* not JSON */ }
    });
  });
  return t;
}

/** The Resume-Token header that answered a recorded request. */
async function resumeTokenOf(req) {
  const res = await req.response();
  return res ? res.headers()["resume-token"] ?? null : null;
}

/**
 * Opens the chat in a context of its own, which `prepare` may set up first (routes,
 * scripts). On a stream with presence, returns once the chat is listed online under its
 * nickname (it joined again with it: a connection of its own).
 */
async function openChat(name, nickname, { server = rheo, prepare, presence = true } = {}) {
  const context = await browser.newContext({ viewport: { width: 720, height: 900 } });
  if (prepare) await prepare(context);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (err) => pageErrors.push(`${nickname}: ${err.message}`));
  traffic[name] = watchTraffic(page);
  await page.goto(`${server.url}/chat/`);
  await page.waitForSelector('#status[data-state="live"]');
  // Pick the nickname through the form, as a user does; too short a name is refused.
  await page.fill("#nick", "ab");
  await page.press("#nick", "Enter");
  await page.waitForSelector("#join-error:not([hidden])");
  await page.fill("#nick", nickname);
  await page.press("#nick", "Enter");
  await page.waitForSelector("#composer:not([hidden])");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("rheo-chat-nickname")), nickname);
  if (presence) await page.waitForSelector("#online-list li.own");
  contexts[name] = context;
  pages[name] = page;
  return page;
}

/** The messages on screen, oldest first: [{from, text, own}]. */
function shown(page) {
  return page.$$eval("#messages li.msg", (lis) =>
    lis.map((li) => ({
      from: li.querySelector(".from").textContent,
      text: li.querySelector(".text").textContent,
      own: li.classList.contains("own"),
    })),
  );
}

const texts = async (page) => (await shown(page)).map((m) => m.text);

/** The nicknames in the online list. */
const online = (page) => page.$$eval("#online-list li", (lis) => lis.map((li) => li.textContent));

/** Waits until the online list shows exactly these nicknames (sorted). */
async function waitForOnline(page, nicks) {
  await page.waitForFunction(
    (want) => JSON.stringify([...document.querySelectorAll("#online-list li")].map((li) => li.textContent)) === want,
    JSON.stringify(nicks),
    { timeout: WAIT },
  );
}

const typingLine = (page) => page.textContent("#typing");

/** Records in the page every text the typing line shows, with the page's clock. */
async function logTyping(page) {
  await page.evaluate(() => {
    const el = document.querySelector("#typing");
    window.__typing = [{ text: el.textContent, at: Date.now() }];
    new MutationObserver(() => window.__typing.push({ text: el.textContent, at: Date.now() }))
      .observe(el, { childList: true, characterData: true, subtree: true });
  });
}

/** Waits until exactly `count` messages with this exact text are on screen. */
async function waitForText(page, text, count = 1) {
  await page.waitForFunction(
    ([t, n]) => [...document.querySelectorAll("#messages li.msg .text")].filter((e) => e.textContent === t).length === n,
    [text, count],
    { timeout: WAIT },
  );
}

async function send(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
  await page.waitForFunction(() => document.querySelector("#text").value === "", null, { timeout: WAIT });
}

async function snap(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`) });
}

const seedText = (i) => `seed message ${String(i).padStart(2, "0")}`;

describe("web chat", () => {
  before(async () => {
    artifacts = ensureArtifactsDir();
    rheo = new Rheo();
    await rheo.start();
    // Until the server creates messages/all by itself, declare it as an operator would.
    await rheo.ensureMessagesStream();
    browser = await launchBrowser();
  });

  after(async () => {
    for (const [name, page] of Object.entries(pages))
      await snap(page, `final-${name}`).catch(() => {});
    if (browser) await browser.close();
    if (rheo) await rheo.dispose();
  });

  it("serves the app at /chat/ with its modules", { timeout: TEST_TIMEOUT }, async () => {
    for (const [p, type] of [["/chat/", "text/html"], ["/chat/app.js", "text/javascript"],
      ["/chat/chat-core.js", "text/javascript"], ["/chat/style.css", "text/css"]]) {
      const res = await fetch(rheo.url + p);
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get("content-type"), new RegExp(type), p);
    }
  });

  it("shows the last 15 messages, oldest first, and pages back 15 at a time", { timeout: TEST_TIMEOUT }, async () => {
    for (let i = 1; i <= 40; i++) await rheo.post({ message: seedText(i), from: "seeder" });
    const page = await openChat("alice", "alice");

    await page.waitForFunction(() => document.querySelectorAll("#messages li.msg").length === 15);
    const want = (from, to) => Array.from({ length: to - from + 1 }, (_, k) => seedText(from + k));
    assert.deepEqual(await texts(page), want(26, 40));
    // The newest message is scrolled into view.
    assert.ok(await page.isVisible("#messages li.msg:last-child"));
    await page.waitForFunction(() => {
      const sc = document.querySelector("#scroller");
      return sc.scrollHeight - sc.scrollTop - sc.clientHeight < 2;
    });
    // One day divider above today's messages, a time on each message.
    assert.equal(await page.locator("#messages li.day").count(), 1);
    assert.equal(await page.textContent("#messages li.day"), "Today");
    const times = await page.$$eval("#messages li.msg time", (ts) => ts.map((t) => t.textContent));
    assert.ok(times.every((t) => /\d{1,2}\D\d{2}/.test(t)), `times: ${times.join(",")}`);
    await snap(page, "history-15");

    await page.click("#older");
    await page.waitForFunction(() => document.querySelectorAll("#messages li.msg").length === 30);
    assert.deepEqual(await texts(page), want(11, 40));
    await page.click("#older");
    await page.waitForFunction(() => document.querySelectorAll("#messages li.msg").length === 40);
    assert.deepEqual(await texts(page), want(1, 40));
    await page.waitForSelector("#older", { state: "hidden" });
    await page.waitForSelector("#history-start:not([hidden])");
    await snap(page, "history-40");
  });

  it("delivers a message typed in one browser to the other, live", { timeout: TEST_TIMEOUT }, async () => {
    const alice = pages.alice;
    const bob = await openChat("bob", "bob");
    await bob.waitForFunction(() => document.querySelectorAll("#messages li.msg").length === 15);
    assert.equal((await texts(bob)).at(-1), seedText(40));

    await send(alice, "hello bob, this is alice");
    await waitForText(bob, "hello bob, this is alice");
    await waitForText(alice, "hello bob, this is alice");
    await send(bob, "hi alice!");
    await waitForText(alice, "hi alice!");
    await waitForText(bob, "hi alice!");

    for (const [page, me] of [[alice, "alice"], [bob, "bob"]]) {
      const last = (await shown(page)).slice(-2);
      assert.deepEqual(last.map((m) => m.from), ["alice", "bob"]);
      assert.deepEqual(last.map((m) => m.own), [me === "alice", me === "bob"]);
    }
    // Nothing doubled: every message is on screen once.
    for (const page of [alice, bob]) {
      const all = await texts(page);
      assert.equal(new Set(all).size, all.length);
    }
    await snap(alice, "live-alice");
    await snap(bob, "live-bob");
  });

  it("shows who is online: a window that opens appears in the others' list, one that closes leaves it", { timeout: TEST_TIMEOUT }, async () => {
    const { alice, bob } = pages;
    for (const page of [alice, bob]) await waitForOnline(page, ["alice", "bob"]);
    assert.deepEqual(await alice.$$eval("#online-list li.own", (lis) => lis.map((li) => li.textContent)), ["alice"]);
    assert.equal(await bob.textContent("#online-count"), "2 online");

    const carl = await openChat("carl", "carl");
    for (const page of [alice, bob, carl]) await waitForOnline(page, ["alice", "bob", "carl"]);
    await snap(alice, "online-three");
    await contexts.carl.close();
    delete pages.carl;
    delete contexts.carl;
    for (const page of [alice, bob]) await waitForOnline(page, ["alice", "bob"]);
    assert.equal(await alice.textContent("#online-count"), "2 online");
  });

  it("shows \"<nick> is typing...\" in the other window, throttled, cleared after 3 s or by the message", { timeout: TEST_TIMEOUT }, async () => {
    const { alice, bob } = pages;
    await logTyping(bob);
    const aliceSocket = traffic.alice.sockets.at(-1);
    const earlier = aliceSocket.sent.length; // alice has typed before (fill() is one keystroke)
    const typingFrames = () => aliceSocket.sent.slice(earlier).filter((p) => /"typing"/.test(p));
    assert.equal(await typingLine(bob), "");

    // A burst of keystrokes: one broadcast, and only the other window shows it.
    await alice.locator("#text").pressSequentially("hello b");
    await waitUntil(async () => (await typingLine(bob)) === "alice is typing...", "bob to see alice typing", WAIT);
    assert.equal(await typingLine(alice), "", "nobody is typing at alice's");
    assert.ok(await bob.isVisible("#typing"));
    await snap(bob, "typing");
    // Cleared about 3 s after the broadcast (the page's own clock says when).
    await waitUntil(async () => (await typingLine(bob)) === "", "the indicator to clear", WAIT);
    const log = await bob.evaluate(() => window.__typing);
    const shownAt = log.find((e) => e.text === "alice is typing...").at;
    const clearedAt = log.findLast((e) => e.text === "").at;
    assert.ok(clearedAt - shownAt >= 2900, `cleared ${clearedAt - shownAt} ms after it showed`);
    assert.equal(typingFrames().length, 1, `one broadcast for the burst: ${typingFrames().join(" ")}`);
    assert.deepEqual(JSON.parse(typingFrames()[0]), { broadcast: { typing: "alice" } });

    // Typing again, later: a new broadcast; the message itself clears the indicator.
    await alice.locator("#text").pressSequentially("ob, are you there?");
    await waitUntil(async () => (await typingLine(bob)) === "alice is typing...", "bob to see alice typing again", WAIT);
    assert.ok(typingFrames().length >= 2);
    const again = (await bob.evaluate(() => window.__typing)).findLast((e) => e.text === "alice is typing...").at;
    await alice.press("#text", "Enter");
    await waitForText(bob, "hello bob, are you there?");
    assert.equal(await typingLine(bob), "", "cleared when alice's message arrived");
    const cleared = (await bob.evaluate(() => window.__typing)).findLast((e) => e.text === "").at;
    assert.ok(cleared - again < 2900, "by the message, not by the timeout");

    // The WebChat's keep-alive frame on the same stream is not a broadcast; a broadcast after it still is.
    await bob.evaluate(() => new Promise((resolve, reject) => {
      const ws = new WebSocket(new URL("/messages/_streams/all", location.href.replace(/^http/, "ws")));
      ws.onopen = () => {
        ws.send(JSON.stringify({ from: "", message: "", timestamp: { $date: 123 } }));
        ws.send(JSON.stringify({ broadcast: { typing: "webchat" } }));
        resolve();
      };
      ws.onerror = () => reject(new Error("the WebSocket failed"));
      window.__raw = ws;
    }));
    await waitUntil(async () => (await typingLine(alice)) === "webchat is typing...", "the raw broadcast at alice's", WAIT);
    await bob.evaluate(() => window.__raw.close());
    await waitUntil(async () => (await typingLine(alice)) === "", "the raw broadcast's indicator to clear", WAIT);
  });

  it("renders hostile text as text", { timeout: TEST_TIMEOUT }, async () => {
    const alice = pages.alice;
    const bob = pages.bob;
    const hostile = "<img src=x onerror=window.__xss=1>";
    await send(alice, hostile);
    const hostileFrom = "<b onmouseover=window.__xss=2>x</b>";
    await rheo.post({ message: "<script>window.__xss=3</script>", from: hostileFrom });
    for (const page of [alice, bob]) {
      await waitForText(page, hostile);
      await waitForText(page, "<script>window.__xss=3</script>");
      const last = (await shown(page)).at(-1);
      assert.equal(last.from, hostileFrom);
      assert.equal(await page.locator("#messages img, #messages script, #messages b").count(), 0);
      assert.equal(await page.evaluate(() => window.__xss), undefined);
    }
    await snap(bob, "xss");
  });

  it("catches up after a server restart: a message sent while away appears once", { timeout: TEST_TIMEOUT }, async () => {
    const alice = pages.alice;
    const bob = pages.bob;
    await send(alice, "before the restart");
    await waitForText(bob, "before the restart");

    // Keep bob's browser away from the network until the message is stored, so that it
    // can only learn about it by catching up, not from the live stream.
    await contexts.bob.setOffline(true);
    await rheo.stop();
    // The offline page may not hear the close (Chromium's offline emulation): it starts
    // again when the network is back (the chat's "online" handler).
    await alice.waitForSelector('#status[data-state="reconnecting"]');
    await snap(bob, "restart-reconnecting");

    await rheo.restart();
    await alice.waitForSelector('#status[data-state="live"]');
    const during = "sent while bob was away";
    await rheo.post({ message: during, from: "carol" });
    await waitForText(alice, during); // alice is back and gets it live
    assert.ok(!(await texts(bob)).includes(during));

    await contexts.bob.setOffline(false);
    await bob.waitForSelector('#status[data-state="live"]');
    await waitForText(bob, during);

    // Once more through the live stream, then check nothing is doubled or out of order.
    await send(alice, "after the restart");
    const expected = ["before the restart", during, "after the restart"];
    // Server-stamped timestamps order messages to the millisecond. Without them the app
    // falls back to the ObjectId's seconds, and within one second ids made by two server
    // processes (before and after the restart) have no defined order.
    const stamped = (await rheo.request("GET", "/messages?pagesize=3")).json().every((d) => d.timestamp);
    const lists = [];
    for (const page of [alice, bob]) {
      await waitForText(page, "after the restart");
      const all = await texts(page);
      lists.push(all);
      assert.equal(all.filter((t) => t === during).length, 1);
      assert.equal(new Set(all).size, all.length, "no duplicates");
      if (stamped) assert.deepEqual(all.slice(-3), expected);
      else assert.ok(all.indexOf("before the restart") >= 0 && all.indexOf(during) < all.indexOf("after the restart"));
    }
    // Alice paged back further than bob; from bob's oldest message on, both agree.
    assert.deepEqual(lists[0].slice(-lists[1].length), lists[1], "both pages show the same order");
    // Online again, each once: the connections from before the restart are gone.
    for (const page of [alice, bob]) await waitForOnline(page, ["alice", "bob"]);
    await snap(bob, "restart-caught-up");
  });

  it("keeps the nickname for the session across a reload", { timeout: TEST_TIMEOUT }, async () => {
    const alice = pages.alice;
    await alice.reload();
    await alice.waitForSelector('#status[data-state="live"]');
    await alice.waitForSelector("#composer:not([hidden])");
    assert.equal(await alice.isHidden("#join"), true);
    assert.equal(await alice.textContent("#me"), "alice");
    await alice.waitForFunction(() => document.querySelectorAll("#messages li.msg").length === 15);
    const own = (await shown(alice)).filter((m) => m.from === "alice");
    assert.ok(own.length > 0 && own.every((m) => m.own));
  });

  it("resumes after a server restart from the last frame's token, refetching no history", { timeout: TEST_TIMEOUT }, async () => {
    const erin = await openChat("erin", "erin");
    const t = traffic.erin;
    await erin.waitForFunction(() => document.querySelectorAll("#messages li.msg").length === 15);
    // Snapshot + changes: one history page, and the stream opened after its Resume-Token.
    assert.equal(t.history.length, 1);
    const snapshotToken = await resumeTokenOf(t.history[0]);
    assert.ok(snapshotToken, "GET /messages answers a Resume-Token");
    // The first socket reads as anonymous; picking the nickname joined again with it.
    assert.equal(t.sockets.length, 2);
    for (const socket of t.sockets) assert.equal(socket.url.searchParams.get("resumeAfter"), snapshotToken);
    assert.equal(t.sockets[0].url.searchParams.get("presence"), null);
    assert.equal(t.sockets[1].url.searchParams.get("presence"), JSON.stringify({ nick: "erin" }));

    await rheo.post({ message: "resume: before the restart", from: "carol" });
    await waitForText(erin, "resume: before the restart");
    await waitUntil(() => t.sockets[1].tokens.length > 0, "the frame's token");
    const lastToken = t.sockets[1].tokens.at(-1);

    // Away while more than a page of messages is sent: catching up by pages would need two.
    await contexts.erin.setOffline(true);
    await rheo.restart(); // the offline page may not hear it: it starts again when back online
    const away = Array.from({ length: PAGE_SIZE + 5 }, (_, i) => `resume: while away ${String(i + 1).padStart(2, "0")}`);
    for (const text of away) await rheo.post({ message: text, from: "carol" });
    const socketsBefore = t.sockets.length;
    await contexts.erin.setOffline(false);
    await erin.waitForSelector('#status[data-state="live"]');
    for (const text of away) await waitForText(erin, text);
    await rheo.post({ message: "resume: after the restart", from: "carol" });
    await waitForText(erin, "resume: after the restart");

    assert.equal(t.history.length, 1, `no history refetched: ${t.history.map((r) => r.url()).join(", ")}`);
    const resumed = t.sockets.slice(socketsBefore);
    assert.ok(resumed.length > 0, "a new WebSocket after going online");
    for (const socket of resumed) assert.equal(socket.url.searchParams.get("resumeAfter"), lastToken);
    const all = await texts(erin);
    assert.equal(new Set(all).size, all.length, "no duplicates");
    assert.deepEqual(all.slice(-(away.length + 2)), ["resume: before the restart", ...away, "resume: after the restart"]);
    await snap(erin, "resume-after-restart");
    await contexts.erin.close();
    delete pages.erin;
  });

  it("without a Resume-Token (RESTHeart) catches up by pages after a restart, each message once", { timeout: TEST_TIMEOUT }, async () => {
    // The server's answers minus the header, as RESTHeart gives them.
    const gina = await openChat("gina", "gina", {
      prepare: (context) => context.route(/\/messages\?/, async (route) => {
        let response;
        try {
          response = await route.fetch();
        } catch {
          return route.abort(); // the server is down (restarting): the page sees a failed request
        }
        const headers = { ...response.headers() };
        delete headers["resume-token"];
        await route.fulfill({ response, headers });
      }),
    });
    const t = traffic.gina;
    await gina.waitForFunction(() => document.querySelectorAll("#messages li.msg").length === 15);
    assert.equal(t.sockets[0].url.searchParams.get("resumeAfter"), null, "no resumeAfter without a Resume-Token");

    await contexts.gina.setOffline(true);
    await rheo.restart(); // the offline page may not hear it: it starts again when back online
    const away = Array.from({ length: PAGE_SIZE + 5 }, (_, i) => `catch-up: while away ${String(i + 1).padStart(2, "0")}`);
    for (const text of away) await rheo.post({ message: text, from: "carol" });
    const historyBefore = t.history.length;
    const socketsBefore = t.sockets.length;
    await contexts.gina.setOffline(false);
    await gina.waitForSelector('#status[data-state="live"]');
    for (const text of away) await waitForText(gina, text);
    await rheo.post({ message: "catch-up: after the restart", from: "carol" });
    await waitForText(gina, "catch-up: after the restart");

    // Two pages back to meet what was on screen, and no token ever sent.
    assert.ok(t.history.length - historyBefore >= 2, "history refetched page by page");
    for (const socket of t.sockets.slice(socketsBefore)) assert.equal(socket.url.searchParams.get("resumeAfter"), null);
    const all = await texts(gina);
    assert.equal(new Set(all).size, all.length, "no duplicates");
    assert.deepEqual(all.slice(-(away.length + 1)), [...away, "catch-up: after the restart"]);
    await contexts.gina.close();
    delete pages.gina;
  });

  it("EventSource in chromium reconnects by itself after a restart and resumes with Last-Event-ID", { timeout: TEST_TIMEOUT }, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    page.on("pageerror", (err) => pageErrors.push(`sse: ${err.message}`));
    const streamRequests = []; // the headers of every request of the EventSource
    page.on("request", (req) => {
      if (req.url().includes("/messages/_streams/all")) streamRequests.push(req.allHeaders());
    });
    await page.goto(`${rheo.url}/_ping`); // any page of the origin
    await page.evaluate(() => {
      const sse = { events: [], lost: [], opens: [], errors: 0 };
      window.sse = sse;
      window.es = new EventSource("/messages/_streams/all");
      window.es.addEventListener("change", (e) => sse.events.push({ id: e.lastEventId, data: e.data }));
      window.es.addEventListener("history-lost", (e) => sse.lost.push(e.lastEventId));
      window.es.onopen = () => sse.opens.push(Date.now());
      window.es.onerror = () => sse.errors++;
    });
    const state = () => page.evaluate(() => ({ ...window.sse, readyState: window.es.readyState }));
    const received = async (n) => (await state()).events.length >= n;
    await waitUntil(async () => (await state()).opens.length === 1, "the EventSource to open", WAIT);

    const batch = (name) => Array.from({ length: 5 }, (_, i) => `sse ${name} ${i + 1}`);
    const [before, during, afterwards] = [batch("before"), batch("during"), batch("after")];
    for (const text of before) await rheo.post({ message: text, from: "writer" });
    await waitUntil(() => received(before.length), "the first events", WAIT);

    await rheo.stop();
    await waitUntil(async () => {
      const s = await state();
      return s.errors > 0 && s.readyState === 0; // CONNECTING: the browser retries by itself
    }, "the EventSource to notice the shutdown", WAIT);
    await rheo.restart();
    for (const text of during) await rheo.post({ message: text, from: "writer" });
    const duringPosted = Date.now();
    await waitUntil(async () => (await state()).opens.length === 2, "the EventSource to reconnect", WAIT);
    for (const text of afterwards) await rheo.post({ message: text, from: "writer" });
    const expected = [...before, ...during, ...afterwards];
    await waitUntil(() => received(expected.length), "every event", WAIT);

    const s = await state();
    // Written before the browser was back, so only Last-Event-ID can have brought them.
    assert.ok(duringPosted < s.opens[1], "the second batch was written while the EventSource was away");
    assert.notEqual(s.readyState, 2, "never closed for good");
    assert.deepEqual(s.lost, []);
    assert.equal(s.events.length, expected.length, "nothing doubled");
    assert.deepEqual(s.events.map((e) => JSON.parse(e.data).fullDocument.message), expected);
    for (const e of s.events) assert.equal(e.id, JSON.parse(e.data)._id._data, "id: is the event's token");
    assert.equal(new Set(s.events.map((e) => e.id)).size, s.events.length, "every id once");

    const headers = await Promise.all(streamRequests);
    assert.ok(headers.length >= 2, `requests of the EventSource: ${headers.length}`);
    assert.equal(headers[0]["last-event-id"], undefined);
    // Every retry, the refused ones while the server was down and the one that got through.
    for (const h of headers.slice(1)) assert.equal(h["last-event-id"], s.events[before.length - 1].id);
    await page.evaluate(() => window.es.close());
    await context.close();
  });

  it("reloads the first page when its token is older than the server's history (4410)", { timeout: TEST_TIMEOUT }, async () => {
    const small = new Rheo({ args: ["--changelog-retention", "5"] });
    try {
      await small.start();
      await small.ensureMessagesStream();
      for (let i = 1; i <= 3; i++) await small.post({ message: `lost: seed ${i}`, from: "seeder" });
      // Count the close codes the app sees; the app itself is unchanged.
      const frank = await openChat("frank", "frank", {
        server: small,
        prepare: (context) => context.addInitScript(() => {
          window.__closeCodes = [];
          const Native = window.WebSocket;
          window.WebSocket = class extends Native {
            constructor(...args) {
              super(...args);
              this.addEventListener("close", (e) => window.__closeCodes.push(e.code));
            }
          };
        }),
      });
      const t = traffic.frank;
      await waitForText(frank, "lost: seed 3");
      await small.post({ message: "lost: live", from: "seeder" });
      await waitForText(frank, "lost: live");
      await waitUntil(() => t.sockets.at(-1).tokens.length > 0, "the frame's token");
      const staleToken = t.sockets.at(-1).tokens.at(-1);

      await contexts.frank.setOffline(true);
      await small.restart(); // the offline page may not hear it: it starts again when back online
      // Many more changes than the server keeps: the token falls out of its history.
      const away = Array.from({ length: PAGE_SIZE + 5 }, (_, i) => `lost: while away ${String(i + 1).padStart(2, "0")}`);
      for (const text of away) await small.post({ message: text, from: "carol" });
      const historyBefore = t.history.length;
      const socketsBefore = t.sockets.length;
      await contexts.frank.setOffline(false);

      // Reloaded: the newest page only, as on a first load, each message once.
      await frank.waitForFunction((last) => {
        const shownTexts = [...document.querySelectorAll("#messages li.msg .text")].map((e) => e.textContent);
        return shownTexts.at(-1) === last && !shownTexts.includes("lost: live");
      }, away.at(-1));
      await frank.waitForSelector('#status[data-state="live"]');
      assert.deepEqual(await texts(frank), away.slice(-PAGE_SIZE));
      assert.ok((await frank.evaluate(() => window.__closeCodes)).includes(4410), "closed with 4410");
      const reloads = t.history.slice(historyBefore);
      assert.equal(reloads.length, 1, `one reload: ${reloads.map((r) => r.url()).join(", ")}`);
      assert.match(reloads[0].url(), /[?&]page=1&/);
      const freshToken = await resumeTokenOf(reloads[0]);
      assert.ok(freshToken && freshToken !== staleToken);
      const urls = t.sockets.slice(socketsBefore).map((socket) => socket.url.searchParams.get("resumeAfter"));
      assert.ok(urls.includes(staleToken), `tried the old token first: ${urls.join(", ")}`);
      assert.equal(urls.at(-1), freshToken, "reopened after the reload's token");

      // Live again, and the older messages still page in, each once.
      await small.post({ message: "lost: after the reload", from: "carol" });
      await waitForText(frank, "lost: after the reload");
      while (await frank.isVisible("#older")) {
        const count = (await texts(frank)).length;
        await frank.click("#older");
        await frank.waitForFunction((n) => document.querySelectorAll("#messages li.msg").length > n
          || document.querySelector("#older").hidden, count);
      }
      await frank.waitForSelector("#history-start:not([hidden])");
      const everything = [1, 2, 3].map((i) => `lost: seed ${i}`).concat("lost: live", away, "lost: after the reload");
      assert.deepEqual(await texts(frank), everything);
      await snap(frank, "history-lost-reloaded");
      await contexts.frank.close();
      delete pages.frank;
    } finally {
      await small.dispose();
    }
  });

  it("works as before on a stream without presence: no online list, no typing broadcasts", { timeout: TEST_TIMEOUT }, async () => {
    // The stream as an older rheo (or an operator) declared it; RESTHeart has no presence either.
    const everyone = ["$unauthenticated", "$authenticated"];
    const acl = [
      { roles: everyone, predicate: "path('/messages') and method(POST)", mergeRequest: { timestamp: "@now" } },
      { roles: everyone, predicate: "path-prefix('/')" },
    ];
    const plain = new Rheo({ args: ["--create-messages", "false", "--acl", JSON.stringify(acl)] });
    try {
      await plain.start();
      assert.equal(await plain.ensureMessagesStream(), true);
      assert.equal((await plain.request("GET", "/messages/_streams/all/_presence")).status, 400);
      const olga = await openChat("olga", "olga", { server: plain, presence: false });
      const pete = await openChat("pete", "pete", { server: plain, presence: false });
      for (const page of [olga, pete]) {
        await page.waitForSelector('#status[data-state="live"]');
        assert.equal(await page.isHidden("#online"), true);
        assert.equal(await page.isHidden("#typing"), true);
      }
      await pete.locator("#text").pressSequentially("hi olga, no presence here");
      await pete.press("#text", "Enter");
      await waitForText(olga, "hi olga, no presence here");
      await waitForText(pete, "hi olga, no presence here");
      for (const name of ["olga", "pete"]) {
        assert.equal(traffic[name].sockets.length, 1, `${name}: one WebSocket, never refused and retried`);
        const socket = traffic[name].sockets[0];
        assert.equal(socket.url.searchParams.get("presence"), null);
        assert.equal(socket.url.searchParams.get("presenceEvents"), null);
        assert.deepEqual(socket.sent, [], `${name} sent nothing on the socket`);
      }
      await snap(olga, "no-presence");
      for (const name of ["olga", "pete"]) {
        await contexts[name].close();
        delete pages[name];
        delete contexts[name];
      }
    } finally {
      await plain.dispose();
    }
  });

  it("had no script errors", () => {
    assert.deepEqual(pageErrors, []);
  });
});
