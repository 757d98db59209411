// lakelab dashboard: report panels (panels.json) and a SQL box over the query API, same origin.
import { ApiFailure, api, apiKey, el, errorText, keyForm, loadHealth } from "./common.js";

const MISSING = new Set(["TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND", "CATALOG_NOT_FOUND", "COLUMN_NOT_FOUND"]);
const COLORS = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777"];
const charts = new Map();

const runQuery = (query, extra = {}) => api("/query", { method: "POST", body: JSON.stringify({ query, ...extra }) });
const number = (v) => (v === null || v === undefined ? null : Number(v));

// --- panels --------------------------------------------------------------------------------------

function panelShell(panel) {
  const state = el("div", { class: "state" }, "Loading…");
  const section = el("article", { class: "panel", id: `panel-${panel.id}`, "data-state": "loading" },
    el("h2", {}, panel.title), el("p", { class: "lab" }, panel.lab || ""), state,
    el("div", { class: "chart", hidden: "" }, el("canvas", { "aria-label": panel.title })),
    el("div", { class: "meta" }));
  return section;
}

function setState(section, kind, text) {
  section.classList.remove("missing", "failed");
  if (kind === "missing" || kind === "failed") section.classList.add(kind);
  section.dataset.state = kind;
  const state = section.querySelector(".state");
  state.hidden = kind === "ok";
  state.textContent = text || "";
  section.querySelector(".chart").hidden = kind !== "ok";
}

function explain(error) {
  if (error instanceof ApiFailure && error.body.trino_error && MISSING.has(error.body.trino_error)) {
    return ["missing", `No data yet: ${error.body.message.replace(/^line \d+:\d+: /, "")}.`];
  }
  return ["failed", errorText(error)];
}

function labelOf(row, label) {
  return Array.isArray(label) ? label.map((k) => row[k]).join(" · ") : String(row[label]);
}

function draw(section, panel, page) {
  const rows = page.results;
  if (!rows.length) {
    setState(section, "missing", "No data yet: the table is there but empty.");
    return;
  }
  const spec = panel.chart;
  let data;
  if (spec.type === "stacked") {
    const labels = [...new Set(rows.map((r) => r[spec.label]))];
    const series = [...new Set(rows.map((r) => r[spec.series]))];
    data = {
      labels,
      datasets: series.map((s, i) => ({
        label: `${spec.series} ${s}`,
        backgroundColor: COLORS[i % COLORS.length],
        data: labels.map((l) => number((rows.find((r) => r[spec.label] === l && r[spec.series] === s) || {})[spec.values[0]]) || 0),
      })),
    };
  } else {
    data = {
      labels: rows.map((r) => labelOf(r, spec.label)),
      datasets: spec.values.map((v, i) => ({
        label: v, backgroundColor: COLORS[i % COLORS.length], data: rows.map((r) => number(r[v])),
        yAxisID: i === 0 ? "y" : "y1",
      })),
    };
  }
  const stacked = spec.type === "stacked";
  const scales = { x: { stacked }, y: { stacked, beginAtZero: true } };
  if (!stacked && spec.values.length > 1) scales.y1 = { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } };
  setState(section, "ok");
  const canvas = section.querySelector("canvas");
  charts.get(panel.id)?.destroy();
  charts.set(panel.id, new Chart(canvas, {
    type: "bar", data,
    options: { responsive: true, maintainAspectRatio: false, animation: false, scales,
               plugins: { legend: { position: "bottom" } } },
  }));
}

