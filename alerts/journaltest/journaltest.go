// Package journaltest is the conformance suite every alerts.Journal passes
// (boltjournal, redisjournal). It owns no implementation; it only states the
// contract of alerts.Journal, alerts.AuditLog, alerts.Trimmer and, for the
// journals that offer it, alerts.BatchAppender as tests.
package journaltest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"vigil/alerts"
)

// Opener gives a test its own storage: each call of the returned function
// opens a journal on that same storage, so a journal closed and opened again
// sees what was written before. The suite closes a journal before it opens
// the next one on the same storage.
type Opener func(t *testing.T) (open func() alerts.Journal)

// Run runs the suite on fresh journals from open, one per subtest. The suite
// closes the journals it opens; open may also register its own cleanup.
func Run(t *testing.T, open func(t *testing.T) alerts.Journal) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, j alerts.Journal)
	}{
		{"AppendGet", testAppendGet},
		{"Exists", testExists},
		{"VersionConflict", testVersionConflict},
		{"ConcurrentSameVersion", testConcurrentSameVersion},
		{"SeqUniqueGapless", testSeqUniqueGapless},
		{"ListFilters", testListFilters},
		{"ListPaging", testListPaging},
		{"ListBadCursor", testListBadCursor},
		{"Since", testSince},
		{"Trim", testTrim},
		{"Subscribe", testSubscribe},
		{"SlowSubscriber", testSlowSubscriber},
		{"SubscribeCancel", testSubscribeCancel},
		{"DurableBeforeAnnounce", testDurableBeforeAnnounce},
		{"Audit", testAudit},
		{"CloseEndsSubscriptions", testCloseEndsSubscriptions},
		{"ListSignal", testListSignal},
		{"AppendBatch", testAppendBatch},
		{"AppendBatchConcurrent", testAppendBatchConcurrent},
		{"Occurrences", testOccurrences},
		{"Origin", testOrigin},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := open(t)
			closed := false
			t.Cleanup(func() {
				if !closed {
					_ = j.Close()
				}
			})
			if c.name == "CloseEndsSubscriptions" {
				closed = true
			}
			c.fn(t, j)
		})
	}
}

// RunOpener runs Run on fresh storage per subtest plus the tests that close
// and reopen a journal on the same storage.
func RunOpener(t *testing.T, o Opener) {
	t.Helper()
	Run(t, func(t *testing.T) alerts.Journal { return o(t)() })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, o(t)) })
}

var base = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// NewAlert is a valid alert in status new for tests of journals.
func NewAlert(id string, raisedAt time.Time) alerts.Alert {
	ack := raisedAt.Add(15 * time.Minute)
	return alerts.Alert{
		ID: id, Camera: "hall-entrance", CameraName: "服务大厅入口", Site: "hall", Grid: "G03",
		Type: alerts.Intrusion, Key: "Gate", Severity: alerts.Critical, Source: alerts.SourceONVIF,
		Signal: alerts.SignalActive, Status: alerts.StatusNew,
		RaisedAt: raisedAt, LastSeenAt: raisedAt, Count: 1, AckDeadline: &ack,
		Detail:  map[string]string{"rule": "Gate"},
		History: []alerts.HistoryEntry{{At: raisedAt, By: alerts.System, Action: "raised"}},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, j alerts.Journal, kind alerts.ChangeKind, a alerts.Alert, expect int64) alerts.Change {
	t.Helper()
	c, err := j.Append(ctxT(t), alerts.Change{Kind: kind, At: a.LastSeenAt, By: alerts.System, Origin: alerts.OriginSystem, Alert: a}, expect)
	if err != nil {
		t.Fatalf("append %s v%d: %v", a.ID, expect, err)
	}
	return c
}

// sameAlert compares alerts by their JSON, which is what crosses the wire.
func sameAlert(t *testing.T, what string, got, want alerts.Alert) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func testAppendGet(t *testing.T, j alerts.Journal) {
	ctx := ctxT(t)
	if _, err := j.Get(ctx, "nope"); !errors.Is(err, alerts.ErrNotFound) {
		t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
	}
	if s, err := j.LastSeq(ctx); err != nil || s != 0 {
		t.Fatalf("LastSeq empty = %d, %v; want 0", s, err)
	}
	a := NewAlert("01A", base)
	a.Version = 77 // ignored: Append sets it
	c := mustAppend(t, j, alerts.KindRaised, a, 0)
	if c.Seq != 1 || c.Alert.Version != 1 || c.Kind != alerts.KindRaised {
		t.Fatalf("first append: seq %d version %d kind %s; want 1, 1, raised", c.Seq, c.Alert.Version, c.Kind)
	}
	got, err := j.Get(ctx, "01A")
	if err != nil {
		t.Fatal(err)
	}
	a.Version = 1
	sameAlert(t, "Get after raise", got, a)

	a.Status = alerts.StatusAcknowledged
	a.AcknowledgedBy = "desk-1"
	c = mustAppend(t, j, alerts.KindAcknowledged, a, 1)
	if c.Seq != 2 || c.Alert.Version != 2 {
		t.Fatalf("second append: seq %d version %d; want 2, 2", c.Seq, c.Alert.Version)
	}
	got, _ = j.Get(ctx, "01A")
	a.Version = 2
	sameAlert(t, "Get after ack", got, a)
	if s, _ := j.LastSeq(ctx); s != 2 {
		t.Fatalf("LastSeq = %d, want 2", s)
	}
	if _, err := j.Append(ctx, alerts.Change{Kind: alerts.KindRaised, Alert: alerts.Alert{}}, 0); err == nil {
		t.Fatal("append of an alert without ID succeeded")
	}
}

func testExists(t *testing.T, j alerts.Journal) {
	mustAppend(t, j, alerts.KindRaised, NewAlert("01A", base), 0)
	_, err := j.Append(ctxT(t), alerts.Change{Kind: alerts.KindRaised, Alert: NewAlert("01A", base)}, 0)
	if !errors.Is(err, alerts.ErrExists) {
		t.Fatalf("second raise: err = %v, want ErrExists", err)
	}
	_, err = j.Append(ctxT(t), alerts.Change{Kind: alerts.KindUpdated, Alert: NewAlert("01B", base)}, 3)
	if !errors.Is(err, alerts.ErrNotFound) {
		t.Fatalf("update of missing alert: err = %v, want ErrNotFound", err)
	}
	if s, _ := j.LastSeq(ctxT(t)); s != 1 {
		t.Fatalf("failed appends moved LastSeq to %d", s)
	}
}

func testVersionConflict(t *testing.T, j alerts.Journal) {
	a := NewAlert("01A", base)
	mustAppend(t, j, alerts.KindRaised, a, 0)
	a.Count = 2
	mustAppend(t, j, alerts.KindUpdated, a, 1)
	for _, stale := range []int64{1, 3} {
		b := a
		b.Status = alerts.StatusResolved
		_, err := j.Append(ctxT(t), alerts.Change{Kind: alerts.KindResolved, Alert: b}, stale)
		var ce *alerts.ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, alerts.ErrConflict) {
			t.Fatalf("expect %d: err = %v, want *ConflictError", stale, err)
		}
		a.Version = 2
		sameAlert(t, "ConflictError.Current", ce.Current, a)
	}
	got, _ := j.Get(ctxT(t), "01A")
	if got.Status != alerts.StatusNew || got.Version != 2 {
		t.Fatalf("after conflicts: status %s version %d", got.Status, got.Version)
	}
}

