// The dashboard in headless Chromium (Debian's, driven by playwright-core), through the gateway:
// the reports load or say clearly that their table does not exist yet, the SQL box shows rows and
// Trino's error with its position, nothing on the page breaks the Content-Security-Policy.
// Writes a screenshot to ../artifacts/dashboard.png.
//   LAKELAB_GATEWAY_URL (default http://127.0.0.1:8088), LAKELAB_API_KEYS (first key; default dev-key-change-me)
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const gateway = process.env.LAKELAB_GATEWAY_URL || "http://127.0.0.1:8088";
const key = (process.env.LAKELAB_API_KEYS || "dev-key-change-me").split(",")[0].trim();
const artifacts = join(here, "..", "..", "artifacts");

test("dashboard through the gateway", { timeout: 120_000 }, async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
    const problems = [];
    page.on("console", (m) => { if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) problems.push(m.text()); });
    page.on("pageerror", (e) => problems.push(String(e)));

    await page.goto(`${gateway}/`);  // redirected to /dashboard/
    assert.match(page.url(), /\/dashboard\/$/);
    await page.waitForSelector(".panel[data-state]");  // the page's script is running
    await page.fill("#api-key", key);
    await page.click("#key-form button");

    // every panel settles: a chart, or a clear "no data yet" / failure message
    await page.waitForFunction(() => [...document.querySelectorAll(".panel")].every((p) => p.dataset.state !== "loading"),
      null, { timeout: 60_000 });
    const panels = await page.$$eval(".panel", (ps) => ps.map((p) => ({
      id: p.id, state: p.dataset.state, text: p.querySelector(".state").textContent })));
    assert.equal(panels.length, 4);
    for (const p of panels) {
      assert.ok(["ok", "missing"].includes(p.state), `${p.id}: ${p.state} ${p.text}`);
      if (p.state === "missing") assert.match(p.text, /No data yet|empty/);
    }
    const health = await page.textContent("#health");
    assert.match(health, /trino up/);

    // the SQL box: rows in a table, then Trino's error with its position
    await page.fill("#sql-text", "SELECT x, x * x AS square FROM UNNEST(sequence(1, 150)) AS t(x) ORDER BY x");
    await page.click("#sql-form button");
    await page.waitForSelector("#sql-results tbody tr");
    assert.equal(await page.$$eval("#sql-results tbody tr", (rows) => rows.length), 100);
    await page.click("#sql-more");
    await page.waitForFunction(() => document.querySelectorAll("#sql-results tbody tr").length === 150);
    assert.deepEqual(await page.$$eval("#sql-results th", (ths) => ths.map((th) => th.firstChild.textContent)), ["x", "square"]);

    await page.fill("#sql-text", "DROP TABLE hive.default.anything");
    await page.click("#sql-form button");
    await page.waitForSelector("#sql-error:not([hidden])");
    assert.match(await page.textContent("#sql-error"), /^DROP TABLE: .*read-only/);

    await page.fill("#sql-text", "SELECT 1 FROM\n  hive.default.no_such_table_for_the_dashboard");
    await page.click("#sql-form button");
    await page.waitForFunction(() => /TABLE_NOT_FOUND/.test(document.querySelector("#sql-error").textContent));
    assert.match(await page.textContent("#sql-error"), /line 2, column 3/);

    await page.fill("#sql-text", "SELECT location, count(*) AS n FROM (VALUES 'london', 'paris', 'paris') AS t(location) GROUP BY 1 ORDER BY 1");
    await page.click("#sql-form button");
    await page.waitForFunction(() => document.querySelectorAll("#sql-results tbody tr").length === 2);

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });
    assert.deepEqual(problems, [], `console errors: ${problems.join(" | ")}`);
  } finally {
    await browser.close();
  }
});
