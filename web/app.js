// rheo chat: a realtime chat that talks to rheo only through its public API, the same
// calls as RESTHeart's WebChat:
//   WebSocket  <base>/messages/_streams/all          live inserts (one JSON frame each)
//   GET        <base>/messages?page=N&pagesize=15&sort={timestamp:-1,_id:-1}   history
//   POST       <base>/messages  {"message": ..., "from": ...}                 send
// plus rheo's resume: the first page's Resume-Token header and each frame's _id._data
// are positions in the change feed, and the stream opened with ?resumeAfter=<position>
// delivers exactly the changes after it, so a reconnection refetches nothing. Against a
// server without the header (RESTHeart) the chat refetches pages after every connection.
// Everything that comes from the server is rendered with textContent, never as HTML.

import {
  FeedPosition, HISTORY_LOST, MessageStore, PAGE_SIZE, backoffDelay, dayKey, dayLabel, historyPath,
  streamPath, timeLabel, validNickname,
} from "./chat-core.js";

const NICK_KEY = "rheo-chat-nickname";
const KEEPALIVE_MS = 30000;
const MAX_CATCHUP_PAGES = 20;

// ---- where the API is: derived from this page's own URL, so any host, port or prefix works
const apiMeta = document.querySelector('meta[name="rheo-api-base"]');
const apiBase = new URL(apiMeta ? apiMeta.content : "../", location.href);
const wsBase = new URL(apiBase.href);
wsBase.protocol = apiBase.protocol === "https:" ? "wss:" : "ws:";

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"), me: $("me"), changeNick: $("change-nick"),
  scroller: $("scroller"), messages: $("messages"), empty: $("empty"),
  older: $("older"), historyStart: $("history-start"),
  join: $("join"), nick: $("nick"), joinError: $("join-error"),
  composer: $("composer"), text: $("text"), sendError: $("send-error"),
};

const store = new MessageStore();
const position = new FeedPosition();
const elements = new Map(); // message key -> its <li>, reused across renders
let nickname = validNickname(sessionStorage.getItem(NICK_KEY) ?? "");
let historyLoaded = false; // the first page has been fetched at least once
let noOlder = false; // the oldest message of the collection is on screen
let loadingOlder = false;
let generation = 0; // counts resets of the list, so that a page read before one is dropped

// ---- connection status: connecting (first time), live, reconnecting
const STATUS_TEXT = { connecting: "connecting", live: "live", reconnecting: "reconnecting" };
function setStatus(state) {
  ui.status.dataset.state = state;
  ui.status.textContent = STATUS_TEXT[state];
  ui.status.title = state === "live" ? "Connected: new messages appear as they are sent" : "Not connected";
}

// ---- HTTP
/** A page of documents, and the feed position it reflects (null without the header). */
async function getJson(path) {
  const res = await fetch(new URL(path, apiBase), { headers: { Accept: "application/json" } });
  if (res.status === 404) return { docs: [], token: null }; // no messages collection yet
  if (!res.ok) throw new Error(await errorMessage(res));
  const body = await res.json();
  if (!Array.isArray(body)) throw new Error("unexpected answer from the server");
  return { docs: body, token: res.headers.get("Resume-Token") };
}

async function errorMessage(res) {
  try {
    const body = await res.json();
    if (body && typeof body.message === "string") return body.message;
  } catch { /* not JSON */ }
  return `${res.status} ${res.statusText}`.trim();
}

const fetchPage = (page) => getJson(historyPath(page, PAGE_SIZE));

// ---- rendering
function nickHue(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 360;
}

function messageElement(m) {
  let li = elements.get(m.key);
  if (li) return li;
  li = document.createElement("li");
  li.className = "msg";
  li.dataset.id = m.key;
  const meta = document.createElement("div");
  meta.className = "meta";
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = m.from || "anonymous";
  from.style.setProperty("--hue", String(nickHue(m.from)));
  const time = document.createElement("time");
  time.className = "time";
  const when = new Date(m.time);
  time.dateTime = when.toISOString();
  time.textContent = timeLabel(m.time);
  time.title = when.toLocaleString();
  meta.append(from, time);
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = m.text;
  li.append(meta, text);
  elements.set(m.key, li);
  return li;
}

function dividerElement(m) {
  const li = document.createElement("li");
  li.className = "day";
  li.dataset.day = dayKey(m.time);
  const span = document.createElement("span");
  span.textContent = dayLabel(m.time);
  li.append(span);
  return li;
}

