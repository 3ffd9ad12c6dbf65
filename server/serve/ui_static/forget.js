// memorch ui: forgetting for good (a purge), over /api (see _ui_api.py). Unlike Delete, nothing is
// left to restore: the text and its whole history leave the store. Loaded after ui.js, whose
// helpers (el, api, post, state, showNotice, afterChange, quiet) it uses.
"use strict";

const CANNOT_UNDO = "Its text and its whole history are removed, and this cannot be undone: Restore will not bring it back.";

// The Forget button of a memory's row (a live one, or one in the Deleted view).
function forgetButton(item) {
  return el("button", { class: "forget", title: "Remove this memory and its history for good (cannot be undone)",
    onclick: () => forgetOne(item).catch(quiet) }, "Forget");
}

async function forgetOne(item) {
  if (!window.confirm("Forget this memory for good? " + CANNOT_UNDO + "\n\n" + item.memory)) return;
  await post("/api/memories/" + encodeURIComponent(item.id) + "/forget");
  showNotice("Forgot “" + item.memory + "” for good: its text and history are gone.");
  await afterChange();
}

// Every memory of the selected user, and the history of those deleted before: the user's name
// must be typed to confirm.
async function forgetUser() {
  const user = state.user;
  // The count of every layer (each project's and the global one), not only those this page lists.
  const scopes = await api("/api/scopes");
  const row = scopes.scopes.find((s) => s.user_id === user);
  const count = row ? row.memories : 0;
  const typed = window.prompt("Forget all " + count + " memories of " + user + " for good (in every project, " +
    "also those this page does not list), and the history of those deleted before? Their text is removed, " +
    "and this cannot be undone.\n\nType " + user + " to confirm.");
  if (typed === null) return;
  if (typed.trim() !== user) {
    showNotice("Nothing was forgotten: the name typed was not " + user + ".");
    return;
  }
  const body = await post("/api/forget", { user_id: user, confirm: true });
  if (user !== state.user) return; // another user was selected meanwhile: its page stays as it is
  showNotice(body.message + " (" + user + ").");
  await afterChange();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#list-form").append(" ", el("button", { type: "button", class: "forget-all",
    title: "Remove every memory of this user and their history for good (cannot be undone)",
    onclick: () => forgetUser().catch(quiet) }, "Forget all…"));
});
