package alerts_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"vigil/alerts"
)

// BenchmarkHandleEvent sends 1,000 events from 64 cameras per iteration
// through rules, dedupe and the bbolt journal (fsync per append) and reports
// the per-event latency percentiles.
func BenchmarkHandleEvent(b *testing.B) {
	dir := os.Getenv("VIGIL_BENCH_DIR") // e.g. /dev/shm to leave the disk's fsync out
	if dir == "" {
		dir = b.TempDir()
	} else {
		dir, _ = os.MkdirTemp(dir, "vigil-bench-")
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	f := newFixture(b, filepath.Join(dir, "journal.db"))
	types := []alerts.Type{alerts.Motion, alerts.Intrusion, alerts.LineCrossing, alerts.Tamper}
	states := []alerts.State{alerts.Active, alerts.Active, alerts.Active, alerts.Inactive}
	cams := make([]string, 64)
	for i := range cams {
		cams[i] = fmt.Sprintf("cam-%02d", i)
	}
	cams[0], cams[1] = "gate", "hall-entrance" // exercise the key-site rule with auto-dispatch
	var lat []time.Duration
	ctx := b.Context()
	n := 0
	for b.Loop() {
		for range 1000 {
			cam := n % 64
			ev := alerts.Event{Camera: cams[cam], Type: types[(n/64)%len(types)], State: states[(n/256)%len(states)], Source: alerts.SourceGeneric}
			if ev.Type == alerts.LineCrossing {
				ev.State = alerts.Pulse
			}
			n++
			start := time.Now()
			if err := f.e.Handle(ctx, ev); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		f.clock.Advance(time.Second)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(lat))/1e6, "ms/event")
	b.ReportMetric(0, "ns/op")
}
