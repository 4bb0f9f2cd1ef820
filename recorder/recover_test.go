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

// recordOne records frames of the fixture into one closed segment and
// returns its bytes.
func recordOne(t testing.TB, frames int) []byte {
	t.Helper()
	c := fixture(t)
	dir := t.TempDir()
	r, err := New(Options{Dir: dir, Segment: time.Hour, Part: 200 * time.Millisecond, Fsync: FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := r.Camera("cam", 0)
	w.OnStream(stream(c, "cam", 1, t0))
	(&feeder{c: c, wall: t0}).feed(w, frames)
	w.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "cam", "*", "*.mp4"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestScanSegmentTruncated(t *testing.T) {
	b := recordOne(t, 60)
	full, err := scanSegment(b)
	if err != nil || full.Valid != int64(len(b)) || full.Frames != 60 {
		t.Fatalf("full segment: %+v %v", full, err)
	}
	prevValid, prevFrames := int64(0), 0
	for cut := 0; cut <= len(b); cut += 499 {
		res, err := scanSegment(b[:cut])
		if err != nil {
			if res.Valid != 0 || cut > 2000 {
				t.Fatalf("cut %d: %v", cut, err)
			}
			continue
		}
		if res.Valid > int64(cut) || res.Valid < prevValid || res.Frames < prevFrames {
			t.Fatalf("cut %d: %+v after valid %d", cut, res, prevValid)
		}
		prevValid, prevFrames = res.Valid, res.Frames
		again, err := scanSegment(b[:res.Valid]) // the truncated file is whole
		if err != nil || again != res {
			t.Fatalf("cut %d: rescan %+v %v, want %+v", cut, again, err, res)
		}
	}
	if prevFrames < 55 {
		t.Errorf("largest cut kept only %d frames", prevFrames)
	}
}

func TestRecoverySegmentWithoutParts(t *testing.T) {
	b := recordOne(t, 10)
	dir := t.TempDir()
	day := filepath.Join(dir, "cam", "2026-11-26")
	os.MkdirAll(day, 0o755)
	ftyp := binary.BigEndian.Uint32(b)
	init := b[:ftyp+binary.BigEndian.Uint32(b[ftyp:])] // ftyp + moov
	os.WriteFile(filepath.Join(day, "21-05-00.000Z.mp4"), append(init, 0, 0, 1, 0, 'm', 'o', 'o', 'f'), 0o644)
	r, _ := newTestRecorder(t, Options{Dir: dir})
	segs, _, _ := r.Catalog().List("cam", t0, t0.Add(time.Hour))
	if len(segs) != 0 {
		t.Errorf("segments %+v", segs)
	}
	if _, err := os.Stat(filepath.Join(day, "21-05-00.000Z.mp4")); !os.IsNotExist(err) {
		t.Errorf("unplayable segment kept: %v", err)
	}
}

func FuzzScanSegment(f *testing.F) {
	b := recordOne(f, 12)
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{0, 0, 0, 1, 'f', 't', 'y', 'p'})
	f.Add([]byte{0, 0, 0, 0, 'm', 'o', 'o', 'v'})
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := scanSegment(data)
		if err == nil && (res.Valid < 0 || res.Valid > int64(len(data))) {
			t.Fatalf("valid %d of %d", res.Valid, len(data))
		}
	})
}

