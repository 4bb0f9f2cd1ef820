package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// holdSet renders holds sorted by ID, one per line, for comparison.
func holdSet(hs []Hold) string {
	var lines []string
	for _, h := range hs {
		lines = append(lines, fmt.Sprintf("%s %s %s %s %s %q", h.ID, h.Camera,
			h.Start.Format(time.RFC3339), h.End.Format(time.RFC3339), h.Until.Format(time.RFC3339), h.Reason))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func mustHolds(t *testing.T, r *Recorder) string {
	t.Helper()
	hs, err := r.Holds()
	if err != nil {
		t.Fatal(err)
	}
	return holdSet(hs)
}

// logLines returns the hold log's lines, failing on any that is not a
// whole record.
func logLines(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, holdsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("hold log ends without a newline: %q", b)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		var rec holdRecord
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.validate() != nil {
			t.Fatalf("hold log line %q: %v", l, err)
		}
		lines = append(lines, l)
	}
	return lines
}

func TestHoldLogSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: t0}
	r, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now})
	ctx := context.Background()
	steps := []struct {
		name string
		do   func() error
	}{
		{"raise a", func() error {
			return r.PlaceHold(ctx, Hold{ID: "a", Camera: "gate", Start: t0, Reason: "intrusion"})
		}},
		{"raise b", func() error { return r.PlaceHold(ctx, Hold{ID: "b", Camera: "hall", Start: t0.Add(time.Minute)}) }},
		{"raise c", func() error { return r.PlaceHold(ctx, Hold{ID: "c", Start: t0.Add(2 * time.Minute)}) }},
		{"end a", func() error {
			return r.PlaceHold(ctx, Hold{ID: "a", Camera: "gate", Start: t0, End: t0.Add(3 * time.Minute), Reason: "intrusion"})
		}},
		{"resolve a", func() error {
			return r.PlaceHold(ctx, Hold{ID: "a", Camera: "gate", Start: t0, End: t0.Add(3 * time.Minute), Reason: "intrusion", Until: t0.Add(90 * 24 * time.Hour)})
		}},
		{"release b", func() error { return r.ReleaseHold(ctx, "b") }},
		{"release unknown", func() error { return r.ReleaseHold(ctx, "nope") }},
	}
	wantLines := []int{1, 2, 3, 4, 5, 6, 6} // one record per change, none for a no-op
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if n := len(logLines(t, dir)); n != wantLines[i] {
			t.Fatalf("%s: hold log has %d records, want %d", st.name, n, wantLines[i])
		}
	}
	want := mustHolds(t, r)
	if !strings.Contains(want, "a gate") || strings.Contains(want, "b hall") || !strings.Contains(want, "c ") {
		t.Fatalf("holds before restart:\n%s", want)
	}
	r2, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now})
	if got := mustHolds(t, r2); got != want {
		t.Fatalf("after restart:\n%s\nwant:\n%s", got, want)
	}
	if n := len(logLines(t, dir)); n != 2 {
		t.Errorf("hold log not compacted on open: %d records for 2 holds", n)
	}
	// the reopened log takes appends, and a second restart reads them
	if err := r2.PlaceHold(ctx, Hold{ID: "d", Camera: "gate", Start: t0.Add(4 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	want = mustHolds(t, r2)
	r3, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now})
	if got := mustHolds(t, r3); got != want {
		t.Fatalf("after second restart:\n%s\nwant:\n%s", got, want)
	}
}

