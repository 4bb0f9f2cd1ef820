package recorder

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

const exportCamera = "hall-entrance"

// gapRecording records 12 s of the fixture (segments at 0, 4 and 8 s), a
// reconnect, and 8 s more from 13 s (segments at 13 and 17 s): a 1 s gap.
type gapRecording struct {
	dir     string
	catalog *Catalog
	frame   time.Duration
}

func recordWithGap(t *testing.T) gapRecording {
	t.Helper()
	c := fixture(t)
	r, _ := newTestRecorder(t, Options{Segment: 4 * time.Second, Part: time.Second})
	w, err := r.Camera(exportCamera, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.OnStream(stream(c, exportCamera, 1, t0))
	(&feeder{c: c, wall: t0}).feed(w, 300)
	w.OnBreak("disconnect", 0)
	w.OnStream(stream(c, exportCamera, 2, t0.Add(13*time.Second)))
	(&feeder{c: c, wall: t0.Add(13 * time.Second)}).feed(w, 200)
	if err := r.CloseCamera(exportCamera); err != nil {
		t.Fatal(err)
	}
	return gapRecording{dir: r.opts.Dir, catalog: r.Catalog(), frame: c.FrameDuration()}
}

func writeExport(t *testing.T, x *Export, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	rd := x.Reader()
	defer rd.Close()
	n, err := rd.WriteTo(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n != x.Size {
		t.Fatalf("wrote %d bytes, planned %d", n, x.Size)
	}
}

func TestExportAcrossSegmentsAndGap(t *testing.T) {
	rec := recordWithGap(t)
	start, end := t0.Add(5*time.Second), t0.Add(17*time.Second)
	for _, format := range []string{FormatMP4, FormatFMP4} {
		t.Run(format, func(t *testing.T) {
			x, err := PlanExport(rec.catalog, ExportRequest{Camera: exportCamera, Start: start, End: end, Format: format})
			if err != nil {
				t.Fatal(err)
			}
			if want := t0.Add(4 * time.Second); !x.From.Equal(want) {
				t.Errorf("starts at %v, want the keyframe at %v", x.From, want)
			}
			if len(x.Segments) != 3 {
				t.Errorf("reads %d segments, want 3: %+v", len(x.Segments), x.Segments)
			}
			// frames 100..299 of the first session, 0..99 of the second (13–17 s)
			const wantFrames = 200 + 100
			if x.Frames != wantFrames {
				t.Errorf("plans %d frames, want %d", x.Frames, wantFrames)
			}
			m := x.Manifest()
			if m.From != formatTime(t0.Add(4*time.Second)) || m.Until != formatTime(end) {
				t.Errorf("manifest from %s until %s, want 4 s and 17 s", m.From, m.Until)
			}
			if len(m.Gaps) != 1 || m.Gaps[0].Start != formatTime(t0.Add(12*time.Second)) || m.Gaps[0].End != formatTime(t0.Add(13*time.Second)) {
				t.Errorf("manifest gaps %+v, want 12 s – 13 s", m.Gaps)
			}
			path := filepath.Join(t.TempDir(), "clip.mp4")
			writeExport(t, x, path)
			p := ffprobe(t, path)
			if p.Stderr != "" {
				t.Errorf("export does not decode cleanly: %s", p.Stderr)
			}
			if p.Frames != wantFrames {
				t.Errorf("ffprobe counts %d frames, want %d", p.Frames, wantFrames)
			}
			// The file keeps wall-clock time: it runs from the keyframe to
			// the end, the gap held on its last frame, so time t in the
			// file is From+t.
			want := end.Sub(x.From)
			if d := p.Duration - want; d < -rec.frame || d > rec.frame {
				t.Errorf("duration %v, want %v (the range from the keyframe, gap included)", p.Duration, want)
			}
			created, err := time.Parse(time.RFC3339Nano, p.Tags["creation_time"])
			if err != nil || !created.Equal(x.From.Truncate(time.Second)) {
				t.Errorf("creation_time %q, want the first frame's time %v", p.Tags["creation_time"], x.From)
			}
			if c := p.Tags["comment"]; !strings.Contains(c, "camera="+exportCamera) || !strings.Contains(c, "gap="+formatTime(t0.Add(12*time.Second))+"/"+formatTime(t0.Add(13*time.Second))) {
				t.Errorf("comment %q does not name the camera and the gap", c)
			}
		})
	}
}

func TestExportRejects(t *testing.T) {
	rec := recordWithGap(t)
	tests := []struct {
		name string
		req  ExportRequest
		code string
		err  error
	}{
		{"empty range", ExportRequest{Camera: exportCamera, Start: t0, End: t0}, "bad_range", nil},
		{"end before start", ExportRequest{Camera: exportCamera, Start: t0, End: t0.Add(-time.Second)}, "bad_range", nil},
		{"too long", ExportRequest{Camera: exportCamera, Start: t0, End: t0.Add(2*time.Hour + time.Second)}, "range_too_long", nil},
		{"configured limit", ExportRequest{Camera: exportCamera, Start: t0, End: t0.Add(time.Minute), MaxRange: 30 * time.Second}, "range_too_long", nil},
		{"bad format", ExportRequest{Camera: exportCamera, Start: t0, End: t0.Add(time.Second), Format: "avi"}, "bad_format", nil},
		{"bad camera", ExportRequest{Camera: "../etc", Start: t0, End: t0.Add(time.Second)}, "bad_camera_id", nil},
		{"no footage", ExportRequest{Camera: exportCamera, Start: t0.Add(time.Hour), End: t0.Add(time.Hour + time.Minute)}, "", ErrNoFootage},
		{"unknown camera", ExportRequest{Camera: "gate", Start: t0, End: t0.Add(time.Minute)}, "", ErrNoFootage},
		{"inside the gap", ExportRequest{Camera: exportCamera, Start: t0.Add(12100 * time.Millisecond), End: t0.Add(12900 * time.Millisecond)}, "", ErrNoFootage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PlanExport(rec.catalog, tt.req)
			var re *RequestError
			switch {
			case tt.code != "":
				if !errors.As(err, &re) || re.Code != tt.code {
					t.Fatalf("error %v, want code %s", err, tt.code)
				}
			case !errors.Is(err, tt.err):
				t.Fatalf("error %v, want %v", err, tt.err)
			}
		})
	}
}

func TestExportFailsWhenSourceRemoved(t *testing.T) {
	rec := recordWithGap(t)
	x, err := PlanExport(rec.catalog, ExportRequest{Camera: exportCamera, Start: t0, End: t0.Add(20 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	rd := x.Reader()
	defer rd.Close()
	buf := make([]byte, 4096)
	if _, err := rd.Read(buf); err != nil {
		t.Fatal(err)
	}
	// retention deletes the last segment while the export runs
	if err := os.Remove(x.Segments[len(x.Segments)-1].Path); err != nil {
		t.Fatal(err)
	}
	_, err = rd.WriteTo(discard{})
	if !errors.Is(err, ErrSourceChanged) {
		t.Fatalf("export of a removed segment: %v, want ErrSourceChanged", err)
	}
	// and planning again reports it before any byte
	if _, err := PlanExport(rec.catalog, ExportRequest{Camera: exportCamera, Start: t0, End: t0.Add(20 * time.Second)}); !errors.Is(err, ErrSourceChanged) {
		t.Fatalf("planning over a removed segment: %v, want ErrSourceChanged", err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestExportMP4ReadsBack parses the progressive export with mediacommon's
// pmp4 reader and checks every sample against the recorded fragments.
func TestExportMP4ReadsBack(t *testing.T) {
	rec := recordWithGap(t)
	x, err := PlanExport(rec.catalog, ExportRequest{Camera: exportCamera, Start: t0.Add(5 * time.Second), End: t0.Add(17 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clip.mp4")
	writeExport(t, x, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var p pmp4.Presentation
	if err := p.Unmarshal(f); err != nil {
		t.Fatal(err)
	}
	if len(p.Tracks) != 1 || len(p.Tracks[0].Samples) != x.Frames {
		t.Fatalf("%d tracks, want 1 with %d samples", len(p.Tracks), x.Frames)
	}
	var want []srcSample
	var wantSrc []string
	var scratch []byte
	for _, seg := range x.Segments {
		src, err := scanExportSource(seg, nil, &scratch)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range src.parts {
			for _, s := range part.tracks[0] {
				if s.wall >= x.From.UnixNano() && s.wall < x.End.UnixNano() {
					want = append(want, s)
					wantSrc = append(wantSrc, seg.Path)
				}
			}
		}
	}
	// Each sample lasts until the next one's wall time (the frame before a
	// gap is held): in the track's time scale, rounded from From.
	at := func(wall int64) int64 { return ((wall-x.From.UnixNano())*90000 + 5e8) / 1e9 }
	for i := range len(want) - 1 {
		want[i].dur = uint32(at(want[i+1].wall) - at(want[i].wall))
	}
	for i, s := range p.Tracks[0].Samples {
		w := want[i]
		if s.PayloadSize != w.size || s.Duration != w.dur || s.IsNonSyncSample == w.sync {
			t.Fatalf("sample %d: %+v, want %+v", i, s, w)
		}
		got, err := s.GetPayload()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(wantSrc[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b[w.off:w.off+int64(w.size)]) {
			t.Fatalf("sample %d: payload differs from the recording", i)
		}
	}
	if p.Tracks[0].Samples[0].IsNonSyncSample {
		t.Fatal("the export does not start with a keyframe")
	}
}
