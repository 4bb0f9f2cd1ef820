package notify

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"vigil/alerts"
)

// Message is what a receiver is told about one change of an alert: short,
// Chinese, with a link to the alert on the desk.
type Message struct {
	Kind     alerts.ChangeKind `json:"kind"`
	Seq      uint64            `json:"seq"`
	At       time.Time         `json:"at"`
	AlertID  string            `json:"alert_id"`
	Camera   string            `json:"camera"`
	Site     string            `json:"site"`
	Type     alerts.Type       `json:"type"`
	Severity alerts.Severity   `json:"severity"`
	// Title is one line, Text a few markdown lines ending in the link.
	Title string `json:"title"`
	Text  string `json:"text"`
	URL   string `json:"url"`
	// Merged is set on a summary: how many notifications it stands for.
	Merged int `json:"merged,omitempty"`
}

var kindNames = map[alerts.ChangeKind]string{
	alerts.KindRaised:    "新告警",
	alerts.KindReopened:  "告警再次触发",
	alerts.KindOverdue:   "告警超时",
	alerts.KindEscalated: "告警督办",
}

var severityNames = map[alerts.Severity]string{
	alerts.Critical: "紧急",
	alerts.Major:    "重要",
	alerts.Minor:    "一般",
}

var typeNames = map[alerts.Type]string{
	alerts.Motion:           "移动侦测",
	alerts.Tamper:           "视频遮挡",
	alerts.VideoLoss:        "视频丢失",
	alerts.LineCrossing:     "越线",
	alerts.Intrusion:        "区域入侵",
	alerts.IOAlarm:          "报警输入",
	alerts.CameraOffline:    "摄像机离线",
	alerts.RecordingFailure: "录像故障",
	alerts.StorageFull:      "存储已满",
	alerts.Other:            "其他",
}

// AlertURL is the desk link of an alert: base?alert=ID.
func AlertURL(base, id string) string {
	if base == "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	q.Set("alert", id)
	u.RawQuery = q.Encode()
	return u.String()
}

// compose builds the message of a change.
func (n *Notifier) compose(c alerts.Change) Message {
	a := c.Alert
	site := a.Site
	if n.o.SiteName != nil {
		if s := n.o.SiteName(a.Site); s != "" {
			site = s
		}
	}
	typ := string(a.Type)
	if s, ok := typeNames[a.Type]; ok {
		typ = s
	}
	sev := string(a.Severity)
	if s, ok := severityNames[a.Severity]; ok {
		sev = s
	}
	kind := kindNames[c.Kind]
	cam := a.CameraName
	if cam == "" {
		cam = a.Camera
	}
	m := Message{
		Kind: c.Kind, Seq: c.Seq, At: c.At, AlertID: a.ID, Camera: a.Camera, Site: a.Site,
		Type: a.Type, Severity: a.Severity, URL: AlertURL(n.o.BaseURL, a.ID),
	}
	m.Title = fmt.Sprintf("【%s】%s %s %s", sev, kind, site, typ)
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**\n\n", m.Title)
	fmt.Fprintf(&b, "- 点位：%s\n", cam)
	fmt.Fprintf(&b, "- 时间：%s\n", a.RaisedAt.In(n.o.Location).Format("01-02 15:04:05"))
	switch c.Kind {
	case alerts.KindOverdue:
		fmt.Fprintf(&b, "- 状态：%s，已超过处置时限\n", statusName(a.Status))
	case alerts.KindEscalated:
		fmt.Fprintf(&b, "- 状态：%s，超时未办结，第%d次督办\n", statusName(a.Status), len(a.Escalations))
	}
	if m.URL != "" {
		fmt.Fprintf(&b, "\n[查看告警](%s)", m.URL)
	}
	m.Text = b.String()
	return m
}

func statusName(s alerts.Status) string {
	switch s {
	case alerts.StatusNew:
		return "待受理"
	case alerts.StatusAcknowledged:
		return "已受理"
	case alerts.StatusDispatched:
		return "已交办"
	case alerts.StatusResolved:
		return "已办结"
	}
	return string(s)
}

// maxSummaryLines bounds the alerts a summary lists one by one.
const maxSummaryLines = 10

// summary merges messages a receiver could not get one by one within its
// rate limit into one.
func summary(ms []Message, base string) Message {
	s := Message{Kind: "summary", At: ms[len(ms)-1].At, Merged: len(ms), URL: base}
	s.Title = fmt.Sprintf("告警通知汇总：%d 条", len(ms))
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**\n\n", s.Title)
	for i, m := range ms {
		if i == maxSummaryLines {
			fmt.Fprintf(&b, "- ……另有 %d 条\n", len(ms)-maxSummaryLines)
			break
		}
		if m.URL != "" {
			fmt.Fprintf(&b, "- [%s](%s)\n", m.Title, m.URL)
		} else {
			fmt.Fprintf(&b, "- %s\n", m.Title)
		}
	}
	if base != "" {
		fmt.Fprintf(&b, "\n[打开值守台](%s)", base)
	}
	s.Text = b.String()
	return s
}
