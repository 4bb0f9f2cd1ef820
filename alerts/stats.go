package alerts

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Stats summarises the alerts raised in [From, To): the figures of the
// whole window and, with a GroupBy, of each group. docs/api.md defines every
// figure with its formula.
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
// neither toward the on-time acknowledgement rate nor the acknowledgement
// times; AckBySystem says how many there were. Their resolution still
// counts.
type Stats struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`

	Figures

	ByStatus   map[Status]int   `json:"by_status"`
	ByType     map[Type]int     `json:"by_type"`
	BySite     map[string]int   `json:"by_site"`
	ByUnit     map[string]int   `json:"by_unit"`
	BySeverity map[Severity]int `json:"by_severity"`

	// GroupBy is the dimension of Groups, "" for none.
	GroupBy GroupBy `json:"group_by,omitempty"`
	Groups  []Group `json:"groups,omitempty"`
}

// Figures are the counts and rates of a set of alerts.
type Figures struct {
	Total      int `json:"total"`
	FalseAlarm int `json:"false_alarm"`

	AckDue        int     `json:"ack_due"`
	AckOnTime     int     `json:"ack_on_time"`
	AckOnTimeRate float64 `json:"ack_on_time_rate"` // 按时受理率
	AckBySystem   int     `json:"ack_by_system"`

	ResolveDue        int     `json:"resolve_due"`
	ResolveOnTime     int     `json:"resolve_on_time"`
	ResolveOnTimeRate float64 `json:"resolve_on_time_rate"` // 按时办结率

	Resolved int `json:"resolved"`
	// Dispatched counts the alerts handed to a unit; Implemented those of
	// them resolved on time, with feedback, not as a false alarm.
	Dispatched         int     `json:"dispatched"`
	Implemented        int     `json:"implemented"`
	ImplementationRate float64 `json:"implementation_rate"` // 落实到位率

	FollowUps        int     `json:"follow_ups"`
	Satisfied        int     `json:"satisfied"`
	SatisfactionRate float64 `json:"satisfaction_rate"` // 回访满意率
	FollowUpRate     float64 `json:"follow_up_rate"`    // 回访率
	FalseAlarmRate   float64 `json:"false_alarm_rate"`  // 误报率

	MedianAckSeconds     float64 `json:"median_ack_seconds"`
	P90AckSeconds        float64 `json:"p90_ack_seconds"`
	MedianResolveSeconds float64 `json:"median_resolve_seconds"`
	P90ResolveSeconds    float64 `json:"p90_resolve_seconds"`

	Overdue     int `json:"overdue"`
	Escalated   int `json:"escalated"`   // alerts escalated at least once (督办)
	Escalations int `json:"escalations"` // escalations in all
	Supervised  int `json:"supervised"`  // alerts flagged 挂牌督办 now
}

// GroupBy is a dimension stats are grouped by.
type GroupBy string

// Stats dimensions.
const (
	BySite     GroupBy = "site"
	ByGrid     GroupBy = "grid"
	ByUnit     GroupBy = "unit"
	ByType     GroupBy = "type"
	BySeverity GroupBy = "severity"
)

// Valid reports whether g is a known dimension.
func (g GroupBy) Valid() bool {
	switch g {
	case BySite, ByGrid, ByUnit, ByType, BySeverity:
		return true
	}
	return false
}

func (g GroupBy) key(r *StatsRecord) string {
	switch g {
	case BySite:
		return r.Site
	case ByGrid:
		return r.Grid
	case ByUnit:
		return r.Unit
	case ByType:
		return string(r.Type)
	case BySeverity:
		return string(r.Severity)
	}
	return ""
}

// Group is the figures of the alerts whose dimension has value Key ("":
// none, such as the alerts not dispatched to a unit).
type Group struct {
	Key string `json:"key"`
	Figures
}

// tally accumulates Figures.
type tally struct {
	f                   Figures
	ackTimes, resolving []float64
}

func (t *tally) add(r *StatsRecord, now time.Time) {
	f := &t.f
	f.Total++
	if r.FalseAlarm {
		f.FalseAlarm++
	}
	if r.AckBySystem {
		f.AckBySystem++
	} else if due, ok := onTime(r.AcknowledgedAt, r.AckDeadline, now); due {
		f.AckDue++
		if ok {
			f.AckOnTime++
		}
	}
	resolveDue, resolvedOnTime := onTime(r.ResolvedAt, r.ResolveDeadline, now)
	if resolveDue {
		f.ResolveDue++
		if resolvedOnTime {
			f.ResolveOnTime++
		}
	}
	resolved := !r.ResolvedAt.IsZero()
	if resolved {
		f.Resolved++
		t.resolving = append(t.resolving, r.ResolvedAt.Sub(r.RaisedAt).Seconds())
	}
	if !r.DispatchedAt.IsZero() {
		f.Dispatched++
		if resolved && resolvedOnTime && r.Feedback && !r.FalseAlarm {
			f.Implemented++
		}
	}
	if !r.AcknowledgedAt.IsZero() && !r.AckBySystem {
		t.ackTimes = append(t.ackTimes, r.AcknowledgedAt.Sub(r.RaisedAt).Seconds())
	}
	if r.FollowUp != 0 {
		f.FollowUps++
		if r.FollowUp > 0 {
			f.Satisfied++
		}
	}
	if r.Overdue {
		f.Overdue++
	}
	if r.Escalations > 0 {
		f.Escalated++
		f.Escalations += r.Escalations
	}
	if r.Supervised {
		f.Supervised++
	}
}

func (t *tally) finish() Figures {
	f := t.f
	f.AckOnTimeRate = rate(f.AckOnTime, f.AckDue)
	f.ResolveOnTimeRate = rate(f.ResolveOnTime, f.ResolveDue)
	f.ImplementationRate = rate(f.Implemented, f.Dispatched)
	f.SatisfactionRate = rate(f.Satisfied, f.FollowUps)
	f.FollowUpRate = rate(f.FollowUps, f.Resolved)
	f.FalseAlarmRate = rate(f.FalseAlarm, f.Resolved)
	f.MedianAckSeconds, f.P90AckSeconds = median(t.ackTimes), p90(t.ackTimes)
	f.MedianResolveSeconds, f.P90ResolveSeconds = median(t.resolving), p90(t.resolving)
	return f
}

// median of xs (sorted in place): the middle value, or the mean of the two
// middle values; 0 for none.
func median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return 0
	}
	slices.Sort(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// p90 of xs (sorted in place), nearest rank: the ⌈0.9·n⌉-th smallest; 0
// for none.
func p90(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[(9*n+9)/10-1]
}

// ComputeStats is the pure part of Stats: as are the alerts raised in the
// window, now decides which deadlines have passed; by (at most one) groups
// them.
func ComputeStats(as []Alert, from, to, now time.Time, by ...GroupBy) Stats {
	c := newStatsComputer(from, to, now, by...)
	for i := range as {
		r := StatsRecordOf(&as[i])
		c.add(&r)
	}
	return c.result()
}

// statsComputer accumulates Stats one record at a time.
type statsComputer struct {
	s      Stats
	now    time.Time
	all    tally
	by     GroupBy
	groups map[string]*tally
}

func newStatsComputer(from, to, now time.Time, by ...GroupBy) *statsComputer {
	c := &statsComputer{now: now, groups: map[string]*tally{}}
	c.s = Stats{From: from, To: to, ByStatus: map[Status]int{}, ByType: map[Type]int{},
		BySite: map[string]int{}, ByUnit: map[string]int{}, BySeverity: map[Severity]int{}}
	if len(by) > 0 {
		c.by = by[0]
	}
	return c
}

func (c *statsComputer) add(r *StatsRecord) {
	c.all.add(r, c.now)
	s := &c.s
	s.ByStatus[r.Status]++
	s.ByType[r.Type]++
	s.BySite[r.Site]++
	s.BySeverity[r.Severity]++
	if r.Unit != "" {
		s.ByUnit[r.Unit]++
	}
	if c.by != "" {
		k := c.by.key(r)
		g := c.groups[k]
		if g == nil {
			g = &tally{}
			c.groups[k] = g
		}
		g.add(r, c.now)
	}
}

func (c *statsComputer) result() Stats {
	s := c.s
	s.Figures = c.all.finish()
	if c.by != "" {
		s.GroupBy = c.by
		keys := make([]string, 0, len(c.groups))
		for k := range c.groups {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		s.Groups = make([]Group, 0, len(keys))
		for _, k := range keys {
			s.Groups = append(s.Groups, Group{Key: k, Figures: c.groups[k].finish()})
		}
	}
	return s
}

// onTime: a zero done is not done yet, a zero deadline is none.
func onTime(done, deadline time.Time, now time.Time) (due, ok bool) {
	switch {
	case !done.IsZero():
		return true, deadline.IsZero() || !done.After(deadline)
	case !deadline.IsZero() && !now.Before(deadline):
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
// MaxStatsRange, grouped by by[0] when given; a longer or empty window, or
// an unknown dimension, is CodeBadRequest.
func (e *Engine) Stats(ctx context.Context, from, to time.Time, by ...GroupBy) (Stats, error) {
	if len(by) > 0 && by[0] != "" && !by[0].Valid() {
		return Stats{}, errorf(CodeBadRequest, fmt.Sprintf("stats: group_by %q: want site, grid, unit, type or severity", by[0]), nil)
	}
	if !from.Before(to) {
		return Stats{}, errorf(CodeBadRequest, "stats: from must be before to", nil)
	}
	if to.Sub(from) > MaxStatsRange {
		return Stats{}, errorf(CodeBadRequest, fmt.Sprintf("stats: from and to are more than %d days apart", MaxStatsRange/(24*time.Hour)), nil)
	}
	c := newStatsComputer(from.UTC(), to.UTC(), e.Now(), by...)
	if src, ok := e.o.Journal.(StatsSource); ok {
		err := src.StatsRecords(ctx, from, to, func(r *StatsRecord) error {
			c.add(r)
			return nil
		})
		if err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
		return c.result(), nil
	}
	f := Filter{Since: from, Until: to, Limit: MaxListLimit}
	for {
		as, next, err := e.o.Journal.List(ctx, f)
		if err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
		for i := range as {
			r := StatsRecordOf(&as[i])
			c.add(&r)
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	return c.result(), nil
}
