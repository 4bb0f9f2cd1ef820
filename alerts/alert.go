package alerts

import (
	"encoding/json"
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

// Snapshot is the stored picture of an alert: the first keyframe at or
// after its raised_at (within a few seconds, else the last one before).
type Snapshot struct {
	URL    string    `json:"url"`
	At     time.Time `json:"at"` // the keyframe's wall-clock time
	SHA256 string    `json:"sha256"`
}

// HistoryEntry is one handling step, as the desk shows it.
type HistoryEntry struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Action string    `json:"action"`
	Note   string    `json:"note"`
	// Count is set on the one "earlier" entry only: how many of the oldest
	// entries it stands for (see MaxHistory).
	Count int `json:"count,omitempty"`
	// Version is the alert version the step made; 0 on entries written
	// before it was recorded and on the "earlier" entry.
	Version int64 `json:"version,omitempty"`
}

// Bounds on an alert's size: an alert is evidence, but a desk (or an
// attacker with a desk token) must not be able to grow one without limit.
const (
	// MaxHistory is the most history entries an alert keeps; the oldest
	// collapse into one entry with action "earlier" and their count.
	MaxHistory = 200
	// MaxHistoryNotes bounds the bytes of all history notes together; past
	// it the oldest entries collapse the same way.
	MaxHistoryNotes = 96 << 10
	// MaxFollowUps is the most follow-ups an alert keeps, newest last.
	MaxFollowUps = 20
	// MaxNoteBytes bounds one note, feedback or follow-up text (the web
	// app's text boxes stop at 1,300 characters, 3,900 bytes of Chinese).
	MaxNoteBytes = 4 << 10
)

// HistoryEarlier is the action of the entry the oldest history collapses into.
const HistoryEarlier = "earlier"

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
	ID              string     `json:"id"`
	Camera          string     `json:"camera"`
	CameraName      string     `json:"camera_name"`
	Site            string     `json:"site"`
	Grid            string     `json:"grid"`
	Type            Type       `json:"type"`
	Key             string     `json:"key"`
	Severity        Severity   `json:"severity"`
	Source          Source     `json:"source"`
	Signal          Signal     `json:"signal"`
	Status          Status     `json:"status"`
	Version         int64      `json:"version"`
	RaisedAt        time.Time  `json:"raised_at"`
	EndedAt         *time.Time `json:"ended_at"`
	LastSeenAt      time.Time  `json:"last_seen_at"`
	Count           int64      `json:"count"`
	AckDeadline     *time.Time `json:"ack_deadline"`
	ResolveDeadline *time.Time `json:"resolve_deadline"`
	Overdue         bool       `json:"overdue"`
	OverdueAck      bool       `json:"overdue_ack"`
	OverdueResolve  bool       `json:"overdue_resolve"`
	AcknowledgedAt  *time.Time `json:"acknowledged_at"`
	AcknowledgedBy  string     `json:"acknowledged_by"`
	AckOrigin       Origin     `json:"acknowledged_origin,omitempty"` // of the acknowledging change (system: a rule's auto-dispatch); "" if stored before it was kept
	Unit            string     `json:"unit"`
	DispatchedAt    *time.Time `json:"dispatched_at"`
	ResolvedAt      *time.Time `json:"resolved_at"`
	ResolvedBy      string     `json:"resolved_by"`
	Feedback        string     `json:"feedback"`
	FalseAlarm      bool       `json:"false_alarm"`
	FollowUp        *FollowUp  `json:"follow_up"`            // the latest of FollowUps
	FollowUps       []FollowUp `json:"follow_ups,omitempty"` // at most MaxFollowUps, oldest first
	// PreviousID is the latest earlier alert of the same (camera, type, key),
	// "" for the first; Occurrences24h counts the alerts the key raised in
	// the 24 hours up to this one, this one included (第N次).
	// Escalations are the times the overdue alert was escalated (督办),
	// oldest first; Supervision is the desk's 挂牌督办 flag, nil when not
	// set or cleared.
	Escalations    []Escalation `json:"escalations,omitempty"`
	Supervision    *Supervision `json:"supervision"`
	PreviousID     string       `json:"previous_id,omitempty"`
	Occurrences24h int          `json:"occurrences_24h,omitempty"`
	Clip           *Clip        `json:"clip"`
	// Snapshot is the picture of the alert's moment, stored as evidence;
	// nil until it is (it arrives as an updated change, reason snapshot).
	Snapshot *Snapshot         `json:"snapshot,omitempty"`
	Detail   map[string]string `json:"detail"`
	History  []HistoryEntry    `json:"history"`
}

