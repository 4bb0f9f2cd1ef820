package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"vigil/internal/testutil"
)

// runStoppableApp is startApp with a stop the test calls itself: Run
// returns before stop does.
func runStoppableApp(t *testing.T, a *App) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// exportAudited exports a recorded range of camera gate as an
// investigator and returns the export's sha256 as the response states it.
func exportAudited(t *testing.T, a *App) string {
	t.Helper()
	waitFor(t, 15*time.Second, "a recorded segment", func() bool {
		segs, _, err := a.recorder.Catalog().List("gate", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		return err == nil && len(segs) > 0
	})
	segs, _, err := a.recorder.Catalog().List("gate", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"start": {segs[0].Start.Format(time.RFC3339Nano)}, "end": {segs[0].End.Format(time.RFC3339Nano)}, "format": {"mp4"}}
	if code, body := call(t, "GET", a.URL()+"/api/v1/cameras/gate/export?"+q.Encode(), invToken, ""); code != 200 {
		t.Fatalf("export: %d %.200s", code, body)
	}
	// The journal is down, so the entry goes to the local file (once the
	// response is complete).
	path := filepath.Join(a.config().Storage.Dir, "export-audit.jsonl")
	waitFor(t, 10*time.Second, "the export in the local audit file", func() bool { return len(readAuditFile(t, path)) > 0 })
	entries := readAuditFile(t, path)
	if len(entries) != 1 || entries[0].Action != "exported" || entries[0].ID == "" || entries[0].Detail["sha256"] == "" {
		t.Fatalf("local audit file: %+v", entries)
	}
	return entries[0].ID
}

// waitAuditedOnce waits until GET /api/v1/audit lists the entry id, and
// checks it is listed exactly once.
func waitAuditedOnce(t *testing.T, a *App, id string) {
	t.Helper()
	count := func() int {
		code, body := call(t, "GET", a.URL()+"/api/v1/audit?limit=1000", adminToken, "")
		if code != 200 {
			return -1
		}
		var page struct {
			Records []struct {
				By, Action string
				Detail     map[string]string
			}
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatalf("audit: %v %s", err, body)
		}
		n := 0
		for _, r := range page.Records {
			if r.Detail[auditIDKey] == id {
				if r.By != "inv-1" || r.Action != "exported" || r.Detail["sha256"] == "" {
					t.Fatalf("replayed record: %+v", r)
				}
				n++
			}
		}
		return n
	}
	waitFor(t, 30*time.Second, "the spooled export in GET /api/v1/audit", func() bool { return count() > 0 })
	// The spool has caught up once its cursor reaches the end of the file;
	// after that nothing can add a second copy.
	waitFor(t, 15*time.Second, "the audit spool drained", func() bool {
		a.auditSpool.mu.Lock()
		defer a.auditSpool.mu.Unlock()
		return !a.auditSpool.pending
	})
	if n := count(); n != 1 {
		t.Fatalf("spooled export listed %d times, want 1", n)
	}
}

// TestAuditSpoolRedisOutage: an export audited while Redis is down goes to
// the local file and reaches the journal's audit log, once, when Redis is
// back.
func TestAuditSpoolRedisOutage(t *testing.T) {
	r := testutil.StartRedis(t)
	r.Stop()
	sim := startCamsim(t, "cam/gate")
	cfg := simConfig(t, sim, map[string]string{"gate": "key-site"})
	cfg.Journal.Backend = "redis"
	cfg.Journal.Redis.Addr = r.Addr()
	a := startApp(t, cfg, io.Discard)

	id := exportAudited(t, a)
	r.Restart()
	waitAuditedOnce(t, a, id)
}

// TestAuditSpoolReplayAfterRestart: the node stops while Redis is still
// down; the next run of the node replays the entry from the file.
func TestAuditSpoolReplayAfterRestart(t *testing.T) {
	r := testutil.StartRedis(t)
	r.Stop()
	sim := startCamsim(t, "cam/gate")
	cfg := simConfig(t, sim, map[string]string{"gate": "key-site"})
	cfg.Journal.Backend = "redis"
	cfg.Journal.Redis.Addr = r.Addr()
	logs := slog.New(slog.NewTextHandler(io.Discard, nil))

	first, err := New(Options{Config: cfg, Logger: logs})
	if err != nil {
		t.Fatal(err)
	}
	stop := runStoppableApp(t, first)
	id := exportAudited(t, first)
	stop()

	r.Restart()
	second, err := New(Options{Config: cfg, Logger: logs})
	if err != nil {
		t.Fatal(err)
	}
	runStoppableApp(t, second)
	waitAuditedOnce(t, second, id)
}
