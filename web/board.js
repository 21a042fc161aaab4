// rheo board: a live leaderboard, the top players of the collection "scores" by score. It
// keeps one live query open and talks to rheo only through its public API:
//   GET/PUT    <base>/scores/_meta, <base>/scores      create the collection when missing
//   WebSocket  <base>/scores/_live?sort={"score":-1,"name":1}&pagesize=10&keys=...
//              an init frame with the top 10, then diffs that keep the copy equal to them
//   POST       <base>/scores {"name": ..., "score": n}              add a player
//   PATCH      <base>/scores/<id> {"$inc": {"score": 1 | -1}}       +1 / -1
//   DELETE     <base>/scores/<id>                                   remove a player
// The page never reads the list any other way: what it shows is the init with every diff
// since applied (board-core.js). Writes only write; their effect arrives as diffs, in this
// page and in every other one. Text from the server is rendered with textContent.

import { backoffDelay, idKey } from "./chat-core.js";
import { COLLECTION, LiveResult, WINDOW, docPath, livePath, parsePlayer, scoreLabel } from "./board-core.js";

const apiMeta = document.querySelector('meta[name="rheo-api-base"]');
const apiBase = new URL(apiMeta ? apiMeta.content : "../", location.href);
const wsBase = new URL(apiBase.href);
wsBase.protocol = apiBase.protocol === "https:" ? "wss:" : "ws:";

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"), caption: $("caption"), board: $("board"), empty: $("empty"), error: $("error"),
  add: $("add"), name: $("name"), score: $("score"), addError: $("add-error"),
};

const result = new LiveResult();
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
async function errorMessage(res) {
  try {
    const body = await res.json();
    if (body && typeof body.message === "string") return body.message;
  } catch { /* not JSON */ }
  return `${res.status} ${res.statusText}`.trim();
}

async function call(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(new URL(path, apiBase), init);
  if (!res.ok) throw new Error(await errorMessage(res));
  return res;
}

/** Creates the collection when it is missing: a live query on a missing one is 404. */
async function ensureCollection() {
  const meta = await fetch(new URL(`${COLLECTION}/_meta`, apiBase), { headers: { Accept: "application/json" } });
  if (meta.ok) return;
  if (meta.status !== 404) throw new Error(`/${COLLECTION}: ${await errorMessage(meta)}`);
  const put = await fetch(new URL(COLLECTION, apiBase), { method: "PUT" });
  // 201 created it; 200 or 409: another page created it meanwhile.
  if (put.status !== 201 && put.status !== 200 && put.status !== 409)
    throw new Error(`creating /${COLLECTION}: ${await errorMessage(put)}`);
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
  const nodes = result.docs.map((doc, i) => {
    const li = entryElement(doc);
    li.querySelector(".rank").textContent = String(i + 1);
    return li;
  });
  ui.board.replaceChildren(...nodes);
  const shown = new Set(result.docs.map((d) => idKey(d._id)));
  for (const key of elements.keys()) if (!shown.has(key)) elements.delete(key);
  ui.board.dataset.count = String(result.docs.length);
  ui.empty.hidden = !(result.initialized && result.docs.length === 0);
}

// ---- the live query: an init, then diffs; on any trouble, reconnect for a fresh init
let socket = null;
let attempt = 0;
let everLive = false;
let retryTimer = null;

async function connect() {
  retryTimer = null;
  setStatus(everLive ? "reconnecting" : "connecting");
  try {
    await ensureCollection();
  } catch (err) {
    showError(ui.error, `Cannot use the board: ${err.message}`);
    scheduleReconnect();
    return;
  }
  let ws;
  try {
    ws = new WebSocket(new URL(livePath(), wsBase));
  } catch {
    scheduleReconnect();
    return;
  }
  socket = ws;
  ws.onmessage = (ev) => {
    if (socket !== ws || typeof ev.data !== "string") return;
    let kind;
    try {
      kind = result.apply(JSON.parse(ev.data));
    } catch (err) {
      // The copy no longer matches the server's result: start over from a fresh init.
      console.warn("board: dropping the live query:", err.message);
      ws.close();
      return;
    }
    if (kind === "init") {
      attempt = 0;
      everLive = true;
      showError(ui.error, "");
      setStatus("live");
    }
    render();
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  setStatus(everLive ? "reconnecting" : "connecting");
  if (retryTimer) return;
  retryTimer = setTimeout(connect, backoffDelay(attempt++));
}

// ---- writes: their effect comes back through the live query
ui.board.addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-action]");
  const li = button && button.closest("li.entry");
  if (!li) return;
  const doc = result.docs.find((d) => idKey(d._id) === li.dataset.id);
  if (!doc) return;
  const action = button.dataset.action;
  try {
    const path = docPath(COLLECTION, doc._id);
    if (action === "del") await call("DELETE", path);
    else await call("PATCH", path, { $inc: { score: action === "inc" ? 1 : -1 } });
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
    await call("POST", COLLECTION, player);
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
  if (!socket && retryTimer) {
    clearTimeout(retryTimer);
    attempt = 0;
    connect();
  }
});

// ---- start
ui.caption.textContent = `Top ${WINDOW} players, live`;
setStatus("connecting");
connect();
