// The footage workspace (investigator, admin): cameras grouped by site and
// one camera-day as a timeline — recorded footage, gaps (an ongoing outage
// too), alert markers coloured by severity, evidence holds — zoomable from
// 24 h to two minutes. A click plays from that moment (the recorded fMP4
// segments, Range-served, one after another); a drag selects a range to
// export as one MP4 with its manifest, or to put under an evidence hold.
// ?camera=ID&at=T opens the footage of that moment (links from alerts).
// Times are shown in the node's configured zone (GET /settings).
import { t, label } from "./i18n.js";
import {
  API, $, api, el, fmtTime, fmtClock, fmtClockRange, fmtSpan, fmtBytes, fmtDuration, directory, loadCameras, loadSites, loadSettings, settings,
  cameraGroups, cameraState, zoneMidnight, zoneDay,
} from "./common.js";

const DAY = 86400000;
const SPANS = [DAY, 12 * 3600e3, 6 * 3600e3, 3 * 3600e3, 3600e3, 30 * 60e3, 10 * 60e3, 5 * 60e3, 2 * 60e3];
const TICKS = [10e3, 15e3, 30e3, 60e3, 2 * 60e3, 5 * 60e3, 10 * 60e3, 15 * 60e3, 30 * 60e3, 3600e3, 2 * 3600e3, 3 * 3600e3, 6 * 3600e3];
const MAX_EXPORT = 2 * 3600e3; // export.max_range's default

const state = {
  running: false, camera: "", timer: null,
  day: "", dayStart: 0,          // the zone's day shown, and the instant it starts
  view: { start: 0, end: 0 },    // the window of the timeline
  segments: [], gaps: [], alerts: [], holds: [],
  sel: null,                     // {start, end} ms, the selected range
  playing: null,                 // the segment in the player
  playAt: 0,                     // ms of the playhead
  pendingAt: 0,                  // ms to seek to once the player has metadata
  load: 0,                       // generation of the last load, so late answers are dropped
};

// ---- cameras ------------------------------------------------------------------

function renderCameras() {
  cameraGroups($("footage-cameras"), directory.cameras, (c) => {
    const li = el("li");
    li.dataset.id = c.id;
    li.dataset.status = c.status;
    const b = el("button", "cam-pick");
    b.type = "button";
    if (c.id === state.camera) b.setAttribute("aria-current", "true");
    b.append(el("span", "cam-name", c.name || c.id), el("span", "cam-state", cameraState(c)));
    b.addEventListener("click", () => pick(c.id));
    li.append(b);
    return li;
  });
}

function pick(id, at) {
  if (state.camera !== id) {
    state.sel = null;
    stopPlayer();
  }
  state.camera = id;
  document.body.dataset.pane = "detail";
  renderCameras();
  if (at) {
    setDay(zoneDay(new Date(at)));
    zoomAround(at, 10 * 60e3);
  }
  return loadDay();
}

// ---- the day's data ----------------------------------------------------------------

function setDay(day) {
  state.day = day;
  $("footage-date").value = day;
  state.dayStart = zoneMidnight(day).getTime();
  state.view = { start: state.dayStart, end: state.dayStart + DAY };
}

async function getJSON(path) {
  try {
    const r = await api("GET", path);
    return r;
  } catch {
    return null;
  }
}

