package alertsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/alerts/alertsapi"
	"vigil/alerts/alertstest"
	"vigil/internal/testutil"
)

type apiFixture struct {
	*alertstest.Fixture
	srv *httptest.Server
}

func newAPIFixture(t *testing.T) *apiFixture {
	f := alertstest.NewFixture(t, "")
	api, err := alertsapi.New(alertsapi.Options{Engine: f.Engine, Actor: func(r *http.Request) string { return r.Header.Get("X-Actor") }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &apiFixture{Fixture: f, srv: srv}
}

// do sends a request and decodes the JSON answer into a generic map and,
// when out is not nil, into out.
func (f *apiFixture) do(t *testing.T, method, path, body string, out any) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Actor", "desk-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/json" {
		t.Fatalf("%s %s: content type %q: %s", method, path, ct, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, m
}

func TestAPIListAndGet(t *testing.T) {
	f := newAPIFixture(t)
	for i := range 5 {
		f.Clock.Advance(time.Minute)
		f.Handle(t, alerts.Event{Camera: "hall-entrance", Type: alerts.Motion, Key: fmt.Sprint(i), State: alerts.Active})
	}
	f.Handle(t, alertstest.Ev("gate", alerts.Intrusion, alerts.Active))

	var page struct {
		Alerts     []alerts.Alert `json:"alerts"`
		NextCursor string         `json:"next_cursor"`
	}
	code, m := f.do(t, "GET", "/api/v1/alerts?site=hall&limit=3", "", &page)
	if code != 200 || len(page.Alerts) != 3 || page.NextCursor == "" {
		t.Fatalf("first page: %d %v", code, m)
	}
	first := append([]alerts.Alert(nil), page.Alerts...)
	code, _ = f.do(t, "GET", "/api/v1/alerts?site=hall&limit=3&cursor="+page.NextCursor, "", &page)
	if code != 200 || len(page.Alerts) != 2 || page.NextCursor != "" {
		t.Fatalf("second page: %d, %d alerts, next %q", code, len(page.Alerts), page.NextCursor)
	}
	if first[0].Key != "4" || page.Alerts[1].Key != "0" {
		t.Fatalf("not newest first: %s … %s", first[0].Key, page.Alerts[1].Key)
	}
	// The JSON shape of DESIGN.md.
	a := m["alerts"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "camera", "camera_name", "site", "grid", "type", "severity", "source", "signal", "status", "version",
		"raised_at", "ended_at", "count", "ack_deadline", "resolve_deadline", "overdue", "acknowledged_at", "acknowledged_by", "unit",
		"dispatched_at", "resolved_at", "feedback", "false_alarm", "clip", "detail", "history"} {
		if _, ok := a[k]; !ok {
			t.Errorf("alert JSON lacks %q", k)
		}
	}
	code, m = f.do(t, "GET", "/api/v1/alerts?status=dispatched&severity=critical", "", &page)
	if code != 200 || len(page.Alerts) != 1 || page.Alerts[0].Camera != "gate" {
		t.Fatalf("status filter: %d %v", code, m)
	}
	since := alertstest.T0.Add(2*time.Minute + time.Second).Format(time.RFC3339)
	until := alertstest.T0.Add(4*time.Minute + time.Second).Format(time.RFC3339)
	if code, _ = f.do(t, "GET", "/api/v1/alerts?camera=hall-entrance&since="+since+"&until="+until, "", &page); code != 200 || len(page.Alerts) != 2 {
		t.Fatalf("time filter: %d, %d alerts", code, len(page.Alerts))
	}

	var got alerts.Alert
	if code, _ = f.do(t, "GET", "/api/v1/alerts/"+first[0].ID, "", &got); code != 200 || got.ID != first[0].ID {
		t.Fatalf("get: %d %s", code, got.ID)
	}
	code, m = f.do(t, "GET", "/api/v1/alerts/01JD0000000000000000000000", "", nil)
	if code != 404 || m["code"] != "not_found" || m["error"] == "" {
		t.Fatalf("get missing: %d %v", code, m)
	}
}

func TestAPIBadRequests(t *testing.T) {
	f := newAPIFixture(t)
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	a := f.Only(t)
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"bad status", "GET", "/api/v1/alerts?status=closed", "", 400, "bad_request"},
		{"bad severity", "GET", "/api/v1/alerts?severity=huge", "", 400, "bad_request"},
		{"bad since", "GET", "/api/v1/alerts?since=yesterday", "", 400, "bad_request"},
		{"bad limit", "GET", "/api/v1/alerts?limit=0", "", 400, "bad_request"},
		{"huge limit", "GET", "/api/v1/alerts?limit=100000", "", 400, "bad_request"},
		{"bad cursor", "GET", "/api/v1/alerts?cursor=bm90LWEtY3Vyc29y", "", 400, "bad_request"},
		{"bad id", "GET", "/api/v1/alerts/a.b", "", 400, "bad_request"},
		{"bad stats range", "GET", "/api/v1/alerts/stats?from=2026-11-27T00:00:00Z&to=2026-11-26T00:00:00Z", "", 400, "bad_request"},
		{"bad stats time", "GET", "/api/v1/alerts/stats?from=monday", "", 400, "bad_request"},
		{"stats from 1970", "GET", "/api/v1/alerts/stats?from=1970-01-01T00:00:00Z&to=2026-11-26T00:00:00Z", "", 400, "bad_request"},
		{"stats over 400 days", "GET", "/api/v1/alerts/stats?from=2025-10-22T00:00:00Z&to=2026-11-26T00:00:01Z", "", 400, "bad_request"},
		{"stats from 1970 with the default end", "GET", "/api/v1/alerts/stats?from=1970-01-01T00:00:00Z", "", 400, "bad_request"},
		{"unknown field", "POST", "/api/v1/alerts/" + a.ID + "/ack", `{"version":1,"priority":"high"}`, 400, "bad_request"},
		{"not JSON", "POST", "/api/v1/alerts/" + a.ID + "/ack", `version=1`, 400, "bad_request"},
		{"trailing data", "POST", "/api/v1/alerts/" + a.ID + "/ack", `{"version":1}{}`, 400, "bad_request"},
		{"too large", "POST", "/api/v1/alerts/" + a.ID + "/ack", `{"note":"` + strings.Repeat("x", 70<<10) + `","version":1}`, 413, "too_large"},
		{"no version", "POST", "/api/v1/alerts/" + a.ID + "/ack", `{"note":"x"}`, 400, "bad_request"},
		{"no unit", "POST", "/api/v1/alerts/" + a.ID + "/dispatch", `{"version":1}`, 400, "bad_request"},
		{"unknown unit", "POST", "/api/v1/alerts/" + a.ID + "/dispatch", `{"unit":"army","version":1}`, 400, "bad_request"},
		{"follow-up without satisfied", "POST", "/api/v1/alerts/" + a.ID + "/follow-up", `{"note":"x"}`, 400, "bad_request"},
		{"follow-up on an open alert", "POST", "/api/v1/alerts/" + a.ID + "/follow-up", `{"satisfied":true}`, 409, "invalid_transition"},
		{"ack missing alert", "POST", "/api/v1/alerts/01JD0000000000000000000000/ack", `{"version":1}`, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, m := f.do(t, c.method, c.path, c.body, nil)
			if code != c.status || m["code"] != c.code || m["error"] == "" {
				t.Fatalf("%d %v, want %d %s", code, m, c.status, c.code)
			}
		})
	}
	if cur := f.Only(t); cur.Version != a.Version {
		t.Fatalf("bad requests changed the alert to version %d", cur.Version)
	}
}

