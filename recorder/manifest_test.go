package recorder

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// checkManifestHashes checks each manifest segment against the file it
// names: a closed segment's bytes and SHA-256 are the whole file's, the
// open one's are of exactly the first Bytes bytes the export took.
func checkManifestHashes(t *testing.T, dir, camera string, m Manifest) {
	t.Helper()
	seen := map[string]bool{}
	for _, s := range m.Segments {
		day, file, _, err := ParseSegmentID(s.ID)
		if err != nil || seen[s.ID] {
			t.Fatalf("manifest segment %+v: %v", s, err)
		}
		seen[s.ID] = true
		path := filepath.Join(dir, camera, day, file)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if s.Open {
			if got := sha256Prefix(t, path, s.Bytes); got != s.SHA256 {
				t.Errorf("open segment %s: manifest sha256 %s, its first %d bytes hash to %s", s.ID, s.SHA256, s.Bytes, got)
			}
			continue
		}
		if got := fileSHA256(t, path); s.Bytes != st.Size() || got != s.SHA256 {
			t.Errorf("segment %s: manifest %d bytes sha256 %s, file %d bytes sha256 %s", s.ID, s.Bytes, s.SHA256, st.Size(), got)
		}
	}
}

// Each manifest entry carries the hash of its own segment's file (of the
// bytes taken from the open one). The manifest endpoint serves this plan's
// manifest (recorder/footageapi); internal/app's TestFootageFromAnyNode and
// cmd/vigil's TestExportCommandManifestHashes check it end to end.
func TestManifestHashesAreEachSegments(t *testing.T) {
	c := fixture(t)
	clock := &fakeClock{t: t0}
	r, _ := newTestRecorder(t, Options{Segment: 4 * time.Second, Part: time.Second, Now: clock.Now})
	w, err := r.Camera(exportCamera, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.OnStream(stream(c, exportCamera, 1, t0))
	o := &openRecording{r: r, w: w, f: &feeder{c: c, wall: t0}, clock: clock}
	o.until(t0.Add(14500 * time.Millisecond)) // closed at 4, 8 and 12 s; the fourth open
	start, end := t0.Add(time.Second), t0.Add(14*time.Second)

	x, err := PlanExport(o.r.Catalog(), ExportRequest{Camera: exportCamera, Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	m := x.Manifest()
	if len(m.Segments) != 4 || !m.Segments[3].Open || m.Segments[2].Open {
		t.Fatalf("manifest segments %+v, want three closed and the open one", m.Segments)
	}
	checkManifestHashes(t, o.r.opts.Dir, exportCamera, m)

}
