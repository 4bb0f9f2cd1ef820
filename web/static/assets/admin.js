// The admin's views: camera health grouped by site, the cluster's nodes
// (GET /nodes: this node alone on the embedded journal), and the audit log
// with paging.
import { t, label } from "./i18n.js";
import { $, api, el, fmtTime, directory, loadCameras, loadSites, loadSettings, cameraGroups, cameraState } from "./common.js";
import * as footage from "./footage.js";

const state = { running: false, tab: "cameras", timer: null, auditSince: 0, audit: [], footage: false, nodes: null };

async function loadNodes() {
  let r;
  try { r = await api("GET", "/nodes"); } catch { return; }
  if (!r.ok || !r.data) return;
  state.nodes = r.data;
  renderNodes();
}

function renderNodes() {
  const d = state.nodes;
  if (!d) return;
  $("admin-nodes-note").hidden = !!d.cluster;
  $("node-list").replaceChildren(...(d.nodes ?? []).map((n) => {
    const li = el("li");
    li.dataset.id = n.id;
    li.append(el("div", "cam-name", `${n.id}${n.zone ? " · " + n.zone : ""}`));
    const cams = (n.cameras ?? []).join(", ") || "—";
    li.append(el("div", "cam-state", `${t("node.cameras")} ${cams}`));
    li.append(el("div", "cam-since", `${t("node.heartbeat")} ${fmtTime(n.last_heartbeat)} · ${n.version ?? ""}`));
    if (n.registry_differs) li.append(el("div", "badge-overdue", t("node.registry_differs")));
    return li;
  }));
}

function renderCameras() {
  cameraGroups($("admin-camera-list"), directory.cameras, (c) => {
    const li = el("li");
    li.dataset.id = c.id;
    li.dataset.status = c.status;
    li.append(el("div", "cam-name", c.name || c.id));
    const facts = [cameraState(c), c.id, c.grid, c.codec, c.fps ? `${Math.round(c.fps)} fps` : "",
      c.bitrate_bps ? `${(c.bitrate_bps / 1e6).toFixed(1)} Mbit/s` : "",
      c.recording ? t("cam.recording") : t("cam.not_recording"),
      `${t("cam.reconnects")} ${c.reconnects ?? 0}`,
      c.node ? `${t("cam.node")} ${c.node}${c.unreachable ? " (" + t("cam.node_unreachable") + ")" : ""}` : ""].filter(Boolean);
    li.append(el("div", "cam-state", facts.join(" · ")));
    if (c.since) li.append(el("div", "cam-since", `${t("cam.since")} ${fmtTime(c.since)}`));
    return li;
  });
}

function show(tab) {
  state.tab = tab;
  // The footage workspace is the investigator's view, open to admins too.
  document.body.dataset.view = tab === "footage" ? "footage" : "admin";
  if (tab === "footage" && !state.footage) {
    state.footage = true;
    footage.start();
  }
  for (const sec of document.querySelectorAll("#admin .admin-pane")) sec.hidden = sec.dataset.tab !== tab;
  for (const b of document.querySelectorAll("#admin-nav button")) b.setAttribute("aria-current", String(b.dataset.tab === tab));
  document.body.dataset.tab = tab;
  // The log grows while the page is open: each visit fetches what is new.
  if (tab === "audit") loadAudit();
  if (tab === "nodes") loadNodes();
}

let auditLoading = null; // the request under way: a second call waits for it

function loadAudit() {
  auditLoading ??= fetchAudit().finally(() => { auditLoading = null; });
  return auditLoading;
}

async function fetchAudit() {
  let r;
  try { r = await api("GET", `/audit?since=${state.auditSince}&limit=200`); } catch { return; }
  if (!r.ok || !r.data || !state.running) return;
  const recs = r.data.records ?? [];
  const seen = new Set(state.audit.map((a) => a.seq));
  state.audit.push(...recs.filter((a) => !seen.has(a.seq)));
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
  // Times (audit, heartbeats, camera states) in the configured zone, as on
  // every other view: the settings first.
  await Promise.all([loadSites(), loadSettings()]);
  if (!state.running) return;
  show(new URLSearchParams(location.search).has("camera") ? "footage" : "cameras");
  if (await loadCameras()) renderCameras();
  state.timer = setInterval(async () => {
    if (await loadCameras()) renderCameras();
    if (state.tab === "audit" && document.body.dataset.view === "admin") loadAudit();
  }, 10000);
}

export function stop() {
  state.running = false;
  clearInterval(state.timer);
  if (state.footage) footage.stop();
  state.footage = false;
  state.audit = [];
  state.auditSince = 0;
  $("admin-camera-list").replaceChildren();
  $("audit-list").replaceChildren();
}

export function relabel() {
  if (!state.running) return;
  renderCameras();
  renderAudit();
  renderNodes();
  if (state.footage) footage.relabel();
}

export function init() {
  for (const b of document.querySelectorAll("#admin-nav button")) b.addEventListener("click", () => show(b.dataset.tab));
  $("btn-audit-more").addEventListener("click", loadAudit);
}