func TestAPIActions(t *testing.T) {
	f := newAPIFixture(t)
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	a := f.Only(t)

	// Two desks acknowledge the same version: one wins, the other gets 409
	// with the current alert.
	codes := make([]int, 2)
	bodies := make([]map[string]any, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			codes[i], bodies[i] = f.do(t, "POST", "/api/v1/alerts/"+a.ID+"/ack", fmt.Sprintf(`{"note":"desk %d","version":%d}`, i, a.Version), nil)
		})
	}
	wg.Wait()
	if !(codes[0] == 200 && codes[1] == 409) && !(codes[0] == 409 && codes[1] == 200) {
		t.Fatalf("concurrent acks: %v", codes)
	}
	lost := bodies[0]
	if codes[1] == 409 {
		lost = bodies[1]
	}
	cur, _ := lost["alert"].(map[string]any)
	if lost["code"] != "conflict" || cur == nil || cur["status"] != "acknowledged" || cur["version"] != float64(2) {
		t.Fatalf("409 body %v", lost)
	}

	var got alerts.Alert
	code, m := f.do(t, "POST", "/api/v1/alerts/"+a.ID+"/dispatch", `{"unit":"zongzhi","note":"please","version":2}`, &got)
	if code != 200 || got.Status != alerts.StatusDispatched || got.Unit != "zongzhi" || got.Version != 3 {
		t.Fatalf("dispatch: %d %v", code, m)
	}
	code, m = f.do(t, "POST", "/api/v1/alerts/"+a.ID+"/resolve", `{"feedback":"mediated","false_alarm":false,"version":2}`, nil)
	if code != 409 || m["code"] != "conflict" {
		t.Fatalf("stale resolve: %d %v", code, m)
	}
	code, m = f.do(t, "POST", "/api/v1/alerts/"+a.ID+"/resolve", `{"feedback":"mediated","false_alarm":true,"version":3}`, &got)
	if code != 200 || got.Status != alerts.StatusResolved || got.Feedback != "mediated" || !got.FalseAlarm || got.ResolvedBy != "desk-1" {
		t.Fatalf("resolve: %d %v", code, m)
	}
	code, m = f.do(t, "POST", "/api/v1/alerts/"+a.ID+"/ack", `{"version":4}`, nil)
	if code != 409 || m["code"] != "invalid_transition" {
		t.Fatalf("ack of a resolved alert: %d %v", code, m)
	}
	code, m = f.do(t, "POST", "/api/v1/alerts/"+a.ID+"/follow-up", `{"satisfied":true,"note":"thanks"}`, &got)
	if code != 200 || got.FollowUp == nil || !got.FollowUp.Satisfied || got.FollowUp.By != "desk-1" {
		t.Fatalf("follow-up: %d %v", code, m)
	}

	var s alerts.Stats
	from := alertstest.T0.Add(-time.Hour).Format(time.RFC3339)
	to := alertstest.T0.Add(time.Hour).Format(time.RFC3339)
	code, m = f.do(t, "GET", "/api/v1/alerts/stats?from="+from+"&to="+to, "", &s)
	if code != 200 || s.Total != 1 || s.ByStatus[alerts.StatusResolved] != 1 || s.ByUnit["zongzhi"] != 1 || s.SatisfactionRate != 1 {
		t.Fatalf("stats: %d %v", code, m)
	}

	// The audit records are written by the engine's effects stage, after
	// the actions.
	var actions []string
	testutil.WaitFor(t, 10*time.Second, "the four actions in the audit log", func() bool {
		rs, err := f.Journal.AuditSince(t.Context(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		actions = actions[:0]
		for _, r := range rs {
			actions = append(actions, r.Action+"/"+r.By)
		}
		return len(actions) >= 4
	})
	if strings.Join(actions, " ") != "acknowledged/desk-1 dispatched/desk-1 resolved/desk-1 follow_up/desk-1" {
		t.Fatalf("audit %v", actions)
	}
}

// downJournal answers every read and append as a journal whose backend is
// unreachable would.
type downJournal struct{ alerts.Journal }

func (downJournal) Get(context.Context, string) (alerts.Alert, error) {
	return alerts.Alert{}, alertstest.ErrDown
}
func (downJournal) List(context.Context, alerts.Filter) ([]alerts.Alert, string, error) {
	return nil, "", alertstest.ErrDown
}
func (downJournal) Append(context.Context, alerts.Change, int64) (alerts.Change, error) {
	return alerts.Change{}, alertstest.ErrDown
}

func TestAPIJournalUnavailable(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	j := downJournal{f.Journal}
	e, err := alerts.New(alerts.Options{Journal: j, Units: []alerts.Unit{{ID: "police"}}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := alertsapi.New(alertsapi.Options{Engine: e, Actor: func(*http.Request) string { return "desk-1" }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	af := &apiFixture{Fixture: f, srv: srv}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/alerts", ""},
		{"GET", "/api/v1/alerts/01JD0000000000000000000000", ""},
		{"POST", "/api/v1/alerts/01JD0000000000000000000000/ack", `{"version":1}`},
	} {
		code, m := af.do(t, c.method, c.path, c.body, nil)
		if code != 503 || m["code"] != "unavailable" {
			t.Errorf("%s %s: %d %v, want 503 unavailable", c.method, c.path, code, m)
		}
		if msg, _ := m["error"].(string); msg == "" || strings.Contains(msg, "6379") {
			t.Errorf("%s %s: message %q", c.method, c.path, msg)
		}
	}
}

func TestAPIStatsWindow(t *testing.T) {
	f := newAPIFixture(t)
	// Far from the wall clock, so a window taken from time.Now would miss it.
	f.Clock.Advance(90 * 24 * time.Hour)
	now := alertstest.T0.Add(90 * 24 * time.Hour)
	f.Handle(t, alertstest.Ev("gate", alerts.Intrusion, alerts.Active))
	f.Clock.Advance(time.Hour)

	var s alerts.Stats
	code, m := f.do(t, "GET", "/api/v1/alerts/stats", "", &s)
	if code != 200 || !s.To.Equal(now.Add(time.Hour)) || !s.From.Equal(now.Add(-23*time.Hour)) || s.Total != 1 {
		t.Fatalf("default window: %d %v; want the 24 h before the engine clock's now, holding the alert", code, m)
	}
	from, to := now.Add(-400*24*time.Hour).Format(time.RFC3339), now.Format(time.RFC3339)
	if code, m := f.do(t, "GET", "/api/v1/alerts/stats?from="+from+"&to="+to, "", nil); code != 200 {
		t.Fatalf("exactly 400 days: %d %v", code, m)
	}
}

// TestAPIStatsDay: day=YYYY-MM-DD is that calendar day in the centre's time
// zone.
func TestAPIStatsDay(t *testing.T) {
	f := newAPIFixture(t)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	api, err := alertsapi.New(alertsapi.Options{Engine: f.Engine, Actor: func(*http.Request) string { return "desk-1" }, Location: shanghai})
	if err != nil {
		t.Fatal(err)
	}
	get := func(q string) (int, alerts.Stats) {
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/alerts/stats?"+q, nil))
		var s alerts.Stats
		json.Unmarshal(w.Body.Bytes(), &s)
		return w.Code, s
	}
	code, s := get("day=2026-11-26")
	if code != 200 || !s.From.Equal(time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)) || !s.To.Equal(time.Date(2026, 11, 26, 16, 0, 0, 0, time.UTC)) {
		t.Fatalf("day in Asia/Shanghai: %d from %v to %v", code, s.From, s.To)
	}
	for _, q := range []string{"day=26-11-2026", "day=2026-11-26&from=2026-11-26T00:00:00Z"} {
		if code, _ := get(q); code != 400 {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}
}
