package recorder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var t0 = time.Date(2026, 11, 26, 21, 5, 0, 0, time.UTC)

func newTestRecorder(t testing.TB, opts Options) (*Recorder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	opts.Registerer = reg
	if opts.Now == nil {
		clock := &fakeClock{t: t0}
		opts.Now = clock.Now
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, reg
}

func TestRecordSegments(t *testing.T) {
	c := fixture(t)
	r, reg := newTestRecorder(t, Options{Segment: 4 * time.Second, Part: time.Second})
	w, err := r.Camera("hall-entrance", 0)
	if err != nil {
		t.Fatal(err)
	}
	w.OnStream(stream(c, "hall-entrance", 1, t0))
	f := &feeder{c: c, wall: t0}
	f.feed(w, 2*len(c.Frames)) // 20 s: closes at 4, 8, 12, 16 s
	if err := r.CloseCamera("hall-entrance"); err != nil {
		t.Fatal(err)
	}

	segs, gaps, err := r.Catalog().List("hall-entrance", t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 5 || len(gaps) != 0 {
		t.Fatalf("got %d segments, %d gaps; want 5, 0: %+v %+v", len(segs), len(gaps), segs, gaps)
	}
	frameDur := c.FrameDuration()
	total := 0
	for i, s := range segs {
		wantPath := filepath.Join(r.opts.Dir, "hall-entrance", s.Start.Format("2006-01-02"), s.Start.Format("15-04-05.000")+"Z.mp4")
		if s.Path != wantPath {
			t.Errorf("segment %d path %s, want %s", i, s.Path, wantPath)
		}
		if !SegmentIDPattern.MatchString(s.ID) {
			t.Errorf("segment id %q does not match %v", s.ID, SegmentIDPattern)
		}
		if i > 0 && !s.Start.Equal(segs[i-1].End) {
			t.Errorf("segment %d starts at %v, previous ended at %v", i, s.Start, segs[i-1].End)
		}
		if got := fileSHA256(t, s.Path); got != s.SHA256 {
			t.Errorf("segment %d sha256 %s, index says %s", i, got, s.SHA256)
		}
		st, err := os.Stat(s.Path)
		if err != nil || st.Size() != s.Bytes {
			t.Errorf("segment %d: size %v (%v), index says %d", i, st.Size(), err, s.Bytes)
		}
		p := ffprobe(t, s.Path)
		if p.Stderr != "" {
			t.Errorf("segment %d does not decode cleanly: %s", i, p.Stderr)
		}
		if p.Frames != s.Frames {
			t.Errorf("segment %d: ffprobe counts %d frames, index %d", i, p.Frames, s.Frames)
		}
		if d := p.Duration - s.Duration(); d > frameDur || d < -frameDur {
			t.Errorf("segment %d: ffprobe duration %v, index %v", i, p.Duration, s.Duration())
		}
		if i < 4 && s.Duration() != 4*time.Second {
			t.Errorf("segment %d lasts %v, want 4s", i, s.Duration())
		}
		if s.Codec != "h264" {
			t.Errorf("codec %q", s.Codec)
		}
		total += s.Frames
	}
	if total != 2*len(c.Frames) {
		t.Errorf("recorded %d frames, fed %d", total, 2*len(c.Frames))
	}
	if got := testutil.ToFloat64(r.m.segments.WithLabelValues("hall-entrance")); got != 5 {
		t.Errorf("segments_total = %v", got)
	}
	if got := testutil.ToFloat64(r.m.bytes.WithLabelValues("hall-entrance")); got <= 0 {
		t.Errorf("bytes_total = %v", got)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	idx, err := os.ReadFile(filepath.Join(r.opts.Dir, "hall-entrance", "2026-11-26", "index.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(idx), "\n", 2)[0]
	if !strings.HasPrefix(first, `{"file":"21-05-00.000Z.mp4","start":"2026-11-26T21:05:00.000Z","end":"2026-11-26T21:05:04.000Z","bytes":`) {
		t.Errorf("index line: %s", first)
	}
}

func TestReconnectGapInCatalog(t *testing.T) {
	c := fixture(t)
	r, _ := newTestRecorder(t, Options{Segment: 4 * time.Second, Part: time.Second})
	w, _ := r.Camera("gate", 0)
	w.OnStream(stream(c, "gate", 1, t0))
	(&feeder{c: c, wall: t0}).feed(w, 150) // 6 s
	w.OnBreak("disconnect", 0)
	back := t0.Add(9 * time.Second)
	w.OnStream(stream(c, "gate", 2, back))
	(&feeder{c: c, wall: back}).feed(w, 100)
	if err := r.CloseCamera("gate"); err != nil {
		t.Fatal(err)
	}
	segs, gaps, err := r.Catalog().List("gate", t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 3 {
		t.Fatalf("%d segments: %+v", len(segs), segs)
	}
	if len(gaps) != 1 || !gaps[0].Start.Equal(t0.Add(6*time.Second)) || !gaps[0].End.Equal(back) {
		t.Fatalf("gaps %+v, want one from %v to %v", gaps, t0.Add(6*time.Second), back)
	}
	for _, s := range segs {
		if p := ffprobe(t, s.Path); p.Stderr != "" || p.Frames != s.Frames {
			t.Errorf("%s: %+v, index frames %d", s.ID, p, s.Frames)
		}
	}
}

func TestNewSPSStartsNewSegment(t *testing.T) {
	c := fixture(t)
	r, _ := newTestRecorder(t, Options{Segment: time.Minute, Part: time.Second})
	w, _ := r.Camera("gate", 0)
	w.OnStream(stream(c, "gate", 1, t0))
	f := &feeder{c: c, wall: t0}
	f.feed(w, 75)
	s2 := stream(c, "gate", 1, t0)
	s2.Video.SPS = append([]byte(nil), c.SPS...)
	s2.Video.SPS[len(s2.Video.SPS)-1] ^= 0 // same bytes: no new segment
	w.OnStream(s2)
	f.feed(w, 25)
	s3 := stream(c, "gate", 2, t0)
	w.OnStream(s3) // new session: new segment
	f.feed(w, 50)
	r.CloseCamera("gate")
	segs, _, _ := r.Catalog().List("gate", t0, t0.Add(time.Minute))
	if len(segs) != 2 {
		t.Fatalf("%d segments: %+v", len(segs), segs)
	}
	if segs[0].Frames != 100 || segs[1].Frames != 50 { // frame 100 is a keyframe
		t.Errorf("frames %d, %d", segs[0].Frames, segs[1].Frames)
	}
}
