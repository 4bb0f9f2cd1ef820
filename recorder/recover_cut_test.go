package recorder

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// topBox is a top-level box of an fMP4 file: its type and byte span.
type topBox struct {
	typ        string
	start, end int
}

// topBoxes lists the top-level boxes of a file the writer wrote whole.
func topBoxes(t *testing.T, b []byte) []topBox {
	t.Helper()
	var boxes []topBox
	for pos := 0; pos < len(b); {
		if len(b)-pos < 8 {
			t.Fatalf("trailing %d bytes at %d", len(b)-pos, pos)
		}
		size := int(binary.BigEndian.Uint32(b[pos:]))
		if size < 8 || pos+size > len(b) {
			t.Fatalf("box at %d: size %d of %d bytes", pos, size, len(b))
		}
		boxes = append(boxes, topBox{string(b[pos+4 : pos+8]), pos, pos + size})
		pos += size
	}
	return boxes
}

// indexLines reads a day index as its lines, each with its file and hash.
func indexLines(t *testing.T, path string) (raw []byte, lines []indexRecord) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(bytes.TrimSuffix(raw, []byte{'\n'}), []byte{'\n'}) {
		var rec indexRecord
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatalf("index line %q: %v", l, err)
		}
		lines = append(lines, rec)
	}
	return raw, lines
}

// TestRecoveryCutInsidePart cuts the last segment on purpose where a crash
// can cut it: inside its last part, inside that part's box header, or
// after half a part more was written; its index line is missing. Recovery
// keeps exactly the complete parts' bytes, indexes them with their hash,
// the result plays, and a second start changes nothing, neither the file
// nor the index (the last indexed segment is not indexed again).
func TestRecoveryCutInsidePart(t *testing.T) {
	c := fixture(t)
	for _, tc := range []struct {
		name string
		// cut returns the file as the crash left it and how many of its
		// bytes are complete parts.
		cut func(b []byte, last topBox) (cut []byte, keep int)
	}{
		{"inside the last part's mdat", func(b []byte, last topBox) ([]byte, int) {
			return b[:last.end-(last.end-last.start)/3], last.start
		}},
		{"inside the last part's moof header", func(b []byte, last topBox) ([]byte, int) {
			return b[:last.start+5], last.start
		}},
		{"half a part appended", func(b []byte, last topBox) ([]byte, int) {
			part := b[last.start:last.end]
			return append(bytes.Clone(b), part[:len(part)/2]...), len(b)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r, _ := newTestRecorder(t, Options{Dir: dir, Segment: 4 * time.Second, Part: time.Second, Fsync: FsyncNever})
			w, _ := r.Camera("cam", 0)
			w.OnStream(stream(c, "cam", 1, t0))
			(&feeder{c: c, wall: t0}).feed(w, 270) // segments at 0, 4 and 8 s, the last 2.8 s long
			if err := r.CloseCamera("cam"); err != nil {
				t.Fatal(err)
			}
			idx := filepath.Join(dir, "cam", t0.Format(dayLayout), indexFile)
			raw, lines := indexLines(t, idx)
			if len(lines) != 3 {
				t.Fatalf("%d index lines, want 3", len(lines))
			}
			// the crash: the last segment's line never written, its file cut
			noLast := raw[:bytes.LastIndexByte(raw[:len(raw)-1], '\n')+1]
			if err := os.WriteFile(idx, noLast, 0o644); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "cam", t0.Format(dayLayout), lines[2].File)
			whole, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			boxes := topBoxes(t, whole)
			last := boxes[len(boxes)-1]
			if last.typ != "mdat" || boxes[len(boxes)-2].typ != "moof" || len(boxes) < 6 {
				t.Fatalf("segment boxes %+v", boxes)
			}
			last.start = boxes[len(boxes)-2].start // the part: moof and mdat
			cut, keep := tc.cut(whole, last)
			if err := os.WriteFile(path, cut, 0o644); err != nil {
				t.Fatal(err)
			}

			r2, _ := newTestRecorder(t, Options{Dir: dir, Segment: 4 * time.Second, Part: time.Second})
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, whole[:keep]) {
				t.Fatalf("recovered file: %d bytes, want the %d bytes of its complete parts", len(got), keep)
			}
			raw2, lines2 := indexLines(t, idx)
			if len(lines2) != 3 || !bytes.HasPrefix(raw2, noLast) || lines2[2].File != lines[2].File {
				t.Fatalf("index after recovery:\n%s", raw2)
			}
			rec := lines2[2]
			if rec.Bytes != int64(keep) || rec.SHA256 != fileSHA256(t, path) {
				t.Errorf("index line %+v; file %d bytes, sha256 %s", rec, len(got), fileSHA256(t, path))
			}
			p := ffprobe(t, path)
			if p.Stderr != "" || p.Frames != rec.Frames || rec.Frames == 0 {
				t.Errorf("recovered segment: ffprobe %+v, index frames %d", p, rec.Frames)
			}
			if seg, err := r2.Catalog().Segment("cam", segmentID(t0.Format(dayLayout), rec.File)); err != nil || seg.SHA256 != rec.SHA256 {
				t.Errorf("catalog: %+v %v", seg, err)
			}

			newTestRecorder(t, Options{Dir: dir, Segment: 4 * time.Second, Part: time.Second})
			if raw3, _ := os.ReadFile(idx); !bytes.Equal(raw3, raw2) {
				t.Errorf("a second recovery changed the index:\n%s\nwas\n%s", raw3, raw2)
			}
			if again, _ := os.ReadFile(path); !bytes.Equal(again, got) {
				t.Error("a second recovery changed the segment")
			}
		})
	}
}
