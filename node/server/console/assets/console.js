// Rumor's web console: plain JavaScript, no dependencies. Data from /ui/api/ on this node.
// The Convergence view (recordWrite, onApplied, renderWrites) is in spread.js.
"use strict";
const API = "/ui/api";
const state = { csrf: null, ns: "", cursor: "", prefix: "", value: null, status: null, writes: new Map(), events: null };
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const data = await response.json();
  if (response.status === 401) showLogin();
  if (!data.success) throw new Error(data.errors.map((e) => e.message).join("; ") || response.statusText);
  return data;
}

function say(text, bad) {
  const target = $("data-message");
  target.textContent = text;
  target.className = bad ? "error" : "";
}

// ---- views --------------------------------------------------------------

const VIEWS = ["cluster", "data", "convergence", "experiments"];
function show(view) {
  if (!VIEWS.includes(view)) view = "cluster";
  $("view-login").hidden = true;
  for (const name of VIEWS) $("view-" + name).hidden = name !== view;
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (view === "experiments") loadExperiments();
  if (view === "data") loadNamespaces();
}

function showLogin() {
  for (const name of VIEWS) $("view-" + name).hidden = true;
  $("view-login").hidden = false;
}

// ---- cluster ------------------------------------------------------------

function pair(list, term, value, cls, id) {
  const item = el("div");
  item.append(el("dt", term));
  const dd = el("dd", value, cls);
  if (id) dd.id = id;
  item.append(dd);
  list.append(item);
}

function memberName(id) {
  const m = state.status ? state.status.members.find((x) => x.id === id) : null;
  return m && m.name ? m.name : id.slice(0, 6);
}

function agreementText(a) {
  if (a.agree) return `agree (${a.common})`;
  const parts = [];
  const names = a.differ.map(memberName).join(", ");
  if (a.differ.length && a.common === null) parts.push(`disagree: ${names} hold different digests`);
  else if (a.differ.length) parts.push(`disagree: ${names} ${a.differ.length === 1 ? "differs" : "differ"} from the majority's ${a.common}`);
  if (a.unknown.length) parts.push(`unknown: ${a.unknown.map(memberName).join(", ")}`);
  return parts.join("; ");
}

function renderStatus(s) {
  state.status = s;
  const node = s.node;
  $("node-name").textContent = node.name || node.id;
  const summary = $("node-summary");
  summary.replaceChildren();
  pair(summary, "Node", `${node.name || "-"} (${node.id})`);
  pair(summary, "Address", node.address);
  pair(summary, "Ready", node.ready ? "yes" : `no: ${node.not_ready}`, node.ready ? null : "state-suspect", "node-ready");
  pair(summary, "Clock fenced", node.fenced ? "yes" : "no");
  pair(summary, "Writes", node.writes_refused ? `refused: ${node.writes_refused}` : "taken", node.writes_refused ? "state-suspect" : null, "node-writes");
  pair(summary, "Audit digest", node.audit_digest);
  const agreement = node.audit_agreement;
  pair(summary, "Audit digests of alive members", agreementText(agreement), agreement.agree ? "state-alive" : "state-suspect", "audit-agreement");
  const others = s.members.filter((m) => !m.self && m.state === "alive").length;
  pair(summary, "Watch streams to other members", `${node.watching.length} of ${others}`, null, "watch-streams");
  pair(summary, "Records / tombstones", `${node.records_held} / ${node.tombstones_held}`);
  pair(summary, "Event-loop lag (now / max)", `${node.loop_lag_ms.toFixed(1)} / ${node.max_loop_lag_ms.toFixed(1)} ms`);
  pair(summary, "Watchers", `${node.watchers} of ${node.max_watchers}`);
  const r = s.rates;
  pair(summary, "Pushes sent", `${r.pushes_sent.toFixed(1)}/s`);
  pair(summary, "Records applied from peers", `${r.records_applied_remote.toFixed(1)}/s`);
  pair(summary, "Push bytes received", `${Math.round(r.push_bytes_received)} B/s`);
  pair(summary, "Exchanges", `${r.exchanges.toFixed(1)}/s`);
  const members = $("members");
  members.replaceChildren();
  for (const m of s.members) {
    const card = el("article", null, "card");
    card.setAttribute("aria-label", "Member " + (m.name || m.id));
    card.append(el("h4", (m.name || m.id) + (m.self ? " (this node)" : "")));
    const list = el("dl");
    const add = (t, v, cls) => { list.append(el("dt", t)); list.append(el("dd", v, cls)); };
    add("ID", m.id);
    add("State", m.state, "state-" + m.state);
    add("Incarnation", m.incarnation);
    add("Address", m.address);
    add("Behind (records)", m.behind);
    const lag = Object.entries(m.lag).filter(([, v]) => v > 0).map(([o, v]) => `${o.slice(0, 6)}…: ${v}`);
    add("Lag per origin", lag.length ? lag.join(", ") : "none");
    add("Watermarks agree", m.watermarks_agree ? "yes" : "no");
    add("Clock offset", `${m.clock_offset_ms.toFixed(1)} ms`);
    if (m.writes_refused) add("Writes", `refused: ${m.writes_refused}`, "state-suspect");
    add("Audit digest", m.audit_digest ?? "unknown");
    card.append(list);
    members.append(card);
  }
}

