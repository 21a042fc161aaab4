// Compiled by `npm run typecheck` (tsc --noEmit --strict): every call of the README, typed
// through the package's own name, as an app imports it. Never run.
import {
  HISTORY_LOST, LiveQuery, RheoClient, RheoError, Subscription, TERMINAL_CLOSE_CODES, applyDiff, backoffDelay,
  createClient, date, eventToken, oid,
} from "rheo-client";
import type {
  BroadcastSender, ChangeEvent, Id, LiveOp, PresenceChange, PresenceMember, WebSocketConstructor,
} from "rheo-client";

declare const WebSocketImpl: WebSocketConstructor; // e.g. `import WebSocket from "ws"`

interface Note {
  _id: Id;
  text: string;
  n: number;
  _etag: { $oid: string };
}

async function rest(): Promise<void> {
  const db = new RheoClient("http://localhost:8080", {
    WebSocket: WebSocketImpl,
    auth: { user: "admin", password: "secret" },
    backoff: { initialMs: 250, maxMs: 5000 },
    onToken: (token: string | null, until: Date | null) => void [token, until],
  });
  const ac = new AbortController();
  const { created, etag } = await db.createCollection("notes", { streams: [{ uri: "all", stages: [] }] });
  const flag: boolean = created;
  const tag: string | null = etag;
  await db.updateCollection("notes", { aggrs: [] }, { ifMatch: tag ?? undefined });
  const meta = await db.getCollection("notes");
  const names: string[] = await db.listCollections();

  const ins = await db.insert("notes", { text: "hello", n: 1, at: date() }, { signal: ac.signal });
  const id: Id = ins.id;
  const many = await db.insertMany("notes", [{ text: "a", n: 2 }, { _id: oid("6b16a12b9c49369e1fa4aece"), text: "b", n: 3 }]);
  const count: number = many.inserted + many.ids.length;

  const notes: Note[] = await db.find<Note>("notes", { filter: { n: { $gte: 1 } }, sort: "-n", keys: { text: 1 }, page: 1, pagesize: 10 });
  const first: Note = notes[0];
  const text: string = first.text;
  const snap = await db.snapshot<Note>("notes", { filter: ["{n:1}", { text: "a" }], signal: ac.signal });
  const token: string | null = snap.token;
  const one = await db.get<Note>("notes", id, { idType: "STRING" });
  const size: number = await db.count("notes", { filter: { n: 1 } });

  const upd = await db.update("notes", id, { $inc: { n: 1 } }, { ifMatch: one, upsert: false });
  const rep = await db.replace("notes", 7, { text: "x", n: 0 }, { ifMatch: upd.etag ?? "", upsert: true });
  const wasCreated: boolean = rep.created;
  await db.delete("notes", id, { ifMatch: one._etag });
  const bulk = await db.updateMany("notes", { n: { $gt: 1 } }, { $set: { big: true } });
  const removed: number = (await db.deleteMany("notes", "{big:true}")).deleted + bulk.modified;
  await db.dropCollection("notes", { ifMatch: meta._etag });

  const rows = await db.aggregate<{ _id: string; total: number }>("sales", "revenue", { avars: { min: 2 }, page: 1, pagesize: 10 });
  const total: number = rows[0].total;
  await db.createIndex("notes", "by_n", { n: -1 }, { unique: true });
  const indexes = await db.listIndexes("notes");
  const unique: boolean | undefined = indexes[0].unique;
  await db.dropIndex("notes", "by_n");
  const alive: true = await db.ping();

  try {
    await db.get("notes", "missing");
  } catch (err) {
    if (err instanceof RheoError) {
      const status: number = err.status;
      const message: string = err.message;
      const current: string | null = err.etag;
      void [status, message, current];
    }
  }

  const login = await db.login();
  const tok: string | null = login.token ?? db.authToken;
  await db.logout();
  db.setAuth({ jwt: async () => "a.b.c" });
  db.setAuth({ user: "ann", token: "t" });
  db.setAuth(null);
  const anon = createClient();
  void [flag, names, count, text, token, size, wasCreated, removed, total, unique, alive, tok, anon];
}

function streams(db: RheoClient): void {
  const sub: Subscription<Note> = db.subscribe<Note>("notes", "all", {
    avars: { who: "ann" },
    resumeAfter: localStorage.getItem("token"),
    transport: "sse",
    onEvent: async (ev: ChangeEvent<Note>) => {
      if (ev.operationType === "insert" && ev.fullDocument) console.log(ev.fullDocument.text);
      const t: string | null = eventToken(ev);
      void t;
    },
    onHistoryLost: async ({ position }) => position,
    onClose: ({ code, willReconnect }) => {
      if (code === HISTORY_LOST || TERMINAL_CLOSE_CODES.has(code)) console.log(willReconnect);
    },
    onError: (err) => console.error(err.message),
    onStateChange: (state) => console.log(state),
  });
  sub.opened.then(() => console.log(sub.transport, sub.state, sub.reconnects, sub.token));
  sub.closed.then(({ code, reason, error }) => console.log(code, reason, error));

  const withSnap = db.subscribeWithSnapshot<Note>("notes", "all", {
    query: { sort: { n: -1 }, pagesize: 50 },
    onSnapshot: (docs: Note[], token: string | null) => console.log(docs.length, token),
    onEvent: (ev) => console.log(ev.documentKey?._id),
    signal: new AbortController().signal,
  });
  withSnap.close();

  const live: LiveQuery<Note> = db.live<Note>("notes", {
    filter: { n: { $gt: 0 } },
    sort: { n: -1 },
    pagesize: 10,
    keys: { text: 1, n: 1 },
    onChange: (docs, change) => {
      const kind: "init" | "diff" = change.type;
      const ops: LiveOp<Note>[] | null = change.ops;
      console.log(kind, ops, docs.map((d) => d.n));
    },
  });
  live.ready.then((docs: Note[]) => console.log(docs.length, live.docs, live.token, live.initialized));
  live.close();

  const next: Note[] = applyDiff<Note>([], [{ op: "add", at: 0, doc: { _id: 1, text: "x", n: 1, _etag: oid("6b16a12b9c49369e1fa4aece") } }]);
  const delay: number = backoffDelay(3, { initialMs: 100 });
  void [next, delay];
}

async function presenceAndBroadcast(db: RheoClient): Promise<void> {
  const room = db.subscribe("messages", "all", {
    presence: { nick: "ann" },
    presenceEvents: true,
    onPresence: (members: PresenceMember[], change: PresenceChange) => {
      const nicks: string[] = members.map((m) => String(m.info.nick));
      const since: number = members[0].since.$date;
      const user: string | null = members[0].user;
      console.log(nicks, since, user, change.reset, change.joined.length, change.left.join(","));
    },
    onBroadcast: (value, from: BroadcastSender, sub) => {
      if (value && value.typing) console.log(from.id, from.user, from.info?.nick, sub.members.length);
    },
  });
  await room.opened;
  room.broadcast({ typing: "ann" });
  room.setPresence({ nick: "annie" });
  room.setPresence(null);
  const first: PresenceMember | undefined = room.members[0];
  const listed: PresenceMember[] = await db.presence("messages", "all", { signal: new AbortController().signal });
  const id: string = listed[0].id;
  void [first, id];
  room.close();
}

void rest;
void streams;
void presenceAndBroadcast;
