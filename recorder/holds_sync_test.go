package recorder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// legacySyncFS fails, while armed, the directory syncs made once the
// legacy holds file is gone: the ones that make its removal durable.
type legacySyncFS struct {
	osFS
	legacy  string
	armed   atomic.Bool
	failed  atomic.Int32
	durable atomic.Bool // a sync succeeded after the removal
}

func (f *legacySyncFS) SyncDir(dir string) error {
	if _, err := os.Stat(f.legacy); os.IsNotExist(err) {
		if f.armed.Load() {
			f.failed.Add(1)
			return &os.PathError{Op: "fsync", Path: dir, Err: syscall.EIO}
		}
		f.durable.Store(true)
	}
	return f.osFS.SyncDir(dir)
}

// The migration's removal of the legacy holds file is not taken as done
// when the directory sync after it fails: the next compaction removes and
// syncs again. The holds themselves are in the log, synced before.
func TestHoldLogLegacyRemovalSyncFails(t *testing.T) {
	dir := t.TempDir()
	legacy := []Hold{{ID: "alert-1", Camera: "gate", Start: t0, End: t0.Add(2 * time.Minute), Reason: "intrusion"}}
	b, err := json.Marshal(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, legacyHoldsFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	fsys := &legacySyncFS{legacy: filepath.Join(dir, legacyHoldsFile)}
	fsys.armed.Store(true)
	r, _ := newTestRecorder(t, Options{Dir: dir, FS: fsys})
	if got, want := mustHolds(t, r), holdSet(legacy); got != want {
		t.Fatalf("holds:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(fsys.legacy); !os.IsNotExist(err) || fsys.failed.Load() != 1 {
		t.Fatalf("legacy file: %v; failed syncs %d, want 1", err, fsys.failed.Load())
	}
	r.holds.mu.Lock()
	left := r.holds.legacyLeft
	r.holds.mu.Unlock()
	if !left {
		t.Fatal("the removal counted as done though the directory sync failed")
	}

	fsys.armed.Store(false)
	r.holds.mu.Lock()
	err = r.holds.compactLocked()
	left = r.holds.legacyLeft
	r.holds.mu.Unlock()
	if err != nil || left || !fsys.durable.Load() {
		t.Fatalf("next compaction: %v; legacy left %v, removal synced %v", err, left, fsys.durable.Load())
	}
	r2, _ := newTestRecorder(t, Options{Dir: dir})
	if got, want := mustHolds(t, r2), holdSet(legacy); got != want {
		t.Fatalf("after restart:\n%s\nwant:\n%s", got, want)
	}
}
