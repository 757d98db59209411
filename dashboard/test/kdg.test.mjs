// The Kinesis Data Generator page: a shipped template sent to a stream at a rate, the live count
// moving until the count is reached; an unbounded job stopped from the page; a template that does
// not parse shows its error next to its line, and sending waits until it is fixed.
// Writes ../artifacts/kdg.png. Needs KDG_STREAM (a topic the test owns) and KDG_RECORDS: run it
// through tests/api/test_kdg_browser.py, which then checks the records in Kafka and in the table.
import assert from "node:assert/strict";
import { test } from "node:test";
import { enterKey, gateway, inBrowser, screenshot } from "./browser.mjs";

const stream = process.env.KDG_STREAM;
const records = Number(process.env.KDG_RECORDS || 60);
const BAD_TEMPLATE = '{\n  "device_id": "{{device.id}}",\n  "temperature": {{random.nmber(70)}},\n  "event_time": "{{date.now}}"\n}';

const sent = (page) => page.$eval("#kdg-sent", (e) => Number(e.dataset.value || 0));
const state = (page) => page.textContent("#kdg-state");

test("the KDG page sends a template to a stream", {
  timeout: 240_000, skip: !stream && "needs KDG_STREAM: run tests/api/test_kdg_browser.py",
}, () => inBrowser(async (page) => {
  await page.goto(`${gateway}/dashboard/kdg.html`);
  await enterKey(page);
  await page.waitForSelector(`#kdg-stream option[value="${stream}"]`, { state: "attached" });
  await page.selectOption("#kdg-shipped", "iot_4");
  await page.selectOption("#kdg-stream", stream);
  await page.fill("#kdg-rate", "20");
  await page.fill("#kdg-count", String(records));
  await page.waitForFunction(() => /^✓ JSON template/.test(document.querySelector("#kdg-check").textContent));
  assert.match(await page.textContent("#kdg-check"), /device_id, event_time, owner, ip, temperature/);
  const samples = (await page.textContent("#kdg-samples")).split("\n").map((line) => JSON.parse(line));
  assert.equal(samples.length, 3);
  assert.ok(samples.every((s) => s.device_id.startsWith("sensor-")));

  // a bounded job: the count moves while it runs, then stops at `records`
  await page.click("#kdg-start");
  const seen = new Set();
  const deadline = Date.now() + 120_000;
  while ((await state(page)) !== "finished") {
    assert.ok(Date.now() < deadline, `the job did not finish: ${await state(page)}, ${await sent(page)} sent`);
    seen.add(await sent(page));
    await page.waitForTimeout(200);
  }
  assert.equal(await sent(page), records);
  assert.equal(await page.textContent("#kdg-errors"), "0");
  assert.ok([...seen].some((n) => n > 0 && n < records), `no live count between 0 and ${records}: ${[...seen]}`);
  assert.equal(await page.textContent("#kdg-job-stream"), stream);

  // an unbounded job, stopped from the page
  await page.fill("#kdg-count", "");
  await page.click("#kdg-start");
  await page.waitForFunction(() => Number(document.querySelector("#kdg-sent").dataset.value) >= 5
    && document.querySelector("#kdg-state").textContent === "running");
  assert.ok(Number(await page.textContent("#kdg-rate-now")) > 0);
  await page.click("#kdg-stop");
  await page.waitForFunction(() => document.querySelector("#kdg-state").textContent === "stopped");
  assert.ok(await page.isEnabled("#kdg-start"));

  // a template that does not parse: the error next to its line, no sending
  await page.fill("#kdg-template", BAD_TEMPLATE);
  await page.waitForSelector("#kdg-line-error:not([hidden])");
  const error = page.locator("#kdg-line-error");
  assert.equal(await error.getAttribute("data-line"), "3");
  assert.match(await error.textContent(), /line 3, column 18: unknown placeholder \{\{random\.nmber\}\}/);
  assert.deepEqual(await page.$$eval("#kdg-gutter li.bad", (lis) => lis.map((li) => li.textContent)), ["3"]);
  const [errorBox, lineBox] = [await error.boundingBox(), await page.locator("#kdg-gutter li:nth-child(3)").boundingBox()];
  assert.ok(Math.abs(errorBox.y - lineBox.y) < lineBox.height / 2, `error at y=${errorBox.y}, line 3 at y=${lineBox.y}`);
  assert.ok(errorBox.x > lineBox.x + lineBox.width, "the error is beside the line");
  assert.ok(await page.isDisabled("#kdg-start"));
  await screenshot(page, "kdg");

  // fixed: the error goes away and the template can be sent again
  await page.fill("#kdg-template", BAD_TEMPLATE.replace("nmber", "number"));
  await page.waitForSelector("#kdg-line-error", { state: "hidden" });
  await page.waitForFunction(() => !document.querySelector("#kdg-start").disabled);
  assert.deepEqual(await page.$$eval("#kdg-gutter li.bad", (lis) => lis.length), 0);
}));
