package notify

import (
	"slices"
	"strings"
	"testing"
	"time"

	"vigil/alerts"
)

func TestReceivers(t *testing.T) {
	routes := []Route{
		{Match: Match{Kind: alerts.KindOverdue, Severity: alerts.Critical}, To: []string{"leaders"}},
		{Match: Match{Site: "key-site", Type: alerts.Intrusion}, To: []string{"police", "duty"}},
		{Match: Match{Kind: alerts.KindRaised}, To: []string{"duty"}},
	}
	crit := alerts.Alert{Severity: alerts.Critical, Site: "key-site", Type: alerts.Intrusion}
	minor := alerts.Alert{Severity: alerts.Minor, Site: "hall", Type: alerts.Motion}
	esc := crit
	esc.Escalations = []alerts.Escalation{{To: []string{"old"}}, {To: []string{"leaders", "duty"}}}
	for _, c := range []struct {
		name string
		kind alerts.ChangeKind
		a    alerts.Alert
		want []string
	}{
		{"first match wins", alerts.KindOverdue, crit, []string{"leaders"}},
		{"site and type", alerts.KindRaised, crit, []string{"police", "duty"}},
		{"kind only", alerts.KindRaised, minor, []string{"duty"}},
		{"nothing matches", alerts.KindReopened, minor, nil},
		{"desk actions are not notified", alerts.KindAcknowledged, crit, nil},
		{"updated is not notified", alerts.KindUpdated, crit, nil},
		{"escalation adds escalate_to once", alerts.KindEscalated, esc, []string{"police", "duty", "leaders"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Receivers(routes, &alerts.Change{Kind: c.kind, Alert: c.a})
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestComposeChinese(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	n := &Notifier{o: Options{BaseURL: "https://desk.example/vigil/", Location: sh,
		SiteName: func(s string) string { return map[string]string{"key-site": "重点部位"}[s] }}}
	a := alerts.Alert{ID: "01JD1", Camera: "key-site-gate", CameraName: "重点部位大门", Site: "key-site",
		Type: alerts.Intrusion, Severity: alerts.Critical, Status: alerts.StatusNew,
		RaisedAt: time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)}
	m := n.compose(alerts.Change{Kind: alerts.KindOverdue, Seq: 9, Alert: a})
	if m.Title != "【紧急】告警超时 重点部位 区域入侵" {
		t.Errorf("title %q", m.Title)
	}
	for _, want := range []string{"重点部位大门", "12-06 09:02:03", "待受理", "[查看告警](https://desk.example/vigil/?alert=01JD1)"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	s := summary([]Message{m, m, m}, "https://desk.example/vigil/")
	if s.Merged != 3 || !strings.Contains(s.Title, "3 条") || strings.Count(s.Text, "告警超时") != 3 {
		t.Errorf("summary %+v", s)
	}
}
