package alerts_test

import (
	"math"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/alerts/journaltest"
)

// The expected figures below were worked out by hand from the table in
// journaltest.StatsFixture; each test checks one formula of docs/api.md
// for the whole window, per site and per unit.

var statsT0 = time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)

func fixtureStats(by alerts.GroupBy) alerts.Stats {
	as := journaltest.StatsFixture(statsT0)
	return alerts.ComputeStats(as, statsT0, statsT0.Add(24*time.Hour), journaltest.StatsNow(statsT0), by)
}

func group(t *testing.T, s alerts.Stats, key string) alerts.Figures {
	t.Helper()
	for _, g := range s.Groups {
		if g.Key == key {
			return g.Figures
		}
	}
	t.Fatalf("no group %q in %+v", key, s.Groups)
	return alerts.Figures{}
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// figure checks one figure for the window, each site and each unit.
func figure(t *testing.T, name string, get func(alerts.Figures) float64, all float64, sites, units map[string]float64) {
	t.Helper()
	near(t, name, get(fixtureStats("").Figures), all)
	for by, want := range map[alerts.GroupBy]map[string]float64{alerts.BySite: sites, alerts.ByUnit: units} {
		s := fixtureStats(by)
		if len(s.Groups) != len(want) {
			t.Errorf("%s: %d groups by %s, want %d", name, len(s.Groups), by, len(want))
		}
		for k, w := range want {
			near(t, name+" of "+string(by)+" "+k, get(group(t, s, k)), w)
		}
	}
}

func TestStatsFixtureShape(t *testing.T) {
	as := journaltest.StatsFixture(statsT0)
	sites, units := map[string]int{}, map[string]int{}
	for _, a := range as {
		sites[a.Site]++
		units[a.Unit]++
	}
	if len(as) < 30 || len(sites) != 3 || len(units) != 4 { // 3 units and "" (not dispatched)
		t.Fatalf("%d alerts, sites %v, units %v", len(as), sites, units)
	}
}

func TestStatsTotals(t *testing.T) {
	f := func(x alerts.Figures) float64 { return float64(x.Total) }
	figure(t, "total", f, 30, map[string]float64{"hall": 10, "key-site": 10, "village": 10},
		map[string]float64{"police": 13, "zongzhi": 6, "sifa": 5, "": 6})
	s := fixtureStats(alerts.BySeverity)
	near(t, "critical", float64(group(t, s, "critical").Total), 10)
	s = fixtureStats(alerts.ByGrid)
	near(t, "grid G03", float64(group(t, s, "G03").Total), 10)
	s = fixtureStats(alerts.ByType)
	near(t, "line_crossing", float64(group(t, s, "line_crossing").Total), 10)
}

// 按时受理率 = ack_on_time / ack_due, desk acknowledgements only.
func TestStatsAckOnTimeRate(t *testing.T) {
	figure(t, "ack_on_time_rate", func(x alerts.Figures) float64 { return x.AckOnTimeRate }, 14.0/20,
		map[string]float64{"hall": 7.0 / 10, "key-site": 0, "village": 7.0 / 10},
		map[string]float64{"police": 2.0 / 3, "zongzhi": 5.0 / 6, "sifa": 3.0 / 5, "": 4.0 / 6})
	figure(t, "ack_by_system", func(x alerts.Figures) float64 { return float64(x.AckBySystem) }, 10,
		map[string]float64{"hall": 0, "key-site": 10, "village": 0},
		map[string]float64{"police": 10, "zongzhi": 0, "sifa": 0, "": 0})
}

// 按时办结率 = resolve_on_time / resolve_due.
func TestStatsResolveOnTimeRate(t *testing.T) {
	figure(t, "resolve_on_time_rate", func(x alerts.Figures) float64 { return x.ResolveOnTimeRate }, 22.0/30,
		map[string]float64{"hall": 7.0 / 10, "key-site": 8.0 / 10, "village": 7.0 / 10},
		map[string]float64{"police": 10.0 / 13, "zongzhi": 5.0 / 6, "sifa": 3.0 / 5, "": 4.0 / 6})
}

// 落实到位率 = implemented / dispatched: dispatched alerts resolved on time,
// with feedback, not as false alarms.
func TestStatsImplementationRate(t *testing.T) {
	figure(t, "implementation_rate", func(x alerts.Figures) float64 { return x.ImplementationRate }, 14.0/24,
		map[string]float64{"hall": 4.0 / 7, "key-site": 6.0 / 10, "village": 4.0 / 7},
		map[string]float64{"police": 8.0 / 13, "zongzhi": 4.0 / 6, "sifa": 2.0 / 5, "": 0})
}

// 回访满意率 = satisfied / follow_ups.
func TestStatsSatisfactionRate(t *testing.T) {
	figure(t, "satisfaction_rate", func(x alerts.Figures) float64 { return x.SatisfactionRate }, 11.0/15,
		map[string]float64{"hall": 4.0 / 6, "key-site": 4.0 / 5, "village": 3.0 / 4},
		map[string]float64{"police": 6.0 / 8, "zongzhi": 4.0 / 4, "sifa": 1.0 / 2, "": 0})
}

// 回访率 = follow_ups / resolved.
func TestStatsFollowUpRate(t *testing.T) {
	figure(t, "follow_up_rate", func(x alerts.Figures) float64 { return x.FollowUpRate }, 15.0/25,
		map[string]float64{"hall": 6.0 / 8, "key-site": 5.0 / 9, "village": 4.0 / 8},
		map[string]float64{"police": 8.0 / 12, "zongzhi": 4.0 / 6, "sifa": 2.0 / 3, "": 1.0 / 4})
}

// 误报率 = false_alarm / resolved.
func TestStatsFalseAlarmRate(t *testing.T) {
	figure(t, "false_alarm_rate", func(x alerts.Figures) float64 { return x.FalseAlarmRate }, 5.0/25,
		map[string]float64{"hall": 2.0 / 8, "key-site": 1.0 / 9, "village": 2.0 / 8},
		map[string]float64{"police": 1.0 / 12, "zongzhi": 1.0 / 6, "sifa": 1.0 / 3, "": 2.0 / 4})
}

// Median and p90 (nearest rank) of acknowledged_at - raised_at, desk
// acknowledgements only.
func TestStatsAckTimes(t *testing.T) {
	figure(t, "median_ack_seconds", func(x alerts.Figures) float64 { return x.MedianAckSeconds }, 180,
		map[string]float64{"hall": 210, "key-site": 0, "village": 180},
		map[string]float64{"police": 180, "zongzhi": 150, "sifa": 300, "": 240})
	figure(t, "p90_ack_seconds", func(x alerts.Figures) float64 { return x.P90AckSeconds }, 540,
		map[string]float64{"hall": 420, "key-site": 0, "village": 600},
		map[string]float64{"police": 420, "zongzhi": 480, "sifa": 600, "": 360})
}

// Median and p90 (nearest rank) of resolved_at - raised_at.
func TestStatsResolveTimes(t *testing.T) {
	figure(t, "median_resolve_seconds", func(x alerts.Figures) float64 { return x.MedianResolveSeconds }, 2100,
		map[string]float64{"hall": 2100, "key-site": 2100, "village": 2340},
		map[string]float64{"police": 2400, "zongzhi": 2190, "sifa": 2700, "": 1350})
	figure(t, "p90_resolve_seconds", func(x alerts.Figures) float64 { return x.P90ResolveSeconds }, 4200,
		map[string]float64{"hall": 4200, "key-site": 5400, "village": 6000},
		map[string]float64{"police": 4200, "zongzhi": 6000, "sifa": 3600, "": 3000})
}

// Overdue, escalated (alerts), escalations (in all) and supervised counts.
func TestStatsSupervisionCounts(t *testing.T) {
	figure(t, "overdue", func(x alerts.Figures) float64 { return float64(x.Overdue) }, 8,
		map[string]float64{"hall": 3, "key-site": 2, "village": 3},
		map[string]float64{"police": 3, "zongzhi": 1, "sifa": 2, "": 2})
	figure(t, "escalated", func(x alerts.Figures) float64 { return float64(x.Escalated) }, 6,
		map[string]float64{"hall": 3, "key-site": 2, "village": 1},
		map[string]float64{"police": 3, "zongzhi": 1, "sifa": 1, "": 1})
	figure(t, "escalations", func(x alerts.Figures) float64 { return float64(x.Escalations) }, 8,
		map[string]float64{"hall": 4, "key-site": 3, "village": 1},
		map[string]float64{"police": 4, "zongzhi": 1, "sifa": 1, "": 2})
	figure(t, "supervised", func(x alerts.Figures) float64 { return float64(x.Supervised) }, 4,
		map[string]float64{"hall": 2, "key-site": 1, "village": 1},
		map[string]float64{"police": 1, "zongzhi": 0, "sifa": 2, "": 1})
}

// Whether the system acknowledged an alert (a rule's auto-dispatch, left
// out of the desk's acknowledgement figures) is decided by the origin of
// the change that acknowledged it, not by the acknowledger's name; an
// alert stored before the origin was kept is the system's when the name
// is System, as a change without origin is read.
func TestStatsRecordAckBySystemByOrigin(t *testing.T) {
	at := statsT0.Add(time.Minute)
	for _, tc := range []struct {
		name   string
		origin alerts.Origin
		by     string
		acked  bool
		want   bool
	}{
		{"auto-dispatch", alerts.OriginSystem, alerts.System, true, true},
		{"desk", alerts.OriginPerson, "desk-1", true, false},
		{"system origin under another name", alerts.OriginSystem, "rule:police", true, true},
		{"a person named system", alerts.OriginPerson, alerts.System, true, false},
		{"stored without origin, by system", "", alerts.System, true, true},
		{"stored without origin, by the desk", "", "desk-1", true, false},
		{"not acknowledged", alerts.OriginSystem, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := alerts.Alert{RaisedAt: statsT0, AckOrigin: tc.origin, AcknowledgedBy: tc.by}
			if tc.acked {
				a.AcknowledgedAt = &at
			}
			if got := alerts.StatsRecordOf(&a).AckBySystem; got != tc.want {
				t.Fatalf("AckBySystem %v, want %v", got, tc.want)
			}
		})
	}
}
