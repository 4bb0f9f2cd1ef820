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

// settings: the node's time zone (times are shown in it), segment length
// and clip rolls, from GET /settings; the browser's zone until loaded.
export const settings = { timezone: "", segment_s: 60, pre_roll_s: 10, post_roll_s: 30 };

export async function loadSettings() {
  try {
    const r = await api("GET", "/settings");
    if (r.ok && r.data) {
      Object.assign(settings, r.data);
      try { new Intl.DateTimeFormat("en", { timeZone: settings.timezone }); } catch { settings.timezone = ""; }
    }
  } catch { /* keep the defaults */ }
}

export function zoneOpts(extra) {
  const o = { hour12: false, ...extra };
  if (settings.timezone) o.timeZone = settings.timezone;
  return o;
}

const locale = () => (currentLang() === "en" ? "en-GB" : "zh-CN");

export function fmtTime(s) {
  if (!s) return "—";
  const d = new Date(s);
  if (isNaN(d)) return "—";
  return d.toLocaleString(locale(), zoneOpts());
}

export function fmtClock(s) {
  const d = new Date(s);
  if (isNaN(d)) return "—";
  return d.toLocaleTimeString(locale(), zoneOpts());
}

// fmtClockRange shows the span from s to e as clock times, to the tenth
// of a second when whole seconds would show its ends as one time: a
// sub-second gap is a real break, and "09:19:18 – 09:19:18" hides it.
export function fmtClockRange(s, e) {
  const a = fmtClock(s), b = fmtClock(e);
  if (a !== b || isNaN(new Date(s)) || isNaN(new Date(e))) return `${a} – ${b}`;
  const fine = (x) => new Date(x).toLocaleTimeString(locale(), zoneOpts({ hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 1 }));
  return `${fine(s)} – ${fine(e)}`;
}

// fmtSpan says how long ms is: tenths below a second (never "0 秒"),
// whole seconds below a minute, then minutes and hours.
export function fmtSpan(ms) {
  ms = Math.max(0, ms);
  if (ms < 100) return t("span.lt", { n: "0.1" });
  if (ms < 1000) return t("span.s", { n: (Math.round(ms / 100) / 10).toFixed(1) });
  const s = Math.round(ms / 1000);
  if (s < 60) return t("span.s", { n: s });
  if (s < 3600) return t("span.ms", { m: Math.floor(s / 60), s: s % 60 });
  return t("span.hm", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}

// zoneParts gives the wall-clock fields of d in the configured zone.
export function zoneParts(d) {
  const f = new Intl.DateTimeFormat("en-US", zoneOpts({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }));
  const p = Object.fromEntries(f.formatToParts(d).map((x) => [x.type, x.value]));
  return { y: +p.year, mo: +p.month, d: +p.day, h: +p.hour % 24, mi: +p.minute, s: +p.second };
}

// zoneMidnight is the instant the day "YYYY-MM-DD" starts in the
// configured zone.
export function zoneMidnight(day) {
  const [y, m, d] = day.split("-").map(Number);
  let guess = Date.UTC(y, m - 1, d);
  for (let i = 0; i < 3; i++) {
    const p = zoneParts(new Date(guess));
    const asUTC = Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s);
    guess += Date.UTC(y, m - 1, d) - asUTC;
  }
  return new Date(guess);
}

// zoneDay is the day "YYYY-MM-DD" of d in the configured zone.
export function zoneDay(d) {
  const p = zoneParts(d);
  const pad = (n) => String(n).padStart(2, "0");
  return `${p.y}-${pad(p.mo)}-${pad(p.d)}`;
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
