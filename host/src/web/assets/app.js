// Periscope's live page: one kind's DTOs in a table, from a watch stream's snapshot and
// deltas, with the SPA's fallback to polling (spec/dtos.md 3.4). No framework, no build.
//
// The view is in the location hash, #/<cluster>/<kind>?namespace=<ns>, so any kind the
// host registers can be opened, streamed or not; the kind picker lists /api/features'
// watchStreams. Row identity is the DTO's `uid` when it has a non-empty one (events),
// else namespace and name. Columns come from the DTOs' own top-level keys.

const POLL_MS = 5000;
const ERROR_BUDGET = 4;
const FLASH_MS = 2000;
const TOKEN_KEY = "periscope.token";
// The host's default `auth.cookie`; EventSource cannot send headers, so the token
// travels in this cookie for streams.
const COOKIE = "periscope_token";

const $ = (id) => document.getElementById(id);
const ui = {
  controls: $("controls"),
  cluster: $("cluster"),
  kind: $("kind"),
  namespace: $("namespace"),
  namespaces: $("namespaces"),
  status: $("status"),
  message: $("message"),
  signin: $("signin"),
  token: $("token"),
  table: $("table"),
  caption: $("summary"),
  headRow: document.querySelector("#table thead tr"),
  body: document.querySelector("#table tbody"),
};

// === auth ===

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function setCookie(value) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  const expiry = value ? "" : "; Max-Age=0";
  document.cookie = `${COOKIE}=${value}; Path=/; SameSite=Strict${secure}${expiry}`;
}

function api(path, init = {}) {
  const headers = new Headers(init.headers || {});
  const t = token();
  if (t) headers.set("Authorization", `Bearer ${t}`);
  return fetch(path, { ...init, headers, cache: "no-store" });
}

function showSignin(why) {
  stopView();
  setBadge("signin", "sign-in required");
  showMessage(why);
  ui.signin.hidden = false;
  ui.token.focus();
}

ui.signin.addEventListener("submit", (e) => {
  e.preventDefault();
  const t = ui.token.value.trim();
  if (!t) return;
  sessionStorage.setItem(TOKEN_KEY, t);
  setCookie(t);
  ui.token.value = "";
  ui.signin.hidden = true;
  showMessage("");
  boot();
});

// === badge and messages ===

function setBadge(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text || state;
}

function showMessage(text) {
  ui.message.textContent = text;
  ui.message.hidden = !text;
}

// === the view in the hash ===

function readHash() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [cluster, kind] = (path || "").split("/").map(decodeURIComponent);
  const namespace = new URLSearchParams(query || "").get("namespace") || "";
  return { cluster: cluster || "", kind: kind || "", namespace };
}

function writeHash(view) {
  const ns = view.namespace ? `?namespace=${encodeURIComponent(view.namespace)}` : "";
  const hash = `#/${encodeURIComponent(view.cluster)}/${encodeURIComponent(view.kind)}${ns}`;
  if (location.hash !== hash) location.hash = hash;
  else startView(view);
}

function setOptions(select, values, selected) {
  select.replaceChildren(
    ...values.map((v) => {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = v;
      return o;
    }),
  );
  if (selected) select.value = selected;
}

// === rows and the table ===

function identity(item) {
  if (typeof item.uid === "string" && item.uid) return item.uid;
  return `${item.name ?? ""}|${item.namespace ?? ""}`;
}

function isScalar(v) {
  return v === null || ["string", "number", "boolean"].includes(typeof v);
}

function showable(v) {
  return isScalar(v) || (Array.isArray(v) && v.every(isScalar));
}

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

function age(ts) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function cellText(v) {
  if (v === undefined || v === null) return "";
  if (Array.isArray(v)) return v.join(", ");
  return String(v);
}

// Columns: namespace and name first, then every other top-level key that holds a
// scalar (or a list of scalars) in the sampled items, in first-seen order.
function columnsOf(items) {
  const keys = [];
  const seen = new Set();
  for (const item of items.slice(0, 50)) {
    for (const [k, v] of Object.entries(item)) {
      if (!seen.has(k) && showable(v)) {
        seen.add(k);
        keys.push(k);
      }
    }
  }
  const first = ["namespace", "name"].filter((k) => seen.has(k));
  return [...first, ...keys.filter((k) => !first.includes(k))];
}

