// The try-it page: a query (a dropped image or a text), zero-shot labels from POST /classify, and the
// nearest corpus items from POST /index/search. Plain DOM, no build step; corpus text is only ever set as
// textContent. The API key, when the server needs one, is typed here and kept in this tab's sessionStorage.
"use strict";

const KEY_STORAGE = "omnisearch-embed.api-key";
const $ = (id) => document.getElementById(id);
// each panel shows only the answer to its latest request: an older one arriving late is dropped
const state = { query: null, config: null, hasIndex: false, blobs: [], latest: { labels: 0, search: 0 } };

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

async function call(path, body) {
  const headers = {};
  if (apiKey()) headers["x-api-key"] = apiKey();
  const init = { method: body === undefined ? "GET" : "POST", headers };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "network_error", `the server did not answer (${e.message})`);
  }
  if (response.ok) return response;
  let error = { code: `http_${response.status}`, message: response.statusText };
  try {
    error = (await response.json()).error || error;
  } catch (e) {
    // not JSON: keep the status line
  }
  if (response.status === 401) $("key-form").hidden = false;
  throw new ApiError(response.status, error.code, error.message);
}

function showError(element, error) {
  element.textContent = error.code ? `${error.message} (${error.code})` : String(error.message || error);
}

function setState(panel, value) {
  $(panel).dataset.state = value;
}

// -- the query --------------------------------------------------------------------------------------------
function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function useFile(file) {
  if (!file) return;
  const image = await readAsDataUrl(file);
  state.query = { image };
  $("preview").src = image;
  $("preview").hidden = false;
  $("query-status").textContent = `${file.name} (${Math.round(file.size / 1024)} KiB)`;
  run();
}

function useText(text) {
  if (!text.trim()) return;
  state.query = { text };
  $("preview").hidden = true;
  $("query-status").textContent = `text: ${text}`;
  run();
}

function run() {
  classify();
  search();
}

// -- zero-shot labels -------------------------------------------------------------------------------------
function labels() {
  return $("labels").value.split("\n").map((l) => l.trim()).filter(Boolean);
}

async function classify() {
  if (!state.query) return;
  const out = $("label-results");
  $("labels-error").textContent = "";
  setState("labels-panel", "loading");
  const body = { ...state.query, labels: labels() };
  if ($("template").value.trim()) body.template = $("template").value;
  const turn = ++state.latest.labels;
  try {
    const answer = await (await call("/classify", body)).json();
    if (turn !== state.latest.labels) return;
    out.replaceChildren(...answer.results[0].labels.map(labelRow));
    const cut = answer.truncated_labels || [];
    if (cut.length) $("labels-error").textContent = `cut at 77 tokens: ${cut.join(", ")}`;
    setState("labels-panel", "done");
  } catch (e) {
    if (turn !== state.latest.labels) return;
    out.replaceChildren();
    showError($("labels-error"), e);
    setState("labels-panel", "error");
  }
}

function labelRow(item) {
  const li = document.createElement("li");
  li.dataset.label = item.label;
  const name = document.createElement("span");
  name.className = "label";
  name.textContent = item.label;
  const bar = document.createElement("span");
  bar.className = "bar";
  bar.style.width = `${Math.max(0.5, item.probability * 100)}%`;
  const value = document.createElement("span");
  value.className = "value";
  value.textContent = `${(item.probability * 100).toFixed(1)}%`;
  value.title = `cosine similarity ${item.similarity.toFixed(3)}`;
  li.append(name, bar, value);
  return li;
}

// -- the corpus search ------------------------------------------------------------------------------------
async function loadIndex() {
  if (!state.config.index) {
    $("index-info").textContent = "No corpus: start the server with --index FILE.parquet (from scripts/embed_corpus.py).";
    return;
  }
  try {
    const info = await (await call("/index")).json();
    const kinds = Object.entries(info.kinds).map(([kind, n]) => `${n} ${kind}s`).join(", ");
    $("index-info").textContent = `${info.file}: ${kinds}, ${info.model}`;
    state.hasIndex = true;
    $("search-error").textContent = "";
  } catch (e) {
    showError($("search-error"), e);
    setState("search-panel", "error");
  }
}

async function search() {
  if (!state.query || !state.hasIndex) return;
  $("search-error").textContent = "";
  setState("search-panel", "loading");
  const turn = ++state.latest.search;
  try {
    const answer = await (await call("/index/search", { ...state.query, k: 8 })).json();
    const rows = await Promise.all(answer.results.map(hitRow));
    const blobs = rows.map((li) => li.querySelector("img")?.src).filter(Boolean);
    if (turn !== state.latest.search) {
      blobs.forEach((url) => URL.revokeObjectURL(url));
      return;
    }
    state.blobs.forEach((url) => URL.revokeObjectURL(url));
    state.blobs = blobs;
    $("hits").replaceChildren(...rows);
    setState("search-panel", "done");
  } catch (e) {
    if (turn !== state.latest.search) return;
    $("hits").replaceChildren();
    showError($("search-error"), e);
    setState("search-panel", "error");
  }
}

async function hitRow(hit) {
  const li = document.createElement("li");
  li.className = `hit ${hit.kind}`;
  li.dataset.id = hit.id;
  if (hit.thumbnail) {
    const img = document.createElement("img");
    img.alt = hit.id;
    try {
      const blob = await (await call(hit.thumbnail)).blob();  // fetched, so the key header goes along
      img.src = URL.createObjectURL(blob);
      li.append(img);
    } catch (e) {
      li.append(caption("no thumbnail", "missing"));
    }
  } else if (hit.kind === "text") {
    li.append(caption(hit.text ?? `(no text stored) ${hit.source}`, "text"));
  } else {
    li.append(caption(hit.source, "source"));  // an s3:// image: shown, not fetched
  }
  li.append(caption(`${hit.id} · ${hit.score.toFixed(3)}`, "meta"));
  li.title = hit.source;
  return li;
}

function caption(text, className) {
  const p = document.createElement("p");
  p.className = className;
  p.textContent = text;
  return p;
}

// -- wiring -----------------------------------------------------------------------------------------------
function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => useFile(e.target.files[0]));
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    useFile(e.dataTransfer.files[0]);
  });
  $("text-form").addEventListener("submit", (e) => {
    e.preventDefault();
    useText($("text").value);
  });
  $("classify").addEventListener("click", classify);
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
    $("api-key").value = "";
    $("key-form").hidden = true;  // shown again if the server refuses the key
    loadIndex().then(run);
  });
}

async function init() {
  wire();
  try {
    state.config = await (await call("/page/config")).json();
  } catch (e) {
    showError($("query-status"), e);
    return;
  }
  $("model").textContent = state.config.model;
  $("labels").value = state.config.labels.join("\n");
  $("template").value = state.config.template;
  if (state.config.key_required && !apiKey()) $("key-form").hidden = false;
  if (!state.config.key_required || apiKey()) await loadIndex();
  document.body.dataset.ready = "true";
}

init();