func TestHoldLogTornLastLine(t *testing.T) {
	put := `{"op":"put","hold":{"id":"torn","camera":"gate","start":"2026-11-26T21:05:00Z"}}`
	for _, tc := range []struct {
		name string
		tail string
	}{
		{"half a record", put[:len(put)/2]},
		{"whole record without its newline", put},
		{"zeros from an unwritten block", "\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"garbage line with its newline", `{"op":"pu` + "\x00\x00\n"},
		{"several garbage lines", "\x00\x00\n{\"op\n\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r, _ := newTestRecorder(t, Options{Dir: dir})
			ctx := context.Background()
			for i := range 3 {
				if err := r.PlaceHold(ctx, Hold{ID: fmt.Sprint("h", i), Camera: "gate", Start: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
					t.Fatal(err)
				}
			}
			want := mustHolds(t, r)
			f, err := os.OpenFile(filepath.Join(dir, holdsFile), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tc.tail)
			f.Close()

			r2, _ := newTestRecorder(t, Options{Dir: dir})
			if got := mustHolds(t, r2); got != want {
				t.Fatalf("holds:\n%s\nwant:\n%s", got, want)
			}
			if n := len(logLines(t, dir)); n != 3 { // the torn tail is gone
				t.Fatalf("%d records after open, want 3", n)
			}
			if err := r2.PlaceHold(ctx, Hold{ID: "after", Camera: "gate", Start: t0}); err != nil {
				t.Fatal(err)
			}
			want = mustHolds(t, r2)
			r3, _ := newTestRecorder(t, Options{Dir: dir})
			if got := mustHolds(t, r3); got != want {
				t.Fatalf("after an append past the torn tail:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// A damaged record followed by intact ones is not a torn append: the store
// cannot tell which holds it lost, so it refuses to open rather than let
// retention delete evidence.
func TestHoldLogDamagedMiddleLine(t *testing.T) {
	dir := t.TempDir()
	log := `{"op":"put","hold":{"id":"a","camera":"gate","start":"2026-11-26T21:05:00Z"}}` + "\n" +
		`{"op":"put","hold":{"id":"b",` + "\n" +
		`{"op":"remove","id":"a"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, holdsFile), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{Dir: dir, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return t0 }})
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("New: %v, want an error naming line 2", err)
	}
}

func TestHoldLogCompactionKeepsLiveSet(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: t0}
	r, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now})
	r.holds.compactMin = 20
	ctx := context.Background()
	const live = 5
	for i := range live {
		if err := r.PlaceHold(ctx, Hold{ID: fmt.Sprint("live-", i), Camera: "gate", Start: t0}); err != nil {
			t.Fatal(err)
		}
	}
	// a hold that expires, and one released, before the log compacts
	if err := r.PlaceHold(ctx, Hold{ID: "expiring", Camera: "gate", Start: t0, Until: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := r.PlaceHold(ctx, Hold{ID: "released", Camera: "gate", Start: t0}); err != nil {
		t.Fatal(err)
	}
	if err := r.ReleaseHold(ctx, "released"); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(2 * time.Hour))

	compacted := false
	prev := len(logLines(t, dir))
	for i := range 60 { // every live hold updated many times
		h := Hold{ID: fmt.Sprint("live-", i%live), Camera: "gate", Start: t0, End: t0.Add(time.Duration(i+1) * time.Second)}
		if err := r.PlaceHold(ctx, h); err != nil {
			t.Fatal(err)
		}
		n := len(logLines(t, dir))
		switch {
		case n == prev+1:
		case n < prev:
			compacted = true
			if n != live {
				t.Fatalf("update %d: compacted to %d records, want %d", i, n, live)
			}
		default:
			t.Fatalf("update %d: log went from %d to %d records", i, prev, n)
		}
		if n > max(r.holds.compactMin, 2*live+1) {
			t.Fatalf("update %d: %d records for %d live holds", i, n, live)
		}
		prev = n
	}
	if !compacted {
		t.Fatal("the log never compacted")
	}
	for _, l := range logLines(t, dir) {
		if strings.Contains(l, "expiring") || strings.Contains(l, "released") {
			t.Errorf("compacted log keeps %s", l)
		}
	}
	want := mustHolds(t, r)
	for i := range live {
		end := t0.Add(time.Duration(60-live+i+1) * time.Second) // its last of the 60 updates
		if !strings.Contains(want, fmt.Sprintf("live-%d gate %s %s", i, t0.Format(time.RFC3339), end.Format(time.RFC3339))) {
			t.Fatalf("live set lost the last update of live-%d:\n%s", i, want)
		}
	}
	r2, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now})
	if got := mustHolds(t, r2); got != want {
		t.Fatalf("after restart:\n%s\nwant:\n%s", got, want)
	}
}

