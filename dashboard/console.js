// The lake console: what students open the AWS console to see, read-only, over the query API's
// /console, /tables and /runs. Services and streams refresh by themselves; every panel on "Refresh".
import { api, apiKey, bytes, count, el, errorText, keyForm, loadHealth } from "./common.js";

const LIVE_REFRESH_MS = 15_000;
const $ = (id) => document.getElementById(id);
const open = { bucket: null, prefix: "", topic: null, table: null, run: null };  // what the user opened
const esc = encodeURIComponent;

const cell = (text, attrs = {}) => el("td", attrs, text === null || text === undefined ? "" : String(text));
const plus = (n, truncated) => `${count(n)}${truncated ? "+" : ""}`;
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

// Run `load` for a panel: its rows, or the reason it has none.
async function fill(id, load) {
  const section = $(id);
  const state = section.querySelector(".state");
  try {
    await load(section);
    section.dataset.state = "ok";
    state.hidden = true;
  } catch (error) {
    section.dataset.state = "failed";
    state.hidden = false;
    state.textContent = errorText(error);
    state.classList.add("error");
  }
}

function rows(section, items, selector = "table") {
  section.querySelector(`${selector} tbody`).replaceChildren(...items);
}

function pick(row, selected, onPick) {
  row.classList.add("pick");
  row.classList.toggle("selected", selected);
  row.addEventListener("click", onPick);
  return row;
}

function detail(section, ...children) {
  section.querySelector(".detail").replaceChildren(...children);
}

// --- services and streams ---------------------------------------------------------------------

const services = () => fill("services", async (section) => {
  const states = await api("/console/services");
  rows(section, states.map((s) => el("tr", { "data-name": s.name }, cell(s.name), cell(s.stands_for),
    cell(s.status, { class: `status ${s.status}` }), cell(s.endpoint), cell(s.detail), cell(Math.round(s.latency_ms)))));
});