function compareRows(a, b) {
  const ns = String(a.namespace ?? "").localeCompare(String(b.namespace ?? ""));
  return ns || String(a.name ?? "").localeCompare(String(b.name ?? ""));
}

class Table {
  constructor() {
    this.rows = new Map(); // id -> item
    this.trs = new Map(); // id -> <tr>
    this.columns = [];
  }

  clear(caption) {
    this.rows.clear();
    this.trs.clear();
    this.columns = [];
    ui.headRow.replaceChildren();
    ui.body.replaceChildren();
    ui.caption.textContent = caption;
  }

  // Replaces every row (a snapshot or a poll); rows that differ from the previous
  // cache flash, unless this is the first fill.
  replace(items, view, flashChanges = true) {
    const before = this.rows;
    const firstFill = before.size === 0 || !flashChanges;
    this.rows = new Map(items.map((item) => [identity(item), item]));
    this.columns = columnsOf(items);
    ui.headRow.replaceChildren(
      ...this.columns.map((c) => {
        const th = document.createElement("th");
        th.scope = "col";
        th.textContent = c;
        return th;
      }),
    );
    this.trs.clear();
    const sorted = [...this.rows.entries()].sort(([, a], [, b]) => compareRows(a, b));
    ui.body.replaceChildren(
      ...sorted.map(([id, item]) => {
        const tr = this.render(id, item);
        const old = before.get(id);
        if (!firstFill && (!old || JSON.stringify(old) !== JSON.stringify(item))) this.flash(tr, old, item);
        return tr;
      }),
    );
    this.summarize(view);
  }

  // `added` (replaces a row with the same identity in place) and `modified` (a no-op
  // for a row not in the cache).
  upsert(item, view, onlyExisting) {
    const id = identity(item);
    const old = this.rows.get(id);
    if (!old && onlyExisting) return;
    this.rows.set(id, item);
    if (Object.entries(item).some(([k, v]) => showable(v) && !this.columns.includes(k))) {
      this.replaceColumns();
    } else {
      const prev = this.trs.get(id);
      const tr = this.render(id, item);
      if (prev && prev.parentNode) prev.replaceWith(tr);
      else this.insertSorted(tr, item);
    }
    this.flash(this.trs.get(id), old, item);
    this.summarize(view);
  }

  remove(item, view) {
    const id = identity(item);
    this.rows.delete(id);
    this.trs.get(id)?.remove();
    this.trs.delete(id);
    this.summarize(view);
  }

  // A delta brought a key no column shows yet: redraw with the new columns.
  replaceColumns() {
    this.replace([...this.rows.values()], currentView, false);
  }

  insertSorted(tr, item) {
    for (const other of ui.body.children) {
      const otherItem = this.rows.get(other.dataset.id);
      if (otherItem && compareRows(item, otherItem) < 0) {
        ui.body.insertBefore(tr, other);
        return;
      }
    }
    ui.body.appendChild(tr);
  }

  render(id, item) {
    const tr = document.createElement("tr");
    tr.dataset.id = id;
    for (const c of this.columns) {
      const td = document.createElement("td");
      td.dataset.col = c;
      const v = item[c];
      if (typeof v === "string" && RFC3339.test(v)) {
        td.dataset.ts = v;
        td.title = v;
        td.textContent = age(v);
      } else {
        td.textContent = cellText(v);
      }
      tr.appendChild(td);
    }
    this.trs.set(id, tr);
    return tr;
  }

  flash(tr, old, item) {
    for (const td of tr.children) {
      const c = td.dataset.col;
      if (!old || JSON.stringify(old[c]) !== JSON.stringify(item[c])) td.classList.add("cell-changed");
    }
    tr.classList.add("changed");
    setTimeout(() => {
      tr.classList.remove("changed");
      for (const td of tr.querySelectorAll(".cell-changed")) td.classList.remove("cell-changed");
    }, FLASH_MS);
  }

