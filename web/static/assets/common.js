// Shared pieces of the views: the API client, the sites and cameras every
// view names, and formatting. Data only ever reaches the page through
// textContent and attributes, never innerHTML.
import { t, label, currentLang } from "./i18n.js";

export const API = "/api/v1";
export const $ = (id) => document.getElementById(id);

// onUnauthorized is set by app.js: a 401 anywhere returns to the login view.
export const hooks = { onUnauthorized: () => {} };

// api calls the API with the session cookie. It resolves {status, ok, data}
// for any HTTP answer and rejects only when the server cannot be reached.
export async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  // A change made with the session cookie must say it is JSON (the
  // server's CSRF rule), even without a body (DELETE /session).
  if (method !== "GET" && method !== "HEAD") opts.headers["Content-Type"] = "application/json";
  if (body !== undefined) opts.body = JSON.stringify(body);
  const res = await fetch(API + path, opts);
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (res.status === 401 && path !== "/session") hooks.onUnauthorized();
  return { status: res.status, ok: res.ok, data };
}

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function fmtTime(s) {
  if (!s) return "—";
  const d = new Date(s);
  if (isNaN(d)) return "—";
  return d.toLocaleString(currentLang() === "en" ? "en-GB" : "zh-CN", { hour12: false });
}

export function fmtClock(s) {
  const d = new Date(s);
  if (isNaN(d)) return "—";
  return d.toLocaleTimeString(currentLang() === "en" ? "en-GB" : "zh-CN", { hour12: false });
}

export function fmtDuration(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(sec)}` : `${pad(m)}:${pad(sec)}`;
}

export function fmtBytes(n) {
  if (!(n >= 0)) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// Sites and cameras: loaded once per login and refreshed by the views.
export const directory = { sites: new Map(), cameras: [] };

export async function loadSites() {
  try {
    const r = await api("GET", "/sites");
    if (r.ok && Array.isArray(r.data)) directory.sites = new Map(r.data.map((s) => [s.id, s.name || s.id]));
  } catch { /* keep what we had */ }
}

export async function loadCameras() {
  try {
    const r = await api("GET", "/cameras");
    if (r.ok) {
      directory.cameras = Array.isArray(r.data) ? r.data : (r.data?.cameras ?? []);
      return true;
    }
  } catch { /* the next poll retries */ }
  return false;
}

export function siteName(id) {
  if (!id) return t("site.unknown");
  return directory.sites.get(id) ?? id;
}

export function cameraName(id) {
  return directory.cameras.find((c) => c.id === id)?.name || id;
}

const collator = () => new Intl.Collator(currentLang() === "en" ? "en" : "zh-CN");

// bySite groups cameras by site, sites and cameras sorted by their names.
export function bySite(cams) {
  const groups = new Map();
  for (const c of cams) {
    const k = c.site ?? "";
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(c);
  }
  const col = collator();
  return [...groups.entries()]
    .map(([site, list]) => ({ site, name: siteName(site), cameras: list.sort((x, y) => col.compare(x.name || x.id, y.name || y.id)) }))
    .sort((x, y) => col.compare(x.name, y.name));
}

// cameraGroups renders cameras grouped by site into box; item builds the
// element of one camera.
export function cameraGroups(box, cams, item) {
  box.replaceChildren(...bySite(cams).map((g) => {
    const sec = el("section", "site-group");
    sec.dataset.site = g.site;
    sec.append(el("h3", "site-name", g.name));
    const ul = el("ul");
    for (const c of g.cameras) ul.append(item(c));
    sec.append(ul);
    return sec;
  }));
}

export function cameraState(c) {
  return label("cam", c.status);
}
