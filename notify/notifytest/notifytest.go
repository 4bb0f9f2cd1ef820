// Package notifytest is the conformance suite of notify.Outbox, passed by
// the outbox of the embedded journal (alerts/boltjournal) and of the Redis
// journal (alerts/redisjournal). It owns no implementation.
package notifytest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/notify"
)

// Opener gives a test its own storage: each call of the returned function
// opens an outbox on that same storage, and close releases it, so an
// outbox closed and opened again sees what was written before.
type Opener func(t *testing.T) (open func() (ob notify.Outbox, close func()))

// Run runs the suite, fresh storage per subtest.
func Run(t *testing.T, o Opener) {
	cases := []struct {
		name string
		fn   func(t *testing.T, open func() (notify.Outbox, func()))
	}{
		{"EmptyCursor", testEmptyCursor},
		{"EnqueuePending", testEnqueuePending},
		{"Remove", testRemove},
		{"PerReceiver", testPerReceiver},
		{"Limit", testLimit},
		{"Reopen", testReopen},
		{"ConcurrentEnqueue", testConcurrentEnqueue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, o(t)) })
	}
}

func entry(receiver string, i int) notify.Entry {
	return notify.Entry{
		Receiver: receiver,
		Queued:   time.Date(2026, 12, 6, 8, 0, i, 0, time.UTC),
		Message: notify.Message{
			Kind: alerts.KindRaised, Seq: uint64(i), AlertID: fmt.Sprintf("01A%03d", i),
			Severity: alerts.Critical, Site: "key-site", Type: alerts.Intrusion,
			Title: fmt.Sprintf("【紧急】新告警 重点部位 区域入侵 %d", i), Text: "**告警**\n- 点位：大门", URL: "https://desk.example/?alert=01A",
			At: time.Date(2026, 12, 6, 8, 0, i, 0, time.UTC),
		},
	}
}

func openOne(t *testing.T, open func() (notify.Outbox, func())) notify.Outbox {
	ob, closeFn := open()
	t.Cleanup(closeFn)
	return ob
}