func testConcurrentSameVersion(t *testing.T, j alerts.Journal) {
	a := NewAlert("01A", base)
	mustAppend(t, j, alerts.KindRaised, a, 0)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			b := a
			b.Status = alerts.StatusAcknowledged
			b.AcknowledgedBy = fmt.Sprintf("desk-%d", i)
			_, errs[i] = j.Append(ctxT(t), alerts.Change{Kind: alerts.KindAcknowledged, By: b.AcknowledgedBy, Alert: b}, 1)
		})
	}
	wg.Wait()
	won, winner := 0, ""
	for i, err := range errs {
		var ce *alerts.ConflictError
		switch {
		case err == nil:
			won++
			winner = fmt.Sprintf("desk-%d", i)
		case errors.As(err, &ce):
			if ce.Current.Version != 2 {
				t.Errorf("loser %d sees version %d, want 2", i, ce.Current.Version)
			}
		default:
			t.Errorf("append %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d appends with the same expected version won, want exactly 1", won)
	}
	got, _ := j.Get(ctxT(t), "01A")
	if got.Version != 2 || got.AcknowledgedBy != winner {
		t.Fatalf("stored version %d by %q, want 2 by %q", got.Version, got.AcknowledgedBy, winner)
	}
	if s, _ := j.LastSeq(ctxT(t)); s != 2 {
		t.Fatalf("LastSeq = %d, want 2", s)
	}
}

