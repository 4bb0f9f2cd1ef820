package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"vigil/internal/testutil"
)

func newLeases(t *testing.T, rdb redis.UniversalClient, node string, o LeaseOptions) *Leases {
	t.Helper()
	o.Client, o.KeyPrefix, o.Node = rdb, "t:", node
	if o.Cameras == nil {
		o.Cameras = func() []Camera { return nil }
	}
	if o.Nodes == nil {
		o.Nodes = func(context.Context) ([]Node, error) { return nil, nil }
	}
	l, err := NewLeases(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The lease scripts against a real Redis: one holder at a time, an epoch
// that rises with each new holder, expiry, and fencing: a holder that lost
// the lease can neither renew nor release it.
func TestLeaseScripts(t *testing.T) {
	srv := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := t.Context()
	a := newLeases(t, rdb, "a", LeaseOptions{TTL: 400 * time.Millisecond})
	b := newLeases(t, rdb, "b", LeaseOptions{TTL: 400 * time.Millisecond})

	if n, e, err := a.Holder(ctx, "gate"); err != nil || n != "" || e != 0 {
		t.Fatalf("free lease: %q %d %v", n, e, err)
	}
	e1, _, err := a.take(ctx, "gate", "a", "", 0)
	if err != nil || e1 != 1 {
		t.Fatalf("a takes: %d %v", e1, err)
	}
	if e, cur, err := b.take(ctx, "gate", "b", "", 0); err != nil || e != 0 || cur != "1 a" {
		t.Fatalf("b takes a held lease: %d %q %v", e, cur, err)
	}
	if n, e, _ := b.Holder(ctx, "gate"); n != "a" || e != 1 {
		t.Fatalf("holder %q %d", n, e)
	}
	// Renewing keeps it past its TTL.
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		if e, err := a.renew(ctx, "gate", e1); err != nil || e != e1 {
			t.Fatalf("renew: %d %v", e, err)
		}
	}
	// a hands it to b: a new epoch, and a is fenced off.
	e2, _, err := a.take(ctx, "gate", "b", leaseValue("a", e1), e1)
	if err != nil || e2 <= e1 {
		t.Fatalf("handover: %d %v", e2, err)
	}
	if _, err := a.renew(ctx, "gate", e1); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("old holder renews: %v", err)
	}
	if err := a.release(ctx, "gate", e1); err != nil {
		t.Fatal(err)
	}
	if n, e, _ := a.Holder(ctx, "gate"); n != "b" || e != e2 {
		t.Fatalf("after the old holder's release: %q %d", n, e)
	}
	// Expiry: b stops renewing; a takes it with a higher epoch still.
	testutil.WaitFor(t, 5*time.Second, "the lease expired", func() bool {
		n, _, err := a.Holder(ctx, "gate")
		return err == nil && n == ""
	})
	e3, _, err := a.take(ctx, "gate", "a", "", 0)
	if err != nil || e3 <= e2 {
		t.Fatalf("a takes the expired lease: %d %v (before %d)", e3, err, e2)
	}
	if _, err := b.renew(ctx, "gate", e2); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("expired holder renews after another took it: %v", err)
	}
	// A holder renewing a lease that expired with nobody taking it keeps
	// its epoch.
	if err := rdb.Del(ctx, a.leaseKey("gate")).Err(); err != nil {
		t.Fatal(err)
	}
	if e, err := a.renew(ctx, "gate", e3); err != nil || e != e3 {
		t.Fatalf("renew of a lapsed lease: %d %v, want %d", e, err, e3)
	}
	// After a Redis that lost everything, the counter restarts above the
	// epochs a node still knows.
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if e, _, err := b.take(ctx, "gate", "b", "", e3); err != nil || e <= e3 {
		t.Fatalf("take after a flush: %d %v", e, err)
	}
	// Release by the holder frees it.
	_, e4, _ := b.Holder(ctx, "gate")
	if err := b.release(ctx, "gate", e4); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := a.Holder(ctx, "gate"); n != "" {
		t.Fatalf("released lease held by %q", n)
	}
}

