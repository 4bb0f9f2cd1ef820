package redisjournal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"vigil/alerts"
	"vigil/alerts/journaltest"
	"vigil/internal/testutil"
)

var prefixes atomic.Int64

// newPrefix gives each test its own keys on a shared server.
func newPrefix() string { return fmt.Sprintf("t%d:", prefixes.Add(1)) }

func open(t testing.TB, o Options) *Journal {
	t.Helper()
	j, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func TestConformance(t *testing.T) {
	r := testutil.StartRedis(t)
	journaltest.RunOpener(t, func(t *testing.T) func() alerts.Journal {
		o := Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")}
		return func() alerts.Journal {
			j, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			return j
		}
	})
}

func recvN(t *testing.T, s *alerts.Subscription, n int, within time.Duration) []alerts.Change {
	t.Helper()
	var out []alerts.Change
	deadline := time.After(within)
	for len(out) < n {
		select {
		case c, ok := <-s.C:
			if !ok {
				t.Fatalf("subscription closed after %d of %d changes: %v", len(out), n, s.Err())
			}
			out = append(out, c)
		case <-deadline:
			t.Fatalf("received %d of %d changes within %s", len(out), n, within)
		}
	}
	return out
}

// waitFor polls cond until it holds or fails the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, within, what, cond)
}

func raise(t *testing.T, j *Journal, id string, at time.Time) alerts.Change {
	t.Helper()
	c, err := j.Append(t.Context(), alerts.Change{Kind: alerts.KindRaised, At: at, By: alerts.System, Origin: alerts.OriginSystem, Alert: journaltest.NewAlert(id, at)}, 0)
	if err != nil {
		t.Fatalf("raise %s: %v", id, err)
	}
	return c
}

