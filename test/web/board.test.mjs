// End-to-end test of the live leaderboard (web/board.html, served at /chat/board.html) in
// a real browser: Debian's chromium driven by playwright-core, against a real rheo.
//
//   RHEO_BINARY=build/rheo node --test test/web/board.test.mjs
//
// Two pages keep the live query open; writes come from the first page's form and buttons
// and from this test over HTTP. After every write both pages must show, in order, what
// `GET /scores` with the board's parameters answers. Screenshots go to test-artifacts/web/.
// Every wait is on a condition with a deadline.

import assert from "node:assert/strict";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { after, before, describe, it } from "node:test";

import { SORT, WINDOW, queryPath, scoreLabel } from "../../web/board-core.js";
import { Rheo, ensureArtifactsDir, launchBrowser, waitUntil } from "./harness.mjs";

const WAIT = 30000; // generous: the same tests run against the sanitizer build
const TEST_TIMEOUT = 180000;
// The default rules only open /messages to anonymous clients; the board needs /scores.
const ACL = [{ roles: ["$unauthenticated"], predicate: "path-prefix('/scores')" }];

let rheo;
let browser;
let artifacts;
const pageErrors = [];
const pages = {};
const traffic = {};
const ids = {}; // player name -> _id, as the server answers it

/** Records a page's live query sockets (each frame's kind) and its reads of /scores. */
function watchTraffic(page) {
  const t = { sockets: [], reads: [] };
  page.on("request", (req) => {
    if (req.method() === "GET" && /\/scores\?/.test(req.url())) t.reads.push(req.url());
  });
  page.on("websocket", (ws) => {
    if (!ws.url().includes("/scores/_live")) return;
    const socket = { url: new URL(ws.url()), frames: [] };
    t.sockets.push(socket);
    ws.on("framereceived", ({ payload }) => {
      try {
        const frame = JSON.parse(payload);
        socket.frames.push(Array.isArray(frame.init) ? "init" : Array.isArray(frame.diff) ? "diff" : "other");
      } catch {
        socket.frames.push("not json");
      }
    });
  });
  return t;
}

