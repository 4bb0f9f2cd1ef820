package hooks_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"vigil/alerts"
	"vigil/alerts/alertstest"
	"vigil/alerts/boltjournal"
	"vigil/alerts/hooks"
)

// failingJournal refuses every batch, as a journal that cannot write.
type failingJournal struct {
	*boltjournal.Journal
	err error
}

func (j failingJournal) AppendBatch(_ context.Context, items []alerts.BatchItem) ([]alerts.Change, []error) {
	errs := make([]error, len(items))
	for i := range errs {
		errs[i] = j.err
	}
	return make([]alerts.Change, len(items)), errs
}

func openJournal(t *testing.T) *boltjournal.Journal {
	t.Helper()
	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(t.TempDir(), "journal.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// typeParser makes one active event of the body's type, keyed "door".
func typeParser(camera, _ string, body io.Reader, now time.Time) ([]alerts.Event, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	return []alerts.Event{{Camera: camera, Type: alerts.Type(strings.TrimSpace(string(b))), Key: "door",
		State: alerts.Active, At: now, Source: alerts.SourceGeneric}}, nil
}

// hookServer serves the webhook endpoints over submit.
func hookServer(t *testing.T, submit func(context.Context, []alerts.Event) error) http.Handler {
	t.Helper()
	h, err := hooks.New(hooks.Options{
		Secret:        func(string) (string, bool) { return "s3cret", true },
		SubmitAllWait: submit,
		Parsers:       map[string]hooks.Parser{"events": typeParser},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/hooks/{camera}/{vendor}", h)
	return mux
}

func postHook(h http.Handler, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/hooks/gate/events?key=s3cret", strings.NewReader(body)))
	return w
}

// alertsIn lists the alerts stored in j.
func alertsIn(t *testing.T, j alerts.Journal) []alerts.Alert {
	t.Helper()
	as, _, err := j.List(context.WithoutCancel(t.Context()), alerts.Filter{Limit: alerts.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// TestHookAnswers202OnlyWhenDurable: by the time SubmitAllWait returns (and
// the handler answers 202) the alert is readable from the journal, and a
// second post of the same signal is its count, not a new alert.
func TestHookAnswers202OnlyWhenDurable(t *testing.T) {
	j := openJournal(t)
	e, err := alerts.New(alerts.Options{Journal: j, Rules: alertstest.Rules(), Units: []alerts.Unit{{ID: "police"}}, Cameras: alertstest.Cameras})
	if err != nil {
		t.Fatal(err)
	}
	alertstest.RunBackground(t, e.Run)
	var seen []alerts.Alert // read from the journal right after SubmitAllWait returned
	h := hookServer(t, func(ctx context.Context, evs []alerts.Event) error {
		err := e.SubmitAllWait(ctx, evs)
		seen = alertsIn(t, j)
		return err
	})
	for i, want := range []int64{1, 2} {
		if w := postHook(h, "intrusion"); w.Code != http.StatusAccepted {
			t.Fatalf("post %d: %d %s", i+1, w.Code, w.Body)
		}
		if len(seen) != 1 || seen[0].Type != alerts.Intrusion || seen[0].Count != want {
			t.Fatalf("post %d: journal when SubmitAllWait returned: %+v, want one intrusion alert, count %d", i+1, seen, want)
		}
	}
}

// TestHookWaitTimesOut: with the engine not running the request gives up
// after Options.Wait with 503 unavailable; its event stays queued and is
// applied once Run runs, and the camera's retry only bumps the count. The
// bubble also proves no goroutine is left waiting.
func TestHookWaitTimesOut(t *testing.T) {
	j := openJournal(t)
	synctest.Test(t, func(t *testing.T) {
		e, err := alerts.New(alerts.Options{Journal: j, Rules: alertstest.Rules(), Units: []alerts.Unit{{ID: "police"}}, Cameras: alertstest.Cameras})
		if err != nil {
			t.Fatal(err)
		}
		var waitErr error
		h := hookServer(t, func(ctx context.Context, evs []alerts.Event) error {
			waitErr = e.SubmitAllWait(ctx, evs)
			return waitErr
		})
		start := time.Now()
		w := postHook(h, "intrusion")
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"unavailable"`) || !strings.Contains(w.Body.String(), "may still be applied") {
			t.Fatalf("no engine running: %d %s, want 503 unavailable saying the events may still be applied", w.Code, w.Body)
		}
		if waited := time.Since(start); waited != 5*time.Second {
			t.Fatalf("waited %v, want the default 5s", waited)
		}
		if !errors.Is(waitErr, alerts.ErrNotDurable) || !errors.Is(waitErr, context.DeadlineExceeded) || alerts.ErrorCode(waitErr) != alerts.CodeUnavailable {
			t.Fatalf("SubmitAllWait: %v, want ErrNotDurable wrapping the deadline", waitErr)
		}
		if as := alertsIn(t, j); len(as) != 0 {
			t.Fatalf("alerts before Run: %+v", as)
		}

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		// The retry queues behind the event of the timed-out request.
		if w := postHook(h, "intrusion"); w.Code != http.StatusAccepted {
			t.Fatalf("retry: %d %s", w.Code, w.Body)
		}
		as := alertsIn(t, j)
		if len(as) != 1 || as[0].Count != 2 {
			t.Fatalf("after the retry: %+v, want one alert with count 2", as)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestSubmitAllWaitCompletedByFlushOnStop: a waiter whose events are still
// queued when Run is stopped is completed by the flush, after every batch
// of its events (MaxBatch splits them) is appended.
func TestSubmitAllWaitCompletedByFlushOnStop(t *testing.T) {
	j := openJournal(t)
	synctest.Test(t, func(t *testing.T) {
		e, err := alerts.New(alerts.Options{Journal: j, MaxBatch: 2})
		if err != nil {
			t.Fatal(err)
		}
		evs := []alerts.Event{alertstest.Ev("a", alerts.Motion, alerts.Active), alertstest.Ev("b", alerts.Motion, alerts.Active), alertstest.Ev("c", alerts.Motion, alerts.Active)}
		waited := make(chan error, 1)
		go func() { waited <- e.SubmitAllWait(t.Context(), evs) }()
		synctest.Wait() // queued and waiting
		select {
		case err := <-waited:
			t.Fatalf("SubmitAllWait returned %v before any Run", err)
		default:
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // stopped before it ever runs its loop: only the flush handles them
		if err := e.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-waited; err != nil {
			t.Fatalf("SubmitAllWait: %v", err)
		}
		if as := alertsIn(t, j); len(as) != len(evs) {
			t.Fatalf("%d alerts, want %d", len(as), len(evs))
		}
	})
}

// TestSubmitAllWaitErrors: what the caller hears besides success, and the
// webhook answer for it.
func TestSubmitAllWaitErrors(t *testing.T) {
	diskGone := errors.New("disk gone")
	cases := []struct {
		name      string
		journal   func(*boltjournal.Journal) alerts.Journal
		queueSize int
		evs       []alerts.Event
		wantErr   error
		wantCode  alerts.Code
		status    int
		body      string
	}{
		{
			name:    "journal error is returned per event",
			journal: func(j *boltjournal.Journal) alerts.Journal { return failingJournal{j, diskGone} },
			evs:     []alerts.Event{alertstest.Ev("gate", alerts.Intrusion, alerts.Active)},
			wantErr: diskGone, wantCode: alerts.CodeInternal,
			status: 503, body: "may still be applied",
		},
		{
			name:      "queue too small: nothing queued",
			queueSize: 1,
			evs:       []alerts.Event{alertstest.Ev("gate", alerts.Intrusion, alerts.Active), alertstest.Ev("gate", alerts.Tamper, alerts.Active)},
			wantErr:   alerts.ErrQueueFull, wantCode: alerts.CodeUnavailable,
			status: 503, body: `"busy"`,
		},
		{
			name:     "invalid event: nothing queued",
			evs:      []alerts.Event{alertstest.Ev("gate", alerts.Intrusion, alerts.Active), {Camera: "gate", State: alerts.Active}},
			wantCode: alerts.CodeBadRequest,
			status:   400, body: "without type",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bj := openJournal(t)
			var j alerts.Journal = bj
			if c.journal != nil {
				j = c.journal(bj)
			}
			e, err := alerts.New(alerts.Options{Journal: j, Rules: alertstest.Rules(), Units: []alerts.Unit{{ID: "police"}}, Cameras: alertstest.Cameras, QueueSize: c.queueSize})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			err = e.SubmitAllWait(t.Context(), c.evs)
			if (c.wantErr != nil && !errors.Is(err, c.wantErr)) || alerts.ErrorCode(err) != c.wantCode {
				t.Fatalf("SubmitAllWait: %v (code %q), want %v with code %q", err, alerts.ErrorCode(err), c.wantErr, c.wantCode)
			}
			if c.journal != nil && !strings.Contains(err.Error(), "camera gate") {
				t.Fatalf("error %q does not name the camera", err)
			}
			h := hookServer(t, func(ctx context.Context, _ []alerts.Event) error { return e.SubmitAllWait(ctx, c.evs) })
			if w := postHook(h, "intrusion"); w.Code != c.status || !strings.Contains(w.Body.String(), c.body) {
				t.Fatalf("webhook: %d %s, want %d with %s", w.Code, w.Body, c.status, c.body)
			}
			if as := alertsIn(t, bj); len(as) != 0 {
				t.Fatalf("alerts stored: %+v", as)
			}
		})
	}
}
