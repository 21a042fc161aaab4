// Unit tests of the leaderboard's pure logic (web/board-core.js), and of how the live
// query's diffs are applied, which moved into rheo-client (its applyDiff, used by db.live),
// no browser needed:
//   node --test test/web/board-core.test.mjs
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { KEYS, LIVE_QUERY, SORT, WINDOW, parsePlayer, queryPath, queryString, scoreLabel } from "../../web/board-core.js";
import { applyDiff as applyOps } from "../../web/rheo-client/src/index.js";
import { queryParams } from "../../web/rheo-client/src/util.js";

const doc = (name, score) => ({ _id: `id-${name}`, name, score });
const names = (docs) => docs.map((d) => d.name);
const start = () => [doc("a", 9), doc("b", 7), doc("c", 5), doc("d", 3)];

describe("rheo-client applyDiff: a live query's diffs as the board gets them", () => {
  it("add inserts at the index: first, middle, last", () => {
    assert.deepEqual(names(applyOps(start(), [{ op: "add", at: 0, doc: doc("x", 10) }])), ["x", "a", "b", "c", "d"]);
    assert.deepEqual(names(applyOps(start(), [{ op: "add", at: 2, doc: doc("x", 6) }])), ["a", "b", "x", "c", "d"]);
    assert.deepEqual(names(applyOps(start(), [{ op: "add", at: 4, doc: doc("x", 1) }])), ["a", "b", "c", "d", "x"]);
    assert.deepEqual(names(applyOps([], [{ op: "add", at: 0, doc: doc("x", 1) }])), ["x"]);
  });

  it("remove erases the index", () => {
    assert.deepEqual(names(applyOps(start(), [{ op: "remove", at: 0 }])), ["b", "c", "d"]);
    assert.deepEqual(names(applyOps(start(), [{ op: "remove", at: 2 }])), ["a", "b", "d"]);
    assert.deepEqual(names(applyOps(start(), [{ op: "remove", at: 3 }])), ["a", "b", "c"]);
  });

  it("update erases at `at`, then inserts the new document at `to`", () => {
    // Moves down: c (index 2) drops to the end; `to` counts after the erase.
    const down = applyOps(start(), [{ op: "update", at: 2, to: 3, doc: doc("c", 1) }]);
    assert.deepEqual(names(down), ["a", "b", "d", "c"]);
    assert.equal(down[3].score, 1);
    // Moves up: d (index 3) to the top.
    const up = applyOps(start(), [{ op: "update", at: 3, to: 0, doc: doc("d", 20) }]);
    assert.deepEqual(names(up), ["d", "a", "b", "c"]);
    assert.equal(up[0].score, 20);
    // Changes in place: the old document is replaced, not kept.
    const same = applyOps(start(), [{ op: "update", at: 1, to: 1, doc: { ...doc("b", 8), extra: true } }]);
    assert.deepEqual(names(same), ["a", "b", "c", "d"]);
    assert.deepEqual(same[1], { ...doc("b", 8), extra: true });
  });

  it("applies a frame's ops in order: an entry falls out of a full window, the next comes in", () => {
    // b drops below the window's edge (window of 4): it leaves, e comes in at the bottom.
    let docs = applyOps(start(), [{ op: "remove", at: 1 }, { op: "add", at: 3, doc: doc("e", 2) }]);
    assert.deepEqual(names(docs), ["a", "c", "d", "e"]);
    // The other order of the same two ops gives another result: order matters.
    assert.deepEqual(names(applyOps(start(), [{ op: "add", at: 3, doc: doc("e", 2) }, { op: "remove", at: 1 }])),
      ["a", "c", "e", "d"]);
    // Several commits in one frame: an update that moves, then a delete and its refill.
    docs = applyOps(docs, [
      { op: "update", at: 3, to: 0, doc: doc("e", 50) },
      { op: "remove", at: 2 },
      { op: "add", at: 3, doc: doc("f", 0) },
    ]);
    assert.deepEqual(names(docs), ["e", "a", "d", "f"]);
    // An empty diff changes nothing.
    assert.deepEqual(names(applyOps(docs, [])), ["e", "a", "d", "f"]);
  });

  it("does not change the array it was given", () => {
    const docs = start();
    applyOps(docs, [{ op: "remove", at: 0 }, { op: "add", at: 0, doc: doc("x", 1) }]);
    assert.deepEqual(docs, start());
  });

  it("throws on an index out of range, leaving the copy as it was", () => {
    const bad = [
      { op: "add", at: 5, doc: doc("x", 1) }, // past the end (length 4: 0..4 allowed)
      { op: "add", at: -1, doc: doc("x", 1) },
      { op: "remove", at: 4 }, // no element 4
      { op: "remove", at: -1 },
      { op: "update", at: 4, to: 0, doc: doc("x", 1) },
      { op: "update", at: 0, to: 4, doc: doc("x", 1) }, // after the erase only 0..3 exist
      { op: "update", at: 0, to: -1, doc: doc("x", 1) },
      { op: "add", at: 1.5, doc: doc("x", 1) },
      { op: "remove", at: "1" },
      { op: "remove" },
    ];
    for (const op of bad) {
      assert.throws(() => applyOps(start(), [op]), RangeError, JSON.stringify(op));
      // The first op is fine; the diff as a whole is refused, the array left as it was.
      const docs = start();
      assert.throws(() => applyOps(docs, [{ op: "remove", at: 0 }, op]), RangeError);
      assert.deepEqual(docs, start(), `unchanged after ${JSON.stringify(op)}`);
    }
    assert.throws(() => applyOps([], [{ op: "remove", at: 0 }]), RangeError);
    assert.throws(() => applyOps([], [{ op: "update", at: 0, to: 0, doc: doc("x", 1) }]), RangeError);
  });

  it("throws on malformed ops", () => {
    assert.throws(() => applyOps(start(), [{ op: "move", at: 0 }]), /unknown op/);
    assert.throws(() => applyOps(start(), [{ op: "add", at: 0 }]), /without a document/);
    assert.throws(() => applyOps(start(), [{ op: "update", at: 0, to: 0, doc: [1] }]), /without a document/);
    assert.throws(() => applyOps(start(), [null]), TypeError);
    assert.throws(() => applyOps(start(), { op: "remove", at: 0 }), TypeError);
  });
});

