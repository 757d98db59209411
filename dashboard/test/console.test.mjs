// The lake console in the browser, on state tests/api/test_console_browser.py made: every service
// up; a folder of the versioned raw bucket with its objects, versions and a deleted key; a topic's
// messages and last minute; a table's columns and partitions; a workflow run and its states.
// Writes ../artifacts/console.png. Needs CONSOLE_PREFIX, CONSOLE_TOPIC, CONSOLE_TABLE, CONSOLE_RUN.
import assert from "node:assert/strict";
import { test } from "node:test";
import { enterKey, gateway, inBrowser, screenshot } from "./browser.mjs";

const { CONSOLE_PREFIX: prefix, CONSOLE_TOPIC: topic, CONSOLE_TABLE: table, CONSOLE_RUN: run } = process.env;
const SERVICES = ["s3", "kafka", "postgres", "metastore", "trino", "connect", "nginx", "api"];

const cells = (page, row) => page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));

test("the console shows the lake's state", {
  timeout: 180_000, skip: !(prefix && topic && table && run) && "needs CONSOLE_*: run tests/api/test_console_browser.py",
}, () => inBrowser(async (page) => {
  await page.goto(`${gateway}/dashboard/console.html`);
  await enterKey(page);
  for (const panel of ["services", "streams", "buckets", "tables", "runs"]) {
    await page.waitForSelector(`#${panel}[data-state="ok"]`, { timeout: 60_000 });
  }

  // services
  const services = await page.$$eval("#services tbody tr", (trs) => trs.map((tr) => [tr.dataset.name, tr.children[2].textContent]));
  assert.deepEqual(services.map(([name]) => name).sort(), [...SERVICES].sort());
  assert.ok(services.every(([, status]) => status === "up"), JSON.stringify(services));

  // streams: one message ten minutes old, 30 in the last minute, over two partitions
  const [name, partitions, messages, written, lastMinute] = await cells(page, `#streams tr[data-topic="${topic}"]`);
  assert.deepEqual([name, partitions, messages, written, lastMinute], [topic, "2", "31", "31", "30"]);
  await page.click(`#streams tr[data-topic="${topic}"]`);
  await page.waitForSelector("#streams .detail tr[data-partition='1']");
  assert.deepEqual(await cells(page, "#streams .detail tr[data-partition='0']"), ["0", "0", "16", "15"]);

  // buckets: into the test's folder of the versioned raw bucket
  await page.click('#buckets tr[data-bucket="raw"]');
  for (const folder of prefix.split("/").filter(Boolean).map((_, i, parts) => `${parts.slice(0, i + 1).join("/")}/`)) {
    await page.click(`#buckets .browser tr[data-prefix="${folder}"]`);
  }
  const folderRow = `#buckets .browser tr[data-prefix="${prefix}a/"]`;
  await page.waitForSelector(folderRow);
  assert.deepEqual(await cells(page, folderRow), ["a/", "2", "5 B", "3", ""]);
  const deleted = `#buckets .browser tr[data-key="${prefix}b.csv"]`;
  assert.equal(await page.getAttribute(deleted, "data-deleted"), "true");
  assert.deepEqual((await cells(page, deleted)).slice(0, 4), ["b.csv (deleted)", "", "", "2"]);
  await page.click(folderRow);
  await page.waitForSelector(`#buckets .browser tr[data-key="${prefix}a/x.csv"]`);
  assert.deepEqual((await cells(page, `#buckets .browser tr[data-key="${prefix}a/x.csv"]`)).slice(0, 4), ["x.csv", "", "2 B", "2"]);
  assert.deepEqual((await cells(page, `#buckets .browser tr[data-key="${prefix}a/y.csv"]`)).slice(0, 4), ["y.csv", "", "3 B", "1"]);
  assert.deepEqual(await page.$$eval("#buckets .crumbs button", (bs) => bs.map((b) => b.textContent)),
    ["raw", ...prefix.split("/").filter(Boolean).map((p) => `${p}/`), "a/"]);

  // tables: columns, partitions and rows of the test's table
  await page.click(`#tables tr[data-table="${table}"]`);
  await page.waitForSelector("#tables .detail tr[data-column]");
  assert.deepEqual(await page.$$eval("#tables .detail tr[data-column]", (trs) => trs.map((tr) =>
    [...tr.children].map((td) => td.textContent))), [["id", "integer", ""], ["total_sales", "decimal(10,2)", ""],
    ["location", "varchar(6)", "yes"]]);
  assert.deepEqual(await page.$$eval("#tables .detail .partitions li", (lis) => lis.map((li) => li.textContent)),
    ["location=london", "location=paris", "location=warsaw"]);
  assert.match(await page.textContent("#tables .detail p"), /PARQUET · s3a:\/\/warehouse\/.* · 25 rows/);

  // workflow runs: the run and the states it went through
  assert.deepEqual((await cells(page, `#runs tr[data-run="${run}"]`)).slice(2, 4), ["SUCCEEDED", "Done"]);
  await page.click(`#runs tr[data-run="${run}"]`);
  await page.waitForSelector("#runs .detail tr[data-state='Done']");
  assert.deepEqual([...new Set(await page.$$eval("#runs .detail tr[data-state]", (trs) =>
    trs.map((tr) => tr.dataset.state).filter(Boolean)))], ["Check", "Done"]);
  await screenshot(page, "console");
}));
