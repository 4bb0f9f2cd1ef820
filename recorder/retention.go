package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Retention reasons, the label of vigil_retention_deleted_segments_total.
const (
	ReasonAge      = "age"
	ReasonMaxBytes = "max_bytes"
	ReasonMinFree  = "min_free"
)

func statfs(dir string) (free, total int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), nil
}

// Sweep applies retention once: it deletes, oldest first, the segments
// older than their camera's retention, then as many as needed to bring the
// total under MaxBytes and the free space over MinFreeBytes. It never
// deletes a segment that overlaps a hold in force, nor the segment being
// written. Run calls it periodically.
func (r *Recorder) Sweep(ctx context.Context) error {
	now := r.now()
	holds, err := r.holds.active()
	if err != nil {
		r.log.Warn("cannot save holds after dropping expired ones", "error", err)
	}
	for _, h := range r.pending() { // not on disk yet, in force all the same
		if !h.expired(now) {
			holds = append(holds, h)
		}
	}
	held := func(s Segment) bool {
		for _, h := range holds {
			if h.covers(s) {
				return true
			}
		}
		return false
	}
	cams, err := r.cameraDirs()
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	type camDay struct{ camera, day string }
	var all []camDay
	var used int64
	for _, cam := range cams {
		days, err := listDays(filepath.Join(r.opts.Dir, cam))
		if err != nil {
			return fmt.Errorf("sweep: camera %s: %w", cam, err)
		}
		for _, d := range days {
			if err := ctx.Err(); err != nil {
				return err
			}
			b, err := r.dayBytes(cam, d)
			if err != nil {
				return fmt.Errorf("sweep: %w", err)
			}
			used += b
			all = append(all, camDay{cam, d})
		}
	}
	var errs []error

	// by age, per camera
	for _, cd := range all {
		retain := r.retainFor(cd.camera)
		if retain <= 0 {
			continue // kept until space runs out
		}
		cutoff := now.Add(-retain).UTC()
		if cd.day > cutoff.Format(dayLayout) {
			continue
		}
		segs, err := readDayIndex(r.opts.Dir, cd.camera, cd.day, r.log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var victims []victim
		for _, s := range segs {
			if !s.End.After(cutoff) && !held(s) {
				victims = append(victims, victim{s, ReasonAge})
			}
		}
		n, err := r.deleteSegments(cd.camera, cd.day, victims, now)
		used -= n
		errs = append(errs, err)
	}

	// by space, globally oldest first
	free, _, ferr := r.opts.Statfs(r.opts.Dir)
	if ferr != nil && r.opts.MinFreeBytes > 0 {
		errs = append(errs, fmt.Errorf("statfs: %w", ferr))
	}
	over := func() string {
		switch {
		case r.opts.MaxBytes > 0 && used > r.opts.MaxBytes:
			return ReasonMaxBytes
		case r.opts.MinFreeBytes > 0 && ferr == nil && free < r.opts.MinFreeBytes:
			return ReasonMinFree
		}
		return ""
	}
	slices.SortFunc(all, func(a, b camDay) int {
		if c := strings.Compare(a.day, b.day); c != 0 {
			return c
		}
		return strings.Compare(a.camera, b.camera)
	})
	for i := 0; i < len(all) && over() != ""; {
		// every camera's segments of the oldest day left, merged by start
		j := i
		var segs []Segment
		for ; j < len(all) && all[j].day == all[i].day; j++ {
			s, err := readDayIndex(r.opts.Dir, all[j].camera, all[j].day, r.log)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			segs = append(segs, s...)
		}
		slices.SortFunc(segs, func(a, b Segment) int { return a.Start.Compare(b.Start) })
		victims := map[string][]victim{}
		for _, s := range segs {
			reason := over()
			if reason == "" {
				break
			}
			if held(s) {
				continue
			}
			victims[s.Camera] = append(victims[s.Camera], victim{s, reason})
			used -= s.Bytes
			free += s.Bytes
		}
		for cam, v := range victims {
			_, err := r.deleteSegments(cam, all[i].day, v, now)
			errs = append(errs, err)
		}
		i = j
	}
	if ferr == nil {
		free, _, ferr = r.opts.Statfs(r.opts.Dir)
	}
	r.m.used.Set(float64(max(used, 0)))
	if ferr == nil {
		r.m.free.Set(float64(free))
		if r.opts.MinFreeBytes > 0 {
			r.health("", HealthStorageFull, free < r.opts.MinFreeBytes, fmt.Sprintf("%d bytes free, below min_free_bytes after retention", free))
		}
	}
	return errors.Join(errs...)
}

type victim struct {
	seg    Segment
	reason string
}

func (r *Recorder) cameraDirs() ([]string, error) {
	entries, err := os.ReadDir(r.opts.Dir)
	if err != nil {
		return nil, err
	}
	var cams []string
	for _, e := range entries {
		if e.IsDir() && ValidCameraID(e.Name()) {
			cams = append(cams, e.Name())
		}
	}
	return cams, nil
}

// dayBytes returns the indexed bytes of one camera-day, reading its index
// the first time and following appends and deletions after that.
func (r *Recorder) dayBytes(camera, day string) (int64, error) {
	k := dayKey{camera, day}
	r.usageMu.Lock()
	b, ok := r.usage[k]
	r.usageMu.Unlock()
	if ok {
		return b, nil
	}
	r.indexMu.Lock() // no append between reading and recording the sum
	defer r.indexMu.Unlock()
	segs, err := readDayIndex(r.opts.Dir, camera, day, r.log)
	if err != nil {
		return 0, err
	}
	for _, s := range segs {
		b += s.Bytes
	}
	r.usageMu.Lock()
	r.usage[k] = b
	r.usageMu.Unlock()
	return b, nil
}

func (r *Recorder) addUsage(camera, day string, delta int64) {
	r.usageMu.Lock()
	if b, ok := r.usage[dayKey{camera, day}]; ok {
		r.usage[dayKey{camera, day}] = b + delta
	}
	r.usageMu.Unlock()
}

// deleteSegments removes victims of one camera-day: first their index
// lines (the index is rewritten and renamed into place, so a crash leaves
// at worst an unlisted file), then their files. It returns the bytes freed.
func (r *Recorder) deleteSegments(camera, day string, victims []victim, now time.Time) (int64, error) {
	if len(victims) == 0 {
		return 0, nil
	}
	drop := make(map[string]bool, len(victims))
	for _, v := range victims {
		drop[segmentFileName(v.seg.ID)] = true
	}
	dir := filepath.Join(r.opts.Dir, camera, day)
	path := filepath.Join(dir, indexFile)
	r.indexMu.Lock()
	b, err := os.ReadFile(path)
	if err != nil {
		r.indexMu.Unlock()
		return 0, fmt.Errorf("camera %s: retention %s: %w", camera, day, err)
	}
	var keep bytes.Buffer
	kept := 0
	for _, line := range bytes.SplitAfter(b, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if f := lineFile(line); f != "" && drop[f] {
			continue
		}
		keep.Write(line)
		if line[len(line)-1] != '\n' {
			keep.WriteByte('\n')
		}
		kept++
	}
	err = WriteFileAtomic(path, keep.Bytes())
	r.catalog.invalidate(camera, day)
	r.indexMu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("camera %s: retention %s: %w", camera, day, err)
	}
	var freed int64
	var errs []error
	for _, v := range victims {
		err := os.Remove(filepath.Join(dir, segmentFileName(v.seg.ID)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		freed += v.seg.Bytes
		r.m.deleted.WithLabelValues(v.reason).Inc()
		r.catalog.damage.forget(camera, v.seg.ID)
	}
	r.addUsage(camera, day, -freed)
	// an emptied old day folder goes; today's and yesterday's stay, as a
	// writer may be about to create a segment in them
	if kept == 0 && day < now.UTC().Add(-48*time.Hour).Format(dayLayout) {
		os.Remove(path)
		if os.Remove(dir) == nil {
			r.usageMu.Lock()
			delete(r.usage, dayKey{camera, day})
			r.usageMu.Unlock()
		}
	}
	r.log.Info("retention deleted segments", "camera", camera, "day", day, "segments", len(victims), "bytes", freed, "reason", victims[0].reason)
	return freed, errors.Join(errs...)
}

func lineFile(line []byte) string {
	var rec struct {
		File string `json:"file"`
	}
	if json.Unmarshal(line, &rec) != nil {
		return ""
	}
	return rec.File
}
