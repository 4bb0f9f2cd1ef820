package alerts

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Stats summarises the alerts raised in [From, To).
//
// Rates count only alerts whose step is due: an alert counts toward the
// on-time acknowledgement rate once it is acknowledged or its ack deadline
// has passed (at the time Stats runs), and is on time when acknowledged at or
// before the deadline. The on-time resolve rate (按时办结率) works alike with
// the resolve deadline. Alerts without a deadline count as on time once the
// step is done. A rate with nothing due is 0 with its denominator 0.
//
// Acknowledgements by System (a rule's dispatch_to acknowledges and
// dispatches at raise time) are not the desk's work: such alerts count
// neither toward the on-time acknowledgement rate nor the median
// acknowledgement time; AckBySystem says how many there were. Their
// resolution still counts.
type Stats struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`

	Total      int              `json:"total"`
	FalseAlarm int              `json:"false_alarm"`
	ByStatus   map[Status]int   `json:"by_status"`
	ByType     map[Type]int     `json:"by_type"`
	BySite     map[string]int   `json:"by_site"`
	ByUnit     map[string]int   `json:"by_unit"`
	BySeverity map[Severity]int `json:"by_severity"`

	AckDue        int     `json:"ack_due"`
	AckOnTime     int     `json:"ack_on_time"`
	AckOnTimeRate float64 `json:"ack_on_time_rate"`
	AckBySystem   int     `json:"ack_by_system"`

	ResolveDue        int     `json:"resolve_due"`
	ResolveOnTime     int     `json:"resolve_on_time"`
	ResolveOnTimeRate float64 `json:"resolve_on_time_rate"`

	FollowUps        int     `json:"follow_ups"`
	Satisfied        int     `json:"satisfied"`
	SatisfactionRate float64 `json:"satisfaction_rate"`

	MedianAckSeconds float64 `json:"median_ack_seconds"`
}

// ComputeStats is the pure part of Stats: as are the alerts raised in the
// window, now decides which deadlines have passed.
func ComputeStats(as []Alert, from, to, now time.Time) Stats {
	s := Stats{From: from, To: to, ByStatus: map[Status]int{}, ByType: map[Type]int{},
		BySite: map[string]int{}, ByUnit: map[string]int{}, BySeverity: map[Severity]int{}}
	var ackTimes []float64
	for _, a := range as {
		s.Total++
		s.ByStatus[a.Status]++
		s.ByType[a.Type]++
		s.BySite[a.Site]++
		s.BySeverity[a.Severity]++
		if a.Unit != "" {
			s.ByUnit[a.Unit]++
		}
		if a.FalseAlarm {
			s.FalseAlarm++
		}
		bySystem := a.AcknowledgedAt != nil && a.AcknowledgedBy == System
		if bySystem {
			s.AckBySystem++
		} else if due, ok := onTime(a.AcknowledgedAt, a.AckDeadline, now); due {
			s.AckDue++
			if ok {
				s.AckOnTime++
			}
		}
		if due, ok := onTime(a.ResolvedAt, a.ResolveDeadline, now); due {
			s.ResolveDue++
			if ok {
				s.ResolveOnTime++
			}
		}
		if a.AcknowledgedAt != nil && !bySystem {
			ackTimes = append(ackTimes, a.AcknowledgedAt.Sub(a.RaisedAt).Seconds())
		}
		if a.FollowUp != nil {
			s.FollowUps++
			if a.FollowUp.Satisfied {
				s.Satisfied++
			}
		}
	}
	s.AckOnTimeRate = rate(s.AckOnTime, s.AckDue)
	s.ResolveOnTimeRate = rate(s.ResolveOnTime, s.ResolveDue)
	s.SatisfactionRate = rate(s.Satisfied, s.FollowUps)
	if n := len(ackTimes); n > 0 {
		slices.Sort(ackTimes)
		if n%2 == 1 {
			s.MedianAckSeconds = ackTimes[n/2]
		} else {
			s.MedianAckSeconds = (ackTimes[n/2-1] + ackTimes[n/2]) / 2
		}
	}
	return s
}

func onTime(done, deadline *time.Time, now time.Time) (due, ok bool) {
	switch {
	case done != nil:
		return true, deadline == nil || !done.After(*deadline)
	case deadline != nil && !now.Before(*deadline):
		return true, false
	}
	return false, false
}

func rate(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// MaxStatsRange bounds the window of Stats: every alert of the window is
// loaded for one request, so a window from 1970 must not load the journal.
const MaxStatsRange = 400 * 24 * time.Hour

// Stats reports on the alerts raised in [from, to), a window of at most
// MaxStatsRange; a longer or empty window is CodeBadRequest.
func (e *Engine) Stats(ctx context.Context, from, to time.Time) (Stats, error) {
	if !from.Before(to) {
		return Stats{}, errorf(CodeBadRequest, "stats: from must be before to", nil)
	}
	if to.Sub(from) > MaxStatsRange {
		return Stats{}, errorf(CodeBadRequest, fmt.Sprintf("stats: from and to are more than %d days apart", MaxStatsRange/(24*time.Hour)), nil)
	}
	var all []Alert
	f := Filter{Since: from, Until: to, Limit: MaxListLimit}
	for {
		as, next, err := e.o.Journal.List(ctx, f)
		if err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
		all = append(all, as...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	return ComputeStats(all, from.UTC(), to.UTC(), e.now()), nil
}
