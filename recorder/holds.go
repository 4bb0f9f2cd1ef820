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
	"sync"
	"time"
)

// holdsFile is the hold log in the storage root; legacyHoldsFile is the
// whole-set JSON array earlier versions rewrote on every change, migrated
// into the log when the store opens.
const (
	holdsFile       = "holds.jsonl"
	legacyHoldsFile = "holds.json"
)

// compactMinRecords is the log length below which it is never compacted
// while running: rewriting a few hundred lines saves nothing.
const compactMinRecords = 1000

// Hold keeps a camera's recordings in [Start, End] from retention: an
// alert's clip range, or a range an investigator placed by hand (a manual
// hold, ID "m-<ulid>", see PlaceManualHold), kept as evidence. A zero End
// is open-ended (the alert is still active); a zero Until keeps the hold
// until it is released or updated; once Until has passed the hold drops.
type Hold struct {
	ID     string    `json:"id"`
	Camera string    `json:"camera"` // "" holds every camera
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"`
	Reason string    `json:"reason,omitempty"`
	Until  time.Time `json:"until,omitzero"`
	// Case, By and CreatedAt are set on manual holds: the case number,
	// who placed it and when.
	Case      string    `json:"case,omitempty"`
	By        string    `json:"by,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

func (h Hold) covers(s Segment) bool {
	if h.Camera != "" && h.Camera != s.Camera {
		return false
	}
	return s.End.After(h.Start) && (h.End.IsZero() || s.Start.Before(h.End))
}

func (h Hold) expired(now time.Time) bool { return !h.Until.IsZero() && !now.Before(h.Until) }

var errBadHold = errors.New("invalid hold")

// holdRecord is one line of the hold log: a put carries the whole hold
// (an upsert by ID), a remove only its ID.
type holdRecord struct {
	Op   string `json:"op"` // "put" or "remove"
	Hold *Hold  `json:"hold,omitempty"`
	ID   string `json:"id,omitempty"`
}

const (
	opPut    = "put"
	opRemove = "remove"
)

// holdStore keeps holds in memory and in an append-only JSON-lines log:
// every change appends one record and fsyncs once, so its cost does not
// grow with the number of holds. Replaying the log, the last record of an
// ID wins. The log is compacted, rewritten with one put per live hold and
// renamed into place, when the store opens and when it holds more than
// twice as many records as live holds.
type holdStore struct {
	path   string // the log
	legacy string // the old whole-set file, removed once migrated
	now    func() time.Time
	// fs writes the log: the recorder's, so that a full disk fails holds
	// as it fails segments (and tests can make it fail).
	fs FS

	// compactMin is the log length below which it is never compacted
	// while running; compactMinRecords but for tests.
	compactMin int

	mu      sync.Mutex
	holds   map[string]Hold
	records int // records in the log
	// rewrite means the log cannot take an append: its tail may be torn
	// by a failed write, or it does not yet hold the migrated legacy
	// holds. The next change compacts instead, and fails if that fails.
	rewrite bool
	// dirSynced is false while the log may exist only in an unsynced
	// directory entry: the first append that creates it syncs the directory.
	dirSynced  bool
	legacyLeft bool // legacy file still on disk
}

// openHolds loads the hold log at path, or migrates the legacy file beside
// it, and compacts. A torn last line, left by a crash during an append that
// therefore never returned, is ignored and truncated; a damaged line before
// intact ones is an error, as the store cannot tell which holds it lost.
// A compaction that fails (a full disk) does not fail the open: the holds
// are loaded and the next change retries it.
func openHolds(path string, now func() time.Time, fsys FS) (*holdStore, error) {
	s := &holdStore{
		path:       path,
		legacy:     filepath.Join(filepath.Dir(path), legacyHoldsFile),
		now:        now,
		fs:         fsys,
		compactMin: compactMinRecords,
		holds:      make(map[string]Hold),
	}
	logged := true
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		logged = false
	case err != nil:
		return nil, fmt.Errorf("holds: %w", err)
	}
	good := 0
	if logged {
		if good, err = s.replay(b); err != nil {
			return nil, fmt.Errorf("holds %s: %w", path, err)
		}
		s.dirSynced = true
	}

	lb, err := os.ReadFile(s.legacy)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("holds: %w", err)
	default:
		s.legacyLeft = true
		// a log beside the legacy file was made from it by a migration
		// that crashed before removing it, and has every change since
		if !logged {
			var list []Hold
			if err := json.Unmarshal(lb, &list); err != nil {
				return nil, fmt.Errorf("holds %s: %w", s.legacy, err)
			}
			for _, h := range list {
				s.holds[h.ID] = h
			}
			s.rewrite = true
		}
	}

	if !logged && !s.legacyLeft {
		return s, nil // nothing on disk; the first change creates the log
	}
	if err := s.compactLocked(); err == nil {
		return s, nil
	}
	// keep the log appendable without the compaction when the only damage
	// is a torn tail, which truncating removes without needing space
	if good < len(b) && !s.rewrite {
		if os.Truncate(path, int64(good)) != nil {
			s.rewrite = true
		}
	}
	return s, nil
}

// replay applies the log's records to s.holds and returns the length of
// its intact prefix. Lines after the last intact record that do not parse
// (or lack their newline) are a torn append and are ignored.
func (s *holdStore) replay(b []byte) (good int, err error) {
	var bad error
	badLine := 0
	off := 0
	for n := 1; off < len(b); n++ {
		end := bytes.IndexByte(b[off:], '\n')
		if end < 0 {
			break // torn: an append without its newline was never acknowledged
		}
		line := b[off : off+end]
		off += end + 1
		if len(bytes.TrimSpace(line)) == 0 {
			if bad == nil {
				good = off
			}
			continue
		}
		var rec holdRecord
		err := json.Unmarshal(line, &rec)
		if err == nil {
			err = rec.validate()
		}
		if err != nil {
			if bad == nil {
				bad, badLine = err, n
			}
			continue
		}
		if bad != nil {
			return 0, fmt.Errorf("line %d: %w", badLine, bad)
		}
		if rec.Op == opPut {
			s.holds[rec.Hold.ID] = *rec.Hold
		} else {
			delete(s.holds, rec.ID)
		}
		s.records++
		good = off
	}
	return good, nil
}

func (rec holdRecord) validate() error {
	switch {
	case rec.Op == opPut && rec.Hold != nil && rec.Hold.ID != "":
	case rec.Op == opRemove && rec.ID != "":
	default:
		return fmt.Errorf("bad hold record %q", rec.Op)
	}
	return nil
}

// active returns the holds whose Until has not passed and forgets the
// others; they leave the log at its next compaction.
func (s *holdStore) active() ([]Hold, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make([]Hold, 0, len(s.holds))
	for id, h := range s.holds {
		if h.expired(now) {
			delete(s.holds, id)
			continue
		}
		out = append(out, h)
	}
	return out, nil
}

func (s *holdStore) put(h Hold) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.holds[h.ID]
	s.holds[h.ID] = h
	if err := s.changeLocked(holdRecord{Op: opPut, Hold: &h}); err != nil {
		if had {
			s.holds[h.ID] = old
		} else {
			delete(s.holds, h.ID)
		}
		return err
	}
	return nil
}

func (s *holdStore) remove(id string) error {
	_, err := s.removeIf(id, nil)
	return err
}

// removeIf removes the hold id when it exists, has not expired, and ok
// (when not nil) accepts it; it returns the hold it looked at and
// errHoldNotFound when there was none.
func (s *holdStore) removeIf(id string, ok func(Hold) error) (Hold, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.holds[id]
	if !had || old.expired(s.now()) {
		return Hold{}, errHoldNotFound
	}
	if ok != nil {
		if err := ok(old); err != nil {
			return old, err
		}
	}
	delete(s.holds, id)
	if err := s.changeLocked(holdRecord{Op: opRemove, ID: id}); err != nil {
		s.holds[id] = old
		return old, err
	}
	return old, nil
}

// changeLocked makes rec, already applied to s.holds, durable: by one
// append, or by a compaction when the log cannot take an append. A
// compaction the log's growth calls for follows a successful append and
// its failure is left for the next change to retry.
func (s *holdStore) changeLocked(rec holdRecord) error {
	if s.rewrite {
		return s.compactLocked()
	}
	if err := s.appendLocked(rec); err != nil {
		return err
	}
	if s.records >= s.compactMin && s.records > 2*len(s.holds) {
		s.compactLocked()
	}
	return nil
}

func (s *holdStore) appendLocked(rec holdRecord) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	f, err := s.fs.Append(s.path)
	if err != nil {
		return fmt.Errorf("append hold log: %w", err)
	}
	_, err = f.Write(line)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !s.dirSynced {
		if err = s.fs.SyncDir(filepath.Dir(s.path)); err == nil {
			s.dirSynced = true
		}
	}
	if err != nil {
		// part of the line may be on disk: the next change rewrites the log
		s.rewrite = true
		return fmt.Errorf("append hold log: %w", err)
	}
	s.records++
	return nil
}

// compactLocked writes the live holds, oldest first, to a new log and
// renames it over the old one, dropping expired holds and superseded
// records; then it removes a migrated legacy file.
func (s *holdStore) compactLocked() error {
	now := s.now()
	live := make([]Hold, 0, len(s.holds))
	for id, h := range s.holds {
		if h.expired(now) {
			delete(s.holds, id)
			continue
		}
		live = append(live, h)
	}
	slices.SortFunc(live, func(a, b Hold) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // one record per line
	for i := range live {
		if err := enc.Encode(holdRecord{Op: opPut, Hold: &live[i]}); err != nil {
			return fmt.Errorf("compact hold log: %w", err)
		}
	}
	dir := filepath.Dir(s.path)
	if err := writeFileAtomicFS(s.fs, s.path, buf.Bytes()); err != nil {
		return fmt.Errorf("compact hold log: %w", err)
	}
	if err := s.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("compact hold log: %w", err)
	}
	s.records, s.rewrite, s.dirSynced = len(live), false, true
	if s.legacyLeft {
		// the log, durable above, now stands for the legacy file; its
		// removal is done once the directory is synced, else the next
		// compaction removes and syncs again (a crash before brings the
		// file back beside the log, which wins over it)
		if err := os.Remove(s.legacy); err == nil || errors.Is(err, fs.ErrNotExist) {
			s.legacyLeft = s.fs.SyncDir(dir) != nil
		}
	}
	return nil
}

// WriteFileAtomic writes b to path so that path holds either its old
// content or all of b after a crash: a synced temporary file renamed into
// place, then the directory synced (the rename is durable before, say,
// retention deletes what the new file no longer names).
func WriteFileAtomic(path string, b []byte) error {
	return writeFileAtomicFS(osFS{}, path, b)
}

// writeFileAtomicFS is WriteFileAtomic through fsys.
func writeFileAtomicFS(fsys FS, path string, b []byte) error {
	tmp := path + ".tmp"
	os.Remove(tmp) // left by a failed attempt
	f, err := fsys.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return fsys.SyncDir(filepath.Dir(path))
}

// Backoff of holds that could not be written (a full disk).
const (
	holdRetryMin = time.Second
	holdRetryMax = time.Minute
)

// PlaceHold adds or replaces (by ID) an evidence hold; it is on disk when
// PlaceHold returns nil. To end a hold at a time, place it again with Until.
// A hold that cannot be written (a full disk) is returned as an error and
// kept pending: retention honours it meanwhile, and Run retries writing it
// with backoff until it is placed, replaced or released.
func (r *Recorder) PlaceHold(ctx context.Context, h Hold) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.ID == "" || len(h.ID) > 200 {
		return fmt.Errorf("%w: id", errBadHold)
	}
	if IsManualHoldID(h.ID) {
		// manual holds have their own ID space and their own way in
		return fmt.Errorf("%w: id %q is a manual hold's", errBadHold, h.ID)
	}
	if h.Camera != "" && !ValidCameraID(h.Camera) {
		return fmt.Errorf("%w: camera %q", errBadHold, h.Camera)
	}
	if !h.End.IsZero() && h.End.Before(h.Start) {
		return fmt.Errorf("%w %s: end before start", errBadHold, h.ID)
	}
	h.Start, h.End, h.Until = h.Start.UTC(), h.End.UTC(), h.Until.UTC()
	r.holdMu.Lock()
	defer r.holdMu.Unlock()
	if err := r.holds.put(h); err != nil {
		r.pendingHolds[h.ID] = h
		select {
		case r.holdKick <- struct{}{}:
		default:
		}
		return fmt.Errorf("hold %s: %w (kept pending; retrying)", h.ID, err)
	}
	delete(r.pendingHolds, h.ID)
	return nil
}

// retryHolds writes the pending holds, with backoff from holdRetryMin to
// holdRetryMax, until none is left; then it waits for the next failure.
func (r *Recorder) retryHolds(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.holdKick:
		}
		for delay := holdRetryMin; ; delay = min(2*delay, holdRetryMax) {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if r.placePending() == 0 {
				break
			}
		}
	}
}

// placePending tries to write each pending hold and returns how many are
// still pending.
func (r *Recorder) placePending() int {
	r.holdMu.Lock()
	defer r.holdMu.Unlock()
	var last error
	for id, h := range r.pendingHolds {
		if err := r.holds.put(h); err != nil {
			last = err
			continue
		}
		delete(r.pendingHolds, id)
		r.log.Info("evidence hold placed after a retry", "hold", id, "camera", h.Camera)
	}
	if n := len(r.pendingHolds); n > 0 {
		r.log.Warn("evidence holds still pending", "holds", n, "error", last)
		return n
	}
	return 0
}

// pending returns the holds waiting to be written.
func (r *Recorder) pending() []Hold {
	r.holdMu.Lock()
	defer r.holdMu.Unlock()
	out := make([]Hold, 0, len(r.pendingHolds))
	for _, h := range r.pendingHolds {
		out = append(out, h)
	}
	return out
}

// ReleaseHold removes a hold at once; releasing an unknown ID is not an error.
func (r *Recorder) ReleaseHold(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.holdMu.Lock()
	delete(r.pendingHolds, id)
	r.holdMu.Unlock()
	if err := r.holds.remove(id); err != nil && !errors.Is(err, errHoldNotFound) {
		return fmt.Errorf("hold %s: %w", id, err)
	}
	return nil
}

// Holds returns the holds in force.
func (r *Recorder) Holds() ([]Hold, error) { return r.holds.active() }
