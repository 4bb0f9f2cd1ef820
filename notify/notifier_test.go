package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigil/alerts"
	"vigil/alerts/boltjournal"
	"vigil/alerts/journaltest"
	"vigil/internal/backoff"
	vtestutil "vigil/internal/testutil"
	"vigil/notify"
)

// fakeClock is set by hand; its timers never fire (the tests drive
// Pump and Deliver themselves).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
func (c *fakeClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }
func (c *fakeClock) NewTimer(time.Duration) (<-chan time.Time, func() bool) {
	return nil, func() bool { return false }
}

var t0 = time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)

// recorder is a Receiver that keeps what it was sent.
type recorder struct {
	id   string
	mu   sync.Mutex
	msgs []notify.Message
	at   []time.Time
	now  func() time.Time
	down atomic.Bool
}

func (r *recorder) ID() string { return r.id }
func (r *recorder) Send(_ context.Context, m notify.Message, _ uint64) error {
	if r.down.Load() {
		return fmt.Errorf("receiver %s: HTTP 502", r.id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	r.at = append(r.at, r.now())
	return nil
}

func openJournal(t *testing.T, path string) (*boltjournal.Journal, notify.Outbox) {
	t.Helper()
	j, err := boltjournal.Open(boltjournal.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := j.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	return j, ob
}

func raise(t *testing.T, j alerts.Journal, id string, at time.Time) {
	t.Helper()
	a := journaltest.NewAlert(id, at)
	if _, err := j.Append(t.Context(), alerts.Change{Kind: alerts.KindRaised, At: at, By: alerts.System, Alert: a}, 0); err != nil {
		t.Fatal(err)
	}
}

func pumpAll(t *testing.T, n *notify.Notifier) {
	t.Helper()
	for {
		k, err := n.Pump(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			return
		}
	}
}

func newNotifier(t *testing.T, j alerts.Journal, ob notify.Outbox, clock *fakeClock, reg prometheus.Registerer, rs ...notify.Receiver) *notify.Notifier {
	t.Helper()
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID())
	}
	n, err := notify.New(notify.Options{
		Journal: j, Outbox: ob, Receivers: rs, BaseURL: "https://desk.example/",
		Routes:     []notify.Route{{Match: notify.Match{Kind: alerts.KindRaised, Severity: alerts.Critical}, To: ids}},
		Clock:      clock,
		Registerer: reg,
		Retry:      backoff.Policy{Min: time.Second, Max: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A burst of 100 critical alerts reaches a robot as at most 20 messages in
// any minute, and every alert is in one of them.
func TestBurstMergedWithinRateLimit(t *testing.T) {
	for _, spread := range []time.Duration{0, time.Second} {
		t.Run(fmt.Sprintf("one every %v", spread), func(t *testing.T) {
			j, ob := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
			t.Cleanup(func() { j.Close() })
			clock := &fakeClock{now: t0}
			rec := &recorder{id: "duty", now: clock.Now}
			reg := prometheus.NewRegistry()
			n := newNotifier(t, j, ob, clock, reg, rec)
			pumpAll(t, n) // the cursor starts at the (empty) journal's end
			var wake time.Time
			for i := range 100 {
				raise(t, j, fmt.Sprintf("01B%03d", i), clock.Now())
				pumpAll(t, n)
				if spread > 0 || i == 99 {
					// New entries wake the worker before its timer:
					// it looks again now, as here.
					next, err := n.Deliver(t.Context(), "duty")
					if err != nil {
						t.Fatal(err)
					}
					wake = next
					clock.Add(spread)
				}
			}
			for range 10 { // let the worker catch up, a step at a time
				if wake.IsZero() {
					break
				}
				clock.Set(wake)
				next, err := n.Deliver(t.Context(), "duty")
				if err != nil {
					t.Fatal(err)
				}
				wake = next
			}
			if !wake.IsZero() {
				t.Fatalf("still entries waiting after catching up (next %v)", wake)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for i := range rec.at {
				k := 0
				for _, at := range rec.at[i:] {
					if at.Sub(rec.at[i]) < time.Minute {
						k++
					}
				}
				if k > notify.DefaultRateLimit {
					t.Fatalf("%d messages within a minute of message %d at %v", k, i, rec.at[i])
				}
			}
			seen := map[string]int{}
			summaries := 0
			for _, m := range rec.msgs {
				if m.Merged > 0 {
					summaries++
					seen["merged"] += m.Merged
					continue
				}
				seen[m.AlertID]++
			}
			total := seen["merged"]
			for id, k := range seen {
				if id != "merged" {
					if k != 1 {
						t.Errorf("alert %s in %d messages", id, k)
					}
					total += k
				}
			}
			if total != 100 || summaries == 0 {
				t.Fatalf("%d messages (%d summaries) carry %d alerts, want 100", len(rec.msgs), summaries, total)
			}
			if spread == 0 && len(rec.msgs) != 20 {
				t.Errorf("a burst at once: %d messages, want 19 and a summary", len(rec.msgs))
			}
			sent := testutil.ToFloat64(mustCounter(t, reg, "duty", notify.ResultSent))
			merged := testutil.ToFloat64(mustCounter(t, reg, "duty", notify.ResultMerged))
			if sent+merged != 100 {
				t.Errorf("vigil_notifications_total sent %v + merged %v, want 100", sent, merged)
			}
		})
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, receiver, result string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_notifications_total" {
			continue
		}
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["receiver"] == receiver && labels["result"] == result {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.Counter.GetValue() })
			}
		}
	}
	t.Fatalf("no vigil_notifications_total{receiver=%q,result=%q}", receiver, result)
	return nil
}

func TestMetricExistsFromStart(t *testing.T) {
	j, ob := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	t.Cleanup(func() { j.Close() })
	reg := prometheus.NewRegistry()
	newNotifier(t, j, ob, &fakeClock{now: t0}, reg, &recorder{id: "a"}, &recorder{id: "b"})
	for _, r := range []string{"a", "b"} {
		for _, res := range []string{notify.ResultSent, notify.ResultMerged, notify.ResultFailed, notify.ResultExpired} {
			if v := testutil.ToFloat64(mustCounter(t, reg, r, res)); v != 0 {
				t.Errorf("%s %s = %v", r, res, v)
			}
		}
	}
}

// Notifications queued while the receiver was down survive a restart and
// reach it exactly once when it is back.
func TestRestartDeliversQueuedOnce(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var m notify.Message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("body %s: %v", b, err)
		}
		mu.Lock()
		got[m.AlertID]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "j.db")
	clock := &fakeClock{now: t0}
	hook := func() notify.Receiver {
		r, err := notify.NewReceiver(notify.ReceiverConfig{ID: "ops", Kind: notify.KindWebhook, URL: srv.URL, Secret: "s"}, srv.Client(), clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	j, ob := openJournal(t, path)
	n := newNotifier(t, j, ob, clock, nil, hook())
	pumpAll(t, n)
	for i := range 5 {
		raise(t, j, fmt.Sprintf("01R%03d", i), clock.Now())
	}
	pumpAll(t, n)
	if _, err := n.Deliver(t.Context(), "ops"); err == nil {
		t.Fatal("delivery to a receiver that is down succeeded")
	}
	// Two more changes are in the journal but not yet pumped at the "crash".
	raise(t, j, "01R005", clock.Now())
	raise(t, j, "01R006", clock.Now())
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	down.Store(false)
	clock.Add(10 * time.Minute)
	j, ob = openJournal(t, path)
	t.Cleanup(func() { j.Close() })
	n = newNotifier(t, j, ob, clock, nil, hook())
	pumpAll(t, n)
	for range 3 {
		if _, err := n.Deliver(t.Context(), "ops"); err != nil {
			t.Fatal(err)
		}
		pumpAll(t, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 7 {
		t.Fatalf("delivered %v, want 7 alerts", got)
	}
	for id, k := range got {
		if k != 1 {
			t.Errorf("alert %s delivered %d times", id, k)
		}
	}
}

// An entry that could not be delivered within max_age is dropped and
// counted, never sent late.
func TestExpiredAfterMaxAge(t *testing.T) {
	j, ob := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	t.Cleanup(func() { j.Close() })
	clock := &fakeClock{now: t0}
	rec := &recorder{id: "duty", now: clock.Now}
	rec.down.Store(true)
	reg := prometheus.NewRegistry()
	n := newNotifier(t, j, ob, clock, reg, rec)
	pumpAll(t, n)
	raise(t, j, "01E000", t0)
	pumpAll(t, n)
	for range 5 {
		_, _ = n.Deliver(t.Context(), "duty")
		clock.Add(10 * time.Minute)
	}
	rec.down.Store(false)
	clock.Add(15 * time.Minute) // 65 minutes after queueing
	if _, err := n.Deliver(t.Context(), "duty"); err != nil {
		t.Fatal(err)
	}
	if len(rec.msgs) != 0 {
		t.Fatalf("sent %d messages after max_age", len(rec.msgs))
	}
	if v := testutil.ToFloat64(mustCounter(t, reg, "duty", notify.ResultExpired)); v != 1 {
		t.Errorf("expired = %v, want 1", v)
	}
	if v := testutil.ToFloat64(mustCounter(t, reg, "duty", notify.ResultFailed)); v != 5 {
		t.Errorf("failed = %v, want 5", v)
	}
	if es, _ := ob.Pending(t.Context(), "duty", 10); len(es) != 0 {
		t.Errorf("expired entry still queued: %+v", es)
	}
}

// Run follows the journal by itself: a raised alert reaches the receiver,
// and Run returns when its context ends.
func TestRunDelivers(t *testing.T) {
	j, ob := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	t.Cleanup(func() { j.Close() })
	rec := &recorder{id: "duty", now: time.Now}
	n, err := notify.New(notify.Options{Journal: j, Outbox: ob, Receivers: []notify.Receiver{rec},
		Routes: []notify.Route{{To: []string{"duty"}}}, BaseURL: "https://desk.example/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	raise(t, j, "01RUN0", time.Now()) // maybe before Run's first read: still notified
	vtestutil.WaitFor(t, 5*time.Second, "the message", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.msgs) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m := rec.msgs[0]
	if m.AlertID != "01RUN0" || m.URL != "https://desk.example/?alert=01RUN0" {
		t.Errorf("message %+v", m)
	}
}

// A store without a cursor (the first start with notifications): alerts
// raised before the notifier was made are history and not sent; one
// raised after it, even before its first read of the journal, is.
func TestFirstStartSkipsHistoryOnly(t *testing.T) {
	j, ob := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	t.Cleanup(func() { j.Close() })
	clock := &fakeClock{now: t0}
	for i := range 3 {
		raise(t, j, fmt.Sprintf("01H%03d", i), clock.Now())
	}
	clock.Add(time.Second)
	rec := &recorder{id: "duty", now: clock.Now}
	n := newNotifier(t, j, ob, clock, nil, rec)
	raise(t, j, "01NEW000", clock.Now())
	pumpAll(t, n)
	if _, err := n.Deliver(t.Context(), "duty"); err != nil {
		t.Fatal(err)
	}
	if len(rec.msgs) != 1 || rec.msgs[0].AlertID != "01NEW000" {
		t.Fatalf("sent %+v, want only 01NEW000", rec.msgs)
	}
}
