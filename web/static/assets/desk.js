// The response desk's board (应急值守台): the live alert list fed by the
// websocket, the detail with its handling actions, the camera panel, search
// with the API's cursor paging, sound, tab title and notifications.
//
// The board survives a lost connection: it stays on screen under a banner
// while the page reconnects with backoff and `since`; only a 401 (handled
// by app.js) returns to the login view.
import { t, label, currentLang } from "./i18n.js";
import {
  API, $, api, el, fmtTime, fmtDuration, directory, loadCameras, loadSites, siteName, cameraGroups, cameraState,
} from "./common.js";

const FRESH_MS = 10000;        // raised / reopened rows stay on top, highlighted
const CRITICAL_REPEAT_MS = 6000; // critical 待受理 repeats its sound until acknowledged or muted

const state = {
  alerts: new Map(),  // id → alert
  fresh: new Map(),   // id → ms when it was raised or reopened live
  lastSeq: null,      // newest seq applied; null before the first hello
  helloSeq: 0,        // seq of the last hello: where live messages start
  selected: null,     // id of the alert in the detail
  units: [],
  ws: null,
  backoff: 0,         // reconnect attempts since the last hello
  downSince: null,    // ms when the stream was lost; null while connected
  reconnectTimer: null,
  timers: [],
  running: false,
  muted: false,
  cursor: "",         // next_cursor of the last search page
  search: null,       // the API query of the last search, or null for the live board
  confirmFalse: false,
};

// ---- live stream -----------------------------------------------------------

function setConn(s) {
  $("conn").dataset.state = s;
  const e = $("conn-text");
  e.dataset.i18n = "conn." + s;
  e.textContent = t("conn." + s);
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
    if (state.downSince === null) state.downSince = Date.now();
    renderBanner();
    scheduleReconnect();
  };
}

async function scheduleReconnect() {
  if (!state.running) return;
  // A failed upgrade does not say why: ask the session. Only a 401 ends the
  // board (api() hands it to app.js); a server that is down keeps it.
  if (state.backoff > 0) {
    try {
      const r = await api("GET", "/session");
      if (r.status === 401) return;
    } catch { /* unreachable: retry */ }
    if (!state.running) return;
  }
  const base = Math.min(15000, 500 * 2 ** state.backoff);
  const delay = base / 2 + Math.random() * base / 2;
  state.backoff++;
  state.reconnectTimer = setTimeout(connect, delay);
}

function renderBanner() {
  const b = $("banner");
  if (state.downSince === null || !state.running) {
    b.hidden = true;
    return;
  }
  b.hidden = false;
  b.textContent = `${t("banner.down")} · ${t("banner.since")} ${fmtDuration(Date.now() - state.downSince)}`;
}

function onMessage(msg, resuming) {
  switch (msg.kind) {
    case "hello":
      state.backoff = 0;
      state.downSince = null;
      renderBanner();
      // For tests and for whoever inspects the page: streams opened so far.
      document.body.dataset.hellos = String(Number(document.body.dataset.hellos ?? 0) + 1);
      setConn("open");
      state.helloSeq = msg.seq;
      // Camera status is not replayed with since: what changed while the
      // socket was down is only in GET /cameras.
      if (resuming) refreshCameras();
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
  upsert(msg.alert, false, true);
  if (work && msg.seq > state.helloSeq) {
    alarm(msg.alert.severity);
    notify(msg.kind, msg.alert);
  }
  if (work) setTimeout(render, FRESH_MS + 50);
}

function todayStart() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d;
}

