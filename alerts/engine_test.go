package alerts_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/alerts"
	"vigil/alerts/alertstest"
	"vigil/alerts/boltjournal"
	"vigil/internal/testutil"
)

func count(ks []alerts.ChangeKind, k alerts.ChangeKind) int {
	n := 0
	for _, x := range ks {
		if x == k {
			n++
		}
	}
	return n
}

// The table of the issue: event sequences and the alerts they leave.
func TestEngineEventSequences(t *testing.T) {
	type step struct {
		ev      alerts.Event
		advance time.Duration // before the event
		tick    bool          // run deadline and stale checks after it
	}
	active := alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active)
	cases := []struct {
		name   string
		steps  []step
		alerts int
		check  func(t *testing.T, as []alerts.Alert, kinds []alerts.ChangeKind)
	}{
		{
			name:   "six active posts are one alert with count 6",
			steps:  []step{{ev: active}, {ev: active, advance: time.Second}, {ev: active, advance: time.Second}, {ev: active, advance: time.Second}, {ev: active, advance: time.Second}, {ev: active, advance: time.Second}},
			alerts: 1,
			check: func(t *testing.T, as []alerts.Alert, kinds []alerts.ChangeKind) {
				if as[0].Count != 6 || as[0].Signal != alerts.SignalActive {
					t.Errorf("count %d signal %s, want 6 active", as[0].Count, as[0].Signal)
				}
				if count(kinds, alerts.KindRaised) != 1 || count(kinds, alerts.KindUpdated) != 5 {
					t.Errorf("changes %v", kinds)
				}
			},
		},
		{
			name:   "stale_after ends a signal that never reports inactive",
			steps:  []step{{ev: active}, {advance: 29 * time.Second, tick: true}, {advance: 2 * time.Second, tick: true}},
			alerts: 1,
			check: func(t *testing.T, as []alerts.Alert, kinds []alerts.ChangeKind) {
				if as[0].Signal != alerts.SignalEnded || as[0].EndedAt == nil || !as[0].EndedAt.Equal(alertstest.T0.Add(31*time.Second)) {
					t.Errorf("signal %s ended %v, want ended at +31s", as[0].Signal, as[0].EndedAt)
				}
				if as[0].Status != alerts.StatusNew {
					t.Errorf("stale end changed status to %s", as[0].Status)
				}
				if count(kinds, alerts.KindEnded) != 1 {
					t.Errorf("changes %v, want one ended", kinds)
				}
			},
		},
		{
			name:   "Initialized raises nothing",
			steps:  []step{{ev: alerts.Event{Camera: "hall-entrance", Type: alerts.Motion, State: alerts.Active, Sync: true}}, {ev: alerts.Event{Camera: "hall-entrance", Type: alerts.Motion, State: alerts.Inactive, Sync: true}}},
			alerts: 0,
		},
		{
			name: "Initialized inactive ends an active signal",
			steps: []step{{ev: active},
				{ev: alerts.Event{Camera: "hall-entrance", Type: alerts.Motion, Key: "k", State: alerts.Inactive, Sync: true}, advance: time.Second}},
			alerts: 1,
			check: func(t *testing.T, as []alerts.Alert, kinds []alerts.ChangeKind) {
				if as[0].Signal != alerts.SignalEnded {
					t.Errorf("signal %s, want ended", as[0].Signal)
				}
			},
		},
		{
			name: "line-crossing pulse burst inside cooldown is one alert",
			steps: []step{
				{ev: alertstest.Ev("hall-entrance", alerts.LineCrossing, alerts.Pulse)},
				{ev: alertstest.Ev("hall-entrance", alerts.LineCrossing, alerts.Pulse), advance: 5 * time.Second},
				{ev: alertstest.Ev("hall-entrance", alerts.LineCrossing, alerts.Pulse), advance: 5 * time.Second},
				{ev: alertstest.Ev("hall-entrance", alerts.LineCrossing, alerts.Pulse), advance: 5 * time.Second},
			},
			alerts: 1,
			check: func(t *testing.T, as []alerts.Alert, kinds []alerts.ChangeKind) {
				if as[0].Count != 4 || as[0].Signal != alerts.SignalEnded {
					t.Errorf("count %d signal %s, want 4 ended", as[0].Count, as[0].Signal)
				}
				if as[0].Clip.End == nil || !as[0].Clip.End.Equal(alertstest.T0.Add(15*time.Second+30*time.Second)) {
					t.Errorf("clip end %v, want last pulse + post roll", as[0].Clip.End)
				}
			},
		},
		{
			name: "offline then online ends the camera_offline signal, the alert stays open",
			steps: []step{
				{ev: alerts.Event{Camera: "gate", Type: alerts.CameraOffline, State: alerts.Active, Source: alerts.SourceHealth}},
				{ev: alerts.Event{Camera: "gate", Type: alerts.CameraOffline, State: alerts.Inactive, Source: alerts.SourceHealth}, advance: time.Minute},
			},
			alerts: 1,
			check: func(t *testing.T, as []alerts.Alert, kinds []alerts.ChangeKind) {
				a := as[0]
				if a.Signal != alerts.SignalEnded || a.Status != alerts.StatusNew || a.Severity != alerts.Major {
					t.Errorf("signal %s status %s severity %s, want ended new major", a.Signal, a.Status, a.Severity)
				}
			},
		},
		{
			name: "stale_after does not end health signals; their inactive does",
			steps: []step{
				{ev: alerts.Event{Camera: "gate", Type: alerts.CameraOffline, State: alerts.Active, Source: alerts.SourceHealth}},
				{ev: alerts.Event{Type: alerts.StorageFull, State: alerts.Active, Source: alerts.SourceHealth}},
				{ev: alerts.Event{Camera: "gate", Type: alerts.RecordingFailure, State: alerts.Active, Source: alerts.SourceHealth}},
				{advance: 31 * time.Second, tick: true},
				{advance: 6 * time.Hour, tick: true},
				{ev: alerts.Event{Camera: "gate", Type: alerts.CameraOffline, State: alerts.Inactive, Source: alerts.SourceHealth}, advance: time.Minute, tick: true},
			},
			alerts: 3,
			check: func(t *testing.T, as []alerts.Alert, kinds []alerts.ChangeKind) {
				for _, a := range as {
					wantEnded := a.Type == alerts.CameraOffline
					if ended := a.Signal == alerts.SignalEnded; ended != wantEnded {
						t.Errorf("%s: signal %s after 6h of silence, want ended only for camera_offline after its inactive", a.Type, a.Signal)
					}
				}
				if count(kinds, alerts.KindEnded) != 1 {
					t.Errorf("changes %v, want one ended (camera_offline's inactive)", kinds)
				}
			},
		},
		{
			name:   "inactive for an unknown signal is ignored",
			steps:  []step{{ev: alertstest.Ev("hall-entrance", alerts.Motion, alerts.Inactive)}},
			alerts: 0,
		},
		{
			name: "activation inside cooldown reopens the same alert's signal",
			steps: []step{
				{ev: active},
				{ev: alertstest.Ev("hall-entrance", alerts.Motion, alerts.Inactive), advance: time.Second},
				{ev: active, advance: 59 * time.Second},
			},
			alerts: 1,
			check: func(t *testing.T, as []alerts.Alert, kinds []alerts.ChangeKind) {
				if as[0].Count != 2 || as[0].Signal != alerts.SignalActive || as[0].EndedAt != nil {
					t.Errorf("count %d signal %s ended %v, want 2 active", as[0].Count, as[0].Signal, as[0].EndedAt)
				}
			},
		},
		{
			name: "activation after cooldown on a still open alert raises a new occurrence",
			steps: []step{
				{ev: active},
				{ev: alertstest.Ev("hall-entrance", alerts.Motion, alerts.Inactive), advance: time.Second},
				{ev: active, advance: 10 * time.Minute},
			},
			alerts: 2,
		},
		{
			name: "keys and types are separate signals",
			steps: []step{
				{ev: active},
				{ev: alerts.Event{Camera: "hall-entrance", Type: alerts.Motion, Key: "other", State: alerts.Active}},
				{ev: alertstest.Ev("hall-entrance", alerts.Tamper, alerts.Active)},
				{ev: alertstest.Ev("gate", alerts.Motion, alerts.Active)},
			},
			alerts: 4,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := alertstest.NewFixture(t, "")
			for _, s := range c.steps {
				f.Clock.Advance(s.advance)
				if s.ev.Type != "" {
					f.Handle(t, s.ev)
				}
				if s.tick {
					if err := f.Engine.Tick(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
			}
			as := f.All(t)
			if len(as) != c.alerts {
				t.Fatalf("%d alerts, want %d", len(as), c.alerts)
			}
			if c.check != nil {
				c.check(t, as, f.Kinds(t))
			}
		})
	}
}