func testSeqUniqueGapless(t *testing.T, j alerts.Journal) {
	const workers, per = 8, 20
	var (
		mu   sync.Mutex
		seqs []uint64
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			a := NewAlert(fmt.Sprintf("01W%02d", w), base.Add(time.Duration(w)*time.Second))
			for i := range per {
				a.Count = int64(i + 1)
				kind := alerts.KindUpdated
				if i == 0 {
					kind = alerts.KindRaised
				}
				c, err := j.Append(ctxT(t), alerts.Change{Kind: kind, Alert: a}, int64(i))
				if err != nil {
					t.Errorf("worker %d append %d: %v", w, i, err)
					return
				}
				mu.Lock()
				seqs = append(seqs, c.Seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	checkConcurrentLog(t, j, seqs, workers*per)
}

// checkConcurrentLog checks what concurrent appenders left: the seqs they
// were given are exactly 1..want, and the log read back holds them in order
// with every alert's versions consecutive.
func checkConcurrentLog(t *testing.T, j alerts.Journal, seqs []uint64, want int) {
	t.Helper()
	sort.Slice(seqs, func(a, b int) bool { return seqs[a] < seqs[b] })
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seqs are not 1..%d without gaps or duplicates: position %d has %d", len(seqs), i, s)
		}
	}
	cs, err := j.Since(ctxT(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != want {
		t.Fatalf("Since(0) returned %d changes, want %d", len(cs), want)
	}
	last := map[string]int64{}
	for i, c := range cs {
		if c.Seq != uint64(i+1) {
			t.Fatalf("Since position %d has seq %d", i, c.Seq)
		}
		if c.Alert.Version != last[c.Alert.ID]+1 {
			t.Fatalf("seq %d: alert %s version %d after %d", c.Seq, c.Alert.ID, c.Alert.Version, last[c.Alert.ID])
		}
		last[c.Alert.ID] = c.Alert.Version
	}
}

type listAlert struct {
	id       string
	camera   string
	site     string
	severity alerts.Severity
	status   alerts.Status
	at       int // minutes after base
}

var listAlerts = []listAlert{
	{"01L01", "hall-entrance", "hall", alerts.Critical, alerts.StatusNew, 1},
	{"01L02", "hall-counter", "hall", alerts.Minor, alerts.StatusAcknowledged, 2},
	{"01L03", "gate", "key-site", alerts.Critical, alerts.StatusDispatched, 3},
	{"01L04", "gate", "key-site", alerts.Major, alerts.StatusResolved, 4},
	{"01L05", "mediation", "hall", alerts.Minor, alerts.StatusResolved, 5},
	{"01L06", "hall-entrance", "hall", alerts.Major, alerts.StatusNew, 6},
	{"01L07", "gate", "key-site", alerts.Critical, alerts.StatusNew, 6}, // same raised_at as 01L06
	{"01L08", "hall-counter", "hall", alerts.Critical, alerts.StatusResolved, 8},
}

func seedList(t *testing.T, j alerts.Journal) {
	for _, l := range listAlerts {
		a := NewAlert(l.id, base.Add(time.Duration(l.at)*time.Minute))
		a.Camera, a.Site, a.Severity = l.camera, l.site, l.severity
		mustAppend(t, j, alerts.KindRaised, a, 0)
		if l.status != alerts.StatusNew {
			// The state changes after the raise, as it does in service.
			a.Status = l.status
			mustAppend(t, j, alerts.KindUpdated, a, 1)
		}
	}
}

func ids(as []alerts.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func testListFilters(t *testing.T, j alerts.Journal) {
	seedList(t, j)
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	cases := []struct {
		name string
		f    alerts.Filter
		want []string
	}{
		{"all newest first, ties by ID descending", alerts.Filter{}, []string{"01L08", "01L07", "01L06", "01L05", "01L04", "01L03", "01L02", "01L01"}},
		{"status", alerts.Filter{Status: alerts.StatusResolved}, []string{"01L08", "01L05", "01L04"}},
		{"open", alerts.Filter{Open: true}, []string{"01L07", "01L06", "01L03", "01L02", "01L01"}},
		{"camera", alerts.Filter{Camera: "gate"}, []string{"01L07", "01L04", "01L03"}},
		{"site", alerts.Filter{Site: "hall"}, []string{"01L08", "01L06", "01L05", "01L02", "01L01"}},
		{"severity", alerts.Filter{Severity: alerts.Critical}, []string{"01L08", "01L07", "01L03", "01L01"}},
		{"since inclusive", alerts.Filter{Since: at(6)}, []string{"01L08", "01L07", "01L06"}},
		{"until exclusive", alerts.Filter{Until: at(3)}, []string{"01L02", "01L01"}},
		{"since and until", alerts.Filter{Since: at(2), Until: at(6)}, []string{"01L05", "01L04", "01L03", "01L02"}},
		{"combined", alerts.Filter{Open: true, Site: "key-site", Severity: alerts.Critical}, []string{"01L07", "01L03"}},
		{"nothing", alerts.Filter{Camera: "nope"}, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, next, err := j.List(ctxT(t), c.f)
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(got); !reflect.DeepEqual(g, c.want) {
				t.Errorf("got %v, want %v", g, c.want)
			}
			if next != "" {
				t.Errorf("next cursor %q on the last page", next)
			}
			for _, a := range got {
				if a.Version == 0 {
					t.Errorf("%s listed without version", a.ID)
				}
			}
		})
	}
}

func testListPaging(t *testing.T, j alerts.Journal) {
	seedList(t, j)
	for _, f := range []alerts.Filter{{}, {Site: "hall"}, {Open: true}} {
		all, _, err := j.List(ctxT(t), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int{1, 2, 3} {
			var got []string
			f := f
			f.Limit = limit
			for page := 0; ; page++ {
				if page > 20 {
					t.Fatalf("paging does not end")
				}
				as, next, err := j.List(ctxT(t), f)
				if err != nil {
					t.Fatal(err)
				}
				if len(as) > limit {
					t.Fatalf("page of %d with limit %d", len(as), limit)
				}
				got = append(got, ids(as)...)
				if page == 0 {
					// A change between pages does not move alerts in the order.
					a, _ := j.Get(ctxT(t), "01L03")
					a.Count++
					mustAppend(t, j, alerts.KindUpdated, a, a.Version)
				}
				if next == "" {
					break
				}
				f.Cursor = next
			}
			if want := ids(all); !reflect.DeepEqual(got, want) {
				t.Errorf("filter %+v limit %d: pages %v, want %v", f, limit, got, want)
			}
		}
	}
}

func testListBadCursor(t *testing.T, j alerts.Journal) {
	seedList(t, j)
	_, _, err := j.List(ctxT(t), alerts.Filter{Cursor: "not a cursor!"})
	if !errors.Is(err, alerts.ErrBadCursor) {
		t.Fatalf("err = %v, want ErrBadCursor", err)
	}
}

func appendN(t *testing.T, j alerts.Journal, n int) []alerts.Change {
	var out []alerts.Change
	for i := range n {
		out = append(out, mustAppend(t, j, alerts.KindRaised, NewAlert(fmt.Sprintf("01S%04d", i), base.Add(time.Duration(i)*time.Second)), 0))
	}
	return out
}

func testSince(t *testing.T, j alerts.Journal) {
	ctx := ctxT(t)
	if cs, err := j.Since(ctx, 0, 10); err != nil || len(cs) != 0 {
		t.Fatalf("Since on empty: %d, %v", len(cs), err)
	}
	want := appendN(t, j, 10)
	cs, err := j.Since(ctx, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 4 || cs[0].Seq != 4 || cs[3].Seq != 7 {
		t.Fatalf("Since(3, 4) = %d changes from %v", len(cs), cs)
	}
	for i, c := range cs {
		w := want[3+i]
		if c.Seq != w.Seq || c.Kind != w.Kind || c.By != w.By || !c.At.Equal(w.At) {
			t.Errorf("change %d: got seq %d kind %s by %q at %v, want %d %s %q %v", i, c.Seq, c.Kind, c.By, c.At, w.Seq, w.Kind, w.By, w.At)
		}
		sameAlert(t, "change alert", c.Alert, w.Logged().Alert)
	}
	if cs, err := j.Since(ctx, 10, 5); err != nil || len(cs) != 0 {
		t.Fatalf("Since(last) = %d, %v; want none", len(cs), err)
	}
	if cs, err := j.Since(ctx, 50, 5); err != nil || len(cs) != 0 {
		t.Fatalf("Since(beyond last) = %d, %v; want none", len(cs), err)
	}
}

// testOrigin: a change's origin reads back as it was appended, from the
// append, Since and a subscription; it is kept as given, not inferred from
// By (a person's change by a name like the system's stays a person's).
func testOrigin(t *testing.T, j alerts.Journal) {
	ctx := ctxT(t)
	sub, err := j.Subscribe(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	a := NewAlert("01ORIGIN", base)
	steps := []struct {
		kind   alerts.ChangeKind
		by     string
		origin alerts.Origin
	}{
		{alerts.KindRaised, alerts.System, alerts.OriginSystem},
		{alerts.KindAcknowledged, "desk-1", alerts.OriginPerson},
		{alerts.KindUpdated, alerts.System, alerts.OriginPerson},
		{alerts.KindEnded, alerts.System, alerts.OriginSystem},
	}
	for i, s := range steps {
		c, err := j.Append(ctx, alerts.Change{Kind: s.kind, At: base.Add(time.Duration(i) * time.Second), By: s.by, Origin: s.origin, Alert: a}, a.Version)
		if err != nil {
			t.Fatalf("append %s: %v", s.kind, err)
		}
		if c.Origin != s.origin {
			t.Errorf("append %s: returned origin %q, want %q", s.kind, c.Origin, s.origin)
		}
		a = c.Alert
	}
	cs, err := j.Since(ctx, 0, 10)
	if err != nil || len(cs) != len(steps) {
		t.Fatalf("Since: %d changes, %v", len(cs), err)
	}
	for i, c := range cs {
		if c.Origin != steps[i].origin || c.By != steps[i].by {
			t.Errorf("Since change %d (%s): by %q origin %q, want %q %q", i, c.Kind, c.By, c.Origin, steps[i].by, steps[i].origin)
		}
	}
	for i := range steps {
		select {
		case c := <-sub.C:
			if c.Origin != steps[i].origin {
				t.Errorf("subscription change %d (%s): origin %q, want %q", i, c.Kind, c.Origin, steps[i].origin)
			}
		case <-ctx.Done():
			t.Fatalf("subscription: change %d not delivered", i)
		}
	}
}

func testTrim(t *testing.T, j alerts.Journal) {
	tr, ok := j.(alerts.Trimmer)
	if !ok {
		t.Skip("journal does not implement alerts.Trimmer")
	}
	ctx := ctxT(t)
	appendN(t, j, 10)
	if err := tr.TrimBefore(ctx, 6); err != nil {
		t.Fatal(err)
	}
	for _, s := range []uint64{0, 1, 4} {
		if _, err := j.Since(ctx, s, 10); !errors.Is(err, alerts.ErrTooOld) {
			t.Errorf("Since(%d) after TrimBefore(6): err = %v, want ErrTooOld", s, err)
		}
	}
	cs, err := j.Since(ctx, 5, 10)
	if err != nil || len(cs) != 5 || cs[0].Seq != 6 {
		t.Fatalf("Since(5) after TrimBefore(6) = %d changes, %v; want 6..10", len(cs), err)
	}
	if _, err := j.Get(ctx, "01S0000"); err != nil {
		t.Errorf("trim dropped alert state: %v", err)
	}
	if s, _ := j.LastSeq(ctx); s != 10 {
		t.Errorf("LastSeq after trim = %d", s)
	}
	c := mustAppend(t, j, alerts.KindRaised, NewAlert("01T", base), 0)
	if c.Seq != 11 {
		t.Errorf("seq after trim = %d, want 11", c.Seq)
	}
}

// recv reads one change or fails after a while.
func recv(t *testing.T, s *alerts.Subscription) (alerts.Change, bool) {
	t.Helper()
	select {
	case c, ok := <-s.C:
		return c, ok
	case <-time.After(30 * time.Second):
		t.Fatal("no change delivered within 30s (a liveness bound for loaded machines, not a latency check)")
	}
	return alerts.Change{}, false
}

func testSubscribe(t *testing.T, j alerts.Journal) {
	appendN(t, j, 3) // before: not delivered
	s, err := j.Subscribe(ctxT(t), 100)
	if err != nil {
		t.Fatal(err)
	}
	a := NewAlert("01X", base)
	mustAppend(t, j, alerts.KindRaised, a, 0)
	for v := int64(1); v < 20; v++ {
		a.Count = v + 1
		mustAppend(t, j, alerts.KindUpdated, a, v)
	}
	for i := range 20 {
		c, ok := recv(t, s)
		if !ok {
			t.Fatalf("channel closed after %d changes: %v", i, s.Err())
		}
		if c.Seq != uint64(4+i) || c.Alert.ID != "01X" || c.Alert.Version != int64(i+1) {
			t.Fatalf("change %d: seq %d alert %s v%d", i, c.Seq, c.Alert.ID, c.Alert.Version)
		}
	}
}

func testSlowSubscriber(t *testing.T, j alerts.Journal) {
	s, err := j.Subscribe(ctxT(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := j.Subscribe(ctxT(t), 100)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, j, 10)
	// Read the fast subscriber first: once it has all 10, the journal has
	// offered all 10 to the slow one too, which nobody read, whatever the
	// delivery timing (a Redis journal replaying its spool delivers late).
	for i := range 10 {
		c, ok := recv(t, fast)
		if !ok || c.Seq != uint64(i+1) {
			t.Fatalf("a slow subscriber disturbed another: got %d ok=%v", c.Seq, ok)
		}
	}
	var prev uint64
	for {
		c, ok := recv(t, s)
		if !ok {
			break
		}
		if c.Seq != prev+1 {
			t.Fatalf("slow subscriber got seq %d after %d", c.Seq, prev)
		}
		prev = c.Seq
	}
	if prev >= 10 {
		t.Fatalf("slow subscriber with buffer 2 received all %d changes", prev)
	}
	if !errors.Is(s.Err(), alerts.ErrSlowSubscriber) {
		t.Fatalf("Err = %v, want ErrSlowSubscriber", s.Err())
	}
}

func testSubscribeCancel(t *testing.T, j alerts.Journal) {
	appendN(t, j, 1)
	settle := func() int {
		runtime.GC()
		return runtime.NumGoroutine()
	}
	before := settle()
	var subs []*alerts.Subscription
	var cancels []context.CancelFunc
	for range 20 {
		ctx, cancel := context.WithCancel(t.Context())
		s, err := j.Subscribe(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
		cancels = append(cancels, cancel)
	}
	for _, c := range cancels {
		c()
	}
	for i, s := range subs {
		for {
			_, ok := recv(t, s)
			if !ok {
				break
			}
		}
		if err := s.Err(); err != nil {
			t.Errorf("subscription %d: Err after cancel = %v, want nil", i, err)
		}
	}
	// Appends after cancel reach nobody and must not block.
	appendN2(t, j, "01Y", 5)
	deadline := time.Now().Add(5 * time.Second)
	for settle() > before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before subscribing, %d after cancelling 20 subscriptions", before, runtime.NumGoroutine())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func appendN2(t *testing.T, j alerts.Journal, prefix string, n int) {
	for i := range n {
		mustAppend(t, j, alerts.KindRaised, NewAlert(fmt.Sprintf("%s%03d", prefix, i), base), 0)
	}
}

func testDurableBeforeAnnounce(t *testing.T, j alerts.Journal) {
	s, err := j.Subscribe(ctxT(t), 1000)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	done := make(chan error, 1)
	go func() {
		for i := range n {
			c, ok := <-s.C
			if !ok {
				done <- fmt.Errorf("closed after %d: %v", i, s.Err())
				return
			}
			a, err := j.Get(t.Context(), c.Alert.ID)
			if err != nil {
				done <- fmt.Errorf("seq %d announced but Get: %w", c.Seq, err)
				return
			}
			if a.Version < c.Alert.Version {
				done <- fmt.Errorf("seq %d announced version %d but Get has %d", c.Seq, c.Alert.Version, a.Version)
				return
			}
			if last, err := j.LastSeq(t.Context()); err != nil || last < c.Seq {
				done <- fmt.Errorf("seq %d announced but LastSeq = %d, %v", c.Seq, last, err)
				return
			}
		}
		done <- nil
	}()
	a := NewAlert("01D", base)
	mustAppend(t, j, alerts.KindRaised, a, 0)
	for v := int64(1); v < n; v++ {
		a.Count++
		mustAppend(t, j, alerts.KindUpdated, a, v)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("subscriber did not see all changes")
	}
}

func auditLog(t *testing.T, j alerts.Journal) alerts.AuditLog {
	al, ok := j.(alerts.AuditLog)
	if !ok {
		t.Fatalf("%T does not implement alerts.AuditLog", j)
	}
	return al
}

func testAudit(t *testing.T, j alerts.Journal) {
	al := auditLog(t, j)
	ctx := ctxT(t)
	if rs, err := al.AuditSince(ctx, 0, 10); err != nil || len(rs) != 0 {
		t.Fatalf("empty audit log: %d, %v", len(rs), err)
	}
	for i := range 5 {
		err := al.Audit(ctx, alerts.AuditRecord{At: base.Add(time.Duration(i) * time.Second), By: "desk-1", Action: "acknowledged",
			Object: fmt.Sprintf("01A%d", i), Detail: map[string]string{"note": "ok"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	rs, err := al.AuditSince(ctx, 0, 10)
	if err != nil || len(rs) != 5 {
		t.Fatalf("AuditSince(0) = %d, %v", len(rs), err)
	}
	for i, r := range rs {
		if r.Seq != uint64(i+1) || r.Object != fmt.Sprintf("01A%d", i) || r.By != "desk-1" || r.Detail["note"] != "ok" || !r.At.Equal(base.Add(time.Duration(i)*time.Second)) {
			t.Errorf("record %d = %+v", i, r)
		}
	}
	rs, err = al.AuditSince(ctx, 2, 2)
	if err != nil || len(rs) != 2 || rs[0].Seq != 3 || rs[1].Seq != 4 {
		t.Fatalf("AuditSince(2, 2) = %+v, %v", rs, err)
	}
	// Nothing comes after the largest sequence number; seq+1 must not
	// wrap to the start.
	if rs, err := al.AuditSince(ctx, math.MaxUint64, 10); err != nil || len(rs) != 0 {
		t.Fatalf("AuditSince(MaxUint64) = %+v, %v", rs, err)
	}
}

func testCloseEndsSubscriptions(t *testing.T, j alerts.Journal) {
	s, err := j.Subscribe(ctxT(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for {
		if _, ok := recv(t, s); !ok {
			break
		}
	}
}

func testReopen(t *testing.T, open func() alerts.Journal) {
	j := open()
	a := NewAlert("01R", base)
	mustAppend(t, j, alerts.KindRaised, a, 0)
	a.Status = alerts.StatusAcknowledged
	mustAppend(t, j, alerts.KindAcknowledged, a, 1)
	appendN(t, j, 3)
	if err := auditLog(t, j).Audit(ctxT(t), alerts.AuditRecord{At: base, By: "ops", Action: "exported", Object: "gate"}); err != nil {
		t.Fatal(err)
	}
	if tr, ok := j.(alerts.Trimmer); ok {
		if err := tr.TrimBefore(ctxT(t), 2); err != nil {
			t.Fatal(err)
		}
	}
	before, err := j.Since(ctxT(t), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = open()
	t.Cleanup(func() { _ = j.Close() })
	got, err := j.Get(ctxT(t), "01R")
	if err != nil {
		t.Fatal(err)
	}
	a.Version = 2
	sameAlert(t, "alert after reopen", got, a)
	if s, _ := j.LastSeq(ctxT(t)); s != 5 {
		t.Fatalf("LastSeq after reopen = %d, want 5", s)
	}
	after, err := j.Since(ctxT(t), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("Since after reopen: %d changes, before %d", len(after), len(before))
	}
	for i := range after {
		if after[i].Seq != before[i].Seq {
			t.Errorf("change %d: seq %d, before %d", i, after[i].Seq, before[i].Seq)
		}
	}
	if _, ok := j.(alerts.Trimmer); ok {
		if _, err := j.Since(ctxT(t), 0, 10); !errors.Is(err, alerts.ErrTooOld) {
			t.Errorf("trim forgotten on reopen: Since(0) err = %v", err)
		}
	}
	if c := mustAppend(t, j, alerts.KindRaised, NewAlert("01R2", base), 0); c.Seq != 6 {
		t.Fatalf("seq after reopen = %d, want 6", c.Seq)
	}
	rs, err := auditLog(t, j).AuditSince(ctxT(t), 0, 10)
	if err != nil || len(rs) != 1 || rs[0].Action != "exported" {
		t.Fatalf("audit after reopen = %+v, %v", rs, err)
	}
	if err := auditLog(t, j).Audit(ctxT(t), alerts.AuditRecord{At: base, By: "ops", Action: "downloaded", Object: "gate"}); err != nil {
		t.Fatal(err)
	}
	if rs, _ := auditLog(t, j).AuditSince(ctxT(t), 1, 10); len(rs) != 1 || rs[0].Seq != 2 {
		t.Fatalf("audit seq after reopen = %+v", rs)
	}
}

func testListSignal(t *testing.T, j alerts.Journal) {
	seedList(t, j)
	// 01L02 (open) and 01L04 (resolved) end their signals; a resolved alert
	// may still have an active signal.
	for _, id := range []string{"01L02", "01L04"} {
		a, err := j.Get(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		a.Signal = alerts.SignalEnded
		mustAppend(t, j, alerts.KindEnded, a, a.Version)
	}
	cases := []struct {
		f    alerts.Filter
		want []string
	}{
		{alerts.Filter{Signal: alerts.SignalActive}, []string{"01L08", "01L07", "01L06", "01L05", "01L03", "01L01"}},
		{alerts.Filter{Signal: alerts.SignalEnded}, []string{"01L04", "01L02"}},
		{alerts.Filter{Signal: alerts.SignalActive, Status: alerts.StatusResolved}, []string{"01L08", "01L05"}},
		{alerts.Filter{Signal: alerts.SignalActive, Open: true, Camera: "gate"}, []string{"01L07", "01L03"}},
	}
	for _, c := range cases {
		got, _, err := j.List(ctxT(t), c.f)
		if err != nil {
			t.Fatal(err)
		}
		if g := ids(got); !reflect.DeepEqual(g, c.want) {
			t.Errorf("filter %+v: got %v, want %v", c.f, g, c.want)
		}
	}
	// The index follows the signal back to active.
	a, _ := j.Get(ctxT(t), "01L04")
	a.Signal = alerts.SignalActive
	mustAppend(t, j, alerts.KindUpdated, a, a.Version)
	got, _, err := j.List(ctxT(t), alerts.Filter{Signal: alerts.SignalActive, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if g := ids(got); !reflect.DeepEqual(g, []string{"01L08", "01L07"}) {
		t.Errorf("first page of active: %v", g)
	}
	all, _, _ := j.List(ctxT(t), alerts.Filter{Signal: alerts.SignalActive})
	if len(all) != 7 {
		t.Errorf("%d active after 01L04 became active again, want 7", len(all))
	}
}

func batchAppender(t *testing.T, j alerts.Journal) alerts.BatchAppender {
	b, ok := j.(alerts.BatchAppender)
	if !ok {
		t.Skipf("%T does not implement alerts.BatchAppender", j)
	}
	return b
}

func item(kind alerts.ChangeKind, a alerts.Alert, expect int64) alerts.BatchItem {
	return alerts.BatchItem{Change: alerts.Change{Kind: kind, At: a.LastSeenAt, By: alerts.System, Origin: alerts.OriginSystem, Alert: a}, ExpectVersion: expect}
}

func testAppendBatch(t *testing.T, j alerts.Journal) {
	b := batchAppender(t, j)
	ctx := ctxT(t)
	if cs, errs := b.AppendBatch(ctx, nil); len(cs) != 0 || len(errs) != 0 {
		t.Fatalf("empty batch: %d changes, %d errors", len(cs), len(errs))
	}
	a := NewAlert("01A", base)
	mustAppend(t, j, alerts.KindRaised, a, 0)
	sub, err := j.Subscribe(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}

	bb := NewAlert("01B", base.Add(time.Minute))
	b2 := bb
	b2.Count = 2
	b3 := b2
	b3.Status = alerts.StatusAcknowledged
	c := NewAlert("01C", base.Add(2*time.Minute))
	c2 := c
	c2.Count = 2
	a2 := a
	a2.Count = 2
	items := []alerts.BatchItem{
		item(alerts.KindRaised, bb, 0),                     // 0: stored, seq 2
		item(alerts.KindUpdated, b2, 1),                    // 1: stored, seq 3, sees item 0
		item(alerts.KindUpdated, a2, 5),                    // 2: conflict
		item(alerts.KindUpdated, a2, 1),                    // 3: right version, but an earlier item on 01A failed
		item(alerts.KindRaised, c, 0),                      // 4: stored, seq 4
		item(alerts.KindRaised, c, 0),                      // 5: exists
		item(alerts.KindUpdated, c2, 1),                    // 6: skipped after 5 failed
		item(alerts.KindUpdated, NewAlert("01D", base), 3), // 7: not found
		item(alerts.KindRaised, alerts.Alert{}, 0),         // 8: no ID
		item(alerts.KindAcknowledged, b3, 2),               // 9: stored, seq 5
	}
	cs, errs := b.AppendBatch(ctx, items)
	if len(cs) != len(items) || len(errs) != len(items) {
		t.Fatalf("%d changes and %d errors for %d items", len(cs), len(errs), len(items))
	}
	stored := map[int]struct {
		seq     uint64
		version int64
	}{0: {2, 1}, 1: {3, 2}, 4: {4, 1}, 9: {5, 3}}
	for i, err := range errs {
		w, ok := stored[i]
		if ok {
			if err != nil {
				t.Errorf("item %d: %v", i, err)
			} else if cs[i].Seq != w.seq || cs[i].Alert.Version != w.version || cs[i].Kind != items[i].Change.Kind {
				t.Errorf("item %d: seq %d version %d kind %s, want seq %d version %d", i, cs[i].Seq, cs[i].Alert.Version, cs[i].Kind, w.seq, w.version)
			}
			continue
		}
		if err == nil {
			t.Errorf("item %d stored as seq %d, want an error", i, cs[i].Seq)
		}
	}
	var ce *alerts.ConflictError
	for _, i := range []int{2, 3, 6} {
		if !errors.As(errs[i], &ce) || !errors.Is(errs[i], alerts.ErrConflict) || ce.Current.Version != 1 {
			t.Errorf("item %d: err = %v, want *ConflictError with the stored version 1", i, errs[i])
		}
	}
	if !errors.Is(errs[5], alerts.ErrExists) {
		t.Errorf("item 5: err = %v, want ErrExists", errs[5])
	}
	if !errors.Is(errs[7], alerts.ErrNotFound) {
		t.Errorf("item 7: err = %v, want ErrNotFound", errs[7])
	}
	if s, _ := j.LastSeq(ctx); s != 5 {
		t.Fatalf("LastSeq = %d, want 5", s)
	}
	version := func(a alerts.Alert, v int64) alerts.Alert { a.Version = v; return a }
	want := map[string]alerts.Alert{"01A": version(a, 1), "01B": version(b3, 3), "01C": version(c, 1)}
	for id, w := range want {
		got, err := j.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sameAlert(t, "Get "+id+" after the batch", got, w)
	}
	if _, err := j.Get(ctx, "01D"); !errors.Is(err, alerts.ErrNotFound) {
		t.Errorf("a failed item stored 01D: %v", err)
	}
	logged, err := j.Since(ctx, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	order := []int{0, 1, 4, 9}
	if len(logged) != len(order) {
		t.Fatalf("Since(1) = %d changes, want %d", len(logged), len(order))
	}
	for k, i := range order {
		if logged[k].Seq != cs[i].Seq {
			t.Errorf("log position %d: seq %d, want %d", k, logged[k].Seq, cs[i].Seq)
		}
		sameAlert(t, "logged change", logged[k].Alert, cs[i].Logged().Alert)
	}
	// Subscribers get the stored items in seq order, each already durable.
	for k, i := range order {
		got, ok := recv(t, sub)
		if !ok {
			t.Fatalf("subscription closed: %v", sub.Err())
		}
		if got.Seq != cs[i].Seq {
			t.Fatalf("announcement %d: seq %d, want %d", k, got.Seq, cs[i].Seq)
		}
		if last, err := j.LastSeq(ctx); err != nil || last < got.Seq {
			t.Fatalf("seq %d announced before LastSeq %d covered it (%v)", got.Seq, last, err)
		}
	}
	// A batch after the failures goes on from the stored state.
	a3 := a
	a3.Count = 3
	cs, errs = b.AppendBatch(ctx, []alerts.BatchItem{item(alerts.KindUpdated, a3, 1)})
	if errs[0] != nil || cs[0].Seq != 6 || cs[0].Alert.Version != 2 {
		t.Fatalf("next batch: seq %d version %d, %v", cs[0].Seq, cs[0].Alert.Version, errs[0])
	}
}

func testAppendBatchConcurrent(t *testing.T, j alerts.Journal) {
	b := batchAppender(t, j)
	const workers, batches, per = 4, 10, 5
	var (
		mu   sync.Mutex
		seqs []uint64
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			var cur []alerts.Alert
			for i := range per {
				cur = append(cur, NewAlert(fmt.Sprintf("01P%d%d", w, i), base.Add(time.Duration(w*per+i)*time.Second)))
			}
			for n := range batches {
				items := make([]alerts.BatchItem, per)
				for i := range cur {
					kind := alerts.KindUpdated
					if n == 0 {
						kind = alerts.KindRaised
					}
					cur[i].Count = int64(n + 1)
					items[i] = item(kind, cur[i], int64(n))
				}
				if w%2 == 1 && n%2 == 1 { // interleave plain appends
					for i, it := range items {
						c, err := j.Append(ctxT(t), it.Change, it.ExpectVersion)
						if err != nil {
							t.Errorf("worker %d append %d: %v", w, n, err)
							return
						}
						mu.Lock()
						seqs = append(seqs, c.Seq)
						mu.Unlock()
						cur[i] = c.Alert
					}
					continue
				}
				cs, errs := b.AppendBatch(ctxT(t), items)
				for i := range items {
					if errs[i] != nil {
						t.Errorf("worker %d batch %d item %d: %v", w, n, i, errs[i])
						return
					}
					if i > 0 && cs[i].Seq <= cs[i-1].Seq {
						t.Errorf("worker %d batch %d: seq %d after %d", w, n, cs[i].Seq, cs[i-1].Seq)
					}
					cur[i] = cs[i].Alert
				}
				mu.Lock()
				for _, c := range cs {
					seqs = append(seqs, c.Seq)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	checkConcurrentLog(t, j, seqs, workers*batches*per)
}

// testOccurrences: the fields and kinds of docs/api.md "Occurrences" round
// trip — reopened changes, reasons, previous_id and occurrences_24h — and the
// change log keeps each change's own history entries only, the same through
// Since (replay) and Subscribe (live), while Get has the whole history.
func testOccurrences(t *testing.T, j alerts.Journal) {
	ctx := ctxT(t)
	sub, err := j.Subscribe(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	step := func(a *alerts.Alert, kind alerts.ChangeKind, reason alerts.Reason, at time.Time, action string) alerts.Change {
		t.Helper()
		if action != "" {
			a.History = append(a.History, alerts.HistoryEntry{At: at, By: alerts.System, Action: action, Version: a.Version + 1})
		}
		c, err := j.Append(ctx, alerts.Change{Kind: kind, At: at, By: alerts.System, Origin: alerts.OriginSystem, Reason: reason, Alert: *a}, a.Version)
		if err != nil {
			t.Fatalf("append %s: %v", kind, err)
		}
		*a = c.Alert
		return c
	}
	first := NewAlert("01OCC1", base)
	first.History[0].Version = 1
	first.Version = 0
	var sent []alerts.Change
	sent = append(sent, step(&first, alerts.KindRaised, "", base, ""))
	first.Count++
	sent = append(sent, step(&first, alerts.KindUpdated, alerts.ReasonRepeat, base.Add(time.Second), ""))
	end := base.Add(2 * time.Second)
	first.Signal, first.EndedAt = alerts.SignalEnded, &end
	sent = append(sent, step(&first, alerts.KindEnded, alerts.ReasonEnded, end, "ended"))
	first.Signal, first.EndedAt, first.Count = alerts.SignalActive, nil, first.Count+1
	sent = append(sent, step(&first, alerts.KindReopened, "", base.Add(3*time.Second), "reopened"))

	second := NewAlert("01OCC2", base.Add(time.Hour))
	second.History[0].Version = 1
	second.PreviousID, second.Occurrences24h = first.ID, 2
	sent = append(sent, step(&second, alerts.KindRaised, "", base.Add(time.Hour), ""))

	got, err := j.Get(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.History) != 3 || got.History[2].Action != "reopened" || got.Count != 3 {
		t.Fatalf("Get %s: history %+v count %d, want raised, ended, reopened and 3", first.ID, got.History, got.Count)
	}
	if got, err := j.Get(ctx, second.ID); err != nil || got.PreviousID != first.ID || got.Occurrences24h != 2 {
		t.Fatalf("Get %s: previous_id %q occurrences_24h %d (%v)", second.ID, got.PreviousID, got.Occurrences24h, err)
	}
	replay, err := j.Since(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(replay) != len(sent) {
		t.Fatalf("Since(0) = %d changes, want %d", len(replay), len(sent))
	}
	for i, c := range replay {
		live, ok := recv(t, sub)
		if !ok {
			t.Fatalf("subscription ended at change %d: %v", i, sub.Err())
		}
		want := sent[i].Logged()
		if c.Kind != want.Kind || c.Reason != want.Reason || live.Kind != want.Kind || live.Reason != want.Reason {
			t.Errorf("change %d: replay %s/%s live %s/%s, want %s/%s", i, c.Kind, c.Reason, live.Kind, live.Reason, want.Kind, want.Reason)
		}
		sameAlert(t, fmt.Sprintf("replayed change %d", i), c.Alert, want.Alert)
		sameAlert(t, fmt.Sprintf("live change %d", i), live.Alert, want.Alert)
	}
	if h := replay[3].Alert.History; len(h) != 1 || h[0].Action != "reopened" {
		t.Fatalf("reopened change history %+v, want only its own entry", h)
	}
	if h := replay[1].Alert.History; len(h) != 0 {
		t.Fatalf("repeat change history %+v, want none", h)
	}
}
