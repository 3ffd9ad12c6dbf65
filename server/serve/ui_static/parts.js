// memorch ui: the page's small parts, used by ui.js (loaded after this file, whose el() they call
// only when the page runs): local times with their zone, whole ids with a copy button, and the
// word-level diff of the History view.
"use strict";

// --- times: local, with the zone's name; the stored ISO time in the title -------------------------
const pad = (n) => String(n).padStart(2, "0");

let zoneFormat = null; // made once: a new Intl.DateTimeFormat per time made 1,000 rows take seconds

function zoneName(date) {
  zoneFormat = zoneFormat || new Intl.DateTimeFormat(undefined, { timeZoneName: "short" });
  const part = zoneFormat.formatToParts(date).find((p) => p.type === "timeZoneName");
  return part ? part.value : "";
}

function timeNode(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const text = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
    pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " " + zoneName(d);
  return el("time", { datetime: iso, title: iso + " (stored, UTC)" }, text);
}

// --- ids: shown whole, with a copy button -------------------------------------------------------
async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) { // no clipboard API (a page served over plain http on another host): the old way
    const area = el("textarea", { readonly: "", class: "offscreen" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

function idNode(id) {
  const button = el("button", { type: "button", class: "copy", title: "Copy the id" }, "Copy");
  button.addEventListener("click", () => copyText(id, button).catch(() => {}));
  return el("span", { class: "id-line" }, el("code", { class: "full-id" }, id), " ", button);
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