/**
 * Redraws the list in store order. `anchor` says how to keep the scroll position:
 * "bottom" sticks to the newest message when the reader was already there, "keep"
 * keeps the visible messages in place while older ones are added above them.
 */
function render(anchor = "bottom") {
  const sc = ui.scroller;
  const fromBottom = sc.scrollHeight - sc.scrollTop - sc.clientHeight;
  const atBottom = fromBottom < 48;
  const nodes = [];
  let lastDay = null;
  let prev = null;
  for (const m of store.list) {
    const d = dayKey(m.time);
    if (d !== lastDay) {
      nodes.push(dividerElement(m));
      lastDay = d;
      prev = null;
    }
    const li = messageElement(m);
    li.classList.toggle("own", nickname !== null && m.from === nickname);
    // A follow-up from the same sender within five minutes does not repeat the name.
    li.classList.toggle("cont", prev !== null && prev.from === m.from && m.time - prev.time < 300000);
    nodes.push(li);
    prev = m;
  }
  ui.messages.replaceChildren(...nodes);
  for (const key of elements.keys()) if (!store.has(key)) elements.delete(key);
  ui.messages.dataset.count = String(store.size);

  ui.empty.hidden = !(historyLoaded && store.size === 0);
  ui.older.hidden = !historyLoaded || noOlder || store.size === 0;
  ui.older.disabled = loadingOlder;
  ui.older.textContent = loadingOlder ? "Loading…" : "Load older messages";
  ui.historyStart.hidden = !(historyLoaded && noOlder && store.size > 0);

  if (anchor === "keep") sc.scrollTop = sc.scrollHeight - sc.clientHeight - fromBottom;
  else if (atBottom || anchor === "force") sc.scrollTop = sc.scrollHeight;
}

// ---- live stream: snapshot + changes, then resume after the last event on reconnection
let socket = null;
let snapshotting = false; // the first page is being read before the socket opens
let attempt = 0;
let everLive = false;
let retryTimer = null;
let keepAliveTimer = null;

async function connect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  setStatus(everLive ? "reconnecting" : "connecting");
  if (position.mode === "snapshot") {
    snapshotting = true;
    try {
      await loadSnapshot();
    } catch {
      scheduleReconnect();
      return;
    } finally {
      snapshotting = false;
    }
  }
  openStream();
}

/**
 * Shows the first page as it stood at its Resume-Token, the position the stream then
 * opens after: nothing committed in between is missed or doubled. After a lost history
 * the list restarts from this page. Without the header (RESTHeart) the page is dropped:
 * the stream opens first and the history is read after it (catchUp).
 */
async function loadSnapshot() {
  const { docs, token } = await fetchPage(1);
  if (!position.snapshot(token)) return;
  if (store.size > 0) {
    store.clear();
    generation++;
  }
  store.merge(docs);
  noOlder = docs.length < PAGE_SIZE;
  historyLoaded = true;
  render("bottom");
}