async function openBoard(name) {
  const context = await browser.newContext({ viewport: { width: 720, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
  traffic[name] = watchTraffic(page);
  await page.goto(`${rheo.url}/chat/board.html`);
  await page.waitForSelector('#status[data-state="live"]');
  pages[name] = page;
  return page;
}

/** The board on screen, top first: [{name, score}], plus the rank each row shows. */
function shown(page) {
  return page.$$eval("#board li.entry", (lis) =>
    lis.map((li, i) => ({
      name: li.querySelector(".name").textContent,
      score: li.querySelector(".score").textContent,
      rankOk: li.querySelector(".rank").textContent === String(i + 1),
    })),
  );
}

/** What the server answers for the board's query, as the board shows it. */
async function expected() {
  const res = await rheo.request("GET", `/${queryPath()}`);
  assert.equal(res.status, 200, res.text);
  const docs = res.json();
  assert.ok(docs.length <= WINDOW);
  // The query is what the board claims: highest score first, then by name.
  for (let i = 1; i < docs.length; i++) {
    const [a, b] = [docs[i - 1], docs[i]];
    assert.ok(a.score > b.score || (a.score === b.score && a.name <= b.name), `order of ${a.name}, ${b.name}`);
  }
  return docs.map((d) => ({ name: d.name, score: scoreLabel(d.score) }));
}

/**
 * Waits until every open board shows exactly the server's answer, element for element;
 * `names` (optional) is the same answer spelled out by the test, to check the scenario.
 */
async function expectBoards(names) {
  const want = await expected();
  if (names) assert.deepEqual(want.map((e) => `${e.name} ${e.score}`), names);
  for (const [name, page] of Object.entries(pages)) {
    let last = [];
    try {
      await waitUntil(async () => {
        last = await shown(page);
        return last.every((e) => e.rankOk)
          && isDeepStrictEqual(last.map(({ name: n, score }) => ({ name: n, score })), want);
      }, `board ${name} to show the server's window`, WAIT);
    } catch (err) {
      await snap(page, `board-mismatch-${name}`).catch(() => {});
      assert.fail(`${err.message}\nshown: ${JSON.stringify(last)}\nwant:  ${JSON.stringify(want)}`);
    }
  }
  return want;
}

// ---- writes from a page, through its form and buttons
function responseTo(page, method, pattern) {
  return page.waitForResponse((r) => r.request().method() === method && pattern.test(new URL(r.url()).pathname));
}

async function addViaForm(page, name, score) {
  await page.fill("#name", name);
  await page.fill("#score", String(score));
  const [res] = await Promise.all([responseTo(page, "POST", /^\/scores$/), page.click("#add button[type=submit]")]);
  assert.equal(res.status(), 201, `POST answered ${res.status()}`);
  ids[name] = decodeURIComponent((await res.headerValue("location")).split("/").pop());
  await page.waitForFunction(() => document.querySelector("#name").value === "");
}

async function clickOn(page, name, action) {
  const row = page.locator("#board li.entry").filter({ has: page.locator(".name", { hasText: new RegExp(`^${name}$`) }) });
  assert.equal(await row.count(), 1, `one row for ${name}`);
  const method = action === "del" ? "DELETE" : "PATCH";
  const [res] = await Promise.all([
    responseTo(page, method, /^\/scores\/[^/]+$/),
    row.locator(`button[data-action="${action}"]`).click(),
  ]);
  assert.equal(res.status(), method === "DELETE" ? 204 : 200, `${method} answered ${res.status()}`);
}

// ---- writes from the test, as curl would
async function httpAdd(name, score) {
  const res = await rheo.request("POST", "/scores", { name, score });
  assert.equal(res.status, 201, res.text);
  ids[name] = decodeURIComponent(res.headers.get("location").split("/").pop());
}

async function httpPatch(name, body) {
  const res = await rheo.request("PATCH", `/scores/${ids[name]}`, body);
  assert.equal(res.status, 200, res.text);
}

async function httpDelete(name) {
  const res = await rheo.request("DELETE", `/scores/${ids[name]}`);
  assert.equal(res.status, 204, res.text);
}

async function snap(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`) });
}

describe("web board (live query)", () => {
  before(async () => {
    artifacts = ensureArtifactsDir();
    rheo = new Rheo({ args: ["--acl", JSON.stringify(ACL)] });
    await rheo.start();
    browser = await launchBrowser();
  });

  after(async () => {
    for (const [name, page] of Object.entries(pages))
      await snap(page, `board-final-${name}`).catch(() => {});
    if (browser) await browser.close();
    if (rheo) await rheo.dispose();
  });

  it("serves the board at /chat/board.html with its modules", { timeout: TEST_TIMEOUT }, async () => {
    for (const [p, type] of [["/chat/board.html", "text/html"], ["/chat/board.js", "text/javascript"],
      ["/chat/board-core.js", "text/javascript"], ["/chat/board.css", "text/css"]]) {
      const res = await fetch(rheo.url + p);
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get("content-type"), new RegExp(type), p);
    }
  });

  it("creates the missing collection and shows an empty board in both pages", { timeout: TEST_TIMEOUT }, async () => {
    assert.equal((await rheo.request("GET", "/scores/_meta")).status, 404);
    const one = await openBoard("one");
    assert.equal((await rheo.request("GET", "/scores/_meta")).status, 200, "the page created /scores");
    const two = await openBoard("two");
    for (const page of [one, two]) {
      await page.waitForSelector("#empty:not([hidden])");
      assert.equal(await page.locator("#board li").count(), 0);
    }
    assert.equal(await one.textContent("#caption"), `Top ${WINDOW} players, live`);
    await snap(one, "board-empty");
  });

  it("fills the window from the form and over HTTP; writes below a full window change nothing", { timeout: TEST_TIMEOUT }, async () => {
    const one = pages.one;
    // The form refuses an empty name without writing anything.
    await one.fill("#name", "   ");
    await one.click("#add button[type=submit]");
    await one.waitForSelector("#add-error:not([hidden])");
    assert.equal((await rheo.request("GET", "/scores/_size")).json()._size, 0);

    await addViaForm(one, "ann", 5);
    await expectBoards(["ann 5"]);
    assert.ok(await one.isHidden("#add-error"));
    assert.ok(await pages.two.isHidden("#empty"));
    for (const [name, score] of [["bob", 40], ["cat", 35], ["dan", 30], ["eve", 25], ["fay", 20],
      ["gus", 15], ["hal", 10], ["ivy", 8], ["jon", 6]]) {
      await httpAdd(name, score);
      await expectBoards();
    }
    const full = ["bob 40", "cat 35", "dan 30", "eve 25", "fay 20", "gus 15", "hal 10", "ivy 8", "jon 6", "ann 5"];
    await expectBoards(full);
    // Window full: players below its edge are not shown.
    await httpAdd("kim", 4);
    await expectBoards(full);
    await addViaForm(one, "leo", 2);
    await expectBoards(full);
    await snap(one, "board-full");
  });

  it("moves entries across the window's edge: one falls out, the next comes in", { timeout: TEST_TIMEOUT }, async () => {
    const [one, two] = [pages.one, pages.two];
    // A new leader from the form pushes ann (10th) out.
    await addViaForm(one, "max", 50);
    await expectBoards(["max 50", "bob 40", "cat 35", "dan 30", "eve 25", "fay 20", "gus 15", "hal 10", "ivy 8", "jon 6"]);
    // -1 on the last one: jon 5 ties ann 5 and sorts after her by name, so he falls out, she comes back.
    await clickOn(one, "jon", "dec");
    await expectBoards(["max 50", "bob 40", "cat 35", "dan 30", "eve 25", "fay 20", "gus 15", "hal 10", "ivy 8", "ann 5"]);
    // +1 in place, from either page.
    await clickOn(one, "ann", "inc");
    await clickOn(two, "hal", "inc");
    await expectBoards(["max 50", "bob 40", "cat 35", "dan 30", "eve 25", "fay 20", "gus 15", "hal 11", "ivy 8", "ann 6"]);
    // An update that moves up inside the window.
    await httpPatch("gus", { $inc: { score: 30 } });
    await expectBoards(["max 50", "gus 45", "bob 40", "cat 35", "dan 30", "eve 25", "fay 20", "hal 11", "ivy 8", "ann 6"]);
    // From below the window to the top: ann falls out.
    await httpPatch("kim", { $set: { score: 100 } });
    await expectBoards(["kim 100", "max 50", "gus 45", "bob 40", "cat 35", "dan 30", "eve 25", "fay 20", "hal 11", "ivy 8"]);
    // From the top to below the window: ann comes back in.
    await httpPatch("max", { $inc: { score: -45 } });
    await expectBoards(["kim 100", "gus 45", "bob 40", "cat 35", "dan 30", "eve 25", "fay 20", "hal 11", "ivy 8", "ann 6"]);
    await snap(two, "board-moved");
  });

  it("refills a full window after a delete inside it", { timeout: TEST_TIMEOUT }, async () => {
    const [one, two] = [pages.one, pages.two];
    // Below the window now: jon 5, max 5, leo 2.
    await clickOn(one, "cat", "del");
    await expectBoards(["kim 100", "gus 45", "bob 40", "dan 30", "eve 25", "fay 20", "hal 11", "ivy 8", "ann 6", "jon 5"]);
    await httpDelete("bob");
    await expectBoards(["kim 100", "gus 45", "dan 30", "eve 25", "fay 20", "hal 11", "ivy 8", "ann 6", "jon 5", "max 5"]);
    // A delete below the window changes nothing on screen.
    await httpDelete("leo");
    await expectBoards(["kim 100", "gus 45", "dan 30", "eve 25", "fay 20", "hal 11", "ivy 8", "ann 6", "jon 5", "max 5"]);
    // Nothing left to refill with: the window shrinks.
    await clickOn(two, "kim", "del");
    await expectBoards(["gus 45", "dan 30", "eve 25", "fay 20", "hal 11", "ivy 8", "ann 6", "jon 5", "max 5"]);
    await snap(one, "board-deleted");
  });

  it("drew all of it from one init and the diffs after it, never from a REST read", () => {
    for (const name of ["one", "two"]) {
      const t = traffic[name];
      assert.equal(t.sockets.length, 1, `${name}: one live query`);
      const { url, frames } = t.sockets[0];
      assert.equal(url.pathname, "/scores/_live");
      assert.deepEqual(JSON.parse(url.searchParams.get("sort")), SORT);
      assert.equal(url.searchParams.get("pagesize"), String(WINDOW));
      assert.equal(frames[0], "init");
      assert.equal(frames.filter((f) => f === "init").length, 1, `${name}: frames ${frames.join(",")}`);
      assert.ok(frames.slice(1).every((f) => f === "diff"), `${name}: frames ${frames.join(",")}`);
      assert.ok(frames.length >= 20, `${name}: ${frames.length} frames`);
      assert.deepEqual(t.reads, [], `${name} read the list over REST`);
    }
  });

  it("renders hostile names as text", { timeout: TEST_TIMEOUT }, async () => {
    const hostile = "<img src=x onerror=window.__xss=1>";
    await httpAdd(hostile, 1000);
    const want = await expectBoards();
    assert.equal(want[0].name, hostile);
    for (const page of Object.values(pages)) {
      assert.equal(await page.locator("#board img").count(), 0);
      assert.equal(await page.evaluate(() => window.__xss), undefined);
    }
    await httpDelete(hostile);
    await expectBoards(["gus 45", "dan 30", "eve 25", "fay 20", "hal 11", "ivy 8", "ann 6", "jon 5", "max 5"]);
  });

  it("starts over from a fresh init after a server restart", { timeout: TEST_TIMEOUT }, async () => {
    const [one, two] = [pages.one, pages.two];
    await rheo.stop();
    for (const page of [one, two]) await page.waitForSelector('#status[data-state="reconnecting"]');
    await rheo.restart();
    // Written while the pages may still be away: the fresh init must hold it.
    await httpAdd("ned", 12);
    for (const page of [one, two]) await page.waitForSelector('#status[data-state="live"]');
    await expectBoards(["gus 45", "dan 30", "eve 25", "fay 20", "ned 12", "hal 11", "ivy 8", "ann 6", "jon 5", "max 5"]);
    await clickOn(two, "ned", "inc");
    await expectBoards(["gus 45", "dan 30", "eve 25", "fay 20", "ned 13", "hal 11", "ivy 8", "ann 6", "jon 5", "max 5"]);
    for (const name of ["one", "two"]) {
      const sockets = traffic[name].sockets;
      assert.ok(sockets.length >= 2, `${name}: a new live query after the restart`);
      assert.equal(sockets.at(-1).frames[0], "init");
    }
  });

  it("had no script errors", () => {
    assert.deepEqual(pageErrors, []);
  });
});
