// Type declarations of rheo-client (src/index.js). They use the DOM's fetch types
// (Response, RequestCredentials, AbortSignal): compile with lib "DOM" or @types/node >= 18.

/** A stored document: MongoDB relaxed extended JSON ({"$oid"}, {"$date": millis}, numbers). */
export type Document = { [key: string]: any };

/** A document _id as the API shows it: an ObjectId, a string or a number. */
export type Id = string | number | { $oid: string };

/** How an id in a URL is read (the API's id_type). */
export type IdType = "STRING" | "OID" | "NUMBER";

/** A filter, sort, keys or avars value: an object (sent as JSON) or a string sent as it is
 *  (shell syntax such as "{n:{$gte:1}}", or "-score" for sort). */
export type QueryValue = string | { [key: string]: any };

/** An ETag for If-Match: the header's string, an ObjectId, or a document with its _etag. */
export type ETagLike = string | { $oid: string } | { _etag: string | { $oid: string } };

export interface CallOptions {
  /** Aborts the call: it rejects with the signal's reason (an AbortError by default). */
  signal?: AbortSignal;
}

/** The parameters of GET /<coll> (API section 3). */
export interface Query extends CallOptions {
  /** Repeatable (an array): the filters are ANDed. */
  filter?: QueryValue | QueryValue[];
  /** An object ({score: -1}), "field" / "-field", or an array of them. */
  sort?: QueryValue | QueryValue[];
  /** A projection ({name: 1}); repeatable. */
  keys?: QueryValue | QueryValue[];
  /** >= 1, default 1. */
  page?: number;
  /** 0..1000, default 100. */
  pagesize?: number;
  /** Any other parameter, e.g. {explain: true}. */
  params?: Record<string, string | number | boolean>;
}

export interface WriteOptions extends CallOptions {
  /** The write happens only if the document's ETag is this one (else RheoError 412). */
  ifMatch?: ETagLike;
  /** Create the document when it is missing (wm=upsert; the result says created: true). */
  upsert?: boolean;
  /** The API's wm parameter, explicitly. */
  writeMode?: "insert" | "update" | "upsert";
  /** How the id is read from the URL, when the default does not fit. */
  idType?: IdType;
}

export interface DocumentOptions extends CallOptions {
  idType?: IdType;
  keys?: QueryValue | QueryValue[];
}

export interface InsertResult {
  /** The document's _id: the one given, or the one the server generated. */
  id: Id;
  etag: string | null;
  location: string | null;
}

export interface WriteResult {
  etag: string | null;
  /** True when an upsert created the document (201). */
  created: boolean;
}

export interface BulkResult {
  inserted: number;
  links: string[];
  deleted: number;
  modified: number;
  matched: number;
}

export interface InsertManyResult extends BulkResult {
  /** The _id of every inserted document, in the array's order. */
  ids: Id[];
}

export interface Snapshot<T> {
  docs: T[];
  /** The Resume-Token header: the change-feed position the docs reflect (null without one). */
  token: string | null;
}

export interface IndexInfo {
  _id: string;
  key: { [field: string]: number | string };
  unique?: boolean;
  sparse?: boolean;
  partialFilterExpression?: Document;
  expireAfterSeconds?: number;
  [option: string]: unknown;
}

export interface IndexOptions {
  unique?: boolean;
  sparse?: boolean;
  partialFilterExpression?: Document;
  expireAfterSeconds?: number;
  [option: string]: unknown;
}

export interface AggregateOptions extends CallOptions {
  avars?: QueryValue;
  page?: number;
  pagesize?: number;
}

/**
 * Credentials: Basic ({user, password}; the Auth-Token the server answers replaces the
 * password from then on), a token kept from before ({user, token}), or a JWT (a string,
 * or a function called for every request and connection).
 */
export type Auth =
  | { user: string; password: string; token?: string }
  | { user: string; token: string; password?: string }
  | { jwt: string | (() => string | Promise<string>) };

