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
	// The engine writes audit records in its effects stage, after the action.
	var code int
	var body string
	waitFor(t, 10*time.Second, "the ack in the audit log", func() bool {
		code, body = call(t, "GET", a.URL()+"/api/v1/audit?since=0&limit=10", adminToken, "")
		return code == 200 && strings.Contains(body, `"by":"desk-1"`) && strings.Contains(body, al.ID)
	})
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

// The occurrence rules end to end, through the webhook, the API and the
// desk's websocket: a resolved alert stays resolved and the same signal
// raises a new alert naming it; a signal re-raised within the cooldown is
// reopened on the stream; after the cooldown it is a new alert; an event's
// own time is its raised_at when plausible.
func TestOccurrencesEndToEnd(t *testing.T) {
	a := startApp(t, writeConfig(t, ""), io.Discard) // default rule: cooldown 60s
	hdr := http.Header{"Authorization": {"Bearer " + deskToken}}
	ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+a.Addr()+"/api/v1/alerts/stream", hdr)
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	defer ws.Close()
	type change struct {
		Kind   string         `json:"kind"`
		Reason string         `json:"reason"`
		Alert  map[string]any `json:"alert"`
	}
	var seen []change
	// next reads the stream until want arrives for the alert of key.
	next := func(kind, key string) change {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		for {
			var c change
			if err := ws.ReadJSON(&c); err != nil {
				t.Fatalf("stream, waiting for %s of %s: %v (seen %v)", kind, key, err, seen)
			}
			seen = append(seen, c)
			if c.Kind == kind && c.Alert["key"] == key {
				return c
			}
		}
	}
	post := func(key, state string, at time.Time) {
		t.Helper()
		body := fmt.Sprintf(`{"type":"intrusion","state":%q,"key":%q,"at":%q}`, state, key, at.UTC().Format(time.RFC3339Nano))
		if code, resp := call(t, "POST", a.URL()+"/api/v1/hooks/hall-entrance/events?key="+hookSecret, "", body); code != 202 {
			t.Fatalf("hook %s: %d %s", body, code, resp)
		}
	}
	getAlert := func(id string) map[string]any {
		t.Helper()
		code, body := call(t, "GET", a.URL()+"/api/v1/alerts/"+id, deskToken, "")
		var m map[string]any
		if code != 200 || json.Unmarshal([]byte(body), &m) != nil {
			t.Fatalf("get %s: %d %s", id, code, body)
		}
		return m
	}
	if err := ws.ReadJSON(new(change)); err != nil { // hello
		t.Fatal(err)
	}

	// Resolved is final: the same signal again is a new alert.
	post("r", "active", time.Now())
	r := next("raised", "r").Alert
	rid := r["id"].(string)
	if code, body := call(t, "POST", a.URL()+"/api/v1/alerts/"+rid+"/resolve", deskToken, `{"feedback":"  ","false_alarm":true,"version":1}`); code != 400 || !strings.Contains(body, `"feedback_required"`) {
		t.Fatalf("resolve without feedback: %d %s", code, body)
	}
	if code, body := call(t, "POST", a.URL()+"/api/v1/alerts/"+rid+"/resolve", deskToken, `{"feedback":"误报：保洁人员","false_alarm":true,"version":1}`); code != 200 {
		t.Fatalf("resolve: %d %s", code, body)
	}
	next("resolved", "r")
	post("r", "active", time.Now())
	r2 := next("raised", "r").Alert
	if r2["id"] == rid || r2["previous_id"] != rid || r2["occurrences_24h"] != float64(2) {
		t.Fatalf("after resolution: %v previous_id %v occurrences %v, want a new alert naming %s as 2nd", r2["id"], r2["previous_id"], r2["occurrences_24h"], rid)
	}
	if got := getAlert(rid); got["version"] != float64(2) || got["count"] != float64(1) || got["status"] != "resolved" {
		t.Fatalf("the resolved alert changed: version %v count %v status %v", got["version"], got["count"], got["status"])
	}

	// End and re-raise within the cooldown: reopened on the stream.
	post("o", "active", time.Now())
	oid := next("raised", "o").Alert["id"]
	post("o", "inactive", time.Now())
	next("ended", "o")
	post("o", "active", time.Now())
	if c := next("reopened", "o"); c.Alert["id"] != oid || c.Alert["signal"] != "active" {
		t.Fatalf("reopened %v signal %v, want %v active", c.Alert["id"], c.Alert["signal"], oid)
	}
	// The desk's stale version is refused with the change that won.
	code, body := call(t, "POST", a.URL()+"/api/v1/alerts/"+oid.(string)+"/ack", deskToken, `{"note":"","version":1}`)
	if code != 409 || !strings.Contains(body, `"by":"system"`) || !strings.Contains(body, `"action":"reopened"`) {
		t.Fatalf("stale ack: %d %s", code, body)
	}

	// End and re-raise after the cooldown (the camera's own times say so):
	// a new alert.
	now := time.Now()
	post("n", "active", now.Add(-4*time.Minute))
	nid := next("raised", "n").Alert["id"]
	post("n", "inactive", now.Add(-3*time.Minute))
	next("ended", "n")
	post("n", "active", time.Now())
	if n2 := next("raised", "n").Alert; n2["id"] == nid || n2["previous_id"] != nid {
		t.Fatalf("after the cooldown: %v previous_id %v, want a new alert naming %v", n2["id"], n2["previous_id"], nid)
	}

	// Event time: a minute ago is used, an hour ago is not.
	minuteAgo := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	post("m", "active", minuteAgo)
	m := next("raised", "m").Alert
	raised, _ := time.Parse(time.RFC3339Nano, m["raised_at"].(string))
	clipStart, _ := time.Parse(time.RFC3339Nano, m["clip"].(map[string]any)["start"].(string))
	if !raised.Equal(minuteAgo) || clipStart.After(minuteAgo) {
		t.Fatalf("at a minute ago: raised_at %v clip start %v, want %v covered", raised, clipStart, minuteAgo)
	}
	hourAgo := time.Now().Add(-time.Hour).UTC()
	before := time.Now()
	post("h", "active", hourAgo)
	h := next("raised", "h").Alert
	raised, _ = time.Parse(time.RFC3339Nano, h["raised_at"].(string))
	detail, _ := h["detail"].(map[string]any)
	if raised.Before(before.Add(-time.Second)) || detail["camera_time"] == nil {
		t.Fatalf("at an hour ago: raised_at %v detail %v, want the receipt time and camera_time", raised, detail)
	}
}