// member is one node of an in-process cluster: a registry and leases on
// short timings, with its own Redis client (closing it is the node's death).
type member struct {
	id      string
	rdb     *redis.Client
	reg     *Registry
	leases  *Leases
	stop    context.CancelFunc
	done    chan struct{}
	acq     atomic.Int64 // Acquired calls
	lost    atomic.Int64 // Lost calls
	history *history
}

// history orders the Acquired and Lost calls of every member.
type history struct {
	mu     sync.Mutex
	events []string // "acquired cam node" / "lost cam node"
}

func (h *history) add(s string) {
	h.mu.Lock()
	h.events = append(h.events, s)
	h.mu.Unlock()
}

// last is the index of the last event s, -1 if none.
func (h *history) last(s string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.events) - 1; i >= 0; i-- {
		if h.events[i] == s {
			return i
		}
	}
	return -1
}

func startMember(t *testing.T, addr, id, zone string, cameras []Camera, h *history) *member {
	t.Helper()
	return startMemberRecording(t, addr, id, zone, cameras, h, true)
}

// startMemberRecording is startMember for a node that reports the cameras
// it holds as recording (records) or never does (one still connecting).
func startMemberRecording(t *testing.T, addr, id, zone string, cameras []Camera, h *history, records bool) *member {
	t.Helper()
	m := &member{id: id, history: h, done: make(chan struct{})}
	m.rdb = redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = m.rdb.Close() })
	var err error
	m.reg, err = New(Options{Client: m.rdb, KeyPrefix: "t:", Heartbeat: 50 * time.Millisecond, Expiry: 300 * time.Millisecond,
		Self: func() Node {
			n := Node{ID: id, Zone: zone}
			if m.leases != nil {
				n.Cameras = m.leases.Held()
				if records {
					n.Recording = n.Cameras // it records at once
				}
			}
			return n
		}})
	if err != nil {
		t.Fatal(err)
	}
	m.leases = newLeases(t, m.rdb, id, LeaseOptions{
		Cameras: func() []Camera { return cameras }, Nodes: m.reg.List,
		TTL: 600 * time.Millisecond, Renew: 150 * time.Millisecond, Tick: 50 * time.Millisecond, HandoverWait: 2 * time.Second,
		Acquired: func(cam string, _ int64) { m.acq.Add(1); h.add("acquired " + cam + " " + id) },
		Lost:     func(cam string) { m.lost.Add(1); h.add("lost " + cam + " " + id) },
	})
	ctx, cancel := context.WithCancel(t.Context())
	m.stop = cancel
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = m.reg.Run(ctx) }()
	go func() { defer wg.Done(); _ = m.leases.Run(ctx) }()
	go func() { wg.Wait(); close(m.done) }()
	t.Cleanup(func() { cancel(); <-m.done })
	return m
}

