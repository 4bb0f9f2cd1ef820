package footageapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"vigil/recorder"
)

type memAudit struct {
	mu      sync.Mutex
	entries []recorder.AuditEntry
}

func (m *memAudit) Audit(_ context.Context, e recorder.AuditEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
	return nil
}

func newHoldServer(t *testing.T) (*recorder.Recorder, *memAudit, *httptest.Server) {
	t.Helper()
	r, _ := newTestRecorder(t, recorder.Options{})
	audit := &memAudit{}
	api, err := NewHoldServer(HoldOptions{
		Recorder:    r,
		KnownCamera: func(id string) bool { return id == "gate" || id == "hall" },
		Audit:       audit,
		Actor:       func(*http.Request) string { return "inv-1" },
		Now:         func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, nil)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return r, audit, srv
}

func do(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest(method, url, rd)
		req.Header.Set("Content-Type", "application/json")
	} else {
		req, err = http.NewRequest(method, url, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// The API places, lists and releases a manual hold, audits both with the
// case number, and refuses to release an alert's hold.
func TestHoldAPIPlaceListRelease(t *testing.T) {
	r, audit, srv := newHoldServer(t)
	code, hdr, body := do(t, "POST", srv.URL+"/api/v1/holds",
		`{"camera":"gate","start":"2026-11-26T21:05:00+08:00","end":"2026-11-26T22:05:00+08:00","case":"A-17","reason":"assault in the hall"}`)
	if code != http.StatusCreated {
		t.Fatalf("place: %d %s", code, body)
	}
	var h holdJSON
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	if !recorder.IsManualHoldID(h.ID) || h.Kind != "manual" || h.By != "inv-1" || h.CreatedAt == nil || h.Case != "A-17" ||
		h.End == nil || h.Start != "2026-11-26T13:05:00.000Z" || hdr.Get("Location") != "/api/v1/holds/"+h.ID {
		t.Fatalf("placed %s (Location %q)", body, hdr.Get("Location"))
	}
	if err := r.PlaceHold(context.Background(), recorder.Hold{ID: "01JD0000000000000000000000", Camera: "gate", Start: t0, Reason: "intrusion"}); err != nil {
		t.Fatal(err)
	}

	code, _, body = do(t, "GET", srv.URL+"/api/v1/holds?camera=gate", "")
	var list struct{ Holds []holdJSON }
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list.Holds) != 2 {
		t.Fatalf("list: %d %s", code, body)
	}
	if al := list.Holds[1]; al.Kind != "alert" || al.Alert != al.ID || al.End != nil {
		t.Fatalf("alert hold listed as %+v", al)
	}
	code, _, body = do(t, "GET", srv.URL+"/api/v1/holds?camera=hall", "")
	if code != 200 || body != "{\"holds\":[]}\n" {
		t.Fatalf("other camera: %d %s", code, body)
	}

	code, _, body = do(t, "DELETE", srv.URL+"/api/v1/holds/01JD0000000000000000000000", "")
	if code != http.StatusConflict || !strings.Contains(body, `"code":"alert_hold"`) {
		t.Fatalf("releasing an alert hold: %d %s", code, body)
	}
	if code, _, body = do(t, "DELETE", srv.URL+"/api/v1/holds/"+h.ID, ""); code != http.StatusNoContent {
		t.Fatalf("release: %d %s", code, body)
	}
	if code, _, body = do(t, "DELETE", srv.URL+"/api/v1/holds/"+h.ID, ""); code != http.StatusNotFound {
		t.Fatalf("release again: %d %s", code, body)
	}
	if code, _, _ = do(t, "DELETE", srv.URL+"/api/v1/holds/m-01JD0000000000000000000000", ""); code != http.StatusNotFound {
		t.Fatalf("release unknown: %d", code)
	}

	audit.mu.Lock()
	defer audit.mu.Unlock()
	if len(audit.entries) != 2 {
		t.Fatalf("audit: %+v", audit.entries)
	}
	for i, want := range []string{AuditHoldPlaced, AuditHoldReleased} {
		e := audit.entries[i]
		if e.Action != want || e.By != "inv-1" || e.Object != "hold/"+h.ID || e.Detail["case"] != "A-17" ||
			e.Detail["camera"] != "gate" || e.Detail["reason"] != "assault in the hall" || e.Detail["end"] != "2026-11-26T14:05:00.000Z" {
			t.Errorf("audit %d: %+v", i, e)
		}
	}
}

func TestHoldAPIRejectsBadInput(t *testing.T) {
	_, audit, srv := newHoldServer(t)
	const (
		s = `"start":"2026-11-26T21:00:00Z"`
		e = `"end":"2026-11-26T22:00:00Z"`
	)
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"unknown camera", `{"camera":"gaet",` + s + `,` + e + `,"case":"c","reason":"r"}`, 400, "unknown_camera"},
		{"camera not an id", `{"camera":"../x",` + s + `,` + e + `,"case":"c","reason":"r"}`, 400, "bad_camera_id"},
		{"end before start", `{"camera":"gate","start":"2026-11-26T22:00:00Z","end":"2026-11-26T21:00:00Z","case":"c","reason":"r"}`, 400, "bad_range"},
		{"empty range", `{"camera":"gate",` + s + `,"end":"2026-11-26T21:00:00Z","case":"c","reason":"r"}`, 400, "bad_range"},
		{"missing end", `{"camera":"gate",` + s + `,"case":"c","reason":"r"}`, 400, "bad_range"},
		{"range over the limit", `{"camera":"gate",` + s + `,"end":"2027-01-26T21:00:00Z","case":"c","reason":"r"}`, 400, "range_too_long"},
		{"bad time", `{"camera":"gate","start":"yesterday",` + e + `,"case":"c","reason":"r"}`, 400, "bad_time"},
		{"missing case", `{"camera":"gate",` + s + `,` + e + `,"reason":"r"}`, 400, "missing_case"},
		{"blank case", `{"camera":"gate",` + s + `,` + e + `,"case":"  ","reason":"r"}`, 400, "missing_case"},
		{"missing reason", `{"camera":"gate",` + s + `,` + e + `,"case":"c"}`, 400, "missing_reason"},
		{"case on two lines", `{"camera":"gate",` + s + `,` + e + `,"case":"c\nd","reason":"r"}`, 400, "bad_case"},
		{"reason too long", `{"camera":"gate",` + s + `,` + e + `,"case":"c","reason":"` + strings.Repeat("x", 1001) + `"}`, 400, "bad_reason"},
		{"unknown field", `{"camera":"gate",` + s + `,` + e + `,"case":"c","reason":"r","until":"x"}`, 400, "bad_request"},
		{"not JSON", `camera=gate`, 400, "bad_request"},
		{"body too large", `{"camera":"gate",` + s + `,` + e + `,"case":"c","reason":"` + strings.Repeat("x", 20<<10) + `"}`, 413, "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := do(t, "POST", srv.URL+"/api/v1/holds", tc.body)
			if code != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) {
				t.Fatalf("got %d %s, want %d %s", code, body, tc.status, tc.code)
			}
		})
	}
	for _, q := range []string{"?camera=../x", "?start=nope", "?start=2026-11-26T22:00:00Z&end=2026-11-26T21:00:00Z"} {
		if code, _, body := do(t, "GET", srv.URL+"/api/v1/holds"+q, ""); code != 400 {
			t.Errorf("list %s: %d %s", q, code, body)
		}
	}
	if len(audit.entries) != 0 {
		t.Fatalf("refused requests audited: %+v", audit.entries)
	}
}
