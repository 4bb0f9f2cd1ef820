// The 统计 view (desk and admin): a period picker (today, this week, this
// half-month, custom), the period's review report (XLSX, or HTML to print),
// the rates per site and per unit as bar charts and a trend per day, drawn with ECharts (vendored under /vendor/echarts, loaded
// when the view first opens). Day boundaries are the browser's, which is in
// the centre's zone.
import { API, $, api, siteName } from "./common.js";
import { t } from "./i18n.js";

let echarts = null;
const charts = {};
let seq = 0; // of the latest load; an older answer is dropped

// Each rate with the count it is a share of: a rate of nothing (no
// follow-up made, nothing dispatched) is no rate, shown as — and left out
// of the bars, not as 0 %.
const rates = [
  ["ack_on_time_rate", "stats.ack", "ack_due"],
  ["resolve_on_time_rate", "stats.resolve", "resolve_due"],
  ["implementation_rate", "stats.impl", "dispatched"],
  ["satisfaction_rate", "stats.satisfaction", "follow_ups"],
];
const rateOf = (s, k, of) => (s[of] > 0 ? pct(s[k]) : null);
const rateText = (v) => (v === null ? "—" : `${v}%`);

let units = null; // id → name, from GET /units

async function loadUnits() {
  if (units) return;
  try {
    const r = await api("GET", "/units");
    const list = r.ok ? (Array.isArray(r.data) ? r.data : r.data?.units ?? []) : [];
    if (r.ok) units = new Map(list.map((u) => [u.id, u.name || u.id]));
  } catch { /* unit IDs instead */ }
}

const unitName = (id) => units?.get(id) ?? id;

function startOfDay(d) { return new Date(d.getFullYear(), d.getMonth(), d.getDate()); }

// period is [from, to) of the picker's choice.
function period() {
  const now = new Date();
  const today = startOfDay(now);
  switch ($("stats-period").value) {
    case "week": {
      const from = new Date(today);
      from.setDate(today.getDate() - ((today.getDay() + 6) % 7)); // Monday
      const to = new Date(from);
      to.setDate(from.getDate() + 7);
      return [from, to];
    }
    case "half": {
      const first = today.getDate() <= 15;
      const from = new Date(today.getFullYear(), today.getMonth(), first ? 1 : 16);
      const to = first ? new Date(today.getFullYear(), today.getMonth(), 16) : new Date(today.getFullYear(), today.getMonth() + 1, 1);
      return [from, to];
    }
    case "custom": {
      const from = new Date($("stats-from").value + "T00:00");
      const to = new Date($("stats-to").value + "T00:00");
      to.setDate(to.getDate() + 1); // the last day included
      if (!isNaN(from) && !isNaN(to) && from < to) return [from, to];
      return [today, new Date(today.getTime() + 86400000)];
    }
  }
  const to = new Date(today);
  to.setDate(today.getDate() + 1);
  return [today, to];
}

async function stats(from, to, by) {
  let q = `/alerts/stats?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
  if (by) q += "&group_by=" + by;
  const r = await api("GET", q);
  if (!r.ok || !r.data) throw new Error("stats " + r.status);
  return r.data;
}

function pct(v) { return Math.round(v * 1000) / 10; }

function bars(el, groups, name) {
  const chart = charts[el] ??= echarts.init($(el));
  const names = groups.map((g) => name(g.key));
  $(el).dataset.categories = names.join("|"); // the canvas's words, for tests and whoever inspects the page
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis", valueFormatter: (v) => rateText(v ?? null) },
    legend: { top: 0 },
    // The four rates' legend takes two lines on a phone.
    grid: { left: 40, right: 10, top: $(el).clientWidth < 480 ? 64 : 40, bottom: 30 },
    xAxis: { type: "category", data: names },
    yAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
    series: rates.map(([k, label, of]) => ({ name: t(label), type: "bar", data: groups.map((g) => rateOf(g, k, of)) })),
  }, true);
}

function trend(days) {
  const chart = charts["chart-trend"] ??= echarts.init($("chart-trend"));
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 40, right: 50, top: 40, bottom: 30 },
    xAxis: { type: "category", data: days.map((d) => `${d.day.getMonth() + 1}-${d.day.getDate()}`) },
    yAxis: [{ type: "value", minInterval: 1 }, { type: "value", max: 100, axisLabel: { formatter: "{value}%" } }],
    series: [
      { name: t("stats.total"), type: "bar", data: days.map((d) => d.s.total) },
      { name: t("stats.resolve"), type: "line", yAxisIndex: 1, connectNulls: true, data: days.map((d) => rateOf(d.s, "resolve_on_time_rate", "resolve_due")) },
    ],
  }, true);
}

// load fetches the period's stats and draws the three charts.
export async function load() {
  const my = ++seq;
  $("stats-custom").hidden = $("stats-period").value !== "custom";
  const [from, to] = period();
  // The period's review report for the meeting (会商研判), as the charts show it.
  for (const [id, format] of [["stats-xlsx", "xlsx"], ["stats-html", "html"]]) {
    $(id).href = `${API}/reports?${new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), format })}`;
  }
  try {
    echarts ??= await import("../vendor/echarts/echarts.esm.min.js");
    const days = [];
    for (let d = new Date(from); d < to && days.length < 31; d.setDate(d.getDate() + 1)) days.push(new Date(d));
    const [all, bySite, byUnit, perDay] = await Promise.all([
      stats(from, to), stats(from, to, "site"), stats(from, to, "unit"),
      Promise.all(days.map((d) => { const e = new Date(d); e.setDate(d.getDate() + 1); return stats(d, e).then((s) => ({ day: d, s })); })),
      loadUnits(),
    ]);
    if (my !== seq) return;
    $("stats-summary").textContent = t("stats.summary")
      .replace("{n}", all.total)
      .replace("{ack}", rateText(rateOf(all, "ack_on_time_rate", "ack_due")))
      .replace("{res}", rateText(rateOf(all, "resolve_on_time_rate", "resolve_due")))
      .replace("{impl}", rateText(rateOf(all, "implementation_rate", "dispatched")))
      .replace("{sat}", rateText(rateOf(all, "satisfaction_rate", "follow_ups")));
    bars("chart-site", bySite.groups ?? [], (k) => siteName(k) || t("stats.none"));
    bars("chart-unit", byUnit.groups ?? [], (k) => (k ? unitName(k) : t("stats.undispatched")));
    trend(perDay);
    document.body.dataset.statsLoaded = String(my);
  } catch (e) {
    if (my === seq) $("stats-summary").textContent = t("stats.failed");
  }
}

export function show() { load(); }

export function resize() { for (const c of Object.values(charts)) c.resize(); }

export function init() {
  $("stats-period").addEventListener("change", load);
  $("stats-form").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  addEventListener("resize", resize);
}