// ---- live stream ----------------------------------------------------------

function connect() {
  if (state.events) state.events.close();
  const source = new EventSource(API + "/events");
  state.events = source;
  source.addEventListener("open", () => { $("live").textContent = "live"; });
  source.addEventListener("error", () => { $("live").textContent = "reconnecting…"; });
  source.addEventListener("status", (e) => renderStatus(JSON.parse(e.data)));
  source.addEventListener("behind", (e) => { $("live").textContent = `live (missed ${JSON.parse(e.data).dropped} changes)`; });
  source.addEventListener("changes", (e) => onChanges(JSON.parse(e.data)));
  source.addEventListener("applied", (e) => onApplied(JSON.parse(e.data)));
}

let refreshTimer = null;
function onChanges(changes) {
  let namespaces = false, keys = false;
  for (const c of changes) {
    if (c.kind === "namespace") namespaces = true;
    else {
      if (c.namespace === state.ns) keys = true;
      recordWrite(c, state.status ? state.status.node.id : "");
    }
  }
  if (refreshTimer === null && (namespaces || keys)) {
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      if (namespaces) loadNamespaces();
      else loadKeys(true);
    }, 50);
  }
  renderWrites();
}

// ---- data -----------------------------------------------------------------

async function loadNamespaces() {
  try {
    const { result } = await api("GET", "/namespaces");
    const select = $("ns-select");
    const keep = state.ns;
    select.replaceChildren();
    for (const ns of result) {
      const option = el("option", ns.title);
      option.value = ns.id;
      select.append(option);
    }
    if (!result.length) select.append(el("option", "(no namespaces)"));
    state.ns = result.some((n) => n.id === keep) ? keep : (result[0] ? result[0].id : "");
    select.value = state.ns;
    await loadKeys(true);
  } catch (error) { say(error.message, true); }
}

async function loadKeys(reset) {
  const list = $("keys");
  if (!state.ns) { list.replaceChildren(); return; }
  if (reset) state.cursor = "";
  const query = new URLSearchParams({ prefix: state.prefix, limit: "50" });
  if (state.cursor) query.set("cursor", state.cursor);
  try {
    const { result, result_info } = await api("GET", `/namespaces/${state.ns}/keys?${query}`);
    if (reset) list.replaceChildren();
    for (const key of result) {
      const item = el("li");
      const button = el("button", key.name, "link");
      button.type = "button";
      button.addEventListener("click", () => openValue(key.name));
      item.append(button);
      if (key.expiration) item.append(el("span", ` expires ${new Date(key.expiration * 1000).toISOString()}`, "muted"));
      list.append(item);
    }
    state.cursor = result_info.cursor;
    $("keys-more").hidden = !state.cursor;
  } catch (error) { say(error.message, true); }
}

function hex(bytes) {
  const rows = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const chunk = [...bytes.slice(i, i + 16)];
    rows.push(i.toString(16).padStart(6, "0") + "  " + chunk.map((b) => b.toString(16).padStart(2, "0")).join(" "));
  }
  return rows.join("\n");
}

function renderValue() {
  const v = state.value;
  const body = $("value-body");
  if (!v) { body.textContent = ""; return; }
  const mode = document.querySelector('input[name="value-mode"]:checked').value;
  const bytes = Uint8Array.from(atob(v.base64), (c) => c.charCodeAt(0));
  if (mode === "hex" || v.text === null) body.textContent = hex(bytes);
  else if (mode === "json") {
    try { body.textContent = JSON.stringify(JSON.parse(v.text), null, 2); } catch { body.textContent = "(not JSON) " + v.text; }
  } else body.textContent = v.text;
}

async function openValue(key) {
  try {
    const { result } = await api("GET", `/namespaces/${state.ns}/value?key=${encodeURIComponent(key)}`);
    state.value = result;
    const view = $("value-view");
    view.replaceChildren();
    const list = el("dl");
    const add = (t, v) => { list.append(el("dt", t)); list.append(el("dd", v)); };
    add("Key", result.key);
    add("Length", `${result.length} bytes${result.truncated ? " (shown truncated)" : ""}`);
    add("Expiration", result.expiration ? new Date(result.expiration * 1000).toISOString() : "never");
    add("Metadata", result.metadata ?? "none");
    view.append(list);
    $("key-name").value = result.key;
    renderValue();
  } catch (error) { say(error.message, true); }
}

