// memorch ui: list, search, deleted memories, history (word diff) and graph, over /api (see _ui_api.py).
// Times, ids and the word diff are in parts.js (loaded first); forgetting for good (Forget,
// Forget all…) is in forget.js.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { user: null, view: "list", summary: null };
const VIEW_NAMES = ["list", "search", "deleted", "history", "graph"];
// A response for a user that is no longer selected: dropped (its rows must not reappear).
class Stale extends Error {}

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
  box.replaceChildren(...[
    el("span", { class: "code" }, body.error_code || "ERROR"), " ", body.message || "",
    body.suggestion ? el("div", { class: "suggestion" }, "Suggestion: ", body.suggestion) : null,
  ].filter((part) => part !== null)); // replaceChildren writes a null as the text "null"
  box.hidden = false;
}

// A short line above the views (what just happened), with an optional button (e.g. Restore).
function showNotice(text, button) {
  const box = $("#notice");
  if (!text) { box.hidden = true; box.replaceChildren(); return; }
  box.replaceChildren(...[el("span", {}, text), button].filter(Boolean));
  box.hidden = false;
}

// What the page says when the server does not answer (stopped, or the network is down).
const NO_ANSWER = { error_code: "NO_ANSWER", message: "memorch ui did not answer: it may have stopped.",
  suggestion: "start it again (memorch ui) and reload this page; nothing was changed by this click." };

async function api(path, options) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...options });
  } catch (_) { // a network error: fetch rejects without a response
    showError(NO_ANSWER);
    throw Object.assign(new Error(NO_ANSWER.message), { body: NO_ANSWER });
  }
  let body;
  try { body = await response.json(); } catch (_) { body = { error_code: "HTTP_" + response.status, message: response.statusText }; }
  if (!response.ok) { showError(body); throw Object.assign(new Error(body.message), { body }); }
  showError(null);
  return body;
}

// GET for the selected user; throws Stale when the user changed while it was on its way.
async function userApi(path, params) {
  const user = state.user;
  const search = new URLSearchParams({ user_id: user || "" });
  for (const [key, value] of Object.entries(params || {})) if (value !== "" && value !== null) search.set(key, value);
  const body = await api(path + "?" + search.toString());
  if (user !== state.user) throw new Stale();
  return body;
}

const post = (path, body) => api(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
});

// --- memory tables with edit / delete / history --------------------------------------------------
function explainText(explain) {
  if (!explain) return "";
  return Object.entries(explain)
    .map(([name, s]) => name + " " + Object.entries(s).map(([k, v]) => k + "=" + (typeof v === "number" ? +v.toFixed(3) : v)).join(" "))
    .join("; ");
}

// A table whose cells carry their column's name (data-label: the narrow layout shows it).
function table(cls, labels, rows) {
  const head = el("tr", {}, labels.map((label) => el("th", {}, label)));
  for (const row of rows)
    [...row.children].forEach((cell, i) => { if (labels[i]) cell.setAttribute("data-label", labels[i]); });
  return el("table", { class: cls }, el("thead", {}, head), el("tbody", {}, rows));
}

// "created": the list's order (newest first); an edit's time is in the memory's History.
const memoryLabels = (withScore) => [...(withScore ? ["score"] : []), "memory", "metadata", "created", "id", ""];

function memoryTable(items, withScore, refresh, empty) {
  if (!items.length) return el("p", { class: "empty" }, empty || "no memories for " + state.user);
  return table("memories", memoryLabels(withScore), items.map((item) => memoryRow(item, withScore, refresh)));
}

function memoryRow(item, withScore, refresh) {
  const text = el("td", { class: "text" }, item.memory, expiryLabel(item.expires_at), scopeLabel(item),
    withScore && item.explain ? el("div", { class: "explain" }, explainText(item.explain)) : null);
  const meta = Object.keys(item.metadata || {}).length ? JSON.stringify(item.metadata) : "";
  return el("tr", { "data-id": item.id },
    withScore ? el("td", { class: "score" }, Number(item.score).toFixed(3)) : null,
    text,
    el("td", { class: meta ? "mono" : "mono none" }, meta),
    el("td", { class: "mono when" }, timeNode(item.created_at)),
    el("td", { class: "id" }, idNode(item.id)),
    el("td", { class: "actions" },
      el("button", { class: "edit", onclick: () => startEdit(item, text, refresh) }, "Edit"),
      el("button", { class: "delete", onclick: () => remove(item).catch(quiet) }, "Delete"),
      el("button", { class: "history", onclick: () => openHistory(item.id) }, "History"),
      forgetButton(item)));
}

