package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A manual hold keeps its footage through retention and a restart, with
// its case, author and creation time; released, the footage goes at the
// next sweep.
func TestManualHoldSurvivesRetentionAndRestart(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: t0}
	r, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now, Retain: time.Hour})
	for i := range 6 { // 21:05 .. 21:55, 10 minutes each
		addSegment(t, r, "gate", t0.Add(time.Duration(i)*10*time.Minute), 10*time.Minute, 100)
	}
	ctx := context.Background()
	h, err := r.PlaceManualHold(ctx, ManualHold{Camera: "gate", Start: t0.Add(21 * time.Minute), End: t0.Add(29 * time.Minute),
		Case: "2026-刑-0042", Reason: "theft at the counter", By: "inv-1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !IsManualHoldID(h.ID) || h.By != "inv-1" || !h.CreatedAt.Equal(t0) || h.Case != "2026-刑-0042" {
		t.Fatalf("placed %+v", h)
	}
	clock.Set(t0.Add(5 * time.Hour))
	if err := r.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, r, "gate"), "21:25"; got != want {
		t.Fatalf("kept %q, want %q", got, want)
	}

	r2, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now, Retain: time.Hour})
	clock.Set(t0.Add(30 * 24 * time.Hour)) // no expiry: held until released
	if err := r2.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, r2, "gate"), "21:25"; got != want {
		t.Fatalf("after restart kept %q, want %q", got, want)
	}
	got := r2.HoldsIn("gate", time.Time{}, time.Time{})
	if len(got) != 1 || got[0] != h {
		t.Fatalf("holds after restart %+v, want %+v", got, h)
	}
	rel, err := r2.ReleaseManualHold(ctx, h.ID)
	if err != nil || rel != h {
		t.Fatalf("release: %+v %v", rel, err)
	}
	if _, err := r2.ReleaseManualHold(ctx, h.ID); !errors.Is(err, ErrHoldNotFound) {
		t.Fatalf("second release: %v", err)
	}
	if err := r2.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, r2, "gate"); got != "" {
		t.Fatalf("kept %q after the release", got)
	}
	r3, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now})
	if hs := r3.HoldsIn("", time.Time{}, time.Time{}); len(hs) != 0 {
		t.Fatalf("released hold back after restart: %+v", hs)
	}
}

// Manual and alert holds share the store but not their IDs: an alert's
// hold cannot be released as a manual one, nor an alert place an "m-" ID.
func TestManualHoldIDSpace(t *testing.T) {
	r, _ := newTestRecorder(t, Options{})
	ctx := context.Background()
	alert := Hold{ID: "01JD0000000000000000000000", Camera: "gate", Start: t0, Reason: "intrusion"}
	if err := r.PlaceHold(ctx, alert); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReleaseManualHold(ctx, alert.ID); !errors.Is(err, ErrAlertHold) {
		t.Fatalf("releasing an alert's hold: %v", err)
	}
	if hs := r.HoldsIn("gate", time.Time{}, time.Time{}); len(hs) != 1 || hs[0].ID != alert.ID {
		t.Fatalf("alert hold gone: %+v", hs)
	}
	m, err := r.PlaceManualHold(ctx, ManualHold{Camera: "gate", Start: t0, End: t0.Add(time.Minute), Case: "c", Reason: "r"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PlaceHold(ctx, Hold{ID: m.ID, Camera: "gate", Start: t0}); err == nil {
		t.Fatal("PlaceHold took a manual hold's ID")
	}
	if _, err := r.ReleaseManualHold(ctx, "m-nope"); !errors.Is(err, ErrHoldNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestHoldsInFilters(t *testing.T) {
	r, _ := newTestRecorder(t, Options{})
	ctx := context.Background()
	place := func(cam string, from, to time.Duration) string {
		h, err := r.PlaceManualHold(ctx, ManualHold{Camera: cam, Start: t0.Add(from), End: t0.Add(to), Case: "c", Reason: "r"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return h.ID
	}
	a := place("gate", 0, time.Hour)
	b := place("gate", 2*time.Hour, 3*time.Hour)
	c := place("hall", time.Minute, time.Hour)
	if err := r.PlaceHold(ctx, Hold{ID: "01JD0000000000000000000000", Camera: "gate", Start: t0.Add(150 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	all := func(hs []Hold) string {
		var s []string
		for _, h := range hs {
			switch h.ID {
			case a:
				s = append(s, "a")
			case b:
				s = append(s, "b")
			case c:
				s = append(s, "c")
			default:
				s = append(s, "alert")
			}
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		name       string
		camera     string
		start, end time.Time
		want       string
	}{
		{"everything", "", time.Time{}, time.Time{}, "a c b alert"},
		{"one camera", "gate", time.Time{}, time.Time{}, "a b alert"},
		{"range before b", "gate", t0, t0.Add(2 * time.Hour), "a"},
		{"open alert hold runs on", "gate", t0.Add(5 * time.Hour), t0.Add(6 * time.Hour), "alert"},
		{"touching end excluded", "hall", t0.Add(time.Hour), time.Time{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := all(r.HoldsIn(tc.camera, tc.start, tc.end)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

type memAudit struct {
	mu      sync.Mutex
	entries []AuditEntry
}

func (m *memAudit) Audit(_ context.Context, e AuditEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
	return nil
}

func newHoldServer(t *testing.T) (*Recorder, *memAudit, *httptest.Server) {
	t.Helper()
	r, _ := newTestRecorder(t, Options{})
	audit := &memAudit{}
	api, err := NewHoldAPI(HoldAPIOptions{
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
	if !IsManualHoldID(h.ID) || h.Kind != "manual" || h.By != "inv-1" || h.CreatedAt == nil || h.Case != "A-17" ||
		h.End == nil || h.Start != "2026-11-26T13:05:00.000Z" || hdr.Get("Location") != "/api/v1/holds/"+h.ID {
		t.Fatalf("placed %s (Location %q)", body, hdr.Get("Location"))
	}
	if err := r.PlaceHold(context.Background(), Hold{ID: "01JD0000000000000000000000", Camera: "gate", Start: t0, Reason: "intrusion"}); err != nil {
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