var base = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestTwoNodes(t *testing.T) {
	r := testutil.StartRedis(t)
	p := newPrefix()
	a := open(t, Options{Addr: r.Addr(), KeyPrefix: p})
	b := open(t, Options{Addr: r.Addr(), KeyPrefix: p})
	ctx := t.Context()

	t.Run("append on A reaches a subscriber of B in seq order", func(t *testing.T) {
		sub, err := b.Subscribe(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			node := a
			if i%3 == 2 {
				node = b
			}
			raise(t, node, fmt.Sprintf("01N%02d", i), base.Add(time.Duration(i)*time.Second))
		}
		for i, c := range recvN(t, sub, 10, 10*time.Second) {
			if c.Seq != uint64(i+1) || c.Alert.ID != fmt.Sprintf("01N%02d", i) {
				t.Fatalf("change %d: seq %d alert %s", i, c.Seq, c.Alert.ID)
			}
		}
	})

	t.Run("concurrent acks on A and B: exactly one wins", func(t *testing.T) {
		raise(t, a, "01ACK", base)
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			node := a
			if i%2 == 1 {
				node = b
			}
			wg.Go(func() {
				al := journaltest.NewAlert("01ACK", base)
				al.Status = alerts.StatusAcknowledged
				al.AcknowledgedBy = fmt.Sprintf("desk-%d", i)
				_, errs[i] = node.Append(ctx, alerts.Change{Kind: alerts.KindAcknowledged, By: al.AcknowledgedBy, Alert: al}, 1)
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			var ce *alerts.ConflictError
			switch {
			case err == nil:
				won++
			case errors.As(err, &ce) && ce.Current.Version == 2:
			default:
				t.Errorf("ack %d: %v", i, err)
			}
		}
		if won != 1 {
			t.Fatalf("%d acks won, want 1", won)
		}
	})
}

// logBuffer is a concurrency-safe sink for a test logger.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestOutageSpoolsAndReplays(t *testing.T) {
	const password = "s3cret-Pa55word"
	r := testutil.StartRedis(t, testutil.WithAppendOnly("always"), testutil.WithPassword(password))
	var logs logBuffer
	j := open(t, Options{
		Addr: r.Addr(), Password: password, KeyPrefix: newPrefix(),
		SpoolPath: filepath.Join(t.TempDir(), "spool.db"),
		Logger:    slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ctx := t.Context()
	sub, err := j.Subscribe(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		raise(t, j, fmt.Sprintf("01P%03d", i), base)
	}
	recvN(t, sub, 5, 10*time.Second)
	if j.Degraded() {
		t.Fatal("degraded with Redis up")
	}

	r.Stop()
	const n = 100
	for i := range n {
		// How long an append takes with Redis down is measured by the
		// redis-outage drill in bench, not asserted here.
		c := raise(t, j, fmt.Sprintf("01O%03d", i), base.Add(time.Duration(i)*time.Millisecond))
		if !Spooled(c) {
			t.Fatalf("append %d returned seq %d with Redis down", i, c.Seq)
		}
	}
	if !j.Degraded() {
		t.Fatal("not degraded with Redis down")
	}
	// A desk action needs a version check: it fails clearly.
	ack := journaltest.NewAlert("01P000", base)
	ack.Status = alerts.StatusAcknowledged
	if _, err := j.Append(ctx, alerts.Change{Kind: alerts.KindAcknowledged, By: "desk-1", Origin: alerts.OriginPerson, Alert: ack}, 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ack with Redis down: err = %v, want ErrUnavailable", err)
	}
	// So does a person's action under the system's name: the origin
	// decides, not By.
	if _, err := j.Append(ctx, alerts.Change{Kind: alerts.KindAcknowledged, By: alerts.System, Origin: alerts.OriginPerson, Alert: ack}, 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a person's ack by %q with Redis down: err = %v, want ErrUnavailable", alerts.System, err)
	}
	if got := value(j.metrics.spoolEvents); got != n {
		t.Fatalf("spool gauge = %v, want %d", got, n)
	}

	r.Restart()
	got := recvN(t, sub, n, 30*time.Second)
	for i, c := range got {
		if c.Alert.ID != fmt.Sprintf("01O%03d", i) || c.Seq != uint64(6+i) {
			t.Fatalf("replayed change %d: alert %s seq %d", i, c.Alert.ID, c.Seq)
		}
	}
	waitFor(t, "journal no longer degraded", 10*time.Second, func() bool { return !j.Degraded() })
	cs, err := j.Since(ctx, 5, 1000)
	if err != nil || len(cs) != n {
		t.Fatalf("Since(5) = %d changes, %v; want %d exactly once", len(cs), err, n)
	}
	select {
	case c := <-sub.C:
		t.Fatalf("extra change delivered: seq %d %s", c.Seq, c.Alert.ID)
	default:
	}
	if strings.Contains(logs.String(), password) {
		t.Fatalf("log shows the password:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "redis unreachable") {
		t.Fatalf("outage not logged:\n%s", logs.String())
	}
}

func TestSpoolSurvivesRestartOfNode(t *testing.T) {
	r := testutil.StartRedis(t, testutil.WithAppendOnly("always"))
	o := Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")}
	j, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	r.Stop()
	a := journaltest.NewAlert("01S", base)
	raise(t, j, "01S", base)
	a.Count = 2
	if c, err := j.Append(t.Context(), alerts.Change{Kind: alerts.KindUpdated, By: alerts.System, Origin: alerts.OriginSystem, Alert: a}, 1); err != nil || !Spooled(c) {
		t.Fatalf("spooled update: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	r.Restart()
	j = open(t, o)
	waitFor(t, "spool replayed by the next journal", 10*time.Second, func() bool { return !j.Degraded() })
	got, err := j.Get(t.Context(), "01S")
	if err != nil || got.Version != 2 || got.Count != 2 {
		t.Fatalf("after replay: %+v, %v", got, err)
	}
}

func TestRedisKilledMidBurst(t *testing.T) {
	r := testutil.StartRedis(t, testutil.WithAppendOnly("always"))
	j := open(t, Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")})
	ctx := t.Context()
	const workers = 4
	var (
		mu         sync.Mutex
		acked      = map[string]uint64{}
		spooledIDs []string
		nAcked     atomic.Int64
		wg         sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			spooledHere := 0
			for i := 0; i < 500 && spooledHere < 5; i++ {
				id := fmt.Sprintf("01K%d%04d", w, i)
				c, err := j.Append(ctx, alerts.Change{Kind: alerts.KindRaised, Alert: journaltest.NewAlert(id, base)}, 0)
				mu.Lock()
				switch {
				case err != nil:
					t.Errorf("append %s: %v", id, err)
				case Spooled(c):
					spooledIDs = append(spooledIDs, id)
					spooledHere++
				default:
					acked[id] = c.Seq
					nAcked.Add(1)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	waitFor(t, "100 appends acknowledged", 20*time.Second, func() bool { return nAcked.Load() >= 100 })
	r.Kill() // the workers are mid-append
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(spooledIDs) == 0 {
		t.Fatal("no append was spooled after the kill")
	}
	r.Restart()
	for id, seq := range acked {
		a, err := j.Get(ctx, id)
		if err != nil || a.Version != 1 {
			t.Fatalf("acknowledged append %s (seq %d) lost after SIGKILL: %v", id, seq, err)
		}
	}
	waitFor(t, "spool replayed", 10*time.Second, func() bool { return !j.Degraded() })
	cs, err := j.Since(ctx, 0, 5000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, c := range cs {
		if c.Seq != uint64(i+1) {
			t.Fatalf("seq %d at position %d", c.Seq, i)
		}
		seen[c.Alert.ID]++
	}
	for id, seq := range acked {
		if seen[id] != 1 {
			t.Errorf("acknowledged %s (seq %d) in the log %d times", id, seq, seen[id])
		}
	}
	for _, id := range spooledIDs {
		if seen[id] != 1 {
			t.Errorf("spooled %s in the log %d times", id, seen[id])
		}
	}
	t.Logf("%d acknowledged, %d spooled, %d in the log", len(acked), len(spooledIDs), len(cs))
}

func TestSpoolBound(t *testing.T) {
	r := testutil.StartRedis(t)
	full := 0
	reg := prometheus.NewRegistry()
	j := open(t, Options{
		Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db"),
		SpoolMax: 10, OnSpoolFull: func() { full++ }, Registerer: reg,
	})
	r.Stop()
	for i := range 25 {
		raise(t, j, fmt.Sprintf("01B%02d", i), base.Add(time.Duration(i)*time.Second))
	}
	if got := value(j.metrics.spoolEvents); got != 10 {
		t.Errorf("spool gauge = %v, want 10", got)
	}
	// The replayer may hold the oldest entry in flight when it is dropped;
	// that one is counted once its append has failed.
	waitFor(t, "15 counted dropped", 10*time.Second, func() bool { return value(j.metrics.spoolDropped) == 15 })
	if full != 1 {
		t.Errorf("OnSpoolFull called %d times, want once per episode", full)
	}
	r.Restart()
	waitFor(t, "spool replayed", 10*time.Second, func() bool { return !j.Degraded() })
	as, _, err := j.List(t.Context(), alerts.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 10 || as[0].ID != "01B24" || as[9].ID != "01B15" {
		t.Fatalf("after replay: %v; want the newest 10, 01B24..01B15", idsOf(as))
	}
	// A new episode calls OnSpoolFull again.
	r.Stop()
	for i := range 11 {
		raise(t, j, fmt.Sprintf("01C%02d", i), base)
	}
	if full != 2 {
		t.Errorf("OnSpoolFull called %d times after a second episode, want 2", full)
	}
}

func idsOf(as []alerts.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func TestReplayMergesIntoNewerState(t *testing.T) {
	r := testutil.StartRedis(t)
	j := open(t, Options{Addr: r.Addr(), KeyPrefix: newPrefix()})
	ctx := t.Context()
	a := journaltest.NewAlert("01M", base)
	raise(t, j, "01M", base)
	acked := a
	acked.Status, acked.AcknowledgedBy = alerts.StatusAcknowledged, "desk-1"
	if _, err := j.Append(ctx, alerts.Change{Kind: alerts.KindAcknowledged, By: "desk-1", Alert: acked}, 1); err != nil {
		t.Fatal(err)
	}
	// A signal update spooled on another node while it saw version 1.
	upd := a
	upd.Count = 7
	upd.Signal = alerts.SignalEnded
	if err := j.replayOne(ctx, spooled{Change: alerts.Change{Kind: alerts.KindEnded, Alert: upd}, Expect: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := j.Get(ctx, "01M")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 3 || got.Status != alerts.StatusAcknowledged || got.AcknowledgedBy != "desk-1" || got.Count != 7 || got.Signal != alerts.SignalEnded {
		t.Fatalf("merged alert: %+v", got)
	}
	// Replaying it again (its reply was lost) is not applied twice.
	if err := j.replayOne(ctx, spooled{Change: alerts.Change{Kind: alerts.KindEnded, Alert: upd}, Expect: 1}); err != nil {
		t.Fatal(err)
	}
	if s, _ := j.LastSeq(ctx); s != 3 {
		t.Fatalf("LastSeq after replaying the merged change again = %d, want 3", s)
	}
}

func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

func TestRedisLostJournalEndsSubscriptions(t *testing.T) {
	r := testutil.StartRedis(t) // no persistence: a restart forgets everything
	j := open(t, Options{Addr: r.Addr(), KeyPrefix: newPrefix()})
	sub, err := j.Subscribe(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		raise(t, j, fmt.Sprintf("01L%d", i), base)
	}
	recvN(t, sub, 3, 10*time.Second)
	r.Restart()
	select {
	case _, ok := <-sub.C:
		if ok {
			t.Fatal("change delivered from a forgotten journal")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("subscription not ended after Redis lost the journal")
	}
	if !errors.Is(sub.Err(), alerts.ErrSlowSubscriber) {
		t.Fatalf("Err = %v, want ErrSlowSubscriber", sub.Err())
	}
	// The node follows the new history.
	sub, err = j.Subscribe(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	raise(t, j, "01LNEW", base)
	if c := recvN(t, sub, 1, 10*time.Second)[0]; c.Seq != 1 || c.Alert.ID != "01LNEW" {
		t.Fatalf("after reset: seq %d alert %s", c.Seq, c.Alert.ID)
	}
}

// TestSpoolable: the origin decides what may wait in the spool, not the
// name in By: a person's action under the system's name is not spooled.
func TestSpoolable(t *testing.T) {
	sys, person := alerts.OriginSystem, alerts.OriginPerson
	cases := []struct {
		name   string
		kind   alerts.ChangeKind
		by     string
		origin alerts.Origin
		expect int64
		want   bool
	}{
		{"new alert", alerts.KindRaised, "system", sys, 0, true},
		{"repeat count", alerts.KindUpdated, "system", sys, 3, true},
		{"signal ended", alerts.KindEnded, "system", sys, 2, true},
		{"overdue", alerts.KindOverdue, "system", sys, 2, true},
		{"rule auto-dispatch", alerts.KindDispatched, "system", sys, 1, true},
		{"desk ack", alerts.KindAcknowledged, "desk-1", person, 1, false},
		{"desk resolve", alerts.KindResolved, "desk-1", person, 3, false},
		{"desk follow-up", alerts.KindUpdated, "desk-1", person, 4, false},
		{"a person named like the system", alerts.KindAcknowledged, "system", person, 1, false},
		{"no origin is a person's", alerts.KindUpdated, "", "", 2, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := spoolable(alerts.Change{Kind: c.kind, By: c.by, Origin: c.origin}, c.expect); got != c.want {
				t.Fatalf("spoolable = %v, want %v", got, c.want)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without Addr succeeded")
	}
	o := Options{Addr: "127.0.0.1:1"}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	open(t, Options{Addr: "127.0.0.1:1", Registerer: reg})
	if _, err := New(Options{Addr: "127.0.0.1:1", Registerer: reg}); err == nil {
		t.Fatal("second journal on one registry succeeded")
	}
	if o.KeyPrefix != "vigil:" || o.StreamMaxLen != 1_000_000 || o.SpoolMax != 100_000 || o.Logger == nil {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestStartsWithRedisDown(t *testing.T) {
	r := testutil.StartRedis(t, testutil.WithAppendOnly("always"))
	r.Stop()
	j := open(t, Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")})
	if !j.Degraded() {
		t.Fatal("not degraded with Redis down at start")
	}
	if c := raise(t, j, "01D", base); !Spooled(c) {
		t.Fatalf("append with Redis down at start: seq %d", c.Seq)
	}
	r.Restart()
	waitFor(t, "spool replayed", 10*time.Second, func() bool { return !j.Degraded() })
	sub, err := j.Subscribe(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if c := raise(t, j, "01E", base); c.Seq != 2 {
		t.Fatalf("seq after replay = %d, want 2", c.Seq)
	}
	if c := recvN(t, sub, 1, 10*time.Second)[0]; c.Alert.ID != "01E" {
		t.Fatalf("subscriber got %s", c.Alert.ID)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	r := testutil.StartRedis(t)
	settle := func() int { runtime.GC(); return runtime.NumGoroutine() }
	before := settle()
	j, err := New(Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := j.Subscribe(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	raise(t, j, "01G", base)
	recvN(t, sub, 1, 10*time.Second)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-sub.C; ok {
		t.Fatal("subscription open after Close")
	}
	waitFor(t, "goroutines back to the count before New", 5*time.Second, func() bool { return settle() <= before })
}

// TestSpoolDropsInflightEntryAsOldest: a full spool keeps the newest
// changes even when the oldest is being replayed; that one counts as lost
// only if its append then fails.
func TestSpoolDropsInflightEntryAsOldest(t *testing.T) {
	sp, err := openSpool(filepath.Join(t.TempDir(), "spool.db"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	entry := func(id string) spooled {
		return spooled{Change: alerts.Change{Kind: alerts.KindRaised, Alert: journaltest.NewAlert(id, base)}}
	}
	ids := func() []string {
		var out []string
		_ = sp.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketSpool).ForEach(func(_, v []byte) error {
				var e spooled
				_ = json.Unmarshal(v, &e)
				out = append(out, e.Change.Alert.ID)
				return nil
			})
		})
		return out
	}
	put := func(id string) int {
		t.Helper()
		n, _, err := sp.put(entry(id))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	put("01A")
	put("01B")

	// The replayer takes 01A; a new change pushes it out; the append fails.
	a, ok, err := sp.first()
	if err != nil || !ok || a.Change.Alert.ID != "01A" {
		t.Fatalf("first = %v %v %v", a.Change.Alert.ID, ok, err)
	}
	if n := put("01C"); n != 0 {
		t.Fatalf("in-flight drop counted at once: %d", n)
	}
	if got := ids(); !slices.Equal(got, []string{"01B", "01C"}) {
		t.Fatalf("spool %v, want the newest two", got)
	}
	if !sp.release() {
		t.Fatal("release after a failed append of a dropped entry: not reported lost")
	}

	// The replayer takes 01B; 01D pushes it out; Redis takes 01B after all.
	b, _, _ := sp.first()
	if n := put("01D"); n != 0 {
		t.Fatalf("in-flight drop counted at once: %d", n)
	}
	if empty, err := sp.remove(b); err != nil || empty {
		t.Fatalf("remove: empty %v, %v", empty, err)
	}
	if sp.release() {
		t.Fatal("an entry Redis took reported lost")
	}
	if got := ids(); !slices.Equal(got, []string{"01C", "01D"}) || sp.len() != 2 {
		t.Fatalf("spool %v (len %d), want 01C 01D", got, sp.len())
	}

	// A plain drop, nothing in flight, is counted at once.
	if n := put("01E"); n != 1 {
		t.Fatalf("dropped %d, want 1", n)
	}
}

func TestUndecodableSpoolEntryIsDropped(t *testing.T) {
	r := testutil.StartRedis(t)
	path := filepath.Join(t.TempDir(), "spool.db")
	sp, err := openSpool(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	err = sp.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSpool).Put([]byte{0, 0, 0, 0, 0, 0, 0, 0}, []byte("{not json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sp.put(spooled{Change: alerts.Change{Kind: alerts.KindRaised, Alert: journaltest.NewAlert("01U", base)}}); err != nil {
		t.Fatal(err)
	}
	sp.close()
	j := open(t, Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: path})
	waitFor(t, "spool replayed", 10*time.Second, func() bool { return !j.Degraded() })
	if _, err := j.Get(t.Context(), "01U"); err != nil {
		t.Fatalf("the entry after the undecodable one: %v", err)
	}
	if got := value(j.metrics.spoolDropped); got != 1 {
		t.Fatalf("dropped = %v, want 1", got)
	}
}

// countHook counts the commands and pipelines the journal sends.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

func TestAppendBatchIsOneRoundTrip(t *testing.T) {
	r := testutil.StartRedis(t)
	j := open(t, Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")})
	raise(t, j, "01W", base) // loads the script
	var h countHook
	j.rdb.AddHook(&h)
	var items []alerts.BatchItem
	for i := range 50 {
		items = append(items, alerts.BatchItem{Change: alerts.Change{Kind: alerts.KindRaised, By: alerts.System, Origin: alerts.OriginSystem, Alert: journaltest.NewAlert(fmt.Sprintf("01R%02d", i), base)}})
	}
	cs, errs := j.AppendBatch(t.Context(), items)
	for i := range items {
		if errs[i] != nil || cs[i].Seq != uint64(i+2) {
			t.Fatalf("item %d: seq %d, %v", i, cs[i].Seq, errs[i])
		}
	}
	if n := h.n.Load(); n != 1 {
		t.Fatalf("AppendBatch of %d changes sent %d commands, want 1", len(items), n)
	}
}

func TestAppendBatchDuringOutage(t *testing.T) {
	r := testutil.StartRedis(t, testutil.WithAppendOnly("always"))
	j := open(t, Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")})
	ctx := t.Context()
	raise(t, j, "01X", base)
	r.Stop()
	a := journaltest.NewAlert("01A", base)
	a2 := a
	a2.Count = 2
	x := journaltest.NewAlert("01X", base)
	xAck := x
	xAck.Status, xAck.AcknowledgedBy = alerts.StatusAcknowledged, "desk-1"
	xEnd := xAck
	xEnd.Signal = alerts.SignalEnded
	items := []alerts.BatchItem{
		{Change: alerts.Change{Kind: alerts.KindRaised, By: alerts.System, Origin: alerts.OriginSystem, Alert: a}},
		{Change: alerts.Change{Kind: alerts.KindAcknowledged, By: "desk-1", Alert: xAck}, ExpectVersion: 1},
		{Change: alerts.Change{Kind: alerts.KindUpdated, By: alerts.System, Origin: alerts.OriginSystem, Alert: a2}, ExpectVersion: 1},
		{Change: alerts.Change{Kind: alerts.KindEnded, By: alerts.System, Origin: alerts.OriginSystem, Alert: xEnd}, ExpectVersion: 2},
	}
	for round, what := range []string{"first (finds Redis down)", "second (spool pending)"} {
		if round == 1 {
			items[0].Change.Alert.ID, items[2].Change.Alert.ID = "01B", "01B"
		}
		cs, errs := j.AppendBatch(ctx, items)
		for _, i := range []int{0, 2} {
			if errs[i] != nil || !Spooled(cs[i]) || cs[i].Alert.Version != items[i].ExpectVersion+1 {
				t.Fatalf("%s batch, system item %d: seq %d version %d, %v; want spooled", what, i, cs[i].Seq, cs[i].Alert.Version, errs[i])
			}
		}
		for _, i := range []int{1, 3} {
			if !errors.Is(errs[i], ErrUnavailable) || alerts.ErrorCode(errs[i]) != alerts.CodeUnavailable {
				t.Fatalf("%s batch, item %d (desk ack and what follows it): %v, want ErrUnavailable", what, i, errs[i])
			}
		}
	}
	if got := value(j.metrics.spoolEvents); got != 4 {
		t.Fatalf("spool gauge = %v, want 4", got)
	}
	r.Restart()
	waitFor(t, "spool replayed", 15*time.Second, func() bool { return !j.Degraded() })
	for _, id := range []string{"01A", "01B"} {
		got, err := j.Get(ctx, id)
		if err != nil || got.Version != 2 || got.Count != 2 {
			t.Fatalf("%s after replay: version %d count %d, %v", id, got.Version, got.Count, err)
		}
	}
	if got, err := j.Get(ctx, "01X"); err != nil || got.Version != 1 {
		t.Fatalf("01X after replay: version %d, %v; want untouched", got.Version, err)
	}
	if s, _ := j.LastSeq(ctx); s != 5 {
		t.Fatalf("LastSeq = %d, want 5", s)
	}
}

// A batch call whose reply was lost may have run: its spooled changes carry
// the call's token, and the replayer skips them when the script left that
// token on their alert, rather than applying them twice (or merging a stale
// middle state over the final one).
func TestSpooledBatchReplayedOnce(t *testing.T) {
	r := testutil.StartRedis(t)
	j := open(t, Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")})
	ctx := t.Context()
	chain := func(id string) []scriptItem {
		a := journaltest.NewAlert(id, base)
		a2 := a
		a2.Count, a2.Version = 2, 2
		a3 := a2
		a3.Signal, a3.Version = alerts.SignalEnded, 3
		return []scriptItem{
			{c: alerts.Change{Kind: alerts.KindRaised, By: alerts.System, Origin: alerts.OriginSystem, Alert: a}, expect: 0},
			{c: alerts.Change{Kind: alerts.KindUpdated, By: alerts.System, Origin: alerts.OriginSystem, Alert: a2}, expect: 1},
			{c: alerts.Change{Kind: alerts.KindEnded, By: alerts.System, Origin: alerts.OriginSystem, Alert: a3}, expect: 2},
		}
	}
	spool := func(items []scriptItem, token string) {
		var es []spooled
		for _, it := range items {
			es = append(es, spooled{Change: it.c, Expect: it.expect, Batch: token})
		}
		if err := j.spoolEntries(es); err != nil {
			t.Fatal(err)
		}
	}
	ran := chain("01RAN")
	if _, errs, err := j.runAppend(ctx, ran, false, "token-ran"); err != nil || errors.Join(errs...) != nil {
		t.Fatalf("batch: %v %v", err, errs)
	}
	spool(ran, "token-ran")                   // the call ran; its reply was lost
	spool(chain("01LOST"), "token-never-ran") // the call never reached Redis
	waitFor(t, "spool replayed", 15*time.Second, func() bool { return !j.Degraded() })
	if got := value(j.metrics.spoolDropped); got != 0 {
		t.Fatalf("dropped = %v, want 0", got)
	}
	for _, id := range []string{"01RAN", "01LOST"} {
		got, err := j.Get(ctx, id)
		if err != nil || got.Version != 3 || got.Count != 2 || got.Signal != alerts.SignalEnded {
			t.Fatalf("%s: version %d count %d signal %s, %v; want version 3, count 2, ended", id, got.Version, got.Count, got.Signal, err)
		}
	}
	if s, _ := j.LastSeq(ctx); s != 6 {
		t.Fatalf("LastSeq = %d, want 6: each chain once", s)
	}
}
