package alerts

import (
	"time"
)

// Status is where an alert stands in its handling.
type Status string

// Handling statuses: new → acknowledged → dispatched → resolved.
const (
	StatusNew          Status = "new"
	StatusAcknowledged Status = "acknowledged"
	StatusDispatched   Status = "dispatched"
	StatusResolved     Status = "resolved"
)

// Open reports whether the alert still needs handling.
func (s Status) Open() bool { return s != StatusResolved }

// Signal says whether the camera signal behind an alert is still on.
type Signal string

// Signal values, independent of the handling status.
const (
	SignalActive Signal = "active"
	SignalEnded  Signal = "ended"
)

// Severity orders alerts on the desk.
type Severity string

// Severities, most severe first.
const (
	Critical Severity = "critical"
	Major    Severity = "major"
	Minor    Severity = "minor"
)

// Rank is 0 for the most severe; unknown severities rank last.
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 0
	case Major:
		return 1
	case Minor:
		return 2
	}
	return 3
}

// Clip is the footage range that belongs to an alert.
type Clip struct {
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end"` // nil while the signal is active
	URL   string     `json:"url"`
}

// HistoryEntry is one handling step, as the desk shows it.
type HistoryEntry struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Action string    `json:"action"`
	Note   string    `json:"note"`
}

// FollowUp is the visit after resolution (回访).
type FollowUp struct {
	At        time.Time `json:"at"`
	By        string    `json:"by"`
	Satisfied bool      `json:"satisfied"`
	Note      string    `json:"note"`
}

// Alert is the unit of work on the response desk. Its JSON shape is the
// contract of DESIGN.md "Alert and its handling lifecycle".
type Alert struct {
	ID              string            `json:"id"`
	Camera          string            `json:"camera"`
	CameraName      string            `json:"camera_name"`
	Site            string            `json:"site"`
	Grid            string            `json:"grid"`
	Type            Type              `json:"type"`
	Key             string            `json:"key"`
	Severity        Severity          `json:"severity"`
	Source          Source            `json:"source"`
	Signal          Signal            `json:"signal"`
	Status          Status            `json:"status"`
	Version         int64             `json:"version"`
	RaisedAt        time.Time         `json:"raised_at"`
	EndedAt         *time.Time        `json:"ended_at"`
	LastSeenAt      time.Time         `json:"last_seen_at"`
	Count           int64             `json:"count"`
	AckDeadline     *time.Time        `json:"ack_deadline"`
	ResolveDeadline *time.Time        `json:"resolve_deadline"`
	Overdue         bool              `json:"overdue"`
	OverdueAck      bool              `json:"overdue_ack"`
	OverdueResolve  bool              `json:"overdue_resolve"`
	AcknowledgedAt  *time.Time        `json:"acknowledged_at"`
	AcknowledgedBy  string            `json:"acknowledged_by"`
	Unit            string            `json:"unit"`
	DispatchedAt    *time.Time        `json:"dispatched_at"`
	ResolvedAt      *time.Time        `json:"resolved_at"`
	ResolvedBy      string            `json:"resolved_by"`
	Feedback        string            `json:"feedback"`
	FalseAlarm      bool              `json:"false_alarm"`
	FollowUp        *FollowUp         `json:"follow_up"`
	Clip            *Clip             `json:"clip"`
	Detail          map[string]string `json:"detail"`
	History         []HistoryEntry    `json:"history"`
}

// ChangeKind names a change to an alert; it is the websocket message kind.
type ChangeKind string

// Change kinds (DESIGN.md websocket section).
const (
	KindRaised       ChangeKind = "raised"
	KindUpdated      ChangeKind = "updated"
	KindAcknowledged ChangeKind = "acknowledged"
	KindDispatched   ChangeKind = "dispatched"
	KindResolved     ChangeKind = "resolved"
	KindEnded        ChangeKind = "ended"
	KindOverdue      ChangeKind = "overdue"
	KindCamera       ChangeKind = "camera"
)

// Change is one event of the journal: an alert's new state after a change,
// numbered by the journal's global sequence.
type Change struct {
	Seq   uint64     `json:"seq"`
	Kind  ChangeKind `json:"kind"`
	At    time.Time  `json:"at"`
	By    string     `json:"by,omitempty"`
	Alert Alert      `json:"alert"`
}
