// The response desk: login, the live alert list fed by the websocket, the
// detail with its handling buttons, and the camera panel. Alert data only
// ever reaches the page through textContent and attributes, never innerHTML.
import { t, label, applyStatic, setLang, currentLang } from "./i18n.js";

const API = "/api/v1";
const $ = (id) => document.getElementById(id);

const state = {
  alerts: new Map(),  // id → alert
  fresh: new Map(),   // id → ms when it was raised or reopened live: on top, highlighted for FRESH_MS
  lastSeq: null,      // newest seq applied; null before the first hello
  helloSeq: 0,        // seq of the last hello: where live messages start
  selected: null,     // id of the alert in the detail
  units: [],
  cameras: [],
  ws: null,
  backoff: 0,         // reconnect attempts since the last hello
  reconnectTimer: null,
  cameraTimer: null,
  running: false,
};

// ---- HTTP ----------------------------------------------------------------

async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(API + path, opts);
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  return { status: res.status, ok: res.ok, data };
}

// ---- session -------------------------------------------------------------

async function checkSession() {
  let r;
  try { r = await api("GET", "/session"); } catch { return false; }
  if (!r.ok || !r.data) return false;
  $("who-name").textContent = r.data.role ? `${r.data.name} (${r.data.role})` : String(r.data.name ?? "");
  return true;
}

async function login(ev) {
  ev.preventDefault();
  unlockAudio();
  loginError("");
  const token = $("login-token").value;
  let r;
  try { r = await api("POST", "/session", { token }); } catch { loginError("err.network"); return; }
  if (!r.ok) { loginError("login.failed"); $("login-token").select(); return; }
  $("login-token").value = "";
  if (await checkSession()) start();
  else loginError("login.failed");
}

// loginError shows the message of key, kept in the current language when
// the switch is used; "" clears it.
function loginError(key) {
  const e = $("login-error");
  if (key) {
    e.dataset.i18n = key;
    e.textContent = t(key);
  } else {
    delete e.dataset.i18n;
    e.textContent = "";
  }
}

async function logout() {
  try { await api("DELETE", "/session"); } catch { /* the cookie may stay; the view still locks */ }
  stop();
  showLogin();
}

function showLogin() {
  document.body.dataset.view = "login";
  $("login-token").focus();
}

// ---- live stream -----------------------------------------------------------

function setConn(s) {
  $("conn").dataset.state = s;
  const el = $("conn-text");
  el.dataset.i18n = "conn." + s;
  el.textContent = t("conn." + s);
}

