package app

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for the app's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A raised alert reaches a WeCom robot as markdown with a link to the
// desk, after the robot first failed; its key is in no log line.
func TestNotifyEndToEnd(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var contents []string
	robot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var body struct {
			MsgType  string `json:"msgtype"`
			Markdown struct {
				Content string `json:"content"`
			} `json:"markdown"`
		}
		if err := json.Unmarshal(b, &body); err != nil || body.MsgType != "markdown" || r.URL.Query().Get("key") != "APPSECRETKEY" {
			t.Errorf("robot got %s %s: %v", r.URL.RawQuery, b, err)
		}
		mu.Lock()
		contents = append(contents, body.Markdown.Content)
		mu.Unlock()
		io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	t.Cleanup(robot.Close)
	cfg := writeConfig(t, `notify:
  base_url: https://desk.example/
  receivers: [{id: duty-group, kind: wecom, url: "`+robot.URL+`/cgi-bin/webhook/send?key=APPSECRETKEY"}]
  routes: [{match: {kind: raised}, to: [duty-group]}]
`)
	logs := &syncBuffer{}
	a := startApp(t, cfg, logs)
	waitFor(t, 5*time.Second, "the app serving", func() bool {
		return strings.Contains(logs.String(), "vigil serving")
	})
	code, body := call(t, "POST", a.URL()+"/api/v1/hooks/hall-entrance/events?key="+hookSecret, "",
		`{"type":"intrusion","state":"active","key":"door"}`)
	if code != 202 {
		t.Fatalf("hook: %d %s", code, body)
	}
	waitFor(t, 20*time.Second, "the robot's message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(contents) == 1
	})
	mu.Lock()
	c := contents[0]
	mu.Unlock()
	for _, want := range []string{"新告警", "区域入侵", "服务大厅入口", "https://desk.example/?alert="} {
		if !strings.Contains(c, want) {
			t.Errorf("message lacks %q:\n%s", want, c)
		}
	}
	if strings.Contains(logs.String(), "APPSECRETKEY") {
		t.Errorf("the robot's key is in the logs")
	}
	if !strings.Contains(logs.String(), "duty-group") {
		t.Errorf("the failed attempt was not logged with the receiver")
	}
	_, metrics := call(t, "GET", a.URL()+"/metrics", adminToken, "")
	for _, want := range []string{`vigil_notifications_total{receiver="duty-group",result="sent"} 1`, `vigil_notifications_total{receiver="duty-group",result="failed"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
