package ingest

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	vigiltest "vigil/internal/testutil"

	"vigil/internal/media"
)

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	vigiltest.WaitFor(t, d, what, cond)
}

// harness runs Streams for one test and joins it at cleanup.
type harness struct {
	s    *Streams
	reg  *prometheus.Registry
	logs *vigiltest.Buffer
}

func testOptions() Options {
	return Options{
		OfflineAfter: 300 * time.Millisecond,
		StallAfter:   1500 * time.Millisecond, // generous: the machine is shared and -race is slow
		ReadTimeout:  2 * time.Second,
		Backoff:      Backoff{Min: 50 * time.Millisecond, Max: 400 * time.Millisecond, Jitter: 0.2, ResetAfter: time.Second},
	}
}

func startStreams(t *testing.T, opts Options, cams ...Camera) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), logs: &vigiltest.Buffer{}}
	opts.Registerer = h.reg
	opts.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	if _, err := s.Apply(cams); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", h.logs.String())
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
		// Everything Run started is joined: only the test's own servers remain.
		waitFor(t, 2*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+1 })
	})
	return h
}

func (h *harness) status(t *testing.T, id string) CameraStatus {
	t.Helper()
	st, err := h.s.Status(id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (h *harness) waitStatus(t *testing.T, id, want string, d time.Duration) {
	t.Helper()
	waitFor(t, d, id+" "+want, func() bool { return h.status(t, id).Status == want })
}

func counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

func camFor(id string, srv *cameraServer, transport string) Camera {
	return Camera{ID: id, Name: "Cam " + id, Site: "hall", Grid: "G03", URL: srv.URL(),
		Transport: transport, Enabled: true, ONVIFMetadata: true}
}

// sinkEvent is one call a recordingSink saw.
type sinkEvent struct {
	stream  *media.Stream
	au      *media.AccessUnit
	brk     string
	dropped int
	at      time.Time
}

// recordingSink keeps everything it receives.
type recordingSink struct {
	mu     sync.Mutex
	events []sinkEvent
	block  chan struct{} // when set, OnAccessUnit waits for it to close
}

func (r *recordingSink) OnStream(s media.Stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, sinkEvent{stream: &s, at: time.Now()})
}

func (r *recordingSink) OnAccessUnit(au media.AccessUnit) {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, sinkEvent{au: &au, at: time.Now()})
}

func (r *recordingSink) OnBreak(reason string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, sinkEvent{brk: reason, dropped: n, at: time.Now()})
}

func (r *recordingSink) snapshot() []sinkEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sinkEvent(nil), r.events...)
}

func (r *recordingSink) count(pred func(sinkEvent) bool) int {
	n := 0
	for _, e := range r.snapshot() {
		if pred(e) {
			n++
		}
	}
	return n
}

func isVideo(e sinkEvent) bool  { return e.au != nil && e.au.Kind == media.Video }
func isStream(e sinkEvent) bool { return e.stream != nil }

func newTestRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
