package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"vigil/internal/testutil"
)

// BenchmarkLeaseRenewal is one tick of a node holding 200 cameras on a
// real redis-server with every lease due for renewal: the read of the
// leases and the renewals.
//
//	go test -run '^$' -bench LeaseRenewal -benchtime 200x ./cluster/
func BenchmarkLeaseRenewal(b *testing.B) {
	srv := testutil.StartRedis(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { _ = rdb.Close() })
	const n = 200
	cameras := make([]Camera, n)
	for i := range cameras {
		cameras[i] = Camera{ID: fmt.Sprintf("cam-%03d", i)}
	}
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	acquired := 0
	l, err := NewLeases(LeaseOptions{
		Client: rdb, KeyPrefix: "b:", Node: "a",
		Cameras:  func() []Camera { return cameras },
		Nodes:    func(context.Context) ([]Node, error) { return []Node{{ID: "a"}}, nil },
		Acquired: func(string, int64) { acquired++ },
		Lost:     func(c string) { b.Fatalf("lost %s", c) },
		TTL:      time.Hour, // the fake clock moves faster than Redis's
		Now:      func() time.Time { return now },
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if err := l.step(ctx); err != nil || acquired != n {
		b.Fatalf("taking the leases: %d of %d, %v", acquired, n, err)
	}
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(l.o.Renew) // every lease due
		if err := l.step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if acquired != n {
		b.Fatalf("%d acquisitions, want %d", acquired, n)
	}
}
