package alerts

import (
	"slices"
	"time"
)

// Occurrences (docs/api.md "Occurrences"): each alert is one occurrence of
// its signal. The engine remembers the alerts each signal raised in the last
// occurrenceWindow so that a new alert can name the one before it
// (previous_id) and say how often its signal fired (occurrences_24h, 第N次).

// occurrenceWindow is how far back occurrences_24h counts.
const occurrenceWindow = 24 * time.Hour

// DefaultMaxEventAge is Options.MaxEventAge when it is 0.
const DefaultMaxEventAge = 5 * time.Minute

// MaxClockAhead is how far in the future an event's own time may lie and
// still be used: cameras' clocks drift, but footage of the future does not
// exist.
const MaxClockAhead = 5 * time.Second

// raise is one alert a signal raised.
type raise struct {
	id string
	at time.Time
}

// occurrences holds, per signal, its raises of the last occurrenceWindow in
// raised order. e.mu guards it.
type occurrences map[SignalKey][]raise

// add records a's raise; a raise already known is not added twice.
func (o occurrences) add(a *Alert) {
	k := SignalKey{a.Camera, a.Type, a.Key}
	rs := o[k]
	for _, r := range rs {
		if r.id == a.ID {
			return
		}
	}
	rs = append(rs, raise{a.ID, a.RaisedAt})
	slices.SortFunc(rs, func(x, y raise) int {
		if c := x.at.Compare(y.at); c != 0 {
			return c
		}
		if x.id < y.id {
			return -1
		}
		return 1
	})
	o[k] = rs
}

// previous returns the latest alert k raised in the window and how many it
// raised there since now-occurrenceWindow, after forgetting older raises.
func (o occurrences) previous(k SignalKey, now time.Time) (id string, n int) {
	o.prune(k, now)
	rs := o[k]
	if len(rs) == 0 {
		return "", 0
	}
	return rs[len(rs)-1].id, len(rs)
}

// prune forgets k's raises older than the window.
func (o occurrences) prune(k SignalKey, now time.Time) {
	rs := o[k]
	i := 0
	for i < len(rs) && now.Sub(rs[i].at) > occurrenceWindow {
		i++
	}
	if i == len(rs) {
		delete(o, k)
		return
	}
	o[k] = rs[i:]
}

// sweep forgets every raise older than the window.
func (o occurrences) sweep(now time.Time) {
	for k := range o {
		o.prune(k, now)
	}
}

// eventTime is the time an activation received at now is raised at, and the
// alert's detail: the event's own time when it lies within
// [now-MaxEventAge, now+MaxClockAhead], else now with the camera's time kept
// in detail.camera_time. Health events are the service's own and always
// happen now. The difference between the two clocks is observed.
func (e *Engine) eventTime(ev Event, now time.Time) (time.Time, map[string]string) {
	if ev.Source == SourceHealth || ev.At.IsZero() {
		return now, ev.Detail
	}
	at := ev.At.UTC()
	skew := now.Sub(at)
	e.m.skew.WithLabelValues(string(ev.Source)).Observe(skew.Abs().Seconds())
	if skew <= e.o.MaxEventAge && -skew <= MaxClockAhead {
		return at, ev.Detail
	}
	detail := make(map[string]string, len(ev.Detail)+1)
	for k, v := range ev.Detail {
		detail[k] = v
	}
	detail["camera_time"] = at.Format(time.RFC3339Nano)
	return now, detail
}

// endTime is when a signal ended by the event received at now: the event's
// own time when plausible and not before the alert was raised, else now.
func (e *Engine) endTime(a *Alert, ev Event, now time.Time) time.Time {
	if ev.Source == SourceHealth || ev.At.IsZero() {
		return now
	}
	at := ev.At.UTC()
	if skew := now.Sub(at); skew > e.o.MaxEventAge || -skew > MaxClockAhead || at.Before(a.RaisedAt) {
		return now
	}
	return at
}
