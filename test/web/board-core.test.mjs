// Unit tests of the leaderboard's pure logic (web/board-core.js), no browser needed:
//   node --test test/web/board-core.test.mjs
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  LiveResult, WINDOW, applyOps, docPath, livePath, parsePlayer, queryPath, queryString, scoreLabel,
} from "../../web/board-core.js";

const doc = (name, score) => ({ _id: `id-${name}`, name, score });
const names = (docs) => docs.map((d) => d.name);
const start = () => [doc("a", 9), doc("b", 7), doc("c", 5), doc("d", 3)];

describe("board-core: applying a live query's frames", () => {
  it("init replaces the copy and keeps the token", () => {
    const r = new LiveResult();
    assert.equal(r.initialized, false);
    assert.equal(r.apply({ init: start(), token: "0000000000000007" }), "init");
    assert.deepEqual(names(r.docs), ["a", "b", "c", "d"]);
    assert.equal(r.token, "0000000000000007");
    assert.equal(r.initialized, true);
    // A second init (a resumed stream) replaces everything, it does not merge.
    assert.equal(r.apply({ init: [doc("z", 1)], token: "0000000000000009" }), "init");
    assert.deepEqual(names(r.docs), ["z"]);
    assert.equal(r.token, "0000000000000009");
    assert.equal(r.apply({ init: [], token: "000000000000000a" }), "init");
    assert.deepEqual(r.docs, []);
  });

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
    const r = new LiveResult();
    r.apply({ init: start(), token: "1" });
    // b drops below the window's edge (window of 4): it leaves, e comes in at the bottom.
    assert.equal(r.apply({ diff: [{ op: "remove", at: 1 }, { op: "add", at: 3, doc: doc("e", 2) }], token: "2" }), "diff");
    assert.deepEqual(names(r.docs), ["a", "c", "d", "e"]);
    assert.equal(r.token, "2");
    // The other order of the same two ops gives another result: order matters.
    assert.deepEqual(names(applyOps(start(), [{ op: "add", at: 3, doc: doc("e", 2) }, { op: "remove", at: 1 }])),
      ["a", "c", "e", "d"]);
    // Several commits in one frame: an update that moves, then a delete and its refill.
    r.apply({
      diff: [
        { op: "update", at: 3, to: 0, doc: doc("e", 50) },
        { op: "remove", at: 2 },
        { op: "add", at: 3, doc: doc("f", 0) },
      ],
      token: "5",
    });
    assert.deepEqual(names(r.docs), ["e", "a", "d", "f"]);
    assert.equal(r.token, "5");
    // An empty diff changes nothing but the position.
    r.apply({ diff: [], token: "6" });
    assert.deepEqual(names(r.docs), ["e", "a", "d", "f"]);
    assert.equal(r.token, "6");
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
      const r = new LiveResult();
      r.apply({ init: start(), token: "1" });
      // The first op is fine; the frame as a whole is refused.
      assert.throws(() => r.apply({ diff: [{ op: "remove", at: 0 }, op], token: "2" }), RangeError);
      assert.deepEqual(r.docs, start(), `copy unchanged after ${JSON.stringify(op)}`);
      assert.equal(r.token, "1");
    }
    assert.throws(() => applyOps([], [{ op: "remove", at: 0 }]), RangeError);
    assert.throws(() => applyOps([], [{ op: "update", at: 0, to: 0, doc: doc("x", 1) }]), RangeError);
  });

  it("throws on malformed ops and frames", () => {
    assert.throws(() => applyOps(start(), [{ op: "move", at: 0 }]), /unknown op/);
    assert.throws(() => applyOps(start(), [{ op: "add", at: 0 }]), /without a document/);
    assert.throws(() => applyOps(start(), [{ op: "update", at: 0, to: 0, doc: [1] }]), /without a document/);
    assert.throws(() => applyOps(start(), [null]), TypeError);
    assert.throws(() => applyOps(start(), { op: "remove", at: 0 }), TypeError);
    const r = new LiveResult();
    assert.throws(() => r.apply({ diff: [], token: "1" }), /before the init/);
    assert.throws(() => r.apply({ token: "1" }), TypeError);
    assert.throws(() => r.apply(null), TypeError);
    r.apply({ init: [doc("a", 1)], token: "1" });
    r.reset();
    assert.equal(r.initialized, false);
    assert.throws(() => r.apply({ diff: [], token: "2" }), /before the init/);
  });
});

describe("board-core: URLs and input", () => {
  it("asks the live query and the REST query the same thing", () => {
    const q = new URLSearchParams(queryString());
    assert.deepEqual(JSON.parse(q.get("sort")), { score: -1, name: 1 });
    assert.equal(q.get("pagesize"), String(WINDOW));
    assert.deepEqual(JSON.parse(q.get("keys")), { name: 1, score: 1 });
    assert.equal(livePath(), `scores/_live?${queryString()}`);
    assert.equal(queryPath(), `scores?${queryString()}`);
    assert.equal(queryPath("scores", { pagesize: 3, keys: null }), `scores?sort=${encodeURIComponent('{"score":-1,"name":1}')}&pagesize=3`);
  });

  it("addresses documents by ObjectId, string or number", () => {
    assert.equal(docPath("scores", { $oid: "6b169d989e9a90885b271885" }), "scores/6b169d989e9a90885b271885");
    assert.equal(docPath("scores", "ann"), "scores/ann?id_type=STRING");
    assert.equal(docPath("scores", "a/b c"), "scores/a%2Fb%20c?id_type=STRING");
    // A string of 24 hex digits is still a string.
    assert.equal(docPath("scores", "6b169d989e9a90885b271885"), "scores/6b169d989e9a90885b271885?id_type=STRING");
    assert.equal(docPath("scores", 7), "scores/7?id_type=NUMBER");
    assert.throws(() => docPath("scores", undefined));
    assert.throws(() => docPath("scores", { a: 1 }));
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