  summarize(view) {
    const where = view.namespace ? `namespace ${view.namespace}` : "all namespaces";
    ui.caption.textContent = `${this.rows.size} ${view.kind} in ${where}, cluster ${view.cluster}`;
    const namespaces = new Set();
    for (const item of this.rows.values()) if (item.namespace) namespaces.add(item.namespace);
    if (namespaces.size !== ui.namespaces.children.length) {
      setOptions(ui.namespaces, [...namespaces].sort());
    }
  }
}

const table = new Table();

// Ages are relative: refresh them now and then.
setInterval(() => {
  for (const td of ui.body.querySelectorAll("td[data-ts]")) td.textContent = age(td.dataset.ts);
}, 10000);

// === one view's stream: the SPA's rules (spec/dtos.md 3.4) ===

class Live {
  constructor(view) {
    this.view = view;
    const base = `/api/clusters/${encodeURIComponent(view.cluster)}/${encodeURIComponent(view.kind)}`;
    const query = view.namespace ? `?namespace=${encodeURIComponent(view.namespace)}` : "";
    this.listUrl = base + query;
    this.watchUrl = `${base}/watch${query}`;
    this.budget = 0;
    this.lastCharge = 0;
    this.hasSnapshot = false;
    this.es = null;
    this.timer = null;
    this.polling = false;
    this.stopped = false;
  }

  start() {
    setBadge("reconnecting", "connecting");
    this.open();
  }

  stop() {
    this.stopped = true;
    this.es?.close();
    this.es = null;
    clearTimeout(this.timer);
  }

  // Every closed or failed connection and every `error` frame: one unit, at most once
  // a second. At four, poll for the rest of this view's life.
  charge() {
    const now = Date.now();
    if (now - this.lastCharge < 1000) return;
    this.lastCharge = now;
    this.budget += 1;
    if (this.budget >= ERROR_BUDGET) this.poll(`the stream failed ${this.budget} times`);
  }

  // Only a snapshot or a delta resets the budget and shows live.
  healthy() {
    this.budget = 0;
    setBadge("live");
    showMessage("");
  }

  open() {
    if (this.stopped || this.polling) return;
    const es = new EventSource(this.watchUrl);
    this.es = es;
    const on = (name, fn) =>
      es.addEventListener(name, (e) => {
        if (this.es === es && !this.stopped && !this.polling) fn(e);
      });
    on("snapshot", (e) => {
      const data = JSON.parse(e.data);
      this.hasSnapshot = true;
      table.replace(data.items || [], this.view);
      this.healthy();
    });
    for (const kind of ["added", "modified", "deleted"]) {
      on(kind, (e) => {
        // Deltas before the first snapshot are dropped: there is no cache to patch.
        if (!this.hasSnapshot) return;
        const { object } = JSON.parse(e.data);
        if (kind === "deleted") table.remove(object, this.view);
        else table.upsert(object, this.view, kind === "modified");
        this.healthy();
      });
    }
    // Keep the cache, wait for the next snapshot.
    on("relist", () => setBadge("reconnecting"));
    // The server closes; EventSource reconnects with Last-Event-ID on its own.
    on("backpressure", () => setBadge("reconnecting"));
    on("server_shutdown", () => setBadge("reconnecting"));
    on("auth_expired", () => {
      es.close();
      showSignin("Your session expired: sign in again.");
    });
    // Both the `error` frame (a MessageEvent with data) and a failed connection (a
    // plain Event) arrive as "error".
    on("error", (e) => {
      if (typeof e.data === "string") {
        console.warn("periscope stream error:", e.data);
        this.charge();
        setBadge("reconnecting");
        return;
      }
      this.charge();
      if (this.polling) return;
      setBadge("reconnecting");
      if (es.readyState === EventSource.CLOSED) {
        // A non-200 answer (EventSource cannot see which): ask with fetch.
        this.es = null;
        this.recover();
      }
    });
  }

  // What did the watch route answer? 0 when the request failed.
  async probe() {
    const abort = new AbortController();
    try {
      const res = await api(this.watchUrl, { signal: abort.signal, headers: { Accept: "text/event-stream" } });
      return res.status;
    } catch {
      return 0;
    } finally {
      abort.abort();
    }
  }

