package alerts

import (
	"errors"
	"fmt"
	"time"
)

// Match selects the events a Rule applies to. Empty fields match anything.
type Match struct {
	Type   Type   `json:"type,omitempty"`
	Site   string `json:"site,omitempty"`
	Camera string `json:"camera,omitempty"`
	Grid   string `json:"grid,omitempty"`
}

// Rule says how the alerts of matching events are handled.
type Rule struct {
	Match         Match
	Severity      Severity
	AckWithin     time.Duration // 0: no acknowledgement deadline
	ResolveWithin time.Duration // 0: no resolution deadline
	// DispatchTo is a unit ID: a raised alert is dispatched there at once
	// by "system".
	DispatchTo string
	// Cooldown: an activation within this long after the signal ended
	// reopens the same alert's signal instead of raising another.
	Cooldown time.Duration
	// EscalateTo names the notify receivers an overdue alert is escalated
	// to (督办); none: no escalation. EscalateAfter is the pause between
	// escalations while it stays overdue; 0: ResolveWithin (or, without a
	// resolve deadline, AckWithin).
	EscalateTo    []string
	EscalateAfter time.Duration
}

// Unit is a responsible unit alerts are dispatched to (派出所, 综治办, …).
type Unit struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// DefaultRule applies when no rule matches: minor, 15 minutes to
// acknowledge, 24 hours to resolve.
func DefaultRule() Rule {
	return Rule{Severity: Minor, AckWithin: 15 * time.Minute, ResolveWithin: 24 * time.Hour}
}

// SignalKey names one signal; dedupe keeps one alert per key.
type SignalKey struct {
	Camera string
	Type   Type
	Key    string
}

// Matches reports whether m selects an event of type t on a camera with
// that site and grid.
func (m Match) Matches(t Type, camera, site, grid string) bool {
	return (m.Type == "" || m.Type == t) &&
		(m.Camera == "" || m.Camera == camera) &&
		(m.Site == "" || m.Site == site) &&
		(m.Grid == "" || m.Grid == grid)
}

// RuleFor returns the first rule of rules that matches, else DefaultRule.
func RuleFor(rules []Rule, t Type, camera, site, grid string) Rule {
	for _, r := range rules {
		if r.Match.Matches(t, camera, site, grid) {
			return r
		}
	}
	return DefaultRule()
}

func validateRules(rules []Rule, units map[string]Unit) error {
	var errs []error
	for i, r := range rules {
		if r.Severity.Rank() > 2 {
			errs = append(errs, fmt.Errorf("rules[%d].severity: unknown severity %q", i, r.Severity))
		}
		if r.AckWithin < 0 || r.ResolveWithin < 0 || r.Cooldown < 0 {
			errs = append(errs, fmt.Errorf("rules[%d]: durations must not be negative", i))
		}
		if r.DispatchTo != "" {
			if _, ok := units[r.DispatchTo]; !ok {
				errs = append(errs, fmt.Errorf("rules[%d].dispatch_to: unknown unit %q", i, r.DispatchTo))
			}
		}
	}
	return errors.Join(errs...)
}
