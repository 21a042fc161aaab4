// The README examples as written, run with the tarball `npm pack` makes: the package's own
// ("a server from scripts/run.sh --config config/example.json") and the project README's
// "Use it from JavaScript" ("against a fresh scripts/run.sh"). Each runs as a program of its
// own in a folder where the tarball is installed, against a server started as the README
// says (only the port differs), and must print what its comment says it prints.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Rheo } from "../../../test/web/harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = path.resolve(here, "..");
const repoDir = path.resolve(pkgDir, "../..");

/** The first ```js block of `file` after the line `heading` (a heading or a sentence). */
function firstJsBlock(file, heading) {
  const text = readFileSync(file, "utf8");
  const at = text.indexOf(heading);
  assert.ok(at >= 0, `${heading} in ${file}`);
  const m = /```js\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(m, `a js block after ${heading} in ${file}`);
  return m[1];
}

/** Runs `source` with node in `dir` until its output has every one of `expected` (regexps). */
async function runUntil(dir, source, expected, timeout = 20000) {
  const file = path.join(dir, `example-${Date.now()}.mjs`);
  writeFileSync(file, source);
  const proc = spawn(process.execPath, [file], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout.on("data", (c) => (out += c));
  proc.stderr.on("data", (c) => (out += c));
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; the example printed:\n${out}`)), timeout);
      const check = () => {
        if (expected.every((re) => re.test(out))) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout.on("data", check);
      proc.stderr.on("data", check);
      proc.on("exit", (code) => {
        check();
        clearTimeout(timer);
        reject(new Error(`the example exited (${code}) and printed:\n${out}`));
      });
    });
  } finally {
    proc.kill("SIGKILL");
  }
  return out;
}

describe("the README examples, with the packed tarball", () => {
  let app;
  before(() => {
    // The tarball, installed by hand where npm would put it (no network here); `ws` beside it.
    app = mkdtempSync(path.join(tmpdir(), "rheo-client-readme-"));
    execFileSync("npm", ["pack", "--silent", "--pack-destination", app], { cwd: pkgDir });
    const tarball = readdirSync(app).find((f) => f.endsWith(".tgz"));
    assert.ok(tarball, "npm pack made a tarball");
    const modules = path.join(app, "node_modules");
    mkdirSync(path.join(modules, "rheo-client"), { recursive: true });
    execFileSync("tar", ["-xzf", path.join(app, tarball), "-C", path.join(modules, "rheo-client"), "--strip-components=1"]);
    symlinkSync(path.join(pkgDir, "node_modules", "ws"), path.join(modules, "ws"));
    writeFileSync(path.join(app, "package.json"), JSON.stringify({ type: "module", private: true }));
  });
  after(() => rmSync(app, { recursive: true, force: true }));

  test("the package's shortest example, against scripts/run.sh --config config/example.json", async () => {
    const server = await new Rheo({ args: ["--config", path.join(repoDir, "config/example.json")] }).start();
    try {
      const source = firstJsBlock(path.join(pkgDir, "README.md"), "## The shortest example").replaceAll(
        "http://localhost:8080",
        server.url,
      );
      const out = await runUntil(app, source, [/now: 0 notes/, /insert n1 \{\s*_id: 'n1',\s*text: 'hello'/]);
      assert.doesNotMatch(out, /Error/);
    } finally {
      await server.stop();
    }
  });

  test("the project README's example, against a fresh scripts/run.sh", async () => {
    const server = await new Rheo().start();
    try {
      const source = firstJsBlock(path.join(repoDir, "README.md"), "### Use it from JavaScript").replaceAll(
        "http://localhost:8080",
        server.url,
      );
      const out = await runUntil(app, source, [/now: 0 messages/, /event: insert hello/, /latest: \[ 'hello' \]/]);
      assert.doesNotMatch(out, /Error/);
    } finally {
      await server.stop();
    }
  });
});
