// The Kinesis Data Generator page over /kdg: a template editor checked as you type (a problem is shown
// next to its line), a stream, a rate, start / stop, and the live count of the job the API runs.
import { ApiFailure, api, apiKey, count, el, errorText, keyForm, loadHealth } from "./common.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 500;
const CHECK_DELAY_MS = 300;
const DEFAULT_TEMPLATE = "iot_4";
const DEFAULT_STREAM = "iot-events";
const shipped = new Map();
let job = null;       // the job this page follows
let poller = null;
let checkTimer = null;
let checked = null;   // the text of the last template that parsed
let problem = null;   // {line, column, reason} of the last template that did not

const running = () => job !== null && job.state === "running";

function updateButtons() {
  const text = $("kdg-template").value;
  $("kdg-start").disabled = running() || checked !== text || !$("kdg-stream").value;
  $("kdg-stop").disabled = !running();
}

// --- the editor: line numbers, and the problem next to its line --------------------------------

function drawGutter() {
  const textarea = $("kdg-template");
  const gutter = $("kdg-gutter");
  const lines = textarea.value.split("\n").length;
  while (gutter.children.length < lines) gutter.append(el("li", {}, String(gutter.children.length + 1)));
  while (gutter.children.length > lines) gutter.lastChild.remove();
  gutter.scrollTop = textarea.scrollTop;
  placeProblem();
}

function placeProblem() {
  const box = $("kdg-line-error");
  const mark = $("kdg-line-mark");
  for (const li of $("kdg-gutter").children) li.classList.remove("bad");
  if (!problem) {
    box.hidden = mark.hidden = true;
    return;
  }
  const textarea = $("kdg-template");
  const style = getComputedStyle(textarea);
  const height = parseFloat(style.lineHeight);
  const top = textarea.offsetTop + parseFloat(style.paddingTop) + parseFloat(style.borderTopWidth)
    + (problem.line - 1) * height - textarea.scrollTop;
  Object.assign(mark.style, { top: `${top}px`, height: `${height}px` });
  box.style.top = `${top}px`;
  box.dataset.line = String(problem.line);
  box.textContent = `◀ line ${problem.line}, column ${problem.column}: ${problem.reason}`;
  box.hidden = mark.hidden = false;
  $("kdg-gutter").children[problem.line - 1]?.classList.add("bad");
}

function showCheck(text, bad = false) {
  const check = $("kdg-check");
  check.textContent = text;
  check.classList.toggle("bad", bad);
}

async function checkTemplate() {
  const text = $("kdg-template").value;
  checked = null;
  updateButtons();
  if (!text.trim()) {
    problem = null;
    placeProblem();
    showCheck("Write a template: the text of one record.");
    return;
  }
  try {
    const result = await api("/kdg/validate", { method: "POST", body: JSON.stringify({ template: text }) });
    if (text !== $("kdg-template").value) return;  // edited since: another check follows
    checked = text;
    problem = null;
    showCheck(result.format === "json" ? `✓ JSON template, fields: ${result.fields.join(", ")}`
      : "✓ text template: each record is sent as it renders");
    $("kdg-samples").textContent = result.samples.join("\n");
  } catch (error) {
    if (text !== $("kdg-template").value) return;
    const body = error instanceof ApiFailure ? error.body : {};
    if (body.error === "bad_template" && body.position) {
      const { line, column } = body.position;
      problem = { line, column, reason: body.message.replace(/^line \d+, column \d+: /, "") };
      showCheck(`✗ the template has a problem on line ${line}`, true);
    } else {
      problem = null;
      showCheck(`✗ ${errorText(error)}`, true);
    }
    $("kdg-samples").textContent = "";
  }
  placeProblem();
  updateButtons();
}

function templateEdited() {
  $("kdg-shipped").value = shipped.get($("kdg-shipped").value) === $("kdg-template").value ? $("kdg-shipped").value : "";
  drawGutter();
  clearTimeout(checkTimer);
  checkTimer = setTimeout(checkTemplate, CHECK_DELAY_MS);
}