async function loadDay() {
  const gen = ++state.load;
  const cam = directory.cameras.find((c) => c.id === state.camera);
  renderTitle();
  $("footage-error").hidden = true;
  if (!state.camera) return;
  const day = $("footage-date").value || zoneDay(new Date());
  if (day !== state.day) setDay(day);
  $("footage-empty").hidden = true;
  $("timeline-box").hidden = false;
  const start = new Date(state.dayStart).toISOString(), end = new Date(state.dayStart + DAY).toISOString();
  const id = encodeURIComponent(state.camera);
  const [rec, alerts, holds] = await Promise.all([
    getJSON(`/cameras/${id}/recordings?${new URLSearchParams({ start, end })}`),
    loadAlerts(start, end),
    getJSON(`/holds?${new URLSearchParams({ camera: state.camera, start, end })}`),
  ]);
  if (gen !== state.load) return;
  if (!rec || !rec.ok || !rec.data) {
    state.segments = [];
    state.gaps = [];
    $("footage-error").textContent = `${t("err.load")}${rec ? ": " + (rec.data?.error ?? rec.status) : ""}`;
    $("footage-error").hidden = false;
  } else {
    state.segments = (rec.data.segments ?? []).map((s) => ({ ...s, s: Date.parse(s.start), e: Date.parse(s.end) })).sort((x, y) => x.s - y.s);
    state.gaps = (rec.data.gaps ?? []).map((g) => ({ s: Date.parse(g.start), e: Date.parse(g.end), ongoing: false }));
    addOngoingOutage(cam);
  }
  state.alerts = alerts;
  // Holds by hand may not be served by this node yet (404): none shown.
  // An alert's hold whose alert is still active has no end yet (null).
  state.holds = holds && holds.ok
    ? (holds.data?.holds ?? []).map((h) => ({ ...h, s: Date.parse(h.start), e: h.end ? Date.parse(h.end) : Date.now() }))
      .filter((h) => !h.camera || h.camera === state.camera).sort((x, y) => x.s - y.s)
    : [];
  renderAll();
}

function renderTitle() {
  const cam = directory.cameras.find((c) => c.id === state.camera);
  $("footage-title").textContent = cam ? `${t("footage.title")} · ${cam.name || cam.id}` : t("footage.title");
}

// addOngoingOutage: while the camera is not streaming, the time since its
// last recording is a gap up to now, even where the listing does not say so.
function addOngoingOutage(cam) {
  const now = Date.now();
  if (!cam || cam.status === "online" || now < state.dayStart || now > state.dayStart + DAY + 60e3) return;
  const last = state.segments.length ? state.segments[state.segments.length - 1].e : Math.max(state.dayStart, Date.parse(cam.since) || now);
  const from = Math.max(last, state.dayStart);
  if (now - from < 1000) return;
  const known = state.gaps.find((g) => g.e >= now - 2000 && g.s <= from + 2000);
  if (known) { known.ongoing = true; return; }
  state.gaps.push({ s: from, e: now, ongoing: true });
}

async function loadAlerts(since, until) {
  const out = [];
  let cursor = "";
  for (let page = 0; page < 5; page++) {
    const q = new URLSearchParams({ camera: state.camera, since, until, limit: "200" });
    if (cursor) q.set("cursor", cursor);
    const r = await getJSON(`/alerts?${q}`);
    if (!r || !r.ok || !r.data) break;
    out.push(...(r.data.alerts ?? []));
    cursor = r.data.next_cursor ?? "";
    if (!cursor) break;
  }
  return out.map((a) => ({ ...a, at: Date.parse(a.raised_at) })).sort((x, y) => x.at - y.at);
}

// ---- the timeline ---------------------------------------------------------------

const span = () => state.view.end - state.view.start;
const pct = (ms) => ((ms - state.view.start) / span()) * 100;

// xOf and atX convert between an instant and a pixel of the track (for
// pointer input, and for tests as window.vigilTimeline).
function xOf(ms) {
  const r = $("tl-track").getBoundingClientRect();
  return r.left + ((ms - state.view.start) / span()) * r.width;
}
function atX(x) {
  const r = $("tl-track").getBoundingClientRect();
  const f = Math.min(1, Math.max(0, (x - r.left) / r.width));
  return state.view.start + f * span();
}

function bar(cls, s, e, title) {
  const a = Math.max(s, state.view.start), b = Math.min(e, state.view.end);
  if (b <= a) return null;
  const d = el("div", cls);
  d.style.left = `${pct(a)}%`;
  d.style.width = `max(2px, ${pct(b) - pct(a)}%)`;
  if (title) d.title = title;
  return d;
}

