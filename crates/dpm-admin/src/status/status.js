// dpm's status page: reads the admin API every 2 seconds and redraws its tables.
"use strict";

const REFRESH_MS = 2000;

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fill(id, rows, columns, emptyText) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(emptyText, "empty");
    td.colSpan = columns;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const cells of rows) {
    const tr = document.createElement("tr");
    tr.append(...cells);
    body.append(tr);
  }
}

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

const ms = (v) => (v === null || v === undefined ? null : Number(v).toFixed(2));

async function refresh() {
  try {
    const [servers, services, sessions, digests] = await Promise.all([
      get("/v1/servers"), get("/v1/services"), get("/v1/sessions"),
      get("/v1/digests?order=time&limit=10"),
    ]);
    fill("servers", servers.servers.map((s) => [
      cell(s.name), cell(s.address), cell(s.role), cell(s.state, s.state),
      cell(s.admin_state, s.admin_state === "active" ? "" : s.admin_state),
      cell(s.lag, "num"), cell(s.sessions, "num"), cell(s.routed_statements, "num"),
      cell(s.last_error),
    ]), 9, "no servers");
    fill("services", services.services.map((s) => [
      cell(s.name), cell(s.router),
      cell((s.servers || []).map((x) => x.name).join(", ")),
      cell((s.filters || []).map((f) => (typeof f === "string" ? f : f.name)).join(", ")),
      cell(s.sessions, "num"), cell(s.total_sessions, "num"), cell(s.refused_sessions, "num"),
    ]), 7, "no services");
    document.getElementById("session-count").textContent = "(" + sessions.sessions.length + ")";
    fill("sessions", sessions.sessions.map((s) => [
      cell(s.id, "num"), cell(s.worker, "num"), cell(s.client), cell(s.user), cell(s.service),
      cell((s.servers || []).join(", ")), cell(s.state),
      cell(s.running_ms === null ? null : s.running_ms + " ms", "num"), cell(s.statement, "sql"),
    ]), 9, "no sessions");
    document.getElementById("digests-off").hidden = digests.enabled;
    fill("digests", digests.digests.map((d) => [
      cell(d.digest, "sql"), cell(d.user), cell(d.service), cell(d.count, "num"),
      cell(d.errors, "num"), cell(ms(d.total_ms), "num"), cell(ms(d.p50_ms), "num"),
      cell(ms(d.p95_ms), "num"), cell(ms(d.p99_ms), "num"), cell(ms(d.max_ms), "num"),
    ]), 10, "no statements yet");
    document.getElementById("updated").textContent =
      "updated " + new Date().toLocaleTimeString() + " · refreshes every " + REFRESH_MS / 1000 + " s";
  } catch (e) {
    document.getElementById("updated").textContent = "cannot reach dpm: " + e.message;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
