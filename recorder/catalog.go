package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

const (
	indexFile = "index.jsonl"
	// maxCachedDays bounds the catalog cache (one camera-day of 1-minute
	// segments is about 1,440 entries).
	maxCachedDays = 512
)

// Catalog lists a camera's segments and the gaps between them. It reads
// only the day indexes a range touches (and the day before, for a segment
// crossing midnight), and caches each camera-day until an append or a
// retention sweep changes it.
type Catalog struct {
	dir string
	log *slog.Logger

	mu   sync.Mutex
	days map[dayKey][]Segment // sorted by Start
	// tails holds the last segment of days read only by their tail: every
	// listing starting at midnight asks for the day before's.
	tails map[dayKey]Segment
	// gen counts appends and invalidations: a day read from disk is
	// cached only if none happened meanwhile, or the cache would keep a
	// day from before the append.
	gen uint64

	damage *damageBook

	// open returns the segment camera is writing, if any, with its
	// flushed parts (Segment.Open); nil lists indexed segments only.
	open func(camera string) (Segment, bool)
	// started returns the start of the segment camera is writing, also
	// before its first part is flushed (when open has none yet); nil
	// treats every camera without an open segment as not recording.
	started func(camera string) (time.Time, bool)
	// now ends an ongoing outage's gap in listings; default time.Now.
	now func() time.Time
}

type dayKey struct{ camera, day string }

func newCatalog(dir string, log *slog.Logger) *Catalog {
	return &Catalog{dir: dir, log: log, days: make(map[dayKey][]Segment), tails: make(map[dayKey]Segment), damage: openDamageBook(dir), now: time.Now}
}

// List returns camera's segments that overlap [start, end], oldest first,
// the segment being written included (Open, up to its last flushed part),
// and the gaps between consecutive ones: a span where the camera was not
// recorded (disconnect, dropped media, a failed write). When the camera is
// not recording, the span from its last segment to the end of the range
// or now, whichever is first, is a gap too: an ongoing outage. A segment
// started but without a part on disk yet ends that gap where it starts: a
// segment closed at a keyframe hands over to the next one with no break,
// and the second or so until the next one's first part is not an outage.
func (c *Catalog) List(camera string, start, end time.Time) ([]Segment, []Gap, error) {
	segs, gaps, err := c.list(camera, start, end)
	if err != nil || len(segs) == 0 {
		return segs, gaps, err
	}
	last := segs[len(segs)-1]
	stop := minTime(end, c.now())
	if c.started != nil && !last.Open {
		if s, ok := c.started(camera); ok {
			stop = minTime(stop, s)
		}
	}
	if !last.Open && last.End.Before(stop) {
		gaps = append(gaps, Gap{Start: last.End, End: stop})
	}
	return segs, gaps, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// list is List without the ongoing outage: exports add the range's
// missing end themselves.
func (c *Catalog) list(camera string, start, end time.Time) ([]Segment, []Gap, error) {
	if !ValidCameraID(camera) {
		return nil, nil, fmt.Errorf("camera %q: %w", camera, errBadCameraID)
	}
	if end.Before(start) {
		return nil, nil, fmt.Errorf("camera %s: list: end before start", camera)
	}
	first := start.UTC().Truncate(24 * time.Hour)
	var segs []Segment
	// the day before can only contribute its segment crossing midnight
	if prev, err := c.lastOfDay(camera, first.Add(-24*time.Hour).Format(dayLayout)); err != nil {
		return nil, nil, err
	} else if prev.ID != "" && prev.End.After(start) && !prev.Start.After(end) {
		segs = append(segs, prev)
	}
	for d := first; !d.After(end.UTC()); d = d.Add(24 * time.Hour) {
		day, err := c.day(camera, d.Format(dayLayout))
		if err != nil {
			return nil, nil, err
		}
		if segs == nil {
			segs = make([]Segment, 0, len(day)+1)
		}
		for _, s := range day {
			if s.End.After(start) && !s.Start.After(end) || s.Start.Equal(start) {
				segs = append(segs, s)
			}
		}
	}
	if c.open != nil {
		// the newest segment of all; an indexed copy means it just closed
		if o, ok := c.open(camera); ok && o.End.After(start) && !o.Start.After(end) &&
			(len(segs) == 0 || segs[len(segs)-1].Start.Before(o.Start)) {
			segs = append(segs, o)
		}
	}
	c.markDamage(segs)
	// days are sorted and each day's segments start on that day: segs is in order
	var gaps []Gap
	for i := 1; i < len(segs); i++ {
		if prev := segs[i-1].End; segs[i].Start.After(prev) {
			gaps = append(gaps, Gap{Start: prev, End: segs[i].Start})
		}
	}
	return segs, gaps, nil
}

// Segment returns one segment by its ID.
func (c *Catalog) Segment(camera, id string) (Segment, error) {
	if !ValidCameraID(camera) {
		return Segment{}, fmt.Errorf("camera %q: %w", camera, errBadCameraID)
	}
	day, _, _, err := ParseSegmentID(id)
	if err != nil {
		return Segment{}, err
	}
	segs, err := c.day(camera, day)
	if err != nil {
		return Segment{}, err
	}
	for _, s := range segs {
		if s.ID == id {
			one := []Segment{s}
			c.markDamage(one)
			return one[0], nil
		}
	}
	if c.open != nil {
		if o, ok := c.open(camera); ok && o.ID == id {
			one := []Segment{o}
			c.markDamage(one)
			return one[0], nil
		}
	}
	return Segment{}, fmt.Errorf("camera %s: segment %s: %w", camera, id, fs.ErrNotExist)
}

// markDamage sets the Damage of the segments found damaged since they were
// indexed; segs are the caller's copies.
func (c *Catalog) markDamage(segs []Segment) {
	b := c.damage
	if b == nil || len(segs) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.m) == 0 {
		return
	}
	for i := range segs {
		if segs[i].Damage == "" {
			segs[i].Damage = b.m[segs[i].Camera+"/"+segs[i].ID]
		}
	}
}