// runs merges segments that follow each other (closer than 2 s) into the
// stretches of footage drawn on the track.
function runs() {
  const out = [];
  for (const s of state.segments) {
    const last = out[out.length - 1];
    if (last && s.s - last.e < 2000) last.e = Math.max(last.e, s.e);
    else out.push({ s: s.s, e: s.e });
  }
  return out;
}

function renderTimeline() {
  const track = $("tl-track");
  const items = [];
  for (const r of runs()) {
    const d = bar("tl-rec", r.s, r.e, fmtClockRange(r.s, r.e));
    if (d) items.push(d);
  }
  for (const g of state.gaps) {
    const d = bar("tl-gap" + (g.ongoing ? " ongoing" : ""), g.s, g.e, `${t(g.ongoing ? "tl.outage" : "tl.gap")} ${fmtClockRange(g.s, g.e)} · ${fmtSpan(g.e - g.s)}`);
    if (d) {
      d.dataset.start = new Date(g.s).toISOString();
      d.dataset.end = new Date(g.e).toISOString();
      items.push(d);
    }
  }
  for (const h of state.holds) {
    const d = bar("tl-hold", h.s, h.e, `${t(h.kind === "alert" ? "hold.of_alert" : "tl.hold")} ${h.case ?? ""} ${h.reason ?? ""}`.trim());
    if (d) {
      d.dataset.id = h.id ?? "";
      d.dataset.kind = h.kind ?? "manual";
      items.push(d);
    }
  }
  for (const a of state.alerts) {
    if (a.at < state.view.start || a.at > state.view.end) continue;
    const m = el("button", "tl-alert");
    m.type = "button";
    m.dataset.id = a.id;
    m.dataset.severity = a.severity;
    m.style.left = `${pct(a.at)}%`;
    m.title = `${fmtClock(a.at)} ${label("sev", a.severity)} · ${label("type", a.type)}`;
    m.setAttribute("aria-label", m.title);
    m.addEventListener("pointerdown", (ev) => ev.stopPropagation());
    m.addEventListener("click", () => jump(a));
    items.push(m);
  }
  if (state.sel) {
    const d = bar("tl-selection", state.sel.start, state.sel.end);
    if (d) items.push(d);
  }
  if (state.playAt >= state.view.start && state.playAt <= state.view.end) {
    const c = el("div", "tl-playhead");
    c.style.left = `${pct(state.playAt)}%`;
    items.push(c);
  }
  const now = Date.now();
  if (now > state.view.start && now < state.view.end) {
    const n = el("div", "tl-now");
    n.style.left = `${pct(now)}%`;
    n.title = t("tl.now");
    items.push(n);
  }
  track.replaceChildren(...items);

  // The axis: ticks on whole steps of the zone's clock.
  const room = Math.max(2, Math.floor(track.getBoundingClientRect().width / 56));
  const step = TICKS.find((s) => span() / s <= Math.min(8, room)) ?? TICKS[TICKS.length - 1];
  const axis = $("tl-axis");
  const ticks = [];
  const first = state.dayStart + Math.ceil((state.view.start - state.dayStart) / step) * step;
  for (let at = first; at <= state.view.end; at += step) {
    const tk = el("span", "tl-tick", fmtClock(at).slice(0, step < 60e3 ? 8 : 5));
    tk.style.left = `${pct(at)}%`;
    ticks.push(tk);
  }
  axis.replaceChildren(...ticks);
  $("tl-span").textContent = spanLabel(span());
  $("tl-in").disabled = span() <= SPANS[SPANS.length - 1];
  $("tl-out").disabled = span() >= DAY;
  $("timeline").setAttribute("aria-valuenow", String(Math.round(((state.playAt || state.view.start) - state.dayStart) / DAY * 100)));
}

function spanLabel(ms) {
  return ms >= 3600e3 ? t("tl.hours", { n: Math.round(ms / 3600e3) }) : t("tl.minutes", { n: Math.round(ms / 60e3) });
}

function zoomAround(center, to) {
  to = Math.min(DAY, Math.max(SPANS[SPANS.length - 1], to));
  let start = center - to / 2;
  start = Math.max(state.dayStart, Math.min(state.dayStart + DAY - to, start));
  state.view = { start, end: start + to };
}

