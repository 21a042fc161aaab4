// rheo chat: a realtime chat that talks to rheo only through its public API, the same
// calls as RESTHeart's WebChat, made with rheo-client (./rheo-client, served next to it):
//   WebSocket  <base>/messages/_streams/all          live inserts (one JSON frame each)
//   GET        <base>/messages?sort={timestamp:-1,_id:-1}&page=N&pagesize=15   history
//   POST       <base>/messages  {"message": ..., "from": ...}                 send
// The first page and the stream come from one subscribeWithSnapshot: the stream opens
// after the page's Resume-Token and the client resumes after the last event on every
// reconnection (and reloads the first page when the server's history no longer reaches
// back to it), so a reconnection refetches nothing. Against a server without the header
// (RESTHeart) the chat cannot resume: every connection is a fresh subscription, after
// which it pages back through the history until it meets what is on screen.
// Who is online and who is typing come from the stream's presence and broadcasts (rheo's
// API section 11): the chat joins with its nickname and broadcasts {typing: nick} while
// typing. A stream without presence (RESTHeart, an older rheo) answers GET .../_presence
// with an error: the chat then subscribes as before, without the online list.
// Everything that comes from the server is rendered with textContent, never as HTML.

import { RheoClient, RheoError, backoffDelay } from "./rheo-client/src/index.js";
import {
  COLLECTION, MessageStore, PAGE_SIZE, STREAM, TypingBoard, TypingThrottle, dayKey, dayLabel, historyQuery,
  onlineNicks, timeLabel, typingNick, typingText, validNickname,
} from "./chat-core.js";

const NICK_KEY = "rheo-chat-nickname";
const MAX_CATCHUP_PAGES = 20;

// ---- where the API is: derived from this page's own URL, so any host, port or prefix works
const apiMeta = document.querySelector('meta[name="rheo-api-base"]');
const apiBase = new URL(apiMeta ? apiMeta.content : "../", location.href);
const db = new RheoClient(apiBase.href);

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"), me: $("me"), changeNick: $("change-nick"),
  scroller: $("scroller"), messages: $("messages"), empty: $("empty"),
  older: $("older"), historyStart: $("history-start"),
  join: $("join"), nick: $("nick"), joinError: $("join-error"),
  composer: $("composer"), text: $("text"), sendError: $("send-error"),
  online: $("online"), onlineCount: $("online-count"), onlineList: $("online-list"), typing: $("typing"),
};

const store = new MessageStore();
const elements = new Map(); // message key -> its <li>, reused across renders
let nickname = validNickname(sessionStorage.getItem(NICK_KEY) ?? "");
let historyLoaded = false; // the first page has been shown at least once
let noOlder = false; // the oldest message of the collection is on screen
let loadingOlder = false;
let generation = 0; // counts resets of the list, so that a page read before one is dropped

// ---- connection status: connecting (first time), live, reconnecting
const STATUS_TEXT = { connecting: "connecting", live: "live", reconnecting: "reconnecting" };
function setStatus(state) {
  ui.status.dataset.state = state;
  ui.status.textContent = STATUS_TEXT[state];
  ui.status.title = state === "live" ? "Connected: new messages appear as they are sent" : "Not connected";
  ui.online.dataset.stale = String(state !== "live"); // the last list seen, until the stream is back
}

// ---- HTTP
/** History page `page` (1 = the newest), newest first; none while there is no collection. */
async function fetchPage(page) {
  try {
    return await db.find(COLLECTION, historyQuery(page));
  } catch (err) {
    if (err instanceof RheoError && err.status === 404) return []; // no messages collection yet
    throw err;
  }
}

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

// ---- who is online, who is typing
const typingBoard = new TypingBoard(); // others typing, each until a timeout or their message
const typingThrottle = new TypingThrottle(); // one's own "typing" broadcasts
let typingTimer = null;

function renderOnline(nicks) {
  ui.onlineCount.textContent = `${nicks.length} online`;
  ui.onlineList.replaceChildren(...nicks.map((nick) => {
    const li = document.createElement("li");
    li.textContent = nick;
    li.dataset.nick = nick;
    li.style.setProperty("--hue", String(nickHue(nick)));
    li.classList.toggle("own", nick === nickname);
    return li;
  }));
  ui.online.hidden = false;
}

/** Shows who is typing now, and clears each indicator when its time is up. */
function renderTyping() {
  clearTimeout(typingTimer);
  typingTimer = null;
  const nicks = typingBoard.active(Date.now());
  ui.typing.textContent = typingText(nicks);
  ui.typing.dataset.nicks = nicks.join(",");
  const next = typingBoard.nextExpiry();
  if (next !== null) typingTimer = setTimeout(renderTyping, Math.max(0, next - Date.now()) + 10);
}

