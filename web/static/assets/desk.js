// The response desk's board (应急值守台): the live alert list fed by the
// websocket, the detail with its handling actions, the camera panel, search
// with the API's cursor paging, sound, tab title and notifications.
//
// The board survives a lost connection: it stays on screen under a banner
// while the page reconnects with backoff and `since`; only a 401 (handled
// by app.js) returns to the login view.
import { t, label, currentLang } from "./i18n.js";
import {
  API, $, api, el, fmtTime, fmtDuration, directory, loadCameras, loadSites, loadSettings, settings, siteName, cameraGroups, cameraState,
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
  const types = ["motion", "tamper", "video_loss", "line_crossing", "intrusion", "io_alarm", "camera_offline", "recording_failure", "storage_full", "recording_tampered", "other"];
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
  for (const id of thumbs.keys()) if (!state.alerts.has(id)) thumbs.delete(id);
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
  b.append(thumb(a));
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

// snapshotURL is the alert's own snapshot (evidence, taken at raised_at)
// or, until it is stored, the camera's latest picture.
function snapshotURL(a) {
  return a.snapshot?.url || `${API}/cameras/${encodeURIComponent(a.camera)}/snapshot`;
}

// thumbs keeps each row's thumbnail between renders (the board re-renders
// on every change): one request per picture, not one per render.
const thumbs = new Map(); // alert id → {src, node}

function thumb(a) {
  const src = snapshotURL(a);
  const kept = thumbs.get(a.id);
  if (kept && kept.src === src) return kept.node;
  const entry = { src, node: null };
  const img = el("img", "thumb");
  entry.node = img;
  thumbs.set(a.id, entry);
  img.loading = "lazy";
  img.decoding = "async";
  img.alt = "";
  img.width = 96;
  img.height = 54;
  // No picture (camera offline, no decoder): a quiet placeholder, not a
  // broken-image icon.
  img.addEventListener("error", () => {
    const none = el("span", "thumb none", t("snap.no_pic"));
    entry.node = none;
    img.replaceWith(none);
  }, { once: true });
  img.src = src;
  return img;
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
    closeLive();
    clip.id = "";
    if (a) showClip(a);
  }
  document.body.dataset.pane = "detail";
  render();
  $("detail").scrollTop = 0;
  if (matchMedia("(max-width: 759px)").matches) window.scrollTo(0, 0);
}

