package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"vigil/internal/testutil"
)

func registry(t *testing.T, rdb redis.UniversalClient, n Node) *Registry {
	t.Helper()
	r, err := New(Options{Client: rdb, KeyPrefix: "t:", Self: func() Node { return n }, Heartbeat: 50 * time.Millisecond, Expiry: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func run(t *testing.T, r *Registry) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func ids(nodes []Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.ID)
	}
	return out
}

// Nodes register and heartbeat through a real Redis; a node whose
// cameras.yaml differs from the others' is flagged; a node that stops
// leaves at once, and one that dies is gone once its registration expires.
func TestNodesJoinDifferAndLeave(t *testing.T) {
	srv := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	town := registry(t, rdb, Node{ID: "town-1", Zone: "town", Cameras: []string{"hall-entrance", "gate"}, RegistryHash: "aaa"})
	town2 := registry(t, rdb, Node{ID: "town-2", Zone: "town", RegistryHash: "aaa"})
	village := registry(t, rdb, Node{ID: "village-3", Zone: "village-3", Cameras: []string{"v3-gate"}, RegistryHash: "bbb"})
	stopTown, stopTown2 := run(t, town), run(t, town2)
	defer stopTown()
	if err := village.beat(t.Context()); err != nil { // one heartbeat, then it "dies"
		t.Fatal(err)
	}
	var nodes []Node
	testutil.WaitFor(t, 5*time.Second, "three nodes", func() bool {
		var err error
		nodes, err = town.List(t.Context())
		return err == nil && len(nodes) == 3
	})
	for _, n := range nodes {
		if n.RegistryDiffers != (n.ID == "village-3") {
			t.Errorf("node %s registry_differs %v", n.ID, n.RegistryDiffers)
		}
		if n.Heartbeat.IsZero() || n.Zone == "" {
			t.Errorf("node %+v", n)
		}
	}
	if got := nodes[0]; got.ID != "town-1" || len(got.Cameras) != 2 {
		t.Errorf("first node %+v", got)
	}
	stopTown2()
	if nodes, err := town.List(t.Context()); err != nil || len(nodes) != 2 {
		t.Fatalf("after town-2 stopped: %v %v, want it gone at once", ids(nodes), err)
	}
	testutil.WaitFor(t, 5*time.Second, "village-3 expired", func() bool {
		nodes, err := town.List(t.Context())
		return err == nil && len(nodes) == 1 && nodes[0].ID == "town-1"
	})
}

// Heartbeats go on through a Redis outage once it ends.
func TestHeartbeatSurvivesRedisRestart(t *testing.T) {
	srv := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	r := registry(t, rdb, Node{ID: "n1", Zone: "town", RegistryHash: "a"})
	stop := run(t, r)
	defer stop()
	testutil.WaitFor(t, 5*time.Second, "registered", func() bool {
		nodes, err := r.List(t.Context())
		return err == nil && len(nodes) == 1
	})
	srv.Restart() // without persistence: the registration is gone with it
	testutil.WaitFor(t, 10*time.Second, "registered again after the restart", func() bool {
		nodes, err := r.List(t.Context())
		return err == nil && len(nodes) == 1
	})
}

// Recent answers from the last List for RecentFor, then lists again: a
// user's requests do not each cost a Redis round trip.
func TestNodesRecent(t *testing.T) {
	srv := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	clock := &settable{t: time.Now()}
	town, err := New(Options{Client: rdb, KeyPrefix: "t:", Self: func() Node { return Node{ID: "town-1"} }, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := town.beat(t.Context()); err != nil { // lists, as every heartbeat does
		t.Fatal(err)
	}
	village := registry(t, rdb, Node{ID: "village-3"})
	if err := village.beat(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, err := town.Recent(t.Context()); err != nil || !slices.Equal(ids(got), []string{"town-1"}) {
		t.Fatalf("within %v of the heartbeat's list: %v %v, want that list again", RecentFor, ids(got), err)
	}
	clock.Add(RecentFor)
	if got, err := town.Recent(t.Context()); err != nil || !slices.Equal(ids(got), []string{"town-1", "village-3"}) {
		t.Fatalf("after %v: %v %v, want both nodes", RecentFor, ids(got), err)
	}
	if got, err := town.List(t.Context()); err != nil || len(got) != 2 {
		t.Fatalf("List: %v %v", ids(got), err)
	}
}
