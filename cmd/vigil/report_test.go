package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"vigil/alerts"
	"vigil/alerts/boltjournal"
	"vigil/alerts/journaltest"
)

func TestReportCommand(t *testing.T) {
	base := t.TempDir()
	cfg := filepath.Join(base, "vigil.yaml")
	if err := os.WriteFile(cfg, []byte("journal: {path: ./journal.db}\nalerts:\n  units: [{id: police, name: 派出所}, {id: zongzhi, name: 综治办}, {id: sifa, name: 司法所}]\ncameras_file: cameras.yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "cameras.yaml"), []byte("cameras: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)
	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(base, "journal.db")})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range journaltest.StatsFixture(t0) {
		if _, err := j.Append(t.Context(), alerts.Change{Kind: alerts.KindRaised, At: a.RaisedAt, Alert: a}, 0); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	out := filepath.Join(t.TempDir(), "report.xlsx")
	var stdout, stderr bytes.Buffer
	code := run([]string{"report", "-config", cfg, "-from", "2026-12-01T00:00:00+08:00", "-to", "2026-12-02T00:00:00+08:00", "-o", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "30 alerts") {
		t.Errorf("stdout %q", stdout.String())
	}
	x, err := excelize.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if v, _ := x.GetCellValue("汇总", "B3"); v != "30" {
		t.Errorf("告警总数 %q, want 30", v)
	}
	units, _ := x.GetRows("按单位")
	var names []string
	for _, r := range units[2:] {
		names = append(names, r[0])
	}
	if strings.Join(names, ",") != "（未交办）,派出所,司法所,综治办" {
		t.Errorf("units %v", names)
	}
	for _, bad := range [][]string{
		{"report", "-config", cfg, "-from", "2026-12-01", "-to", "2026-12-02T00:00:00+08:00", "-o", out},
		{"report", "-config", cfg, "-from", "2026-12-01T00:00:00+08:00", "-to", "2026-12-02T00:00:00+08:00", "-o", "r.pdf"},
	} {
		if code := run(bad, &stdout, &stderr); code != 1 {
			t.Errorf("%v: exit %d", bad, code)
		}
	}
}
