package notify

import "vigil/alerts"

// Notified are the change kinds that leave Vigil; the others (desk
// actions, repeats) stay on the desk.
var Notified = []alerts.ChangeKind{alerts.KindRaised, alerts.KindReopened, alerts.KindOverdue, alerts.KindEscalated}

// Match selects changes; empty fields match anything.
type Match struct {
	Kind     alerts.ChangeKind
	Severity alerts.Severity
	Site     string
	Type     alerts.Type
}

// Matches reports whether m selects a change of kind k to a.
func (m Match) Matches(k alerts.ChangeKind, a *alerts.Alert) bool {
	return (m.Kind == "" || m.Kind == k) &&
		(m.Severity == "" || m.Severity == a.Severity) &&
		(m.Site == "" || m.Site == a.Site) &&
		(m.Type == "" || m.Type == a.Type)
}

// Route sends matching changes to receivers.
type Route struct {
	Match Match
	To    []string
}

// Receivers is where change c goes: the first matching route's receivers,
// and, for an escalation, the receivers it names (the rule's escalate_to);
// each receiver once, in that order. Nil for kinds outside Notified.
func Receivers(routes []Route, c *alerts.Change) []string {
	notified := false
	for _, k := range Notified {
		notified = notified || k == c.Kind
	}
	if !notified {
		return nil
	}
	var to []string
	seen := map[string]bool{}
	add := func(ids []string) {
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				to = append(to, id)
			}
		}
	}
	for _, r := range routes {
		if r.Match.Matches(c.Kind, &c.Alert) {
			add(r.To)
			break
		}
	}
	if c.Kind == alerts.KindEscalated {
		if es := c.Alert.Escalations; len(es) > 0 {
			add(es[len(es)-1].To)
		}
	}
	return to
}
