// memorch ui: search, list, edit, delete, history (word diff) and graph, over /api (see ui_api.py).
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { user: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue; // an absent attribute (e.g. hidden: null)
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function showError(body) {
  const box = $("#error");
  if (!body) { box.hidden = true; box.textContent = ""; return; }
  box.replaceChildren(
    el("span", { class: "code" }, body.error_code || "ERROR"), " ", body.message || "",
    body.suggestion ? el("div", { class: "suggestion" }, "Suggestion: ", body.suggestion) : null,
  );
  box.hidden = false;
}

async function api(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  let body;
  try { body = await response.json(); } catch (_) { body = { error_code: "HTTP_" + response.status, message: response.statusText }; }
  if (!response.ok) { showError(body); throw Object.assign(new Error(body.message), { body }); }
  showError(null);
  return body;
}

function query(params) {
  const search = new URLSearchParams({ user_id: state.user || "" });
  for (const [key, value] of Object.entries(params)) if (value !== "" && value !== null) search.set(key, value);
  return search.toString();
}

// --- word-level diff (LCS over words and spaces) -------------------------------------------------
function wordDiff(oldText, newText) {
  const a = (oldText || "").split(/(\s+)/).filter((w) => w !== "");
  const b = (newText || "").split(/(\s+)/).filter((w) => w !== "");
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const runs = []; // [kind, text]: consecutive words of one kind merge into one run
  const push = (kind, word) => {
    const last = runs[runs.length - 1];
    if (last && last[0] === kind) last[1] += word; else runs.push([kind, word]);
  };
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { push("same", a[i]); i++; j++; }
    else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) { push("del", a[i]); i++; }
    else { push("ins", b[j]); j++; }
  }
  return runs.map(([kind, text]) => (kind === "same" ? document.createTextNode(text) : el(kind, {}, text)));
}

// --- memory tables with edit / delete / history --------------------------------------------------
function explainText(explain) {
  if (!explain) return "";
  return Object.entries(explain)
    .map(([name, s]) => name + " " + Object.entries(s).map(([k, v]) => k + "=" + (typeof v === "number" ? +v.toFixed(3) : v)).join(" "))
    .join("; ");
}

function memoryTable(items, withScore, refresh) {
  if (!items.length) return el("p", { class: "empty" }, "no memories");
  const head = el("tr", {}, withScore ? el("th", {}, "score") : null, el("th", {}, "memory"),
    el("th", {}, "metadata"), el("th", {}, "updated"), el("th", {}, "id"), el("th", {}, ""));
  const rows = items.map((item) => memoryRow(item, withScore, refresh));
  return el("table", { class: "memories" }, el("thead", {}, head), el("tbody", {}, rows));
}

function memoryRow(item, withScore, refresh) {
  const text = el("td", { class: "text" }, item.memory,
    withScore && item.explain ? el("div", { class: "explain" }, explainText(item.explain)) : null);
  const row = el("tr", { "data-id": item.id },
    withScore ? el("td", { class: "score" }, Number(item.score).toFixed(3)) : null,
    text,
    el("td", { class: "mono" }, Object.keys(item.metadata || {}).length ? JSON.stringify(item.metadata) : ""),
    el("td", { class: "mono when" }, (item.updated_at || item.created_at || "").slice(0, 19).replace("T", " ")),
    el("td", { class: "id" }, item.id.slice(0, 8)),
    el("td", { class: "actions" },
      el("button", { class: "edit", onclick: () => startEdit(item, text, refresh) }, "Edit"),
      el("button", { class: "delete", onclick: () => remove(item, refresh).catch(() => {}) }, "Delete"),
      el("button", { class: "history", onclick: () => openHistory(item.id) }, "History")));
  return row;
}

function startEdit(item, cell, refresh) {
  const box = el("textarea", { class: "edit" });
  box.value = item.memory;
  const save = async () => {
    await api("/api/memories/" + encodeURIComponent(item.id), {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: box.value }),
    });
    refresh();
  };
  cell.replaceChildren(box, el("div", {},
    el("button", { class: "save", onclick: () => save().catch(() => {}) }, "Save"),
    el("button", { class: "cancel", onclick: refresh }, "Cancel")));
  box.focus();
}

async function remove(item, refresh) {
  if (!window.confirm("Delete this memory? Its history stays.\n\n" + item.memory)) return;
  await api("/api/memories/" + encodeURIComponent(item.id), { method: "DELETE" });
  refresh();
}

// --- views ------------------------------------------------------------------------------------------
async function runSearch() {
  const params = { q: $("#search-q").value, threshold: $("#search-threshold").value, limit: $("#search-limit").value };
  const body = await api("/api/search?" + query(params));
  const parts = [memoryTable(body.results, true, runSearch)];
  if (body.relations && body.relations.length) parts.push(el("h3", {}, "relations"), relationTable(body.relations));
  $("#search-results").replaceChildren(...parts);
}

