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

// TestAuditGoesToTheJournal: an entry is handed to the journal at once,
// with its ID; a journal that refuses it fails the audit (no second spool
// beside the journal's).
func TestAuditGoesToTheJournal(t *testing.T) {
	ctx := t.Context()
	log := &memAuditLog{}
	s, f := newTestSpool(t, filepath.Join(t.TempDir(), "export-audit.jsonl"), log)
	if err := s.Audit(ctx, entry("a")); err != nil {
		t.Fatal(err)
	}
	log.setDown(true)
	if err := s.Audit(ctx, entry("b")); !errors.Is(err, alerts.ErrUnavailable) {
		t.Fatalf("audit with the journal refusing: %v, want its error", err)
	}
	if got := fmt.Sprint(log.objects()); got != "[a]" {
		t.Fatalf("journal: %s", got)
	}
	if r := log.recs[0]; r.Detail[alerts.AuditIDKey] == "" || r.Detail["sha256"] != "ab" || r.By != "inv-1" {
		t.Fatalf("record without its ID or detail: %+v", r)
	}
	if es := readAuditFile(t, f.Path()); len(es) != 0 {
		t.Fatalf("the local audit file took %d entries", len(es))
	}
}

// TestAuditFileMovedOnce drives the move of an older version's audit file
// by hand (no loop): its entries go into the journal in order, once, also
// across a reopen and a crash between the journal's append and the
// cursor's write.
func TestAuditFileMovedOnce(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "export-audit.jsonl")
	log := &memAuditLog{down: true}
	s, f := newTestSpool(t, path, log)
	if s.pending {
		t.Fatal("an empty file is pending")
	}
	// What an older version wrote while the journal was down.
	for _, o := range []string{"b", "c", "d", "e"} {
		if err := f.Audit(ctx, entry(o)); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	s, f = newTestSpool(t, path, log)
	if !s.pending {
		t.Fatal("the file's entries are not pending")
	}
	if _, err := s.drain(ctx); !errors.Is(err, alerts.ErrUnavailable) {
		t.Fatalf("drain with the journal down: %v", err)
	}
	// A crash after the journal took b but before the cursor moved.
	log.setDown(false)
	if err := log.Audit(ctx, auditRecord(readAuditFile(t, path)[0])); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, _ = newTestSpool(t, path, log)
	if n, err := s.drain(ctx); err != nil || n != 3 {
		t.Fatalf("drain: %d %v", n, err)
	}
	if got := fmt.Sprint(log.objects()); got != "[b c d e]" {
		t.Fatalf("journal: %s", got)
	}
	if n, err := s.drain(ctx); err != nil || n != 0 || s.pending {
		t.Fatalf("second drain: %d %v pending=%v", n, err, s.pending)
	}
	// Run returns at once when nothing is left to move.
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestAuditSpoolTornLine: a line an older version's crash cut mid-write is
// skipped and does not swallow the entry written after it.
func TestAuditSpoolTornLine(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "export-audit.jsonl")
	if err := os.WriteFile(path, []byte(`{"id":"x","at":"2025-03-01T12:00:00Z","by":"inv-1","act`), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &memAuditLog{}
	s, f := newTestSpool(t, path, log)
	if err := f.Audit(ctx, entry("g")); err != nil {
		t.Fatal(err)
	}
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
