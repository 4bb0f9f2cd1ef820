package redisjournal

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/internal/testutil"
)

func auditRecord(id string, at time.Time) alerts.AuditRecord {
	return alerts.AuditRecord{At: at, By: "investigator-1", Action: "exported", Object: "camera/hall-entrance/export",
		Detail: map[string]string{alerts.AuditIDKey: id, "sha256": "ab"}}
}

// auditIDs counts the audit log's records per audit ID.
func auditIDs(t *testing.T, j *Journal) map[string]int {
	t.Helper()
	recs, err := j.AuditSince(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, r := range recs {
		n[r.Detail[alerts.AuditIDKey]]++
	}
	return n
}

// TestAuditWaitsInSpoolDuringOutage: an audit record made while
// redis-server is stopped is kept in the spool and is in the audit log
// exactly once after Redis is back, after the changes spooled before it;
// a record handed over again under the same audit ID (a caller retrying
// after a crash) is not stored twice.
func TestAuditWaitsInSpoolDuringOutage(t *testing.T) {
	r := testutil.StartRedis(t, testutil.WithAppendOnly("always"))
	j := open(t, Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")})
	ctx := t.Context()
	if err := j.Audit(ctx, auditRecord("a-before", base)); err != nil {
		t.Fatal(err)
	}

	r.Stop()
	raise(t, j, "01AU", base)
	for _, id := range []string{"a-down", "a-down", "a-other"} {
		if err := j.Audit(ctx, auditRecord(id, base.Add(time.Second))); err != nil {
			t.Fatalf("audit %s with Redis down: %v, want it spooled", id, err)
		}
	}
	if got := value(j.metrics.spoolEvents); got != 4 {
		t.Fatalf("spool gauge = %v, want 4 (a change, three audit records)", got)
	}

	r.Restart()
	waitFor(t, "spool replayed", 15*time.Second, func() bool { return !j.Degraded() })
	if err := j.Audit(ctx, auditRecord("a-before", base)); err != nil { // a retry after Redis took it
		t.Fatal(err)
	}
	got := auditIDs(t, j)
	want := map[string]int{"a-before": 1, "a-down": 1, "a-other": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit log holds %v, want each ID once: %v", got, want)
	}
	if _, err := j.Get(ctx, "01AU"); err != nil {
		t.Fatalf("the change spooled with the audit records: %v", err)
	}
}

// TestAuditRecordsNotDroppedFromFullSpool: a full spool drops its oldest
// changes, never an audit record (which count toward SpoolMax too: 4 = 2
// audit records + the 2 newest changes).
func TestAuditRecordsNotDroppedFromFullSpool(t *testing.T) {
	r := testutil.StartRedis(t)
	j := open(t, Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db"), SpoolMax: 4})
	r.Stop()
	if err := j.Audit(t.Context(), auditRecord("a-first", base)); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		raise(t, j, fmt.Sprintf("01F%02d", i), base.Add(time.Duration(i)*time.Second))
	}
	if err := j.Audit(t.Context(), auditRecord("a-last", base)); err != nil {
		t.Fatal(err)
	}
	r.Restart()
	waitFor(t, "spool replayed", 15*time.Second, func() bool { return !j.Degraded() })
	if got := auditIDs(t, j); got["a-first"] != 1 || got["a-last"] != 1 {
		t.Fatalf("audit log after a full spool: %v, want a-first and a-last once", got)
	}
	as, _, err := j.List(t.Context(), alerts.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].ID != "01F09" || as[1].ID != "01F08" {
		t.Fatalf("changes after a full spool: %v, want the newest 2", idsOf(as))
	}
}
