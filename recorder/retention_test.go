package recorder

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// addSegment writes a fake segment file of n bytes and indexes it the way
// the writer does.
func addSegment(t *testing.T, r *Recorder, camera string, start time.Time, dur time.Duration, n int) Segment {
	t.Helper()
	day, file := fileNames(start)
	dir := filepath.Join(r.opts.Dir, camera, day)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
	s := Segment{ID: segmentID(day, file), Camera: camera, Start: start, End: start.Add(dur), Bytes: int64(n), SHA256: zeros64, Frames: 1, Codec: "h264", Path: filepath.Join(dir, file)}
	if err := r.appendIndex(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func ids(t *testing.T, r *Recorder, camera string) string {
	t.Helper()
	segs, _, err := r.Catalog().List(camera, t0.Add(-72*time.Hour), t0.Add(72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range segs {
		if _, err := os.Stat(s.Path); err != nil {
			t.Errorf("listed segment %s has no file: %v", s.ID, err)
		}
		out = append(out, s.Start.Format("15:04"))
	}
	return strings.Join(out, " ")
}

func TestRetentionByAge(t *testing.T) {
	clock := &fakeClock{t: t0}
	r, _ := newTestRecorder(t, Options{Now: clock.Now, Retain: 2 * time.Hour})
	r.Camera("short", time.Hour)
	r.Camera("long", 0)
	for i := range 6 { // 21:05 .. 23:35 every 30 min
		addSegment(t, r, "short", t0.Add(time.Duration(i)*30*time.Minute), 10*time.Minute, 100)
		addSegment(t, r, "long", t0.Add(time.Duration(i)*30*time.Minute), 10*time.Minute, 100)
	}
	clock.Set(t0.Add(3 * time.Hour)) // 00:05 next day
	if err := r.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, r, "short"), "23:05 23:35"; got != want {
		t.Errorf("short: %q, want %q", got, want)
	}
	if got, want := ids(t, r, "long"), "22:05 22:35 23:05 23:35"; got != want {
		t.Errorf("long: %q, want %q", got, want)
	}
	if got := testutil.ToFloat64(r.m.deleted.WithLabelValues(ReasonAge)); got != 6 {
		t.Errorf("deleted{age} = %v", got)
	}
	if got := testutil.ToFloat64(r.m.used); got != 600 {
		t.Errorf("used = %v", got)
	}
}

// TestRetainZeroKeepsEverything: storage.retain 0 means no age limit, as
// the configuration documents; only space limits delete then.
func TestRetainZeroKeepsEverything(t *testing.T) {
	clock := &fakeClock{t: t0}
	r, _ := newTestRecorder(t, Options{Now: clock.Now})
	r.Camera("cam", 0)
	for i := range 3 {
		addSegment(t, r, "cam", t0.Add(time.Duration(i)*30*time.Minute), 10*time.Minute, 100)
	}
	clock.Set(t0.Add(400 * 24 * time.Hour))
	if err := r.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, r, "cam"), "21:05 21:35 22:05"; got != want {
		t.Errorf("cam: %q, want %q", got, want)
	}
}

func TestRetentionBySpace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   func(*Options, string)
		reason string
	}{
		{"max_bytes", func(o *Options, _ string) { o.MaxBytes = 5000 }, ReasonMaxBytes},
		{"min_free", func(o *Options, dir string) {
			o.MinFreeBytes = 100_000 - 5000
			o.Statfs = func(string) (int64, int64, error) { return 100_000 - duBytes(dir), 100_000, nil }
		}, ReasonMinFree},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Dir: dir}
			tc.opts(&o, dir)
			r, _ := newTestRecorder(t, o)
			for i := range 5 { // interleaved cameras, 10 x 1000 bytes
				addSegment(t, r, "a", t0.Add(time.Duration(2*i)*time.Minute), time.Minute, 1000)
				addSegment(t, r, "b", t0.Add(time.Duration(2*i+1)*time.Minute), time.Minute, 1000)
			}
			if err := r.Sweep(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got, want := ids(t, r, "a")+" | "+ids(t, r, "b"), "21:11 21:13 | 21:10 21:12 21:14"; got != want {
				t.Errorf("kept %q, want %q", got, want)
			}
			if got := testutil.ToFloat64(r.m.deleted.WithLabelValues(tc.reason)); got != 5 {
				t.Errorf("deleted{%s} = %v", tc.reason, got)
			}
		})
	}
}

func duBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".mp4") {
			if st, err := d.Info(); err == nil {
				n += st.Size()
			}
		}
		return nil
	})
	return n
}