// Where a memory belongs beyond its user, small, after its text: a project's layer, an agent, a
// run (they looked like the user's own: a newcomer's trial).
function scopeLabel(item) {
  const parts = [item.project ? "project " + item.project : null,
    item.agent_id ? "agent " + item.agent_id : null, item.run_id ? "run " + item.run_id : null].filter(Boolean);
  return parts.length ? el("small", { class: "scope" }, parts.join(" · ")) : null;
}

// A memory that expires says when, small, after its text (it is not returned after then).
function expiryLabel(iso) {
  return iso ? el("small", { class: "expires" }, "expires ", timeNode(iso)) : null;
}

function startEdit(item, cell, refresh) {
  const box = el("textarea", { class: "edit" });
  box.value = item.memory;
  const save = async () => {
    await api("/api/memories/" + encodeURIComponent(item.id), {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: box.value }),
    });
    await afterChange();
  };
  cell.replaceChildren(box, el("div", {},
    el("button", { class: "save", title: "Ctrl+Enter", onclick: () => save().catch(quiet) }, "Save"),
    el("button", { class: "cancel", title: "Escape", onclick: () => refresh().catch(quiet) }, "Cancel")));
  box.addEventListener("keydown", (event) => {
    if (event.key === "Escape") refresh().catch(quiet);
    else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) save().catch(quiet);
  });
  box.focus();
}

async function remove(item) {
  if (!window.confirm("Delete this memory? Its history stays, and the Deleted tab can restore it.\n\n" + item.memory)) return;
  await api("/api/memories/" + encodeURIComponent(item.id), { method: "DELETE" });
  showNotice("Deleted “" + item.memory + "”. ",
    el("button", { class: "undo", onclick: () => restoreDeleted(item.id, item.memory).catch(quiet) }, "Restore"));
  await afterChange();
}

// Restore a deleted memory: its text before its last change (the deletion) comes back.
async function restoreDeleted(id, text) {
  await post("/api/memories/" + encodeURIComponent(id) + "/restore");
  showNotice("Restored “" + text + "”.");
  await afterChange();
}

// After a change: the list, the counts and the view on show load again.
async function afterChange() {
  const work = [runList(), loadSummary()];
  if (state.view === "search" && $("#search-q").value.trim()) work.push(runSearch());
  if (state.view === "deleted") work.push(runDeleted());
  if (state.view === "history" && $("#history-id").value.trim()) work.push(runHistory());
  await Promise.all(work.map((p) => p.catch(quiet)));
}

// --- views ------------------------------------------------------------------------------------------
function quiet(error) {
  if (!(error instanceof Stale) && !error.body) console.error(error);
}

// A view's request that fails leaves no earlier answer under its error: the rows of the list
// before a bad filter, the last search's "nothing scored" read as this one's (a newcomer's trial).
async function clearedOnFailure(selector, request) {
  try {
    return await request;
  } catch (error) {
    if (!(error instanceof Stale)) $(selector).replaceChildren();
    throw error;
  }
}

async function runSearch() {
  const q = $("#search-q").value;
  const body = await clearedOnFailure("#search-results",
    userApi("/api/search", { q, threshold: $("#search-threshold").value, limit: $("#search-limit").value }));
  const parts = [memoryTable(body.results, true, runSearch, searchEmpty(body))];
  if (body.relations && body.relations.length) parts.push(el("h3", {}, "relations"), relationTable(body.relations));
  $("#search-results").replaceChildren(...parts);
}

// Why a search found nothing: matches all under the threshold, or nothing at all.
function searchEmpty(body) {
  const below = body.below_threshold;
  if (below && below.count) {
    return "no memory scored " + below.threshold + " or more (" + below.count + " below it, best " +
      Number(below.best_score).toFixed(2) + "); a threshold of 0 shows them";
  }
  return body.empty || null;
}

async function runList() {
  const body = await clearedOnFailure("#list-results",
    userApi("/api/memories", { filters: $("#list-filters").value, limit: $("#list-limit").value }));
  const parts = [memoryTable(body.results, false, runList, body.empty)];
  if (body.next_cursor) parts.push(moreButton(body.next_cursor, body.results.length));
  $("#list-results").replaceChildren(...parts);
}