// ReportDamaged records that seg failed its integrity check with err (an
// *IntegrityError); the recorder counts it and raises the
// recording_tampered alert the first time. Readers of footage (downloads,
// exports, the verifier) call it.
func (c *Catalog) ReportDamaged(err error) {
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Known || ie.reported {
		return
	}
	ie.reported = true
	if c.damage.found(ie.Camera, ie.Segment, ie.Reason) {
		c.log.Error("recording failed its integrity check", "camera", ie.Camera, "segment", ie.Segment, "reason", ie.Reason)
	}
}

// lastOfDay returns the latest segment of a camera-day, from the cache or
// the tail of its index.
func (c *Catalog) lastOfDay(camera, day string) (Segment, error) {
	k := dayKey{camera, day}
	c.mu.Lock()
	segs, ok := c.days[k]
	last, lastOK := c.tails[k]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		if len(segs) == 0 {
			return Segment{}, nil
		}
		return segs[len(segs)-1], nil
	}
	if lastOK {
		return last, nil
	}
	path := filepath.Join(c.dir, camera, day, indexFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Segment{}, nil
	}
	if err != nil {
		return Segment{}, fmt.Errorf("camera %s: read index %s: %w", camera, day, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Segment{}, fmt.Errorf("camera %s: read index %s: %w", camera, day, err)
	}
	const tail = 16 << 10
	if st.Size() > tail*4 { // a long day: its last lines suffice
		off := st.Size() - tail
		buf := make([]byte, tail)
		if _, err := f.ReadAt(buf, off); err != nil {
			return Segment{}, fmt.Errorf("camera %s: read index %s: %w", camera, day, err)
		}
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:] // drop the partial first line
		}
		var last Segment
		for _, line := range bytes.Split(buf, []byte{'\n'}) {
			if s, err := parseIndexLine(camera, day, line); err == nil && !s.Start.Before(last.Start) {
				s.Path = filepath.Join(c.dir, camera, day, segmentFileName(s.ID))
				last = s
			}
		}
		c.mu.Lock()
		if c.gen == gen {
			if len(c.tails) >= maxCachedDays {
				for old := range c.tails { // drop any one entry
					delete(c.tails, old)
					break
				}
			}
			c.tails[k] = last
		}
		c.mu.Unlock()
		return last, nil
	}
	segs, err = c.day(camera, day)
	if err != nil || len(segs) == 0 {
		return Segment{}, err
	}
	return segs[len(segs)-1], nil
}

// day returns the cached or freshly read segments of one camera-day. The
// slice is shared: callers must not modify it.
func (c *Catalog) day(camera, day string) ([]Segment, error) {
	k := dayKey{camera, day}
	c.mu.Lock()
	segs, ok := c.days[k]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return segs, nil
	}
	segs, err := readDayIndex(c.dir, camera, day, c.log)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return segs, nil // fresh for this caller; the next one reads again
	}
	if len(c.days) >= maxCachedDays {
		for old := range c.days { // drop any one entry
			delete(c.days, old)
			break
		}
	}
	c.days[k] = segs
	return segs, nil
}

// appended adds a freshly indexed segment to a cached day.
func (c *Catalog) appended(camera, day string, s Segment) {
	s.Start, s.End = s.Start.Truncate(time.Millisecond), s.End.Truncate(time.Millisecond)
	k := dayKey{camera, day}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.tails, k)
	segs, ok := c.days[k]
	if !ok {
		return
	}
	// copy on write: readers may hold the old slice
	n := slices.Clone(segs)
	i, _ := slices.BinarySearchFunc(n, s, func(a, b Segment) int { return a.Start.Compare(b.Start) })
	c.days[k] = slices.Insert(n, i, s)
}

func (c *Catalog) invalidate(camera, day string) {
	c.mu.Lock()
	c.gen++
	delete(c.days, dayKey{camera, day})
	delete(c.tails, dayKey{camera, day})
	c.mu.Unlock()
}

