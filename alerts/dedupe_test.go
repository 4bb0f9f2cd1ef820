package alerts

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDedupe(t *testing.T) {
	now := time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)
	rule := Rule{Cooldown: 30 * time.Second}
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	active := &Alert{Signal: SignalActive, Status: StatusNew}
	endedRecently := &Alert{Signal: SignalEnded, Status: StatusNew, EndedAt: ago(10 * time.Second)}
	endedLongAgoOpen := &Alert{Signal: SignalEnded, Status: StatusAcknowledged, EndedAt: ago(time.Hour)}
	endedRecentlyResolved := &Alert{Signal: SignalEnded, Status: StatusResolved, EndedAt: ago(10 * time.Second)}
	endedLongAgoResolved := &Alert{Signal: SignalEnded, Status: StatusResolved, EndedAt: ago(time.Hour)}
	activeResolved := &Alert{Signal: SignalActive, Status: StatusResolved}
	endedAtCooldown := &Alert{Signal: SignalEnded, Status: StatusNew, EndedAt: ago(rule.Cooldown)}
	endedJustInside := &Alert{Signal: SignalEnded, Status: StatusNew, EndedAt: ago(rule.Cooldown - time.Nanosecond)}
	endedNowCooldown0 := &Alert{Signal: SignalEnded, Status: StatusNew, EndedAt: ago(0), Type: Other}
	e := func(s State, sync bool) Event { return Event{Camera: "c", Type: Motion, State: s, Sync: sync} }
	cases := []struct {
		name string
		prev *Alert
		ev   Event
		want Action
	}{
		{"first activation raises", nil, e(Active, false), ActionRaise},
		{"first pulse raises", nil, e(Pulse, false), ActionRaise},
		{"Initialized active raises nothing", nil, e(Active, true), ActionIgnore},
		{"Initialized inactive raises nothing", nil, e(Inactive, true), ActionIgnore},
		{"unknown inactive is ignored", nil, e(Inactive, false), ActionIgnore},
		{"unknown state is ignored", nil, e("blinking", false), ActionIgnore},
		{"repeat while active bumps", active, e(Active, false), ActionBump},
		{"pulse while active bumps", active, e(Pulse, false), ActionBump},
		{"Initialized active confirms", active, e(Active, true), ActionConfirm},
		{"inactive ends", active, e(Inactive, false), ActionEnd},
		{"Initialized inactive ends an active signal", active, e(Inactive, true), ActionEnd},
		{"inactive after end is ignored", endedRecently, e(Inactive, false), ActionIgnore},
		{"activation inside cooldown reopens", endedRecently, e(Active, false), ActionReopen},
		{"pulse inside cooldown reopens", endedRecently, e(Pulse, false), ActionReopen},
		{"Initialized never reopens", endedRecently, e(Active, true), ActionIgnore},
		{"open alert past cooldown raises a new occurrence", endedLongAgoOpen, e(Active, false), ActionRaise},
		{"open alert exactly at cooldown raises a new occurrence", endedAtCooldown, e(Active, false), ActionRaise},
		{"open alert just inside cooldown reopens", endedJustInside, e(Active, false), ActionReopen},
		{"resolved alert inside cooldown raises anew", endedRecentlyResolved, e(Active, false), ActionRaise},
		{"resolved alert past cooldown raises anew", endedLongAgoResolved, e(Active, false), ActionRaise},
		{"repeat on a resolved alert with an active signal raises anew", activeResolved, e(Active, false), ActionRaise},
		{"pulse on a resolved alert raises anew", endedRecentlyResolved, e(Pulse, false), ActionRaise},
		{"end on a resolved alert with an active signal changes nothing", activeResolved, e(Inactive, false), ActionIgnore},
		{"Initialized on a resolved alert changes nothing", activeResolved, e(Active, true), ActionIgnore},
		{"cooldown 0: any activation after the end is new", endedNowCooldown0, e(Active, false), ActionRaise},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rule
			if c.prev == endedNowCooldown0 {
				r.Cooldown = 0
			}
			d := Dedupe(c.prev, c.ev, r, now)
			if d.Action != c.want {
				t.Fatalf("got %s (%s), want %s", d.Action, d.Reason, c.want)
			}
			if d.Reason == "" {
				t.Fatal("no reason")
			}
		})
	}
}

func TestStale(t *testing.T) {
	now := time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)
	const after = 30 * time.Second
	seen := func(src Source, typ Type, signal Signal, ago time.Duration) *Alert {
		return &Alert{Source: src, Type: typ, Signal: signal, LastSeenAt: now.Add(-ago)}
	}
	cases := []struct {
		name       string
		a          *Alert
		staleAfter time.Duration
		want       bool
	}{
		{"camera signal silent for stale_after ends", seen(SourceHikvision, Motion, SignalActive, after), after, true},
		{"camera signal silent for longer ends", seen(SourceONVIF, Intrusion, SignalActive, time.Hour), after, true},
		{"camera signal seen recently stays", seen(SourceDahua, Motion, SignalActive, after-time.Nanosecond), after, false},
		{"ended signal is never stale", seen(SourceGeneric, Motion, SignalEnded, time.Hour), after, false},
		{"stale_after 0 disables it", seen(SourceGeneric, Motion, SignalActive, time.Hour), 0, false},
		{"camera_offline from health is never stale", seen(SourceHealth, CameraOffline, SignalActive, 24*time.Hour), after, false},
		{"storage_full from health is never stale", seen(SourceHealth, StorageFull, SignalActive, 24*time.Hour), after, false},
		{"recording_failure from health is never stale", seen(SourceHealth, RecordingFailure, SignalActive, 24*time.Hour), after, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Stale(c.a, now, c.staleAfter); got != c.want {
				t.Fatalf("Stale = %v, want %v", got, c.want)
			}
		})
	}
}