describe("board-core: URLs and input", () => {
  it("asks the live query and the REST query the same thing", () => {
    const q = new URLSearchParams(queryString());
    assert.deepEqual(JSON.parse(q.get("sort")), { score: -1, name: 1 });
    assert.equal(q.get("pagesize"), String(WINDOW));
    assert.deepEqual(JSON.parse(q.get("keys")), { name: 1, score: 1 });
    assert.deepEqual(LIVE_QUERY, { sort: SORT, pagesize: WINDOW, keys: KEYS });
    // What the client sends for db.live(COLLECTION, LIVE_QUERY) carries the same parameters.
    const live = Object.fromEntries(queryParams(LIVE_QUERY));
    assert.deepEqual(live, Object.fromEntries(q));
    assert.equal(queryPath(), `scores?${queryString()}`);
    assert.equal(queryPath("scores", { pagesize: 3, keys: null }), `scores?sort=${encodeURIComponent('{"score":-1,"name":1}')}&pagesize=3`);
  });

  it("takes a player from the form: a name of 1 to 20 characters and a whole score", () => {
    assert.deepEqual(parsePlayer("  ann ", "12"), { name: "ann", score: 12 });
    assert.deepEqual(parsePlayer("ann", ""), { name: "ann", score: 0 });
    assert.deepEqual(parsePlayer("ann", "-3"), { name: "ann", score: -3 });
    assert.deepEqual(parsePlayer("😀".repeat(20), "1"), { name: "😀".repeat(20), score: 1 });
    assert.equal(typeof parsePlayer("   ", "1"), "string");
    assert.equal(typeof parsePlayer("x".repeat(21), "1"), "string");
    assert.equal(typeof parsePlayer("ann", "1.5"), "string");
    assert.equal(typeof parsePlayer("ann", "many"), "string");
    assert.equal(typeof parsePlayer("ann", "1e300"), "string");
  });

  it("shows scores of every JSON number form", () => {
    assert.equal(scoreLabel(42), "42");
    assert.equal(scoreLabel(-1), "-1");
    assert.equal(scoreLabel({ $numberLong: "5000000000" }), "5000000000");
    assert.equal(scoreLabel(undefined), "–");
    assert.equal(scoreLabel("7"), "7");
  });
});