/** Shows or hides the online list and the typing line: only a stream with presence has them. */
function showPresence(on) {
  ui.typing.hidden = !on;
  if (!on) {
    ui.online.hidden = true;
    typingBoard.clear();
    renderTyping();
  }
}

function onPresence(members, change, s) {
  if (s === sub) renderOnline(onlineNicks(members));
}

function onBroadcast(value, from, s) {
  const nick = typingNick(value);
  // One's own nickname typing in another tab is not news.
  if (s !== sub || !nick || nick === nickname) return;
  typingBoard.typed(nick, Date.now());
  renderTyping();
}

/** A keystroke in the composer: tells the others, at most once per TYPING_SEND_INTERVAL_MS. */
function typed() {
  const s = sub;
  if (!s || !hasPresence || !nickname || ui.text.value.trim() === "") return;
  const now = Date.now();
  if (!typingThrottle.due(now) || s.state !== "open" || s.transport !== "websocket") return;
  try {
    s.broadcast({ typing: nickname });
    typingThrottle.sent(now);
  } catch {
    /* the connection just closed: a later keystroke tries again */
  }
}

// ---- live stream: rheo-client's subscription (snapshot + changes, resume, backoff)
let sub = null; // the current subscription
let resumable = null; // the server sends Resume-Token (rheo): null until the first page says
let hasPresence = false; // the current subscription joined the stream's presence
let everLive = false;
let restarts = 0; // subscriptions replaced or restarted in a row without getting live
let restartTimer = null;
let opening = 0; // counts stream (re)starts, so that the answer of an older presence check is dropped

/**
 * Whether the stream has presence: GET .../_presence answers a list. Asked before every
 * fresh subscription, because joining a stream without presence is refused (400), which a
 * browser's WebSocket cannot tell from a lost connection. Throws when the server cannot
 * be reached.
 */
async function streamHasPresence() {
  try {
    await db.presence(COLLECTION, STREAM);
    return true;
  } catch (err) {
    if (err instanceof RheoError && err.status === 0) throw err;
    return false; // 400: a stream without presence; 404: no such stream yet, or not rheo
  }
}

/** Subscribes once it is known whether the stream has presence (see subscribeStream). */
function openStream(resumeAfter = null) {
  clearTimeout(restartTimer);
  restartTimer = null;
  const attempt = ++opening;
  streamHasPresence().then((presence) => {
    if (attempt === opening && !sub) subscribeStream(resumeAfter, presence);
  }, () => {
    if (attempt === opening && !sub) restartStream({ resumeAfter }); // the server is down: try again later
  });
}

/**
 * Subscribes to the messages. The first time (and after the subscription ended) with the
 * first page as its snapshot; from `resumeAfter` when there is one (a restart that keeps
 * the position); against a server without resume, plainly, followed by catchUp. On a
 * stream with presence it joins with the nickname, and hears who is online and typing.
 */
function subscribeStream(resumeAfter, presence) {
  const options = { onSnapshot, onEvent, onOpen, onClose, onStateChange, query: historyQuery(1) };
  if (presence) {
    Object.assign(options, {
      presence: nickname ? { nick: nickname } : null, presenceEvents: true, onPresence, onBroadcast,
    });
  }
  hasPresence = presence;
  showPresence(presence);
  let s;
  if (resumable === false) s = db.subscribe(COLLECTION, STREAM, options);
  else if (resumeAfter !== null) s = db.subscribe(COLLECTION, STREAM, { ...options, resumeAfter });
  else s = db.subscribeWithSnapshot(COLLECTION, STREAM, options);
  sub = s;
  s.closed.then((info) => {
    if (s === sub) ended(info);
  });
}

/** Drops the current subscription (its events not yet shown are dropped with it). */
function closeStream() {
  const s = sub;
  sub = null;
  opening++; // a presence check under way is for the stream being dropped
  if (s) s.close();
  return s;
}

/** A fresh subscription after a delay (the client's backoff), or at once. */
function restartStream({ now = false, resumeAfter = null } = {}) {
  closeStream();
  setStatus(everLive ? "reconnecting" : "connecting");
  clearTimeout(restartTimer);
  restartTimer = setTimeout(() => openStream(resumeAfter), now ? 0 : backoffDelay(restarts++));
}

/**
 * Shows the first page as it stood at its Resume-Token, after which the stream opens:
 * nothing committed in between is missed or doubled. Also after a lost history (the
 * client reads the page again): the list restarts from it.
 */