// The next page of the list, added under the rows shown (the ledger pages by a cursor).
function moreButton(cursor, shown) {
  const button = el("button", { type: "button", class: "more" }, "More (" + shown + " shown)");
  button.addEventListener("click", async () => {
    const body = await userApi("/api/memories",
      { filters: $("#list-filters").value, limit: $("#list-limit").value, cursor }).catch(quiet);
    if (!body) return;
    const page = table("memories", memoryLabels(false), body.results.map((item) => memoryRow(item, false, runList)));
    $("#list-results tbody").append(...page.querySelectorAll("tbody > tr"));
    const total = shown + body.results.length;
    const done = el("p", { class: "empty" }, "all " + total + " shown");
    button.replaceWith(body.next_cursor ? moreButton(body.next_cursor, total) : done);
  });
  return button;
}

async function runDeleted() {
  const body = await userApi("/api/deleted", { limit: $("#deleted-limit").value });
  if (!body.results.length) {
    $("#deleted-results").replaceChildren(el("p", { class: "empty" }, "no deleted memories for " + state.user));
    return;
  }
  const rows = body.results.map((item) => el("tr", { "data-id": item.id, class: "deleted" },
    el("td", { class: "text" }, item.memory),
    el("td", { class: "mono when" }, timeNode(item.deleted_at)),
    el("td", { class: "id" }, idNode(item.id)),
    el("td", { class: "actions" },
      el("button", { class: "restore", title: "Bring this memory back (recorded as a RESTORE event)",
        onclick: () => restoreDeleted(item.id, item.memory).catch(quiet) }, "Restore"),
      el("button", { class: "history", onclick: () => openHistory(item.id) }, "History"),
      forgetButton(item))));
  $("#deleted-results").replaceChildren(table("memories deleted", ["memory", "deleted", "id", ""], rows));
}

function openHistory(id) {
  $("#history-id").value = id;
  showView("history");
  runHistory().catch(quiet);
}

async function runHistory() {
  const id = $("#history-id").value.trim();
  const events = await clearedOnFailure("#history-results", api("/api/memories/" + encodeURIComponent(id) + "/history"));
  const rows = events.map((e) => el("tr", { class: "event event-" + e.event.toLowerCase() },
    el("td", { class: "mono when" }, timeNode(e.updated_at || e.created_at)),
    el("td", {}, e.event),
    el("td", { class: "diff" }, wordDiff(e.old_memory, e.new_memory)),
    el("td", { class: "actions" }, e.old_memory === null ? "" :
      el("button", { class: "restore", title: "Bring back the text before this change",
        onclick: () => restoreBefore(id, e.id).catch(quiet) }, "Restore"))));
  $("#history-results").replaceChildren(el("p", {}, idNode(id)),
    table("history", ["when", "event", "change (old → new)", ""], rows));
}

async function restoreBefore(id, eventId) {
  await post("/api/memories/" + encodeURIComponent(id) + "/restore", { event_id: eventId });
  await afterChange();
}

function relationTable(relations) {
  if (!relations.length) return el("p", { class: "empty" }, "no relations");
  const rows = relations.map((r) => el("tr", { class: "relation" },
    el("td", {}, r.source), el("td", { class: "mono" }, r.relationship), el("td", {}, r.destination)));
  return table("relations", ["source", "relationship", "destination"], rows);
}

// Why the graph is empty: it is off, or nothing has relations (only LLM extraction makes them).
function graphNote() {
  const s = state.summary;
  if (!s || (s.graph && s.relations > 0)) return null;
  const llm = s.llm_model
    ? "An LLM is configured (" + s.llm_model + "): memories added with inference from now on bring their relations."
    : "No LLM is configured: set MEMORCH_LLM_MODEL (and its API key) so that new memories bring relations.";
  const why = s.graph
    ? "The graph is empty for " + s.user_id + ": its relations come only from LLM extraction when memories are added. "
    : "The graph is off (MEMORCH_GRAPH=off); turn it on with MEMORCH_GRAPH=on. Its relations come only from LLM extraction. ";
  return el("div", { class: "graph-note" }, why, llm);
}

function showGraphNote() {
  const note = graphNote();
  const results = $("#graph-results");
  if (note) results.replaceChildren(note);
  else if (results.querySelector(".graph-note")) results.replaceChildren();
}

async function runGraph() {
  let body;
  try {
    body = await userApi("/api/graph", { entity: $("#graph-entity").value, hops: $("#graph-hops").value });
  } catch (error) {
    if (error.body && error.body.error_code === "GRAPH_OFF") showGraphNote();
    throw error;
  }
  const note = body.relations.length ? null : graphNote();
  $("#graph-results").replaceChildren(el("p", {}, "around ", el("b", {}, body.entity)), note || relationTable(body.relations));
}