function zoom(dir) {
  const i = SPANS.findIndex((s) => s <= span() + 1);
  const next = SPANS[Math.min(SPANS.length - 1, Math.max(0, (i < 0 ? SPANS.length - 1 : i) + dir))];
  // Zoom around what the person is looking at: the selection, the
  // playhead, or the middle of the window.
  const focus = state.sel ? (state.sel.start + state.sel.end) / 2
    : state.playAt >= state.view.start && state.playAt <= state.view.end ? state.playAt
      : (state.view.start + state.view.end) / 2;
  zoomAround(focus, next);
  renderTimeline();
  renderSegments();
}

function pan(dir) {
  zoomAround((state.view.start + state.view.end) / 2 + dir * span() * 0.5, span());
  renderTimeline();
  renderSegments();
}

// Pointer input: a click plays from that moment, a drag selects a range.
let drag = null;

function onPointerDown(ev) {
  if (ev.button !== 0) return;
  $("timeline").setPointerCapture(ev.pointerId);
  drag = { x: ev.clientX, at: atX(ev.clientX), moved: false };
}

function onPointerMove(ev) {
  if (!drag) return;
  if (!drag.moved && Math.abs(ev.clientX - drag.x) < 5) return;
  drag.moved = true;
  const b = atX(ev.clientX);
  state.sel = { start: Math.min(drag.at, b), end: Math.max(drag.at, b) };
  renderTimeline();
  renderSelection();
}

function onPointerUp(ev) {
  if (!drag) return;
  const d = drag;
  drag = null;
  if (!d.moved) {
    play(d.at);
    return;
  }
  // Whole seconds: what an investigator writes in a report.
  const b = atX(ev.clientX);
  let start = Math.round(Math.min(d.at, b) / 1000) * 1000, end = Math.round(Math.max(d.at, b) / 1000) * 1000;
  if (end - start > MAX_EXPORT) end = start + MAX_EXPORT;
  state.sel = end > start ? { start, end } : null;
  renderTimeline();
  renderSelection();
}

function onKey(ev) {
  const k = ev.key;
  if (k === "ArrowLeft" || k === "ArrowRight") {
    const step = span() / 100;
    const at = (state.playAt || state.view.start) + (k === "ArrowLeft" ? -step : step);
    play(at);
    ev.preventDefault();
  } else if (k === "+" || k === "=") { zoom(1); ev.preventDefault(); }
  else if (k === "-") { zoom(-1); ev.preventDefault(); }
}

// ---- selection and export --------------------------------------------------------

function renderSelection() {
  const box = $("tl-sel");
  const s = state.sel;
  box.hidden = !s;
  if (!s) return;
  box.dataset.start = new Date(s.start).toISOString();
  box.dataset.end = new Date(s.end).toISOString();
  $("sel-text").textContent = `${t("tl.selected")} ${fmtClock(s.start)} – ${fmtClock(s.end)} (${fmtDuration(s.end - s.start)})`;
  const q = new URLSearchParams({ start: box.dataset.start, end: box.dataset.end });
  const id = encodeURIComponent(state.camera);
  const stamp = (ms) => fmtTime(ms).replace(/[^0-9]+/g, "");
  $("btn-export").href = `${API}/cameras/${id}/export?${q}`;
  $("btn-export").download = `${state.camera}-${stamp(s.start)}-${stamp(s.end)}.mp4`;
  $("btn-manifest").href = `${API}/cameras/${id}/export/manifest?${q}`;
  $("btn-manifest").download = `${state.camera}-${stamp(s.start)}-${stamp(s.end)}.manifest.json`;
}

function clearSelection() {
  state.sel = null;
  renderSelection();
  renderTimeline();
}

