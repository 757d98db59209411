// What every dashboard page shares: the API key (kept in the browser), calls to the API through the
// gateway (same origin), the header's health badges and key form, and a small DOM helper.

const KEY_STORE = "lakelab.apiKey";

export class ApiFailure extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export const apiKey = () => localStorage.getItem(KEY_STORE) || "";

export async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "X-API-Key": apiKey(), "Content-Type": "application/json", ...(options.headers || {}) },
  });
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) throw new ApiFailure(response.status, body);
  return body;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

export async function loadHealth() {
  const box = document.getElementById("health");
  try {
    const health = await (await fetch("/health")).json();
    box.replaceChildren(...Object.entries(health.services).map(([name, s]) =>
      el("span", { class: `badge ${s.status}`, title: s.detail || "" }, `${name} ${s.status}`)));
  } catch {
    box.replaceChildren(el("span", { class: "badge down" }, "API unreachable"));
  }
}

// The key form of the header: `onKey` runs now and whenever a key is entered. The notice says
// what to do while there is no key.
export function keyForm(onKey) {
  const input = document.getElementById("api-key");
  const notice = document.getElementById("notice");
  input.value = apiKey();
  const changed = () => {
    notice.hidden = Boolean(apiKey());
    notice.textContent = "Enter an API key (from LAKELAB_API_KEYS in .env) to use this page.";
    onKey();
  };
  document.getElementById("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem(KEY_STORE, input.value.trim());
    changed();
  });
  changed();
}

export function errorText(error) {
  if (error instanceof ApiFailure) {
    if (error.status === 401) return "Enter an API key above (one of LAKELAB_API_KEYS).";
    if (error.status === 503) return `Unavailable: ${error.body.service || "a service"} is down (${error.message}).`;
    return error.message;
  }
  return `Cannot reach the API: ${error.message}`;
}

export const count = (n) => Number(n).toLocaleString("en");

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}