// The occurrence rules of docs/api.md, each a case: a resolved alert is
// final, the cooldown decides between reopened and a new alert, repeats of
// an open active alert only count.
func TestOccurrenceRules(t *testing.T) {
	active := alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active) // default rule: cooldown 60s
	inactive := alertstest.Ev("hall-entrance", alerts.Motion, alerts.Inactive)
	t.Run("resolved is final and the next activation is a new alert", func(t *testing.T) {
		f := alertstest.NewFixture(t, "")
		f.Handle(t, active)
		first := f.Only(t)
		if _, err := f.Engine.Resolve(t.Context(), first.ID, "desk-1", "误报", true, first.Version); err != nil {
			t.Fatal(err)
		}
		resolved := f.Only(t)
		if resolved.Signal != alerts.SignalEnded || resolved.EndedAt == nil || resolved.Clip.End == nil {
			t.Fatalf("resolved while active: signal %s ended %v clip %+v, want the signal ended with the resolution", resolved.Signal, resolved.EndedAt, resolved.Clip)
		}
		for range 3 {
			f.Clock.Advance(time.Second)
			f.Handle(t, active)
		}
		f.Handle(t, inactive)
		as := f.All(t)
		if len(as) != 2 {
			t.Fatalf("%d alerts, want the resolved one and one new", len(as))
		}
		if got := as[1]; got.Version != resolved.Version || got.Count != 1 || got.Signal != alerts.SignalEnded || !got.Clip.End.Equal(*resolved.Clip.End) {
			t.Fatalf("resolved alert changed: %+v", got)
		}
		n := as[0]
		if n.Count != 3 || n.PreviousID != first.ID || n.Occurrences24h != 2 || n.Signal != alerts.SignalEnded {
			t.Fatalf("new alert count %d previous %q occurrences %d signal %s", n.Count, n.PreviousID, n.Occurrences24h, n.Signal)
		}
		for _, h := range n.History {
			if h.Action == "updated" || h.Action == "repeat" {
				t.Fatalf("a repeat went into the history: %+v", n.History)
			}
		}
	})
	t.Run("end then activation inside cooldown reopens", func(t *testing.T) {
		f := alertstest.NewFixture(t, "")
		f.Handle(t, active)
		f.Handle(t, inactive)
		f.Clock.Advance(59 * time.Second)
		f.Handle(t, active)
		a := f.Only(t)
		if a.Signal != alerts.SignalActive || a.Count != 2 || a.History[len(a.History)-1].Action != "reopened" {
			t.Fatalf("signal %s count %d history %+v, want reopened", a.Signal, a.Count, a.History)
		}
		ks := f.Kinds(t)
		if ks[len(ks)-1] != alerts.KindReopened {
			t.Fatalf("changes %v, want the last reopened", ks)
		}
	})
	t.Run("end then activation at the cooldown raises a new alert", func(t *testing.T) {
		f := alertstest.NewFixture(t, "")
		f.Handle(t, active)
		f.Handle(t, inactive)
		first := f.Only(t)
		f.Clock.Advance(60 * time.Second)
		f.Handle(t, active)
		as := f.All(t)
		if len(as) != 2 || as[0].PreviousID != first.ID || as[0].Occurrences24h != 2 {
			t.Fatalf("%d alerts, newest previous %q occurrences %d", len(as), as[0].PreviousID, as[0].Occurrences24h)
		}
		if as[1].Status != alerts.StatusNew || as[1].Version != first.Version {
			t.Fatalf("the first alert changed: %+v", as[1])
		}
	})
	t.Run("occurrences count the last 24 hours", func(t *testing.T) {
		f := alertstest.NewFixture(t, "")
		for range 3 {
			f.Handle(t, active)
			f.Handle(t, inactive)
			f.Clock.Advance(12 * time.Hour)
		}
		f.Clock.Advance(time.Hour)
		f.Handle(t, active)
		as := f.All(t)
		if len(as) != 4 || as[0].Occurrences24h != 2 || as[0].PreviousID != as[1].ID {
			t.Fatalf("%d alerts, newest occurrences %d previous %q (want 2, %q)", len(as), as[0].Occurrences24h, as[0].PreviousID, as[1].ID)
		}
	})
	t.Run("updated changes carry a reason", func(t *testing.T) {
		f := alertstest.NewFixture(t, "")
		f.Handle(t, active)
		f.Clock.Advance(time.Second)
		f.Handle(t, active)
		f.Clock.Advance(31 * time.Second)
		if err := f.Engine.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
		cs, err := f.Journal.Since(t.Context(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range cs {
			got = append(got, string(c.Kind)+"/"+string(c.Reason))
		}
		if want := []string{"raised/", "updated/repeat", "ended/stale"}; !slices.Equal(got, want) {
			t.Fatalf("changes %v, want %v", got, want)
		}
	})
}

// An event's own time is the alert's raised_at when it is plausible; else
// the receipt time, with the camera's time kept in the detail.
func TestEventTime(t *testing.T) {
	cases := []struct {
		name       string
		offset     time.Duration // event time - receipt
		wantRaised time.Duration // raised_at - receipt
		cameraTime bool
	}{
		{"a minute ago is used", -time.Minute, -time.Minute, false},
		{"exactly max_event_age ago is used", -5 * time.Minute, -5 * time.Minute, false},
		{"an hour ago is not", -time.Hour, 0, true},
		{"3s ahead is used", 3 * time.Second, 3 * time.Second, false},
		{"a minute ahead is not", time.Minute, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := alertstest.NewFixture(t, "")
			e := alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active)
			e.At = alertstest.T0.Add(c.offset)
			f.Handle(t, e)
			a := f.Only(t)
			if !a.RaisedAt.Equal(alertstest.T0.Add(c.wantRaised)) {
				t.Errorf("raised_at %v, want %v", a.RaisedAt, alertstest.T0.Add(c.wantRaised))
			}
			if !a.Clip.Start.Equal(a.RaisedAt.Add(-10 * time.Second)) {
				t.Errorf("clip starts %v, want pre_roll before raised_at %v", a.Clip.Start, a.RaisedAt)
			}
			if got := a.Detail["camera_time"]; (got != "") != c.cameraTime || (c.cameraTime && got != e.At.Format(time.RFC3339Nano)) {
				t.Errorf("detail.camera_time %q (want it set: %v)", got, c.cameraTime)
			}
			if !a.AckDeadline.Equal(alertstest.T0.Add(15 * time.Minute)) {
				t.Errorf("ack deadline %v runs from the receipt %v", a.AckDeadline, alertstest.T0)
			}
			if n := sumMetric(t, f.Reg, "vigil_event_clock_skew_seconds", map[string]string{"source": "generic"}); n != 1 {
				t.Errorf("skew histogram has %v observations, want 1", n)
			}
		})
	}
}