async function cdcSql(panel) {
  // Only the tables that exist: a missing one would fail the whole UNION.
  const listing = await api(`/tables?catalog=${panel.catalog}&schema=${panel.schema}`);
  const present = new Set(listing.tables.map((t) => t.table));
  const tables = panel.tables.filter((t) => present.has(t));
  if (!tables.length) {
    throw new ApiFailure(400, { trino_error: "TABLE_NOT_FOUND",
      message: `none of ${panel.tables.join(", ")} exists in ${panel.catalog}.${panel.schema}` });
  }
  return tables.map((t) => `SELECT '${t}' AS table_name, "_cdc_op" AS op, count(*) AS n FROM ${panel.catalog}.${panel.schema}.${t} GROUP BY 2`)
    .join("\nUNION ALL\n") + "\nORDER BY 1, 2";
}

async function loadPanel(section, panel) {
  try {
    const sql = panel.sql || (await cdcSql(panel));
    const page = await runQuery(sql, { page_size: 200 });
    draw(section, panel, page);
    section.querySelector(".meta").textContent =
      `${page.row_count} rows · ${page.elapsed_ms} ms · ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    const [kind, text] = explain(error);
    setState(section, kind, text);
  }
}

// --- SQL box -----------------------------------------------------------------------------------

const sql = { token: null, columns: [] };

function renderRows(page, append) {
  const table = document.getElementById("sql-results");
  if (!append) {
    sql.columns = page.columns;
    table.replaceChildren(el("thead", {}, el("tr", {}, ...page.columns.map((c) =>
      el("th", {}, c.name, " ", el("small", {}, c.type))))), el("tbody"));
  }
  const body = table.querySelector("tbody");
  for (const row of page.results) {
    body.append(el("tr", {}, ...sql.columns.map((c) => {
      const v = row[c.name];
      return el("td", {}, v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v));
    })));
  }
  sql.token = page.next_token;
  document.getElementById("sql-more").hidden = !page.next_token;
  const shown = body.children.length;
  document.getElementById("sql-status").textContent =
    `${shown} row${shown === 1 ? "" : "s"}${page.next_token ? " (more available)" : ""} · ${page.elapsed_ms} ms` +
    (page.truncated ? " · cut at the server's row cap" : "");
}

async function runSql(event) {
  event?.preventDefault();
  const error = document.getElementById("sql-error");
  error.hidden = true;
  document.getElementById("sql-status").textContent = "Running…";
  try {
    renderRows(await runQuery(document.getElementById("sql-text").value, { page_size: 100 }), false);
  } catch (e) {
    document.getElementById("sql-results").replaceChildren();
    document.getElementById("sql-more").hidden = true;
    document.getElementById("sql-status").textContent = "";
    const body = e.body || {};
    const where = body.position ? ` (line ${body.position.line}, column ${body.position.column})` : "";
    const kind = body.statement_type ? `${body.statement_type}: ` : body.trino_error ? `${body.trino_error}: ` : "";
    error.textContent = `${kind}${e.message}${where}`;
    error.hidden = false;
  }
}

async function moreRows() {
  if (!sql.token) return;
  try { renderRows(await runQuery(undefined, { token: sql.token }), true); } catch (e) {
    const error = document.getElementById("sql-error");
    error.textContent = e.message;
    error.hidden = false;
  }
}

// --- start ---------------------------------------------------------------------------------------

async function start() {
  const config = await (await fetch("panels.json")).json();
  const container = document.getElementById("panels");
  const sections = config.panels.map((p) => [panelShell(p), p]);
  container.replaceChildren(...sections.map(([s]) => s));
  const refresh = () => {
    loadHealth();
    if (apiKey()) {
      for (const [section, panel] of sections) {
        if (section.dataset.state !== "ok") setState(section, "loading", "Loading…");
        loadPanel(section, panel);
      }
    }
    else for (const [section] of sections) setState(section, "failed", "Waiting for an API key.");
  };
  keyForm(refresh);
  document.getElementById("sql-form").addEventListener("submit", runSql);
  document.getElementById("sql-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) runSql(e);
  });
  document.getElementById("sql-more").addEventListener("click", moreRows);
  setInterval(refresh, (config.refresh_seconds || 30) * 1000);
}

document.addEventListener("DOMContentLoaded", start);