function connect() {
  if (!state.running) return;
  clearTimeout(state.reconnectTimer);
  setConn("connecting");
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  let url = `${proto}//${location.host}${API}/alerts/stream`;
  const resuming = state.lastSeq !== null;
  if (resuming) url += `?since=${state.lastSeq}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    onMessage(msg, resuming);
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    state.ws = null;
    setConn("closed");
    scheduleReconnect();
  };
}

async function scheduleReconnect() {
  if (!state.running) return;
  // An expired session looks like a failed upgrade: ask before retrying.
  if (state.backoff > 0 && !(await checkSession())) {
    stop();
    showLogin();
    return;
  }
  const base = Math.min(15000, 500 * 2 ** state.backoff);
  const delay = base / 2 + Math.random() * base / 2;
  state.backoff++;
  state.reconnectTimer = setTimeout(connect, delay);
}

function onMessage(msg, resuming) {
  switch (msg.kind) {
    case "hello":
      state.backoff = 0;
      // For tests and for whoever inspects the page: streams opened so far.
      document.body.dataset.hellos = String(Number(document.body.dataset.hellos ?? 0) + 1);
      setConn("open");
      state.helloSeq = msg.seq;
      // Camera status is not replayed with since: what changed while the
      // socket was down is only in GET /cameras.
      if (resuming) loadCameras();
      if (!resuming) {
        state.lastSeq = msg.seq;
        loadAlerts();
      }
      return;
    case "reset":
      // The journal no longer holds what we missed: start over from the
      // current state, continuing live from the hello seq.
      state.alerts.clear();
      state.lastSeq = state.helloSeq;
      loadAlerts();
      return;
    case "camera":
      if (msg.camera) upsertCamera(msg.camera);
      return;
  }
  if (!msg.alert || typeof msg.seq !== "number") return;
  if (state.lastSeq !== null && msg.seq <= state.lastSeq) return;
  state.lastSeq = msg.seq;
  document.body.dataset.seq = String(msg.seq);
  // New work — a new occurrence or a reopened signal — goes to the top,
  // highlighted, with the sound of its severity; a repeat only changes the
  // count in place. Replayed changes (older than the hello) make no sound.
  const work = msg.kind === "raised" || msg.kind === "reopened";
  if (work) state.fresh.set(msg.alert.id, Date.now());
  upsert(msg.alert);
  if (work && msg.seq > state.helloSeq) alarm(msg.alert.severity);
  if (work) setTimeout(render, FRESH_MS + 50);
}

const FRESH_MS = 10000;

async function loadAlerts() {
  const queries = ["status=open&limit=200", "status=resolved&limit=50"];
  const results = await Promise.allSettled(queries.map((q) => api("GET", `/alerts?${q}`)));
  for (const r of results) {
    if (r.status !== "fulfilled" || !r.value.ok || !r.value.data) continue;
    for (const a of r.value.data.alerts ?? []) upsert(a, true);
  }
  render();
}

// upsert keeps the newer version of an alert; the list and the stream may
// race, and version orders them.
//
// A stream change carries only the history entries it made and no
// follow_ups: they are added to what the page has (GET /alerts/{id} has the
// whole history, loaded when the alert is opened).
function upsert(a, quiet) {
  const old = state.alerts.get(a.id);
  if (old && (old.version ?? 0) > (a.version ?? 0)) return;
  if (old && a.follow_ups === undefined) {
    const known = (old.history ?? []).filter((h) => !h.version || h.version < (a.version ?? 0));
    a = { ...a, history: [...known, ...(a.history ?? [])], follow_ups: old.follow_ups };
  }
  state.alerts.set(a.id, a);
  if (!quiet) render();
}

// loadAlert replaces an alert with its whole stored state.
async function loadAlert(id) {
  try {
    const r = await api("GET", `/alerts/${encodeURIComponent(id)}`);
    if (r.ok && r.data) upsert(r.data);
  } catch { /* the stream keeps it current */ }
}

// ---- rendering ------------------------------------------------------------

const sevRank = (s) => ({ critical: 0, major: 1, minor: 2 })[s] ?? 3;

function isOverdue(a, now) {
  if (a.status === "resolved") return false;
  if (a.overdue) return true;
  const late = (d) => d && Date.parse(d) < now;
  return (a.status === "new" && late(a.ack_deadline)) || late(a.resolve_deadline);
}

function fmtTime(s) {
  if (!s) return "—";
  const d = new Date(s);
  if (isNaN(d)) return "—";
  return d.toLocaleString(currentLang() === "en" ? "en-GB" : "zh-CN", { hour12: false });
}

function fmtDuration(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(sec)}` : `${pad(m)}:${pad(sec)}`;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function fillSelect(sel, values, labeler) {
  const keep = sel.value;
  while (sel.options.length > 1) sel.remove(1);
  for (const v of values) {
    const o = document.createElement("option");
    o.value = v;
    o.textContent = labeler(v);
    sel.append(o);
  }
  sel.value = values.includes(keep) ? keep : "";
}

function render() {
  const now = Date.now();
  const all = [...state.alerts.values()];
  let open = 0, overdue = 0;
  for (const a of all) {
    if (a.status !== "resolved") open++;
    if (isOverdue(a, now)) overdue++;
  }
  $("count-open").textContent = String(open);
  $("count-overdue").textContent = String(overdue);

  fillSelect($("filter-site"), [...new Set(all.map((a) => a.site).filter(Boolean))].sort(), (v) => v);
  fillSelect($("filter-type"), [...new Set(all.map((a) => a.type).filter(Boolean))].sort(), (v) => label("type", v));

  const site = $("filter-site").value, status = $("filter-status").value, type = $("filter-type").value;
  const shown = all.filter((a) =>
    (!site || a.site === site) &&
    (!type || a.type === type) &&
    (!status || (status === "open" ? a.status !== "resolved" : a.status === status)));
  const freshAt = (a) => {
    const at = state.fresh.get(a.id);
    return at && now - at < FRESH_MS ? at : 0;
  };
  const activity = (a) => Math.max(Date.parse(a.raised_at) || 0, state.fresh.get(a.id) ?? 0);
  shown.sort((x, y) =>
    ((x.status === "resolved") - (y.status === "resolved")) ||
    (freshAt(y) - freshAt(x)) ||
    (sevRank(x.severity) - sevRank(y.severity)) ||
    (activity(y) - activity(x)));

  const list = $("alert-list");
  const focusedId = document.activeElement?.closest?.("li")?.dataset.id;
  const items = shown.map((a) => alertItem(a, now, freshAt(a) > 0));
  list.replaceChildren(...items);
  if (focusedId) list.querySelector(`li[data-id="${CSS.escape(focusedId)}"] button`)?.focus();
  $("list-empty").hidden = shown.length > 0;
  renderDetail();
}

function alertItem(a, now, fresh) {
  const li = el("li");
  li.dataset.id = a.id;
  li.dataset.severity = a.severity;
  li.dataset.status = a.status;
  if (fresh) li.classList.add("fresh");
  const b = el("button", "alert-row");
  b.type = "button";
  if (a.id === state.selected) b.setAttribute("aria-current", "true");
  b.append(el("span", "sev", label("sev", a.severity)));
  b.append(el("span", "name", `${a.camera_name || a.camera} · ${label("type", a.type)}`));
  const st = el("span", "status", label("status", a.status));
  if (isOverdue(a, now)) st.append(el("span", "badge-overdue", t("overdue")));
  b.append(st);
  const where = [a.site, a.grid].filter(Boolean).join(" ");
  const nth = a.occurrences_24h > 1 ? t("nth").replace("{n}", a.occurrences_24h) : "";
  b.append(el("span", "meta", [fmtTime(a.raised_at), where, `×${a.count ?? 1}`, nth].filter(Boolean).join(" · ")));
  b.addEventListener("click", () => select(a.id));
  li.append(b);
  return li;
}

function select(id) {
  if (state.selected !== id) {
    $("conflict").hidden = true;
    $("action-error").hidden = true;
    $("resolve-feedback").value = "";
    $("resolve-false").checked = false;
    $("followup-note").value = "";
    state.selected = id;
    loadAlert(id);
    const a = state.alerts.get(id);
    const v = $("clip");
    const src = a?.clip?.url || `${API}/alerts/${encodeURIComponent(id)}/clip`;
    if (v.getAttribute("src") !== src) v.setAttribute("src", src);
  }
  render();
}

function setText(id, v) { $(id).textContent = v; }

function deadlineText(id, deadline, doneAt) {
  const e = $(id);
  e.classList.remove("late");
  if (!deadline) { e.textContent = "—"; return; }
  if (doneAt) { e.textContent = `${fmtTime(deadline)} · ${t("dl.met")}`; return; }
  const left = Date.parse(deadline) - Date.now();
  if (left >= 0) {
    e.textContent = `${fmtTime(deadline)} · ${t("dl.left")} ${fmtDuration(left)}`;
  } else {
    e.textContent = `${fmtTime(deadline)} · ${t("dl.over")} ${fmtDuration(left)}`;
    e.classList.add("late");
  }
}

function renderDetail() {
  const a = state.selected && state.alerts.get(state.selected);
  $("detail-empty").hidden = !!a;
  $("detail-body").hidden = !a;
  if (!a) return;
  const body = $("detail-body");
  body.dataset.id = a.id;
  body.dataset.status = a.status;
  body.dataset.version = String(a.version);
  setText("detail-title", `${label("sev", a.severity)} · ${label("type", a.type)} · ${a.camera_name || a.camera}`);
  setText("d-camera", a.camera_name && a.camera_name !== a.camera ? `${a.camera_name} (${a.camera})` : (a.camera || "—"));
  setText("d-site", a.site || "—");
  setText("d-grid", a.grid || "—");
  setText("d-type", label("type", a.type));
  setText("d-severity", label("sev", a.severity));
  setText("d-status", label("status", a.status) + (a.false_alarm ? ` · ${t("false_alarm")}` : ""));
  setText("d-raised", fmtTime(a.raised_at));
  setText("d-count", String(a.count ?? 1));
  const occ = $("d-occurrence");
  occ.replaceChildren(a.occurrences_24h > 1 ? t("nth").replace("{n}", a.occurrences_24h) : t("nth.first"));
  if (a.previous_id) {
    const prev = el("button", "link", t("nth.previous"));
    prev.type = "button";
    prev.id = "d-previous";
    prev.addEventListener("click", () => openAlert(a.previous_id));
    occ.append(" · ", prev);
  }
  setText("d-signal", label("signal", a.signal) + (a.ended_at ? ` · ${fmtTime(a.ended_at)}` : ""));
  const unit = state.units.find((u) => u.id === a.unit);
  setText("d-unit", a.unit ? (unit ? unit.name : a.unit) : "—");
  deadlineText("d-ackdl", a.ack_deadline, a.acknowledged_at || a.resolved_at);
  deadlineText("d-resdl", a.resolve_deadline, a.resolved_at);
  setText("d-feedback", a.feedback || "—");
  const fu = a.follow_up;
  setText("d-followup", fu ? `${fu.satisfied ? t("followup.yes") : t("followup.no")} · ${fu.note ?? ""} · ${fu.by ?? ""} ${fmtTime(fu.at)}` : "—");

  const open = a.status !== "resolved";
  $("act-ack").hidden = a.status !== "new";
  $("act-dispatch").hidden = !(a.status === "new" || a.status === "acknowledged");
  $("act-resolve").hidden = !open;
  $("btn-resolve").disabled = $("resolve-feedback").value.trim() === "";
  $("act-followup").hidden = open || !!fu;

  const hist = $("history");
  hist.replaceChildren(...(a.history ?? []).map((h) => {
    const li = el("li");
    if (h.action === "earlier") {
      li.textContent = `${label("h", h.action)} × ${h.count ?? 0}`;
      return li;
    }
    li.textContent = `${fmtTime(h.at)} · ${label("h", h.action)}${h.by ? " · " + h.by : ""}${h.note ? " · " + h.note : ""}`;
    return li;
  }));
}

function renderUnits() {
  const sel = $("unit-select");
  sel.replaceChildren(...state.units.map((u) => {
    const o = document.createElement("option");
    o.value = u.id;
    o.textContent = u.name || u.id;
    return o;
  }));
}

function upsertCamera(c) {
  const i = state.cameras.findIndex((x) => x.id === c.id);
  if (i >= 0) state.cameras[i] = { ...state.cameras[i], ...c };
  else state.cameras.push(c);
  renderCameras();
}

function renderCameras() {
  const cams = [...state.cameras].sort((x, y) =>
    ((x.status === "offline") ? 0 : 1) - ((y.status === "offline") ? 0 : 1) || String(x.id).localeCompare(String(y.id)));
  $("camera-list").replaceChildren(...cams.map((c) => {
    const li = el("li");
    li.dataset.id = c.id;
    li.dataset.status = c.status;
    li.append(el("div", "cam-name", c.name || c.id));
    li.append(el("div", "cam-state", `${label("cam", c.status)} · ${c.site ?? ""}${c.grid ? " " + c.grid : ""}`));
    if (c.since) li.append(el("div", "cam-since", `${t("cam.since")} ${fmtTime(c.since)}`));
    return li;
  }));
}

// ---- handling actions -------------------------------------------------------

async function act(path, body) {
  const a = state.alerts.get(state.selected);
  if (!a) return;
  $("conflict").hidden = true;
  $("action-error").hidden = true;
  const buttons = document.querySelectorAll(".actions button");
  for (const b of buttons) b.disabled = true;
  try {
    const r = await api("POST", `/alerts/${encodeURIComponent(a.id)}/${path}`, body(a));
    if (r.ok && r.data) {
      upsert(r.data.alert ?? r.data);
    } else if (r.status === 409) {
      if (r.data?.alert) upsert(r.data.alert);
      // A person won (已被他人处理) or the camera / the service did
      // (摄像机状态已更新).
      const key = r.data?.by && r.data.by !== "system" ? "conflict" : "conflict.system";
      $("conflict").dataset.i18n = key;
      $("conflict").textContent = t(key);
      $("conflict").hidden = false;
    } else if (r.status === 401) {
      stop();
      showLogin();
    } else {
      $("action-error").textContent = `${t("err.action")}: ${r.data?.error ?? r.status}`;
      $("action-error").hidden = false;
    }
  } catch {
    $("action-error").textContent = t("err.network");
    $("action-error").hidden = false;
  } finally {
    for (const b of buttons) b.disabled = false;
    render();
  }
}

// openAlert selects an alert, loading it first when the page does not hold
// it (an earlier occurrence that is no longer in the list).
async function openAlert(id) {
  if (!state.alerts.has(id)) await loadAlert(id);
  if (state.alerts.has(id)) select(id);
}

// ---- sound -------------------------------------------------------------------

let audio = null;
function unlockAudio() {
  if (!audio && window.AudioContext) {
    try { audio = new AudioContext(); } catch { audio = null; }
  }
  audio?.resume?.();
}

// alarm plays the sound of a severity: critical three high beeps, major two,
// minor one low. The page counts what it played in data-alarms for tests.
function alarm(severity) {
  document.body.dataset.alarms = String(Number(document.body.dataset.alarms ?? 0) + 1);
  const tone = { critical: [880, 3], major: [660, 2], minor: [440, 1] }[severity] ?? [440, 1];
  beep(tone[0], tone[1]);
}

function beep(freq = 880, n = 2) {
  if (!audio) return;
  const now = audio.currentTime;
  for (let i = 0; i < n; i++) {
    const start = i * 0.35;
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.type = "square";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.15, now + start);
    gain.gain.exponentialRampToValueAtTime(0.001, now + start + 0.3);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + start);
    osc.stop(now + start + 0.3);
  }
}

