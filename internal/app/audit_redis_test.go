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

	"vigil/alerts"
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
// investigator while Redis is down.
func exportAudited(t *testing.T, a *App) {
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
	// The entry waits in the journal's spool (once the response is
	// complete), not in a file of the app's.
	waitFor(t, 10*time.Second, "the export audit in the journal's spool", func() bool {
		return gaugeValue(t, a, "vigil_journal_spool_events") >= 1
	})
	if es := readAuditFile(t, filepath.Join(a.config().Storage.Dir, "export-audit.jsonl")); len(es) != 0 {
		t.Fatalf("the local audit file took %d entries", len(es))
	}
}

// waitAuditedOnce waits until GET /api/v1/audit lists the export, and
// checks it is listed exactly once, with its audit ID, once the journal's
// spool is empty.
func waitAuditedOnce(t *testing.T, a *App) {
	t.Helper()
	exports := func() []map[string]string {
		code, body := call(t, "GET", a.URL()+"/api/v1/audit?limit=1000", adminToken, "")
		if code != 200 {
			return nil
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
		var out []map[string]string
		for _, r := range page.Records {
			if r.Action == "exported" {
				if r.By != "inv-1" || r.Detail["sha256"] == "" || r.Detail[alerts.AuditIDKey] == "" {
					t.Fatalf("replayed record: %+v", r)
				}
				out = append(out, r.Detail)
			}
		}
		return out
	}
	waitFor(t, 30*time.Second, "the spooled export in GET /api/v1/audit", func() bool { return len(exports()) > 0 })
	waitFor(t, 15*time.Second, "the journal's spool empty", func() bool {
		return gaugeValue(t, a, "vigil_journal_spool_events") == 0
	})
	if got := exports(); len(got) != 1 {
		t.Fatalf("spooled export listed %d times, want 1: %v", len(got), got)
	}
}

// TestAuditSpoolRedisOutage: an export audited while redis-server is
// stopped waits in the journal's spool and reaches the journal's audit log,
// once, when Redis is back.
func TestAuditSpoolRedisOutage(t *testing.T) {
	r := testutil.StartRedis(t)
	r.Stop()
	sim := startCamsim(t, "cam/gate")
	cfg := simConfig(t, sim, map[string]string{"gate": "key-site"})
	cfg.Journal.Backend = "redis"
	cfg.Journal.Redis.Addr = r.Addr()
	a := startApp(t, cfg, io.Discard)

	exportAudited(t, a)
	r.Restart()
	waitAuditedOnce(t, a)
}

// TestAuditSpoolReplayAfterRestart: the node stops while Redis is still
// down; the next run of the node replays the entry from the journal's
// spool.
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
	exportAudited(t, first)
	stop()

	r.Restart()
	second, err := New(Options{Config: cfg, Logger: logs})
	if err != nil {
		t.Fatal(err)
	}
	runStoppableApp(t, second)
	waitAuditedOnce(t, second)
}