// A camera_offline alert's clip shows the seconds before the camera dropped.
func TestOfflineClipStartsBeforeLastFrame(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	lastFrame := alertstest.T0.Add(-30 * time.Second)
	f.Handle(t, alerts.Event{Camera: "hall-entrance", Type: alerts.CameraOffline, State: alerts.Active,
		Source: alerts.SourceHealth, At: alertstest.T0, FootageFrom: lastFrame})
	a := f.Only(t)
	if !a.RaisedAt.Equal(alertstest.T0) || !a.Clip.Start.Equal(lastFrame.Add(-10*time.Second)) {
		t.Fatalf("raised %v clip start %v, want %v and %v", a.RaisedAt, a.Clip.Start, alertstest.T0, lastFrame.Add(-10*time.Second))
	}
	f.Holds.Wait(t, "the hold from the clip start", func(h alerts.HoldRequest) bool { return h.Start.Equal(a.Clip.Start) })
	f.Clock.Advance(time.Minute)
	f.Handle(t, alerts.Event{Camera: "hall-entrance", Type: alerts.CameraOffline, State: alerts.Inactive, Source: alerts.SourceHealth, At: alertstest.T0})
	if a := f.Only(t); !a.Clip.Start.Equal(lastFrame.Add(-10 * time.Second)) {
		t.Fatalf("the end moved the clip start to %v", a.Clip.Start)
	}
}