func TestHoldsProtectAndPersist(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: t0}
	r, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now, Retain: time.Hour})
	for i := range 6 { // 21:05 .. 21:55, 10 minutes each
		addSegment(t, r, "gate", t0.Add(time.Duration(i)*10*time.Minute), 10*time.Minute, 100)
	}
	ctx := context.Background()
	// an alert at 21:17-21:19: holds the 21:15 segment; open-ended from 21:52
	if err := r.PlaceHold(ctx, Hold{ID: "alert-1", Camera: "gate", Start: t0.Add(12 * time.Minute), End: t0.Add(14 * time.Minute), Reason: "intrusion"}); err != nil {
		t.Fatal(err)
	}
	if err := r.PlaceHold(ctx, Hold{ID: "alert-2", Camera: "gate", Start: t0.Add(47 * time.Minute), Reason: "still active"}); err != nil {
		t.Fatal(err)
	}
	if err := r.PlaceHold(ctx, Hold{ID: "other", Camera: "hall", Start: t0}); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(5 * time.Hour))
	if err := r.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, r, "gate"), "21:15 21:45 21:55"; got != want {
		t.Fatalf("kept %q, want %q", got, want)
	}

	// re-open: holds come back from disk; end alert-1's hold at +6h
	r2, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now, Retain: time.Hour})
	holds, _ := r2.Holds()
	if len(holds) != 3 {
		t.Fatalf("holds after re-open: %+v", holds)
	}
	if err := r2.PlaceHold(ctx, Hold{ID: "alert-1", Camera: "gate", Start: t0.Add(12 * time.Minute), End: t0.Add(14 * time.Minute), Until: t0.Add(6 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := r2.ReleaseHold(ctx, "alert-2"); err != nil {
		t.Fatal(err)
	}
	if err := r2.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, r2, "gate"), "21:15"; got != want {
		t.Fatalf("kept %q, want %q", got, want)
	}
	clock.Set(t0.Add(6 * time.Hour))
	if err := r2.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, r2, "gate"); got != "" {
		t.Fatalf("kept %q after the hold expired", got)
	}
	r3, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now})
	if holds, _ := r3.Holds(); len(holds) != 1 || holds[0].ID != "other" {
		t.Fatalf("holds: %+v", holds)
	}
}

func TestCatalog(t *testing.T) {
	r, _ := newTestRecorder(t, Options{})
	mid := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	addSegment(t, r, "gate", mid.Add(-90*time.Second), time.Minute, 10)
	cross := addSegment(t, r, "gate", mid.Add(-30*time.Second), time.Minute, 10) // 23:59:30 - 00:00:30, in day 26's index
	addSegment(t, r, "gate", mid.Add(2*time.Minute), time.Minute, 10)

	for _, tc := range []struct {
		name       string
		start, end time.Time
		want       int
		gaps       int
	}{
		{"after midnight only", mid, mid.Add(time.Minute), 1, 0},
		{"whole range", mid.Add(-time.Hour), mid.Add(time.Hour), 3, 1},
		{"day before", mid.Add(-time.Hour), mid.Add(-45 * time.Second), 1, 0},
		{"nothing", mid.Add(time.Hour), mid.Add(2 * time.Hour), 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			segs, gaps, err := r.Catalog().List("gate", tc.start, tc.end)
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) != tc.want || len(gaps) != tc.gaps {
				t.Fatalf("segments %+v gaps %+v", segs, gaps)
			}
		})
	}
	segs, gaps, _ := r.Catalog().List("gate", mid, mid.Add(5*time.Minute))
	if segs[0].ID != cross.ID || segs[0].ID != "2026-11-26T23-59-30.000Z" {
		t.Errorf("first segment %s", segs[0].ID)
	}
	if len(gaps) != 1 || !gaps[0].Start.Equal(mid.Add(30*time.Second)) || !gaps[0].End.Equal(mid.Add(2*time.Minute)) {
		t.Errorf("gaps %+v", gaps)
	}
	// cached days see appends
	addSegment(t, r, "gate", mid.Add(3*time.Minute), time.Minute, 10)
	if segs, _, _ := r.Catalog().List("gate", mid, mid.Add(5*time.Minute)); len(segs) != 3 {
		t.Errorf("after append: %d segments", len(segs))
	}
	if s, err := r.Catalog().Segment("gate", cross.ID); err != nil || !s.End.Equal(mid.Add(30*time.Second)) {
		t.Errorf("Segment: %+v %v", s, err)
	}
	for _, bad := range []string{"../x", "2026-11-26T23-59-30.000", "2026-13-26T23-59-30.000Z", "2026-11-26T23:59:30.000Z"} {
		if _, _, _, err := ParseSegmentID(bad); err == nil {
			t.Errorf("ParseSegmentID(%q) accepted", bad)
		}
	}
	if _, _, err := r.Catalog().List("../etc", mid, mid); err == nil {
		t.Error("bad camera accepted")
	}
}
