package journaltest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"vigil/alerts"
)

// clock is a fake alerts.Clock: it moves only when the test sets it, and
// its timers never fire (the test calls Tick itself).
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *clock) NewTimer(time.Duration) (<-chan time.Time, func() bool) {
	return nil, func() bool { return false }
}

// RunSupervision runs the alert engine on a journal from open with a fake
// clock through 督办 (escalation of overdue alerts) and 挂牌督办
// (supervision): what the engine writes must read back alike from every
// journal.
func RunSupervision(t *testing.T, open func(t *testing.T) alerts.Journal) {
	t.Run("Escalation", func(t *testing.T) { testEscalation(t, open(t)) })
	t.Run("Supervision", func(t *testing.T) { testSupervision(t, open(t)) })
}

func startEngine(t *testing.T, j alerts.Journal, rules []alerts.Rule) (*alerts.Engine, *clock) {
	t.Helper()
	c := &clock{now: time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)}
	e, err := alerts.New(alerts.Options{Journal: j, Rules: rules, Clock: c,
		Units: []alerts.Unit{{ID: "police", Name: "派出所"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
		_ = j.Close()
	})
	return e, c
}

func raiseOne(t *testing.T, e *alerts.Engine, j alerts.Journal, camera string) alerts.Alert {
	t.Helper()
	if err := e.Handle(t.Context(), alerts.Event{Camera: camera, Type: alerts.Intrusion, Key: "k", State: alerts.Active, Source: alerts.SourceGeneric}); err != nil {
		t.Fatal(err)
	}
	as, _, err := j.List(t.Context(), alerts.Filter{Camera: camera})
	if err != nil || len(as) != 1 {
		t.Fatalf("alerts of %s: %d, %v", camera, len(as), err)
	}
	return as[0]
}

func kindsOf(t *testing.T, j alerts.Journal, id string) []alerts.ChangeKind {
	t.Helper()
	cs, err := j.Since(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var ks []alerts.ChangeKind
	for _, c := range cs {
		if c.Alert.ID == id {
			ks = append(ks, c.Kind)
		}
	}
	return ks
}

func historyActions(a alerts.Alert) []string {
	var out []string
	for _, h := range a.History {
		out = append(out, h.Action)
	}
	return out
}

func testEscalation(t *testing.T, j alerts.Journal) {
	rules := []alerts.Rule{
		{Match: alerts.Match{Camera: "gate"}, Severity: alerts.Critical, AckWithin: 2 * time.Minute, ResolveWithin: 30 * time.Minute, EscalateTo: []string{"leaders", "duty"}},
		{Match: alerts.Match{Camera: "hall"}, Severity: alerts.Major, AckWithin: 5 * time.Minute, ResolveWithin: time.Hour, EscalateTo: []string{"leaders"}, EscalateAfter: 10 * time.Minute},
		{Match: alerts.Match{}, Severity: alerts.Minor, AckWithin: time.Minute, ResolveWithin: time.Hour},
	}
	e, c := startEngine(t, j, rules)
	ctx := t.Context()
	tick := func(d time.Duration) {
		t.Helper()
		c.advance(d)
		if err := e.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	get := func(id string) alerts.Alert {
		t.Helper()
		a, err := j.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	gate := raiseOne(t, e, j, "gate")
	hall := raiseOne(t, e, j, "hall")
	plain := raiseOne(t, e, j, "yard")
	t0 := c.Now()

	tick(time.Minute + 59*time.Second)
	if a := get(gate.ID); len(a.Escalations) != 0 || a.Overdue {
		t.Fatalf("escalated before the deadline: %+v", a.Escalations)
	}
	tick(time.Second) // gate's ack deadline: overdue and escalated in one tick
	a := get(gate.ID)
	if len(a.Escalations) != 1 || !a.Escalations[0].At.Equal(t0.Add(2*time.Minute)) || !slices.Equal(a.Escalations[0].To, []string{"leaders", "duty"}) {
		t.Fatalf("gate after its ack deadline: escalations %+v", a.Escalations)
	}
	if ks := kindsOf(t, j, gate.ID); !slices.Equal(ks, []alerts.ChangeKind{alerts.KindRaised, alerts.KindOverdue, alerts.KindEscalated}) {
		t.Fatalf("gate's changes %v, want overdue then escalated last", ks)
	}
	if h := a.History[len(a.History)-1]; h.Action != "escalated" || h.By != alerts.System || h.Note != "督办 → leaders, duty" {
		t.Fatalf("gate's last history line %+v", h)
	}
	tick(time.Minute)
	tick(time.Minute)
	if n := len(get(gate.ID).Escalations); n != 1 {
		t.Fatalf("gate escalated %d times 2 minutes after the first, want 1", n)
	}

	// hall: overdue at 5m, again after escalate_after 10m.
	tick(time.Minute) // t0+5m
	if n := len(get(hall.ID).Escalations); n != 1 {
		t.Fatalf("hall: %d escalations at its ack deadline", n)
	}
	tick(9 * time.Minute) // t0+14m
	if n := len(get(hall.ID).Escalations); n != 1 {
		t.Fatalf("hall: %d escalations before escalate_after", n)
	}
	tick(time.Minute) // t0+15m
	ha := get(hall.ID)
	if len(ha.Escalations) != 2 || !ha.Escalations[1].At.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("hall after escalate_after: %+v", ha.Escalations)
	}
	if h := ha.History[len(ha.History)-1]; h.Action != "escalated" || h.Note != "再次督办 → leaders" {
		t.Fatalf("hall's last history line %+v", h)
	}

	// gate: no escalate_after, so the resolve time limit (30m) after the
	// first, at t0+32m, once more; then never again.
	tick(16 * time.Minute) // t0+31m
	if n := len(get(gate.ID).Escalations); n != 1 {
		t.Fatalf("gate: %d escalations at t0+31m", n)
	}
	tick(time.Minute) // t0+32m
	if n := len(get(gate.ID).Escalations); n != 2 {
		t.Fatalf("gate: %d escalations at t0+32m, want 2", n)
	}
	tick(5 * time.Hour)
	for _, id := range []string{gate.ID, hall.ID} {
		if n := count(kindsOf(t, j, id), alerts.KindEscalated); n != alerts.MaxEscalations {
			t.Fatalf("alert %s: %d escalated changes, want %d", id, n, alerts.MaxEscalations)
		}
	}
	// A rule without escalate_to never escalates; a resolved alert is not
	// escalated.
	if p := get(plain.ID); !p.Overdue || len(p.Escalations) != 0 {
		t.Fatalf("plain: overdue %v escalations %+v", p.Overdue, p.Escalations)
	}
	if n := count(kindsOf(t, j, plain.ID), alerts.KindEscalated); n != 0 {
		t.Fatalf("plain: %d escalated changes", n)
	}
}

func count(ks []alerts.ChangeKind, k alerts.ChangeKind) int {
	n := 0
	for _, x := range ks {
		if x == k {
			n++
		}
	}
	return n
}

func testSupervision(t *testing.T, j alerts.Journal) {
	e, c := startEngine(t, j, []alerts.Rule{{Severity: alerts.Major, AckWithin: time.Minute, ResolveWithin: time.Hour}})
	ctx := t.Context()
	a := raiseOne(t, e, j, "gate")
	due := c.Now().Add(48 * time.Hour)
	if _, err := e.Supervise(ctx, a.ID, "desk-1", due, "", false, a.Version+1); !errors.Is(err, alerts.ErrConflict) {
		t.Fatalf("stale version: %v, want a conflict", err)
	}
	if _, err := e.Supervise(ctx, a.ID, "desk-1", c.Now().Add(-time.Minute), "", false, a.Version); alerts.ErrorCode(err) != alerts.CodeBadRequest {
		t.Fatalf("due in the past: %v", err)
	}
	if _, err := e.Supervise(ctx, a.ID, "desk-1", time.Time{}, "", false, a.Version); alerts.ErrorCode(err) != alerts.CodeBadRequest {
		t.Fatalf("no due: %v", err)
	}
	if _, err := e.Supervise(ctx, a.ID, "desk-1", time.Time{}, "", true, a.Version); alerts.ErrorCode(err) != alerts.CodeInvalidTransition {
		t.Fatalf("clearing an unsupervised alert: %v", err)
	}
	c.advance(time.Minute)
	s, err := e.Supervise(ctx, a.ID, "leader-1", due, "镇领导挂牌", false, a.Version)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := j.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	sv := stored.Supervision
	if sv == nil || sv.By != "leader-1" || !sv.Due.Equal(due) || sv.Note != "镇领导挂牌" || !sv.At.Equal(c.Now()) || stored.Version != s.Version {
		t.Fatalf("stored supervision %+v (version %d, returned %d)", sv, stored.Version, s.Version)
	}
	c.advance(time.Hour)
	cl, err := e.Supervise(ctx, a.ID, "leader-1", time.Time{}, "已落实", true, s.Version)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Supervision != nil {
		t.Fatalf("cleared, still %+v", cl.Supervision)
	}
	stored, _ = j.Get(ctx, a.ID)
	acts := historyActions(stored)
	if stored.Supervision != nil || !slices.Equal(acts[len(acts)-2:], []string{"supervised", "supervision_cleared"}) {
		t.Fatalf("after clearing: supervision %+v history %v", stored.Supervision, acts)
	}
	if n := count(kindsOf(t, j, a.ID), alerts.KindSupervised); n != 2 {
		t.Fatalf("%d supervised changes, want 2 (set, cleared)", n)
	}
	r, err := e.Resolve(ctx, a.ID, "desk-1", "已处置", false, cl.Version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Supervise(ctx, a.ID, "desk-1", c.Now().Add(time.Hour), "", false, r.Version); alerts.ErrorCode(err) != alerts.CodeInvalidTransition {
		t.Fatalf("supervising a resolved alert: %v", err)
	}
}
