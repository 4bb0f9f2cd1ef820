// The investigator's footage workspace: cameras grouped by site, and the
// recordings of a chosen camera and day (segments with play and download,
// gaps listed). The timeline and export UI come with "Vigil 14".
import { t } from "./i18n.js";
import { $, api, el, fmtClock, fmtBytes, directory, loadCameras, loadSites, cameraGroups, cameraState } from "./common.js";

const state = { running: false, camera: "", timer: null };

function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

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

function pick(id) {
  state.camera = id;
  document.body.dataset.pane = "detail";
  renderCameras();
  loadRecordings();
}

async function loadRecordings() {
  const cam = directory.cameras.find((c) => c.id === state.camera);
  $("footage-title").textContent = cam ? `${t("footage.title")} · ${cam.name || cam.id}` : t("footage.title");
  $("footage-error").hidden = true;
  if (!state.camera) return;
  $("footage-empty").hidden = true;
  const day = $("footage-date").value || today();
  const start = new Date(day + "T00:00:00"), end = new Date(start.getTime() + 86400000);
  const q = new URLSearchParams({ start: start.toISOString(), end: end.toISOString() });
  let r;
  try { r = await api("GET", `/cameras/${encodeURIComponent(state.camera)}/recordings?${q}`); } catch { r = null; }
  const list = $("footage-segments");
  if (!r || !r.ok || !r.data) {
    list.replaceChildren();
    $("footage-error").textContent = `${t("err.load")}${r ? ": " + (r.data?.error ?? r.status) : ""}`;
    $("footage-error").hidden = false;
    return;
  }
  const items = [
    ...(r.data.segments ?? []).map((s) => ({ at: s.start, seg: s })),
    ...(r.data.gaps ?? []).map((g) => ({ at: g.start, gap: g })),
  ].sort((x, y) => Date.parse(y.at) - Date.parse(x.at));
  list.replaceChildren(...items.map((it) => {
    const li = el("li");
    if (it.gap) {
      li.className = "gap";
      li.textContent = `${fmtClock(it.gap.start)} – ${fmtClock(it.gap.end)} · ${t("footage.gap")}`;
      return li;
    }
    const s = it.seg;
    li.dataset.id = s.id;
    li.append(el("span", "seg-time", `${fmtClock(s.start)} – ${fmtClock(s.end)}`));
    li.append(el("span", "seg-size", `${Math.round(s.duration_s ?? 0)} s · ${fmtBytes(s.bytes)}`));
    const play = el("button", "secondary", t("footage.play"));
    play.type = "button";
    play.addEventListener("click", () => {
      const v = $("footage-player");
      v.hidden = false;
      v.src = s.url;
      v.play().catch(() => {});
    });
    const dl = el("a", "download", t("footage.download"));
    dl.href = s.url;
    dl.download = "";
    li.append(play, dl);
    return li;
  }));
  if (items.length === 0) list.append(el("li", "empty", t("footage.none")));
}

export async function start() {
  state.running = true;
  document.body.dataset.pane = "list";
  if (!$("footage-date").value) $("footage-date").value = today();
  await loadSites();
  if (await loadCameras()) renderCameras();
  state.timer = setInterval(async () => { if (await loadCameras()) renderCameras(); }, 15000);
}

export function stop() {
  state.running = false;
  state.camera = "";
  clearInterval(state.timer);
  $("footage-cameras").replaceChildren();
  $("footage-segments").replaceChildren();
  $("footage-empty").hidden = false;
  $("footage-player").hidden = true;
  $("footage-player").removeAttribute("src");
}

export function relabel() {
  if (!state.running) return;
  renderCameras();
  if (state.camera) loadRecordings();
}

export function init() {
  $("footage-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadRecordings(); });
  $("btn-footage-back").addEventListener("click", () => { document.body.dataset.pane = "list"; });
}
