// The annotation page: one row at a time, judgments saved to the server at once.
// Model output is untrusted: it only ever reaches the page through textContent, never as HTML.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);

const state = {
  file: "",
  rows: [],          // summaries: {id, status, revisions, preview}
  index: 0,          // position of the row on screen
  row: null,         // the row on screen, in full (GET /api/row)
  maxBytes: 8192,
  busy: false,
};

async function api(path, body) {
  const headers = {};
  if (token) headers["X-Cutalign-Token"] = token;
  const init = { headers };
  if (body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function say(text, kind = "") {
  const message = $("message");
  message.textContent = text;
  message.className = kind;
}

// Drafts: what was typed but not saved survives a reload or a closed tab.
const draftKey = (rowId) => `cutalign:${state.file}:${rowId}`;
const annotator = () => $("annotator").value.trim();

function showProgress(progress) {
  $("progress").max = Math.max(progress.total, 1);
  $("progress").value = progress.done;
  $("progress-text").textContent =
    `${progress.done} / ${progress.total} done` + (progress.skipped ? ` · ${progress.skipped} skipped` : "");
}

function renderPrompt(prompt) {
  const box = $("prompt");
  box.replaceChildren();
  if (typeof prompt === "string") {
    box.textContent = prompt;
    return;
  }
  for (const message of prompt) {
    const line = document.createElement("div");
    line.className = "message";
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = message.role;
    const content = document.createElement("div");
    content.textContent = message.content;
    line.append(role, content);
    box.append(line);
  }
}

function renderRevisions(row) {
  const note = $("revision-note");
  note.hidden = row.revisions.length < 2;
  note.textContent = `${row.revisions.length} revisions`;
  $("revisions").hidden = row.revisions.length === 0;
  const list = $("revision-list");
  list.replaceChildren();
  for (const record of row.revisions) {
    const item = document.createElement("li");
    const when = new Date(record.time).toLocaleString();
    const judgment = record.judgment ? `: ${record.judgment}` : "";
    item.textContent = `${record.verdict} by ${record.annotator}, ${when}${judgment}`;
    list.append(item);
  }
}

function updateByteCount() {
  const bytes = new TextEncoder().encode($("judgment").value.trim()).length;
  const count = $("byte-count");
  count.textContent = `${bytes} / ${state.maxBytes} bytes`;
  count.className = bytes > state.maxBytes ? "over" : "";
}

function renderRow(row) {
  state.row = row;
  state.index = row.index;
  Object.assign(state.rows[row.index], { status: row.status, revisions: row.revisions.length });
  $("position").textContent = `${row.index + 1} of ${state.rows.length}`;
  $("row-id").textContent = row.id;
  $("status").textContent = row.status;
  $("status").className = `badge ${row.status}`;
  renderPrompt(row.prompt);
  $("completion").textContent = row.completion;
  const draft = localStorage.getItem(draftKey(row.id));
  const decided = row.status === "good" || row.status === "bad";
  $("judgment").value = draft ?? (decided ? row.judgment ?? "" : row.input_judgment ?? "");
  updateByteCount();
  renderRevisions(row);
  $("back").disabled = row.index === 0;
}

async function show(index) {
  const summary = state.rows[index];
  if (!summary) return;
  try {
    renderRow(await api(`api/row?id=${encodeURIComponent(summary.id)}`));
  } catch (error) {
    say(`Could not load row ${index + 1}: ${error.message}`, "error");
  }
}

async function record(verdict) {
  if (state.busy || !state.row) return;
  const row = state.row;
  const text = $("judgment").value.trim();
  if (verdict === "bad" && !text) {
    say("Write a judgment first, or press Good if the response needs none.", "error");
    $("judgment").focus();
    return;
  }
  if (verdict === "skip" && row.status !== "open") {
    // Skipping a row already decided or skipped just moves on: a skip never replaces a decision.
    say("");
    return next();
  }
  state.busy = true;
  try {
    const saved = await api("api/judgments", {
      row_id: row.id,
      verdict,
      judgment: verdict === "bad" ? text : null,
      annotator: annotator() || null,
      seen_revision: row.revision,
    });
    localStorage.removeItem(draftKey(row.id));
    document.activeElement.blur();  // keys act on the next row again; j goes back to the box
    showProgress(saved.progress);
    renderRow(saved.row);
    if (saved.conflict) {
      say("Someone else saved this row after you opened it: both revisions are kept, see below.", "warning");
      $("revisions").open = true;
      return;
    }
    say(`Saved row ${row.index + 1} as ${verdict}.`);
    await next();
  } catch (error) {
    say(`Not saved: ${error.message}. Your text is kept as a draft.`, "error");
  } finally {
    state.busy = false;
  }
}

async function next() {
  if (state.index + 1 < state.rows.length) return show(state.index + 1);
  say(`That was the last row. ${$("progress-text").textContent}.`);
}

async function back() {
  if (state.index > 0) await show(state.index - 1);
}

function renderList() {
  const body = $("list-body");
  body.replaceChildren();
  state.rows.forEach((summary, index) => {
    const tr = document.createElement("tr");
    tr.className = summary.status + (index === state.index ? " current" : "");
    tr.dataset.index = index;
    for (const value of [index + 1, summary.id, summary.status, summary.revisions, summary.preview]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.append(td);
    }
    if (summary.revisions > 1) tr.children[3].className = "several";
    body.append(tr);
  });
}

async function toggleList(open = $("list-view").hidden) {
  $("list-view").hidden = !open;
  $("row-view").hidden = open;
  if (!open) return;
  try {
    const data = await api("api/rows");  // fresh: others may have saved meanwhile
    state.rows = data.rows;
    showProgress(data.progress);
  } catch (error) {
    say(`Could not refresh the list: ${error.message}`, "error");
  }
  renderList();
}

function onKey(event) {
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
    event.preventDefault();
    record("bad");
    return;
  }
  const typing = ["TEXTAREA", "INPUT"].includes(document.activeElement.tagName);
  if (typing) {
    if (event.key === "Escape") document.activeElement.blur();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const onRow = !$("row-view").hidden;
  const actions = {
    g: () => onRow && record("good"),
    s: () => onRow && record("skip"),
    b: () => onRow && back(),
    j: () => onRow && $("judgment").focus(),
    l: () => toggleList(),
  };
  if (actions[event.key]) {
    event.preventDefault();
    actions[event.key]();
  }
}

async function start() {
  $("annotator").value = localStorage.getItem("cutalign:annotator") ?? "";
  $("annotator").addEventListener("input", () => localStorage.setItem("cutalign:annotator", annotator()));
  $("judgment").addEventListener("input", () => {
    if (state.row) localStorage.setItem(draftKey(state.row.id), $("judgment").value);
    updateByteCount();
  });
  $("good").addEventListener("click", () => record("good"));
  $("save").addEventListener("click", () => record("bad"));
  $("skip").addEventListener("click", () => record("skip"));
  $("back").addEventListener("click", back);
  $("toggle-list").addEventListener("click", () => toggleList());
  $("list-body").addEventListener("click", (event) => {
    const tr = event.target.closest("tr");
    if (!tr) return;
    toggleList(false);
    show(Number(tr.dataset.index));
  });
  document.addEventListener("keydown", onKey);

  try {
    const data = await api("api/rows");
    Object.assign(state, { file: data.file, rows: data.rows, maxBytes: data.max_judgment_bytes });
    $("file").textContent = data.file;
    $("annotator").placeholder = data.annotator;
    showProgress(data.progress);
    $("row-view").hidden = false;
    if (data.rows.length) await show(data.start);
  } catch (error) {
    $("progress-text").textContent = `Could not load the rows: ${error.message}`;
  }
}

start();