/** What the client needs of a WebSocket object (the browser's, or the ws package's). */
export interface WebSocketLike {
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onerror: ((ev: any) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  /** 1 when open (broadcast() sends only then). */
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor; one passed as an option is called as new (url, {headers}) like ws's. */
export type WebSocketConstructor = new (url: string, options?: any) => WebSocketLike;

export type Transport = "websocket" | "sse";

export interface BackoffOptions {
  /** First delay, default 500 ms. */
  initialMs?: number;
  /** The cap, default 10000 ms. */
  maxMs?: number;
  /** Growth per attempt, default 2. */
  factor?: number;
  /** 0..1, default 0.5: a delay is between (1 - jitter) and 1 times its base. */
  jitter?: number;
}

export interface ClientOptions {
  /** Credentials (default: anonymous). */
  auth?: Auth | null;
  /**
   * A WebSocket constructor, e.g. `import WebSocket from "ws"` in Node (20 has none).
   * Default: globalThis.WebSocket, if any. Without one, streams use SSE.
   */
  WebSocket?: WebSocketConstructor;
  /** Whether the constructor takes (url, {headers}); default: true for one passed as WebSocket. */
  webSocketHeaders?: boolean;
  /** A fetch function (default: globalThis.fetch). */
  fetch?: (input: string, init?: any) => Promise<Response>;
  /** "auto" (default): WebSocket when there is one that can carry the credentials, else SSE. */
  transport?: "auto" | Transport;
  backoff?: BackoffOptions;
  /**
   * fetch's credentials mode; default "omit" (the client sends its own Authorization, and
   * a browser including credentials would prompt for a password on a 401). "same-origin"
   * or "include" send the rheo_auth cookie.
   */
  credentials?: RequestCredentials;
  /** Headers sent with every request and connection. */
  headers?: Record<string, string>;
  /** An SSE connection silent this long is reopened (default 70000; 0: never). */
  sseIdleTimeoutMs?: number;
  /** Called when the Basic token changes (a new one, or null when dropped or logged out). */
  onToken?: (token: string | null, validUntil: Date | null) => void;
}

/** An error of the server (status and its message) or of the connection (status 0). */
export declare class RheoError extends Error {
  constructor(message: string, details?: {
    status?: number; statusText?: string; body?: unknown; headers?: Headers | null;
    method?: string; url?: string; cause?: unknown;
  });
  readonly name: "RheoError";
  /** The HTTP status; 0 when no answer came. */
  readonly status: number;
  readonly statusText: string;
  /** The error body: rheo's {"http status code", "http status description", "message"}. */
  readonly body: unknown;
  readonly method: string;
  readonly url: string;
  /** The current ETag sent with the error (a 412 carries it), or null. */
  readonly etag: string | null;
  /** Retry-After in seconds (429, 503), or null. */
  readonly retryAfter: number | null;
  static fromResponse(res: Response, method?: string, url?: string): Promise<RheoError>;
}

/** A change event (API section 4); stages that reshape events shape it. */
export interface ChangeEvent<T = Document> {
  /** The event's resume token is _id._data. */
  _id?: { _data: string };
  operationType?: "insert" | "update" | "replace" | "delete" | "drop" | "rename" | "invalidate";
  fullDocument?: T;
  documentKey?: { _id: any };
  updateDescription?: { updatedFields: Document; removedFields: string[] };
  [field: string]: unknown;
}

export type ChannelState = "connecting" | "open" | "reconnecting" | "closed";

export interface CloseInfo {
  /** The WebSocket close code (for SSE: what a WebSocket would have had). */
  code: number;
  reason: string;
  /** False when the subscription has ended (1000 and other terminal codes, refused handshakes). */
  willReconnect: boolean;
  error?: Error;
}

export interface EndInfo {
  code: number;
  reason: string;
  /** Why it ended, when it was an error (e.g. RheoError 404 for an unknown stream). */
  error?: Error;
}

export interface ChannelOptions<Self> {
  /** Overrides the client's transport choice. */
  transport?: "auto" | Transport;
  backoff?: BackoffOptions;
  /** Aborting it closes the subscription. */
  signal?: AbortSignal;
  sseIdleTimeoutMs?: number;
  /** Every (re)opened connection. */
  onOpen?: (info: { reconnect: boolean; transport: Transport }, self: Self) => void;
  /** Every closed connection (not the app's own close()). */
  onClose?: (info: CloseInfo, self: Self) => void;
  /** Errors: refused handshakes, frames that do not parse, exceptions of the app's callbacks. */
  onError?: (error: Error, self: Self) => void;
  onStateChange?: (state: ChannelState, self: Self) => void;
}

export interface HistoryLostContext<T> {
  /** SSE: the server's current position (its history-lost event's id); WebSocket: null. */
  position: string | null;
  subscription: Subscription<T>;
}

export interface SubscribeOptions<T = Document> extends ChannelOptions<Subscription<T>> {
  /** Variable bindings of the stream's stages ({"$var": ...}). */
  avars?: QueryValue;
  /** More parameters of the handshake (objects are sent as JSON). */
  params?: Record<string, string | number | boolean | { [key: string]: any }>;
  /**
   * Joins the stream's presence with this object (at most 1 KiB of JSON), e.g. {nick: "ann"},
   * on every connection (API section 11: a stream with "presence": true; on one without,
   * the server refuses the handshake with 400). setPresence() changes it.
   */
  presence?: Document | null;
  /** Receives presence frames: `members` is kept, and onPresence called after each. */
  presenceEvents?: boolean;
  /**
   * After each presence frame, with the new `members`. `change.reset` marks a connection's
   * first frame, which replaces the list with the members the server knows.
   */
  onPresence?: (members: PresenceMember[], change: PresenceChange, subscription: Subscription<T>) => void;
  /** A broadcast of another session of the stream, with who sent it. */
  onBroadcast?: (value: any, from: BroadcastSender, subscription: Subscription<T>) => void;
  /** Start after this token (an event's _id._data or a Resume-Token). Default: the
   *  position at subscribe() (read with a one-document GET of the collection). */
  resumeAfter?: string | null;
  /** Each change, in commit order, one at a time (a returned promise is awaited). */
  onEvent?: (event: ChangeEvent<T>, subscription: Subscription<T>) => void | Promise<void>;
  /**
   * The server no longer holds the changes after the token (close 4410, SSE
   * history-lost). Return the token to continue after (e.g. a snapshot's), or null to
   * continue live from now. Default: read the snapshot again (query, onSnapshot) and
   * continue after its Resume-Token.
   */
  onHistoryLost?: (ctx: HistoryLostContext<T>) => string | null | undefined | void | Promise<string | null | undefined | void>;
  /** The documents of a snapshot read (the first one of subscribeWithSnapshot, or after history was lost). */
  onSnapshot?: (docs: T[], token: string | null, subscription: Subscription<T>) => void | Promise<void>;
  /** The GET /<coll> parameters of the snapshot. */
  query?: Omit<Query, "signal">;
}

/** A member of a stream's presence (API section 11). */
export interface PresenceMember {
  /** The connection's id, unique in the cluster: a client that reconnects gets a new one. */
  id: string;
  /** The authenticated user, or null. */
  user: string | null;
  /** The presence object the client joined with. */
  info: Document;
  /** When it joined. */
  since: { $date: number };
}

/** What one presence frame changed. */
export interface PresenceChange {
  joined: PresenceMember[];
  /** The ids of the members that left. */
  left: string[];
  /** The connection's first frame: `joined` is everyone the server knows, the list restarted from it. */
  reset: boolean;
}

/** Who sent a broadcast: its connection's id, user and presence object (null if it did not join). */
export interface BroadcastSender {
  id: string;
  user: string | null;
  info: Document | null;
}

/** A change stream subscription that reconnects and resumes by itself. */
export declare class Subscription<T = Document> {
  readonly collection: string;
  readonly stream: string;
  /** The token of the last event handled by onEvent (or of the last snapshot): persist it to resume later. */
  readonly token: string | null;
  readonly state: ChannelState;
  readonly transport: Transport | null;
  /** How many times a connection opened again after the first. */
  readonly reconnects: number;
  /** Resolves when the first connection opens (after the snapshot, if any). */
  readonly opened: Promise<void>;
  /** Resolves when the subscription ends for good. */
  readonly closed: Promise<EndInfo>;
  /** The stream's members (presenceEvents): a new array after every presence frame, in the order they joined. */
  readonly members: PresenceMember[];
  /**
   * Sends {"broadcast": value} to the other sessions of the stream (a broadcast stream; at
   * most 4 KiB and 20 a second, beyond which the server drops them silently). Throws a
   * RheoError over SSE or while not open, a TypeError for a value that is not JSON, a
   * RangeError past 4 KiB.
   */
  broadcast(value: unknown): void;
  /** Joins again with this presence object (null: leaves): the connection reopens at once. */
  setPresence(info: Document | null): void;
  /** Closes it; events not yet handed to onEvent are dropped. */
  close(): void;
}

export type LiveOp<T> =
  | { op: "add"; at: number; doc: T }
  | { op: "remove"; at: number }
  | { op: "update"; at: number; to: number; doc: T };

export interface LiveChange<T> {
  type: "init" | "diff";
  /** The diff's ops (null for an init). */
  ops: LiveOp<T>[] | null;
  token: string | null;
}

export interface LiveOptions<T = Document> extends ChannelOptions<LiveQuery<T>> {
  filter?: QueryValue | QueryValue[];
  sort?: QueryValue | QueryValue[];
  keys?: QueryValue | QueryValue[];
  /** The window, default 100. */
  pagesize?: number;
  avars?: QueryValue;
  /** After every init and diff, with the new array. */
  onChange?: (docs: T[], change: LiveChange<T>, live: LiveQuery<T>) => void;
}

/** A live query: `docs` equals GET /<coll> with the same parameters after every frame. */
export declare class LiveQuery<T = Document> {
  readonly collection: string;
  /** The current result; a new array after every frame. */
  readonly docs: T[];
  readonly token: string | null;
  readonly initialized: boolean;
  readonly state: ChannelState;
  readonly transport: Transport | null;
  readonly reconnects: number;
  /** Resolves with the first init's documents. */
  readonly ready: Promise<T[]>;
  readonly opened: Promise<void>;
  readonly closed: Promise<EndInfo>;
  close(): void;
}

export declare class RheoClient {
  /** `baseUrl` defaults to the page's origin in a browser. */
  constructor(baseUrl?: string, options?: ClientOptions);
  readonly baseUrl: string;
  transport: "auto" | Transport;
  backoff: Required<BackoffOptions>;
  credentials: RequestCredentials;
  headers: Record<string, string>;
  sseIdleTimeoutMs: number;

  // authentication
  setAuth(auth: Auth | null): void;
  readonly authToken: string | null;
  readonly authTokenValidUntil: Date | null;
  readonly user: string | null;
  login(options?: CallOptions): Promise<{ token: string | null; validUntil: Date | null }>;
  logout(options?: CallOptions): Promise<void>;

  // collections
  listCollections(options?: CallOptions): Promise<string[]>;
  createCollection(coll: string, metadata?: Document, options?: CallOptions & { ifMatch?: ETagLike }): Promise<{ created: boolean; etag: string | null }>;
  updateCollection(coll: string, metadata: Document, options?: CallOptions & { ifMatch?: ETagLike }): Promise<{ etag: string | null }>;
  getCollection(coll: string, options?: CallOptions): Promise<Document>;
  dropCollection(coll: string, options?: CallOptions & { ifMatch?: ETagLike }): Promise<void>;

  // reads
  snapshot<T = Document>(coll: string, query?: Query): Promise<Snapshot<T>>;
  find<T = Document>(coll: string, query?: Query): Promise<T[]>;
  count(coll: string, query?: Pick<Query, "filter" | "signal">): Promise<number>;
  get<T = Document>(coll: string, id: Id, options?: DocumentOptions): Promise<T>;

  // writes
  insert(coll: string, doc: Document, options?: CallOptions & { writeMode?: "insert" | "update" | "upsert"; upsert?: boolean }): Promise<InsertResult>;
  insertMany(coll: string, docs: Document[], options?: CallOptions): Promise<InsertManyResult>;
  update(coll: string, id: Id, update: Document, options?: WriteOptions): Promise<WriteResult>;
  replace(coll: string, id: Id, doc: Document, options?: WriteOptions): Promise<WriteResult>;
  delete(coll: string, id: Id, options?: Omit<WriteOptions, "upsert" | "writeMode">): Promise<void>;
  updateMany(coll: string, filter: QueryValue | QueryValue[], update: Document, options?: CallOptions): Promise<BulkResult>;
  deleteMany(coll: string, filter: QueryValue | QueryValue[], options?: CallOptions): Promise<BulkResult>;

  // aggregations, indexes, health
  aggregate<T = Document>(coll: string, name: string, options?: AggregateOptions): Promise<T[]>;
  listIndexes(coll: string, options?: CallOptions): Promise<IndexInfo[]>;
  createIndex(coll: string, name: string, keys: { [field: string]: number }, ops?: IndexOptions | null, options?: CallOptions): Promise<void>;
  dropIndex(coll: string, name: string, options?: CallOptions): Promise<void>;
  ping(options?: CallOptions): Promise<true>;

  // push
  /** GET /<coll>/_streams/<stream>/_presence: the stream's members (400 on a stream without presence). */
  presence(coll: string, stream: string, options?: CallOptions): Promise<PresenceMember[]>;
  subscribe<T = Document>(coll: string, stream: string, options?: SubscribeOptions<T>): Subscription<T>;
  subscribeWithSnapshot<T = Document>(coll: string, stream: string, options?: SubscribeOptions<T>): Subscription<T>;
  live<T = Document>(coll: string, options?: LiveOptions<T>): LiveQuery<T>;
}

export declare function createClient(baseUrl?: string, options?: ClientOptions): RheoClient;

/** {$oid: hex} */
export declare function oid(hex: string): { $oid: string };
/** {$date: millis} from a Date, millis or an ISO string (default: now). */
export declare function date(d?: Date | number | string): { $date: number };
/** The resume token of a change event (_id._data), or null. */
export declare function eventToken(event: unknown): string | null;
/** Applies a live query diff to a copy of `docs`; throws on an op that does not fit. */
export declare function applyDiff<T>(docs: readonly T[], ops: LiveOp<T>[]): T[];
/** Delay before reconnect attempt `attempt` (0-based). */
export declare function backoffDelay(attempt: number, options?: BackoffOptions, random?: () => number): number;

/** Close codes after which a subscription does not reconnect by itself. */
export declare const TERMINAL_CLOSE_CODES: ReadonlySet<number>;
/** 4410: the server no longer holds the history after the token. */
export declare const HISTORY_LOST: 4410;

/** The event-stream parser used for SSE. */
export declare class SseParser {
  constructor(onEvent: (ev: { type: string; data: string; id: string | null }) => void, onComment?: (text: string) => void);
  push(text: string): void;
  end(): void;
}