// holders reads every camera's lease.
func holders(t *testing.T, l *Leases, cameras []Camera) map[string]string {
	out := map[string]string{}
	for _, c := range cameras {
		n, _, err := l.Holder(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		out[c.ID] = n
	}
	return out
}

func spread(t *testing.T, ms []*member, cameras []Camera, perNode int) bool {
	t.Helper()
	total := 0
	for _, m := range ms {
		held := m.leases.Held()
		if len(held) != perNode {
			return false
		}
		total += len(held)
	}
	h := holders(t, ms[0].leases, cameras)
	for _, m := range ms {
		for _, c := range m.leases.Held() {
			if h[c] != m.id {
				return false
			}
		}
	}
	return total == len(cameras)
}

// Three nodes share six cameras two each; when one dies (its Redis client
// gone, nothing released) its cameras go to the others; a node that joins
// takes its share, each camera starting there before the old holder stops.
func TestLeasesShareFailoverAndJoin(t *testing.T) {
	srv := testutil.StartRedis(t)
	cameras := cams("", 6)
	h := &history{}
	var ms []*member
	for i := range 3 {
		ms = append(ms, startMember(t, srv.Addr(), fmt.Sprintf("n%d", i), "town", cameras, h))
	}
	testutil.WaitFor(t, 10*time.Second, "two cameras on each node", func() bool { return spread(t, ms, cameras, 2) })

	dead := ms[2]
	held := dead.leases.Held()
	lostBefore := dead.lost.Load()
	_ = dead.rdb.Close() // kill -9: no release, no leave
	testutil.WaitFor(t, 10*time.Second, "the dead node's cameras held by the others", func() bool {
		hs := holders(t, ms[0].leases, cameras)
		for _, c := range held {
			if hs[c] == "" || hs[c] == dead.id {
				return false
			}
		}
		return len(ms[0].leases.Held())+len(ms[1].leases.Held()) == 6
	})
	dead.stop()
	<-dead.done
	if n := dead.lost.Load() - lostBefore; n != 0 {
		t.Errorf("a node that cannot reach Redis gave up %d cameras; it must keep them", n)
	}

	// A new node joins: it takes two, each handed over by its holder.
	before := map[string]string{}
	for _, m := range ms[:2] {
		for _, c := range m.leases.Held() {
			before[c] = m.id
		}
	}
	joined := startMember(t, srv.Addr(), "n3", "town", cameras, h)
	live := []*member{ms[0], ms[1], joined}
	testutil.WaitFor(t, 10*time.Second, "two cameras on each node after the join", func() bool { return spread(t, live, cameras, 2) })
	for _, c := range joined.leases.Held() {
		acq, lost := h.last("acquired "+c+" n3"), h.last("lost "+c+" "+before[c])
		if acq < 0 || lost < 0 || acq > lost {
			t.Errorf("camera %s: acquired by n3 at %d, lost by %s at %d: the new holder must start first: %v", c, acq, before[c], lost, h.events)
		}
	}
	for _, m := range live {
		if m.lost.Load() > m.acq.Load() {
			t.Errorf("%s lost %d, acquired %d", m.id, m.lost.Load(), m.acq.Load())
		}
	}
}

// While Redis is down a node keeps every camera it holds; when Redis
// comes back empty it takes them again with the epochs it had.
func TestLeasesKeptThroughRedisOutage(t *testing.T) {
	srv := testutil.StartRedis(t)
	cameras := cams("", 3)
	h := &history{}
	m := startMember(t, srv.Addr(), "n0", "town", cameras, h)
	testutil.WaitFor(t, 10*time.Second, "all three held", func() bool { return len(m.leases.Held()) == 3 })
	epochs := map[string]int64{}
	for _, c := range cameras {
		_, e, err := m.leases.Holder(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		epochs[c.ID] = e
	}
	srv.Stop()
	// Several TTLs pass with Redis down.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if len(m.leases.Held()) != 3 {
			t.Fatalf("held %v during the outage", m.leases.Held())
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Restart()
	testutil.WaitFor(t, 10*time.Second, "the leases in Redis again", func() bool {
		for _, c := range cameras {
			n, e, err := m.leases.Holder(t.Context(), c.ID)
			if err != nil || n != "n0" || e != epochs[c.ID] {
				return false
			}
		}
		return true
	})
	if m.lost.Load() != 0 || m.acq.Load() != 3 {
		t.Fatalf("acquired %d lost %d, want 3 and 0: %v", m.acq.Load(), m.lost.Load(), h.events)
	}
}

// A node that starts while Redis is down records the cameras it may
// record, without leases; once Redis answers it takes the leases the
// assignment gives it and gives up the ones another node takes.
func TestLeasesProvisionalWhileRedisDownAtStart(t *testing.T) {
	srv := testutil.StartRedis(t)
	srv.Stop()
	cameras := cams("", 4)
	h := &history{}
	m0 := startMember(t, srv.Addr(), "n0", "town", cameras, h)
	testutil.WaitFor(t, 10*time.Second, "every camera recorded without Redis", func() bool { return len(m0.leases.Held()) == 4 })
	srv.Restart()
	m1 := startMember(t, srv.Addr(), "n1", "town", cameras, h)
	testutil.WaitFor(t, 10*time.Second, "two each, under leases", func() bool { return spread(t, []*member{m0, m1}, cameras, 2) })
	for _, c := range m0.leases.Held() {
		if _, e, _ := m0.leases.Holder(t.Context(), c); e == 0 {
			t.Errorf("camera %s: epoch 0 under a lease", c)
		}
	}
}

// A camera handed to a node that dies before it records is taken back by
// the node still recording it, without stopping.
func TestLeasesHandoverToANodeThatDies(t *testing.T) {
	srv := testutil.StartRedis(t)
	cameras := cams("", 2)
	h := &history{}
	m0 := startMember(t, srv.Addr(), "n0", "town", cameras, h)
	testutil.WaitFor(t, 10*time.Second, "both held by n0", func() bool { return spread(t, []*member{m0}, cameras, 2) })
	m1 := startMemberRecording(t, srv.Addr(), "n1", "town", cameras, h, false)
	var moved string
	testutil.WaitFor(t, 10*time.Second, "a camera handed to n1", func() bool {
		for c, n := range holders(t, m0.leases, cameras) {
			if n == "n1" {
				moved = c
				return true
			}
		}
		return false
	})
	_ = m1.rdb.Close() // dies while connecting
	testutil.WaitFor(t, 10*time.Second, "n0 holds it again", func() bool {
		n, _, err := m0.leases.Holder(t.Context(), moved)
		return err == nil && n == "n0"
	})
	if i := h.last("lost " + moved + " n0"); i >= 0 {
		t.Fatalf("n0 stopped %s on the way: %v", moved, h.events)
	}
	if !slices.Contains(m0.leases.Held(), moved) {
		t.Fatalf("n0 holds %v", m0.leases.Held())
	}
}

// A node that restarts before its leases expire takes them up again, with
// their epochs, and renews them.
func TestLeasesKeptAcrossAQuickRestart(t *testing.T) {
	srv := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cameras := cams("", 1)
	before := newLeases(t, rdb, "n0", LeaseOptions{TTL: 600 * time.Millisecond})
	e, _, err := before.take(t.Context(), cameras[0].ID, "n0", "", 0)
	if err != nil || e == 0 {
		t.Fatalf("take: %d %v", e, err)
	}
	h := &history{}
	m := startMember(t, srv.Addr(), "n0", "town", cameras, h)
	testutil.WaitFor(t, 5*time.Second, "taken up again", func() bool { return len(m.leases.Held()) == 1 })
	time.Sleep(time.Second) // longer than the TTL left
	if n, got, err := m.leases.Holder(t.Context(), cameras[0].ID); err != nil || n != "n0" || got != e {
		t.Fatalf("holder %q epoch %d %v, want n0 epoch %d", n, got, err, e)
	}
	if m.lost.Load() != 0 {
		t.Fatalf("lost: %v", h.events)
	}
}

// startGhost registers a live node "ghost" in zone town that says it holds
// camera, and records it once the returned flag is set.
func startGhost(t *testing.T, addr, camera string) *atomic.Bool {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	recording := &atomic.Bool{}
	ghost, err := New(Options{Client: rdb, KeyPrefix: "t:", Heartbeat: 50 * time.Millisecond, Expiry: 300 * time.Millisecond,
		Self: func() Node {
			n := Node{ID: "ghost", Zone: "town", Cameras: []string{camera}}
			if recording.Load() {
				n.Recording = n.Cameras
			}
			return n
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(run(t, ghost))
	testutil.WaitFor(t, 5*time.Second, "ghost listed", func() bool {
		nodes, err := ghost.List(t.Context())
		return err == nil && slices.ContainsFunc(nodes, func(n Node) bool { return n.ID == "ghost" })
	})
	return recording
}

func handedTo(l *Leases, camera string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.held[camera]; h != nil {
		return h.handedTo
	}
	return "-"
}

// A lease taken by another node while its holder still records (the
// others thought it dead) is given up only once the new holder records.
func TestLeaseTakenRecordsUntilTheTakerRecords(t *testing.T) {
	srv := testutil.StartRedis(t)
	cameras := cams("", 1)
	cam := cameras[0].ID
	h := &history{}
	m0 := startMember(t, srv.Addr(), "n0", "town", cameras, h)
	testutil.WaitFor(t, 10*time.Second, "held by n0", func() bool { return len(m0.leases.Held()) == 1 })
	recording := startGhost(t, srv.Addr(), cam)
	_, e, _ := m0.leases.Holder(t.Context(), cam)
	if got, _, err := m0.leases.take(t.Context(), cam, "ghost", leaseValue("n0", e), 0); err != nil || got == 0 {
		t.Fatalf("ghost takes: %d %v", got, err)
	}
	testutil.WaitFor(t, 5*time.Second, "n0 records on until ghost records", func() bool { return handedTo(m0.leases, cam) == "ghost" })
	if m0.lost.Load() != 0 {
		t.Fatalf("n0 stopped before the taker recorded: %v", h.events)
	}
	recording.Store(true)
	testutil.WaitFor(t, 5*time.Second, "n0 gave it up", func() bool { return m0.lost.Load() == 1 })
}

// A camera handed back to the node that still records it (the two saw the
// cluster differently for a moment) is simply kept.
func TestLeaseHandedBackIsKept(t *testing.T) {
	srv := testutil.StartRedis(t)
	cameras := cams("", 1)
	cam := cameras[0].ID
	h := &history{}
	m0 := startMember(t, srv.Addr(), "n0", "town", cameras, h)
	testutil.WaitFor(t, 10*time.Second, "held by n0", func() bool { return len(m0.leases.Held()) == 1 })
	startGhost(t, srv.Addr(), cam)
	_, e, _ := m0.leases.Holder(t.Context(), cam)
	eg, _, err := m0.leases.take(t.Context(), cam, "ghost", leaseValue("n0", e), 0)
	if err != nil || eg == 0 {
		t.Fatalf("ghost takes: %d %v", eg, err)
	}
	testutil.WaitFor(t, 5*time.Second, "n0 recording on for ghost", func() bool { return handedTo(m0.leases, cam) == "ghost" })
	back, _, err := m0.leases.take(t.Context(), cam, "n0", leaseValue("ghost", eg), 0)
	if err != nil || back <= eg {
		t.Fatalf("handed back: %d %v", back, err)
	}
	testutil.WaitFor(t, 5*time.Second, "n0 holds it again", func() bool { return handedTo(m0.leases, cam) == "" })
	if m0.lost.Load() != 0 {
		t.Fatalf("n0 stopped the camera on the way: %v", h.events)
	}
	if _, got, _ := m0.leases.Holder(t.Context(), cam); got != back {
		t.Fatalf("epoch %d, want %d", got, back)
	}
}

// roundTrips counts the requests a Redis client sends: a command or a
// whole pipeline is one.
type roundTrips struct {
	n    atomic.Int64
	mu   sync.Mutex
	sent []string
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		h.mu.Lock()
		h.sent = append(h.sent, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		h.mu.Lock()
		h.sent = append(h.sent, fmt.Sprintf("pipeline of %d", len(cmds)))
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

// The renewals of a tick go to Redis in one round trip, whatever the
// number of cameras, and each keeps its compare-and-set: a lease another
// node took is given up, one that lapsed is taken again (with its epoch
// when nobody came between, else a new one), and a Redis that lost its
// scripts is given them again.
func TestLeaseRenewalsInOneRoundTrip(t *testing.T) {
	srv := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	trips := &roundTrips{}
	rdb.AddHook(trips)
	ctx := t.Context()
	cameras := make([]Camera, 20)
	for i := range cameras {
		cameras[i] = Camera{ID: fmt.Sprintf("cam-%02d", i)}
	}
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	acquired, lost := map[string][]int64{}, map[string]int{}
	l := newLeases(t, rdb, "a", LeaseOptions{
		Cameras:  func() []Camera { return cameras },
		Nodes:    func(context.Context) ([]Node, error) { return []Node{{ID: "a"}}, nil },
		Acquired: func(c string, e int64) { mu.Lock(); acquired[c] = append(acquired[c], e); mu.Unlock() },
		Lost:     func(c string) { mu.Lock(); lost[c]++; mu.Unlock() },
		TTL:      time.Hour, // the fake clock runs ahead of Redis's
		Now:      func() time.Time { return now },
	})
	if err := l.step(ctx); err != nil || len(l.Held()) != len(cameras) {
		t.Fatalf("taking the leases: held %v, %v", l.Held(), err)
	}

	t.Run("one tick", func(t *testing.T) {
		// The first renewals load the script (NOSCRIPT, then again).
		now = now.Add(l.o.Renew)
		if err := l.step(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(l.o.Renew)
		trips.n.Store(0)
		trips.sent = nil
		if err := l.step(ctx); err != nil {
			t.Fatal(err)
		}
		// The leases read (MGET) and every renewal (one pipeline).
		if n := trips.n.Load(); n != 2 {
			t.Fatalf("%d round trips for a tick renewing %d leases, want 2: %v", n, len(cameras), trips.sent)
		}
		if len(l.Held()) != len(cameras) || len(lost) != 0 {
			t.Fatalf("held %v, lost %v", l.Held(), lost)
		}
	})

	t.Run("fencing per lease", func(t *testing.T) {
		// Between the read and the renewals: cam-00 taken by another
		// node, cam-01 lapsed, cam-02 lapsed and taken by someone since;
		// and Redis forgot its scripts.
		for _, err := range []error{
			rdb.Set(ctx, l.leaseKey("cam-00"), "9 z", 0).Err(),
			rdb.Del(ctx, l.leaseKey("cam-01"), l.leaseKey("cam-02")).Err(),
			rdb.Incr(ctx, l.epochKey("cam-02")).Err(),
			rdb.ScriptFlush(ctx).Err(),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		before := map[string]int{"cam-01": len(acquired["cam-01"]), "cam-02": len(acquired["cam-02"])}
		epoch1, epoch2 := acquired["cam-01"][0], acquired["cam-02"][0]
		mu.Unlock()
		now = now.Add(l.o.Renew)
		l.renewDue(ctx, now)
		mu.Lock()
		defer mu.Unlock()
		if lost["cam-00"] != 1 || len(lost) != 1 || slices.Contains(l.Held(), "cam-00") {
			t.Fatalf("lost %v, held %v: want cam-00 given up", lost, l.Held())
		}
		if len(acquired["cam-01"]) != before["cam-01"] {
			t.Fatalf("cam-01 acquired again %v: a lapsed lease nobody took keeps its epoch", acquired["cam-01"])
		}
		if n, e, _ := l.Holder(ctx, "cam-01"); n != "a" || e != epoch1 {
			t.Fatalf("cam-01 held by %q at %d, want a at %d", n, e, epoch1)
		}
		got := acquired["cam-02"]
		if len(got) != before["cam-02"]+1 || got[len(got)-1] <= epoch2 {
			t.Fatalf("cam-02 acquisitions %v: want a new epoch above %d", got, epoch2)
		}
		for _, c := range cameras[3:] {
			if n, _, err := l.Holder(ctx, c.ID); err != nil || n != "a" {
				t.Fatalf("%s held by %q: %v", c.ID, n, err)
			}
		}
	})
}
