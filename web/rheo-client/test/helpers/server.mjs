// A real rheo for the client's tests: the browser tests' (test/web/harness.mjs: its own
// temporary data folder, port 0 at first and the same port on a restart, conditions waited
// for with deadlines, never fixed times), started with a config file of the test's.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { Rheo as HarnessRheo, rheoBinary, waitUntil } from "../../../../test/web/harness.mjs";

export { rheoBinary };

/** Polls `fn` until it returns something truthy; throws naming `what` after `timeout` ms. */
export const waitFor = waitUntil;

/** The error a call rejects with (the test fails when it does not reject). */
export async function failure(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("expected the call to fail");
}

/** An argon2id hash for a users entry (rheo hash-password). */
export function hashPassword(pw) {
  return execFileSync(rheoBinary(), ["hash-password", pw], { encoding: "utf8" }).trim();
}

/** Every path open to everyone. */
export const OPEN_ACL = [{ roles: ["$unauthenticated", "$authenticated"], predicate: "path-prefix('/')" }];

export class Rheo extends HarnessRheo {
  /**
   * @param {{config?: object, args?: string[]}} options `config` is written to a file
   *   (default: {acl: OPEN_ACL}); `args` are more flags.
   */
  constructor({ config = { acl: OPEN_ACL }, args = [] } = {}) {
    const dir = mkdtempSync(path.join(tmpdir(), "rheo-client-"));
    const configFile = path.join(dir, "rheo.json");
    writeFileSync(configFile, JSON.stringify({ create_messages: false, ...config }));
    super({
      dataDir: path.join(dir, "data"),
      args: ["--config", configFile, "--durability", "normal", ...args],
    });
    this.dir = dir;
  }

  async dispose() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A plain HTTP call, outside the client under test. */
  async http(method, p, body, headers = {}) {
    const res = await fetch(this.url + p, {
      method,
      headers: body === undefined ? headers : { "Content-Type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
  }
}
