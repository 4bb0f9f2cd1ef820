package configs

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// designMetrics is the metric list of the design contract's "Metrics (prefix vigil_)".
var designMetrics = []string{
	"vigil_camera_up",
	"vigil_camera_reconnects_total",
	"vigil_ingest_bytes_total",
	"vigil_ingest_frames_total",
	"vigil_ingest_packets_lost_total",
	"vigil_recorder_segments_total",
	"vigil_recorder_bytes_total",
	"vigil_recorder_write_errors_total",
	"vigil_storage_used_bytes",
	"vigil_storage_free_bytes",
	"vigil_retention_deleted_segments_total",
	"vigil_alerts_raised_total",
	"vigil_alerts_open",
	"vigil_alert_delivery_seconds",
	"vigil_alert_ack_seconds",
	"vigil_alerts_overdue_total",
	"vigil_ws_clients",
	"vigil_ws_slow_closed_total",
	"vigil_hook_requests_total",
	"vigil_journal_spool_events",
	"vigil_config_reload_errors_total",
}

var (
	// metricName finds vigil_ names in PromQL; a name is followed by
	// anything but another name character.
	metricName = regexp.MustCompile(`\bvigil_[a-z0-9_]*[a-z0-9]`)
	// histogramSeries are the series suffixes of a histogram.
	histogramSeries = regexp.MustCompile(`_(bucket|sum|count)$`)
	// docRow is a row of the metrics table: | `vigil_x` | type | ...
	docRow = regexp.MustCompile("^\\|\\s*`(vigil_[a-z0-9_]+)`\\s*\\|")
)

// documentedMetrics reads the metric names of the "## Metrics" table of
// docs/operations.md.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(line) == "## Metrics"
			continue
		}
		if !in {
			continue
		}
		if m := docRow.FindStringSubmatch(line); m != nil {
			if out[m[1]] {
				t.Errorf("docs/operations.md: %s is listed twice in the metrics table", m[1])
			}
			out[m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("docs/operations.md: no metrics table under \"## Metrics\"")
	}
	return out
}

// dashboardExprs returns every "expr" of the dashboard, wherever it sits
// (panels, rows with nested panels, template variables).
func dashboardExprs(t *testing.T) (exprs []string, dash map[string]any) {
	t.Helper()
	b, err := os.ReadFile("grafana/vigil.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana/vigil.json: %v", err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dash)
	return exprs, dash
}

// queryMetrics extracts the metric names a PromQL expression reads, with
// histogram series folded into their histogram.
func queryMetrics(expr string) []string {
	var out []string
	for _, n := range metricName.FindAllString(expr, -1) {
		n = histogramSeries.ReplaceAllString(n, "")
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func TestGrafanaQueryMetrics(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`rate(vigil_ingest_bytes_total{camera=~"$camera"}[$__rate_interval]) * 8`, []string{"vigil_ingest_bytes_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(vigil_alert_delivery_seconds_bucket[5m])))`, []string{"vigil_alert_delivery_seconds"}},
		{`vigil_alert_ack_seconds_sum / vigil_alert_ack_seconds_count`, []string{"vigil_alert_ack_seconds"}},
		{`count(vigil_camera_up) - sum(vigil_camera_up)`, []string{"vigil_camera_up"}},
		{`up{job="vigil"}`, nil},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			if got := queryMetrics(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestGrafanaDashboardMetricsDocumented fails when the dashboard queries a
// metric that docs/operations.md does not document, or when a metric of
// the design contract is missing from the documentation.
func TestGrafanaDashboardMetricsDocumented(t *testing.T) {
	documented := documentedMetrics(t)
	exprs, dash := dashboardExprs(t)
	if len(exprs) == 0 {
		t.Fatal("grafana/vigil.json: no expr in any panel")
	}
	used := map[string]bool{}
	for _, e := range exprs {
		names := queryMetrics(e)
		if len(names) == 0 {
			t.Errorf("grafana/vigil.json: query %q reads no vigil_ metric", e)
		}
		for _, n := range names {
			used[n] = true
			if !documented[n] {
				t.Errorf("grafana/vigil.json: query %q reads %s, which docs/operations.md \"## Metrics\" does not list", e, n)
			}
		}
	}
	for _, n := range designMetrics {
		if !documented[n] {
			t.Errorf("docs/operations.md \"## Metrics\": design-contract metric %s is missing", n)
		}
	}

	t.Run("dashboard", func(t *testing.T) {
		if v, _ := dash["schemaVersion"].(float64); v < 36 {
			t.Errorf("schemaVersion %v: want 36 or later", dash["schemaVersion"])
		}
		vars := map[string]map[string]any{}
		tmpl, _ := dash["templating"].(map[string]any)
		list, _ := tmpl["list"].([]any)
		for _, v := range list {
			if m, ok := v.(map[string]any); ok {
				name, _ := m["name"].(string)
				vars[name] = m
			}
		}
		if ds := vars["DS_PROMETHEUS"]; ds == nil || ds["type"] != "datasource" || ds["query"] != "prometheus" {
			t.Errorf("templating: want a Prometheus datasource variable DS_PROMETHEUS, got %v", ds)
		}
		cam := vars["camera"]
		if cam == nil {
			t.Fatal("templating: no camera variable")
		}
		if def, _ := cam["definition"].(string); def != "label_values(vigil_camera_up, camera)" {
			t.Errorf("camera variable: definition %q, want label_values(vigil_camera_up, camera)", def)
		}
		// Every panel queries through the datasource variable.
		b, _ := json.Marshal(dash["panels"])
		var panels []map[string]any
		_ = json.Unmarshal(b, &panels)
		for _, p := range panels {
			if p["type"] == "row" {
				continue
			}
			ds, _ := p["datasource"].(map[string]any)
			if ds["uid"] != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: datasource %v, want uid ${DS_PROMETHEUS}", p["title"], p["datasource"])
			}
		}
		for _, want := range []string{
			"vigil_camera_up", "vigil_ingest_bytes_total", "vigil_camera_reconnects_total",
			"vigil_recorder_bytes_total", "vigil_storage_free_bytes", "vigil_storage_used_bytes",
			"vigil_alerts_raised_total", "vigil_alerts_open", "vigil_alerts_overdue_total",
			"vigil_alert_delivery_seconds", "vigil_ws_clients", "vigil_ws_slow_closed_total",
			"vigil_hook_requests_total", "vigil_journal_spool_events", "vigil_config_reload_errors_total",
		} {
			if !used[want] {
				t.Errorf("no panel queries %s", want)
			}
		}
	})
}
