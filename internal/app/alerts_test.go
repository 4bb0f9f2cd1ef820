package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"vigil/internal/testutil"
)

type alertList struct {
	Alerts []struct {
		ID       string `json:"id"`
		Camera   string `json:"camera"`
		Type     string `json:"type"`
		Status   string `json:"status"`
		Severity string `json:"severity"`
		Version  int64  `json:"version"`
		Count    int64  `json:"count"`
	} `json:"alerts"`
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, within, what, cond)
}

func TestWebhookToDeskEndToEnd(t *testing.T) {
	a := startApp(t, writeConfig(t, ""), io.Discard)

	// A desk client on the live stream.
	hdr := http.Header{"Authorization": {"Bearer " + deskToken}}
	ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+a.Addr()+"/api/v1/alerts/stream", hdr)
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	defer ws.Close()
	var hello struct {
		Kind string `json:"kind"`
		Seq  uint64 `json:"seq"`
	}
	if err := ws.ReadJSON(&hello); err != nil || hello.Kind != "hello" {
		t.Fatalf("hello: %v %+v", err, hello)
	}

	// Two posts of one signal: one alert, count 2.
	for range 2 {
		code, body := call(t, "POST", a.URL()+"/api/v1/hooks/hall-entrance/events?key="+hookSecret, "",
			`{"type":"intrusion","state":"active","key":"door"}`)
		if code != 202 {
			t.Fatalf("hook: %d %s", code, body)
		}
	}
	var list alertList
	waitFor(t, 15*time.Second, "the alert with count 2", func() bool {
		_, body := call(t, "GET", a.URL()+"/api/v1/alerts", deskToken, "")
		list = alertList{}
		json.Unmarshal([]byte(body), &list)
		return len(list.Alerts) == 1 && list.Alerts[0].Count == 2
	})
	al := list.Alerts[0]
	if al.Camera != "hall-entrance" || al.Type != "intrusion" || al.Status != "new" {
		t.Fatalf("alert %+v", al)
	}

	// The desk sees it raised.
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var msg struct {
		Kind  string `json:"kind"`
		Seq   uint64 `json:"seq"`
		Alert struct {
			ID string `json:"id"`
		} `json:"alert"`
	}
	if err := ws.ReadJSON(&msg); err != nil || msg.Kind != "raised" || msg.Alert.ID != al.ID {
		t.Fatalf("stream: %v %+v", err, msg)
	}

	// Investigators may read but not act; the desk acts; a stale version is 409.
	ack := fmt.Sprintf(`{"note":"on it","version":%d}`, al.Version)
	if code, _ := call(t, "POST", a.URL()+"/api/v1/alerts/"+al.ID+"/ack", invToken, ack); code != 403 {
		t.Fatalf("investigator ack: %d", code)
	}
	if code, body := call(t, "GET", a.URL()+"/api/v1/alerts/"+al.ID, invToken, ""); code != 200 {
		t.Fatalf("investigator get: %d %s", code, body)
	}
	if code, body := call(t, "POST", a.URL()+"/api/v1/alerts/"+al.ID+"/ack", deskToken, ack); code != 200 || !strings.Contains(body, `"acknowledged_by":"desk-1"`) {
		t.Fatalf("ack: %d %s", code, body)
	}
	if code, body := call(t, "POST", a.URL()+"/api/v1/alerts/"+al.ID+"/ack", deskToken, ack); code != 409 || !strings.Contains(body, `"alert"`) {
		t.Fatalf("stale ack: %d %s", code, body)
	}
	// The websocket sees updated/acknowledged changes after the raise.
	for {
		if err := ws.ReadJSON(&msg); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if msg.Kind == "acknowledged" {
			break
		}
	}

	// The ack is in the audit log, for admins only.
	if code, _ := call(t, "GET", a.URL()+"/api/v1/audit", deskToken, ""); code != 403 {
		t.Fatalf("audit as desk: %d", code)
	}
	code, body := call(t, "GET", a.URL()+"/api/v1/audit?since=0&limit=10", adminToken, "")
	if code != 200 || !strings.Contains(body, `"by":"desk-1"`) || !strings.Contains(body, al.ID) {
		t.Fatalf("audit: %d %s", code, body)
	}
	if code, _ := call(t, "GET", a.URL()+"/api/v1/audit?limit=0", adminToken, ""); code != 400 {
		t.Fatalf("audit bad limit: %d", code)
	}
	// The largest sequence number has nothing after it (seq+1 must not
	// wrap to the start of the log).
	code, body = call(t, "GET", a.URL()+"/api/v1/audit?since=18446744073709551615", adminToken, "")
	if code != 200 || !strings.Contains(body, `"records":[]`) || !strings.Contains(body, `"next_since":18446744073709551615`) {
		t.Fatalf("audit since max: %d %s", code, body)
	}
}