function back() {
  closeLive();
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
  renderScene(a);
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

// ---- the scene: snapshot, live view, clip -------------------------------------

function renderScene(a) {
  const img = $("d-snapshot");
  const src = snapshotURL(a);
  if (img.getAttribute("src") !== src) {
    img.classList.remove("broken");
    img.setAttribute("src", src);
  }
  img.alt = t("snap.alt");
  const cap = $("d-snapshot-cap");
  cap.dataset.kind = img.classList.contains("broken") ? "none" : a.snapshot ? "alert" : snapshotExpected(a) ? "camera" : "missing";
  cap.textContent = cap.dataset.kind === "none" ? t("snap.none")
    : cap.dataset.kind === "alert" ? `${t("snap.alert")} · ${fmtTime(a.snapshot.at)}` : t("snap." + cap.dataset.kind);
  const b = $("btn-live");
  b.dataset.i18n = live ? "live.close" : "live.open";
  b.textContent = t(b.dataset.i18n);
  b.setAttribute("aria-pressed", String(!!live));
  if (clip.why) renderClipWhy();
  const ls = $("live-state");
  if (live && ls.dataset.state) ls.textContent = t(ls.dataset.state, liveVars ?? undefined);
  const v = $("clip");
  if (v.getAttribute("poster") !== src) v.setAttribute("poster", src);
}

// snapshotExpected: an alert's own snapshot normally follows its raise within
// seconds; past SNAPSHOT_DUE_MS, or once resolved (a resolved alert gets
// none), it is not coming, and the picture shown is only the camera's
// current one — not the scene of the alert.
const SNAPSHOT_DUE_MS = 30000;
function snapshotExpected(a) {
  return a.status !== "resolved" && Date.now() - Date.parse(a.raised_at) < SNAPSHOT_DUE_MS;
}

// clip: what the player shows for the selected alert. why is the i18n key
// of the reason there is no footage (with n seconds for 录像写入中).
const clip = { id: "", why: "", n: 0, due: 0, timer: null, offset: 0, positioned: false };

// showClip asks whether the alert's clip exists (HEAD: not audited, no
// media sent) and puts either the player, positioned at the alert's
// moment, or the reason there is no footage in its place.
async function showClip(a) {
  clearTimeout(clip.timer);
  const id = a.id;
  clip.id = id;
  const src = a.clip?.url || `${API}/alerts/${encodeURIComponent(id)}/clip`;
  const v = $("clip");
  if (v.getAttribute("src") !== src) v.setAttribute("src", src);
  let r;
  try { r = await fetch(src, { method: "HEAD", credentials: "same-origin" }); } catch { r = null; }
  if (clip.id !== id) return;
  if (r && r.ok) {
    // The file starts at the keyframe at or before the clip's start
    // (X-Vigil-From); the alert's moment is pre_roll into the clip.
    const from = Date.parse(r.headers.get("X-Vigil-From") || a.clip?.start || a.raised_at);
    clip.offset = Math.max(0, (Date.parse(a.raised_at) - from) / 1000) || 0;
    clip.positioned = false;
    clip.why = "";
    v.dataset.offset = String(clip.offset);
    v.hidden = false;
    $("clip-why").hidden = true;
    if (v.readyState >= 1) positionClip();
    return;
  }
  let code = "";
  if (r && r.status === 404) {
    // HEAD carries no body: ask again with GET for the code; an answer
    // with media (the footage just arrived) is cut at once.
    const ctl = new AbortController();
    try {
      const g = await fetch(src, { credentials: "same-origin", signal: ctl.signal });
      if (g.ok) { ctl.abort(); return showClip(a); }
      code = (await g.json().catch(() => null))?.code ?? "";
    } catch { /* keep "" */ }
    if (clip.id !== id) return;
  }
  v.hidden = true;
  const cam = directory.cameras.find((c) => c.id === a.camera);
  // A segment is served once it closes, at the first keyframe after the
  // segment length: the one being written when the alert was raised
  // closes at most a segment (and a keyframe interval) later.
  const due = Date.parse(a.raised_at) + (settings.segment_s + 3) * 1000;
  const left = Math.ceil((due - Date.now()) / 1000);
  if (!r || (r.status !== 404 && !r.ok)) {
    clip.why = "clip.error";
    clip.n = r ? r.status : 0;
  } else if (cam && (cam.status === "offline" || cam.status === "disabled" || cam.status === "connecting")) {
    clip.why = "clip.offline";
  } else if (code === "no_footage" || code === "") {
    if (cam && cam.recording !== false && left > 0) {
      clip.why = "clip.writing";
      clip.due = due;
      clip.timer = setTimeout(() => { if (clip.id === id) showClip(state.alerts.get(id) ?? a); }, Math.min(left, 5) * 1000);
    } else {
      clip.why = "clip.none";
    }
  } else {
    clip.why = "clip.none";
  }
  renderClipWhy();
}

function renderClipWhy() {
  const p = $("clip-why");
  p.dataset.why = clip.why;
  const n = clip.why === "clip.writing" ? Math.max(1, Math.ceil((clip.due - Date.now()) / 1000)) : clip.n;
  p.textContent = t(clip.why, { n });
  p.hidden = !clip.why;
}

function positionClip() {
  const v = $("clip");
  if (clip.positioned || !clip.offset) return;
  clip.positioned = true;
  v.currentTime = Math.min(clip.offset, Number.isFinite(v.duration) ? Math.max(0, v.duration - 0.1) : clip.offset);
}

// live: the open WHEP session of the selected alert's camera.
let live = null;

async function openLive() {
  const a = state.alerts.get(state.selected);
  if (!a) return;
  closeLive();
  const cam = a.camera;
  const session = { cam, pc: null, location: "", timer: null, closed: false };
  live = session;
  $("live-box").hidden = false;
  liveState("live.connecting");
  renderDetail();
  const v = $("live");
  v.hidden = false;
  $("live-snap").hidden = true;
  let pc;
  try {
    pc = new RTCPeerConnection();
  } catch {
    liveState("live.unsupported");
    return;
  }
  session.pc = pc;
  window.vigilLive = pc; // for tests and for whoever inspects the page: getStats()
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.ontrack = (ev) => {
    stream.addTrack(ev.track);
    if (v.srcObject !== stream) v.srcObject = stream;
    v.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => {
    if (live !== session) return;
    const s = pc.connectionState;
    if (s === "connected") liveState("live.on");
    else if (s === "failed" || s === "disconnected") liveState("live.lost");
  };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    // No trickle: the offer goes with the candidates gathered in 1 s.
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 1000);
    });
    if (live !== session) return;
    const res = await fetch(`${API}/cameras/${encodeURIComponent(cam)}/whep`, {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp,
    });
    if (res.status === 201) {
      const loc = res.headers.get("Location") || "";
      session.location = loc;
      const answer = await res.text();
      if (live !== session) { endSession(session); return; }
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
      return;
    }
    const err = await res.json().catch(() => null);
    if (live !== session) return;
    pc.close();
    session.pc = null;
    if (res.status === 406 && err?.code === "h265_not_supported") {
      // Browsers on Linux have no H.265 in WebRTC: the picture, refreshed
      // every second, instead.
      v.hidden = true;
      const img = $("live-snap");
      img.hidden = false;
      img.alt = t("snap.alt");
      const refresh = () => { img.src = `${API}/cameras/${encodeURIComponent(cam)}/snapshot?_=${Date.now()}`; };
      refresh();
      session.timer = setInterval(refresh, 1000);
      liveState("live.h265");
      return;
    }
    const key = { camera_offline: "live.offline", max_viewers: "live.full", not_found: "live.unknown" }[err?.code] ?? "";
    if (key) liveState(key);
    else liveState("live.error", { e: err?.error ?? res.status });
  } catch (e) {
    if (live === session) liveState("live.error", { e: String(e?.message ?? e) });
  }
}