function showView(name) {
  if (name !== state.view) showNotice(null); // "Restored ..." was said about the view left
  state.view = name;
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === name);
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== "view-" + name;
  if (name === "deleted") runDeleted().catch(quiet);
  if (name === "graph" && !$("#graph-results").children.length) showGraphNote();
}

// The header: the selected user's counts (not the whole store's).
// A user in the picker: its memories, and its deleted ones when it has nothing else to show
// (a user whose every memory was deleted is listed for its Deleted view).
function userLabel(user, memories, deleted) {
  return user + " (" + memories + (deleted && !memories ? ", " + deleted + " deleted" : "") + ")";
}

async function loadSummary() {
  const s = await userApi("/api/summary");
  state.summary = s;
  const count = (n, one, many) => n + " " + (n === 1 ? one : many);
  const stats = $("#stats");
  stats.dataset.user = s.user_id;
  stats.dataset.memories = s.memories;
  stats.dataset.deleted = s.deleted;
  stats.dataset.changes = s.history_events;
  stats.replaceChildren(el("b", {}, s.user_id), ": ", count(s.memories, "memory", "memories"),
    " · ", s.deleted + " deleted", " · ", count(s.history_events, "change", "changes"),
    " · ", s.graph ? count(s.relations, "relation", "relations") : "graph off");
  const option = $("#user option[value=\"" + CSS.escape(s.user_id) + "\"]");
  if (option) option.textContent = userLabel(s.user_id, s.memories, s.deleted);
  if (state.view === "graph") showGraphNote();
}

// Switch user: the previous user's rows go first, then this user's list and counts load.
async function selectUser(user) {
  state.user = user;
  state.summary = null;
  for (const name of VIEW_NAMES) $("#" + name + "-results").replaceChildren();
  $("#stats").replaceChildren();
  $("#history-id").value = ""; // a memory of the previous user: its history is not shown again
  showNotice(null);
  showError(null);
  await afterChange();
}

async function loadScopes() {
  const body = await api("/api/scopes");
  const users = body.scopes.map((s) => s.user_id);
  if (!users.includes(body.default_user_id)) users.unshift(body.default_user_id);
  const counts = Object.fromEntries(body.scopes.map((s) => [s.user_id, s]));
  const label = (u, c = counts[u] || { memories: 0, deleted: 0 }) => userLabel(u, c.memories, c.deleted);
  $("#user").replaceChildren(...users.map((u) => el("option", { value: u }, label(u))));
  // The default user, unless it holds nothing, not even deleted memories to restore, and someone
  // else does (scopes come most first).
  const start = counts[body.default_user_id] || !body.scopes.length ? body.default_user_id : body.scopes[0].user_id;
  $("#user").value = start;
  await selectUser(start);
}

// Each view: its form's inputs ([id after the view's name, label or null, attributes]), its
// button, and what a submit runs. Its results go to #NAME-results.
const VIEWS = [
  { name: "list", button: "List", run: runList, inputs: [
    ["filters", null, { placeholder: 'filters as JSON, e.g. {"category": "health"}', size: 40 }],
    ["limit", "limit", { type: "number", min: 1, max: 1000, value: 100 }]] },
  { name: "search", button: "Search", run: runSearch, inputs: [
    ["q", null, { placeholder: "what do you want to find?", size: 40 }],
    ["threshold", "threshold", { type: "number", step: 0.05, min: 0, max: 1, placeholder: "default" }],
    ["limit", "limit", { type: "number", min: 1, max: 100, value: 10 }],
    ["explain", "explain scores", { type: "checkbox", title: "show each signal's rank and relevance under each hit" }]] },
  { name: "deleted", button: "Refresh", run: runDeleted, inputs: [
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
    if (attrs.type === "checkbox") return el("label", { class: "check" }, input, " " + label);
    return label ? el("label", {}, label + " ", input) : input;
  });
  const form = el("form", { id: view.name + "-form" }, inputs.flatMap((input) => [input, " "]),
    el("button", { type: "submit" }, view.button));
  form.addEventListener("submit", (event) => { event.preventDefault(); view.run().catch(quiet); });
  return el("section", { id: "view-" + view.name, class: "view", hidden: index ? "" : null },
    form, el("div", { id: view.name + "-results", class: "results" }));
}

document.addEventListener("DOMContentLoaded", () => {
  $("main").replaceChildren(...VIEWS.map(viewSection));
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
  $("#user").addEventListener("change", () => selectUser($("#user").value));
  $("#search-explain").addEventListener("change", (event) => {
    $("#search-results").classList.toggle("explaining", event.target.checked);
  });
  loadScopes().catch(quiet);
});
