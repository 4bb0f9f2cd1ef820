// The app's entry: login, the session, the view of each role (desk: the
// board; investigator: footage; admin: cameras, nodes, audit) and the
// language switch. Only a 401 from the API returns to the login view.
import { t, label, applyStatic, setLang, currentLang } from "./i18n.js";
import { $, api, hooks, directory } from "./common.js";
import * as desk from "./desk.js";
import * as footage from "./footage.js";
import * as admin from "./admin.js";
import * as stats from "./stats.js";

const views = { desk: desk, investigator: footage, admin: admin };
const titles = { desk: "title", investigator: "title.investigator", admin: "title.admin" };
let current = null; // the running view's module
let role = "";
let whoami = null; // the principal: {name, role}

function showWho() {
  $("who-name").textContent = !whoami ? "" : whoami.role ? `${whoami.name} (${label("role", whoami.role)})` : String(whoami.name ?? "");
}

// session asks who is logged in: the principal, null on 401, or throws
// when the server cannot be reached.
async function session() {
  const r = await api("GET", "/session");
  if (r.status === 401) return null;
  if (!r.ok || !r.data) throw new Error("session " + r.status);
  return r.data;
}

// toggleStats switches between the role's view and 统计 (desk, admin).
function toggleStats() {
  if (role !== "desk" && role !== "admin") return;
  const on = document.body.dataset.view !== "stats";
  document.body.dataset.view = on ? "stats" : role;
  $("btn-stats").setAttribute("aria-pressed", String(on));
  if (on) stats.show(); else if (role === "desk") current?.relabel();
}

function enter(p) {
  role = views[p.role] ? p.role : "desk";
  whoami = p;
  showWho();
  document.body.dataset.role = role;
  document.body.dataset.view = role === "desk" ? "desk" : role === "investigator" ? "footage" : "admin";
  relabel();
  current = views[role];
  current.start();
}

function leave() {
  current?.stop();
  current = null;
  role = "";
  delete document.body.dataset.role;
  directory.cameras = [];
  whoami = null;
  showWho();
}

async function login(ev) {
  ev.preventDefault();
  desk.unlockAudio();
  desk.askNotify();
  loginError("");
  const token = $("login-token").value;
  let r;
  try { r = await api("POST", "/session", { token }); } catch { loginError("err.network"); return; }
  if (!r.ok || !r.data) { loginError("login.failed"); $("login-token").select(); return; }
  $("login-token").value = "";
  enter(r.data);
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
  showLogin();
}

function showLogin() {
  leave();
  document.body.dataset.view = "login";
  relabel();
  $("login-token").focus();
}

function relabel() {
  applyStatic();
  $("btn-lang").textContent = currentLang() === "en" ? "中文" : "EN";
  const title = $("app-title");
  title.dataset.i18n = titles[role] ?? "title";
  title.textContent = t(title.dataset.i18n);
  document.title = t(title.dataset.i18n);
  showWho();
  current?.relabel();
}

async function boot() {
  for (let delay = 500; ; delay = Math.min(delay * 2, 10000)) {
    try {
      const p = await session();
      $("banner").hidden = true;
      if (p) enter(p); else showLogin();
      return;
    } catch {
      // The server is not reachable yet: try again rather than asking
      // for a token that would not help.
      document.body.dataset.view = "loading";
      $("banner").textContent = t("banner.down");
      $("banner").hidden = false;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

function init() {
  hooks.onUnauthorized = () => { if (document.body.dataset.view !== "login") showLogin(); };
  applyStatic();
  $("btn-lang").addEventListener("click", () => {
    setLang(currentLang() === "en" ? "zh" : "en");
    relabel();
  });
  $("login-form").addEventListener("submit", login);
  $("btn-logout").addEventListener("click", logout);
  $("btn-stats").addEventListener("click", toggleStats);
  document.addEventListener("pointerdown", () => { desk.unlockAudio(); if (role === "desk") desk.askNotify(); });
  document.addEventListener("keydown", desk.unlockAudio);
  desk.init();
  footage.init();
  admin.init();
  stats.init();
  boot();
}

init();
