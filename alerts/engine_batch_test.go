package alerts_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/alerts/alertstest"
	"vigil/alerts/boltjournal"
)

// batchJournal counts AppendBatch calls and can let "another node" write
// before a batch commits.
type batchJournal struct {
	*boltjournal.Journal
	mu      sync.Mutex
	batches []int
	before  func(ctx context.Context) // runs once, before the next batch
}

func (j *batchJournal) AppendBatch(ctx context.Context, items []alerts.BatchItem) ([]alerts.Change, []error) {
	j.mu.Lock()
	j.batches = append(j.batches, len(items))
	before := j.before
	j.before = nil
	j.mu.Unlock()
	if before != nil {
		before(ctx)
	}
	return j.Journal.AppendBatch(ctx, items)
}

// plainJournal hides AppendBatch: the engine falls back to Append.
type plainJournal struct{ alerts.Journal }

func engineOn(t *testing.T, j alerts.Journal, f *alertstest.Fixture) *alerts.Engine {
	t.Helper()
	e, err := alerts.New(alerts.Options{
		Journal: j, Rules: alertstest.Rules(), Units: []alerts.Unit{{ID: "police"}},
		Cameras: alertstest.Cameras, StaleAfter: 30 * time.Second, Clock: f.Clock, Evidence: f.Holds, TickEvery: 10000 * time.Hour, // ticks only when the test calls Tick
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// runQueued submits evs before Run starts, so that Run takes them as one
// batch, and waits for want changes.
func runQueued(t *testing.T, e *alerts.Engine, j alerts.Journal, want int, evs ...alerts.Event) []alerts.Change {
	t.Helper()
	for _, ev := range evs {
		if ev.Source == "" {
			ev.Source = alerts.SourceGeneric
		}
		if err := e.Submit(ev); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	sub, err := j.Subscribe(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var got []alerts.Change
	for len(got) < want {
		select {
		case c := <-sub.C:
			got = append(got, c)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d changes", len(got), want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return got
}

func kindsOf(cs []alerts.Change) []alerts.ChangeKind {
	var out []alerts.ChangeKind
	for _, c := range cs {
		out = append(out, c.Kind)
	}
	return out
}

// Events of one signal in one batch chain as if handled one by one, with or
// without a BatchAppender, and the whole batch is one AppendBatch.
func TestBatchChainsEventsOfOneSignal(t *testing.T) {
	evs := []alerts.Event{
		alertstest.Ev("gate", alerts.Intrusion, alerts.Active), // raise + auto-dispatch
		alertstest.Ev("gate", alerts.Intrusion, alerts.Active),
		alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active),
		alertstest.Ev("gate", alerts.Intrusion, alerts.Inactive),
		alertstest.Ev("gate", alerts.Intrusion, alerts.Active), // reopen within cooldown
		alertstest.Ev("hall-entrance", alerts.Motion, alerts.Inactive),
		alertstest.Ev("hall-entrance", alerts.Motion, alerts.Inactive), // ignored
	}
	want := []alerts.ChangeKind{alerts.KindRaised, alerts.KindDispatched, alerts.KindUpdated, alerts.KindRaised, alerts.KindEnded, alerts.KindReopened, alerts.KindEnded}
	for _, batched := range []bool{true, false} {
		name := map[bool]string{true: "AppendBatch", false: "Append"}[batched]
		t.Run(name, func(t *testing.T) {
			f := alertstest.NewFixture(t, "")
			bj := &batchJournal{Journal: f.Journal}
			var j alerts.Journal = bj
			if !batched {
				j = plainJournal{f.Journal}
			}
			e := engineOn(t, j, f)
			cs := runQueued(t, e, f.Journal, len(want), evs...)
			if got := kindsOf(cs); !equalKinds(got, want) {
				t.Fatalf("changes %v, want %v", got, want)
			}
			if batched && (len(bj.batches) != 1 || bj.batches[0] != len(want)) {
				t.Fatalf("AppendBatch calls %v, want one of %d changes", bj.batches, len(want))
			}
			as := f.All(t)
			if len(as) != 2 {
				t.Fatalf("%d alerts, want 2", len(as))
			}
			gate, hall := as[1], as[0]
			if gate.Camera != "gate" {
				gate, hall = hall, gate
			}
			if gate.Count != 3 || gate.Signal != alerts.SignalActive || gate.Status != alerts.StatusDispatched || gate.Version != 5 {
				t.Errorf("gate: count %d signal %s status %s version %d", gate.Count, gate.Signal, gate.Status, gate.Version)
			}
			if hall.Signal != alerts.SignalEnded || hall.Count != 1 {
				t.Errorf("hall: signal %s count %d", hall.Signal, hall.Count)
			}
			// The engine's state is the journal's: a later event continues it.
			alertstest.RunBackground(t, e.Run)
			if err := e.Handle(t.Context(), alerts.Event{Camera: "gate", Type: alerts.Intrusion, Key: "k", State: alerts.Active, Source: alerts.SourceGeneric}); err != nil {
				t.Fatal(err)
			}
			if got := only2(t, f); got.Version != 6 {
				t.Errorf("after the batch: version %d, want 6", got.Version)
			}
		})
	}
}

func equalKinds(a, b []alerts.ChangeKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A change that loses a version race inside a batch (another node wrote
// the alert) is made again on the current alert, and so are the later
// changes of that alert in the batch; other alerts' changes stand.
func TestBatchConflictRetried(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	bj := &batchJournal{Journal: f.Journal}
	e := engineOn(t, bj, f)
	// The first alert through a Run of its own, stopped before runQueued
	// queues the batch: a Run still going would take the events one by one.
	ctx, stop := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- e.Run(ctx) }()
	if err := e.Handle(t.Context(), alerts.Event{Camera: "hall-entrance", Type: alerts.Motion, Key: "k", State: alerts.Active, Source: alerts.SourceGeneric}); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	a := f.Only(t)
	bj.before = func(ctx context.Context) { // a desk on another node acknowledges
		b := a
		b.Status, b.AcknowledgedBy = alerts.StatusAcknowledged, "desk-2"
		if _, err := f.Journal.Append(ctx, alerts.Change{Kind: alerts.KindAcknowledged, By: "desk-2", Alert: b}, a.Version); err != nil {
			t.Error(err)
		}
	}
	cs := runQueued(t, e, f.Journal, 4,
		alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active),
		alertstest.Ev("gate", alerts.Motion, alerts.Active),
		alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active),
	)
	want := []alerts.ChangeKind{alerts.KindAcknowledged, alerts.KindRaised, alerts.KindUpdated, alerts.KindUpdated}
	if got := kindsOf(cs); !equalKinds(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	got, err := f.Journal.Get(t.Context(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 3 || got.Status != alerts.StatusAcknowledged || got.AcknowledgedBy != "desk-2" || got.Version != 4 {
		t.Fatalf("count %d status %s by %s version %d, want both repeats on top of the other node's ack", got.Count, got.Status, got.AcknowledgedBy, got.Version)
	}
}

// Concurrent callers of Handle share batches and lose nothing.
func TestHandleConcurrent(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	cams := []string{"hall-entrance", "gate", "c2", "c3", "c4", "c5", "c6", "c7"}
	const per = 10
	var wg sync.WaitGroup
	for _, cam := range cams {
		wg.Go(func() {
			for range per {
				if err := f.Engine.Handle(t.Context(), alerts.Event{Camera: cam, Type: alerts.Motion, Key: "k", State: alerts.Active, Source: alerts.SourceGeneric}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	as := f.All(t)
	if len(as) != len(cams) {
		t.Fatalf("%d alerts, want %d", len(as), len(cams))
	}
	for _, a := range as {
		if a.Count != per || a.Version != per {
			t.Errorf("%s: count %d version %d, want %d", a.Camera, a.Count, a.Version, per)
		}
	}
}

// spoolingJournal is a journal whose reads fail as unreachable while down
// is set, and whose appends still succeed, as the Redis journal's do into
// its spool during an outage.
type spoolingJournal struct {
	*boltjournal.Journal
	mu        sync.Mutex
	down      bool
	downReads int // reads tried while down
}

func (j *spoolingJournal) isDown() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.down {
		j.downReads++
		return alertstest.ErrDown
	}
	return nil
}

// Degraded is what the Redis journal reports while Redis is down.
func (j *spoolingJournal) Degraded() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.down
}

func (j *spoolingJournal) List(ctx context.Context, f alerts.Filter) ([]alerts.Alert, string, error) {
	if err := j.isDown(); err != nil {
		return nil, "", err
	}
	return j.Journal.List(ctx, f)
}

func (j *spoolingJournal) Since(ctx context.Context, seq uint64, limit int) ([]alerts.Change, error) {
	if err := j.isDown(); err != nil {
		return nil, err
	}
	return j.Journal.Since(ctx, seq, limit)
}

// TestEngineStartsWithJournalUnreachable: a node that starts while its
// journal cannot be read (Redis down) still handles events, and takes the
// journal's live alerts in once it can read them.
func TestEngineStartsWithJournalUnreachable(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("gate", alerts.Intrusion, alerts.Active)) // open before the restart
	before := f.Only(t)

	j := &spoolingJournal{Journal: f.Journal, down: true}
	e := engineOn(t, j, f)
	alertstest.RunBackground(t, e.Run)

	hall := alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active)
	hall.Source = alerts.SourceGeneric
	if err := e.Handle(t.Context(), hall); err != nil {
		t.Fatalf("event while the journal is unreachable: %v", err)
	}
	as := f.All(t)
	if len(as) != 2 {
		t.Fatalf("%d alerts, want the restored one and the hall's: %+v", len(as), as)
	}
	// Later batches do not ask a journal that says it is degraded.
	f.Clock.Advance(3 * time.Second)
	if err := e.Handle(t.Context(), hall); err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	reads := j.downReads
	j.mu.Unlock()
	if reads != 1 {
		t.Fatalf("%d reads of the unreachable journal, want the one at start", reads)
	}

	// The journal is back: the next event after reloadEvery loads it.
	j.mu.Lock()
	j.down = false
	j.mu.Unlock()
	f.Clock.Advance(3 * time.Second)
	if err := e.Handle(t.Context(), hall); err != nil {
		t.Fatal(err)
	}
	// The alert from before the restart is tracked again: no event comes
	// for longer than stale_after (30 s) and the engine ends its signal.
	f.Clock.Advance(3 * time.Minute)
	if err := e.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := f.Journal.Get(t.Context(), before.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Signal != alerts.SignalEnded {
		t.Fatalf("the alert open before the restart was not tracked after the journal came back: %+v", got)
	}
}