  async recover() {
    const status = await this.probe();
    if (this.stopped || this.polling) return;
    if (status === 401) return showSignin("This Periscope requires a token.");
    if (status === 404 || status === 429) {
      const why = status === 404 ? "this kind is not streamed" : "too many open streams";
      return this.poll(`watch answered ${status}: ${why}`);
    }
    const delay = 1000 * Math.min(8, 2 ** this.budget);
    this.timer = setTimeout(() => this.open(), delay);
  }

  poll(why) {
    if (this.polling) return;
    this.polling = true;
    this.es?.close();
    this.es = null;
    clearTimeout(this.timer);
    setBadge("polling", `polling every ${POLL_MS / 1000}s`);
    ui.status.title = why;
    this.tick();
  }

  async tick() {
    if (this.stopped) return;
    try {
      const res = await api(this.listUrl);
      if (this.stopped) return;
      if (res.status === 401) return showSignin("This Periscope requires a token.");
      if (!res.ok) {
        showMessage(`${this.listUrl}: ${res.status} ${(await res.text()).trim()}`);
      } else {
        const body = await res.json();
        const items = Object.values(body).find(Array.isArray) || [];
        if (this.stopped) return;
        table.replace(items, this.view);
        showMessage("");
      }
    } catch (error) {
      showMessage(`${this.listUrl}: ${error}`);
    }
    if (!this.stopped) this.timer = setTimeout(() => this.tick(), POLL_MS);
  }
}

// === wiring ===

let live = null;
let currentView = null;
let kinds = [];

function stopView() {
  live?.stop();
  live = null;
}

function startView(view) {
  stopView();
  currentView = view;
  ui.cluster.value = view.cluster;
  if (view.kind && !kinds.includes(view.kind)) setOptions(ui.kind, [...kinds, view.kind], view.kind);
  ui.kind.value = view.kind;
  ui.namespace.value = view.namespace;
  ui.table.dataset.kind = view.kind;
  showMessage("");
  ui.status.title = "";
  table.clear(`Loading ${view.kind}…`);
  live = new Live(view);
  live.start();
}

function viewFromControls() {
  return { cluster: ui.cluster.value, kind: ui.kind.value, namespace: ui.namespace.value.trim() };
}

ui.controls.addEventListener("submit", (e) => {
  e.preventDefault();
  writeHash(viewFromControls());
});
ui.cluster.addEventListener("change", () => writeHash(viewFromControls()));
ui.kind.addEventListener("change", () => writeHash(viewFromControls()));
ui.namespace.addEventListener("change", () => writeHash(viewFromControls()));
window.addEventListener("hashchange", () => {
  const view = readHash();
  if (view.cluster && view.kind) startView(view);
});

async function getJson(path) {
  const res = await api(path);
  if (res.status === 401) throw Object.assign(new Error("unauthenticated"), { status: 401 });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${(await res.text()).trim()}`);
  return res.json();
}

async function boot() {
  try {
    const [clusters, features] = await Promise.all([getJson("/api/clusters"), getJson("/api/features")]);
    const names = (clusters.clusters || []).map((c) => c.name);
    kinds = features.watchStreams || [];
    const wanted = readHash();
    const view = {
      cluster: names.includes(wanted.cluster) ? wanted.cluster : names[0] || "",
      kind: wanted.kind || kinds[0] || "",
      namespace: wanted.namespace,
    };
    setOptions(ui.cluster, names, view.cluster);
    setOptions(ui.kind, kinds, view.kind);
    if (!view.cluster) {
      setBadge("error", "no cluster");
      return showMessage("The host serves no cluster.");
    }
    if (!view.kind) {
      setBadge("error", "no kind");
      return showMessage(`No kind is streamed; open #/${view.cluster}/<kind> to poll one.`);
    }
    writeHash(view);
  } catch (error) {
    if (error.status === 401) return showSignin("This Periscope requires a token.");
    setBadge("error", "error");
    showMessage(String(error.message || error));
  }
}

// A token from earlier in this tab: make sure the stream cookie matches it.
if (token()) setCookie(token());
boot();