func testEmptyCursor(t *testing.T, open func() (notify.Outbox, func())) {
	ob := openOne(t, open)
	ctx := t.Context()
	if seq, ok, err := ob.Cursor(ctx); err != nil || ok || seq != 0 {
		t.Fatalf("fresh outbox: Cursor = %d, %v, %v; want 0, false, nil", seq, ok, err)
	}
	if _, err := ob.Enqueue(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	if seq, ok, err := ob.Cursor(ctx); err != nil || !ok || seq != 0 {
		t.Fatalf("after Enqueue(0, nil): Cursor = %d, %v, %v; want 0, true, nil", seq, ok, err)
	}
	if _, err := ob.Enqueue(ctx, 42, nil); err != nil {
		t.Fatal(err)
	}
	if seq, ok, _ := ob.Cursor(ctx); !ok || seq != 42 {
		t.Fatalf("Cursor = %d, %v; want 42, true", seq, ok)
	}
	if es, err := ob.Pending(ctx, "duty", 10); err != nil || len(es) != 0 {
		t.Fatalf("Pending on an empty outbox = %v, %v", es, err)
	}
}

func testEnqueuePending(t *testing.T, open func() (notify.Outbox, func())) {
	ob := openOne(t, open)
	ctx := t.Context()
	in := []notify.Entry{entry("duty", 1), entry("duty", 2), entry("duty", 3)}
	got, err := ob.Enqueue(ctx, 7, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("Enqueue returned %d entries, want 3", len(got))
	}
	for i := range got {
		if got[i].ID == 0 || (i > 0 && got[i].ID <= got[i-1].ID) {
			t.Fatalf("IDs %d, %d, %d: want non-zero and increasing", got[0].ID, got[1].ID, got[2].ID)
		}
	}
	more, err := ob.Enqueue(ctx, 8, []notify.Entry{entry("duty", 4)})
	if err != nil {
		t.Fatal(err)
	}
	if more[0].ID <= got[2].ID {
		t.Fatalf("second Enqueue ID %d not above %d", more[0].ID, got[2].ID)
	}
	pend, err := ob.Pending(ctx, "duty", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := append(got, more...)
	if len(pend) != len(want) {
		t.Fatalf("Pending = %d entries, want %d", len(pend), len(want))
	}
	for i := range want {
		if !equalEntry(pend[i], want[i]) {
			t.Fatalf("Pending[%d] = %+v\nwant %+v", i, pend[i], want[i])
		}
	}
	if seq, ok, _ := ob.Cursor(ctx); !ok || seq != 8 {
		t.Fatalf("Cursor = %d, %v; want 8", seq, ok)
	}
}

func equalEntry(a, b notify.Entry) bool {
	a.Queued, b.Queued = a.Queued.UTC(), b.Queued.UTC()
	a.Message.At, b.Message.At = a.Message.At.UTC(), b.Message.At.UTC()
	return reflect.DeepEqual(a, b)
}

func testRemove(t *testing.T, open func() (notify.Outbox, func())) {
	ob := openOne(t, open)
	ctx := t.Context()
	got, err := ob.Enqueue(ctx, 1, []notify.Entry{entry("duty", 1), entry("duty", 2), entry("duty", 3)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Remove(ctx, got[0].ID, got[2].ID, 999_999); err != nil {
		t.Fatalf("Remove with an unknown ID: %v", err)
	}
	pend, _ := ob.Pending(ctx, "duty", 10)
	if len(pend) != 1 || pend[0].ID != got[1].ID {
		t.Fatalf("after Remove: %+v, want only ID %d", pend, got[1].ID)
	}
	if err := ob.Remove(ctx, got[0].ID); err != nil {
		t.Fatalf("Remove again: %v", err)
	}
	if err := ob.Remove(ctx); err != nil {
		t.Fatalf("Remove of nothing: %v", err)
	}
}

func testPerReceiver(t *testing.T, open func() (notify.Outbox, func())) {
	ob := openOne(t, open)
	ctx := t.Context()
	// Receiver IDs that are prefixes of each other stay apart.
	_, err := ob.Enqueue(ctx, 1, []notify.Entry{entry("duty", 1), entry("duty-2", 2), entry("duty", 3), entry("d", 4)})
	if err != nil {
		t.Fatal(err)
	}
	for rcv, n := range map[string]int{"duty": 2, "duty-2": 1, "d": 1, "other": 0} {
		pend, err := ob.Pending(ctx, rcv, 10)
		if err != nil || len(pend) != n {
			t.Fatalf("Pending(%s) = %d entries, %v; want %d", rcv, len(pend), err, n)
		}
		for _, e := range pend {
			if e.Receiver != rcv {
				t.Fatalf("Pending(%s) returned an entry of %s", rcv, e.Receiver)
			}
		}
	}
}

func testLimit(t *testing.T, open func() (notify.Outbox, func())) {
	ob := openOne(t, open)
	ctx := t.Context()
	var in []notify.Entry
	for i := range 25 {
		in = append(in, entry("duty", i))
	}
	got, err := ob.Enqueue(ctx, 1, in)
	if err != nil {
		t.Fatal(err)
	}
	pend, err := ob.Pending(ctx, "duty", 10)
	if err != nil || len(pend) != 10 || pend[0].ID != got[0].ID || pend[9].ID != got[9].ID {
		t.Fatalf("Pending(limit 10) = %d entries, %v; want the 10 oldest", len(pend), err)
	}
}

func testReopen(t *testing.T, open func() (notify.Outbox, func())) {
	ob, closeFn := open()
	ctx := t.Context()
	got, err := ob.Enqueue(ctx, 5, []notify.Entry{entry("duty", 1), entry("duty", 2)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Remove(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	closeFn()
	ob = openOne(t, open)
	if seq, ok, err := ob.Cursor(ctx); err != nil || !ok || seq != 5 {
		t.Fatalf("reopened: Cursor = %d, %v, %v; want 5", seq, ok, err)
	}
	pend, err := ob.Pending(ctx, "duty", 10)
	if err != nil || len(pend) != 1 || pend[0].ID != got[1].ID {
		t.Fatalf("reopened: Pending = %+v, %v; want ID %d", pend, err, got[1].ID)
	}
	more, err := ob.Enqueue(ctx, 6, []notify.Entry{entry("duty", 3)})
	if err != nil {
		t.Fatal(err)
	}
	if more[0].ID <= got[1].ID {
		t.Fatalf("reopened: new ID %d reuses or precedes %d", more[0].ID, got[1].ID)
	}
}

func testConcurrentEnqueue(t *testing.T, open func() (notify.Outbox, func())) {
	ob := openOne(t, open)
	ctx := context.WithoutCancel(t.Context())
	var wg sync.WaitGroup
	ids := make(chan uint64, 80)
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				es, err := ob.Enqueue(ctx, uint64(g*10+i), []notify.Entry{entry("duty", i)})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- es[0].ID
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[uint64]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("ID %d assigned twice", id)
		}
		seen[id] = true
	}
	pend, err := ob.Pending(ctx, "duty", 1000)
	if err != nil || len(pend) != 80 {
		t.Fatalf("Pending = %d, %v; want 80", len(pend), err)
	}
	for i := 1; i < len(pend); i++ {
		if pend[i].ID <= pend[i-1].ID {
			t.Fatalf("Pending not in ID order at %d", i)
		}
	}
}
