// Labels of the web app, Chinese first; English is a complete second
// language. The switch is remembered in localStorage under "vigil.lang".
// web/i18n_test.go checks that both tables hold the same keys and that
// every key the page uses is in them.
const zh = {
  "title": "应急值守台", "title.investigator": "录像调阅", "title.admin": "系统管理",
  "conn.open": "实时连接", "conn.connecting": "连接中…", "conn.closed": "未连接",
  "banner.down": "连接中断，正在重连", "banner.since": "已中断",
  "count.new": "待受理", "count.overdue": "督办", "count.done": "今日已办结", "count.supervised": "挂牌督办",
  "logout": "退出", "mute.off": "静音", "mute.on": "取消静音",
  "role.desk": "值守", "role.investigator": "调查", "role.admin": "管理员",
  "login.title": "值守登录", "login.token": "令牌", "login.submit": "登录", "login.failed": "令牌无效",
  "list.title": "告警列表", "list.empty": "暂无告警",
  "filter.site": "站点", "filter.status": "状态", "filter.type": "类型", "filter.all": "全部", "filter.open": "未办结",
  "filter.overdue": "督办", "filter.camera": "摄像机", "filter.from": "起始日期", "filter.to": "截止日期",
  "filters": "筛选与查询", "search": "查询", "search.clear": "重置", "search.more": "加载更多", "back": "← 返回列表",
  "status.new": "待受理", "status.acknowledged": "已受理", "status.dispatched": "已交办", "status.resolved": "已办结",
  "sev.critical": "紧急", "sev.major": "重要", "sev.minor": "一般",
  "signal.active": "持续中", "signal.ended": "已结束",
  "type.motion": "移动侦测", "type.tamper": "遮挡破坏", "type.video_loss": "视频丢失", "type.line_crossing": "越线",
  "type.intrusion": "区域入侵", "type.io_alarm": "报警输入", "type.camera_offline": "摄像机离线",
  "type.recording_failure": "录像故障", "type.storage_full": "存储已满", "type.recording_tampered": "录像被篡改", "type.other": "其他",
  "detail.empty": "选择一条告警查看详情",
  "conflict": "已被他人处理，已显示最新状态",
  "conflict.system": "摄像机状态已更新，请按最新状态重新操作",
  "nth": "第{n}次", "nth.first": "首次", "nth.previous": "上一次", "f.occurrence": "发生次序",
  "f.camera": "摄像机", "f.site": "站点", "f.grid": "网格", "f.type": "类型", "f.severity": "级别", "f.status": "状态",
  "f.raised": "发生时间", "f.count": "次数", "f.signal": "信号", "f.unit": "承办单位", "f.ackdl": "受理时限",
  "f.resdl": "办结时限", "f.feedback": "办结反馈", "f.followup": "回访",
  "act.ack": "受理", "act.ack_note": "受理备注（可选）", "act.unit": "承办单位", "act.unit_choose": "请选择承办单位",
  "act.dispatch": "分流交办", "act.dispatch_note": "交办说明（可选）", "act.feedback_required": "办结反馈（必填）",
  "act.false": "误报", "act.resolve": "办结反馈", "act.false_confirm": "确认按误报办结？办结后不可撤销。",
  "act.false_yes": "确认误报办结", "act.cancel": "取消",
  "act.satisfied": "满意", "act.note": "回访记录", "act.followup": "回访",
  "clip": "录像片段", "history": "处理记录", "cameras": "摄像机",
  "cam.online": "在线", "cam.offline": "离线", "cam.connecting": "连接中", "cam.disabled": "已停用", "cam.since": "自",
  "cam.recording": "录像中", "cam.not_recording": "未录像", "cam.reconnects": "重连次数",
  "dl.left": "剩余", "dl.over": "超时", "dl.met": "已完成", "overdue": "督办",
  "false_alarm": "误报", "followup.yes": "满意", "followup.no": "不满意",
  "h.raised": "登记", "h.acknowledged": "受理", "h.dispatched": "分流交办", "h.resolved": "办结", "h.ended": "信号结束",
  "h.overdue": "督办", "h.follow_up": "回访", "h.followed_up": "回访", "h.reopened": "信号重现", "h.updated": "更新",
  "h.earlier": "更早记录", "h.escalated": "督办升级", "h.supervised": "挂牌督办", "h.supervision_cleared": "撤销挂牌",
  "f.supervision": "挂牌督办", "f.escalations": "督办次数", "sup.due": "限期",
  "actor.system": "系统",
  "note.auto_dispatch": "按规则自动交办",
  "note.sync_ended": "状态同步报告信号已结束", "note.stale": "{d} 内无事件，信号自动结束",
  "note.overdue_ack": "受理超时", "note.overdue_resolve": "办结超时",
  "note.satisfied": "满意", "note.unsatisfied": "不满意",
  "site.unknown": "未分配站点",
  "err.network": "网络错误", "err.action": "操作失败", "err.load": "加载失败",
  "notify.title": "新告警", "notify.reopened": "信号重现",
  "footage.cameras": "摄像机", "footage.title": "录像调阅", "footage.date": "日期", "footage.load": "查看录像",
  "footage.choose": "选择一台摄像机查看录像", "footage.none": "该日无录像", "footage.none_in_view": "此时段无录像：缩小或前后移动时间轴查看当日录像",
  "footage.alerts": "当日告警", "footage.holds": "证据保全", "footage.segments": "录像片段",
  "footage.no_alerts": "当日无告警", "footage.no_holds": "无手动证据保全", "footage.more": "另有 {n} 条，放大时间轴查看",
  "tl.label": "录像时间轴", "tl.in": "放大", "tl.out": "缩小", "tl.day": "全天", "tl.earlier": "向前", "tl.later": "向后",
  "tl.hours": "{n} 小时", "tl.minutes": "{n} 分钟",
  "tl.rec": "有录像", "tl.gap": "录像中断", "tl.outage": "摄像机离线，录像中断至今", "tl.hold": "证据保全", "tl.alert": "告警",
  "tl.now": "当前时刻", "tl.hint": "点击播放，拖动选择时段",
  "tl.selected": "已选", "tl.export": "导出 MP4", "tl.manifest": "导出清单", "tl.clear": "取消选择",
  "tl.playing": "正在播放", "tl.next": "此刻无录像，从下一段录像播放", "tl.nothing": "此刻之后无录像",
  "hold.add": "证据保全…", "hold.case": "案件编号", "hold.reason": "保全原因", "hold.save": "保全所选时段",
  "hold.saved": "已保全", "hold.unavailable": "本节点暂不支持手动证据保全", "hold.release": "解除保全", "hold.of_alert": "告警保全", "hold.open": "告警持续中", "hold.release_confirm": "确认解除保全",
  "holdreason.alert raised": "告警登记", "holdreason.alert restored": "服务重启后恢复", "holdreason.signal repeated": "信号重复",
  "holdreason.signal reopened": "信号重现", "holdreason.signal ended": "信号结束", "holdreason.alert resolved": "告警办结", "tl.cannot_play": "此段录像无法播放",
  "footage.gap": "录像中断", "footage.download": "下载", "footage.play": "播放",
  "span.lt": "不足 {n} 秒", "span.s": "{n} 秒", "span.ms": "{m} 分 {s} 秒", "span.hm": "{h} 小时 {m} 分",
  "live.open": "实时画面", "live.close": "关闭实时画面", "live.connecting": "正在连接实时画面…", "live.on": "● 实时画面",
  "live.unsupported": "此浏览器不支持实时画面", "live.lost": "实时画面已中断", "live.h265": "H.265 摄像机：浏览器无法直接播放，每秒刷新抓拍画面",
  "live.offline": "摄像机离线，无实时画面", "live.full": "观看人数已满，请稍后再试", "live.unknown": "摄像机不存在或已停用",
  "live.error": "实时画面打开失败：{e}",
  "snap.alt": "现场抓拍画面", "snap.none": "暂无抓拍画面", "snap.no_pic": "无画面", "snap.alert": "告警抓拍", "snap.camera": "摄像机当前画面（告警抓拍生成中）", "snap.missing": "无告警抓拍，此为摄像机当前画面",
  "clip.offline": "摄像机离线，无录像", "clip.writing": "录像写入中，约 {n} 秒后可看", "clip.none": "无录像",
  "clip.error": "录像暂时无法读取（{n}）",
  "nav.cameras": "摄像机", "nav.nodes": "节点", "nav.audit": "审计", "nav.footage": "录像调阅", "nav.stats": "统计",
  "stats.title": "统计分析", "stats.period": "统计周期", "stats.today": "今日", "stats.week": "本周", "stats.half": "本半月",
  "stats.custom": "自定义", "stats.report_xlsx": "导出报表（XLSX）", "stats.report_html": "打印版（HTML）", "stats.bysite": "各站点指标", "stats.byunit": "各单位指标", "stats.trend": "每日趋势",
  "stats.ack": "按时受理率", "stats.resolve": "按时办结率", "stats.impl": "落实到位率", "stats.satisfaction": "回访满意率",
  "stats.total": "告警数", "stats.none": "（无站点）", "stats.undispatched": "（未交办）", "stats.failed": "统计加载失败",
  "stats.summary": "共 {n} 条告警；按时受理率 {ack}，按时办结率 {res}，落实到位率 {impl}，回访满意率 {sat}",
  "admin.cameras": "摄像机状态", "admin.nodes": "节点", "admin.audit": "审计记录", "admin.audit_empty": "暂无审计记录",
  "admin.nodes_note": "单节点部署：本节点录制全部摄像机。",
  "cam.node": "录制节点", "cam.node_unreachable": "暂无法连接",
  "node.cameras": "录制摄像机：", "node.heartbeat": "最近心跳", "node.registry_differs": "摄像机登记表与其他节点不一致",
  "audit.acknowledged": "受理", "audit.dispatched": "分流交办", "audit.resolved": "办结", "audit.follow_up": "回访",
  "audit.downloaded": "下载录像", "audit.exported": "导出录像",
};

