package alerts_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/alerts/alertstest"
)

// BenchmarkHandleEvent sends 1,000 events from 64 cameras per iteration
// through rules, dedupe and the bbolt journal and reports the per-event
// latency percentiles.
//
//   - serial: one caller, one event at a time, as fast as it goes: every
//     event is its own journal transaction (fsync); the latency of one append.
//   - 64cams-1000eps: 64 cameras, each its own caller, together sending 1,000
//     events/s on a fixed schedule; latency is from the event's scheduled
//     time to its durable append, so a backlog counts. Events waiting while a
//     batch is written go together in the next one (group commit).
//
// VIGIL_BENCH_DIR=/dev/shm leaves the disk's fsync out.
func BenchmarkHandleEvent(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		f, events := benchFixture(b)
		var lat []time.Duration
		n := 0
		for b.Loop() {
			for range 1000 {
				start := time.Now()
				if err := f.Engine.Handle(b.Context(), events(n)); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				n++
			}
			f.Clock.Advance(time.Second)
		}
		reportLatency(b, lat)
	})
	b.Run("64cams-1000eps", func(b *testing.B) {
		f, events := benchFixture(b)
		const cams, perSecond = 64, 1000
		var (
			mu  sync.Mutex
			lat []time.Duration
		)
		round := 0
		for b.Loop() {
			start := time.Now()
			var wg sync.WaitGroup
			for c := range cams {
				wg.Go(func() {
					mine := make([]time.Duration, 0, perSecond/cams+1)
					for i := c; i < perSecond; i += cams {
						at := start.Add(time.Duration(i) * time.Second / perSecond)
						if d := time.Until(at); d > 0 {
							<-time.After(d)
						}
						if err := f.Engine.Handle(b.Context(), events(round*perSecond+i)); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(at))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
			}
			wg.Wait()
			f.Clock.Advance(time.Second)
			round++
		}
		reportLatency(b, lat)
	})
}

// benchFixture is an engine on a journal in VIGIL_BENCH_DIR or a temporary
// directory, and the n-th event of the benchmark's mix: 64 cameras, four
// types, three active reports then an inactive one per signal, line
// crossings as pulses, the key-site rule with auto-dispatch on two cameras.
func benchFixture(b *testing.B) (*alertstest.Fixture, func(n int) alerts.Event) {
	dir := os.Getenv("VIGIL_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "vigil-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	f := alertstest.NewFixture(b, filepath.Join(dir, "journal.db"))
	types := []alerts.Type{alerts.Motion, alerts.Intrusion, alerts.LineCrossing, alerts.Tamper}
	states := []alerts.State{alerts.Active, alerts.Active, alerts.Active, alerts.Inactive}
	cams := make([]string, 64)
	for i := range cams {
		cams[i] = fmt.Sprintf("cam-%02d", i)
	}
	cams[0], cams[1] = "gate", "hall-entrance"
	return f, func(n int) alerts.Event {
		ev := alerts.Event{Camera: cams[n%64], Type: types[(n/64)%len(types)], State: states[(n/256)%len(states)], Source: alerts.SourceGeneric}
		if ev.Type == alerts.LineCrossing {
			ev.State = alerts.Pulse
		}
		return ev
	}
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(0, "ns/op")
}
