package alertsapi_test

import (
	"testing"
	"time"

	"vigil/alerts"
	"vigil/alerts/alertstest"
	"vigil/alerts/journaltest"
)

var statsT0 = time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)

// The API serves the same figures from the journal, grouped as asked.
func TestAPIStatsGroupBy(t *testing.T) {
	f := newAPIFixture(t)
	for _, a := range journaltest.StatsFixture(statsT0) {
		if _, err := f.Journal.Append(t.Context(), alerts.Change{Kind: alerts.KindRaised, At: a.RaisedAt, By: alerts.System, Origin: alerts.OriginSystem, Alert: a}, 0); err != nil {
			t.Fatal(err)
		}
	}
	f.Clock.Advance(journaltest.StatsNow(statsT0).Sub(alertstest.T0))
	q := "?from=" + statsT0.Format(time.RFC3339) + "&to=" + statsT0.Add(24*time.Hour).Format(time.RFC3339)
	for _, by := range []alerts.GroupBy{alerts.BySite, alerts.ByGrid, alerts.ByUnit, alerts.ByType, alerts.BySeverity} {
		var s alerts.Stats
		code, m := f.do(t, "GET", "/api/v1/alerts/stats"+q+"&group_by="+string(by), "", &s)
		if code != 200 {
			t.Fatalf("group_by=%s: %d %v", by, code, m)
		}
		want := alerts.ComputeStats(journaltest.StatsFixture(statsT0), statsT0, statsT0.Add(24*time.Hour), journaltest.StatsNow(statsT0), by)
		if s.GroupBy != by || len(s.Groups) != len(want.Groups) || s.Figures != want.Figures {
			t.Fatalf("group_by=%s: %+v\nwant %+v", by, s, want)
		}
		for i := range want.Groups {
			if s.Groups[i] != want.Groups[i] {
				t.Errorf("group_by=%s group %d: %+v\nwant %+v", by, i, s.Groups[i], want.Groups[i])
			}
		}
	}
	if code, _ := f.do(t, "GET", "/api/v1/alerts/stats"+q+"&group_by=camera", "", nil); code != 400 {
		t.Errorf("group_by=camera: %d, want 400", code)
	}
}