func TestRuleFor(t *testing.T) {
	rules := []Rule{
		{Match: Match{Type: Intrusion, Site: "key-site"}, Severity: Critical},
		{Match: Match{Grid: "G03"}, Severity: Major},
		{Match: Match{Camera: "hall-entrance", Type: Motion}, Severity: Minor, Cooldown: time.Minute},
	}
	cases := []struct {
		name                string
		typ                 Type
		camera, site, grid  string
		severity            Severity
		cooldown, ackWithin time.Duration
	}{
		{"type and site", Intrusion, "gate", "key-site", "G07", Critical, 0, 0},
		{"first match wins", Intrusion, "gate", "key-site", "G03", Critical, 0, 0},
		{"grid", Motion, "hall-entrance", "hall", "G03", Major, 0, 0},
		{"camera and type", Motion, "hall-entrance", "hall", "G01", Minor, time.Minute, 0},
		{"no match: default", Tamper, "x", "y", "z", Minor, 0, 15 * time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := RuleFor(rules, c.typ, c.camera, c.site, c.grid)
			if r.Severity != c.severity || r.Cooldown != c.cooldown || r.AckWithin != c.ackWithin {
				t.Fatalf("got %+v", r)
			}
		})
	}
	if d := DefaultRule(); d.ResolveWithin != 24*time.Hour {
		t.Fatalf("default %+v", d)
	}
}

func TestStatsExample(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	at := func(m float64) *time.Time { t := t0.Add(time.Duration(m * float64(time.Minute))); return &t }
	mk := func(id string, typ Type, site string, raised float64, ackDL, resDL float64) Alert {
		return Alert{ID: id, Type: typ, Site: site, Status: StatusNew, RaisedAt: *at(raised), AckDeadline: at(raised + ackDL), ResolveDeadline: at(raised + resDL)}
	}
	// Five alerts; Stats runs at t0+120m.
	a1 := mk("1", Intrusion, "key-site", 0, 2, 30) // acked at 1m (on time), dispatched police, resolved at 20m (on time), satisfied
	a1.Status, a1.AcknowledgedAt, a1.Unit, a1.ResolvedAt = StatusResolved, at(1), "police", at(20)
	a1.FollowUp = &FollowUp{Satisfied: true}
	a2 := mk("2", Intrusion, "key-site", 10, 2, 30) // acked at 15m (late: 5m), resolved at 50m (late), not satisfied, false alarm
	a2.Status, a2.AcknowledgedAt, a2.Unit, a2.ResolvedAt, a2.FalseAlarm = StatusResolved, at(15), "police", at(50), true
	a2.FollowUp = &FollowUp{Satisfied: false}
	a3 := mk("3", Motion, "hall", 30, 15, 24*60) // acked at 33m (3m, on time), dispatched zongzhi, resolve not due
	a3.Status, a3.AcknowledgedAt, a3.Unit = StatusDispatched, at(33), "zongzhi"
	a4 := mk("4", Motion, "hall", 60, 15, 24*60)  // never acked: ack deadline 75m passed → due, late
	a5 := mk("5", Tamper, "hall", 110, 15, 24*60) // new, nothing due yet
	now := *at(120)
	s := ComputeStats([]Alert{a1, a2, a3, a4, a5}, t0, now, now)

	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("total", s.Total, 5)
	check("resolved", s.ByStatus[StatusResolved], 2)
	check("dispatched", s.ByStatus[StatusDispatched], 1)
	check("new", s.ByStatus[StatusNew], 2)
	check("intrusion", s.ByType[Intrusion], 2)
	check("motion", s.ByType[Motion], 2)
	check("tamper", s.ByType[Tamper], 1)
	check("hall", s.BySite["hall"], 3)
	check("police", s.ByUnit["police"], 2)
	check("zongzhi", s.ByUnit["zongzhi"], 1)
	check("false alarms", s.FalseAlarm, 1)
	// Ack due: a1 (on time), a2 (late), a3 (on time), a4 (deadline passed) → 2/4.
	check("ack due", s.AckDue, 4)
	check("ack on time", s.AckOnTime, 2)
	check("ack rate", s.AckOnTimeRate, 0.5)
	// Resolve due: a1 (on time), a2 (late) → 1/2.
	check("resolve due", s.ResolveDue, 2)
	check("resolve rate", s.ResolveOnTimeRate, 0.5)
	check("follow-ups", s.FollowUps, 2)
	check("satisfaction", s.SatisfactionRate, 0.5)
	// Ack times 60s, 300s, 180s → median 180s.
	check("median ack", s.MedianAckSeconds, 180.0)

	s = ComputeStats([]Alert{a1, a2, a3, a4, a5, {ID: "6", AcknowledgedAt: at(10), RaisedAt: t0}}, t0, now, now)
	// Ack times 60, 180, 300, 600 → (180+300)/2.
	check("median ack of four", s.MedianAckSeconds, 240.0)
	check("empty rate", ComputeStats(nil, t0, now, now).SatisfactionRate, 0.0)
}

