// Package alertstest is the engine fixture shared by the tests of alerts
// and of the packages beside it (alertsapi, hooks, stream): an engine on an
// embedded journal in a temporary directory, a clock that moves only when a
// test advances it, an evidence recorder, and the rules and cameras the
// tests are written against. It is imported by tests only.
package alertstest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/alerts"
	"vigil/alerts/boltjournal"
	"vigil/internal/testutil"
)

// ErrDown is what a journal whose backend is unreachable returns: an
// alerts.ErrUnavailable whose text names the backend's address, which must
// not reach users.
var ErrDown = fmt.Errorf("redisjournal: dial tcp 127.0.0.1:6379: connection refused: %w", alerts.ErrUnavailable)

// T0 is the time the fixture's clock starts at.
var T0 = time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)

// Clock is an alerts.Clock that moves only when a test advances it; its
// timers fire when Advance passes them.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []timer
}

type timer struct {
	at time.Time
	c  chan time.Time
}

// NewClock returns a Clock at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer fires once Advance reaches now+d.
func (c *Clock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := timer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t.c, func() bool { return true }
}

// Advance moves the clock by d and fires the timers it passes.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.c <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

// HoldRecorder is the engine's Evidence: it records the holds placed, and
// fails the calls FailNext asks for.
type HoldRecorder struct {
	mu    sync.Mutex
	holds []alerts.HoldRequest
	fail  int // the next fail calls of PlaceHold fail
}

// FailNext makes the next n calls of PlaceHold fail.
func (h *HoldRecorder) FailNext(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail = n
}

// PlaceHold records r, or fails with "disk full".
func (h *HoldRecorder) PlaceHold(_ context.Context, r alerts.HoldRequest) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail > 0 {
		h.fail--
		return errors.New("disk full")
	}
	h.holds = append(h.holds, r)
	return nil
}

// Wait returns the latest hold placed once ok holds for it: the engine
// places holds after the change, in its effects stage.
func (h *HoldRecorder) Wait(t testing.TB, what string, ok func(alerts.HoldRequest) bool) alerts.HoldRequest {
	t.Helper()
	var last alerts.HoldRequest
	testutil.WaitFor(t, 10*time.Second, what, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.holds) == 0 {
			return false
		}
		last = h.holds[len(h.holds)-1]
		return ok(last)
	})
	return last
}

// Rules are the rules of DESIGN.md's example configuration.
func Rules() []alerts.Rule {
	return []alerts.Rule{
		{Match: alerts.Match{Type: alerts.Intrusion, Site: "key-site"}, Severity: alerts.Critical, AckWithin: 2 * time.Minute, ResolveWithin: 30 * time.Minute, DispatchTo: "police", Cooldown: 30 * time.Second},
		{Match: alerts.Match{Type: alerts.CameraOffline}, Severity: alerts.Major, AckWithin: 10 * time.Minute, ResolveWithin: 4 * time.Hour},
		{Match: alerts.Match{}, Severity: alerts.Minor, AckWithin: 15 * time.Minute, ResolveWithin: 24 * time.Hour, Cooldown: 60 * time.Second},
	}
}

// Cameras knows two cameras: hall-entrance (site hall) and gate (key-site).
func Cameras(id string) (name, site, grid string, ok bool) {
	switch id {
	case "hall-entrance":
		return "服务大厅入口", "hall", "G03", true
	case "gate":
		return "重点部位大门", "key-site", "G07", true
	}
	return "", "", "", false
}

// Ev is an event of camera with key "k".
func Ev(camera string, typ alerts.Type, state alerts.State) alerts.Event {
	return alerts.Event{Camera: camera, Type: typ, State: state, Key: "k"}
}

// Fixture is an engine on an embedded journal with a fake clock.
type Fixture struct {
	Engine  *alerts.Engine
	Journal *boltjournal.Journal
	Clock   *Clock
	Holds   *HoldRecorder
	Reg     *prometheus.Registry
	Path    string // the journal's file
	Stop    func() // stops the engine's Run and waits for it
}

// NewFixture is NewFixtureAt with the clock at T0.
func NewFixture(t testing.TB, path string) *Fixture {
	t.Helper()
	return NewFixtureAt(t, path, T0)
}

// NewFixtureAt runs an engine on a journal at path ("" for a new one) with
// its fake clock at now, until the test ends or Stop is called. Its Run
// never ticks by itself (a tick once in 10,000 hours): a test that advances
// the clock calls Tick when it wants one, so that deadlines and stale ends
// never race with the test's own actions.
func NewFixtureAt(t testing.TB, path string, now time.Time) *Fixture {
	t.Helper()
	return StartFixture(t, path, now, 10000*time.Hour, true)
}

// StartFixture is NewFixtureAt with Run's tick period, and Run started only
// when run is set (the test runs it itself otherwise).
func StartFixture(t testing.TB, path string, now time.Time, tick time.Duration, run bool) *Fixture {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "journal.db")
	}
	j, err := boltjournal.Open(boltjournal.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	f := &Fixture{Journal: j, Clock: NewClock(now), Holds: &HoldRecorder{}, Reg: prometheus.NewRegistry(), Path: path}
	f.Engine, err = alerts.New(alerts.Options{
		Journal: j, Rules: Rules(),
		Units:   []alerts.Unit{{ID: "police", Name: "派出所"}, {ID: "zongzhi", Name: "综治办"}},
		Cameras: Cameras, PreRoll: 10 * time.Second, PostRoll: 30 * time.Second,
		HoldAfterResolve: 90 * 24 * time.Hour, StaleAfter: 30 * time.Second,
		Evidence: f.Holds, Clock: f.Clock, Registerer: f.Reg, TickEvery: tick,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Stop = func() {}
	if !run {
		return f
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.Engine.Run(ctx); err != nil {
			t.Errorf("engine: %v", err)
		}
	}()
	f.Stop = func() { cancel(); <-done }
	t.Cleanup(f.Stop)
	return f
}

// Restart stops f's engine, closes its journal and starts a new engine on
// the same file, its clock where f's was.
func (f *Fixture) Restart(t testing.TB) *Fixture {
	t.Helper()
	f.Stop()
	_ = f.Journal.Close()
	return NewFixtureAt(t, f.Path, f.Clock.Now())
}

// Handle passes ev to the engine (source generic when unset) and waits
// until it is applied.
func (f *Fixture) Handle(t testing.TB, ev alerts.Event) {
	t.Helper()
	if ev.Source == "" {
		ev.Source = alerts.SourceGeneric
	}
	if err := f.Engine.Handle(t.Context(), ev); err != nil {
		t.Fatalf("handle %+v: %v", ev, err)
	}
}

// All lists the journal's alerts, newest first.
func (f *Fixture) All(t testing.TB) []alerts.Alert {
	t.Helper()
	as, _, err := f.Journal.List(t.Context(), alerts.Filter{Limit: alerts.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// Only is the journal's one alert; it fails the test when there are others.
func (f *Fixture) Only(t testing.TB) alerts.Alert {
	t.Helper()
	as := f.All(t)
	if len(as) != 1 {
		t.Fatalf("%d alerts, want 1: %+v", len(as), as)
	}
	return as[0]
}

// Kinds are the kinds of the journal's changes, in seq order.
func (f *Fixture) Kinds(t testing.TB) []alerts.ChangeKind {
	t.Helper()
	cs, err := f.Journal.Since(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []alerts.ChangeKind
	for _, c := range cs {
		out = append(out, c.Kind)
	}
	return out
}

// RunBackground runs run (a component's Run) until the test ends; an error
// from it fails the test.
func RunBackground(t testing.TB, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