function onSnapshot(docs, token, s) {
  if (s !== sub) return;
  resumable = typeof token === "string" && token !== "";
  if (store.size > 0) {
    store.clear();
    generation++;
  }
  store.merge(docs);
  noOlder = docs.length < PAGE_SIZE;
  historyLoaded = true;
  render("bottom");
}

function onEvent(event, s) {
  if (s !== sub || !event || typeof event !== "object") return;
  const insert = event.fullDocument && (!event.operationType || event.operationType === "insert");
  if (insert && store.merge([event.fullDocument]).added) render("bottom");
  // Their message is here: they are no longer typing it.
  const from = insert ? validNickname(event.fullDocument.from) : null;
  if (from && typingBoard.stopped(from)) renderTyping();
}

function live() {
  restarts = 0;
  everLive = true;
  setStatus("live");
}

function onOpen(info, s) {
  if (s !== sub) return;
  if (resumable !== false) {
    live();
    return;
  }
  catchUp(s).then(() => {
    if (s === sub) live();
  }, () => {
    // History could not be read: start over, so that nothing is missed.
    if (s === sub) restartStream();
  });
}

function onClose(info, s) {
  // Without resume the client's own reconnection would skip what was sent meanwhile
  // (and send a token the server ignores): a fresh subscription catches up instead.
  if (s === sub && info.willReconnect && resumable === false) restartStream();
}

function onStateChange(state, s) {
  if (s === sub && state !== "open") setStatus(everLive ? "reconnecting" : "connecting");
}

/**
 * The subscription ended for good: the collection was dropped or is missing (404), or the
 * stream was redefined. Start over with a fresh snapshot once it is back.
 */
function ended(info) {
  sub = null;
  if (info.error instanceof RheoError && info.error.status === 404 && !historyLoaded) {
    historyLoaded = true; // no messages collection yet: an empty conversation
    render("bottom");
  }
  resumable = null;
  restartStream();
}

/**
 * Brings the list up to date after the stream (re)opened on a server without resume.
 * Everything committed before the stream opened is in the history, everything after
 * arrives on the stream, and the store drops what both deliver. On a reconnection,
 * pages back from the newest until a page shares a message with what was already shown,
 * so no message sent while away is skipped even when more than a page of them was sent.
 */
async function catchUp(s) {
  const hadMessages = store.size > 0;
  const fresh = [];
  for (let page = 1; ; page++) {
    const docs = await fetchPage(page);
    if (s !== sub) return;
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
      const docs = await fetchPage(page);
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
  // Online under the new name: the subscription joins again (and resumes where it was).
  if (sub && hasPresence) sub.setPresence({ nick });
  typingThrottle.reset();
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
    await db.insert(COLLECTION, { message: text, from: nickname });
    typingThrottle.reset(); // typing the next message is news again
    showSendError("");
    if (ui.text.value === text) ui.text.value = "";
    ui.scroller.scrollTop = ui.scroller.scrollHeight; // follow one's own message
  } catch (err) {
    showSendError(err instanceof RheoError && err.status !== 0
      ? `Not sent: ${err.message}`
      : "Not sent: the server cannot be reached. Try again in a moment.");
  } finally {
    ui.composer.classList.remove("sending");
  }
});

ui.older.addEventListener("click", loadOlder);
ui.text.addEventListener("input", typed);

// A reader at the newest message stays there when the list's box shrinks or grows (the
// online bar or the typing line appearing, a window resized): only scrolling moves away.
let pinned = true;
ui.scroller.addEventListener("scroll", () => {
  const sc = ui.scroller;
  pinned = sc.scrollHeight - sc.scrollTop - sc.clientHeight < 48;
});
new ResizeObserver(() => {
  if (pinned) ui.scroller.scrollTop = ui.scroller.scrollHeight;
}).observe(ui.scroller);

// Back online after a network change: try at once instead of waiting for the backoff,
// from where the stream stood (without resume, a fresh subscription catches up).
window.addEventListener("online", () => {
  restarts = 0; // the backoff starts over: a failure now waits half a second, not ten
  if (restartTimer) {
    restartStream({ now: true });
  } else if (sub) {
    // Also a subscription that has not connected yet (it may be waiting out a long backoff),
    // and one that looks open: while the network was away its server may have closed it
    // unheard (a browser reports no pings), so it starts again from where it stood.
    const token = resumable === true ? sub.token : null;
    restartStream({ now: true, resumeAfter: token });
  }
});

// ---- start
if (nickname) showComposer();
else showJoin();
setStatus("connecting");
openStream();
