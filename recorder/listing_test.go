package recorder

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestListSeesAppendToTheDayBefore: the day before's last segment, read
// from its index's tail and cached, is replaced by one appended later.
func TestListSeesAppendToTheDayBefore(t *testing.T) {
	dir := t.TempDir()
	if err := writeCatalog(dir, 1, false); err != nil {
		t.Fatal(err)
	}
	c := OpenCatalog(dir, nil)
	day := benchEnd.Add(-24 * time.Hour)
	prevDay := day.Add(-24 * time.Hour).Format(dayLayout)
	segs, _, err := c.List("cam-000", day, day.Add(time.Minute))
	if err != nil || len(segs) != 2 { // 00:00 and the one starting at 00:01
		t.Fatalf("%d segments, %v", len(segs), err)
	}
	start := day.Add(-30 * time.Second)
	s := Segment{Start: start, End: start.Add(time.Minute), Bytes: 1, SHA256: zeros64, Frames: 1, Codec: "h264"}
	_, file := fileNames(start)
	f, err := os.OpenFile(filepath.Join(dir, "cam-000", prevDay, indexFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(marshalIndexLine(s, file))
	f.Close()
	s.ID, s.Camera = segmentID(prevDay, file), "cam-000"
	c.appended("cam-000", prevDay, s)
	segs, _, err = c.List("cam-000", day, day.Add(time.Minute))
	if err != nil || len(segs) != 3 || segs[0].ID != s.ID {
		t.Fatalf("%d segments (first %v), %v; want the appended %s first", len(segs), segs[0].ID, err, s.ID)
	}
}