// --- jobs ----------------------------------------------------------------------------------------

function showError(text) {
  $("kdg-error").textContent = text;
  $("kdg-error").hidden = !text;
}

function render() {
  const state = $("kdg-state");
  state.textContent = job.state;
  state.dataset.state = job.state;
  for (const [id, value] of [["kdg-sent", job.sent], ["kdg-errors", job.errors]]) {
    $(id).textContent = count(value);
    $(id).dataset.value = String(value);
  }
  $("kdg-rate-now").textContent = job.rate.toFixed(1);
  $("kdg-job-stream").textContent = job.stream;
  if (job.last_error) showError(`Last error: ${job.last_error}`);
  updateButtons();
}

function follow(started) {
  job = started;
  render();
  clearInterval(poller);
  poller = setInterval(async () => {
    try {
      job = await api(`/kdg/jobs/${job.id}`);
      render();
    } catch (error) {
      showError(errorText(error));
    }
    if (!running()) clearInterval(poller);
  }, POLL_MS);
}

async function startJob(event) {
  event.preventDefault();
  showError("");
  const request = { template: $("kdg-template").value, stream: $("kdg-stream").value, rate: Number($("kdg-rate").value) };
  if ($("kdg-count").value) request.count = Number($("kdg-count").value);
  try {
    follow(await api("/kdg/jobs", { method: "POST", body: JSON.stringify(request) }));
  } catch (error) {
    showError(errorText(error));
  }
}

async function stopJob() {
  try {
    job = await api(`/kdg/jobs/${job.id}/stop`, { method: "POST" });
    render();
  } catch (error) {
    showError(errorText(error));
  }
}

// --- start ---------------------------------------------------------------------------------------

async function load() {
  loadHealth();
  if (!apiKey()) return;
  showError("");
  try {
    const [templates, streams, jobs] = await Promise.all([api("/kdg/templates"), api("/kdg/streams"), api("/kdg/jobs")]);
    const picker = $("kdg-shipped");
    picker.replaceChildren(el("option", { value: "" }, "(your own)"),
      ...templates.templates.map((t) => el("option", { value: t.name }, `${t.name} (${t.format})`)));
    for (const t of templates.templates) shipped.set(t.name, t.text);
    $("kdg-placeholders").replaceChildren(...templates.placeholders.map((p) => el("li", {}, el("code", {}, `{{${p}}}`))));
    const choice = $("kdg-stream").value || DEFAULT_STREAM;
    $("kdg-stream").replaceChildren(...streams.map((s) =>
      el("option", { value: s.name }, `${s.name} (${s.partitions} partition${s.partitions === 1 ? "" : "s"})`)));
    if (streams.some((s) => s.name === choice)) $("kdg-stream").value = choice;
    $("kdg-rate").max = String(jobs.max_rate);
    $("kdg-rate").title = `at most ${jobs.max_rate} records/s; at most ${jobs.max_jobs} jobs at a time per API key`;
    if (!$("kdg-template").value) {
      picker.value = DEFAULT_TEMPLATE;
      $("kdg-template").value = shipped.get(DEFAULT_TEMPLATE) || "";
    }
    const current = jobs.jobs.find((j) => j.state === "running");
    if (current) follow(current);
  } catch (error) {
    showError(errorText(error));
  }
  drawGutter();
  checkTemplate();
}

document.addEventListener("DOMContentLoaded", () => {
  const textarea = $("kdg-template");
  textarea.addEventListener("input", templateEdited);
  textarea.addEventListener("scroll", drawGutter);
  $("kdg-shipped").addEventListener("change", () => {
    if (!$("kdg-shipped").value) return;
    textarea.value = shipped.get($("kdg-shipped").value);
    templateEdited();
  });
  $("kdg-stream").addEventListener("change", updateButtons);
  $("kdg-form").addEventListener("submit", startJob);
  $("kdg-stop").addEventListener("click", stopJob);
  keyForm(load);
});
