package configs

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

const notifyCams = "cameras:\n  - {id: key-site-gate, name: 大门, site: key-site, url: rtsp://192.0.2.2/s}\n"

func TestLoadNotify(t *testing.T) {
	env := func(k string) (string, bool) {
		v, ok := map[string]string{
			"WECOM_URL": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=WECOMKEY",
			"DING_URL":  "https://oapi.dingtalk.com/robot/send?access_token=DINGTOKEN", "DING_SECRET": "SECding",
		}[k]
		return v, ok
	}
	vigil := `alerts:
  rules:
    - {match: {type: intrusion}, severity: critical, ack_within: 2m, resolve_within: 30m, escalate_to: [leaders], escalate_after: 15m}
notify:
  base_url: https://desk.example/
  max_age: 30m
  receivers:
    - {id: duty-group, kind: wecom, url: "${WECOM_URL}"}
    - {id: leaders, kind: dingtalk, url: "${DING_URL}", secret: "${DING_SECRET}"}
  routes:
    - {match: {kind: overdue, severity: critical, site: key-site, type: intrusion}, to: [leaders]}
    - {match: {kind: raised}, to: [duty-group, leaders]}
`
	cfg, err := loadIn(t, vigil, notifyCams, env)
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Notify
	if n.BaseURL != "https://desk.example/" || n.MaxAge != 30*time.Minute || n.RatePerMinute != 20 {
		t.Errorf("notify %+v", n)
	}
	if len(n.Receivers) != 2 || n.Receivers[1].Secret.Reveal() != "SECding" || !strings.Contains(n.Receivers[0].URL.Reveal(), "WECOMKEY") {
		t.Errorf("receivers %+v", n.Receivers)
	}
	if len(n.Routes) != 2 || n.Routes[0].Match != (NotifyMatch{Kind: "overdue", Severity: "critical", Site: "key-site", Type: "intrusion"}) || len(n.Routes[1].To) != 2 {
		t.Errorf("routes %+v", n.Routes)
	}
	r := cfg.Alerts.Rules[0]
	if len(r.EscalateTo) != 1 || r.EscalateTo[0] != "leaders" || r.EscalateAfter != 15*time.Minute {
		t.Errorf("rule %+v", r)
	}
	// Secrets never show in printed or marshalled forms.
	js, _ := json.Marshal(cfg)
	for _, s := range []string{string(js), fmt.Sprintf("%v %+v", cfg.Notify, cfg.Notify)} {
		for _, secret := range []string{"WECOMKEY", "DINGTOKEN", "SECding"} {
			if strings.Contains(s, secret) {
				t.Errorf("%s leaked in %.200s", secret, s)
			}
		}
	}
}

func TestLoadNotifyErrors(t *testing.T) {
	tests := []struct{ name, vigil, want string }{
		{"unknown receiver in a route", "notify:\n  receivers: [{id: duty, kind: wecom, url: https://x.example/}]\n  routes: [{match: {kind: raised}, to: [dutty]}]\n",
			`vigil.yaml:3:41: notify.routes[0].to[0]: unknown receiver "dutty" (receivers: duty)`},
		{"unknown receiver in escalate_to", "alerts:\n  rules: [{match: {}, severity: minor, escalate_to: [boss]}]\nnotify: {}\n",
			`vigil.yaml:2:54: alerts.rules[0].escalate_to[0]: unknown receiver "boss"`},
		{"bad kind", "notify:\n  receivers: [{id: duty, kind: sms, url: https://x.example/}]\n",
			`vigil.yaml:2:32: notify.receivers[0].kind: must be one of wecom, dingtalk, webhook, got "sms"`},
		{"route kind not notified", "notify:\n  receivers: [{id: duty, kind: wecom, url: https://x.example/}]\n  routes: [{match: {kind: acknowledged}, to: [duty]}]\n",
			`vigil.yaml:3:27: notify.routes[0].match.kind: must be one of raised, reopened, overdue, escalated, got "acknowledged"`},
		{"webhook without secret", "notify:\n  receivers: [{id: ops, kind: webhook, url: https://x.example/}]\n",
			`vigil.yaml:2:15: notify.receivers[0].secret: required for a webhook (its messages are signed)`},
		{"url not http, not shown", "notify:\n  receivers: [{id: ops, kind: wecom, url: \"ftp://key@x/\"}]\n",
			`vigil.yaml:2:43: notify.receivers[0].url: want an http or https URL`},
		{"route without receivers", "notify:\n  routes: [{match: {kind: raised}}]\n",
			`vigil.yaml:2:12: notify.routes[0].to: required: at least one receiver`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadIn(t, tt.vigil, notifyCams, noEnv)
			if got := strings.Join(errorLines(err), "\n"); got != tt.want {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