// An alert stays bounded in size whatever the desk posts, and the journal
// grows linearly with what is posted, not with the square of the history.
func TestAlertSizeBounded(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	a := f.Only(t)
	a, err := f.Engine.Resolve(t.Context(), a.ID, "desk-1", "handled", false, a.Version)
	if err != nil {
		t.Fatal(err)
	}
	note := strings.Repeat("回", alerts.MaxNoteBytes/3)
	// The first rounds fill the follow-ups and the history to their bounds
	// (and bbolt's free pages); from then on the file must grow linearly,
	// by at most twice what is posted.
	post := func(n int) (posted int) {
		for i := range n {
			if _, err := f.Engine.FollowUp(t.Context(), a.ID, "desk-1", i%2 == 0, note); err != nil {
				t.Fatal(err)
			}
			posted += len(note)
		}
		return posted
	}
	post(250)
	before := dataSize(t, f.Journal)
	posted := post(250)
	grown := dataSize(t, f.Journal) - before
	t.Logf("250 follow-ups of %d-byte notes: journal data grew %d bytes for %d bytes posted (%.2fx)", len(note), grown, posted, float64(grown)/float64(posted))
	if grown > int64(2*posted) {
		t.Fatalf("journal file grew %d bytes for %d bytes posted, want at most 2x", grown, posted)
	}
	got, err := f.Journal.Get(t.Context(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(got)
	t.Logf("alert JSON %d bytes, %d history entries, %d follow-ups", len(raw), len(got.History), len(got.FollowUps))
	if len(raw) > 256<<10 {
		t.Fatalf("alert JSON %d bytes, want at most 256 KiB", len(raw))
	}
	if len(got.FollowUps) != alerts.MaxFollowUps || len(got.History) > alerts.MaxHistory {
		t.Fatalf("follow_ups %d history %d", len(got.FollowUps), len(got.History))
	}
	if h := got.History[0]; h.Action != alerts.HistoryEarlier || h.Count == 0 {
		t.Fatalf("first history entry %+v, want the collapsed earlier entries", h)
	}
	// Every change is still in the log, each with its own note only.
	cs, err := f.Journal.Since(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	logged := 0
	for _, c := range cs {
		b, _ := json.Marshal(c)
		logged += len(b)
	}
	if logged > 2*2*posted {
		t.Fatalf("change log %d bytes for %d bytes posted, want at most 2x", logged, 2*posted)
	}
}

func dataSize(t *testing.T, j *boltjournal.Journal) int64 {
	t.Helper()
	n, err := j.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRaiseShape(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alerts.Event{Camera: "hall-entrance", Type: alerts.Motion, Key: "Gate", State: alerts.Active, Source: alerts.SourceONVIF,
		Detail: map[string]string{"topic": "tns1:VideoSource/MotionAlarm"}})
	a := f.Only(t)
	if len(a.ID) != 26 {
		t.Errorf("id %q is not a ULID", a.ID)
	}
	want := alerts.Alert{Camera: "hall-entrance", CameraName: "服务大厅入口", Site: "hall", Grid: "G03", Type: alerts.Motion, Key: "Gate",
		Severity: alerts.Minor, Source: alerts.SourceONVIF, Signal: alerts.SignalActive, Status: alerts.StatusNew, Version: 1, Count: 1}
	got := a
	if got.Camera != want.Camera || got.CameraName != want.CameraName || got.Site != want.Site || got.Grid != want.Grid ||
		got.Severity != want.Severity || got.Status != want.Status || got.Signal != want.Signal || got.Version != 1 || got.Count != 1 || got.Source != want.Source {
		t.Errorf("alert %+v", got)
	}
	if !a.RaisedAt.Equal(alertstest.T0) || !a.AckDeadline.Equal(alertstest.T0.Add(15*time.Minute)) || !a.ResolveDeadline.Equal(alertstest.T0.Add(24*time.Hour)) {
		t.Errorf("raised %v ack %v resolve %v", a.RaisedAt, a.AckDeadline, a.ResolveDeadline)
	}
	if a.Clip == nil || !a.Clip.Start.Equal(alertstest.T0.Add(-10*time.Second)) || a.Clip.End != nil || a.Clip.URL != "/api/v1/alerts/"+a.ID+"/clip" {
		t.Errorf("clip %+v", a.Clip)
	}
	if a.Detail["topic"] != "tns1:VideoSource/MotionAlarm" || len(a.History) != 1 || a.History[0].Action != "raised" {
		t.Errorf("detail %v history %v", a.Detail, a.History)
	}
	if n := sumMetric(t, f.Reg, "vigil_alerts_raised_total", map[string]string{"type": "motion", "severity": "minor", "site": "hall"}); n != 1 {
		t.Errorf("raised_total = %v", n)
	}
}

// sumMetric sums a metric family's samples whose labels include want.
func sumMetric(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func TestEvidenceHolds(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	a := f.Only(t)
	h := f.Holds.Wait(t, "the hold of the raise", func(alerts.HoldRequest) bool { return true })
	if h.ID != a.ID || h.Camera != "hall-entrance" || !h.Start.Equal(alertstest.T0.Add(-10*time.Second)) || !h.End.IsZero() || !h.Until.IsZero() {
		t.Fatalf("hold on raise %+v", h)
	}
	f.Clock.Advance(20 * time.Second)
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Inactive))
	f.Holds.Wait(t, "hold end = ended + post roll", func(h alerts.HoldRequest) bool { return h.End.Equal(alertstest.T0.Add(50 * time.Second)) })
	a = f.Only(t)
	f.Clock.Advance(time.Minute)
	if _, err := f.Engine.Resolve(t.Context(), a.ID, "desk-1", "ok", false, a.Version); err != nil {
		t.Fatal(err)
	}
	f.Holds.Wait(t, "hold after resolve", func(h alerts.HoldRequest) bool {
		return h.Until.Equal(alertstest.T0.Add(80*time.Second+90*24*time.Hour)) && h.End.Equal(alertstest.T0.Add(50*time.Second))
	})
}

// A hold that fails (a full disk) is retried until it is placed: an alert's
// footage is never left to retention because one attempt failed.
func TestFailedHoldIsRetried(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Holds.FailNext(2)
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	a := f.Only(t)
	f.Holds.Wait(t, "the hold placed after two failures", func(h alerts.HoldRequest) bool { return h.ID == a.ID })
	if n := sumMetric(t, f.Reg, "vigil_alert_effect_failures_total", map[string]string{"effect": "hold"}); n != 2 {
		t.Fatalf("%v failures counted, want 2", n)
	}
	testutil.WaitFor(t, 5*time.Second, "nothing pending", func() bool {
		return sumMetric(t, f.Reg, "vigil_alert_effects_pending", nil) == 0
	})
}

// A hold still failing when the engine stops is placed at the next start:
// open alerts' holds are placed again when they are restored.
func TestHoldPlacedAgainAfterRestart(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Holds.FailNext(1 << 30)
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	a := f.Only(t)
	g := f.Restart(t)
	g.Holds.Wait(t, "the hold placed again at start", func(h alerts.HoldRequest) bool { return h.ID == a.ID })
}

func TestAutoDispatch(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("gate", alerts.Intrusion, alerts.Active))
	a := f.Only(t)
	if a.Status != alerts.StatusDispatched || a.Unit != "police" || a.AcknowledgedBy != alerts.System || a.Severity != alerts.Critical {
		t.Fatalf("status %s unit %q acked by %q severity %s", a.Status, a.Unit, a.AcknowledgedBy, a.Severity)
	}
	var actions []string
	for _, h := range a.History {
		actions = append(actions, h.Action+"/"+h.By)
	}
	if len(actions) != 3 || actions[1] != "acknowledged/system" || actions[2] != "dispatched/system" {
		t.Fatalf("history %v", actions)
	}
	if k := f.Kinds(t); len(k) != 2 || k[0] != alerts.KindRaised || k[1] != alerts.KindDispatched {
		t.Fatalf("changes %v", k)
	}
}

func TestTransitions(t *testing.T) {
	type act func(f *alertstest.Fixture, t *testing.T, a alerts.Alert) (alerts.Alert, error)
	ack := func(f *alertstest.Fixture, t *testing.T, a alerts.Alert) (alerts.Alert, error) {
		return f.Engine.Ack(t.Context(), a.ID, "desk-1", "seen", a.Version)
	}
	dispatch := func(f *alertstest.Fixture, t *testing.T, a alerts.Alert) (alerts.Alert, error) {
		return f.Engine.Dispatch(t.Context(), a.ID, "desk-1", "zongzhi", "go", a.Version)
	}
	resolve := func(f *alertstest.Fixture, t *testing.T, a alerts.Alert) (alerts.Alert, error) {
		return f.Engine.Resolve(t.Context(), a.ID, "desk-1", "done", false, a.Version)
	}
	followUp := func(f *alertstest.Fixture, t *testing.T, a alerts.Alert) (alerts.Alert, error) {
		return f.Engine.FollowUp(t.Context(), a.ID, "desk-1", true, "fine")
	}
	actions := map[string]act{"ack": ack, "dispatch": dispatch, "resolve": resolve, "follow-up": followUp}
	// reach brings a fresh alert to a status.
	reach := map[alerts.Status][]act{
		alerts.StatusNew:          nil,
		alerts.StatusAcknowledged: {ack},
		alerts.StatusDispatched:   {ack, dispatch},
		alerts.StatusResolved:     {resolve},
	}
	allowed := map[alerts.Status]map[string]alerts.Status{
		alerts.StatusNew:          {"ack": alerts.StatusAcknowledged, "dispatch": alerts.StatusDispatched, "resolve": alerts.StatusResolved},
		alerts.StatusAcknowledged: {"dispatch": alerts.StatusDispatched, "resolve": alerts.StatusResolved},
		alerts.StatusDispatched:   {"resolve": alerts.StatusResolved},
		alerts.StatusResolved:     {"follow-up": alerts.StatusResolved},
	}
	for from, path := range reach {
		for name, do := range actions {
			t.Run(string(from)+"/"+name, func(t *testing.T) {
				f := alertstest.NewFixture(t, "")
				f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
				a := f.Only(t)
				var err error
				for _, p := range path {
					f.Clock.Advance(time.Second)
					if a, err = p(f, t, a); err != nil {
						t.Fatal(err)
					}
				}
				f.Clock.Advance(time.Second)
				got, err := do(f, t, a)
				want, ok := allowed[from][name]
				if !ok {
					if alerts.ErrorCode(err) != alerts.CodeInvalidTransition {
						t.Fatalf("err = %v (code %q), want invalid_transition", err, alerts.ErrorCode(err))
					}
					if cur, _ := f.Journal.Get(t.Context(), a.ID); cur.Version != a.Version {
						t.Fatalf("a refused action changed the alert to version %d", cur.Version)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != want || got.Version != a.Version+1 {
					t.Fatalf("status %s version %d, want %s %d", got.Status, got.Version, want, a.Version+1)
				}
				last := got.History[len(got.History)-1]
				if last.By != "desk-1" {
					t.Errorf("history by %q", last.By)
				}
				if name == "dispatch" && from == alerts.StatusNew {
					n := len(got.History)
					if got.History[n-2].Action != "acknowledged" || got.History[n-1].Action != "dispatched" || got.AcknowledgedAt == nil {
						t.Errorf("dispatch from new: history %+v", got.History)
					}
				}
				if name == "follow-up" && (got.FollowUp == nil || !got.FollowUp.Satisfied) {
					t.Errorf("follow-up %+v", got.FollowUp)
				}
			})
		}
	}
}

func TestActionErrors(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	a := f.Only(t)
	ctx := t.Context()
	cases := []struct {
		name string
		err  error
		code alerts.Code
	}{
		{"missing alert", second(f.Engine.Ack(ctx, "01NOPE", "desk-1", "", 1)), alerts.CodeNotFound},
		{"stale version", second(f.Engine.Ack(ctx, a.ID, "desk-1", "", a.Version+1)), alerts.CodeConflict},
		{"no version", second(f.Engine.Ack(ctx, a.ID, "desk-1", "", 0)), alerts.CodeBadRequest},
		{"unknown unit", second(f.Engine.Dispatch(ctx, a.ID, "desk-1", "fire-brigade", "", a.Version)), alerts.CodeBadRequest},
		{"no actor", second(f.Engine.Resolve(ctx, a.ID, "", "checked", false, a.Version)), alerts.CodeBadRequest},
		{"no feedback", second(f.Engine.Resolve(ctx, a.ID, "desk-1", "", false, a.Version)), alerts.CodeFeedbackRequired},
		{"blank feedback on a false alarm", second(f.Engine.Resolve(ctx, a.ID, "desk-1", " \t\n ", true, a.Version)), alerts.CodeFeedbackRequired},
		{"note too long", second(f.Engine.Ack(ctx, a.ID, "desk-1", strings.Repeat("x", alerts.MaxNoteBytes+1), a.Version)), alerts.CodeTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := alerts.ErrorCode(c.err); got != c.code {
				t.Fatalf("err %v: code %q, want %q", c.err, got, c.code)
			}
		})
	}
	var ce *alerts.ConflictError
	if !errors.As(cases[1].err, &ce) || ce.Current.ID != a.ID {
		t.Fatalf("stale version: %v carries no current alert", cases[1].err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestConcurrentAcks(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	a := f.Only(t)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = f.Engine.Ack(t.Context(), a.ID, "desk", "", a.Version) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch alerts.ErrorCode(err) {
		case "":
			won++
		case alerts.CodeConflict:
		default:
			t.Errorf("ack: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d acks won, want 1", won)
	}
}

func TestDeadlinesAndOverdue(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	tick := func() {
		t.Helper()
		if err := f.Engine.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	f.Clock.Advance(14 * time.Minute)
	tick()
	if a := f.Only(t); a.Overdue {
		t.Fatal("overdue before the ack deadline")
	}
	f.Clock.Advance(time.Minute)
	tick()
	tick()
	f.Clock.Advance(time.Minute)
	tick()
	a := f.Only(t)
	if !a.Overdue || !a.OverdueAck || a.OverdueResolve {
		t.Fatalf("after the ack deadline: overdue %v ack %v resolve %v", a.Overdue, a.OverdueAck, a.OverdueResolve)
	}
	if n := count(f.Kinds(t), alerts.KindOverdue); n != 1 {
		t.Fatalf("%d overdue changes after the ack deadline, want 1", n)
	}
	// Acknowledging late does not clear it; the resolve deadline gets its own.
	a, err := f.Engine.Ack(t.Context(), a.ID, "desk-1", "late", a.Version)
	if err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(24 * time.Hour)
	tick()
	tick()
	a = f.Only(t)
	if !a.OverdueResolve || !a.OverdueAck {
		t.Fatalf("after the resolve deadline: %+v", a)
	}
	if n := count(f.Kinds(t), alerts.KindOverdue); n != 2 {
		t.Fatalf("%d overdue changes, want one per deadline", n)
	}
	if v := sumMetric(t, f.Reg, "vigil_alert_ack_seconds", nil); v != 1 {
		t.Errorf("ack_seconds has %v samples, want 1", v)
	}
	if v := sumMetric(t, f.Reg, "vigil_alerts_open", map[string]string{"status": "acknowledged"}); v != 1 {
		t.Errorf("open{acknowledged} = %v", v)
	}
	for _, d := range []string{"ack", "resolve"} {
		if v := sumMetric(t, f.Reg, "vigil_alerts_overdue_total", map[string]string{"deadline": d}); v != 1 {
			t.Errorf("overdue_total{deadline=%s} = %v", d, v)
		}
	}
	var overdue []string
	for _, h := range a.History {
		if h.Action == "overdue" {
			overdue = append(overdue, h.Note)
		}
	}
	if len(overdue) != 2 || overdue[0] != "ack" || overdue[1] != "resolve" {
		t.Fatalf("overdue history %v", overdue)
	}
}

// Run drives ticks from the clock and events from Submit.
func TestRunTicksAndSubmit(t *testing.T) {
	f := alertstest.StartFixture(t, "", alertstest.T0, time.Second, false) // this test runs Run, ticking every second
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Engine.Run(ctx) }()
	sub, err := f.Journal.Subscribe(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Engine.Submit(alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active)); err != nil {
		t.Fatal(err)
	}
	wait := func(kind alerts.ChangeKind) {
		t.Helper()
		select {
		case c := <-sub.C:
			if c.Kind != kind {
				t.Fatalf("change %s, want %s", c.Kind, kind)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s change", kind)
		}
	}
	wait(alerts.KindRaised)
	// The stale timer fires only as the fake clock passes stale_after; keep
	// advancing until Run has taken a tick after it.
	deadline := time.After(10 * time.Second)
	for ended := false; !ended; {
		f.Clock.Advance(time.Second)
		select {
		case c := <-sub.C:
			if c.Kind != alerts.KindEnded {
				t.Fatalf("change %s, want ended", c.Kind)
			}
			ended = true
		case <-time.After(2 * time.Millisecond):
		case <-deadline:
			t.Fatal("stale signal not ended by Run")
		}
	}
	if got := f.Only(t); !got.EndedAt.After(alertstest.T0.Add(29 * time.Second)) {
		t.Fatalf("ended at %v, before stale_after", got.EndedAt)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSubmitQueueFull(t *testing.T) {
	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(t.TempDir(), "j.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	reg := prometheus.NewRegistry()
	e, err := alerts.New(alerts.Options{Journal: j, QueueSize: 2, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	e1 := alertstest.Ev("cam", alerts.Motion, alerts.Active)
	if e.Submit(e1) != nil || e.Submit(e1) != nil {
		t.Fatal("submit into an empty queue failed")
	}
	if err := e.Submit(e1); !errors.Is(err, alerts.ErrQueueFull) || alerts.ErrorCode(err) != alerts.CodeUnavailable {
		t.Fatalf("third submit: %v", err)
	}
	if v := sumMetric(t, reg, "vigil_alert_events_dropped_total", nil); v != 1 {
		t.Fatalf("dropped = %v", v)
	}
}

func TestRestoreFromJournal(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Tamper, alerts.Active))
	a := only2(t, f)
	if _, err := f.Engine.Ack(t.Context(), a.ID, "desk-1", "", a.Version); err != nil {
		t.Fatal(err)
	}
	_ = f.Journal.Close()
	g := alertstest.NewFixture(t, f.Path)
	g.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	as := g.All(t)
	if len(as) != 2 {
		t.Fatalf("after restart a repeat raised a new alert: %d alerts", len(as))
	}
	if err := g.Engine.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := sumMetric(t, g.Reg, "vigil_alerts_open", map[string]string{"status": "acknowledged"}); v != 1 {
		t.Errorf("open{acknowledged} = %v after restore", v)
	}
	if v := sumMetric(t, g.Reg, "vigil_alerts_open", map[string]string{"status": "new"}); v != 1 {
		t.Errorf("open{new} = %v after restore", v)
	}
}

// only2 is the older of the fixture's two alerts.
func only2(t *testing.T, f *alertstest.Fixture) alerts.Alert {
	as := f.All(t)
	if len(as) != 2 {
		t.Fatalf("%d alerts", len(as))
	}
	return as[1] // the older: motion
}

func TestOptionsValidate(t *testing.T) {
	_, err := alerts.New(alerts.Options{
		Rules: []alerts.Rule{{Severity: "urgent", DispatchTo: "nobody"}},
	})
	if err == nil {
		t.Fatal("New accepted no journal, an unknown severity and an unknown unit")
	}
	for _, want := range []string{"journal is required", "unknown severity", "unknown unit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func resolve(t *testing.T, f *alertstest.Fixture, a alerts.Alert) {
	t.Helper()
	if _, err := f.Engine.Resolve(t.Context(), a.ID, "desk-1", "handled", false, a.Version); err != nil {
		t.Fatal(err)
	}
}

// After a restart the open alerts are restored with their signals, and the
// alerts of the last 24 hours are remembered for previous_id.
func TestRestoreSignalsAfterRestart(t *testing.T) {
	active := alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active) // default rule: cooldown 60s
	inactive := alertstest.Ev("hall-entrance", alerts.Motion, alerts.Inactive)
	t.Run("open alert ended within cooldown reopens", func(t *testing.T) {
		f := alertstest.NewFixture(t, "")
		f.Handle(t, active)
		f.Clock.Advance(time.Second)
		f.Handle(t, inactive)
		f.Clock.Advance(30 * time.Second)
		g := f.Restart(t)
		g.Handle(t, active)
		if a := g.Only(t); a.Signal != alerts.SignalActive || a.Count != 2 {
			t.Fatalf("activation 30s after the end: signal %s count %d, want the same alert reopened", a.Signal, a.Count)
		}
	})
	t.Run("open alert still active ends", func(t *testing.T) {
		f := alertstest.NewFixture(t, "")
		f.Handle(t, active)
		f.Clock.Advance(5 * time.Second)
		g := f.Restart(t)
		g.Handle(t, inactive)
		if a := g.Only(t); a.Signal != alerts.SignalEnded || a.EndedAt == nil || !a.EndedAt.Equal(alertstest.T0.Add(5*time.Second)) {
			t.Fatalf("after restart the end was lost: signal %s ended %v", a.Signal, a.EndedAt)
		}
	})
	t.Run("resolved alert stays resolved; the next activation names it", func(t *testing.T) {
		f := alertstest.NewFixture(t, "")
		f.Handle(t, active)
		first := f.Only(t)
		resolve(t, f, first)
		f.Clock.Advance(5 * time.Second)
		g := f.Restart(t)
		g.Handle(t, inactive)
		g.Handle(t, active)
		as := g.All(t)
		if len(as) != 2 {
			t.Fatalf("%d alerts, want the resolved one and a new one", len(as))
		}
		if as[0].PreviousID != first.ID || as[0].Occurrences24h != 2 {
			t.Errorf("new alert previous_id %q occurrences %d, want %q and 2", as[0].PreviousID, as[0].Occurrences24h, first.ID)
		}
		if old := as[1]; old.Version != 2 || old.Count != 1 || old.Signal != alerts.SignalEnded {
			t.Errorf("resolved alert changed after the restart: %+v", old)
		}
	})
}

// An Initialized report that the signal is active confirms it: the stale
// timer starts again, the count does not move.
func TestInitializedRefreshesStaleTimer(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	f.Clock.Advance(20 * time.Second)
	sync := alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active)
	sync.Sync = true
	f.Handle(t, sync)
	tick := func() {
		t.Helper()
		if err := f.Engine.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	f.Clock.Advance(20 * time.Second) // 40s after the raise, 20s after the confirmation
	tick()
	a := f.Only(t)
	if a.Signal != alerts.SignalActive || a.Count != 1 || !a.LastSeenAt.Equal(alertstest.T0.Add(20*time.Second)) {
		t.Fatalf("after the confirmation: signal %s count %d last seen %v", a.Signal, a.Count, a.LastSeenAt)
	}
	f.Clock.Advance(10 * time.Second)
	tick()
	if a := f.Only(t); a.Signal != alerts.SignalEnded || !a.EndedAt.Equal(alertstest.T0.Add(50*time.Second)) {
		t.Fatalf("signal %s ended %v, want ended 30s after the confirmation", a.Signal, a.EndedAt)
	}
}

func TestSubmitAllIsAllOrNothing(t *testing.T) {
	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(t.TempDir(), "journal.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	reg := prometheus.NewRegistry()
	e, err := alerts.New(alerts.Options{Journal: j, Rules: alertstest.Rules(), Units: []alerts.Unit{{ID: "police"}},
		Cameras: alertstest.Cameras, Clock: alertstest.NewClock(alertstest.T0), Registerer: reg, QueueSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(typ alerts.Type) alerts.Event {
		return alerts.Event{Camera: "hall-entrance", Type: typ, State: alerts.Active, Source: alerts.SourceGeneric}
	}
	steps := []struct {
		name string
		evs  []alerts.Event
		want error
	}{
		{"two of three slots", []alerts.Event{mk(alerts.Motion), mk(alerts.Tamper)}, nil},
		{"two more do not fit: none queued", []alerts.Event{mk(alerts.Intrusion), mk(alerts.VideoLoss)}, alerts.ErrQueueFull},
		{"one fits", []alerts.Event{mk(alerts.IOAlarm)}, nil},
		{"queue full", []alerts.Event{mk(alerts.Other)}, alerts.ErrQueueFull},
		{"nothing always fits", nil, nil},
	}
	for _, s := range steps {
		if err := e.SubmitAll(s.evs); !errors.Is(err, s.want) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.want)
		}
	}
	if err := e.Submit(mk(alerts.Other)); !errors.Is(err, alerts.ErrQueueFull) {
		t.Fatalf("Submit to a full queue: %v", err)
	}
	if got := sumMetric(t, reg, "vigil_alert_events_dropped_total", nil); got != 4 {
		t.Fatalf("dropped = %v, want 4 (2 + 1 by SubmitAll, 1 by Submit)", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	sub, err := j.Subscribe(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var types []alerts.Type
	for len(types) < 3 {
		select {
		case c := <-sub.C:
			types = append(types, c.Alert.Type)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of 3 changes", len(types))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := []alerts.Type{alerts.Motion, alerts.Tamper, alerts.IOAlarm}; !slices.Equal(types, want) {
		t.Fatalf("raised %v, want %v", types, want)
	}
}

// TestRunFlushesQueueOnStop: events queued when Run is stopped (health and
// ONVIF signals already reported) are still handled before Run returns.
func TestRunFlushesQueueOnStop(t *testing.T) {
	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(t.TempDir(), "j.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	e, err := alerts.New(alerts.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	cams := []string{"a", "b", "c", "d", "e"}
	for _, c := range cams {
		if err := e.Submit(alertstest.Ev(c, alerts.Motion, alerts.Active)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // stopped before it ever runs its loop
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got, _, err := j.List(t.Context(), alerts.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(cams) {
		t.Fatalf("%d alerts after stop, want %d", len(got), len(cams))
	}
}

// TestAckHistogramLeavesOutSystemAcks: vigil_alert_ack_seconds measures the
// desk; the acknowledgement implied by a rule's auto-dispatch is not counted.
func TestAckHistogramLeavesOutSystemAcks(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("gate", alerts.Intrusion, alerts.Active)) // auto-dispatched to police
	if got := f.Only(t); got.Status != alerts.StatusDispatched || got.AcknowledgedBy != alerts.System {
		t.Fatalf("auto-dispatch: %+v", got)
	}
	if n := sumMetric(t, f.Reg, "vigil_alert_ack_seconds", nil); n != 0 {
		t.Fatalf("ack histogram has %v samples after an auto-dispatch, want 0", n)
	}
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	var motion alerts.Alert
	for _, a := range f.All(t) {
		if a.Type == alerts.Motion {
			motion = a
		}
	}
	f.Clock.Advance(90 * time.Second)
	if _, err := f.Engine.Ack(t.Context(), motion.ID, "desk-1", "", motion.Version); err != nil {
		t.Fatal(err)
	}
	if n := sumMetric(t, f.Reg, "vigil_alert_ack_seconds", nil); n != 1 {
		t.Fatalf("ack histogram has %v samples after a desk ack, want 1", n)
	}
}

// TestSystemNameRefusedForPeople: a person acting under the system's name
// (a desk token named "system", in any case) is refused, so no action of a
// person is taken for the service's; every change the engine writes carries
// its origin: the raise and the signal's end the system's, the desk's
// acknowledgement a person's.
func TestSystemNameRefusedForPeople(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	a := f.Only(t)
	for _, by := range []string{"system", "System", " SYSTEM "} {
		if _, err := f.Engine.Ack(t.Context(), a.ID, by, "", a.Version); alerts.ErrorCode(err) != alerts.CodeBadRequest {
			t.Errorf("ack by %q: %v, want bad_request", by, err)
		}
	}
	if got := f.Only(t); got.Version != a.Version || got.AcknowledgedAt != nil {
		t.Fatalf("a refused ack changed the alert: %+v", got)
	}
	if _, err := f.Engine.Ack(t.Context(), a.ID, "desk-1", "", a.Version); err != nil {
		t.Fatal(err)
	}
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Inactive))
	cs, err := f.Journal.Since(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := map[alerts.ChangeKind]alerts.Origin{alerts.KindRaised: alerts.OriginSystem, alerts.KindAcknowledged: alerts.OriginPerson, alerts.KindEnded: alerts.OriginSystem}
	if len(cs) != len(want) {
		t.Fatalf("%d changes, want %d: %v", len(cs), len(want), cs)
	}
	for _, c := range cs {
		if c.Origin != want[c.Kind] {
			t.Errorf("%s by %q: origin %q, want %q", c.Kind, c.By, c.Origin, want[c.Kind])
		}
	}
}

// TestChangeOriginOfOlderRecords: a change stored before changes carried
// their origin reads back as the system's only when By is the system.
func TestChangeOriginOfOlderRecords(t *testing.T) {
	for _, c := range []struct {
		json string
		want alerts.Origin
	}{
		{`{"seq":1,"kind":"raised","by":"system","alert":{"id":"01A"}}`, alerts.OriginSystem},
		{`{"seq":2,"kind":"acknowledged","by":"desk-1","alert":{"id":"01A"}}`, alerts.OriginPerson},
		{`{"seq":3,"kind":"updated","alert":{"id":"01A"}}`, alerts.OriginPerson},
		{`{"seq":4,"kind":"acknowledged","by":"system","origin":"person","alert":{"id":"01A"}}`, alerts.OriginPerson},
	} {
		var got alerts.Change
		if err := json.Unmarshal([]byte(c.json), &got); err != nil {
			t.Fatal(err)
		}
		if got.Origin != c.want || got.Alert.ID != "01A" {
			t.Errorf("%s: origin %q alert %q, want %q", c.json, got.Origin, got.Alert.ID, c.want)
		}
	}
}

// A health alert raised by another engine on the same journal (the node
// that held the camera before) is carried on by the one that reports the
// camera now, when its events ask for it (Adopt): the outage repeats on
// the open alert instead of raising a second one, and ends when the camera
// is back here. Without Adopt the engine keeps to the alerts it tracks.
func TestHealthAlertOfAnotherEngineAdopted(t *testing.T) {
	for _, tc := range []struct {
		name      string
		adopt     bool
		wantAlert int
		want      alerts.Signal
	}{
		{"adopted", true, 1, alerts.SignalEnded},
		{"not asked", false, 2, alerts.SignalActive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			holder := alertstest.NewFixture(t, "")
			// The other node's engine started before the alert was raised:
			// its restore at start did not see it.
			other, err := alerts.New(alerts.Options{Journal: holder.Journal, Rules: alertstest.Rules(), Units: []alerts.Unit{{ID: "police"}}, Cameras: alertstest.Cameras,
				Clock: holder.Clock, Registerer: prometheus.NewRegistry(), TickEvery: 10000 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- other.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("other engine: %v", err)
				}
			})
			// Run has restored (nothing) once it handles an event.
			if err := other.Handle(t.Context(), alerts.Event{Camera: "gate", Type: alerts.Motion, State: alerts.Inactive, Source: alerts.SourceGeneric}); err != nil {
				t.Fatal(err)
			}

			offline := alerts.Event{Camera: "hall-entrance", Type: alerts.CameraOffline, State: alerts.Active, Source: alerts.SourceHealth}
			holder.Handle(t, offline)
			raised := holder.All(t)
			if len(raised) != 1 || raised[0].Signal != alerts.SignalActive {
				t.Fatalf("raised on the holder: %+v", raised)
			}

			// The camera moved: still offline on the other node, then back.
			offline.Adopt = tc.adopt
			online := offline
			online.State = alerts.Inactive
			for _, ev := range []alerts.Event{offline, online} {
				if err := other.Handle(t.Context(), ev); err != nil {
					t.Fatal(err)
				}
			}
			as := holder.All(t)
			if len(as) != tc.wantAlert {
				t.Fatalf("%d alerts, want %d: %+v", len(as), tc.wantAlert, as)
			}
			first := as[len(as)-1]
			if first.ID != raised[0].ID || first.Signal != tc.want {
				t.Fatalf("the holder's alert: %+v, want signal %s", first, tc.want)
			}
			if !tc.adopt {
				return
			}
			if first.Count != 2 {
				t.Fatalf("count %d, want 2 (the outage repeated on the other node)", first.Count)
			}
			// The camera moves back and drops again: the first holder's copy
			// of the alert still shows it active, but the journal says it
			// ended there: a new outage is a new alert.
			offline.Adopt = true
			if err := holder.Engine.Handle(t.Context(), offline); err != nil {
				t.Fatal(err)
			}
			as = holder.All(t)
			if len(as) != 2 || as[1].ID != raised[0].ID || as[0].Signal != alerts.SignalActive || as[0].PreviousID != raised[0].ID {
				t.Fatalf("after the camera dropped again on the first holder: %+v", as)
			}
		})
	}
}

// An alert keeps the origin of the change that acknowledged it: the
// system's for a rule's auto-dispatch, a person's for the desk's ack or
// dispatch. Only the desk's acknowledgements are timed in
// vigil_alert_ack_seconds.
func TestAckOriginKept(t *testing.T) {
	f := alertstest.NewFixture(t, "")
	f.Handle(t, alertstest.Ev("gate", alerts.Intrusion, alerts.Active)) // key-site: auto-dispatch to police
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Tamper, alerts.Active))
	byCamera := map[string]alerts.Alert{}
	var tamper alerts.Alert
	for _, a := range f.All(t) {
		if a.Type == alerts.Tamper {
			tamper = a
			continue
		}
		byCamera[a.Camera] = a
	}
	if a := byCamera["gate"]; a.Status != alerts.StatusDispatched || a.AckOrigin != alerts.OriginSystem || a.AcknowledgedBy != alerts.System {
		t.Fatalf("auto-dispatched: status %s, acknowledged by %q origin %q", a.Status, a.AcknowledgedBy, a.AckOrigin)
	}
	f.Clock.Advance(time.Minute)
	acked, err := f.Engine.Ack(t.Context(), byCamera["hall-entrance"].ID, "desk-1", "", byCamera["hall-entrance"].Version)
	if err != nil {
		t.Fatal(err)
	}
	dispatched, err := f.Engine.Dispatch(t.Context(), tamper.ID, "desk-1", "police", "", tamper.Version)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []alerts.Alert{acked, dispatched} {
		if a.AckOrigin != alerts.OriginPerson {
			t.Fatalf("acknowledged by the desk: origin %q", a.AckOrigin)
		}
	}
	mfs, err := f.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var observed uint64
	for _, mf := range mfs {
		if mf.GetName() == "vigil_alert_ack_seconds" {
			observed = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if observed != 2 {
		t.Fatalf("vigil_alert_ack_seconds counted %d acknowledgements, want the desk's 2", observed)
	}
}

// listCounter counts a journal's List calls; its Append waits for release
// while blocking is set.
type listCounter struct {
	alerts.Journal
	lists    atomic.Int64
	blocking atomic.Bool
	entered  chan struct{} // an Append is waiting
	release  chan struct{}
}

func (j *listCounter) Append(ctx context.Context, c alerts.Change, expect int64) (alerts.Change, error) {
	if j.blocking.CompareAndSwap(true, false) {
		close(j.entered)
		<-j.release
	}
	return j.Journal.Append(ctx, c, expect)
}

func (j *listCounter) List(ctx context.Context, f alerts.Filter) ([]alerts.Alert, string, error) {
	j.lists.Add(1)
	return j.Journal.List(ctx, f)
}

// A batch of health events that ask to adopt (a node taking many cameras
// at once) reads the journal's open alerts once, not once per camera.
func TestAdoptReadsTheJournalOncePerBatch(t *testing.T) {
	holder := alertstest.NewFixture(t, "")
	cams := []string{"c1", "c2", "c3", "c4", "c5"}
	for _, c := range cams {
		holder.Handle(t, alerts.Event{Camera: c, Type: alerts.CameraOffline, State: alerts.Active, Source: alerts.SourceHealth})
	}
	j := &listCounter{Journal: holder.Journal, entered: make(chan struct{}), release: make(chan struct{})}
	other, err := alerts.New(alerts.Options{Journal: j, Rules: alertstest.Rules(), Units: []alerts.Unit{{ID: "police"}},
		Clock: holder.Clock, Registerer: prometheus.NewRegistry(), TickEvery: 10000 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- other.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("other engine: %v", err)
		}
	})
	// Its restore at start saw the five alerts; these were raised after.
	if err := other.Handle(t.Context(), alerts.Event{Camera: "c0", Type: alerts.Motion, State: alerts.Inactive, Source: alerts.SourceGeneric}); err != nil {
		t.Fatal(err)
	}
	var raisedLater []alerts.Alert
	for _, c := range cams {
		c += "-later"
		holder.Handle(t, alerts.Event{Camera: c, Type: alerts.CameraOffline, State: alerts.Active, Source: alerts.SourceHealth})
		raisedLater = append(raisedLater, alerts.Alert{Camera: c})
	}
	evs := make([]alerts.Event, len(raisedLater))
	for i, a := range raisedLater {
		evs[i] = alerts.Event{Camera: a.Camera, Type: alerts.CameraOffline, State: alerts.Inactive, Source: alerts.SourceHealth, Adopt: true}
	}
	// A raise held up in the journal lets the five queue behind it: they
	// are the next batch.
	before := j.lists.Load()
	j.blocking.Store(true)
	if err := other.Submit(alerts.Event{Camera: "c0", Type: alerts.Motion, State: alerts.Active, Source: alerts.SourceGeneric}); err != nil {
		t.Fatal(err)
	}
	<-j.entered
	if err := other.SubmitAll(evs); err != nil {
		t.Fatal(err)
	}
	close(j.release)
	testutil.WaitFor(t, 10*time.Second, "the five alerts ended", func() bool {
		ended := 0
		for _, a := range holder.All(t) {
			if strings.HasSuffix(a.Camera, "-later") && a.Signal == alerts.SignalEnded {
				ended++
			}
		}
		return ended == len(evs)
	})
	if n := j.lists.Load() - before; n != 1 {
		t.Fatalf("%d journal reads to adopt %d cameras' alerts, want 1", n, len(evs))
	}
}