function topicDetail(section, topic) {
  detail(section, el("h3", {}, topic.name), el("table", {},
    el("thead", {}, el("tr", {}, ...["partition", "earliest", "latest", "last minute"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...topic.partitions.map((p) => el("tr", { "data-partition": String(p.partition) },
      cell(p.partition), cell(count(p.earliest)), cell(count(p.latest)), cell(count(p.last_minute)))))));
}

const streams = () => fill("streams", async (section) => {
  const topics = await api("/console/topics");
  rows(section, topics.map((t) => pick(el("tr", { "data-topic": t.name }, cell(t.name), cell(t.partitions.length),
    cell(count(t.messages)), cell(count(t.latest)), cell(count(t.last_minute)), cell(t.rate.toFixed(2))),
  open.topic === t.name, () => { open.topic = t.name; streams(); })));
  const chosen = topics.find((t) => t.name === open.topic);
  if (chosen) topicDetail(section, chosen); else detail(section);
});

// --- buckets ------------------------------------------------------------------------------------

async function browse(section) {
  const listing = await api(`/console/buckets/${esc(open.bucket)}/objects?prefix=${esc(open.prefix)}`);
  const browser = section.querySelector(".browser");
  const parts = open.prefix.split("/").filter(Boolean);
  const crumb = (label, prefix) => {
    const button = el("button", { type: "button", "data-prefix": prefix }, label);
    button.addEventListener("click", () => { open.prefix = prefix; buckets(); });
    return button;
  };
  browser.querySelector(".crumbs").replaceChildren(crumb(open.bucket, ""),
    ...parts.map((part, i) => crumb(`${part}/`, `${parts.slice(0, i + 1).join("/")}/`)));
  const folders = listing.folders.map((f) => pick(el("tr", { "data-prefix": f.prefix },
    cell(f.prefix.slice(open.prefix.length)), cell(plus(f.objects, listing.truncated)), cell(bytes(f.bytes)),
    cell(plus(f.versions, listing.truncated)), cell("")), false, () => { open.prefix = f.prefix; buckets(); }));
  const objects = listing.objects.map((o) => el("tr", { "data-key": o.key, "data-deleted": String(o.deleted) },
    cell(o.key.slice(open.prefix.length) + (o.deleted ? " (deleted)" : ""), o.deleted ? { class: "deleted" } : {}),
    cell(""), cell(bytes(o.size)), cell(count(o.versions)), cell(when(o.last_modified))));
  rows(section, [...folders, ...objects], ".browser table");
  browser.hidden = false;
}

const buckets = () => fill("buckets", async (section) => {
  const all = await api("/console/buckets");
  rows(section, all.map((b) => pick(el("tr", { "data-bucket": b.name }, cell(b.name), cell(b.versioning),
    cell(plus(b.objects, b.truncated)), cell(bytes(b.bytes)), cell(plus(b.versions, b.truncated))),
  open.bucket === b.name, () => { open.bucket = b.name; open.prefix = ""; buckets(); })));
  if (open.bucket) await browse(section);
});

// --- tables and runs ----------------------------------------------------------------------------

async function tableDetail(section, schema, table) {
  const t = await api(`/tables/${esc(schema)}/${esc(table)}`);
  const facts = [t.format, t.location, t.row_count === null ? null : `${count(t.row_count)} rows`].filter(Boolean);
  const partitions = (t.partitions || []).map((p) => Object.entries(p).map(([k, v]) => `${k}=${v}`).join("/"));
  detail(section, el("h3", {}, `${t.catalog}.${t.schema}.${t.table}`), el("p", { class: "muted" }, facts.join(" · ")),
    el("table", { class: "columns" },
      el("thead", {}, el("tr", {}, el("th", {}, "column"), el("th", {}, "type"), el("th", {}, "partition key"))),
      el("tbody", {}, ...t.columns.map((c) => el("tr", { "data-column": c.name },
        cell(c.name), cell(c.type), cell(c.partition_key ? "yes" : ""))))),
    el("h3", {}, `Partitions (${t.partition_count ?? 0})`),
    el("ul", { class: "partitions" }, ...partitions.map((p) => el("li", {}, p))),
    ...t.warnings.map((w) => el("p", { class: "muted" }, w)));
}

const tables = () => fill("tables", async (section) => {
  const listing = await api("/tables?catalog=hive");
  rows(section, listing.tables.map((t) => {
    const name = `${t.schema}.${t.table}`;
    return pick(el("tr", { "data-table": name }, cell(t.schema), cell(t.table), cell(t.type)), open.table === name,
      () => { open.table = name; tables(); });
  }));
  if (open.table) await tableDetail(section, ...open.table.split("."));
  else detail(section);
});

async function runDetail(section, runId) {
  const run = await api(`/runs/${esc(runId)}`);
  detail(section, el("h3", {}, `${run.run_id}: ${run.status}`),
    el("p", { class: "muted" }, [run.trigger_key, run.error, run.cause].filter(Boolean).join(" · ")),
    el("table", { class: "transitions" },
      el("thead", {}, el("tr", {}, el("th", {}, "at"), el("th", {}, "state"), el("th", {}, "event"))),
      el("tbody", {}, ...(run.events || []).map((e) => el("tr", { "data-state": e.state || "" },
        cell(new Date(e.at).toLocaleTimeString()), cell(e.state), cell(e.kind))))));
}

const runs = () => fill("runs", async (section) => {
  const list = await api("/runs?limit=20");
  rows(section, list.map((r) => pick(el("tr", { "data-run": r.run_id }, cell(r.run_id), cell(r.workflow),
    cell(r.status, { class: `status ${r.status}` }), cell(r.current_state), cell(when(r.started_at)),
    cell(r.duration_s === null ? "" : r.duration_s.toFixed(1))), open.run === r.run_id,
  () => { open.run = r.run_id; runs(); })));
  if (open.run) await runDetail(section, open.run);
  else detail(section);
});

// --- start --------------------------------------------------------------------------------------

function refresh(all = true) {
  loadHealth();
  if (!apiKey()) return;
  const loads = all ? [services(), streams(), buckets(), tables(), runs()] : [services(), streams()];
  Promise.all(loads).then(() => { $("refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`; });
}

document.addEventListener("DOMContentLoaded", () => {
  $("refresh").addEventListener("click", () => refresh());
  keyForm(() => refresh());
  setInterval(() => refresh(false), LIVE_REFRESH_MS);
});