// ---- lifecycle ---------------------------------------------------------------

async function loadUnits() {
  try {
    const r = await api("GET", "/units");
    if (r.ok) state.units = Array.isArray(r.data) ? r.data : (r.data?.units ?? []);
  } catch { /* keep what we had */ }
  renderUnits();
}

async function loadCameras() {
  try {
    const r = await api("GET", "/cameras");
    if (r.ok) {
      state.cameras = Array.isArray(r.data) ? r.data : (r.data?.cameras ?? []);
      renderCameras();
    }
  } catch { /* the next poll retries */ }
}

function start() {
  document.body.dataset.view = "desk";
  if (state.running) return;
  state.running = true;
  state.backoff = 0;
  loadUnits();
  loadCameras();
  state.cameraTimer = setInterval(loadCameras, 10000);
  connect();
}

function stop() {
  state.running = false;
  clearTimeout(state.reconnectTimer);
  clearInterval(state.cameraTimer);
  const ws = state.ws;
  state.ws = null;
  ws?.close(1000);
  setConn("closed");
  state.alerts.clear();
  state.fresh.clear();
  state.lastSeq = null;
  state.selected = null;
  $("who-name").textContent = "";
  render();
}

function init() {
  applyStatic();
  $("btn-lang").textContent = currentLang() === "en" ? "中文" : "EN";
  $("btn-lang").addEventListener("click", () => {
    setLang(currentLang() === "en" ? "zh" : "en");
    $("btn-lang").textContent = currentLang() === "en" ? "中文" : "EN";
    setConn($("conn").dataset.state);
    render();
    renderCameras();
  });
  $("login-form").addEventListener("submit", login);
  $("btn-logout").addEventListener("click", logout);
  for (const id of ["filter-site", "filter-status", "filter-type"]) $(id).addEventListener("change", render);
  document.addEventListener("pointerdown", unlockAudio);
  document.addEventListener("keydown", unlockAudio);

  $("btn-ack").addEventListener("click", () => act("ack", (a) => ({ note: "", version: a.version })));
  $("btn-dispatch").addEventListener("click", () =>
    act("dispatch", (a) => ({ unit: $("unit-select").value, note: "", version: a.version })));
  // 办结反馈 is required: the button waits for text.
  const feedbackChanged = () => { $("btn-resolve").disabled = $("resolve-feedback").value.trim() === ""; };
  $("resolve-feedback").addEventListener("input", feedbackChanged);
  feedbackChanged();
  $("btn-resolve").addEventListener("click", () =>
    act("resolve", (a) => ({ feedback: $("resolve-feedback").value, false_alarm: $("resolve-false").checked, version: a.version })));
  $("btn-followup").addEventListener("click", () =>
    act("follow-up", (a) => ({ satisfied: $("followup-satisfied").checked, note: $("followup-note").value })));

  // Countdowns and locally detected overdue deadlines.
  setInterval(() => { if (state.running) { renderDetail(); refreshCounters(); } }, 1000);

  checkSession().then((ok) => (ok ? start() : showLogin()));
}

function refreshCounters() {
  const now = Date.now();
  let overdue = 0;
  for (const a of state.alerts.values()) if (isOverdue(a, now)) overdue++;
  $("count-overdue").textContent = String(overdue);
}

init();
