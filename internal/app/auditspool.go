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

// auditIDKey is the Detail key under which a footage audit entry's ID
// travels in the journal's audit log; the spool dedupes on it.
const auditIDKey = "audit_id"

// auditSpoolInterval is how often the spool retries while it holds
// entries the journal has not taken yet.
const auditSpoolInterval = 2 * time.Second

// auditSpool is the local fallback for footage audit entries: an
// append-only JSON-lines file (recorder.FileAuditor) that takes the entries
// the journal's audit log could not, and a loop that moves them into the
// journal, in file order, once it is reachable again.
//
// How far the replay got is kept in a separate cursor file, replaced
// atomically after each entry the journal took, so the audit file itself
// is never rewritten. A crash between the journal's append and the
// cursor's write would repeat that entry; the replay avoids that by first
// listing the IDs (Detail["audit_id"]) the journal already holds after the
// cursor's journal seq and skipping those.
//
// While entries are pending, new entries go to the file too, so the
// journal receives them in the order they happened.
type auditSpool struct {
	file       *recorder.FileAuditor
	cursorPath string
	journal    func() (alerts.AuditLog, bool)
	log        *slog.Logger

	mu      sync.Mutex // orders appends against the end of a drain
	pending bool       // the file holds entries past the cursor
	kick    chan struct{}
}

var _ recorder.Auditor = (*auditSpool)(nil)

// auditCursor is how far the spool has moved the file into the journal.
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
		kick:       make(chan struct{}, 1),
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

// Audit stores e in the journal's audit log, or in the file when the
// journal fails or the file still holds earlier entries.
func (s *auditSpool) Audit(ctx context.Context, e recorder.AuditEntry) error {
	if e.ID == "" {
		e.ID = recorder.NewAuditID()
	}
	s.mu.Lock()
	pending := s.pending
	s.mu.Unlock()
	if log, ok := s.journal(); ok && !pending {
		err := log.Audit(ctx, auditRecord(e))
		if err == nil {
			return nil
		}
		s.log.Warn("journal audit log unavailable; audit entry kept in the local audit file until it is back", "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.file.Audit(ctx, e); err != nil {
		return err
	}
	s.pending = true
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// auditRecord is e as a journal audit record, its ID in Detail.
func auditRecord(e recorder.AuditEntry) alerts.AuditRecord {
	d := make(map[string]string, len(e.Detail)+1)
	maps.Copy(d, e.Detail)
	d[auditIDKey] = e.ID
	return alerts.AuditRecord{At: e.At, By: e.By, Action: e.Action, Object: e.Object, Detail: d}
}

// Run moves pending entries into the journal every auditSpoolInterval
// until ctx ends. It returns nil; failures are logged and retried.
func (s *auditSpool) Run(ctx context.Context) error {
	t := time.NewTicker(auditSpoolInterval)
	defer t.Stop()
	failing := false
	for {
		s.mu.Lock()
		pending := s.pending
		s.mu.Unlock()
		if pending {
			n, err := s.drain(ctx)
			switch {
			case err != nil && ctx.Err() != nil:
				return nil
			case err != nil:
				if !failing { // once per outage, not every tick
					s.log.Warn("audit spool: journal not taking entries yet; retrying", "err", err)
				}
				failing = true
			default:
				if n > 0 || failing {
					s.log.Info("audit spool: entries moved from the local audit file to the journal", "entries", n)
				}
				failing = false
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.kick:
			// An entry just went to the file because the journal failed:
			// the next tick retries, not this instant.
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
			if id := r.Detail[auditIDKey]; id != "" {
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
