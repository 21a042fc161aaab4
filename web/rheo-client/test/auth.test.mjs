// Authentication against a real rheo with users and a JWT key: Basic with the server's
// Auth-Token used from the first answer on, a token the server no longer accepts, logout,
// a JWT supplier called for every request and connection; streams authenticate the same way.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";

import { RheoClient, RheoError } from "../src/index.js";
import { Rheo, failure, hashPassword, waitFor } from "./helpers/server.mjs";

const JWT_KEY = "test-signing-key";
let server;

const b64url = (s) => Buffer.from(s).toString("base64url");
function hs256(claims, key = JWT_KEY) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" })) + "." + b64url(JSON.stringify(claims));
  return head + "." + createHmac("sha256", key).update(head).digest("base64url");
}
const jwtFor = (sub, seconds = 60) =>
  hs256({ sub, roles: ["user"], iss: "idp", aud: "rheo", exp: Math.floor(Date.now() / 1000) + seconds });

/** A fetch that records the Authorization header of every call. */
function recordingFetch() {
  const seen = [];
  const f = (url, init) => {
    seen.push(init.headers.Authorization ?? null);
    return fetch(url, init);
  };
  f.seen = seen;
  return f;
}
const basicOf = (header) => Buffer.from(header.replace(/^Basic /, ""), "base64").toString("utf8");


before(async () => {
  server = new Rheo({
    config: {
      users: [
        { userid: "ann", password: hashPassword("ann-pw"), roles: ["user"] },
        { userid: "bob", password: hashPassword("bob-pw"), roles: ["user"] },
      ],
      acl: [
        { roles: ["$unauthenticated", "$authenticated"], predicate: "path-prefix('/public') and method(GET)" },
        { roles: ["user"], predicate: "path-prefix('/')" },
      ],
      jwt: { algorithm: "HS256", key: JWT_KEY, issuer: "idp", audience: "rheo" },
      token_ttl_seconds: 900,
    },
  });
  await server.start();
  const admin = new RheoClient(server.url, { auth: { user: "bob", password: "bob-pw" } });
  await admin.createCollection("notes", { streams: [{ uri: "all", stages: [] }] });
});
after(async () => {
  await server?.dispose();
});