let liveVars = null; // the placeholders of the live view's state, kept for a relabel

function liveState(key, vars) {
  liveVars = vars ?? null;
  const p = $("live-state");
  p.dataset.state = key;
  p.textContent = key ? t(key, vars) : "";
  p.hidden = !key;
}

function endSession(s) {
  if (s.closed) return;
  s.closed = true;
  clearInterval(s.timer);
  s.pc?.close();
  if (s.location) {
    // keepalive: the DELETE still goes out when the page is closing.
    fetch(s.location, { method: "DELETE", credentials: "same-origin", keepalive: true, headers: { "Content-Type": "application/json" } }).catch(() => {});
  }
}

export function closeLive() {
  const s = live;
  live = null;
  if (window.vigilLive && s && window.vigilLive === s.pc) window.vigilLive = null;
  const v = $("live");
  v.srcObject = null;
  $("live-snap").removeAttribute("src");
  $("live-box").hidden = true;
  if (s) endSession(s);
  if (s && state.running) renderDetail(); // the button reads 实时画面 again
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
    let r = await api("POST", `/alerts/${encodeURIComponent(a.id)}/${path}`, body(a));
    // The camera or the service changed the alert meanwhile (a repeat, its
    // snapshot, its signal's end): the officer's decision still stands, so
    // the action is sent once more on the current version. A person's
    // change is shown instead, for the officer to look at first.
    if (r.status === 409 && r.data?.code === "conflict" && r.data?.alert && (!r.data.by || r.data.by === "system")) {
      upsert(r.data.alert);
      r = await api("POST", `/alerts/${encodeURIComponent(a.id)}/${path}`, body(r.data.alert));
    }
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
  for (const { node } of thumbs.values()) if (node.classList.contains("none")) node.textContent = t("snap.no_pic");
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
  // Times on the board and the camera panel are the node's zone: both are
  // drawn again once it is known.
  loadSettings().then(() => { renderCameras(); render(); });
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
  closeLive();
  clearTimeout(clip.timer);
  clip.id = "";
  clearTimeout(state.reconnectTimer);
  for (const id of state.timers) clearInterval(id);
  state.timers = [];
  const ws = state.ws;
  state.ws = null;
  ws?.close(1000);
  setConn("closed");
  state.alerts.clear();
  state.fresh.clear();
  thumbs.clear();
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
  $("btn-live").addEventListener("click", () => (live ? closeLive() : openLive()));
  $("d-snapshot").addEventListener("error", () => { $("d-snapshot").classList.add("broken"); renderDetail(); });
  $("d-snapshot").addEventListener("load", () => { $("d-snapshot").classList.remove("broken"); });
  $("clip").addEventListener("loadedmetadata", positionClip);
  addEventListener("pagehide", closeLive);

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
