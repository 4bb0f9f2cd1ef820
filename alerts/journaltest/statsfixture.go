package journaltest

import (
	"fmt"
	"time"

	"vigil/alerts"
)

// StatsFixture is the hand-computed fixture of the statistics tests: 30
// alerts raised at t0 (a minute apart) across 3 sites (hall, key-site,
// village) and 3 units (police, zongzhi, sifa), every one with a 5 minute
// acknowledgement and a 60 minute resolution limit, looked at a day later
// (StatsNow) when every deadline has passed. The expected figures in the
// tests were worked out by hand from the table below.
func StatsFixture(t0 time.Time) []alerts.Alert {
	type row struct {
		id, site, unit string
		ack            int // minutes after the raise, dispatched then when unit is set; 0 never; -1 by system at the raise
		res            int // minutes after the raise; 0 open
		fa             bool
		noFeedback     bool   // resolved before feedback was required
		fu             string // "" none, "Y" satisfied, "N" not
		esc            int
		sup            bool
	}
	rows := []row{
		{"H01", "hall", "police", 2, 30, false, false, "Y", 0, false},
		{"H02", "hall", "police", 3, 50, false, false, "Y", 0, false},
		{"H03", "hall", "police", 7, 70, false, false, "N", 1, false},
		{"H04", "hall", "zongzhi", 1, 20, true, false, "", 0, false},
		{"H05", "hall", "zongzhi", 4, 40, false, false, "Y", 0, false},
		{"H06", "hall", "", 2, 10, true, false, "", 0, false},
		{"H07", "hall", "", 6, 0, false, false, "", 2, true},
		{"H08", "hall", "sifa", 5, 60, false, false, "Y", 0, false},
		{"H09", "hall", "sifa", 9, 0, false, false, "", 1, true},
		{"H10", "hall", "", 3, 25, false, false, "N", 0, false},

		{"K01", "key-site", "police", -1, 20, false, false, "Y", 0, false},
		{"K02", "key-site", "police", -1, 30, false, false, "Y", 0, false},
		{"K03", "key-site", "police", -1, 45, false, false, "N", 0, false},
		{"K04", "key-site", "police", -1, 90, false, false, "", 1, false},
		{"K05", "key-site", "police", -1, 15, true, false, "", 0, false},
		{"K06", "key-site", "police", -1, 0, false, false, "", 2, true},
		{"K07", "key-site", "police", -1, 55, false, false, "Y", 0, false},
		{"K08", "key-site", "police", -1, 60, false, true, "", 0, false},
		{"K09", "key-site", "police", -1, 10, false, false, "Y", 0, false},
		{"K10", "key-site", "police", -1, 35, false, false, "", 0, false},

		{"V01", "village", "zongzhi", 2, 30, false, false, "Y", 0, false},
		{"V02", "village", "zongzhi", 8, 100, false, false, "", 1, false},
		{"V03", "village", "sifa", 1, 5, true, false, "", 0, false},
		{"V04", "village", "sifa", 3, 45, false, false, "N", 0, false},
		{"V05", "village", "", 0, 0, false, false, "", 0, false},
		{"V06", "village", "", 4, 20, true, false, "", 0, false},
		{"V07", "village", "zongzhi", 2, 58, false, false, "Y", 0, false},
		{"V08", "village", "sifa", 10, 0, false, false, "", 0, true},
		{"V09", "village", "zongzhi", 3, 33, false, false, "Y", 0, false},
		{"V10", "village", "", 5, 50, false, false, "", 0, false},
	}
	site := map[string]struct {
		sev  alerts.Severity
		typ  alerts.Type
		grid string
	}{
		"hall":     {alerts.Major, alerts.Intrusion, "G01"},
		"key-site": {alerts.Critical, alerts.LineCrossing, "G02"},
		"village":  {alerts.Minor, alerts.Motion, "G03"},
	}
	min := func(at time.Time, m int) *time.Time { t := at.Add(time.Duration(m) * time.Minute); return &t }
	var out []alerts.Alert
	for i, r := range rows {
		raised := t0.Add(time.Duration(i) * time.Minute)
		s := site[r.site]
		a := NewAlert(fmt.Sprintf("01STATS%s", r.id), raised)
		a.Camera, a.Site, a.Grid, a.Severity, a.Type = r.site+"-cam", r.site, s.grid, s.sev, s.typ
		a.Key = r.id
		a.AckDeadline, a.ResolveDeadline = min(raised, 5), min(raised, 60)
		a.Signal, a.EndedAt = alerts.SignalEnded, min(raised, 1)
		switch {
		case r.ack == -1:
			a.AcknowledgedAt, a.AcknowledgedBy = &raised, alerts.System
			a.Status, a.DispatchedAt = alerts.StatusDispatched, &raised
		case r.ack > 0:
			a.AcknowledgedAt, a.AcknowledgedBy, a.Status = min(raised, r.ack), "desk-1", alerts.StatusAcknowledged
			if r.unit != "" {
				a.Status, a.DispatchedAt = alerts.StatusDispatched, min(raised, r.ack)
			}
		}
		a.Unit = r.unit
		if r.res > 0 {
			a.Status, a.ResolvedAt, a.ResolvedBy = alerts.StatusResolved, min(raised, r.res), "desk-1"
			if !r.noFeedback {
				a.Feedback = "已处置"
			}
			a.FalseAlarm = r.fa
		}
		ackLate := r.ack == 0 || r.ack > 5
		resLate := r.res == 0 || r.res > 60
		a.OverdueAck, a.OverdueResolve = ackLate && r.ack != -1, resLate
		a.Overdue = a.OverdueAck || a.OverdueResolve
		for k := range r.esc {
			a.Escalations = append(a.Escalations, alerts.Escalation{At: *min(raised, 5+30*k), To: []string{"leaders"}})
		}
		if r.sup {
			a.Supervision = &alerts.Supervision{At: *min(raised, 10), By: "leader-1", Due: *min(raised, 48*60), Note: "挂牌督办"}
		}
		if r.fu != "" {
			a.FollowUp = &alerts.FollowUp{At: *min(raised, 24*60-30), By: "desk-1", Satisfied: r.fu == "Y"}
			a.FollowUps = []alerts.FollowUp{*a.FollowUp}
		}
		out = append(out, a)
	}
	return out
}

// StatsNow is when the fixture's statistics are computed: a day after t0.
func StatsNow(t0 time.Time) time.Time { return t0.Add(24 * time.Hour) }
