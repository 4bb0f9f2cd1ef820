package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// scanResult describes the playable prefix of a segment file.
type scanResult struct {
	Valid    int64 // bytes up to the end of the last complete moof+mdat
	Frames   int
	Duration time.Duration
	Codec    string
}

var errNoInit = errors.New("no complete init segment")

// scanSegment walks an fMP4 segment box by box and finds where its last
// complete part ends: a trailing moof without its full mdat, a truncated
// box or anything unexpected ends the playable prefix. It never panics on
// arbitrary input.
func scanSegment(b []byte) (res scanResult, err error) {
	defer func() {
		if p := recover(); p != nil { // a parser bug must not stop the recorder
			res, err = scanResult{}, fmt.Errorf("scan segment: %v", p)
		}
	}()
	type span struct{ start, end int }
	var parts []span
	initEnd, moof := -1, -1
	pos := 0
walk:
	for len(b)-pos >= 8 {
		size := uint64(binary.BigEndian.Uint32(b[pos:]))
		typ := string(b[pos+4 : pos+8])
		hdr := uint64(8)
		if size == 1 {
			if len(b)-pos < 16 {
				break
			}
			size, hdr = binary.BigEndian.Uint64(b[pos+8:]), 16
		}
		if size < hdr || size > uint64(len(b)-pos) {
			break // size 0 (to end of file), garbage or truncated
		}
		end := pos + int(size)
		switch typ {
		case "ftyp":
			if pos != 0 {
				break walk
			}
		case "moov":
			if initEnd >= 0 || pos == 0 {
				break walk
			}
			initEnd = end
		case "moof":
			if initEnd < 0 || moof >= 0 {
				break walk
			}
			moof = pos
		case "mdat":
			if moof < 0 {
				break walk
			}
			parts = append(parts, span{moof, end})
			moof = -1
		default:
			break walk
		}
		pos = end
	}
	if initEnd < 0 {
		return scanResult{}, errNoInit
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b[:initEnd])); err != nil {
		return scanResult{}, fmt.Errorf("init segment: %w", err)
	}
	video := init.Tracks[0]
	res.Codec = codecName(init.Tracks)
	for _, t := range init.Tracks {
		if t.Codec != nil && t.Codec.IsVideo() {
			video = t
			break
		}
	}
	res.Valid = int64(initEnd)
	var endTicks uint64
	for _, p := range parts {
		var ps fmp4.Parts
		if err := ps.Unmarshal(b[p.start:p.end]); err != nil {
			break
		}
		for _, part := range ps {
			for _, t := range part.Tracks {
				if t.ID != video.ID {
					continue
				}
				e := t.BaseTime
				for _, s := range t.Samples {
					e += uint64(s.Duration)
				}
				res.Frames += len(t.Samples)
				endTicks = max(endTicks, e)
			}
		}
		res.Valid = int64(p.end)
	}
	if video.TimeScale > 0 {
		res.Duration = ticksToDuration(endTicks, uint64(video.TimeScale))
	}
	return res, nil
}

func codecName(tracks []*fmp4.InitTrack) string {
	var names []string
	for _, t := range tracks {
		switch t.Codec.(type) {
		case *fmp4.CodecH264:
			names = append(names, "h264")
		case *fmp4.CodecH265:
			names = append(names, "h265")
		case *fmp4.CodecMPEG4Audio:
			names = append(names, "aac")
		case *fmp4.CodecLPCM:
			names = append(names, "g711")
		}
	}
	return strings.Join(names, "+")
}

// recoverAll looks, for every camera, at the newest day folders for
// segments written after the last index line (the one being written at a
// crash) and repairs them.
func (r *Recorder) recoverAll() error {
	entries, err := os.ReadDir(r.opts.Dir)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !ValidCameraID(e.Name()) {
			continue
		}
		if err := r.recoverCamera(e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Recorder) recoverCamera(camera string) error {
	days, err := listDays(filepath.Join(r.opts.Dir, camera))
	if err != nil {
		return fmt.Errorf("camera %s: recover: %w", camera, err)
	}
	// newest first; stop at the first day that has index lines
	for i := len(days) - 1; i >= 0 && i >= len(days)-2; i-- {
		day := days[i]
		dir := filepath.Join(r.opts.Dir, camera, day)
		last, err := lastIndexedFile(filepath.Join(dir, indexFile))
		if err != nil {
			return fmt.Errorf("camera %s: recover %s: %w", camera, day, err)
		}
		files, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("camera %s: recover %s: %w", camera, day, err)
		}
		for _, f := range files { // ReadDir sorts by name, and names sort by time
			name := f.Name()
			if !fileNamePattern.MatchString(name) || name <= last {
				continue
			}
			if err := r.recoverSegment(camera, day, name); err != nil {
				r.log.Error("cannot recover segment", "camera", camera, "file", filepath.Join(day, name), "error", err)
			}
		}
		if last != "" {
			break
		}
	}
	return nil
}

// recoverSegment truncates a segment to its last complete part, hashes and
// indexes it; a segment without one complete part is removed.
func (r *Recorder) recoverSegment(camera, day, name string) error {
	s, ok, err := r.repairSegment(camera, day, name)
	if err != nil || !ok {
		return err
	}
	if err := r.appendIndex(s); err != nil {
		return err
	}
	r.log.Info("recovered segment cut by a crash", "camera", camera, "segment", s.ID, "frames", s.Frames, "bytes", s.Bytes)
	return nil
}

// repairSegment reads back a segment whose index line is missing and
// makes it whole: it truncates the file to its last complete part, fsyncs
// it and describes it, with the SHA-256 of the bytes on disk. A segment
// without one complete part is removed, and ok is false.
func (r *Recorder) repairSegment(camera, day, name string) (s Segment, ok bool, err error) {
	path := filepath.Join(r.opts.Dir, camera, day, name)
	b, err := os.ReadFile(path)
	if err != nil {
		return Segment{}, false, err
	}
	res, err := scanSegment(b)
	if err == nil && res.Frames == 0 {
		err = errors.New("no complete part")
	}
	if err != nil {
		r.log.Warn("removing unplayable unindexed segment", "camera", camera, "file", filepath.Join(day, name), "error", err)
		return Segment{}, false, os.Remove(path)
	}
	if res.Valid < int64(len(b)) {
		if err := os.Truncate(path, res.Valid); err != nil {
			return Segment{}, false, err
		}
		b = b[:res.Valid]
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return Segment{}, false, err
	}
	id := segmentID(day, name)
	_, _, start, err := ParseSegmentID(id)
	if err != nil {
		return Segment{}, false, err
	}
	sum := sha256.Sum256(b)
	return Segment{
		ID: id, Camera: camera, Start: start, End: start.Add(res.Duration),
		Bytes: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Frames: res.Frames, Codec: res.Codec, Path: path,
		Node: r.opts.Node, // the epoch it was recorded under is lost with its index line
	}, true, nil
}

func listDays(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var days []string
	for _, e := range entries {
		if e.IsDir() && dayPattern.MatchString(e.Name()) {
			days = append(days, e.Name())
		}
	}
	slices.Sort(days)
	return days, nil
}

// lastIndexedFile returns the file named by the last complete line of an
// index, reading only its tail; "" when there is none.
func lastIndexedFile(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	const tail = 16 << 10
	off := max(st.Size()-tail, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	best := ""
	for _, line := range bytes.Split(buf, []byte{'\n'}) {
		var rec struct {
			File string `json:"file"`
		}
		if json.Unmarshal(line, &rec) == nil && fileNamePattern.MatchString(rec.File) && rec.File > best {
			best = rec.File
		}
	}
	return best, nil
}
