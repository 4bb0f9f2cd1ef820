package recorder

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// asLocal makes segs this node's sources of a cluster export.
func asLocal(segs []Segment) []ExportSource {
	out := make([]ExportSource, len(segs))
	for i, s := range segs {
		out[i] = ExportSource{Segment: s}
	}
	return out
}

// asRemote makes segs another node's sources: planned from the boxes
// their node sends, received through Fetch, which counts fetches and
// passes the bytes through alter (nil: as they are).
func asRemote(t *testing.T, segs []Segment, alter func(i int, b []byte) []byte) []ExportSource {
	t.Helper()
	out := make([]ExportSource, len(segs))
	for i, s := range segs {
		b, err := AppendSegmentBoxes(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		boxes, err := ParseSegmentBoxes(b, s.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		path := s.Path
		s.Path = ""
		out[i] = ExportSource{Segment: s, Boxes: boxes, Fetch: func(stop <-chan struct{}, w io.Writer) error {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if alter != nil {
				data = alter(i, data)
			}
			select {
			case <-stop:
				return errors.New("stopped")
			default:
			}
			_, err = w.Write(data)
			return err
		}}
	}
	return out
}

// recordOn records frames of exportCamera from start on a node's own
// recorder, under epoch, 4-s segments, and returns its segments.
func recordOn(t *testing.T, node string, epoch int64, start time.Time, frames int) []Segment {
	t.Helper()
	c := fixture(t)
	r, _ := newTestRecorder(t, Options{Node: node, Segment: 4 * time.Second, Part: time.Second})
	w, err := r.Camera(exportCamera, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.SetEpoch(epoch)
	w.OnStream(stream(c, exportCamera, 1, start))
	(&feeder{c: c, wall: start}).feed(w, frames)
	if err := r.CloseCamera(exportCamera); err != nil {
		t.Fatal(err)
	}
	segs, _, err := r.Catalog().List(exportCamera, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil || len(segs) == 0 {
		t.Fatalf("node %s recorded %d segments: %v", node, len(segs), err)
	}
	return segs
}

// Two nodes recorded the same camera over 6 s (a hand-over, or a
// partition): the export takes the overlapping time from the higher epoch
// only, plays, and its manifest names each segment's node.
func TestPlanExportOfPrefersHigherEpoch(t *testing.T) {
	frame := fixture(t).FrameDuration()
	cases := []struct {
		name           string
		epochA, epochB int64
		wantA, wantB   int // frames taken from each node
		exactB         bool
	}{
		// A (epoch 1) 0–12 s, B (epoch 2) 6–16 s: A stops at 6 s
		{"later node higher", 1, 2, 150, 250, true},
		// A (epoch 2) wins: B starts again at its first keyframe from 12 s
		{"earlier node higher", 2, 1, 300, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := recordOn(t, "town-1", tc.epochA, t0, 300)
			b := recordOn(t, "village-3", tc.epochB, t0.Add(6*time.Second), 250)
			req := ExportRequest{Camera: exportCamera, Start: t0, End: t0.Add(16 * time.Second)}
			// village-3's segments as another node's: planned from
			// their boxes, their bytes received while the export is read
			x, err := PlanExportOf(req, append(asRemote(t, b, nil), asLocal(a)...))
			if err != nil {
				t.Fatal(err)
			}
			fromA := 0
			nodes := map[string]bool{}
			for _, s := range x.Manifest().Segments {
				nodes[s.Node] = true
				if s.Epoch == 0 {
					t.Errorf("manifest segment %s: no epoch", s.ID)
				}
			}
			if !nodes["town-1"] || !nodes["village-3"] {
				t.Errorf("manifest nodes %v, want both", nodes)
			}
			for _, s := range x.Segments {
				if s.Node == "town-1" {
					fromA++
				}
			}
			if tc.exactB && x.Frames != tc.wantA+tc.wantB {
				t.Errorf("%d frames, want %d from A and %d from B (no overlap twice)", x.Frames, tc.wantA, tc.wantB)
			}
			if !tc.exactB && (x.Frames <= tc.wantA || x.Frames >= 300+250) {
				t.Errorf("%d frames: want all %d of A and only B's after A ended", x.Frames, tc.wantA)
			}
			path := filepath.Join(t.TempDir(), "x.mp4")
			writeExport(t, x, path)
			p := ffprobe(t, path)
			if p.Stderr != "" || p.Frames != x.Frames {
				t.Fatalf("ffprobe: %d frames (planned %d): %s", p.Frames, x.Frames, p.Stderr)
			}
			if d := p.Duration; d < 16*time.Second-4*frame || d > 16*time.Second+4*frame {
				t.Errorf("plays %v, want about 16 s", d)
			}
			if len(x.Gaps) != 0 {
				t.Errorf("gaps %v, want none", x.Gaps)
			}
		})
	}
}

func TestCoverGaps(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	seg := func(a, b int) Segment { return Segment{Start: at(a), End: at(b)} }
	got := CoverGaps(at(0), at(30), []Segment{seg(2, 6), seg(4, 10), seg(5, 8), seg(12, 20)})
	want := []Gap{{at(0), at(2)}, {at(10), at(12)}, {at(20), at(30)}}
	if len(got) != len(want) {
		t.Fatalf("gaps %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Start.Equal(want[i].Start) || !got[i].End.Equal(want[i].End) {
			t.Fatalf("gaps %v, want %v", got, want)
		}
	}
}
