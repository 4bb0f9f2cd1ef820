package redisjournal

import (
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/alerts/journaltest"
	"vigil/internal/testutil"
)

// BenchmarkAppendToSubscriber paces appends at 1,000/s and measures the
// time from the start of Append to the change arriving at a subscriber
// (through Redis and the XREAD BLOCK reader). Run with
// go test -run '^$' -bench AppendToSubscriber -benchtime 5000x ./alerts/redisjournal/
// (5000x at 1,000/s is five seconds per case).
func BenchmarkAppendToSubscriber(b *testing.B) {
	for _, fsync := range []string{"everysec", "always"} {
		for _, nodes := range []int{1, 2} {
			b.Run(fmt.Sprintf("appendfsync=%s/nodes=%d", fsync, nodes), func(b *testing.B) { benchAppendToSubscriber(b, fsync, nodes) })
		}
	}
}

// benchAppendToSubscriber appends on one journal; with nodes=2 the
// subscriber is on a second journal sharing the Redis server.
func benchAppendToSubscriber(b *testing.B, fsync string, nodes int) {
	r := testutil.StartRedis(b, testutil.WithAppendOnly(fsync))
	o := Options{Addr: r.Addr(), KeyPrefix: newPrefix()}
	j := open(b, o)
	subJ := j
	if nodes == 2 {
		subJ = open(b, o)
	}
	ctx := b.Context()
	sub, err := subJ.Subscribe(ctx, 100_000)
	if err != nil {
		b.Fatal(err)
	}
	n := b.N
	sent := make([]atomic.Int64, n)
	lat := make([]time.Duration, 0, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(lat) < n {
			c, ok := <-sub.C
			if !ok {
				return
			}
			i, _ := strconv.Atoi(c.Alert.ID[3:])
			lat = append(lat, time.Duration(time.Now().UnixNano()-sent[i].Load()))
		}
	}()
	const interval = time.Millisecond
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		a := journaltest.NewAlert(fmt.Sprintf("01B%07d", i), base)
		sent[i].Store(time.Now().UnixNano())
		if _, err := j.Append(ctx, alerts.Change{Kind: alerts.KindRaised, Alert: a}, 0); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.Fatalf("subscriber received %d of %d", len(lat), n)
	}
	b.StopTimer()
	if len(lat) < n {
		b.Fatalf("subscription ended after %d of %d: %v", len(lat), n, sub.Err())
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "appends/s")
}