// readDayIndex parses <dir>/<camera>/<day>/index.jsonl. A missing index is
// an empty day; damaged lines are skipped and logged.
func readDayIndex(dir, camera, day string, log *slog.Logger) ([]Segment, error) {
	path := filepath.Join(dir, camera, day, indexFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("camera %s: read index %s: %w", camera, day, err)
	}
	lines := bytes.Count(b, []byte{'\n'}) + 1
	segs := make([]Segment, 0, lines)
	// The day's IDs, hashes and paths are cut from one string, built in
	// one allocation instead of three per segment: a cold day of 1,440
	// segments was mostly allocation and GC. A segment kept after its day
	// left the cache keeps that string (about 200 bytes a segment) alive.
	prefix := filepath.Join(dir, camera, day) + string(filepath.Separator)
	const fileLen = len("15-04-05.000Z.mp4")
	idLen := len(day) + len("T15-04-05.000Z")
	stride := idLen + 64 + len(prefix) + fileLen
	arena := make([]byte, 0, lines*stride)
	bad := 0
	node := "" // the node of the last line: one node writes a day's lines, mostly
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f, err := parseIndexFields(line)
		if err != nil {
			bad++
			continue
		}
		arena = append(arena, day...)
		arena = append(arena, 'T')
		arena = append(arena, f.file[:fileLen-len(".mp4")]...)
		arena = append(arena, f.sha256...)
		arena = append(arena, prefix...)
		arena = append(arena, f.file...)
		if string(f.node) != node {
			node = string(f.node)
		}
		segs = append(segs, Segment{
			Camera: camera, Start: f.start, End: f.end, Bytes: f.bytes,
			Frames: f.frames, Codec: internCodec(f.codec), Node: node, Epoch: f.epoch,
		})
	}
	strs := string(arena)
	for i := range segs {
		s := strs[i*stride : (i+1)*stride]
		segs[i].ID, segs[i].SHA256, segs[i].Path = s[:idLen], s[idLen:idLen+64], s[idLen+64:]
	}
	if bad > 0 && log != nil {
		log.Warn("skipped damaged index lines", "camera", camera, "day", day, "lines", bad)
	}
	byStart := func(a, b Segment) int { return a.Start.Compare(b.Start) }
	if !slices.IsSortedFunc(segs, byStart) {
		slices.SortFunc(segs, byStart)
	}
	// a line retried after a failed append may appear twice
	segs = slices.CompactFunc(segs, func(a, b Segment) bool { return a.ID == b.ID })
	segs, err = appendUnindexed(dir, camera, day, segs, bad, log)
	if err != nil {
		return nil, err
	}
	return segs, nil
}

// appendUnindexed adds to a day's indexed segments the files of its folder
// that no valid index line names, marked damaged, so that a damaged index
// line shows as a damaged segment rather than a gap and retention deletes
// the file at its age limit. A file newer than every indexed one may be the
// segment being written or one waiting for its index line: it is left out,
// unless damaged lines say the index lost lines, and even then the newest
// such file is left out.
func appendUnindexed(dir, camera, day string, segs []Segment, bad int, log *slog.Logger) ([]Segment, error) {
	folder := filepath.Join(dir, camera, day)
	entries, err := os.ReadDir(folder)
	if errors.Is(err, fs.ErrNotExist) {
		return segs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("camera %s: read day %s: %w", camera, day, err)
	}
	if len(entries) <= len(segs)+1 { // index.jsonl and one file per line: nothing unindexed
		return segs, nil
	}
	indexed := make(map[string]bool, len(segs))
	newest := ""
	for _, s := range segs {
		indexed[s.ID] = true
		newest = max(newest, s.ID)
	}
	var extra []Segment
	for _, e := range entries { // sorted by name, and names sort by time
		name := e.Name()
		if e.IsDir() || !validFileName(name) {
			continue
		}
		id := segmentID(day, name)
		if indexed[id] {
			continue
		}
		if id > newest && bad == 0 {
			continue
		}
		_, _, start, err := ParseSegmentID(id)
		if err != nil {
			continue
		}
		s := Segment{ID: id, Camera: camera, Start: start, End: start, Path: filepath.Join(folder, name), Damage: unindexedReason(bad)}
		if b, err := os.ReadFile(s.Path); err == nil {
			s.Bytes = int64(len(b))
			if res, err := scanSegment(b); err == nil {
				s.End, s.Frames, s.Codec = start.Add(res.Duration), res.Frames, res.Codec
			}
		}
		extra = append(extra, s)
	}
	if bad > 0 && len(extra) > 0 && extra[len(extra)-1].ID > newest {
		extra = extra[:len(extra)-1] // maybe still being written
	}
	if len(extra) == 0 {
		return segs, nil
	}
	if log != nil {
		log.Warn("files without an index line listed as damaged", "camera", camera, "day", day, "files", len(extra))
	}
	segs = append(segs, extra...)
	slices.SortFunc(segs, func(a, b Segment) int { return a.Start.Compare(b.Start) })
	return segs, nil
}

func segmentFileName(id string) string {
	return id[len("2006-01-02T"):] + ".mp4"
}
