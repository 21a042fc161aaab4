// Makes docs/chat.png, the README's picture of the chat: a short conversation seen by
// one of its participants, with who is online and another one typing. Usage: RHEO_BINARY=build/rheo node test/web/screenshot.mjs [out.png]
import path from "node:path";

import { Rheo, launchBrowser, repoRoot } from "./harness.mjs";

const out = path.resolve(process.argv.slice(2).find((a) => !a.startsWith("--")) ?? path.join(repoRoot, "docs", "chat.png"));
const rheo = new Rheo();
let browser;
try {
  await rheo.start();
  await rheo.ensureMessagesStream();
  const conversation = [
    ["ada", "Morning! Is the new build up on staging?"],
    ["linus", "Yes, deployed 10 minutes ago."],
    ["linus", "Change streams are live there too."],
    ["ada", "Nice. I'm opening the chat on two laptops to watch the messages arrive"],
    ["grace", "Same here, messages show up instantly in both tabs."],
  ];
  for (const [from, message] of conversation) await rheo.post({ from, message });

  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 560, height: 700 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  await page.goto(`${rheo.url}/chat/`);
  await page.waitForSelector('#status[data-state="live"]');
  await page.fill("#nick", "ada");
  await page.press("#nick", "Enter");
  await page.waitForSelector("#composer:not([hidden])");
  await page.fill("#text", "Restarting the server now, let's see if anything gets lost.");
  await page.press("#text", "Enter");
  await rheo.post({ from: "grace", message: "Back already, nothing missing on my side" });
  await page.waitForFunction(() => document.querySelectorAll("#messages li.msg").length === 7);
  // Grace is online too, and typing.
  const other = await (await browser.newContext()).newPage();
  await other.goto(`${rheo.url}/chat/`);
  await other.waitForSelector('#status[data-state="live"]');
  await other.fill("#nick", "grace");
  await other.press("#nick", "Enter");
  await page.waitForFunction(() => document.querySelectorAll("#online-list li").length === 2);
  await other.locator("#text").pressSequentially("Tagging the release");
  await page.waitForFunction(() => document.querySelector("#typing").textContent === "grace is typing...");
  await page.fill("#text", "Ship it!");
  await page.evaluate(() => document.activeElement.blur());
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  if (browser) await browser.close();
  await rheo.dispose();
}