func FuzzParseIndexLine(f *testing.F) {
	f.Add([]byte(`{"file":"21-05-00.000Z.mp4","start":"2026-11-26T21:05:00.000Z","end":"2026-11-26T21:06:00.000Z","bytes":100,"sha256":"` + zeros64 + `","frames":1500,"codec":"h264"}`))
	f.Add([]byte(`{"file":"21-05-00.000Z.mp4","start":"2026-11-26T21:05:00.000Z","end":"2026-11-26T21:06:00.000Z","bytes":100,"sha256":"` + zeros64 + `","frames":1500,"codec":"h264","node":"village-3","epoch":42}`))
	f.Add([]byte(`{"file":"../../etc/passwd"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`2026-11-26T21:05:00.000Z`))
	f.Add([]byte(`2026-02-31T21:05:00.000Z`))
	f.Fuzz(func(t *testing.T, line []byte) {
		if fast, ok := parseIndexFast(line); ok {
			var slow indexRecord
			err := json.Unmarshal(line, &slow)
			start, err1 := time.Parse(time.RFC3339Nano, slow.Start)
			end, err2 := time.Parse(time.RFC3339Nano, slow.End)
			if err != nil || err1 != nil || err2 != nil || string(fast.file) != slow.File || !fast.start.Equal(start) || !fast.end.Equal(end) ||
				fast.bytes != slow.Bytes || string(fast.sha256) != slow.SHA256 || fast.frames != slow.Frames || string(fast.codec) != slow.Codec ||
				string(fast.node) != slow.Node || fast.epoch != slow.Epoch {
				t.Fatalf("fast parse %+v, encoding/json %+v %v %v %v", fast, slow, err, err1, err2)
			}
		}
		if t1, err := parseTime(string(line)); err == nil {
			if t2, err := time.Parse(time.RFC3339Nano, string(line)); err != nil || !t1.Equal(t2) {
				t.Fatalf("parseTime %v, time.Parse %v %v", t1, t2, err)
			}
		}
		s, err := parseIndexLine("cam", "2026-11-26", line)
		if err != nil {
			return
		}
		if _, _, _, err := ParseSegmentID(s.ID); err != nil {
			t.Fatalf("accepted line gives bad id %q", s.ID)
		}
		if s.End.Before(s.Start) || s.Bytes < 0 || s.Epoch < 0 {
			t.Fatalf("accepted %+v", s)
		}
	})
}

const zeros64 = "0000000000000000000000000000000000000000000000000000000000000000"

// A crash that cut the index's last line to a fragment leaves the segment
// it named unindexed; recovery indexes it again on a line of its own, on
// disk, so that it stays listed across restarts.
func TestRecoveryRepairsTornIndexTail(t *testing.T) {
	c := fixture(t)
	dir := t.TempDir()
	r, _ := newTestRecorder(t, Options{Dir: dir, Segment: 4 * time.Second, Part: time.Second, Fsync: FsyncNever})
	w, _ := r.Camera("cam", 0)
	w.OnStream(stream(c, "cam", 1, t0))
	(&feeder{c: c, wall: t0}).feed(w, 220) // two closed segments and a third
	if err := r.CloseCamera("cam"); err != nil {
		t.Fatal(err)
	}
	before, _, _ := r.Catalog().List("cam", t0, t0.Add(time.Hour))
	if len(before) < 2 {
		t.Fatalf("recorded %d segments", len(before))
	}
	idx := filepath.Join(dir, "cam", t0.Format(dayLayout), indexFile)
	b, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'})
	last := lines[len(lines)-1]
	torn := append(bytes.Join(lines[:len(lines)-1], nil), last[:45]...)
	if err := os.WriteFile(idx, torn, 0o644); err != nil {
		t.Fatal(err)
	}
	for restart := range 2 {
		r2, _ := newTestRecorder(t, Options{Dir: dir, Segment: 4 * time.Second, Part: time.Second})
		segs, _, err := r2.Catalog().List("cam", t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) != len(before) {
			t.Fatalf("restart %d: %d segments listed, want %d", restart, len(segs), len(before))
		}
		want := before[len(before)-1]
		if _, err := r2.Catalog().Segment("cam", want.ID); err != nil {
			t.Fatalf("restart %d: recovered segment: %v", restart, err)
		}
	}
	b, _ = os.ReadFile(idx)
	if !bytes.Contains(b, append(last[:45:45], '\n')) {
		t.Errorf("the fragment is not on a line of its own:\n%s", b)
	}
}

// A cluster node's index line carries the node and the lease epoch; both
// survive the round trip through the fast parser and the catalog.
func TestIndexLineKeepsNodeAndEpoch(t *testing.T) {
	start := time.Date(2026, 11, 26, 21, 5, 0, 0, time.UTC)
	for _, s := range []Segment{
		{Start: start, End: start.Add(time.Minute), Bytes: 10, SHA256: zeros64, Frames: 3, Codec: "h264", Node: "village-3", Epoch: 42},
		{Start: start, End: start.Add(time.Minute), Bytes: 10, SHA256: zeros64, Frames: 3, Codec: "h264"},
	} {
		line := marshalIndexLine(s, "21-05-00.000Z.mp4")
		if _, ok := parseIndexFast(bytes.TrimSpace(line)); !ok {
			t.Errorf("the fast parser refuses %s", line)
		}
		if s.Node == "" && bytes.Contains(line, []byte("node")) {
			t.Errorf("a single node's line names a node: %s", line)
		}
		got, err := parseIndexLine("gate", "2026-11-26", line)
		if err != nil {
			t.Fatal(err)
		}
		if got.Node != s.Node || got.Epoch != s.Epoch {
			t.Errorf("line %s read back node %q epoch %d", line, got.Node, got.Epoch)
		}
	}
}
