package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"vigil/alerts"
	"vigil/recorder"
)

// auditSpoolInterval is how often Run retries while entries an older
// version left in the local audit file have not reached the journal.
const auditSpoolInterval = 2 * time.Second

// auditSpool is where footage audit entries (downloads, exports, holds,
// snapshots) go: each is handed to the journal's audit log with its ID in
// Detail[alerts.AuditIDKey]. Through a Redis outage the Redis journal keeps
// them in its own spool, beside its changes, and appends each once per ID
// when Redis is back; the embedded journal writes them at once. So there is
// one outage spool, the journal's.
//
// Versions before that kept their own spool, an append-only JSON-lines file
// (recorder.FileAuditor). Run moves the entries such a version left in it
// into the journal, in file order, once: how far it got is kept in a
// separate cursor file, replaced atomically after each entry, so the file
// itself is never rewritten. A crash between the journal's append and the
// cursor's write would repeat that entry; the move avoids that by first
// listing the IDs the journal already holds after the cursor's journal seq
// and skipping those. Nothing writes to the file any more.
type auditSpool struct {
	file       *recorder.FileAuditor
	cursorPath string
	journal    func() (alerts.AuditLog, bool)
	log        *slog.Logger

	mu      sync.Mutex
	pending bool // the file holds entries past the cursor
}

var _ recorder.Auditor = (*auditSpool)(nil)

// auditCursor is how far the file has been moved into the journal.
type auditCursor struct {
	// Offset is the byte offset in the audit file of the first entry not
	// yet in the journal.
	Offset int64 `json:"offset"`
	// Since is a journal audit seq before which no entry of the file past
	// Offset can be stored: the dedupe scan starts there.
	Since uint64 `json:"since"`
}

func newAuditSpool(file *recorder.FileAuditor, journal func() (alerts.AuditLog, bool), log *slog.Logger) (*auditSpool, error) {
	s := &auditSpool{
		file:       file,
		cursorPath: file.Path() + ".cursor",
		journal:    journal,
		log:        log,
	}
	c, err := s.readCursor()
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(file.Path())
	if err != nil {
		return nil, fmt.Errorf("audit spool: %w", err)
	}
	s.pending = st.Size() != c.Offset
	return s, nil
}

// Audit stores e, with an ID (recorder.NewAuditID when it has none), in the
// journal's audit log. The Redis journal takes it into its spool while
// Redis is unreachable; an error means the entry is not stored.
func (s *auditSpool) Audit(ctx context.Context, e recorder.AuditEntry) error {
	if e.ID == "" {
		e.ID = recorder.NewAuditID()
	}
	log, ok := s.journal()
	if !ok {
		return errors.New("audit: the journal keeps no audit log")
	}
	return log.Audit(ctx, auditRecord(e))
}

// auditRecord is e as a journal audit record, its ID in Detail.
func auditRecord(e recorder.AuditEntry) alerts.AuditRecord {
	d := make(map[string]string, len(e.Detail)+1)
	maps.Copy(d, e.Detail)
	d[alerts.AuditIDKey] = e.ID
	return alerts.AuditRecord{At: e.At, By: e.By, Action: e.Action, Object: e.Object, Detail: d}
}

// Run moves the entries an older version left in the local audit file into
// the journal, retrying every auditSpoolInterval, and returns nil once the
// file is moved or ctx ends. Failures are logged once and retried.
func (s *auditSpool) Run(ctx context.Context) error {
	t := time.NewTicker(auditSpoolInterval)
	defer t.Stop()
	failing := false
	for {
		s.mu.Lock()
		pending := s.pending
		s.mu.Unlock()
		if !pending {
			return nil
		}
		n, err := s.drain(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			if !failing { // once per outage, not every tick
				s.log.Warn("audit: the journal is not taking the entries of the local audit file yet; retrying", "err", err)
			}
			failing = true
		default:
			s.log.Info("audit: entries of the local audit file moved to the journal", "entries", n)
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// drain moves the entries past the cursor into the journal and reports how
// many it appended. It stops at the first failure; the cursor then names
// the first entry still to move.
func (s *auditSpool) drain(ctx context.Context) (int, error) {
	log, ok := s.journal()
	if !ok {
		return 0, errors.New("audit spool: the journal keeps no audit log")
	}
	c, err := s.readCursor()
	if err != nil {
		return 0, err
	}
	f, err := os.Open(s.file.Path())
	if err != nil {
		return 0, fmt.Errorf("audit spool: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("audit spool: %w", err)
	}
	if st.Size() < c.Offset {
		// The file was replaced or cut by hand: start over, deduping
		// against the whole audit log.
		s.log.Warn("audit spool: the audit file is shorter than the cursor; replaying it from the start", "file", s.file.Path(), "offset", c.Offset, "size", st.Size())
		c = auditCursor{}
	}

	// IDs the journal already has: a replay cut short between the
	// journal's append and the cursor's write.
	stored := map[string]bool{}
	last := c.Since
	for {
		recs, err := log.AuditSince(ctx, last, 1000)
		if err != nil {
			return 0, fmt.Errorf("audit spool: listing the journal's audit log: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if id := r.Detail[alerts.AuditIDKey]; id != "" {
				stored[id] = true
			}
		}
		last = recs[len(recs)-1].Seq
	}

	if _, err := f.Seek(c.Offset, io.SeekStart); err != nil {
		return 0, fmt.Errorf("audit spool: %w", err)
	}
	rd := bufio.NewReader(f)
	n := 0
	for {
		line, err := rd.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // a line without its newline is still being written
		}
		if err != nil {
			return n, fmt.Errorf("audit spool: reading %s: %w", s.file.Path(), err)
		}
		end := c.Offset + int64(len(line))
		var e recorder.AuditEntry
		if err := json.Unmarshal(bytes.TrimSpace(line), &e); err != nil {
			// A line torn by a crash mid-write: nothing to replay.
			s.log.Error("audit spool: skipping an unreadable line of the audit file", "file", s.file.Path(), "offset", c.Offset, "err", err)
		} else if e.ID == "" || !stored[e.ID] {
			if err := log.Audit(ctx, auditRecord(e)); err != nil {
				return n, fmt.Errorf("audit spool: entry %s: %w", e.ID, err)
			}
			n++
		}
		c.Offset = end
		if err := s.writeCursor(c); err != nil {
			return n, err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if st, err := os.Stat(s.file.Path()); err == nil && st.Size() == c.Offset {
		// Everything up to here is in the journal; a later scan need not
		// look before what this one saw.
		c.Since = last
		if err := s.writeCursor(c); err != nil {
			return n, err
		}
		s.pending = false
	}
	return n, nil
}

func (s *auditSpool) readCursor() (auditCursor, error) {
	var c auditCursor
	b, err := os.ReadFile(s.cursorPath)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("audit spool: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("audit spool: cursor %s: %w", s.cursorPath, err)
	}
	return c, nil
}

// writeCursor replaces the cursor file atomically and durably: a crash
// leaves either the old cursor or the new one.
func (s *auditSpool) writeCursor(c auditCursor) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("audit spool: cursor: %w", err)
	}
	tmp := s.cursorPath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("audit spool: cursor: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.cursorPath)
	}
	if err != nil {
		return fmt.Errorf("audit spool: cursor: %w", err)
	}
	d, err := os.Open(filepath.Dir(s.cursorPath))
	if err != nil {
		return fmt.Errorf("audit spool: cursor: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit spool: cursor: %w", err)
	}
	return nil
}