const en = {
  "title": "Response desk", "title.investigator": "Footage", "title.admin": "Administration",
  "conn.open": "Live", "conn.connecting": "Connecting…", "conn.closed": "Disconnected",
  "banner.down": "Connection lost, reconnecting", "banner.since": "down for",
  "count.new": "New", "count.overdue": "Overdue", "count.done": "Resolved today", "count.supervised": "Supervised",
  "logout": "Log out", "mute.off": "Mute", "mute.on": "Unmute",
  "role.desk": "desk", "role.investigator": "investigator", "role.admin": "admin",
  "login.title": "Desk login", "login.token": "Token", "login.submit": "Log in", "login.failed": "Invalid token",
  "list.title": "Alerts", "list.empty": "No alerts",
  "filter.site": "Site", "filter.status": "Status", "filter.type": "Type", "filter.all": "All", "filter.open": "Open",
  "filter.overdue": "Overdue", "filter.camera": "Camera", "filter.from": "From", "filter.to": "To",
  "filters": "Filter and search", "search": "Search", "search.clear": "Reset", "search.more": "Load more", "back": "← Back to list",
  "status.new": "New", "status.acknowledged": "Acknowledged", "status.dispatched": "Dispatched", "status.resolved": "Resolved",
  "sev.critical": "Critical", "sev.major": "Major", "sev.minor": "Minor",
  "signal.active": "Active", "signal.ended": "Ended",
  "type.motion": "Motion", "type.tamper": "Tamper", "type.video_loss": "Video loss", "type.line_crossing": "Line crossing",
  "type.intrusion": "Intrusion", "type.io_alarm": "I/O alarm", "type.camera_offline": "Camera offline",
  "type.recording_failure": "Recording failure", "type.storage_full": "Storage full", "type.recording_tampered": "Recording tampered", "type.other": "Other",
  "detail.empty": "Select an alert to see its details",
  "conflict": "Someone else already handled this; showing the current state",
  "conflict.system": "The camera's state changed; check the current state and act again",
  "nth": "occurrence {n}", "nth.first": "first", "nth.previous": "previous", "f.occurrence": "Occurrence",
  "f.camera": "Camera", "f.site": "Site", "f.grid": "Grid", "f.type": "Type", "f.severity": "Severity", "f.status": "Status",
  "f.raised": "Raised", "f.count": "Count", "f.signal": "Signal", "f.unit": "Unit", "f.ackdl": "Acknowledge by",
  "f.resdl": "Resolve by", "f.feedback": "Feedback", "f.followup": "Follow-up",
  "act.ack": "Acknowledge", "act.ack_note": "Note (optional)", "act.unit": "Unit", "act.unit_choose": "Choose a unit",
  "act.dispatch": "Dispatch", "act.dispatch_note": "Instructions (optional)", "act.feedback_required": "Feedback (required)",
  "act.false": "False alarm", "act.resolve": "Resolve", "act.false_confirm": "Resolve as a false alarm? This cannot be undone.",
  "act.false_yes": "Resolve as false alarm", "act.cancel": "Cancel",
  "act.satisfied": "Satisfied", "act.note": "Visit note", "act.followup": "Follow up",
  "clip": "Clip", "history": "History", "cameras": "Cameras",
  "cam.online": "Online", "cam.offline": "Offline", "cam.connecting": "Connecting", "cam.disabled": "Disabled", "cam.since": "since",
  "cam.recording": "recording", "cam.not_recording": "not recording", "cam.reconnects": "reconnects",
  "dl.left": "left", "dl.over": "overdue by", "dl.met": "met", "overdue": "Overdue",
  "false_alarm": "False alarm", "followup.yes": "Satisfied", "followup.no": "Not satisfied",
  "h.raised": "Raised", "h.acknowledged": "Acknowledged", "h.dispatched": "Dispatched", "h.resolved": "Resolved", "h.ended": "Signal ended",
  "h.overdue": "Overdue", "h.follow_up": "Follow-up", "h.followed_up": "Follow-up", "h.reopened": "Signal reopened", "h.updated": "Updated",
  "h.earlier": "Earlier entries",
  "h.escalated": "Escalated", "h.supervised": "Supervised", "h.supervision_cleared": "Supervision cleared",
  "f.supervision": "Supervised", "f.escalations": "Escalations", "sup.due": "due",
  "actor.system": "system",
  "note.auto_dispatch": "dispatched by rule",
  "note.sync_ended": "a state sync reported the signal inactive", "note.stale": "no event for {d}: the signal ended by itself",
  "note.overdue_ack": "acknowledgement overdue", "note.overdue_resolve": "resolution overdue",
  "note.satisfied": "satisfied", "note.unsatisfied": "not satisfied",
  "site.unknown": "No site",
  "err.network": "Network error", "err.action": "Action failed", "err.load": "Could not load",
  "notify.title": "New alert", "notify.reopened": "Signal reopened",
  "footage.cameras": "Cameras", "footage.title": "Footage", "footage.date": "Date", "footage.load": "Show recordings",
  "footage.choose": "Choose a camera to see its recordings", "footage.none": "No recordings that day", "footage.none_in_view": "No recordings in this window: zoom out or move along the timeline to see the day's",
  "footage.alerts": "Alerts that day", "footage.holds": "Evidence holds", "footage.segments": "Segments",
  "footage.no_alerts": "No alerts that day", "footage.no_holds": "No holds by hand", "footage.more": "{n} more: zoom in to see them",
  "tl.label": "Footage timeline", "tl.in": "Zoom in", "tl.out": "Zoom out", "tl.day": "Whole day", "tl.earlier": "Earlier", "tl.later": "Later",
  "tl.hours": "{n} h", "tl.minutes": "{n} min",
  "tl.rec": "Recorded", "tl.gap": "Gap", "tl.outage": "Camera offline: gap until now", "tl.hold": "Evidence hold", "tl.alert": "Alert",
  "tl.now": "Now", "tl.hint": "Click to play, drag to select a range",
  "tl.selected": "Selected", "tl.export": "Export MP4", "tl.manifest": "Manifest", "tl.clear": "Clear selection",
  "tl.playing": "Playing", "tl.next": "nothing recorded at that moment; playing the next recording", "tl.nothing": "Nothing recorded after that moment",
  "hold.add": "Evidence hold…", "hold.case": "Case number", "hold.reason": "Reason", "hold.save": "Hold the selected range",
  "hold.saved": "Held", "hold.unavailable": "Holds by hand are not available on this node yet", "hold.release": "Release", "hold.of_alert": "Alert's hold", "hold.open": "alert still active", "hold.release_confirm": "Confirm release",
  "holdreason.alert raised": "alert raised", "holdreason.alert restored": "alert restored after a restart", "holdreason.signal repeated": "signal repeated",
  "holdreason.signal reopened": "signal reopened", "holdreason.signal ended": "signal ended", "holdreason.alert resolved": "alert resolved", "tl.cannot_play": "This recording cannot be played",
  "footage.gap": "Gap", "footage.download": "Download", "footage.play": "Play",
  "span.lt": "under {n} s", "span.s": "{n} s", "span.ms": "{m} min {s} s", "span.hm": "{h} h {m} min",
  "live.open": "Live view", "live.close": "Close live view", "live.connecting": "Connecting to the live view…", "live.on": "● Live",
  "live.unsupported": "This browser has no live view (WebRTC)", "live.lost": "Live view interrupted", "live.h265": "H.265 camera: browsers cannot play it live; the picture refreshes every second",
  "live.offline": "Camera offline: no live view", "live.full": "Too many viewers; try again shortly", "live.unknown": "Unknown or disabled camera",
  "live.error": "Could not open the live view: {e}",
  "snap.alt": "Snapshot of the scene", "snap.none": "No snapshot", "snap.no_pic": "No picture", "snap.alert": "Alert snapshot", "snap.camera": "Camera's current picture (alert snapshot on its way)", "snap.missing": "No alert snapshot: this is the camera's current picture",
  "clip.offline": "Camera offline: no footage", "clip.writing": "Footage being written; playable in about {n} s", "clip.none": "No footage",
  "clip.error": "Footage cannot be read right now ({n})",
  "nav.cameras": "Cameras", "nav.nodes": "Nodes", "nav.audit": "Audit", "nav.footage": "Footage", "nav.stats": "Statistics",
  "stats.title": "Statistics", "stats.period": "Period", "stats.today": "Today", "stats.week": "This week", "stats.half": "This half-month",
  "stats.custom": "Custom", "stats.report_xlsx": "Report (XLSX)", "stats.report_html": "Printable report (HTML)", "stats.bysite": "Rates by site", "stats.byunit": "Rates by unit", "stats.trend": "Trend per day",
  "stats.ack": "On-time acknowledgement", "stats.resolve": "On-time closure", "stats.impl": "Implementation", "stats.satisfaction": "Follow-up satisfaction",
  "stats.total": "Alerts", "stats.none": "(no site)", "stats.undispatched": "(not dispatched)", "stats.failed": "Statistics failed to load",
  "stats.summary": "{n} alerts; on-time acknowledgement {ack}, on-time closure {res}, implementation {impl}, satisfaction {sat}",
  "admin.cameras": "Camera status", "admin.nodes": "Nodes", "admin.audit": "Audit log", "admin.audit_empty": "No audit records",
  "admin.nodes_note": "Single node: this node records every camera.",
  "cam.node": "recorded by", "cam.node_unreachable": "unreachable",
  "node.cameras": "Records:", "node.heartbeat": "Last heartbeat", "node.registry_differs": "Camera registry differs from the other nodes'",
  "audit.acknowledged": "Acknowledged", "audit.dispatched": "Dispatched", "audit.resolved": "Resolved", "audit.follow_up": "Follow-up",
  "audit.downloaded": "Downloaded", "audit.exported": "Exported",
};

const dicts = { zh, en };
let lang = "zh";
try {
  if (localStorage.getItem("vigil.lang") === "en") lang = "en";
} catch { /* storage blocked: stay Chinese */ }

export function currentLang() { return lang; }

// t returns the label of key; {name} placeholders are filled from vars.
export function t(key, vars) {
  let s = dicts[lang][key] ?? zh[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replace("{" + k + "}", String(v));
  return s;
}

// label returns the translation of prefix.value, or value itself when there
// is none (a type or action the app does not know yet).
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
}
