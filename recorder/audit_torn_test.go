package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// auditFaultFile fails the next write after writing its first n bytes,
// or, with n < 0, writes it all and fails the Sync.
type auditFaultFile struct {
	File
	n int
}

func (f *auditFaultFile) Write(b []byte) (int, error) {
	if f.n < 0 {
		return f.File.Write(b)
	}
	m, _ := f.File.Write(b[:min(f.n, len(b))])
	return m, &os.PathError{Op: "write", Path: "audit", Err: syscall.EIO}
}

func (f *auditFaultFile) Sync() error {
	if f.n < 0 {
		return &os.PathError{Op: "sync", Path: "audit", Err: syscall.EIO}
	}
	return f.File.Sync()
}

// After a failed write the next entry is a line of its own, never glued
// to what the failure left: a reader loses the failed entry at most.
func TestFileAuditorFailedWrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		written int    // bytes of the failing entry's line on disk; -1: all, then Sync fails
		want    []bool // lines: a readable entry or not
	}{
		{"half a line written", 40, []bool{true, false, true}},
		{"nothing written", 0, []bool{true, true}},
		{"line written, sync failed", -1, []bool{true, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			a, err := NewFileAuditor(path)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			entry := func(id string) AuditEntry {
				return AuditEntry{ID: id, At: t0, By: "inv-1", Action: AuditExported, Object: "camera/hall-entrance/export"}
			}
			ctx := context.Background()
			if err := a.Audit(ctx, entry("first")); err != nil {
				t.Fatal(err)
			}
			good := a.f
			a.f = &auditFaultFile{File: good, n: tc.written}
			if err := a.Audit(ctx, entry("failed")); err == nil {
				t.Fatal("the failed write was not reported")
			}
			a.f = good
			if err := a.Audit(ctx, entry("next")); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'})
			if len(lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tc.want), b)
			}
			for i, l := range lines {
				var e AuditEntry
				if ok := json.Unmarshal(l, &e) == nil; ok != tc.want[i] {
					t.Errorf("line %d %q: readable %v, want %v", i, l, ok, tc.want[i])
				}
			}
			var last AuditEntry
			if err := json.Unmarshal(lines[len(lines)-1], &last); err != nil || last.ID != "next" {
				t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
			}
		})
	}
}