// Escalation is one 督办 of an overdue alert.
type Escalation struct {
	At time.Time `json:"at"`
	// To are the receivers told (the rule's escalate_to).
	To []string `json:"to"`
}

// Supervision is 挂牌督办: a desk user flags an alert to be followed up by
// leadership until Due.
type Supervision struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Due  time.Time `json:"due"`
	Note string    `json:"note"`
}

// ChangeKind names a change to an alert; it is the websocket message kind.
type ChangeKind string

// Change kinds (DESIGN.md websocket section).
const (
	KindRaised       ChangeKind = "raised"
	KindReopened     ChangeKind = "reopened" // an open alert's ended signal is active again, within the cooldown
	KindUpdated      ChangeKind = "updated"
	KindAcknowledged ChangeKind = "acknowledged"
	KindDispatched   ChangeKind = "dispatched"
	KindResolved     ChangeKind = "resolved"
	KindEnded        ChangeKind = "ended"
	KindOverdue      ChangeKind = "overdue"
	KindEscalated    ChangeKind = "escalated"  // still overdue: sent up to the rule's escalate_to (督办)
	KindSupervised   ChangeKind = "supervised" // 挂牌督办 set or cleared by the desk
	KindCamera       ChangeKind = "camera"
)

// Change is one event of the journal: an alert's new state after a change,
// numbered by the journal's global sequence.
type Change struct {
	Seq  uint64     `json:"seq"`
	Kind ChangeKind `json:"kind"`
	At   time.Time  `json:"at"`
	By   string     `json:"by,omitempty"`
	// Origin says whether a person or the system made the change; By only
	// names who. Journals and the engine decide by Origin, never by By.
	Origin Origin `json:"origin,omitempty"`
	// Reason says why: set on every updated and ended change (Reason*
	// constants), empty on the desk's lifecycle changes.
	Reason Reason `json:"reason,omitempty"`
	Alert  Alert  `json:"alert"`
}

// Origin is who made a change, as the journals and the engine treat it.
type Origin string

// Origins of changes. The zero Origin is taken as a person's: only the
// engine marks a change as the system's.
const (
	// OriginPerson: a desk, investigator or admin token acted (acknowledge,
	// dispatch, resolve, follow-up, 挂牌督办). Its version must be checked
	// when it is made, so it is never spooled while a journal is down.
	OriginPerson Origin = "person"
	// OriginSystem: the service changed the alert by itself (camera
	// signals, engine ticks such as overdue and stale ends, a rule's
	// auto-dispatch, the snapshot). By is System.
	OriginSystem Origin = "system"
)

// UnmarshalJSON reads a change; one stored before changes carried their
// origin is the system's when By is System and a person's otherwise.
func (c *Change) UnmarshalJSON(b []byte) error {
	type plain Change // without this method
	if err := json.Unmarshal(b, (*plain)(c)); err != nil {
		return err
	}
	if c.Origin == "" {
		c.Origin = OriginPerson
		if c.By == System {
			c.Origin = OriginSystem
		}
	}
	return nil
}

// Reason says why an alert changed without a desk action.
type Reason string

// Reasons of updated and ended changes.
const (
	ReasonRepeat   Reason = "repeat"    // a repeat while the signal is active: count+1
	ReasonSync     Reason = "sync"      // a state sync confirms the active signal
	ReasonEnded    Reason = "ended"     // the camera ended the signal
	ReasonStale    Reason = "stale"     // no event for stale_after: the signal ended by itself
	ReasonResolved Reason = "resolved"  // an active signal ends with its alert's resolution
	ReasonFollowUp Reason = "follow_up" // a follow-up visit (回访) was recorded
	ReasonSnapshot Reason = "snapshot"  // the alert's snapshot was stored
)

// Logged is c as the journal's change log keeps it and subscribers and
// replays receive it: the alert without the history entries that earlier
// changes made (only those stamped with c's version remain) and without the
// follow-up list (FollowUp, the latest, remains). Copying the whole alert
// into every change would make a journal grow with the square of an
// alert's history; the alert's current state, with all of it, is read with
// Get. c.Alert.Version must be set (journals set it before they store).
func (c Change) Logged() Change {
	var added []HistoryEntry
	for _, h := range c.Alert.History {
		if h.Version == c.Alert.Version {
			added = append(added, h)
		}
	}
	c.Alert.History = added
	c.Alert.FollowUps = nil
	return c
}
