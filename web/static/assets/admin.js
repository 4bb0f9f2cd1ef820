// The admin's views: camera health grouped by site, nodes (a placeholder
// until clustering), and the audit log with paging.
import { t, label } from "./i18n.js";
import { $, api, el, fmtTime, directory, loadCameras, loadSites, cameraGroups, cameraState } from "./common.js";

const state = { running: false, tab: "cameras", timer: null, auditSince: 0, audit: [] };

function renderCameras() {
  cameraGroups($("admin-camera-list"), directory.cameras, (c) => {
    const li = el("li");
    li.dataset.id = c.id;
    li.dataset.status = c.status;
    li.append(el("div", "cam-name", c.name || c.id));
    const facts = [cameraState(c), c.id, c.grid, c.codec, c.fps ? `${Math.round(c.fps)} fps` : "",
      c.bitrate_bps ? `${(c.bitrate_bps / 1e6).toFixed(1)} Mbit/s` : "",
      c.recording ? t("cam.recording") : t("cam.not_recording"),
      `${t("cam.reconnects")} ${c.reconnects ?? 0}`].filter(Boolean);
    li.append(el("div", "cam-state", facts.join(" · ")));
    if (c.since) li.append(el("div", "cam-since", `${t("cam.since")} ${fmtTime(c.since)}`));
    return li;
  });
}

function show(tab) {
  state.tab = tab;
  for (const sec of document.querySelectorAll("#admin .admin-pane")) sec.hidden = sec.dataset.tab !== tab;
  for (const b of document.querySelectorAll("#admin-nav button")) b.setAttribute("aria-current", String(b.dataset.tab === tab));
  document.body.dataset.tab = tab;
  if (tab === "audit" && state.audit.length === 0) loadAudit();
}

async function loadAudit() {
  let r;
  try { r = await api("GET", `/audit?since=${state.auditSince}&limit=200`); } catch { return; }
  if (!r.ok || !r.data) return;
  const recs = r.data.records ?? [];
  state.audit.push(...recs);
  state.auditSince = r.data.next_since ?? state.auditSince;
  $("btn-audit-more").hidden = recs.length < 200;
  renderAudit();
}

function renderAudit() {
  $("audit-list").replaceChildren(...[...state.audit].reverse().map((a) => {
    const li = el("li");
    li.textContent = `${fmtTime(a.at)} · ${a.by === "system" ? t("actor.system") : a.by} · ${label("audit", a.action)} · ${a.object}`;
    return li;
  }));
  $("audit-empty").hidden = state.audit.length > 0;
}

export async function start() {
  state.running = true;
  show("cameras");
  await loadSites();
  if (await loadCameras()) renderCameras();
  state.timer = setInterval(async () => { if (await loadCameras()) renderCameras(); }, 10000);
}

export function stop() {
  state.running = false;
  clearInterval(state.timer);
  state.audit = [];
  state.auditSince = 0;
  $("admin-camera-list").replaceChildren();
  $("audit-list").replaceChildren();
}

export function relabel() {
  if (!state.running) return;
  renderCameras();
  renderAudit();
}

export function init() {
  for (const b of document.querySelectorAll("#admin-nav button")) b.addEventListener("click", () => show(b.dataset.tab));
  $("btn-audit-more").addEventListener("click", loadAudit);
}