async function runList() {
  const body = await api("/api/memories?" + query({ filters: $("#list-filters").value, limit: $("#list-limit").value }));
  $("#list-results").replaceChildren(memoryTable(body.results, false, runList));
}

function openHistory(id) {
  $("#history-id").value = id;
  showView("history");
  runHistory();
}

async function runHistory() {
  const id = $("#history-id").value.trim();
  const events = await api("/api/memories/" + encodeURIComponent(id) + "/history");
  const rows = events.map((e) => el("tr", { class: "event event-" + e.event.toLowerCase() },
    el("td", { class: "mono when" }, (e.updated_at || e.created_at || "").slice(0, 19).replace("T", " ")),
    el("td", {}, e.event),
    el("td", { class: "diff" }, wordDiff(e.old_memory, e.new_memory)),
    el("td", {}, e.old_memory === null ? "" :
      el("button", { class: "restore", title: "Bring back the text before this change",
        onclick: () => restoreBefore(id, e.id) }, "Restore"))));
  const head = el("tr", {}, el("th", {}, "when"), el("th", {}, "event"), el("th", {}, "change (old → new)"),
    el("th", {}, ""));
  $("#history-results").replaceChildren(el("p", { class: "mono" }, id),
    el("table", { class: "history" }, el("thead", {}, head), el("tbody", {}, rows)));
}

async function restoreBefore(id, eventId) {
  await api("/api/memories/" + encodeURIComponent(id) + "/restore", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ event_id: eventId }),
  });
  runHistory();
}

function relationTable(relations) {
  if (!relations.length) return el("p", { class: "empty" }, "no relations");
  const head = el("tr", {}, el("th", {}, "source"), el("th", {}, "relationship"), el("th", {}, "destination"));
  const rows = relations.map((r) => el("tr", { class: "relation" },
    el("td", {}, r.source), el("td", { class: "mono" }, r.relationship), el("td", {}, r.destination)));
  return el("table", { class: "relations" }, el("thead", {}, head), el("tbody", {}, rows));
}

async function runGraph() {
  const body = await api("/api/graph?" + query({ entity: $("#graph-entity").value, hops: $("#graph-hops").value }));
  $("#graph-results").replaceChildren(el("p", {}, "around ", el("b", {}, body.entity)), relationTable(body.relations));
}

function showView(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === name);
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== "view-" + name;
}

async function loadScopes() {
  const body = await api("/api/scopes");
  const users = body.scopes.map((s) => s.user_id);
  if (!users.includes(body.default_user_id)) users.unshift(body.default_user_id);
  const counts = Object.fromEntries(body.scopes.map((s) => [s.user_id, s.memories]));
  $("#user").replaceChildren(...users.map((u) => el("option", { value: u }, u + " (" + (counts[u] || 0) + ")")));
  state.user = body.default_user_id;
  $("#user").value = state.user;
  const stats = await api("/api/stats");
  $("#stats").textContent = stats.memories + " memories, " + stats.history_events + " history events";
}

// Each view: its form's inputs ([id after the view's name, label or null, attributes]), its
// button, and what a submit runs. Its results go to #NAME-results.
const VIEWS = [
  { name: "search", button: "Search", run: runSearch, inputs: [
    ["q", null, { placeholder: "what do you want to find?", size: 40 }],
    ["threshold", "threshold", { type: "number", step: 0.05, min: 0, max: 1, placeholder: "0.3" }],
    ["limit", "limit", { type: "number", min: 1, max: 100, value: 10 }]] },
  { name: "list", button: "List", run: runList, inputs: [
    ["filters", null, { placeholder: 'filters as JSON, e.g. {"category": "health"}', size: 40 }],
    ["limit", "limit", { type: "number", min: 1, max: 1000, value: 100 }]] },
  { name: "history", button: "Show history", run: runHistory, inputs: [
    ["id", null, { placeholder: "memory id", size: 40 }]] },
  { name: "graph", button: "Show", run: runGraph, inputs: [
    ["entity", null, { placeholder: "entity, e.g. Alice", size: 30 }],
    ["hops", "hops", { type: "number", min: 1, max: 3, value: 2 }]] },
];

function viewSection(view, index) {
  const inputs = view.inputs.map(([id, label, attrs]) => {
    const input = el("input", { id: view.name + "-" + id, ...attrs });
    return label ? el("label", {}, label + " ", input) : input;
  });
  const form = el("form", { id: view.name + "-form" }, inputs.flatMap((input) => [input, " "]),
    el("button", { type: "submit" }, view.button));
  form.addEventListener("submit", (event) => { event.preventDefault(); view.run().catch(() => {}); });
  return el("section", { id: "view-" + view.name, class: "view", hidden: index ? "" : null },
    form, el("div", { id: view.name + "-results", class: "results" }));
}

document.addEventListener("DOMContentLoaded", () => {
  $("main").replaceChildren(...VIEWS.map(viewSection));
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
  $("#user").addEventListener("change", () => { state.user = $("#user").value; });
  loadScopes().catch(() => {});
});
