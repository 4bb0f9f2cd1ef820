package alerts

import (
	"testing"
	"time"
)

// MergeSystemChange replays a change the service made onto an alert the
// desk changed meanwhile: counts and overdue flags only grow, the desk's
// fields stay, and a resolved alert never changes.
func TestMergeSystemChange(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)
	end := t0.Add(time.Minute)
	cur := Alert{ID: "a", Status: StatusAcknowledged, AcknowledgedBy: "desk-1", Signal: SignalActive, Count: 5,
		LastSeenAt: t0, OverdueAck: true, Overdue: true, Clip: &Clip{Start: t0.Add(-10 * time.Second)}}
	cases := []struct {
		name  string
		cur   func(Alert) Alert
		sys   Alert
		check func(t *testing.T, got Alert)
	}{
		{"an older, smaller count does not lower the count", nil,
			Alert{Count: 3, Signal: SignalActive, LastSeenAt: t0.Add(-time.Second)},
			func(t *testing.T, got Alert) {
				if got.Count != 5 || !got.LastSeenAt.Equal(t0) {
					t.Fatalf("count %d last seen %v, want 5 and %v", got.Count, got.LastSeenAt, t0)
				}
			}},
		{"overdue flags are never cleared", nil,
			Alert{Count: 6, Signal: SignalActive, OverdueResolve: true},
			func(t *testing.T, got Alert) {
				if !got.OverdueAck || !got.OverdueResolve || !got.Overdue || got.Count != 6 {
					t.Fatalf("flags ack %v resolve %v any %v count %d", got.OverdueAck, got.OverdueResolve, got.Overdue, got.Count)
				}
			}},
		{"the end lands with the desk's fields kept", nil,
			Alert{Count: 5, Signal: SignalEnded, EndedAt: &end, Clip: &Clip{Start: t0, End: &end}},
			func(t *testing.T, got Alert) {
				if got.Signal != SignalEnded || got.Clip.End == nil || !got.Clip.Start.Equal(t0.Add(-10*time.Second)) ||
					got.Status != StatusAcknowledged || got.AcknowledgedBy != "desk-1" {
					t.Fatalf("merged %+v", got)
				}
			}},
		{"a resolved alert is returned as it is", func(a Alert) Alert { a.Status = StatusResolved; return a },
			Alert{Count: 9, Signal: SignalEnded, EndedAt: &end, OverdueResolve: true},
			func(t *testing.T, got Alert) {
				if got.Count != 5 || got.Signal != SignalActive || got.OverdueResolve {
					t.Fatalf("resolved alert changed: %+v", got)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := cur
			if c.cur != nil {
				in = c.cur(in)
			}
			c.check(t, MergeSystemChange(in, c.sys))
		})
	}
}