function openStream() {
  const catchUpAfterOpen = position.mode === "catch-up";
  let ws;
  try {
    ws = new WebSocket(new URL(streamPath(position.token), wsBase));
  } catch {
    scheduleReconnect();
    return;
  }
  socket = ws;
  const live = () => {
    if (socket !== ws) return;
    attempt = 0;
    everLive = true;
    setStatus("live");
  };
  ws.onopen = () => {
    if (socket !== ws) return;
    if (!catchUpAfterOpen) {
      live();
      return;
    }
    catchUp(ws).then(live, () => {
      // History could not be read: start over, so that nothing is missed.
      if (socket === ws) ws.close();
    });
  };
  ws.onmessage = (ev) => {
    if (socket !== ws || typeof ev.data !== "string") return;
    let event;
    try {
      event = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!event || typeof event !== "object") return;
    const insert = event.fullDocument && (!event.operationType || event.operationType === "insert");
    if (insert && store.merge([event.fullDocument]).added) render("bottom");
    position.advance(event); // handled, shown or not: a resumption starts after it
  };
  ws.onclose = (ev) => {
    if (socket !== ws) return;
    socket = null;
    // The server no longer holds the changes after our token: reload the first page.
    if (ev.code === HISTORY_LOST) position.lost();
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  setStatus(everLive ? "reconnecting" : "connecting");
  if (retryTimer) return;
  const delay = backoffDelay(attempt++);
  retryTimer = setTimeout(connect, delay);
}

/**
 * Brings the list up to date after the stream (re)opened on a server without resume.
 * Everything committed before the socket opened is in the history, everything after
 * arrives on the socket, and the store drops what both deliver. On a reconnection,
 * pages back from the newest until a page shares a message with what was already shown,
 * so no message sent while away is skipped even when more than a page of them was sent.
 */
async function catchUp(ws) {
  const hadMessages = store.size > 0;
  const fresh = [];
  for (let page = 1; ; page++) {
    const { docs } = await fetchPage(page);
    if (socket !== ws) return;
    fresh.push(...docs);
    const short = docs.length < PAGE_SIZE;
    const { overlap } = store.merge(docs);
    historyLoaded = true;
    if (short) noOlder = true; // pages 1..page hold the whole collection
    if (!hadMessages || overlap || short) break;
    if (page >= MAX_CATCHUP_PAGES) {
      // Away for too long to fill the gap: show the newest messages only.
      store.clear();
      generation++;
      store.merge(fresh);
      noOlder = false;
      break;
    }
  }
  render("bottom");
}

function sendKeepAlive() {
  if (socket && socket.readyState === WebSocket.OPEN)
    socket.send(JSON.stringify({ from: "", message: "", timestamp: { $date: 123 } }));
}

// ---- history paging
async function loadOlder() {
  if (loadingOlder || noOlder) return;
  loadingOlder = true;
  render("keep");
  // Pages count from the newest message; the store holds the newest `size` of them,
  // so this page starts at or before the oldest one shown and reaches past it.
  let page = Math.floor(store.size / PAGE_SIZE) + 1;
  const list = generation;
  try {
    for (let tries = 0; tries < MAX_CATCHUP_PAGES; tries++, page++) {
      const { docs } = await fetchPage(page);
      if (list !== generation) break; // the list restarted meanwhile: this page may leave a gap
      const { added } = store.merge(docs);
      if (docs.length < PAGE_SIZE) {
        noOlder = true;
        break;
      }
      if (added > 0) break;
    }
  } catch (err) {
    showSendError(`Could not load older messages: ${err.message}`);
  } finally {
    loadingOlder = false;
    render("keep");
  }
}

// ---- nickname and sending
function showJoin() {
  ui.composer.hidden = true;
  ui.join.hidden = false;
  ui.me.hidden = true;
  ui.changeNick.hidden = true;
  ui.nick.value = nickname ?? "";
  ui.nick.focus();
}

function showComposer() {
  ui.join.hidden = true;
  ui.composer.hidden = false;
  ui.me.hidden = false;
  ui.me.textContent = nickname;
  ui.changeNick.hidden = false;
  ui.text.focus();
}

function showSendError(text) {
  ui.sendError.textContent = text;
  ui.sendError.hidden = !text;
}

ui.join.addEventListener("submit", (e) => {
  e.preventDefault();
  const nick = validNickname(ui.nick.value);
  if (!nick) {
    ui.joinError.textContent = "A nickname has 3 to 20 characters.";
    ui.joinError.hidden = false;
    return;
  }
  ui.joinError.hidden = true;
  nickname = nick;
  sessionStorage.setItem(NICK_KEY, nick);
  showComposer();
  render("force");
});

ui.changeNick.addEventListener("click", () => {
  sessionStorage.removeItem(NICK_KEY);
  showJoin();
});

ui.composer.addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = ui.text.value;
  if (!text.trim() || !nickname) return;
  ui.composer.classList.add("sending");
  try {
    const res = await fetch(new URL("messages", apiBase), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message: text, from: nickname }),
    });
    if (!res.ok) {
      showSendError(`Not sent: ${await errorMessage(res)}`);
      return;
    }
    showSendError("");
    if (ui.text.value === text) ui.text.value = "";
    ui.scroller.scrollTop = ui.scroller.scrollHeight; // follow one's own message
  } catch {
    showSendError("Not sent: the server cannot be reached. Try again in a moment.");
  } finally {
    ui.composer.classList.remove("sending");
  }
});

ui.older.addEventListener("click", loadOlder);

// Back online after a network change: try at once instead of waiting for the backoff.
window.addEventListener("online", () => {
  if (!socket && !snapshotting) {
    attempt = 0;
    connect();
  }
});

// ---- start
if (nickname) showComposer();
else showJoin();
setStatus("connecting");
connect();
keepAliveTimer = setInterval(sendKeepAlive, KEEPALIVE_MS);
window.addEventListener("pagehide", () => clearInterval(keepAliveTimer));
