package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/recorder"
)

// memAuditLog is an in-memory alerts.AuditLog that fails while down.
type memAuditLog struct {
	mu   sync.Mutex
	down bool
	recs []alerts.AuditRecord
}

func (m *memAuditLog) setDown(down bool) { m.mu.Lock(); m.down = down; m.mu.Unlock() }

func (m *memAuditLog) Audit(_ context.Context, r alerts.AuditRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return fmt.Errorf("mem: %w", alerts.ErrUnavailable)
	}
	r.Seq = uint64(len(m.recs) + 1)
	m.recs = append(m.recs, r)
	return nil
}

func (m *memAuditLog) AuditSince(_ context.Context, seq uint64, limit int) ([]alerts.AuditRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, fmt.Errorf("mem: %w", alerts.ErrUnavailable)
	}
	var out []alerts.AuditRecord
	for _, r := range m.recs {
		if r.Seq > seq && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

// objects lists the records' objects in seq order.
func (m *memAuditLog) objects() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.recs {
		out = append(out, r.Object)
	}
	return out
}

func newTestSpool(t *testing.T, path string, log *memAuditLog) (*auditSpool, *recorder.FileAuditor) {
	t.Helper()
	f, err := recorder.NewFileAuditor(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	s, err := newAuditSpool(f, func() (alerts.AuditLog, bool) { return log, true }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

func entry(object string) recorder.AuditEntry {
	return recorder.AuditEntry{At: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), By: "inv-1", Action: recorder.AuditExported,
		Object: object, Detail: map[string]string{"sha256": "ab"}}
}

// TestAuditSpoolMovesEntriesOnce drives the spool by hand (no loop): what
// the journal refused goes to the file and later into the journal, in
// order, once, also across a reopen and a crash between the journal's
// append and the cursor's write.
func TestAuditSpoolMovesEntriesOnce(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "export-audit.jsonl")
	log := &memAuditLog{}
	s, _ := newTestSpool(t, path, log)

	if err := s.Audit(ctx, entry("a")); err != nil { // journal up: direct
		t.Fatal(err)
	}
	log.setDown(true)
	for _, o := range []string{"b", "c"} {
		if err := s.Audit(ctx, entry(o)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.drain(ctx); !errors.Is(err, alerts.ErrUnavailable) {
		t.Fatalf("drain with the journal down: %v", err)
	}
	log.setDown(false)
	// While b and c are pending, d queues behind them rather than
	// overtaking them.
	if err := s.Audit(ctx, entry("d")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.drain(ctx); err != nil || n != 3 {
		t.Fatalf("drain: %d %v", n, err)
	}
	if got := fmt.Sprint(log.objects()); got != "[a b c d]" {
		t.Fatalf("journal: %s", got)
	}
	for _, r := range log.recs {
		if r.Detail[auditIDKey] == "" || r.Detail["sha256"] != "ab" {
			t.Fatalf("record without its ID or detail: %+v", r)
		}
	}
	if n, err := s.drain(ctx); err != nil || n != 0 || s.pending {
		t.Fatalf("second drain: %d %v pending=%v", n, err, s.pending)
	}

	// A crash after the journal took e but before the cursor moved: the
	// journal has e, the cursor still points at it. A reopened spool
	// (the next run of the app) must not append it again.
	log.setDown(true)
	if err := s.Audit(ctx, entry("e")); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, entry("f")); err != nil {
		t.Fatal(err)
	}
	log.setDown(false)
	c, err := s.readCursor()
	if err != nil {
		t.Fatal(err)
	}
	pendingEntries := readAuditFile(t, path)[3:] // b c d were moved; e and f wait
	if err := log.Audit(ctx, auditRecord(pendingEntries[0])); err != nil {
		t.Fatal(err)
	}
	s.file.Close()
	s2, _ := newTestSpool(t, path, log)
	if !s2.pending {
		t.Fatal("reopened spool does not see its pending entries")
	}
	if c2, _ := s2.readCursor(); c2 != c {
		t.Fatalf("cursor moved: %+v → %+v", c, c2)
	}
	if n, err := s2.drain(ctx); err != nil || n != 1 {
		t.Fatalf("drain after the crash: %d %v", n, err)
	}
	if got := fmt.Sprint(log.objects()); got != "[a b c d e f]" {
		t.Fatalf("journal after the crash: %s", got)
	}
}

// TestAuditSpoolTornLine: a line cut by a crash mid-write is skipped and
// does not swallow the entry written after it.
func TestAuditSpoolTornLine(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "export-audit.jsonl")
	if err := os.WriteFile(path, []byte(`{"id":"x","at":"2025-03-01T12:00:00Z","by":"inv-1","act`), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &memAuditLog{down: true}
	s, _ := newTestSpool(t, path, log)
	if err := s.Audit(ctx, entry("g")); err != nil {
		t.Fatal(err)
	}
	log.setDown(false)
	if n, err := s.drain(ctx); err != nil || n != 1 {
		t.Fatalf("drain: %d %v", n, err)
	}
	if got := fmt.Sprint(log.objects()); got != "[g]" || s.pending {
		t.Fatalf("journal: %s pending=%v", got, s.pending)
	}
}

func readAuditFile(t *testing.T, path string) []recorder.AuditEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []recorder.AuditEntry
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var e recorder.AuditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit file line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}
