// phalanx dashboard: polls the JSON API and renders with textContent only
// (names, messages and hosts come from the target and from scripts: never HTML).
"use strict";

const POLL_MS = 2000;
const HISTORY = 150;
const history = { rps: [], fps: [], users: [], p50: [], p95: [], p99: [] };
let sortKey = "name";
let sortAscending = true;
let lastRows = [];

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  row.appendChild(td);
}

function fillTable(id, rows, columns) {
  const body = document.querySelector(`#${id} tbody`);
  if (!body) return;
  body.replaceChildren();
  for (const item of rows) {
    const tr = document.createElement("tr");
    for (const column of columns) cell(tr, column(item));
    body.appendChild(tr);
  }
}

function pct(entry, key) {
  const value = entry.current_percentiles_ms ? entry.current_percentiles_ms[key] : undefined;
  return value === undefined ? 0 : value;
}

function statsRows(entries) {
  return entries.map((e) => ({
    method: e.method, name: e.name, requests: e.requests, failures: e.failures,
    current_rps: e.current_rps, p50: e.percentiles_ms["50"], p95: e.percentiles_ms["95"],
    p99: e.percentiles_ms["99"], max_ms: e.max_ms,
  }));
}

function renderStats() {
  const rows = [...lastRows].sort((a, b) => {
    const x = a[sortKey];
    const y = b[sortKey];
    const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
    return sortAscending ? order : -order;
  });
  fillTable("stats", rows, [
    (r) => r.method, (r) => r.name, (r) => r.requests, (r) => r.failures,
    (r) => r.current_rps, (r) => r.p50, (r) => r.p95, (r) => r.p99, (r) => r.max_ms,
  ]);
}

function push(series, value) {
  series.push(value);
  if (series.length > HISTORY) series.shift();
}

function drawChart(id, seriesList) {
  const svg = document.getElementById(id);
  if (!svg) return;
  svg.replaceChildren();
  const max = Math.max(1, ...seriesList.flatMap((s) => s.values));
  seriesList.forEach((series, index) => {
    if (series.values.length < 2) return;
    const points = series.values.map((v, i) => {
      const x = (i / (HISTORY - 1)) * 600;
      const y = 115 - (v / max) * 110;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("class", `series series-${index}`);
    svg.appendChild(line);
  });
  const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
  label.setAttribute("x", "4");
  label.setAttribute("y", "12");
  label.setAttribute("class", "axis");
  label.textContent = `max ${max.toFixed(1)}`;
  svg.appendChild(label);
}

async function getJson(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) {
    window.location.assign("/login");
    return null;
  }
  if (!response.ok) return null;
  return response.json();
}

async function poll() {
  const status = await getJson("/api/v1/status");
  if (status) {
    document.getElementById("state").textContent = status.state;
    const warnings = [];
    if (status.spawn_paused) warnings.push(`spawning paused: the ${status.spawn_paused} limit is reached`);
    if (status.cpu_percent > 90) warnings.push(`load generator CPU at ${status.cpu_percent.toFixed(0)}%: figures may be skewed`);
    for (const w of status.workers) {
      if (w.cpu_warning) warnings.push(`worker ${w.name} above 90% CPU: its figures may be skewed`);
    }
    const box = document.getElementById("warnings");
    if (box) {
      box.textContent = warnings.join(" · ");
      box.hidden = warnings.length === 0;
    }
    const active = ["spawning", "running", "stopping"].includes(status.state);
    const startSection = document.getElementById("start-section");
    const runSection = document.getElementById("run-section");
    if (startSection) startSection.hidden = active || !status.can_start;
    if (runSection) runSection.hidden = !active;
    document.getElementById("users").textContent = `${status.users} / ${status.target_users}`;
    document.getElementById("elapsed").textContent = `${status.elapsed_s.toFixed(0)} s`;
    push(history.users, status.users);
    fillTable("workers", status.workers, [
      (w) => w.name, (w) => w.fingerprint, (w) => w.state, (w) => w.users, (w) => w.cpu_percent,
    ]);
  }
  const stats = await getJson("/api/v1/stats");
  if (stats) {
    const total = stats.total;
    document.getElementById("rps").textContent = total.current_rps.toFixed(1);
    document.getElementById("fps").textContent = total.current_failures_per_s.toFixed(2);
    document.getElementById("pcts").textContent =
      `${pct(total, "50")} / ${pct(total, "95")} / ${pct(total, "99")}`;
    push(history.rps, total.current_rps);
    push(history.fps, total.current_failures_per_s);
    push(history.p50, pct(total, "50"));
    push(history.p95, pct(total, "95"));
    push(history.p99, pct(total, "99"));
    lastRows = statsRows(stats.entries);
    renderStats();
    fillTable("errors", stats.errors, [
      (e) => e.method, (e) => e.name, (e) => e.kind, (e) => e.message, (e) => e.count,
    ]);
  }
  drawChart("chart-rps", [{ values: history.rps }, { values: history.fps }]);
  drawChart("chart-users", [{ values: history.users }]);
  drawChart("chart-latency", [{ values: history.p50 }, { values: history.p95 }, { values: history.p99 }]);
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  const message = document.getElementById("control-message");
  if (message) message.textContent = response.ok ? "done" : (data.error || `error ${response.status}`);
}

function setUpControls() {
  const form = document.getElementById("change-form");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const users = Number(document.getElementById("change-users").value);
      const rateText = document.getElementById("change-rate").value;
      const body = { users };
      if (rateText !== "") body.spawn_rate = Number(rateText);
      post("/api/v1/run/change", body);
    });
  }
  const start = document.getElementById("start-form");
  if (start) {
    start.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = {
        users: Number(document.getElementById("start-users").value),
        spawn_rate: Number(document.getElementById("start-rate").value),
      };
      const host = document.getElementById("start-host").value.trim();
      if (host !== "") body.host = host;
      const time = document.getElementById("start-time").value;
      if (time !== "") body.run_time = Number(time);
      post("/api/v1/run/start", body);
    });
  }
  const reset = document.getElementById("reset-button");
  if (reset) reset.addEventListener("click", () => post("/api/v1/run/reset", {}));
  const stop = document.getElementById("stop-button");
  if (stop) stop.addEventListener("click", () => post("/api/v1/run/stop", {}));
  const logout = document.getElementById("logout-form");
  if (logout) {
    logout.addEventListener("submit", async (event) => {
      event.preventDefault();
      await fetch("/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken() } });
      window.location.assign("/login");
    });
  }
  for (const th of document.querySelectorAll("#stats th[data-key]")) {
    th.addEventListener("click", () => {
      const key = th.getAttribute("data-key");
      sortAscending = key === sortKey ? !sortAscending : true;
      sortKey = key;
      renderStats();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpControls();
  poll();
  window.setInterval(poll, POLL_MS);
});
