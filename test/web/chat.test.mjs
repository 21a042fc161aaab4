// End-to-end tests of the web chat (web/, served at /chat/) in a real browser:
// Debian's chromium driven by playwright-core, against a real rheo started here.
//
//   RHEO_BINARY=build/rheo node --test test/web/chat.test.mjs
//
// Screenshots go to test-artifacts/web/. Every wait is on a condition with a deadline.

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { Rheo, ensureArtifactsDir, launchBrowser, waitUntil } from "./harness.mjs";

const WAIT = 30000; // generous: the same tests run against the sanitizer build
const TEST_TIMEOUT = 180000;

let rheo;
let browser;
let artifacts;
const pageErrors = [];
const contexts = {};
const pages = {};

async function openChat(name, nickname) {
  const context = await browser.newContext({ viewport: { width: 720, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (err) => pageErrors.push(`${nickname}: ${err.message}`));
  await page.goto(`${rheo.url}/chat/`);
  await page.waitForSelector('#status[data-state="live"]');
  // Pick the nickname through the form, as a user does; too short a name is refused.
  await page.fill("#nick", "ab");
  await page.press("#nick", "Enter");
  await page.waitForSelector("#join-error:not([hidden])");
  await page.fill("#nick", nickname);
  await page.press("#nick", "Enter");
  await page.waitForSelector("#composer:not([hidden])");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("rheo-chat-nickname")), nickname);
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
    for (const page of [alice, bob])
      await page.waitForSelector('#status[data-state="reconnecting"]');
    await snap(bob, "restart-reconnecting");

    await rheo.restart();
    await alice.waitForSelector('#status[data-state="live"]');
    const during = "sent while bob was away";
    await rheo.post({ message: during, from: "carol" });
    await waitForText(alice, during); // alice is back and gets it live
    assert.equal(await bob.getAttribute("#status", "data-state"), "reconnecting");
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

  it("had no script errors", () => {
    assert.deepEqual(pageErrors, []);
  });
});
