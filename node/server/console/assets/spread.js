// Rumor's web console: the Convergence view, a write's spread across the members.
// Loaded before console.js, whose globals (state, $, el, memberName) it uses when called.
"use strict";

// A write's spread: for each member, when it applied the write, from that member's
// Watch (this node's own watcher, the others' relayed by this node as `applied`),
// in milliseconds after the write's HLC timestamp.
const MAX_WRITES = 100;
function recordWrite(c, member) {
  const id = `${c.origin}:${c.seq}`;
  let write = state.writes.get(id);
  if (!write) {
    write = { key: c.key, namespace: c.namespace, deleted: c.deleted, origin: c.origin, seq: c.seq, written_ms: c.written_ms, known: {} };
    state.writes.set(id, write);
    while (state.writes.size > MAX_WRITES) state.writes.delete(state.writes.keys().next().value);
  }
  if (write.known[member] === undefined) write.known[member] = c.applied_ms - c.written_ms;
}

function onApplied(records) {
  for (const r of records) recordWrite(r, r.member);
  renderWrites();
}

function upMembers() {
  return state.status ? state.status.members.filter((m) => m.state === "alive" || m.state === "suspect") : [];
}

function renderWrites() {
  const list = $("writes");
  list.replaceChildren();
  for (const w of [...state.writes.values()].reverse().slice(0, 20)) {
    const item = el("li", `${w.deleted ? "delete" : "put"} ${w.key} —`);
    item.dataset.key = w.key;
    const spread = Object.entries(w.known).sort((x, y) => x[1] - y[1]);
    for (const [id, ms] of spread) {
      const span = el("span", ` ${memberName(id)} +${ms} ms`, "spread");
      span.dataset.member = id;
      item.append(span);
    }
    list.append(item);
  }
  drawCdf();
}

function cdfPoints(values, maxMs) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.map((v, i) => `${40 + (350 * Math.min(v, maxMs)) / maxMs},${180 - (160 * (i + 1)) / sorted.length}`).join(" ");
}

function drawCdf() {
  const svg = $("cdf");
  const ns = "http://www.w3.org/2000/svg";
  const title = $("cdf-title");
  svg.replaceChildren(title);
  const writes = [...state.writes.values()];
  const here = state.status ? state.status.node.id : "";
  const local = writes.map((w) => Math.max(w.known[here] ?? 0, 0));
  const up = upMembers();
  const everywhere = writes.filter((w) => up.every((m) => w.known[m.id] !== undefined)).map((w) => Math.max(...up.map((m) => w.known[m.id]), 0));
  const maxMs = Math.max(10, ...local, ...everywhere);
  const line = (x1, y1, x2, y2) => { const l = document.createElementNS(ns, "line"); l.setAttribute("x1", x1); l.setAttribute("y1", y1); l.setAttribute("x2", x2); l.setAttribute("y2", y2); l.setAttribute("stroke", "#4d5661"); svg.append(l); };
  const text = (x, y, t) => { const n = document.createElementNS(ns, "text"); n.setAttribute("x", x); n.setAttribute("y", y); n.setAttribute("font-size", "11"); n.setAttribute("fill", "#1b1f24"); n.textContent = t; svg.append(n); };
  line(40, 180, 390, 180); line(40, 20, 40, 180);
  text(4, 24, "1.0"); text(4, 184, "0"); text(40, 196, "0 ms"); text(330, 196, `${Math.round(maxMs)} ms`);
  const draw = (values, dash) => {
    if (!values.length) return;
    const p = document.createElementNS(ns, "polyline");
    p.setAttribute("points", cdfPoints(values, maxMs));
    p.setAttribute("fill", "none"); p.setAttribute("stroke", "#0b5cad"); p.setAttribute("stroke-width", "2");
    if (dash) p.setAttribute("stroke-dasharray", "5 3");
    svg.append(p);
  };
  draw(local, false); draw(everywhere, true);
  title.textContent = `t-visibility CDF of ${writes.length} recent writes; ${everywhere.length} known on every member`;
}
