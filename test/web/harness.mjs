// Shared by the browser tests and the README screenshot script: starts a real rheo,
// talks to its REST API, launches Debian's chromium through playwright-core, and waits
// for conditions with deadlines (never for fixed times).

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "..", "..");
export const webDir = path.join(repoRoot, "web");
export const artifactsDir = path.join(repoRoot, "test-artifacts", "web");

/** The rheo binary: $RHEO_BINARY, an argument `--rheo=<path>`, or a build folder of the repo. */
export function rheoBinary() {
  const arg = process.argv.find((a) => a.startsWith("--rheo="));
  const candidates = [
    process.env.RHEO_BINARY,
    arg && arg.slice("--rheo=".length),
    path.join(repoRoot, "build", "rheo"),
    path.join(repoRoot, "build-web", "rheo"),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`rheo binary not found; set RHEO_BINARY (tried ${candidates.join(", ")})`);
  return path.resolve(found);
}

export function chromiumPath() {
  const p = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
  if (!existsSync(p)) throw new Error(`${p} not found: install Debian's chromium (scripts/setup.sh)`);
  return p;
}

export const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run", "--disable-quic",
];

export async function launchBrowser() {
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch (err) {
    throw new Error(`playwright-core is missing: run "npm ci" in test/web (${err.message})`);
  }
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
}

/** Polls `fn` until it returns a truthy value; throws with `what` after `timeout` ms. */
export async function waitUntil(fn, what, timeout = 20000, interval = 50) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * A rheo process on a data folder of its own; `restart()` keeps port and data. `args`
 * are further command-line flags, e.g. ["--changelog-retention", "5"].
 */
export class Rheo {
  constructor({ binary = rheoBinary(), dataDir, port = 0, args = [], log = () => {} } = {}) {
    this.binary = binary;
    this.args = args;
    this.ownsDataDir = !dataDir;
    this.dataDir = dataDir ?? mkdtempSync(path.join(tmpdir(), "rheo-web-"));
    this.port = port;
    this.log = log;
    this.proc = null;
    this.output = "";
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(timeout = 30000) {
    const args = ["--port", String(this.port), "--data-dir", this.dataDir, "--static-dir", webDir, ...this.args];
    const proc = spawn(this.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
    const onData = (chunk) => {
      this.output += chunk.toString();
      this.log(chunk.toString());
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`rheo did not start:\n${this.output}`)), timeout);
      const check = () => {
        const m = /listening on https?:\/\/[^\s:]+:(\d+)/.exec(this.output);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      proc.stdout.on("data", check);
      proc.stderr.on("data", check);
      proc.on("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`rheo exited (${code ?? signal}) before listening:\n${this.output}`));
      });
    });
    this.port = port;
    await waitUntil(async () => (await fetch(`${this.url}/_ping`)).ok, "rheo /_ping", timeout);
    return this;
  }

  async stop(timeout = 30000) {
    if (!this.proc) return null;
    const proc = this.proc;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeout);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  async restart() {
    await this.stop();
    // The port was just released; binding it again can race with the kernel, so retry.
    await waitUntil(async () => {
      try {
        await this.start();
        return true;
      } catch (err) {
        if (/exited/.test(err.message)) return false;
        throw err;
      }
    }, `rheo to start again on port ${this.port}`, 30000, 200);
  }

  async dispose() {
    await this.stop();
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  // ---- REST
  async request(method, p, body) {
    const res = await fetch(this.url + p, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
  }

  /** Declares the `all` stream on `messages` unless the server already has it. */
  async ensureMessagesStream() {
    const meta = await this.request("GET", "/messages/_meta");
    // A server whose security hides the metadata manages the stream itself.
    if (meta.status === 401 || meta.status === 403) return false;
    if (meta.status === 200) {
      const streams = meta.json().streams ?? [];
      if (streams.some((s) => s.uri === "all")) return false;
    }
    const stream = { uri: "all", stages: [{ _$match: { _$or: [{ operationType: "insert" }] } }] };
    const put = await this.request("PUT", "/messages", { streams: [stream] });
    if (put.status !== 200 && put.status !== 201)
      throw new Error(`PUT /messages answered ${put.status}: ${put.text}`);
    return true;
  }

  async post(doc) {
    const res = await this.request("POST", "/messages", doc);
    if (res.status !== 201) throw new Error(`POST /messages answered ${res.status}: ${res.text}`);
    return res.headers.get("location");
  }
}

export function ensureArtifactsDir() {
  mkdirSync(artifactsDir, { recursive: true });
  return artifactsDir;
}
