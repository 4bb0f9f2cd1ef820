package app

import (
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"vigil/internal/testutil"
)

// designMetrics is the list of the design contract's "Metrics".
var designMetrics = []string{
	"camera_up", "camera_reconnects_total", "ingest_bytes_total", "ingest_frames_total",
	"ingest_packets_lost_total", "recorder_segments_total", "recorder_bytes_total",
	"recorder_write_errors_total", "storage_used_bytes", "storage_free_bytes",
	"retention_deleted_segments_total", "alerts_raised_total", "alerts_open",
	"alert_delivery_seconds", "alert_ack_seconds", "alerts_overdue_total", "ws_clients",
	"ws_slow_closed_total", "hook_requests_total", "journal_spool_events", "config_reload_errors_total",
}

// TestMetrics scrapes a live node on the Redis journal with a camera, checks
// the scrape with promtool, and checks that every metric of the design contract and of
// docs/operations.md is registered, and nothing undocumented is.
func TestMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found (Debian package prometheus; make test installs it)")
	}
	r := testutil.StartRedis(t)
	sim := startCamsim(t, "cam/gate")
	cfg := simConfig(t, sim, map[string]string{"gate": "key-site"})
	cfg.Journal.Backend = "redis"
	cfg.Journal.Redis.Addr = r.Addr()
	a := startApp(t, cfg, io.Discard)
	waitFor(t, 10*time.Second, "camera online", func() bool { return cameraStatus(t, a, "gate") == "online" })
	call(t, "POST", a.URL()+"/api/v1/hooks/gate/events?key=wrong", "", `{}`)

	code, scrape := call(t, "GET", a.URL()+"/metrics", adminToken, "")
	if code != 200 {
		t.Fatalf("scrape: %d", code)
	}
	for _, want := range []string{`vigil_camera_up{camera="gate",site="key-site"} 1`, "vigil_ingest_frames_total", "vigil_hook_requests_total"} {
		if !strings.Contains(scrape, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	cmd := exec.CommandContext(t.Context(), promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}

	registered := a.MetricNames()
	for _, m := range designMetrics {
		if !slices.Contains(registered, "vigil_"+m) {
			t.Errorf("design-contract metric vigil_%s is not registered", m)
		}
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(vigil_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	for _, m := range registered {
		if strings.HasPrefix(m, "vigil_") && !documented[m] {
			t.Errorf("metric %s is registered but not documented in docs/operations.md", m)
		}
	}
	for m := range documented {
		if !slices.Contains(registered, m) {
			t.Errorf("docs/operations.md documents %s, which no component registers", m)
		}
	}
}
