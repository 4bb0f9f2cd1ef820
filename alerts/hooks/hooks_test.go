package hooks

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"vigil/alerts"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// lineParser turns each non-empty body line into an event of that type.
func lineParser(camera, _ string, body io.Reader, now time.Time) ([]alerts.Event, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	var out []alerts.Event
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "bad" {
			return nil, errors.New("line \"bad\": not an event")
		}
		out = append(out, alerts.Event{Camera: camera, Type: alerts.Type(l), State: alerts.Active, At: now})
	}
	return out, nil
}

type hookFixture struct {
	mux     *http.ServeMux
	hooks   *Intake
	reg     *prometheus.Registry
	now     time.Time
	mu      sync.Mutex
	got     []alerts.Event
	refuse  bool
	room    int // events the queue takes before it is full; <0: no bound
	maxBody int64
}

func newHookFixture(t *testing.T) *hookFixture {
	f := &hookFixture{reg: prometheus.NewRegistry(), now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), maxBody: 1 << 10, room: -1}
	h, err := New(Options{
		Secret: func(c string) (string, bool) {
			if c == "gate" {
				return "s3cret", true
			}
			return "", false
		},
		SubmitAllWait: func(_ context.Context, evs []alerts.Event) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.refuse || (f.room >= 0 && len(evs) > f.room) {
				return alerts.ErrQueueFull
			}
			if f.room >= 0 {
				f.room -= len(evs)
			}
			f.got = append(f.got, evs...)
			return nil
		},
		Parsers:    map[string]Parser{"events": lineParser},
		MaxBody:    f.maxBody,
		Now:        func() time.Time { return f.now },
		Registerer: f.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.hooks = h
	f.mux = http.NewServeMux()
	f.mux.Handle("POST /api/v1/hooks/{camera}/{vendor}", h)
	return f
}

func (f *hookFixture) post(target, body string, basicPass string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", target, strings.NewReader(body))
	if basicPass != "" {
		r.SetBasicAuth("cam", basicPass)
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	return w
}

func TestHooks(t *testing.T) {
	f := newHookFixture(t)
	cases := []struct {
		name, target, body, basic string
		want                      int
		code                      string
	}{
		{"accepted with key", "/api/v1/hooks/gate/events?key=s3cret", "motion", "", 202, ""},
		{"accepted with basic auth", "/api/v1/hooks/gate/events", "intrusion\ntamper", "s3cret", 202, ""},
		{"wrong key", "/api/v1/hooks/gate/events?key=nope", "motion", "", 401, "unauthorized"},
		{"no key", "/api/v1/hooks/gate/events", "motion", "", 401, "unauthorized"},
		{"camera without secret", "/api/v1/hooks/hall/events?key=s3cret", "motion", "", 401, "unauthorized"},
		{"unknown vendor", "/api/v1/hooks/gate/axis?key=s3cret", "motion", "", 404, "not_found"},
		{"parse error", "/api/v1/hooks/gate/events?key=s3cret", "bad", "", 400, "bad_request"},
		{"too large", "/api/v1/hooks/gate/events?key=s3cret", strings.Repeat("x", 2000), "", 413, "too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := f.post(c.target, c.body, c.basic)
			if w.Code != c.want || !strings.Contains(w.Body.String(), c.code) {
				t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, c.want, c.code)
			}
		})
	}
	if len(f.got) != 3 || f.got[0].Type != "motion" || f.got[2].Camera != "gate" {
		t.Fatalf("events %+v", f.got)
	}
	if v := testutil.ToFloat64(f.hooks.requests.WithLabelValues("events", "202")); v != 2 {
		t.Fatalf("202 counter %v", v)
	}
	f.refuse = true
	if w := f.post("/api/v1/hooks/gate/events?key=s3cret", "motion", ""); w.Code != 503 {
		t.Fatalf("full queue: %d", w.Code)
	}
}

func TestHooksRateLimit(t *testing.T) {
	f := newHookFixture(t)
	ok, limited := 0, 0
	for range 60 {
		switch f.post("/api/v1/hooks/gate/events?key=s3cret", "motion", "").Code {
		case 202:
			ok++
		case 429:
			limited++
		}
	}
	if ok != 50 || limited != 10 {
		t.Fatalf("ok %d limited %d, want 50 and 10", ok, limited)
	}
	// Half a second refills 25 tokens.
	f.now = f.now.Add(500 * time.Millisecond)
	ok = 0
	for range 30 {
		if f.post("/api/v1/hooks/gate/events?key=s3cret", "motion", "").Code == 202 {
			ok++
		}
	}
	if ok != 25 {
		t.Fatalf("after refill ok %d, want 25", ok)
	}
}

// A body of several events is queued whole or not at all, so the camera's
// retry after a 503 does not duplicate what got in the first time.
func TestHooksAllOrNothing(t *testing.T) {
	f := newHookFixture(t)
	f.room = 2
	body := "motion\ntamper\nintrusion"
	if w := f.post("/api/v1/hooks/gate/events?key=s3cret", body, ""); w.Code != 503 || !strings.Contains(w.Body.String(), "busy") {
		t.Fatalf("three events, room for two: %d %s, want 503 busy", w.Code, w.Body)
	}
	if len(f.got) != 0 {
		t.Fatalf("%d events queued by a refused request, want none: %+v", len(f.got), f.got)
	}
	f.room = 3
	if w := f.post("/api/v1/hooks/gate/events?key=s3cret", body, ""); w.Code != 202 {
		t.Fatalf("retry: %d %s", w.Code, w.Body)
	}
	if len(f.got) != 3 || f.got[0].Type != "motion" || f.got[2].Type != "intrusion" {
		t.Fatalf("after the retry: %+v, want the three events once, in order", f.got)
	}
}