async function addHold() {
  const s = state.sel;
  if (!s) return;
  const msg = $("hold-msg");
  const body = {
    camera: state.camera, start: new Date(s.start).toISOString(), end: new Date(s.end).toISOString(),
    case: $("hold-case").value.trim(), reason: $("hold-reason").value.trim(),
  };
  let r;
  try { r = await api("POST", "/holds", body); } catch { r = null; }
  delete msg.dataset.i18n;
  if (r && r.ok) {
    msg.dataset.i18n = "hold.saved";
    msg.textContent = t("hold.saved");
    $("hold-case").value = "";
    $("hold-reason").value = "";
    loadDay();
  } else if (r && (r.status === 404 || r.status === 405)) {
    msg.dataset.i18n = "hold.unavailable";
    msg.textContent = t("hold.unavailable");
  } else {
    msg.textContent = `${t("err.action")}: ${r?.data?.error ?? r?.status ?? t("err.network")}`;
  }
}

async function releaseHold(h) {
  let r;
  try { r = await api("DELETE", `/holds/${encodeURIComponent(h.id)}`); } catch { r = null; }
  if (r && r.ok) {
    loadDay();
    return;
  }
  $("footage-error").textContent = `${t("err.action")}: ${r?.data?.error ?? r?.status ?? t("err.network")}`;
  $("footage-error").hidden = false;
}

// ---- playing ---------------------------------------------------------------------

// play starts the player at instant at: the segment that holds it, or the
// next recording after it when at falls in a gap.
function play(at) {
  const segs = state.segments;
  let seg = segs.find((s) => s.s <= at && at < s.e);
  let note = "";
  if (!seg) {
    seg = segs.find((s) => s.s > at);
    if (seg) { note = t("tl.next"); at = seg.s; }
  }
  const v = $("footage-player");
  if (!seg) {
    $("play-info").textContent = t("tl.nothing");
    state.playAt = at;
    renderTimeline();
    return;
  }
  state.playAt = at;
  v.hidden = false;
  startSegment(seg, at);
  $("play-info").dataset.note = note;
  renderPlayInfo();
  renderTimeline();
}

function startSegment(seg, at) {
  const v = $("footage-player");
  state.playing = seg;
  state.pendingAt = at;
  if (v.getAttribute("src") !== seg.url) {
    v.setAttribute("src", seg.url);
    v.preload = "auto";
    v.load();
  } else {
    seekPending();
  }
  v.play().catch(() => {});
}

function seekPending() {
  const v = $("footage-player");
  const seg = state.playing;
  if (!seg || !state.pendingAt || v.readyState < 1) return;
  v.currentTime = Math.max(0, (state.pendingAt - seg.s) / 1000);
  state.pendingAt = 0;
}

function onTimeUpdate() {
  const v = $("footage-player");
  if (!state.playing || state.pendingAt) return;
  state.playAt = state.playing.s + v.currentTime * 1000;
  renderPlayInfo();
  // Keep the playhead in the window while playing.
  if (state.playAt > state.view.end && span() < DAY) zoomAround(state.playAt + span() * 0.4, span());
  renderTimeline();
}

// onEnded continues with the next segment, across a gap too.
function onEnded() {
  const cur = state.playing;
  if (!cur) return;
  const next = state.segments.find((s) => s.s >= cur.e - 1000 && s !== cur && s.s > cur.s);
  if (next) {
    $("play-info").dataset.note = next.s - cur.e > 2000 ? t("tl.next") : "";
    startSegment(next, next.s);
  }
}

function renderPlayInfo() {
  const p = $("play-info");
  if (!state.playing) { p.textContent = ""; return; }
  p.textContent = `${t("tl.playing")} ${fmtTime(state.playAt)}` + (p.dataset.note ? ` · ${p.dataset.note}` : "");
}

function stopPlayer() {
  const v = $("footage-player");
  v.pause();
  v.removeAttribute("src");
  v.load();
  v.hidden = true;
  state.playing = null;
  state.playAt = 0;
  state.pendingAt = 0;
  $("play-info").textContent = "";
}

// jump shows an alert's moment: ten minutes around it, playing from
// pre_roll before it.
function jump(a) {
  zoomAround(a.at, Math.min(span(), 10 * 60e3));
  play(a.at - settings.pre_roll_s * 1000);
}

