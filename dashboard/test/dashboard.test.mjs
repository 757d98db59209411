// The dashboard in headless Chromium through the gateway: the reports load or say clearly that
// their table does not exist yet, the SQL box shows rows and Trino's error with its position,
// nothing on the page breaks the Content-Security-Policy. Writes ../artifacts/dashboard.png.
import assert from "node:assert/strict";
import { test } from "node:test";
import { enterKey, gateway, inBrowser, screenshot } from "./browser.mjs";

test("dashboard through the gateway", { timeout: 120_000 }, () => inBrowser(async (page) => {
  await page.goto(`${gateway}/`);  // redirected to /dashboard/
  assert.match(page.url(), /\/dashboard\/$/);
  await page.waitForSelector(".panel[data-state]");  // the page's script is running
  await enterKey(page);
  assert.deepEqual(await page.$$eval("nav a", (as) => as.map((a) => a.textContent)), ["Reports", "Data generator", "Console"]);

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

  await screenshot(page, "dashboard");
}));
