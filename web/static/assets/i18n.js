// Labels of the desk, Chinese first; the English switch is remembered in
// localStorage under "vigil.lang".
const zh = {
  "title": "应急值守台",
  "conn.open": "实时连接", "conn.connecting": "连接中…", "conn.closed": "未连接",
  "count.open": "待办", "count.overdue": "督办/超时",
  "logout": "退出",
  "login.title": "值守登录", "login.token": "令牌", "login.submit": "登录", "login.failed": "令牌无效",
  "list.title": "告警列表", "list.empty": "暂无告警",
  "filter.site": "站点", "filter.status": "状态", "filter.type": "类型", "filter.all": "全部", "filter.open": "未办结",
  "status.new": "待受理", "status.acknowledged": "已受理", "status.dispatched": "已交办", "status.resolved": "已办结",
  "sev.critical": "紧急", "sev.major": "重要", "sev.minor": "一般",
  "signal.active": "持续中", "signal.ended": "已结束",
  "type.motion": "移动侦测", "type.tamper": "遮挡破坏", "type.video_loss": "视频丢失", "type.line_crossing": "越线",
  "type.intrusion": "区域入侵", "type.io_alarm": "报警输入", "type.camera_offline": "摄像机离线",
  "type.recording_failure": "录像故障", "type.storage_full": "存储已满", "type.other": "其他",
  "detail.empty": "选择一条告警查看详情",
  "conflict": "已被他人处理，已显示最新状态",
  "conflict.system": "摄像机状态已更新，请按最新状态重新操作",
  "nth": "第{n}次", "nth.first": "首次", "nth.previous": "上一次", "f.occurrence": "发生次序",
  "h.earlier": "更早记录",
  "f.camera": "摄像机", "f.site": "站点", "f.grid": "网格", "f.type": "类型", "f.severity": "级别", "f.status": "状态",
  "f.raised": "发生时间", "f.count": "次数", "f.signal": "信号", "f.unit": "承办单位", "f.ackdl": "受理时限",
  "f.resdl": "办结时限", "f.feedback": "办结反馈", "f.followup": "回访",
  "act.ack": "受理", "act.unit": "承办单位", "act.dispatch": "分流交办", "act.feedback": "办结反馈",
  "act.false": "误报", "act.resolve": "办结反馈", "act.satisfied": "满意", "act.note": "回访记录", "act.followup": "回访",
  "clip": "录像片段", "history": "处理记录", "cameras": "摄像机",
  "cam.online": "在线", "cam.offline": "离线", "cam.connecting": "连接中", "cam.disabled": "已停用", "cam.since": "自",
  "dl.left": "剩余", "dl.over": "超时", "dl.met": "已完成", "overdue": "督办",
  "false_alarm": "误报", "followup.yes": "满意", "followup.no": "不满意",
  "h.raised": "登记", "h.acknowledged": "受理", "h.dispatched": "分流交办", "h.resolved": "办结", "h.ended": "信号结束",
  "h.overdue": "督办", "h.follow_up": "回访", "h.followed_up": "回访", "h.reopened": "信号重现",
  "err.network": "网络错误", "err.action": "操作失败",
};

const en = {
  "title": "Response desk",
  "conn.open": "Live", "conn.connecting": "Connecting…", "conn.closed": "Disconnected",
  "count.open": "Open", "count.overdue": "Overdue",
  "logout": "Log out",
  "login.title": "Desk login", "login.token": "Token", "login.submit": "Log in", "login.failed": "Invalid token",
  "list.title": "Alerts", "list.empty": "No alerts",
  "filter.site": "Site", "filter.status": "Status", "filter.type": "Type", "filter.all": "All", "filter.open": "Open",
  "status.new": "New", "status.acknowledged": "Acknowledged", "status.dispatched": "Dispatched", "status.resolved": "Resolved",
  "sev.critical": "Critical", "sev.major": "Major", "sev.minor": "Minor",
  "signal.active": "Active", "signal.ended": "Ended",
  "type.motion": "Motion", "type.tamper": "Tamper", "type.video_loss": "Video loss", "type.line_crossing": "Line crossing",
  "type.intrusion": "Intrusion", "type.io_alarm": "I/O alarm", "type.camera_offline": "Camera offline",
  "type.recording_failure": "Recording failure", "type.storage_full": "Storage full", "type.other": "Other",
  "detail.empty": "Select an alert to see its details",
  "conflict": "Someone else already handled this; showing the current state",
  "conflict.system": "The camera's state changed; check the current state and act again",
  "nth": "occurrence {n}", "nth.first": "first", "nth.previous": "previous", "f.occurrence": "Occurrence",
  "h.earlier": "Earlier entries",
  "f.camera": "Camera", "f.site": "Site", "f.grid": "Grid", "f.type": "Type", "f.severity": "Severity", "f.status": "Status",
  "f.raised": "Raised", "f.count": "Count", "f.signal": "Signal", "f.unit": "Unit", "f.ackdl": "Acknowledge by",
  "f.resdl": "Resolve by", "f.feedback": "Feedback", "f.followup": "Follow-up",
  "act.ack": "Acknowledge", "act.unit": "Unit", "act.dispatch": "Dispatch", "act.feedback": "Feedback",
  "act.false": "False alarm", "act.resolve": "Resolve", "act.satisfied": "Satisfied", "act.note": "Visit note", "act.followup": "Follow up",
  "clip": "Clip", "history": "History", "cameras": "Cameras",
  "cam.online": "Online", "cam.offline": "Offline", "cam.connecting": "Connecting", "cam.disabled": "Disabled", "cam.since": "since",
  "dl.left": "left", "dl.over": "overdue by", "dl.met": "met", "overdue": "Overdue",
  "false_alarm": "False alarm", "followup.yes": "Satisfied", "followup.no": "Not satisfied",
  "h.raised": "Raised", "h.acknowledged": "Acknowledged", "h.dispatched": "Dispatched", "h.resolved": "Resolved", "h.ended": "Signal ended",
  "h.overdue": "Overdue", "h.follow_up": "Follow-up", "h.followed_up": "Follow-up", "h.reopened": "Signal reopened",
  "err.network": "Network error", "err.action": "Action failed",
};

const dicts = { zh, en };
let lang = "zh";
try {
  if (localStorage.getItem("vigil.lang") === "en") lang = "en";
} catch { /* storage blocked: stay Chinese */ }

export function currentLang() { return lang; }

export function t(key) {
  return dicts[lang][key] ?? zh[key] ?? key;
}

// label returns the translation of prefix.value, or value itself when there
// is none (a type or action the desk does not know yet).
export function label(prefix, value) {
  const k = prefix + "." + value;
  return dicts[lang][k] ?? zh[k] ?? String(value ?? "");
}

export function setLang(l) {
  lang = l === "en" ? "en" : "zh";
  try { localStorage.setItem("vigil.lang", lang); } catch { /* ignore */ }
  applyStatic();
}

// applyStatic relabels every element carrying data-i18n.
export function applyStatic() {
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  document.title = t("title") + " · Vigil";
}