describe("Basic and the Auth-Token", () => {
  it("logs in with the password once, then sends the token the server issued", async () => {
    const f = recordingFetch();
    const tokens = [];
    const db = new RheoClient(server.url, { fetch: f, auth: { user: "ann", password: "ann-pw" }, onToken: (t) => tokens.push(t) });
    assert.equal(db.authToken, null);
    await db.insert("notes", { _id: "basic-1" });
    const token = db.authToken;
    assert.ok(token && token.length >= 16);
    assert.ok(db.authTokenValidUntil > new Date());
    await db.get("notes", "basic-1");
    await db.find("notes");
    assert.deepEqual(f.seen.map(basicOf), ["ann:ann-pw", `ann:${token}`, `ann:${token}`]);
    assert.deepEqual(tokens, [token]);
    const explicit = await db.login();
    assert.equal(explicit.token, token);
  });

  it("logs in again with the password when the server no longer takes the token", async () => {
    const f = recordingFetch();
    const db = new RheoClient(server.url, { fetch: f, auth: { user: "ann", password: "ann-pw" } });
    await db.find("notes");
    const first = db.authToken;
    // Another client of ann's logs out: the token (one per user) is revoked.
    const other = new RheoClient(server.url, { auth: { user: "ann", token: first } });
    await other.logout();
    assert.equal((await server.http("GET", "/notes", undefined, { Authorization: `Basic ${Buffer.from(`ann:${first}`).toString("base64")}` })).status, 401);
    f.seen.length = 0;
    const docs = await db.find("notes");
    assert.ok(Array.isArray(docs));
    assert.deepEqual(f.seen.map(basicOf), [`ann:${first}`, "ann:ann-pw"]);
    assert.ok(db.authToken && db.authToken !== first);
  });

  it("works with a token kept from before, and refuses a wrong password with the server's message", async () => {
    const login = new RheoClient(server.url, { auth: { user: "ann", password: "ann-pw" } });
    const { token } = await login.login();
    const db = new RheoClient(server.url, { auth: { user: "ann", token } });
    assert.ok(Array.isArray(await db.find("notes")));
    const wrong = await failure(new RheoClient(server.url, { auth: { user: "ann", password: "nope" } }).find("notes"));
    assert.ok(wrong instanceof RheoError);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.message, "wrong user or password");
    const anonymous = await failure(new RheoClient(server.url).find("notes"));
    assert.equal(anonymous.status, 401);
  });

  it("logs out: the token is revoked and the client is anonymous", async () => {
    const db = new RheoClient(server.url, { auth: { user: "ann", password: "ann-pw" } });
    await db.find("notes");
    const token = db.authToken;
    await db.logout();
    assert.equal(db.authToken, null);
    assert.equal(db.user, null);
    assert.equal((await failure(db.find("notes"))).status, 401);
    const old = await server.http("GET", "/notes", undefined, { Authorization: `Basic ${Buffer.from(`ann:${token}`).toString("base64")}` });
    assert.equal(old.status, 401);
  });

  it("authenticates change streams over WebSocket and SSE with the token", async () => {
    const db = new RheoClient(server.url, { WebSocket, auth: { user: "ann", password: "ann-pw" } });
    await db.find("notes");
    for (const transport of ["websocket", "sse"]) {
      const got = [];
      const sub = db.subscribeWithSnapshot("notes", "all", { transport, query: { pagesize: 1 }, onEvent: (e) => got.push(e) });
      await sub.opened;
      assert.equal(sub.transport, transport);
      await db.insert("notes", { _id: `stream-${transport}` });
      await waitFor(() => got.some((e) => e.documentKey._id === `stream-${transport}`), `the insert over ${transport}`);
      sub.close();
    }
    // Without credentials the handshake is refused (401): no reconnecting.
    for (const transport of ["websocket", "sse"]) {
      const errors = [];
      const anon = new RheoClient(server.url, { WebSocket }).subscribe("notes", "all", { transport, onError: (e) => errors.push(e) });
      const end = await anon.closed;
      assert.equal(end.error.status, 401, transport);
      assert.equal(errors[0].message, "authentication required");
      assert.equal(anon.state, "closed");
    }
  });
});

describe("JWT", () => {
  it("calls the supplier for every request and connection", async () => {
    let calls = 0;
    const db = new RheoClient(server.url, {
      WebSocket,
      auth: { jwt: async () => { calls++; return jwtFor("carol"); } },
    });
    await db.insert("notes", { _id: "jwt-1", by: "carol" });
    assert.equal((await db.get("notes", "jwt-1")).by, "carol");
    assert.equal(calls, 2);
    assert.equal(db.authToken, null, "a JWT client keeps no token");
    for (const transport of ["websocket", "sse"]) {
      const got = [];
      const sub = db.subscribeWithSnapshot("notes", "all", { transport, query: { pagesize: 1 }, onEvent: (e) => got.push(e) });
      await sub.opened;
      await db.insert("notes", { _id: `jwt-${transport}` });
      await waitFor(() => got.some((e) => e.documentKey._id === `jwt-${transport}`), `the insert over ${transport}`);
      sub.close();
    }
    assert.ok(calls >= 8, String(calls));
  });

  it("reports a refused JWT with the server's message", async () => {
    const expired = new RheoClient(server.url, { auth: { jwt: () => jwtFor("carol", -60) } });
    const err = await failure(expired.find("notes"));
    assert.equal(err.status, 401);
    assert.match(err.message, /expired/);
    const forged = new RheoClient(server.url, { auth: { jwt: hs256({ sub: "x", roles: ["user"], iss: "idp", aud: "rheo" }, "guess") } });
    assert.equal((await failure(forged.find("notes"))).status, 401);
    await forged.logout(); // forgets the JWT
    assert.equal((await failure(forged.find("notes"))).message, "authentication required");
  });
});
