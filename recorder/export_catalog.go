package recorder

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// OpenCatalog returns a read-only catalog of the recordings in dir, for
// tools that run beside the service (vigil export). Unlike New it repairs
// nothing and takes no lock, so it never touches a segment the service is
// writing. It lists the indexed segments and, as the service does, the
// segment being written: the newest file of a camera's last day that no
// index line names yet, up to its last complete part (Segment.Open).
func OpenCatalog(dir string, log *slog.Logger) *Catalog {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := newCatalog(dir, log)
	c.open = func(camera string) (Segment, bool) { return scanOpenSegment(dir, camera) }
	return c
}

// scanOpenSegment finds the segment another process is writing for camera
// and describes its complete parts as they are on disk now.
func scanOpenSegment(dir, camera string) (Segment, bool) {
	days, err := listDays(filepath.Join(dir, camera))
	if err != nil || len(days) == 0 {
		return Segment{}, false
	}
	day := days[len(days)-1]
	folder := filepath.Join(dir, camera, day)
	entries, err := os.ReadDir(folder)
	if err != nil {
		return Segment{}, false
	}
	newest := ""
	for _, e := range entries {
		if !e.IsDir() && validFileName(e.Name()) {
			newest = max(newest, e.Name())
		}
	}
	if newest == "" {
		return Segment{}, false
	}
	if last, err := lastIndexedFile(filepath.Join(folder, indexFile)); err != nil || last >= newest {
		return Segment{}, false // every file is indexed
	}
	path := filepath.Join(folder, newest)
	b, err := os.ReadFile(path)
	if err != nil {
		return Segment{}, false
	}
	res, err := scanSegment(b)
	if err != nil || res.Frames == 0 {
		return Segment{}, false
	}
	id := segmentID(day, newest)
	_, _, start, err := ParseSegmentID(id)
	if err != nil {
		return Segment{}, false
	}
	sum := sha256.Sum256(b[:res.Valid])
	return Segment{
		ID: id, Camera: camera, Start: start, End: start.Add(res.Duration).Truncate(time.Millisecond),
		Bytes: res.Valid, SHA256: hex.EncodeToString(sum[:]), Frames: res.Frames, Codec: res.Codec,
		Path: path, Open: true,
	}, true
}
