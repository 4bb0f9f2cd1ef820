package app

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/alerts/boltjournal"
	"vigil/configs"
	"vigil/internal/camsim"
)

// demoClock is the engine's clock in TestDemoScheduleMakesVisibleWork.
type demoClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *demoClock) NewTimer(time.Duration) (<-chan time.Time, func() bool) {
	return make(chan time.Time), func() bool { return true }
}

func (c *demoClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// demoEvent is one event of the demo's schedule at its time from the start.
type demoEvent struct {
	at time.Duration
	ev alerts.Event
}

// demoTimeline expands demoSchedule and demoOutages over d into the events
// the engine receives, in time order. The camsim types map to the types
// alerts.ParseONVIF gives their topics.
func demoTimeline(t *testing.T, d time.Duration) []demoEvent {
	types := map[string]alerts.Type{
		camsim.Motion: alerts.Motion, camsim.CellMotion: alerts.Motion, camsim.Intrusion: alerts.Intrusion,
		camsim.LineCrossing: alerts.LineCrossing, camsim.Tamper: alerts.Tamper,
	}
	var out []demoEvent
	add := func(at time.Duration, cam string, typ alerts.Type, st alerts.State, src alerts.Source) {
		out = append(out, demoEvent{at, alerts.Event{Camera: cam, Type: typ, State: st, Source: src}})
	}
	for _, s := range demoSchedule() {
		typ, ok := types[s.Type]
		if !ok {
			t.Fatalf("demo schedule type %q has no mapping here", s.Type)
		}
		cam := s.Camera[len("cam/"):]
		for at := s.After; at < d; at += s.Every {
			st := alerts.Active
			if s.State == camsim.Pulse {
				st = alerts.Pulse
			}
			add(at, cam, typ, st, alerts.SourceONVIF)
			if s.Hold > 0 && st == alerts.Active {
				add(at+s.Hold, cam, typ, alerts.Inactive, alerts.SourceONVIF)
			}
			if s.Every == 0 {
				break
			}
		}
	}
	// demoOutages: down at 3 min for 50 s, then every 6 min 50 s; offline
	// is reported offline_after (30 s) after the stop.
	for down := 3 * time.Minute; down < d; down += 6*time.Minute + 50*time.Second {
		add(down+30*time.Second, "mediation-room", alerts.CameraOffline, alerts.Active, alerts.SourceHealth)
		add(down+50*time.Second+3*time.Second, "mediation-room", alerts.CameraOffline, alerts.Inactive, alerts.SourceHealth)
	}
	slices.SortStableFunc(out, func(a, b demoEvent) int { return int(a.at - b.at) })
	return out
}

// Ten minutes of `vigil demo` give the desk visible work: at least six
// raised and one reopened alert, and an alert a desk resolves never changes
// again. The demo's own schedule and rules run through the engine on a fake
// clock.
func TestDemoScheduleMakesVisibleWork(t *testing.T) {
	dir := t.TempDir()
	path, err := writeDemoConfig(dir, "127.0.0.1:0", func(p string) string { return "rtsp://127.0.0.1:1/" + p }, demoTokens{"d", "i", "a"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(dir, "journal.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	clock := &demoClock{now: start}
	rules, units := alertRules(cfg)
	lookup := func(id string) (string, string, string, bool) {
		c, ok := cfg.Camera(id)
		return c.Name, c.Site, c.Grid, ok
	}
	e, err := alerts.New(alerts.Options{Journal: j, Rules: rules, Units: units, Clock: clock, Cameras: lookup,
		PreRoll: cfg.Alerts.PreRoll, PostRoll: cfg.Alerts.PostRoll, StaleAfter: cfg.Alerts.StaleAfter})
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
	resolved := map[string]int64{} // alert → its version when resolved
	for _, de := range demoTimeline(t, 10*time.Minute) {
		clock.set(start.Add(de.at))
		if err := e.Handle(ctx, de.ev); err != nil {
			t.Fatal(err)
		}
		if err := e.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		// The duty officer resolves every tamper alert as soon as it comes.
		as, _, err := j.List(ctx, alerts.Filter{Open: true, Limit: alerts.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Type != alerts.Tamper {
				continue
			}
			r, err := e.Resolve(context.WithoutCancel(ctx), a.ID, "desk-demo", "现场查看，镜头被遮挡已恢复", false, a.Version)
			if err != nil {
				t.Fatal(err)
			}
			resolved[r.ID] = r.Version
		}
	}
	cs, err := j.Since(ctx, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[alerts.ChangeKind]int{}
	for _, c := range cs {
		kinds[c.Kind]++
		if v, ok := resolved[c.Alert.ID]; ok && c.Alert.Version > v {
			t.Errorf("resolved alert %s changed after its resolution: %s v%d", c.Alert.ID, c.Kind, c.Alert.Version)
		}
	}
	t.Logf("changes in 10 minutes: %v", kinds)
	if kinds[alerts.KindRaised] < 6 || kinds[alerts.KindReopened] < 1 {
		t.Fatalf("changes %v: want at least 6 raised and 1 reopened", kinds)
	}
	if len(resolved) < 2 {
		t.Fatalf("%d tamper alerts resolved, want the schedule to raise at least 2", len(resolved))
	}
}
