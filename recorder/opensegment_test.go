package recorder

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openRecording is a camera recording into t.TempDir() with 60-s segments
// of 1-s parts, on a fake clock that follows the frames' wall time.
type openRecording struct {
	r     *Recorder
	w     *Writer
	f     *feeder
	clock *fakeClock
}

func startOpenRecording(t *testing.T) *openRecording {
	t.Helper()
	c := fixture(t)
	clock := &fakeClock{t: t0}
	r, _ := newTestRecorder(t, Options{Segment: 60 * time.Second, Part: time.Second, Now: clock.Now})
	w, err := r.Camera(exportCamera, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.OnStream(stream(c, exportCamera, 1, t0))
	return &openRecording{r: r, w: w, f: &feeder{c: c, wall: t0}, clock: clock}
}

// until feeds frames up to wall time t and sets the clock there.
func (o *openRecording) until(t time.Time) {
	for o.f.wall.Add(time.Duration(o.f.n) * o.f.c.FrameDuration()).Before(t) {
		o.w.OnAccessUnit(o.f.next())
	}
	o.clock.Set(t)
}

func sha256Prefix(t *testing.T, path string, n int64) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) < n {
		t.Fatalf("%s: %d bytes, want at least %d", path, len(b), n)
	}
	sum := sha256.Sum256(b[:n])
	return hex.EncodeToString(sum[:])
}

// The open segment's bytes are verified while exporting, against the hash
// of exactly the bytes listed: altered there, the export fails its
// integrity check; the segment stays servable while it grows.
func TestOpenSegmentVerifiedAgainstPartialHash(t *testing.T) {
	o := startOpenRecording(t)
	o.until(t0.Add(6 * time.Second))
	x, err := PlanExport(o.r.Catalog(), ExportRequest{Camera: exportCamera, Start: t0, End: o.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	seg := x.Segments[0]
	if !seg.Open {
		t.Fatalf("source %+v not open", seg)
	}
	f, err := os.OpenFile(seg.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	at := seg.Bytes - 100
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rd := x.Reader()
	defer rd.Close()
	if _, err := rd.WriteTo(io.Discard); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("export of an altered open segment: %v", err)
	}
}

// vigil export runs beside the service: its read-only catalog sees the
// segment the service is writing as far as its complete parts go.
func TestOfflineCatalogSeesOpenSegment(t *testing.T) {
	o := startOpenRecording(t)
	o.until(t0.Add(12 * time.Second))
	live, _, err := o.r.Catalog().List(exportCamera, t0, t0.Add(time.Hour))
	if err != nil || len(live) != 1 {
		t.Fatal(live, err)
	}
	off := OpenCatalog(o.r.opts.Dir, nil)
	segs, _, err := off.List(exportCamera, t0, t0.Add(time.Hour))
	if err != nil || len(segs) != 1 {
		t.Fatalf("offline listing: %+v %v", segs, err)
	}
	if s := segs[0]; !s.Open || s.ID != live[0].ID || s.Bytes != live[0].Bytes || s.SHA256 != live[0].SHA256 || !s.End.Equal(live[0].End) {
		t.Fatalf("offline sees %+v, the service lists %+v", s, live[0])
	}
	x, err := PlanExport(off, ExportRequest{Camera: exportCamera, Start: t0.Add(5 * time.Second), End: t0.Add(12 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "offline.mp4")
	writeExport(t, x, path)
	if p := ffprobe(t, path); p.Stderr != "" || p.Frames == 0 || x.Until.Before(t0.Add(10*time.Second)) {
		t.Fatalf("offline export: %+v until %v", p, x.Until)
	}
	if !strings.Contains(x.Manifest().Segments[0].SHA256, live[0].SHA256) || !x.Manifest().Segments[0].Open {
		t.Fatalf("offline manifest %+v", x.Manifest().Segments)
	}
}
