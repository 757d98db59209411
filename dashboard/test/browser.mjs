// What the browser tests share: headless Chromium (Debian's, driven by playwright-core) on a page
// of the dashboard through the gateway, the API key, and the checks every page must pass.
//   LAKELAB_GATEWAY_URL (default http://127.0.0.1:8088), LAKELAB_API_KEYS (first key; default dev-key-change-me),
//   CHROMIUM (default /usr/bin/chromium). Screenshots go to ../artifacts/.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const artifacts = join(here, "..", "..", "artifacts");
export const gateway = process.env.LAKELAB_GATEWAY_URL || "http://127.0.0.1:8088";
export const key = (process.env.LAKELAB_API_KEYS || "dev-key-change-me").split(",")[0].trim();

// Runs `use(page)` on a fresh page; afterwards nothing on the page may have failed (console errors
// other than the HTTP 4xx answers a page shows on purpose, uncaught exceptions, CSP violations).
export async function inBrowser(use) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
    const problems = [];
    page.on("console", (m) => { if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) problems.push(m.text()); });
    page.on("pageerror", (e) => problems.push(String(e)));
    await use(page);
    assert.deepEqual(problems, [], `console errors: ${problems.join(" | ")}`);
  } finally {
    await browser.close();
  }
}

export async function enterKey(page) {
  await page.fill("#api-key", key);
  await page.click("#key-form button");
}

export async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}
