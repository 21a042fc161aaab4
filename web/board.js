// rheo board: a live leaderboard, the top players of the collection "scores" by score. It
// keeps one live query open (rheo-client's db.live, served next to it in ./rheo-client)
// and talks to rheo only through its public API:
//   GET/PUT    <base>/scores/_meta, <base>/scores      create the collection when missing
//   WebSocket  <base>/scores/_live?sort={"score":-1,"name":1}&keys=...&pagesize=10
//              an init frame with the top 10, then diffs that keep the copy equal to them
//   POST       <base>/scores {"name": ..., "score": n}              add a player
//   PATCH      <base>/scores/<id> {"$inc": {"score": 1 | -1}}       +1 / -1
//   DELETE     <base>/scores/<id>                                   remove a player
// The page never reads the list any other way: what it shows is the live query's result,
// the init with every diff since applied (by the client, which also reconnects for a
// fresh init). Writes only write; their effect arrives as diffs, in this page and in
// every other one. Text from the server is rendered with textContent.

import { RheoClient, RheoError, backoffDelay } from "./rheo-client/src/index.js";
import { idKey } from "./chat-core.js";
import { COLLECTION, LIVE_QUERY, WINDOW, parsePlayer, scoreLabel } from "./board-core.js";

const apiMeta = document.querySelector('meta[name="rheo-api-base"]');
const apiBase = new URL(apiMeta ? apiMeta.content : "../", location.href);
const db = new RheoClient(apiBase.href);

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"), caption: $("caption"), board: $("board"), empty: $("empty"), error: $("error"),
  add: $("add"), name: $("name"), score: $("score"), addError: $("add-error"),
};

let shownDocs = []; // the live query's result as last rendered
let initialized = false; // a first result has arrived
const elements = new Map(); // id key -> its <li>, reused across renders

// ---- connection status: connecting (first time), live, reconnecting
const STATUS_TEXT = { connecting: "connecting", live: "live", reconnecting: "reconnecting" };
function setStatus(state) {
  ui.status.dataset.state = state;
  ui.status.textContent = STATUS_TEXT[state];
  ui.status.title = state === "live" ? "Connected: the board changes as scores are written" : "Not connected";
}

function showError(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

// ---- HTTP
/** Creates the collection when it is missing: a live query on a missing one is 404. */
async function ensureCollection() {
  try {
    await db.getCollection(COLLECTION);
    return;
  } catch (err) {
    if (!(err instanceof RheoError && err.status === 404)) throw new Error(`/${COLLECTION}: ${err.message}`);
  }
  try {
    await db.createCollection(COLLECTION);
  } catch (err) {
    // 409: another page created it meanwhile.
    if (!(err instanceof RheoError && err.status === 409)) throw new Error(`creating /${COLLECTION}: ${err.message}`);
  }
}

// ---- rendering
function entryElement(doc) {
  const key = idKey(doc._id);
  let li = elements.get(key);
  if (!li) {
    li = document.createElement("li");
    li.className = "entry";
    li.dataset.id = key;
    const rank = document.createElement("span");
    rank.className = "rank";
    const name = document.createElement("span");
    name.className = "name";
    const score = document.createElement("span");
    score.className = "score";
    const actions = document.createElement("span");
    actions.className = "actions";
    for (const [action, text] of [["inc", "+1"], ["dec", "−1"], ["del", "✕"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = action;
      b.dataset.action = action;
      b.textContent = text;
      actions.append(b);
    }
    li.append(rank, name, score, actions);
    elements.set(key, li);
  }
  const name = doc.name === undefined || doc.name === null ? "" : String(doc.name);
  li.querySelector(".name").textContent = name || "(no name)";
  li.querySelector(".score").textContent = scoreLabel(doc.score);
  li.querySelector(".inc").setAttribute("aria-label", `${name}: one point more`);
  li.querySelector(".dec").setAttribute("aria-label", `${name}: one point less`);
  li.querySelector(".del").setAttribute("aria-label", `remove ${name}`);
  return li;
}

function render() {
  const nodes = shownDocs.map((doc, i) => {
    const li = entryElement(doc);
    li.querySelector(".rank").textContent = String(i + 1);
    return li;
  });
  ui.board.replaceChildren(...nodes);
  const shown = new Set(shownDocs.map((d) => idKey(d._id)));
  for (const key of elements.keys()) if (!shown.has(key)) elements.delete(key);
  ui.board.dataset.count = String(shownDocs.length);
  ui.empty.hidden = !(initialized && shownDocs.length === 0);
}

// ---- the live query: rheo-client keeps the result and reconnects for a fresh init
let query = null; // the current live query
let everLive = false;
let restarts = 0; // starts in a row that did not get a result
let restartTimer = null;

async function start() {
  restartTimer = null;
  setStatus(everLive ? "reconnecting" : "connecting");
  try {
    await ensureCollection();
  } catch (err) {
    showError(ui.error, `Cannot use the board: ${err.message}`);
    restart();
    return;
  }
  const q = db.live(COLLECTION, {
    ...LIVE_QUERY,
    onChange(docs, change, self) {
      if (self !== query) return;
      shownDocs = docs;
      initialized = true;
      if (change.type === "init") {
        restarts = 0;
        everLive = true;
        showError(ui.error, "");
        setStatus("live");
      }
      render();
    },
    onStateChange(state, self) {
      if (self === query && state !== "open") setStatus(everLive ? "reconnecting" : "connecting");
    },
    onError(err, self) {
      // e.g. a diff that does not fit the result: the client starts over from a fresh init.
      if (self === query) console.warn("board: live query:", err.message);
    },
  });
  query = q;
  // It ends for good when the collection is dropped (or refused): create it again.
  q.closed.then(() => {
    if (q === query) restart();
  });
}

function restart(now = false) {
  const q = query;
  query = null;
  if (q) q.close();
  setStatus(everLive ? "reconnecting" : "connecting");
  clearTimeout(restartTimer);
  restartTimer = setTimeout(start, now ? 0 : backoffDelay(restarts++));
}

// ---- writes: their effect comes back through the live query
ui.board.addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-action]");
  const li = button && button.closest("li.entry");
  if (!li) return;
  const doc = shownDocs.find((d) => idKey(d._id) === li.dataset.id);
  if (!doc) return;
  const action = button.dataset.action;
  try {
    if (action === "del") await db.delete(COLLECTION, doc._id);
    else await db.update(COLLECTION, doc._id, { $inc: { score: action === "inc" ? 1 : -1 } });
    showError(ui.error, "");
  } catch (err) {
    showError(ui.error, `Not saved: ${err.message}`);
  }
});

ui.add.addEventListener("submit", async (e) => {
  e.preventDefault();
  const player = parsePlayer(ui.name.value, ui.score.value);
  if (typeof player === "string") {
    showError(ui.addError, player);
    return;
  }
  ui.add.classList.add("sending");
  try {
    await db.insert(COLLECTION, player);
    showError(ui.addError, "");
    ui.name.value = "";
    ui.score.value = "0";
    ui.name.focus();
  } catch (err) {
    showError(ui.addError, `Not added: ${err.message}`);
  } finally {
    ui.add.classList.remove("sending");
  }
});

// Back online after a network change: try at once instead of waiting for the backoff.
window.addEventListener("online", () => {
  if (restartTimer || (query && query.state === "reconnecting")) restart(true);
});

// ---- start
ui.caption.textContent = `Top ${WINDOW} players, live`;
setStatus("connecting");
start();