func TestHoldLogMigratesLegacyFile(t *testing.T) {
	legacy := []Hold{ // as the old store wrote them: an indented JSON array
		{ID: "alert-1", Camera: "gate", Start: t0, End: t0.Add(2 * time.Minute), Reason: "intrusion", Until: t0.Add(90 * 24 * time.Hour)},
		{ID: "alert-2", Camera: "gate", Start: t0.Add(time.Hour), Reason: "still active"},
		{ID: "all", Start: t0},
		{ID: "expired", Camera: "hall", Start: t0, Until: t0.Add(-time.Minute)},
	}
	b, err := json.MarshalIndent(legacy, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		log  string // a hold log already beside the legacy file
		want []Hold
	}{
		{"legacy file only", "", legacy[:3]},
		// a migration that crashed before removing the legacy file: the
		// log has everything since and wins
		{"log beside it", `{"op":"put","hold":{"id":"alert-2","camera":"gate","start":"2026-11-26T22:05:00Z","end":"2026-11-26T22:10:00Z"}}` + "\n",
			[]Hold{{ID: "alert-2", Camera: "gate", Start: t0.Add(time.Hour), End: t0.Add(time.Hour + 5*time.Minute)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, legacyHoldsFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.log != "" {
				if err := os.WriteFile(filepath.Join(dir, holdsFile), []byte(tc.log), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, _ := newTestRecorder(t, Options{Dir: dir})
			want := holdSet(tc.want)
			if got := mustHolds(t, r); got != want {
				t.Fatalf("holds:\n%s\nwant:\n%s", got, want)
			}
			if _, err := os.Stat(filepath.Join(dir, legacyHoldsFile)); !os.IsNotExist(err) {
				t.Errorf("legacy file left after migration: %v", err)
			}
			if n := len(logLines(t, dir)); n != len(tc.want) {
				t.Errorf("hold log has %d records, want %d", n, len(tc.want))
			}
			r2, _ := newTestRecorder(t, Options{Dir: dir})
			if got := mustHolds(t, r2); got != want {
				t.Fatalf("after restart:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// BenchmarkPlaceHold upserts holds into a store that already has 5,000,
// as the alert engine does on every raise, signal end, reopen and resolve.
// The store is seeded through the legacy holds.json, which every version
// of the store reads.
func BenchmarkPlaceHold(b *testing.B) {
	const existing = 5000
	dir := b.TempDir()
	list := make([]Hold, existing)
	for i := range list {
		list[i] = benchHold(i)
	}
	seed, err := json.Marshal(list)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "holds.json"), seed, 0o644); err != nil {
		b.Fatal(err)
	}
	r, err := New(Options{Dir: dir, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	if hs, _ := r.Holds(); len(hs) != existing {
		b.Fatalf("%d holds seeded", len(hs))
	}
	ctx := context.Background()
	i := 0
	for b.Loop() {
		h := benchHold(i % existing)
		h.End = h.Start.Add(time.Minute)
		h.Until = t0.Add(90 * 24 * time.Hour)
		if err := r.PlaceHold(ctx, h); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func benchHold(i int) Hold {
	return Hold{
		ID:     fmt.Sprintf("01JD%022d", i),
		Camera: "hall-entrance",
		Start:  t0.Add(time.Duration(i) * time.Minute),
		Reason: "intrusion",
	}
}

// A hold that fails on a full disk is retried with backoff until it is on
// disk, without another PlaceHold; meanwhile retention honours it.
func TestHoldFailingOnFullDiskRetriedUntilPlaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fsys := &faultFS{}
		dir := t.TempDir()
		r, _ := newTestRecorder(t, Options{Dir: dir, FS: fsys, SweepInterval: time.Hour, VerifyEvery: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait()

		fsys.arm(syscall.ENOSPC)
		h := Hold{ID: "01JDALERT", Camera: "hall-entrance", Start: t0, End: t0.Add(time.Minute), Reason: "alert"}
		if err := r.PlaceHold(t.Context(), h); err == nil {
			t.Fatal("placed on a full disk")
		}
		if pend := r.pending(); len(pend) != 1 || pend[0].ID != h.ID {
			t.Fatalf("pending %+v", pend)
		}
		time.Sleep(10 * time.Second) // several retries, all failing
		synctest.Wait()
		if len(r.pending()) != 1 {
			t.Fatal("given up while the disk is full")
		}
		fsys.disarm()
		time.Sleep(2 * holdRetryMax) // the backoff's cap
		synctest.Wait()
		if pend := r.pending(); len(pend) != 0 {
			t.Fatalf("still pending after space returned: %+v", pend)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// on disk: a restart has it
		r2, _ := newTestRecorder(t, Options{Dir: dir})
		holds, err := r2.Holds()
		if err != nil || len(holds) != 1 || holds[0].ID != h.ID {
			t.Fatalf("after restart: %+v %v", holds, err)
		}
	})
}

func TestPendingHoldProtectsFromRetention(t *testing.T) {
	fsys := &faultFS{}
	clock := &fakeClock{t: t0}
	r, _ := newTestRecorder(t, Options{FS: fsys, Now: clock.Now, Retain: time.Hour, Segment: 4 * time.Second, Part: time.Second})
	c := fixture(t)
	w, _ := r.Camera("hall-entrance", 0)
	w.OnStream(stream(c, "hall-entrance", 1, t0))
	(&feeder{c: c, wall: t0}).feed(w, 200)
	r.CloseCamera("hall-entrance")
	fsys.arm(syscall.ENOSPC)
	if err := r.PlaceHold(t.Context(), Hold{ID: "a1", Camera: "hall-entrance", Start: t0, End: t0.Add(time.Minute)}); err == nil {
		t.Fatal("placed on a full disk")
	}
	fsys.disarm()
	clock.Set(t0.Add(3 * time.Hour))
	if err := r.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	segs, _, _ := r.Catalog().List("hall-entrance", t0, t0.Add(time.Minute))
	if len(segs) == 0 {
		t.Error("retention deleted footage under a pending hold")
	}
}