// reveal brings the player into view after a play from the lists below
// it: on a phone, or down a long list, the footage started out of sight.
function reveal() {
  const v = $("footage-player");
  if (v.hidden) return;
  // The player, then the line above it that says what is playing.
  v.scrollIntoView({ block: "nearest" });
  $("play-info").scrollIntoView({ block: "nearest" });
}

// ---- lists ----------------------------------------------------------------------

function renderAlerts() {
  const ul = $("footage-alerts");
  ul.replaceChildren(...state.alerts.map((a) => {
    const li = el("li");
    li.dataset.id = a.id;
    li.dataset.severity = a.severity;
    const b = el("button", "link", `${fmtClock(a.at)} · ${label("sev", a.severity)} · ${label("type", a.type)} · ${label("status", a.status)}`);
    b.type = "button";
    b.addEventListener("click", () => { jump(a); reveal(); });
    li.append(el("span", "sev-dot"), b);
    return li;
  }));
  if (state.alerts.length === 0) ul.append(el("li", "empty", t("footage.no_alerts")));
}

function renderHolds() {
  const ul = $("footage-holds");
  ul.replaceChildren(...state.holds.map((h) => {
    const li = el("li");
    li.dataset.id = h.id ?? "";
    li.dataset.kind = h.kind ?? "manual";
    const end = h.end ? fmtClock(h.e) : t("hold.open");
    const what = h.kind === "alert" ? [t("hold.of_alert"), label("holdreason", h.reason)] : [h.case || "—", h.reason, h.by];
    li.append(el("span", "", [`${fmtTime(h.s)} – ${end}`, ...what].filter(Boolean).join(" · ")));
    // An alert's hold ends with its alert; only holds by hand are released here.
    if (h.id && h.kind !== "alert") {
      const b = el("button", "secondary", t("hold.release"));
      b.type = "button";
      // Releasing evidence takes a second click: 确认解除.
      b.addEventListener("click", () => {
        if (b.dataset.armed) { releaseHold(h); return; }
        b.dataset.armed = "1";
        b.className = "danger";
        b.textContent = t("hold.release_confirm");
      });
      li.append(b);
    }
    return li;
  }));
  if (state.holds.length === 0) ul.append(el("li", "empty", t("footage.no_holds")));
}

// renderSegments lists the segments and gaps inside the window, newest
// first (at most 300: zoom in for the rest).
function renderSegments() {
  const list = $("footage-segments");
  const inView = (s, e) => e > state.view.start && s < state.view.end;
  const items = [
    ...state.segments.filter((s) => inView(s.s, s.e)).map((s) => ({ at: s.s, seg: s })),
    ...state.gaps.filter((g) => inView(g.s, g.e)).map((g) => ({ at: g.s, gap: g })),
  ].sort((x, y) => y.at - x.at);
  const shown = items.slice(0, 300);
  list.replaceChildren(...shown.map((it) => {
    const li = el("li");
    if (it.gap) {
      li.className = "gap";
      // Every break is listed with its length, a sub-second one too.
      li.textContent = `${fmtClockRange(it.gap.s, it.gap.e)} · ${t(it.gap.ongoing ? "tl.outage" : "footage.gap")} · ${fmtSpan(it.gap.e - it.gap.s)}`;
      return li;
    }
    const s = it.seg;
    li.dataset.id = s.id;
    li.append(el("span", "seg-time", fmtClockRange(s.s, s.e)));
    li.append(el("span", "seg-size", `${fmtSpan(Number.isFinite(s.duration_s) ? s.duration_s * 1000 : s.e - s.s)} · ${fmtBytes(s.bytes)}`));
    const playB = el("button", "secondary", t("footage.play"));
    playB.type = "button";
    playB.addEventListener("click", () => { play(s.s); reveal(); });
    const dl = el("a", "download", t("footage.download"));
    dl.href = s.url;
    dl.download = "";
    li.append(playB, dl);
    return li;
  }));
  if (items.length > shown.length) list.append(el("li", "empty", t("footage.more", { n: items.length - shown.length })));
  // Nothing in the window is not nothing that day: say which.
  if (items.length === 0) list.append(el("li", "empty", t(state.segments.length && span() < DAY ? "footage.none_in_view" : "footage.none")));
}

