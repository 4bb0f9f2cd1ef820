package alerts

import "time"

// Action is what dedupe decides to do with an event.
type Action string

// Dedupe actions.
const (
	// ActionIgnore: the event changes nothing (a state sync of a signal
	// that is not active, an end for a signal that is not active).
	ActionIgnore Action = "ignore"
	// ActionRaise: a new alert.
	ActionRaise Action = "raise"
	// ActionBump: a repeat while the signal is active; count+1.
	ActionBump Action = "bump"
	// ActionReopen: the previous alert's ended signal becomes active again;
	// count+1.
	ActionReopen Action = "reopen"
	// ActionEnd: the signal ended; the alert's status is untouched.
	ActionEnd Action = "end"
	// ActionConfirm: a state sync reports the active signal active; its
	// last_seen_at (the stale timer) is refreshed, count is not.
	ActionConfirm Action = "confirm"
)

// Decision is the result of Dedupe, with the reason for logs and tests.
type Decision struct {
	Action Action
	Reason string
}

// Dedupe decides what an event does to its signal. prev is the latest alert
// of the event's signal (camera, type, key) that the engine still tracks, or
// nil: an open alert, or a resolved one whose signal is active or ended less
// than the rule's cooldown ago. Dedupe is pure: now is injected and nothing is
// changed.
//
// Pulse events (line crossing) are activations whose signal ends at once; the
// engine applies the end together with the raise, bump or reopen.
//
// When the previous alert is still open (awaiting the desk) but its signal
// ended longer than the cooldown ago, a new activation reopens that same
// alert's signal rather than raising a second alert for one signal: the desk
// has one piece of work per signal until it resolves it. Only a resolved
// alert whose signal ended outside the cooldown makes way for a new alert.
func Dedupe(prev *Alert, ev Event, rule Rule, now time.Time) Decision {
	activation := ev.State == Active || ev.State == Pulse
	switch {
	case ev.State != Active && ev.State != Inactive && ev.State != Pulse:
		return Decision{ActionIgnore, "unknown state " + string(ev.State)}
	case prev == nil && !activation:
		return Decision{ActionIgnore, "end of a signal that is not active"}
	case prev == nil && ev.Sync:
		return Decision{ActionIgnore, "state sync never raises an alert"}
	case prev == nil:
		return Decision{ActionRaise, "new signal"}
	case prev.Signal == SignalActive && !activation:
		if ev.Sync {
			return Decision{ActionEnd, "state sync reports the active signal inactive"}
		}
		return Decision{ActionEnd, "signal ended"}
	case prev.Signal == SignalActive && ev.Sync:
		return Decision{ActionConfirm, "state sync confirms the active signal"}
	case prev.Signal == SignalActive:
		return Decision{ActionBump, "repeat while the signal is active"}
	case !activation:
		return Decision{ActionIgnore, "signal already ended"}
	case ev.Sync:
		return Decision{ActionIgnore, "state sync never reopens a signal"}
	}
	// The signal has ended and a new activation arrives.
	var sinceEnd time.Duration
	if prev.EndedAt != nil {
		sinceEnd = now.Sub(*prev.EndedAt)
	}
	switch {
	case sinceEnd < rule.Cooldown:
		return Decision{ActionReopen, "activation within cooldown"}
	case prev.Status.Open():
		return Decision{ActionReopen, "previous alert still open"}
	}
	return Decision{ActionRaise, "previous alert resolved and cooldown passed"}
}

// Stale reports whether a's active signal has had no event for staleAfter
// and should end by itself. staleAfter 0 disables it.
//
// Health signals (camera offline, recording failure, storage full) are
// never stale: the service reports them once when they start and once when
// they end, so silence in between means the condition persists, not that a
// vendor forgot to send "inactive".
func Stale(a *Alert, now time.Time, staleAfter time.Duration) bool {
	return staleAfter > 0 && a.Signal == SignalActive && a.Source != SourceHealth &&
		now.Sub(a.LastSeenAt) >= staleAfter
}
