package redisjournal

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/internal/testutil"
)

// TestEngineThroughOutage runs the real alerts engine on the Redis journal
// through an outage: camera signals keep flowing into the spool (a raise,
// a repeat, an end, and a raise with rule auto-dispatch), a desk action is
// refused with ErrUnavailable, and after Redis returns the chains are
// replayed with the versions the engine gave them.
func TestEngineThroughOutage(t *testing.T) {
	r := testutil.StartRedis(t, testutil.WithAppendOnly("always"))
	j := open(t, Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")})
	e, err := alerts.New(alerts.Options{
		Journal: j,
		Units:   []alerts.Unit{{ID: "police", Name: "派出所"}},
		Rules: []alerts.Rule{
			{Match: alerts.Match{Type: alerts.Intrusion}, Severity: alerts.Critical, AckWithin: time.Minute, DispatchTo: "police"},
			{Match: alerts.Match{}, Severity: alerts.Minor, AckWithin: 15 * time.Minute},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- e.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-ran; err != nil {
			t.Error(err)
		}
	}()
	now := time.Now().UTC()
	handle := func(cam string, typ alerts.Type, st alerts.State) {
		t.Helper()
		if err := e.Handle(ctx, alerts.Event{Camera: cam, Type: typ, Key: "k", State: st, At: now, Source: alerts.SourceGeneric}); err != nil {
			t.Fatalf("%s %s %s: %v", cam, typ, st, err)
		}
	}
	handle("hall-entrance", alerts.Motion, alerts.Active) // before the outage
	before, _, err := j.List(ctx, alerts.Filter{})
	if err != nil || len(before) != 1 {
		t.Fatalf("before the outage: %d alerts, %v", len(before), err)
	}

	r.Stop()
	handle("hall-entrance", alerts.Motion, alerts.Active)   // repeat: count 2, v2
	handle("hall-entrance", alerts.Motion, alerts.Inactive) // end: v3
	handle("gate", alerts.Intrusion, alerts.Active)         // raise v1 + auto-dispatch v2
	_, err = e.Ack(ctx, before[0].ID, "desk-1", "seen", 3)
	if !errors.Is(err, ErrUnavailable) || alerts.ErrorCode(err) != alerts.CodeUnavailable {
		t.Fatalf("desk ack with Redis down: %v (code %q), want ErrUnavailable, code unavailable (503)", err, alerts.ErrorCode(err))
	}
	r.Restart()
	waitFor(t, "spool replayed", 15*time.Second, func() bool { return !j.Degraded() })

	motion, err := j.Get(ctx, before[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if motion.Version != 3 || motion.Count != 2 || motion.Signal != alerts.SignalEnded {
		t.Fatalf("motion alert after replay: version %d count %d signal %s", motion.Version, motion.Count, motion.Signal)
	}
	gate, _, err := j.List(ctx, alerts.Filter{Camera: "gate"})
	if err != nil || len(gate) != 1 {
		t.Fatalf("gate alerts: %d, %v", len(gate), err)
	}
	if gate[0].Status != alerts.StatusDispatched || gate[0].Unit != "police" || gate[0].Version != 2 {
		t.Fatalf("gate alert after replay: status %s unit %q version %d", gate[0].Status, gate[0].Unit, gate[0].Version)
	}
	// The desk acts on what it now sees.
	if _, err := e.Ack(ctx, motion.ID, "desk-1", "seen", motion.Version); err != nil {
		t.Fatalf("desk ack after recovery: %v", err)
	}
	if s, _ := j.LastSeq(ctx); s != 6 {
		t.Fatalf("LastSeq = %d, want 6 (1 before, 4 replayed, 1 ack)", s)
	}
}
