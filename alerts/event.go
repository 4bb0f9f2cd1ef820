// Package alerts owns the emergency-handling side of Vigil: events, already
// normalized by their sources (the vendor parsers of alerts/vendor, the pull
// subscriptions of alerts/pull, Vigil's own health signals), are matched
// against rules, deduplicated into Alerts, and every change to an alert is
// appended to a Journal. It knows nothing of RTSP or recording; it
// asks the recorder for evidence holds through a small interface. It has no
// HTTP side: the REST API (alerts/alertsapi), the webhook intake
// (alerts/hooks) and the desk's websocket stream (alerts/stream) sit beside
// it and use the Engine's methods and the Journal.
package alerts

import "time"

// Type is a normalized event type.
type Type string

// Normalized event types (DESIGN.md "Camera events → alerts").
const (
	Motion           Type = "motion"
	Tamper           Type = "tamper"
	VideoLoss        Type = "video_loss"
	LineCrossing     Type = "line_crossing"
	Intrusion        Type = "intrusion"
	IOAlarm          Type = "io_alarm"
	CameraOffline    Type = "camera_offline"
	RecordingFailure Type = "recording_failure"
	StorageFull      Type = "storage_full"
	// RecordingTampered: a closed recording no longer matches the hash
	// taken when it was written (altered, cut or its index damaged).
	RecordingTampered Type = "recording_tampered"
	Other             Type = "other"
)

// State is the state an event reports for its signal.
type State string

// Signal states an event may carry.
const (
	Active   State = "active"
	Inactive State = "inactive"
	// Pulse is an edge-only event (line crossing): it raises or repeats an
	// alert and ends its signal at once.
	Pulse State = "pulse"
)

// Source says where an event came from.
type Source string

// Event sources.
const (
	SourceONVIF     Source = "onvif"
	SourceHikvision Source = "hikvision"
	SourceDahua     Source = "dahua"
	SourceGeneric   Source = "generic"
	SourceHealth    Source = "health"
)

// Event is one normalized camera or health signal.
type Event struct {
	Camera string
	Type   Type
	// Key tells apart signals of one type on one camera (a rule name, an
	// object ID, an input channel). Empty is a valid key.
	Key    string
	State  State
	At     time.Time
	Source Source
	// Sync is true for a state-sync report (ONVIF PropertyOperation
	// "Initialized"): it may end or confirm a signal but never raises an alert.
	Sync   bool
	Detail map[string]string
	// FootageFrom, on a health event, is where the footage that shows the
	// condition begins when that is before the event (a camera's last
	// frame before camera_offline); the alert's clip starts pre_roll before
	// it. Zero: the clip starts pre_roll before raised_at.
	FootageFrom time.Time
	// Adopt, on a health event, says that another engine on the same
	// journal may have raised its signal's alert: the node that held the
	// camera before this one in a cluster. When the engine tracks no alert
	// of the signal, it looks for an open one in the journal first and
	// carries it on (ends, repeats) as if it had raised it, so that an
	// outage raised by one node ends when the camera is back on another.
	Adopt bool
}

// RejectedRecord is one record of a multi-record push or stream (Dahua)
// that was refused while its siblings were accepted.
type RejectedRecord struct {
	Record int    `json:"record"` // 1-based, in the order of the body
	Error  string `json:"error"`
}