async function loadAlerts() {
  // Resolved alerts raised in the last week feed 今日已办结 and the 已办结
  // filter; older ones are found by search.
  const since = encodeURIComponent(new Date(todayStart().getTime() - 7 * 86400000).toISOString());
  const queries = ["status=open&limit=200", `status=resolved&since=${since}&limit=200`];
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
// A stream change (partial) carries only the history entries it made and
// no follow_ups: they are added to what the page has. Alerts from the API
// (lists, GET /alerts/{id}, action answers) are whole and replace it.
function upsert(a, quiet, partial) {
  const old = state.alerts.get(a.id);
  if (old && (old.version ?? 0) > (a.version ?? 0)) return;
  if (old && partial) {
    const known = (old.history ?? []).filter((h) => !h.version || h.version < (a.version ?? 0));
    a = { ...a, history: [...known, ...(a.history ?? [])], follow_ups: old.follow_ups };
  }
  state.alerts.set(a.id, a);
  if (!quiet) render();
}

async function loadAlert(id) {
  try {
    const r = await api("GET", `/alerts/${encodeURIComponent(id)}`);
    if (r.ok && r.data) upsert(r.data);
  } catch { /* the stream keeps it current */ }
}

// ---- search ----------------------------------------------------------------

function dateBound(value, end) {
  if (!value) return "";
  const d = new Date(value + "T00:00:00");
  if (end) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

function searchQuery() {
  const q = new URLSearchParams();
  const status = $("filter-status").value;
  if (status === "open" || status === "overdue") q.set("status", "open");
  else if (status) q.set("status", status);
  if ($("filter-site").value) q.set("site", $("filter-site").value);
  if ($("filter-camera").value) q.set("camera", $("filter-camera").value);
  const from = dateBound($("filter-from").value, false), to = dateBound($("filter-to").value, true);
  if (from) q.set("since", from);
  if (to) q.set("until", to);
  q.set("limit", "50");
  return q;
}

async function search(more) {
  if (!more) {
    state.search = searchQuery();
    state.cursor = "";
  }
  const q = new URLSearchParams(state.search);
  if (more && state.cursor) q.set("cursor", state.cursor);
  try {
    const r = await api("GET", `/alerts?${q}`);
    if (r.ok && r.data) {
      for (const a of r.data.alerts ?? []) upsert(a, true);
      state.cursor = r.data.next_cursor ?? "";
    }
  } catch { /* the banner tells */ }
  render();
}

function clearSearch() {
  $("filter-status").value = "open";
  for (const id of ["filter-site", "filter-camera", "filter-type", "filter-from", "filter-to"]) $(id).value = "";
  state.search = null;
  state.cursor = "";
  render();
}

// ---- rendering ------------------------------------------------------------

const sevRank = (s) => ({ critical: 0, major: 1, minor: 2 })[s] ?? 3;

function isOverdue(a, now) {
  if (a.status === "resolved") return false;
  if (a.overdue) return true;
  const late = (d) => d && Date.parse(d) < now;
  return (a.status === "new" && late(a.ack_deadline)) || late(a.resolve_deadline);
}

// workRank orders the board: 待受理, then 督办, then the other open work;
// resolved last (shown only under their filter).
function workRank(a, now) {
  if (a.status === "resolved") return 3;
  if (a.status === "new") return 0;
  return isOverdue(a, now) ? 1 : 2;
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

function counters(all, now) {
  const today = todayStart().getTime();
  let fresh = 0, overdue = 0, done = 0, supervised = 0;
  for (const a of all) {
    if (a.status === "new") fresh++;
    if (a.supervision && a.status !== "resolved") supervised++;
    if (isOverdue(a, now)) overdue++;
    if (a.status === "resolved" && Date.parse(a.resolved_at) >= today) done++;
  }
  $("count-new").textContent = String(fresh);
  $("count-overdue").textContent = String(overdue);
  $("count-done").textContent = String(done);
  $("count-supervised").textContent = String(supervised);
  document.title = (fresh > 0 ? `(${fresh}) ` : "") + t("title");
  return fresh;
}

function matches(a, now) {
  const status = $("filter-status").value, site = $("filter-site").value, cam = $("filter-camera").value;
  const type = $("filter-type").value;
  const from = dateBound($("filter-from").value, false), to = dateBound($("filter-to").value, true);
  const raised = Date.parse(a.raised_at);
  return (!site || a.site === site) &&
    (!cam || a.camera === cam) &&
    (!type || a.type === type) &&
    (!from || raised >= Date.parse(from)) &&
    (!to || raised < Date.parse(to)) &&
    (status === "" ? true
      : status === "open" ? a.status !== "resolved"
      : status === "overdue" ? isOverdue(a, now)
      : a.status === status);
}

function render() {
  if (!state.running) {
    $("alert-list").replaceChildren();
    return;
  }
  const now = Date.now();
  const all = [...state.alerts.values()];
  counters(all, now);

  const sites = new Set([...directory.sites.keys(), ...directory.cameras.map((c) => c.site), ...all.map((a) => a.site)].filter(Boolean));
  fillSelect($("filter-site"), [...sites].sort((x, y) => siteName(x).localeCompare(siteName(y), "zh-CN")), siteName);
  const cams = new Map(directory.cameras.map((c) => [c.id, c.name || c.id]));
  for (const a of all) if (!cams.has(a.camera)) cams.set(a.camera, a.camera_name || a.camera);
  fillSelect($("filter-camera"), [...cams.keys()].sort((x, y) => cams.get(x).localeCompare(cams.get(y), "zh-CN")), (v) => cams.get(v));
  const types = ["motion", "tamper", "video_loss", "line_crossing", "intrusion", "io_alarm", "camera_offline", "recording_failure", "storage_full", "other"];
  fillSelect($("filter-type"), types, (v) => label("type", v));

  const shown = all.filter((a) => matches(a, now));
  const freshAt = (a) => {
    const at = state.fresh.get(a.id);
    return at && now - at < FRESH_MS ? at : 0;
  };
  const activity = (a) => Math.max(Date.parse(a.raised_at) || 0, state.fresh.get(a.id) ?? 0);
  shown.sort((x, y) =>
    ((x.status === "resolved") - (y.status === "resolved")) ||
    (freshAt(y) - freshAt(x)) ||
    (workRank(x, now) - workRank(y, now)) ||
    (sevRank(x.severity) - sevRank(y.severity)) ||
    (activity(y) - activity(x)));

  const list = $("alert-list");
  const focusedId = document.activeElement?.closest?.("#alert-list li")?.dataset.id;
  list.replaceChildren(...shown.map((a) => alertItem(a, now, freshAt(a) > 0)));
  if (focusedId) list.querySelector(`li[data-id="${CSS.escape(focusedId)}"] button`)?.focus();
  $("list-empty").hidden = shown.length > 0;
  $("btn-more").hidden = !(state.search && state.cursor);
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
  const where = [siteName(a.site), a.grid].filter(Boolean).join(" ");
  const nth = a.occurrences_24h > 1 ? t("nth", { n: a.occurrences_24h }) : "";
  b.append(el("span", "meta", [fmtTime(a.raised_at), where, `×${a.count ?? 1}`, nth].filter(Boolean).join(" · ")));
  b.addEventListener("click", () => select(a.id));
  li.append(b);
  return li;
}

function select(id) {
  if (state.selected !== id) {
    $("conflict").hidden = true;
    $("action-error").hidden = true;
    for (const f of ["ack-note", "dispatch-note", "resolve-feedback", "followup-note"]) $(f).value = "";
    $("unit-select").value = "";
    $("resolve-false").checked = false;
    showConfirm(false);
    state.selected = id;
    loadAlert(id);
    const a = state.alerts.get(id);
    const v = $("clip");
    const src = a?.clip?.url || `${API}/alerts/${encodeURIComponent(id)}/clip`;
    if (v.getAttribute("src") !== src) v.setAttribute("src", src);
  }
  document.body.dataset.pane = "detail";
  render();
  $("detail").scrollTop = 0;
  if (matchMedia("(max-width: 759px)").matches) window.scrollTo(0, 0);
}

function back() {
  document.body.dataset.pane = "list";
  const id = state.selected;
  if (id) $("alert-list").querySelector(`li[data-id="${CSS.escape(id)}"] button`)?.focus();
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

export function unitName(id) {
  return state.units.find((u) => u.id === id)?.name || id;
}

function actor(by) {
  return !by || by === "system" ? t("actor.system") : by;
}

// historyNote turns the engine's notes (English, for the journal) into the
// page's language: dispatch notes name the unit, the rule's auto-dispatch,
// why a signal ended, which deadline passed, the follow-up verdict.
function historyNote(h) {
  const note = h.note ?? "";
  switch (h.action) {
    case "dispatched": {
      const m = /^→ (\S+)(?: \(([^)]*)\))?(?:: ([\s\S]*))?$/.exec(note);
      if (!m) return note;
      const rest = m[3] === "auto-dispatch by rule" ? t("note.auto_dispatch") : (m[3] ?? "");
      return `→ ${unitName(m[1])}` + (rest ? ` · ${rest}` : "");
    }
    case "ended": {
      if (note === "signal ended") return ""; // the action, 信号结束, says it all
      if (note === "state sync reports the active signal inactive") return t("note.sync_ended");
      const m = /^stale: no event for (\S+)$/.exec(note);
      return m ? t("note.stale", { d: m[1] }) : note;
    }
    case "overdue":
      return note === "ack" ? t("note.overdue_ack") : note === "resolve" ? t("note.overdue_resolve") : note;
    case "follow_up":
    case "followed_up":
      return note === "satisfied" ? t("note.satisfied") : note === "unsatisfied" ? t("note.unsatisfied") : note;
  }
  return note;
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
  setText("d-site", a.site ? siteName(a.site) : "—");
  setText("d-grid", a.grid || "—");
  setText("d-type", label("type", a.type));
  setText("d-severity", label("sev", a.severity));
  setText("d-status", label("status", a.status) + (a.false_alarm ? ` · ${t("false_alarm")}` : ""));
  setText("d-raised", fmtTime(a.raised_at));
  setText("d-count", String(a.count ?? 1));
  const occ = $("d-occurrence");
  occ.replaceChildren(a.occurrences_24h > 1 ? t("nth", { n: a.occurrences_24h }) : t("nth.first"));
  if (a.previous_id) {
    const prev = el("button", "link", t("nth.previous"));
    prev.type = "button";
    prev.id = "d-previous";
    prev.addEventListener("click", () => openAlert(a.previous_id));
    occ.append(" · ", prev);
  }
  setText("d-signal", label("signal", a.signal) + (a.ended_at ? ` · ${fmtTime(a.ended_at)}` : ""));
  setText("d-unit", a.unit ? unitName(a.unit) : "—");
  deadlineText("d-ackdl", a.ack_deadline, a.acknowledged_at || a.resolved_at);
  deadlineText("d-resdl", a.resolve_deadline, a.resolved_at);
  setText("d-feedback", a.feedback || "—");
  const sv = a.supervision;
  setText("d-supervision", sv ? [`${t("sup.due")} ${fmtTime(sv.due)}`, actor(sv.by), sv.note].filter(Boolean).join(" · ") : "—");
  setText("d-escalations", String(a.escalations?.length ?? 0));
  const fu = a.follow_up;
  setText("d-followup", fu ? [fu.satisfied ? t("followup.yes") : t("followup.no"), fu.note, actor(fu.by) + " " + fmtTime(fu.at)].filter(Boolean).join(" · ") : "—");

  const open = a.status !== "resolved";
  $("act-ack").hidden = a.status !== "new";
  $("act-dispatch").hidden = !(a.status === "new" || a.status === "acknowledged");
  $("act-resolve").hidden = !open;
  $("act-followup").hidden = open || !!fu;
  enableActions();

  // Rebuilt only when it changes: the countdown re-renders the detail every
  // second, and a person may be selecting text in the history.
  const lines = (a.history ?? []).map((h) => {
    if (h.action === "earlier") return `${label("h", h.action)} × ${h.count ?? 0}`;
    const note = historyNote(h);
    return `${fmtTime(h.at)} · ${label("h", h.action)} · ${actor(h.by)}${note ? " · " + note : ""}`;
  });
  const hist = $("history");
  const sig = JSON.stringify(lines);
  if (hist.dataset.sig !== sig) {
    hist.dataset.sig = sig;
    hist.replaceChildren(...lines.map((l) => el("li", "", l)));
  }
}

let busy = false;

// enableActions: a unit must be chosen before 分流交办, feedback written
// before 办结反馈.
function enableActions() {
  $("btn-ack").disabled = busy;
  $("btn-dispatch").disabled = busy || $("unit-select").value === "";
  $("btn-resolve").disabled = busy || $("resolve-feedback").value.trim() === "";
  $("btn-followup").disabled = busy;
  $("btn-confirm-false").disabled = busy || $("resolve-feedback").value.trim() === "";
}

function renderUnits() {
  const sel = $("unit-select");
  const keep = sel.value;
  while (sel.options.length > 1) sel.remove(1);
  for (const u of state.units) {
    const o = document.createElement("option");
    o.value = u.id;
    o.textContent = u.name || u.id;
    sel.append(o);
  }
  sel.value = state.units.some((u) => u.id === keep) ? keep : "";
}

function upsertCamera(c) {
  const i = directory.cameras.findIndex((x) => x.id === c.id);
  if (i >= 0) directory.cameras[i] = { ...directory.cameras[i], ...c };
  else directory.cameras.push(c);
  renderCameras();
}

function renderCameras() {
  cameraGroups($("camera-list"), directory.cameras, (c) => {
    const li = el("li");
    li.dataset.id = c.id;
    li.dataset.status = c.status;
    li.append(el("div", "cam-name", c.name || c.id));
    li.append(el("div", "cam-state", cameraState(c) + (c.grid ? ` · ${c.grid}` : "")));
    if (c.since) li.append(el("div", "cam-since", `${t("cam.since")} ${fmtTime(c.since)}`));
    return li;
  });
}

async function refreshCameras() {
  if (await loadCameras()) {
    renderCameras();
    render();
  }
}

// ---- handling actions -------------------------------------------------------

async function act(path, body) {
  const a = state.alerts.get(state.selected);
  if (!a) return;
  $("conflict").hidden = true;
  $("action-error").hidden = true;
  busy = true;
  enableActions();
  try {
    const r = await api("POST", `/alerts/${encodeURIComponent(a.id)}/${path}`, body(a));
    if (r.ok && r.data) {
      upsert(r.data.alert ?? r.data);
      for (const f of ["ack-note", "dispatch-note"]) $(f).value = "";
    } else if (r.status === 409) {
      if (r.data?.alert) upsert(r.data.alert);
      // A person won (已被他人处理) or the camera / the service did
      // (摄像机状态已更新).
      const key = r.data?.by && r.data.by !== "system" ? "conflict" : "conflict.system";
      $("conflict").dataset.i18n = key;
      $("conflict").textContent = t(key);
      $("conflict").hidden = false;
    } else if (r.status !== 401) {
      $("action-error").textContent = `${t("err.action")}: ${r.data?.error ?? r.status}`;
      $("action-error").hidden = false;
    }
  } catch {
    $("action-error").textContent = t("err.network");
    $("action-error").hidden = false;
  } finally {
    busy = false;
    showConfirm(false);
    render();
  }
}

function showConfirm(on) {
  $("confirm-false").hidden = !on;
  $("btn-resolve").hidden = on;
}

function resolve() {
  // 误报 asks first: a false-alarm resolution is final and counts against
  // the camera's record.
  if ($("resolve-false").checked) {
    showConfirm(true);
    $("btn-confirm-false").focus();
    return;
  }
  doResolve();
}

function doResolve() {
  act("resolve", (a) => ({ feedback: $("resolve-feedback").value.trim(), false_alarm: $("resolve-false").checked, version: a.version }));
}

async function openAlert(id) {
  if (!state.alerts.has(id)) await loadAlert(id);
  if (state.alerts.has(id)) select(id);
}

// ---- sound and notice --------------------------------------------------------

let audio = null;
export function unlockAudio() {
  if (!audio && window.AudioContext) {
    try { audio = new AudioContext(); } catch { audio = null; }
  }
  audio?.resume?.();
}

// alarm plays the sound of a severity: critical three high beeps, major two,
// minor one low. The page counts what it played in data-alarms for tests.
function alarm(severity) {
  document.body.dataset.alarms = String(Number(document.body.dataset.alarms ?? 0) + 1);
  if (state.muted) return;
  const tone = { critical: [880, 3], major: [660, 2], minor: [440, 1] }[severity] ?? [440, 1];
  beep(tone[0], tone[1]);
}

// repeatCritical sounds again while a critical alert waits for 受理.
function repeatCritical() {
  if (!state.running || state.muted) return;
  const waiting = [...state.alerts.values()].some((a) => a.severity === "critical" && a.status === "new");
  if (!waiting) return;
  document.body.dataset.repeats = String(Number(document.body.dataset.repeats ?? 0) + 1);
  beep(880, 3);
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

function setMuted(m) {
  state.muted = m;
  const b = $("btn-mute");
  b.setAttribute("aria-pressed", String(m));
  b.dataset.i18n = m ? "mute.on" : "mute.off";
  b.textContent = t(b.dataset.i18n);
}

// askNotify asks for the Notification permission, from a click.
export function askNotify() {
  if (window.Notification && Notification.permission === "default") {
    try { Notification.requestPermission(); } catch { /* old API shape */ }
  }
}

function notify(kind, a) {
  if (!document.hidden || !window.Notification || Notification.permission !== "granted") return;
  try {
    const n = new Notification(t(kind === "reopened" ? "notify.reopened" : "notify.title") + " · " + label("sev", a.severity), {
      body: `${a.camera_name || a.camera} · ${label("type", a.type)} · ${siteName(a.site)}`,
      tag: a.id,
    });
    n.onclick = () => { window.focus(); select(a.id); };
  } catch { /* notifications unavailable */ }
}

// ---- lifecycle ---------------------------------------------------------------

async function loadUnits() {
  try {
    const r = await api("GET", "/units");
    if (r.ok) state.units = Array.isArray(r.data) ? r.data : (r.data?.units ?? []);
  } catch { /* keep what we had */ }
  renderUnits();
  render();
}

export function relabel() {
  setConn($("conn").dataset.state);
  setMuted(state.muted);
  renderBanner();
  renderCameras();
  render();
}

export async function start() {
  if (state.running) return;
  state.running = true;
  state.backoff = 0;
  state.downSince = null;
  document.body.dataset.pane = "list";
  loadSites().then(() => { renderCameras(); render(); });
  loadUnits();
  refreshCameras();
  state.timers.push(setInterval(refreshCameras, 10000));
  // Countdowns, overdue deadlines seen locally, the banner's clock.
  state.timers.push(setInterval(() => { renderDetail(); counters([...state.alerts.values()], Date.now()); renderBanner(); }, 1000));
  state.timers.push(setInterval(repeatCritical, CRITICAL_REPEAT_MS));
  connect();
}

export function stop() {
  state.running = false;
  clearTimeout(state.reconnectTimer);
  for (const id of state.timers) clearInterval(id);
  state.timers = [];
  const ws = state.ws;
  state.ws = null;
  ws?.close(1000);
  setConn("closed");
  state.alerts.clear();
  state.fresh.clear();
  state.lastSeq = null;
  state.selected = null;
  state.downSince = null;
  state.search = null;
  renderBanner();
  render();
  renderDetail();
}

export function init() {
  $("search").addEventListener("submit", (ev) => { ev.preventDefault(); search(false); });
  $("btn-more").addEventListener("click", () => search(true));
  $("btn-clear").addEventListener("click", clearSearch);
  for (const id of ["filter-site", "filter-status", "filter-type", "filter-camera", "filter-from", "filter-to"]) $(id).addEventListener("change", render);
  $("btn-back").addEventListener("click", back);
  // On a phone the filters fold away behind one button.
  $("btn-filters").addEventListener("click", () => {
    const open = document.body.dataset.filters !== "open";
    document.body.dataset.filters = open ? "open" : "";
    $("btn-filters").setAttribute("aria-expanded", String(open));
  });
  $("btn-mute").addEventListener("click", () => setMuted(!state.muted));

  $("btn-ack").addEventListener("click", () => act("ack", (a) => ({ note: $("ack-note").value.trim(), version: a.version })));
  $("unit-select").addEventListener("change", enableActions);
  $("btn-dispatch").addEventListener("click", () => {
    if (!$("unit-select").value) return;
    act("dispatch", (a) => ({ unit: $("unit-select").value, note: $("dispatch-note").value.trim(), version: a.version }));
  });
  $("resolve-feedback").addEventListener("input", enableActions);
  $("btn-resolve").addEventListener("click", resolve);
  $("btn-confirm-false").addEventListener("click", doResolve);
  $("btn-cancel-false").addEventListener("click", () => showConfirm(false));
  $("btn-followup").addEventListener("click", () =>
    act("follow-up", (a) => ({ satisfied: $("followup-satisfied").checked, note: $("followup-note").value.trim() })));
  enableActions();
}
