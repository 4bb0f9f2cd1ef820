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

// Dedupe decides what an event does to its signal. prev is the latest
// alert of the event's signal (camera, type, key), or nil. Dedupe is pure: now is injected and nothing is changed. The rules
// (docs/api.md "Occurrences"):
//
//  1. An alert is one occurrence of its signal. While it is open and its
//     signal active, repeats raise its count (bump).
//  2. resolved is final: an activation after a resolution raises a new
//     alert, and nothing else changes a resolved alert.
//  3. An open alert whose signal has ended is reopened by an activation
//     less than the rule's cooldown after the end; at or after the
//     cooldown the activation raises a new alert.
//
// Pulse events (line crossing) are activations whose signal ends at once;
// the engine applies the end together with the raise, bump or reopen.
func Dedupe(prev *Alert, ev Event, rule Rule, now time.Time) Decision {
	activation := ev.State == Active || ev.State == Pulse
	switch {
	case ev.State != Active && ev.State != Inactive && ev.State != Pulse:
		return Decision{ActionIgnore, "unknown state " + string(ev.State)}
	case prev != nil && !prev.Status.Open() && activation && !ev.Sync:
		return Decision{ActionRaise, "previous alert resolved: resolved is final"}
	case prev != nil && !prev.Status.Open():
		return Decision{ActionIgnore, "a resolved alert never changes"}
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
	// The open alert's signal has ended and a new activation arrives.
	if prev.EndedAt != nil && now.Sub(*prev.EndedAt) < rule.Cooldown {
		return Decision{ActionReopen, "activation within cooldown"}
	}
	return Decision{ActionRaise, "activation after the cooldown: a new occurrence"}
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