// Auto-dispatch by rule acknowledges at raise time as "system"; that is not
// the desk's work and must not lift the on-time ack rate or pull the median
// ack time to zero.
func TestStatsExcludeSystemAcks(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	at := func(m float64) *time.Time { t := t0.Add(time.Duration(m * float64(time.Minute))); return &t }
	alert := func(by string, ackedAt float64) Alert {
		a := Alert{Type: Intrusion, Status: StatusAcknowledged, RaisedAt: t0, AckDeadline: at(2), ResolveDeadline: at(30)}
		if by != "" {
			a.AcknowledgedAt, a.AcknowledgedBy = at(ackedAt), by
		} else {
			a.Status = StatusNew
		}
		return a
	}
	auto := alert(System, 0)
	auto.Status, auto.Unit, auto.DispatchedAt = StatusDispatched, "police", at(0)
	autoResolved := auto
	autoResolved.Status, autoResolved.ResolvedAt = StatusResolved, at(10)
	now := *at(60)
	cases := []struct {
		name                                string
		as                                  []Alert
		ackDue, ackOnTime, bySystem         int
		ackRate, medianSeconds, resolveRate float64
		resolveDue                          int
	}{
		{"only auto-dispatched: nothing due", []Alert{auto}, 0, 0, 1, 0, 0, 0, 1},
		{"desk late beside auto-dispatched", []Alert{auto, alert("desk-1", 5)}, 1, 0, 1, 0, 300, 0, 2},
		{"desk on time beside auto-dispatched", []Alert{auto, auto, alert("desk-1", 1)}, 1, 1, 2, 1, 60, 0, 3},
		{"median of the desk's acks only", []Alert{auto, alert("desk-1", 1), alert("desk-2", 3)}, 2, 1, 1, 0.5, 120, 0, 3},
		{"never acked is due and late", []Alert{auto, alert("", 0)}, 1, 0, 1, 0, 0, 0, 2},
		{"an auto-dispatched alert's resolution still counts", []Alert{autoResolved}, 0, 0, 1, 0, 0, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ComputeStats(c.as, t0, now, now)
			if s.AckDue != c.ackDue || s.AckOnTime != c.ackOnTime || s.AckBySystem != c.bySystem || s.AckOnTimeRate != c.ackRate {
				t.Errorf("ack due %d on time %d by system %d rate %v, want %d %d %d %v",
					s.AckDue, s.AckOnTime, s.AckBySystem, s.AckOnTimeRate, c.ackDue, c.ackOnTime, c.bySystem, c.ackRate)
			}
			if s.MedianAckSeconds != c.medianSeconds {
				t.Errorf("median ack %v s, want %v", s.MedianAckSeconds, c.medianSeconds)
			}
			if s.ResolveDue != c.resolveDue || s.ResolveOnTimeRate != c.resolveRate {
				t.Errorf("resolve due %d rate %v, want %d %v", s.ResolveDue, s.ResolveOnTimeRate, c.resolveDue, c.resolveRate)
			}
		})
	}
}

// TestErrorCodes: every domain error and sentinel has its code (alertsapi
// maps codes to HTTP statuses).
func TestErrorCodes(t *testing.T) {
	cases := []struct {
		err  error
		code Code
	}{
		{errorf(CodeNotFound, "x", nil), CodeNotFound},
		{ErrNotFound, CodeNotFound},
		{&ConflictError{}, CodeConflict},
		{errorf(CodeInvalidTransition, "x", nil), CodeInvalidTransition},
		{errorf(CodeBadRequest, "x", nil), CodeBadRequest},
		{ErrBadCursor, CodeBadRequest},
		{ErrQueueFull, CodeUnavailable},
		{ErrUnavailable, CodeUnavailable},
		{fmt.Errorf("redisjournal: append: dial tcp 127.0.0.1:6379: %w", ErrUnavailable), CodeUnavailable},
		{errorf(CodeTooLarge, "x", nil), CodeTooLarge},
		{ErrTooOld, CodeInternal},
	}
	for _, c := range cases {
		if got := ErrorCode(c.err); got != c.code {
			t.Errorf("%v: code %q, want %q", c.err, got, c.code)
		}
	}
	if m := ErrorMessage(ErrTooOld); m != "internal error" {
		t.Errorf("internal error leaks %q", m)
	}
	if m := ErrorMessage(fmt.Errorf("dial tcp 127.0.0.1:6379: %w", ErrUnavailable)); strings.Contains(m, "6379") {
		t.Errorf("unavailable error leaks %q", m)
	}
}