function bind() {
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => { location.hash = tab.dataset.view; });
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  for (const radio of document.querySelectorAll('input[name="value-mode"]')) radio.addEventListener("change", renderValue);
  $("ns-select").addEventListener("change", () => { state.ns = $("ns-select").value; state.value = null; renderValue(); loadKeys(true); });
  $("keys-more").addEventListener("click", () => loadKeys(false));
  $("key-search-form").addEventListener("submit", (e) => { e.preventDefault(); state.prefix = $("key-prefix").value; loadKeys(true); });
  $("ns-create-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const { result } = await api("POST", "/namespaces", { title: $("ns-title").value });
      state.ns = result.id; $("ns-title").value = "";
      say(`Created namespace ${result.title}.`);
      await loadNamespaces();
    } catch (error) { say(error.message, true); }
  });
  $("ns-rename-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!state.ns) return;
    try { await api("PUT", `/namespaces/${state.ns}`, { title: $("ns-rename").value }); say("Renamed."); await loadNamespaces(); } catch (error) { say(error.message, true); }
  });
  $("ns-delete").addEventListener("click", async () => {
    if (!state.ns || !confirm("Delete this namespace and all its keys?")) return;
    try { await api("DELETE", `/namespaces/${state.ns}`); state.ns = ""; say("Deleted the namespace."); await loadNamespaces(); } catch (error) { say(error.message, true); }
  });
  $("put-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!state.ns) { say("Create or pick a namespace first.", true); return; }
    const body = { key: $("key-name").value, value: $("key-value").value };
    if ($("key-ttl").value) body.expiration_ttl = $("key-ttl").value;
    if ($("key-metadata").value) {
      try { body.metadata = JSON.parse($("key-metadata").value); } catch { say("Metadata must be JSON.", true); return; }
    }
    try { await api("PUT", `/namespaces/${state.ns}/value`, body); say(`Saved ${body.key}.`); await loadKeys(true); } catch (error) { say(error.message, true); }
  });
  $("key-delete").addEventListener("click", async () => {
    const key = $("key-name").value;
    if (!state.ns || !key) return;
    try { await api("DELETE", `/namespaces/${state.ns}/value?key=${encodeURIComponent(key)}`); say(`Deleted ${key}.`); state.value = null; renderValue(); await loadKeys(true); } catch (error) { say(error.message, true); }
  });
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const { result } = await api("POST", "/login", { token: $("login-token").value });
      state.csrf = result.csrf; $("login-token").value = ""; $("login-error").textContent = "";
      start();
    } catch (error) { $("login-error").textContent = error.message; }
  });
}

// ---- experiments ----------------------------------------------------------

async function loadExperiments() {
  const runs = $("runs");
  try {
    const { result } = await api("GET", "/experiments");
    runs.replaceChildren();
    if (!result.configured) runs.append(el("li", "This node has no --experiments-dir."));
    else if (!result.runs.length) runs.append(el("li", "No reports yet."));
    for (const run of result.runs) {
      const item = el("li");
      const button = el("button", run.report.replace(/\/?report\.md$/, "") || "(top)", "link");
      button.type = "button";
      button.addEventListener("click", () => openReport(run));
      item.append(button);
      runs.append(item);
    }
  } catch (error) { runs.replaceChildren(el("li", error.message, "error")); }
}

async function openReport(run) {
  const report = $("report");
  report.replaceChildren(el("h3", run.report));
  try {
    // The node renders the Markdown to HTML without raw HTML, scripts or unsafe links.
    const { result } = await api("GET", `/experiments/report?path=${encodeURIComponent(run.report)}`);
    const body = el("article", null, "report");
    body.innerHTML = result.html;
    report.append(body);
    for (const plot of run.plots.filter((p) => !result.images.includes(p))) {
      const img = el("img", null, "plot");
      img.src = `${API}/experiments/file?path=${encodeURIComponent(plot)}`;
      img.alt = "Plot " + plot;
      report.append(img);
    }
  } catch (error) { report.append(el("p", error.message, "error")); }
}

// ---- start ----------------------------------------------------------------

async function start() {
  const { result } = await api("GET", "/session");
  if (!result.signed_in) { showLogin(); return; }
  state.csrf = result.csrf;
  show(location.hash.slice(1));
  connect();
  loadNamespaces();
}

bind();
start().catch((error) => { $("live").textContent = error.message; });