function renderAll() {
  renderTimeline();
  renderSelection();
  renderAlerts();
  renderHolds();
  renderSegments();
}

// ---- lifecycle ----------------------------------------------------------------------

export async function start() {
  state.running = true;
  document.body.dataset.pane = "list";
  await Promise.all([loadSites(), loadSettings()]);
  if (!state.day) setDay(zoneDay(new Date()));
  if (await loadCameras()) renderCameras();
  // ?camera=ID&at=T: the footage of an alert's moment.
  const q = new URLSearchParams(location.search);
  const cam = q.get("camera"), at = Date.parse(q.get("at") ?? "");
  if (cam && directory.cameras.some((c) => c.id === cam)) {
    await pick(cam, Number.isFinite(at) ? at : 0);
    if (Number.isFinite(at) && state.camera === cam) play(at - settings.pre_roll_s * 1000);
  }
  state.timer = setInterval(async () => {
    if (await loadCameras()) renderCameras();
    // Today's timeline follows the recordings as they are written.
    if (state.camera && Date.now() < state.dayStart + DAY + 60e3 && !drag) loadDay();
  }, 15000);
}

export function stop() {
  state.running = false;
  state.camera = "";
  state.sel = null;
  state.load++;
  clearInterval(state.timer);
  stopPlayer();
  $("footage-cameras").replaceChildren();
  $("footage-segments").replaceChildren();
  $("footage-empty").hidden = false;
  $("timeline-box").hidden = true;
}

export function relabel() {
  $("tl-left").title = t("tl.earlier");
  $("tl-left").setAttribute("aria-label", t("tl.earlier"));
  $("tl-right").title = t("tl.later");
  $("tl-right").setAttribute("aria-label", t("tl.later"));
  $("timeline").setAttribute("aria-label", t("tl.label"));
  if (!state.running) return;
  renderCameras();
  if (state.camera) {
    renderTitle();
    renderAll();
    renderPlayInfo();
  }
}

export function init() {
  relabel();
  $("footage-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadDay(); });
  $("footage-date").addEventListener("change", () => { if (state.camera) loadDay(); });
  $("btn-footage-back").addEventListener("click", () => { document.body.dataset.pane = "list"; });
  $("tl-in").addEventListener("click", () => zoom(1));
  $("tl-out").addEventListener("click", () => zoom(-1));
  $("tl-left").addEventListener("click", () => pan(-1));
  $("tl-right").addEventListener("click", () => pan(1));
  $("tl-day").addEventListener("click", () => { state.view = { start: state.dayStart, end: state.dayStart + DAY }; renderTimeline(); renderSegments(); });
  const tl = $("timeline");
  tl.addEventListener("pointerdown", onPointerDown);
  tl.addEventListener("pointermove", onPointerMove);
  tl.addEventListener("pointerup", onPointerUp);
  tl.addEventListener("pointercancel", () => { drag = null; });
  tl.addEventListener("keydown", onKey);
  tl.addEventListener("wheel", (ev) => {
    if (!ev.ctrlKey) return; // a pinch, or ctrl+wheel; plain wheel scrolls the page
    ev.preventDefault();
    zoomAround(atX(ev.clientX), ev.deltaY < 0 ? span() / 2 : span() * 2);
    renderTimeline();
  }, { passive: false });
  $("btn-sel-clear").addEventListener("click", clearSelection);
  $("btn-hold").addEventListener("click", addHold);
  const v = $("footage-player");
  v.addEventListener("loadedmetadata", seekPending);
  v.addEventListener("timeupdate", onTimeUpdate);
  v.addEventListener("ended", onEnded);
  v.addEventListener("error", () => {
    if (!v.getAttribute("src")) return;
    $("play-info").textContent = `${t("tl.cannot_play")} (${v.error?.code ?? "?"})`;
  });
  // For tests and for whoever inspects the page.
  window.vigilTimeline = { xOf, atX, state };
}
