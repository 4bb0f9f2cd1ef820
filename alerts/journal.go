package alerts

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of the Journal. Implementations return them (possibly
// wrapped); callers test with errors.Is.
var (
	// ErrNotFound: no alert with that ID.
	ErrNotFound = errors.New("alert not found")
	// ErrConflict: the alert's version is not the one the caller saw. The
	// returned error is a *ConflictError carrying the current alert.
	ErrConflict = errors.New("alert version conflict")
	// ErrExists: an alert with that ID was already created.
	ErrExists = errors.New("alert already exists")
	// ErrTooOld: the requested seq is older than the journal keeps; the
	// reader must reset.
	ErrTooOld = errors.New("seq older than the journal keeps")
	// ErrSlowSubscriber: a subscription fell behind its buffer and was
	// closed; resume with Since.
	ErrSlowSubscriber = errors.New("subscriber fell behind")
	// ErrUnavailable: the journal's backend cannot be reached right now
	// (Redis down, connection lost); the caller may retry later. Journals
	// wrap it with the cause; the API answers 503 with code "unavailable".
	ErrUnavailable = errors.New("journal unavailable")
)

// ConflictError is returned by Append when the expected version does not
// match; Current is the alert as stored.
type ConflictError struct {
	Current Alert
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("alert %s: version conflict (current version %d)", e.Current.ID, e.Current.Version)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Filter selects alerts in List. Zero fields match everything.
type Filter struct {
	Status   Status
	Open     bool // only alerts whose status is not resolved
	Camera   string
	Site     string
	Severity Severity
	Signal   Signal    // "" any; SignalActive: only alerts whose signal is on
	Since    time.Time // raised at or after
	Until    time.Time // raised before
	Limit    int       // 0 means 100
	Cursor   string    // opaque, from a previous page
}

// Journal is the emergency-handling journal: alert state plus an ordered log
// of every change. Implementations: boltjournal (embedded, default) and
// redisjournal; both pass alerts/journaltest.
type Journal interface {
	// Append stores c.Alert as the alert's new state and appends c to the
	// log atomically, assigning the next global seq (c.Seq is ignored). The
	// change is durable before Append returns and before any subscriber sees
	// it. expectVersion is the version the caller read: 0 means the alert
	// must not exist yet (else ErrExists); otherwise a stored version that
	// differs yields a *ConflictError. The stored alert's version must be
	// expectVersion+1; Append sets c.Alert.Version itself.
	Append(ctx context.Context, c Change, expectVersion int64) (Change, error)
	// Get returns the current state of an alert, or ErrNotFound.
	Get(ctx context.Context, id string) (Alert, error)
	// List returns alerts matching f, newest raised first, and a cursor for
	// the next page ("" when there is none).
	List(ctx context.Context, f Filter) ([]Alert, string, error)
	// Since returns up to limit changes with seq > seq, in seq order. It
	// returns ErrTooOld when changes after seq were already trimmed.
	Since(ctx context.Context, seq uint64, limit int) ([]Change, error)
	// LastSeq is the seq of the newest change (0 when empty).
	LastSeq(ctx context.Context) (uint64, error)
	// Subscribe delivers every change appended after it returns, in seq
	// order, until ctx ends. When the subscriber falls more than buffer
	// changes behind, its channel is closed and Err reports
	// ErrSlowSubscriber.
	Subscribe(ctx context.Context, buffer int) (*Subscription, error)
	// Close releases the journal's resources.
	Close() error
}

// BatchItem is one change of an AppendBatch with the version its caller
// read, as the arguments of Append.
type BatchItem struct {
	Change        Change
	ExpectVersion int64
}

// BatchAppender is implemented by journals that append many changes as one
// durable unit (group commit: one transaction, one fsync). The engine uses
// it when the journal offers it and falls back to Append otherwise.
//
// AppendBatch applies items in order, each checked as Append checks it
// against the state the items before it left; an item that fails
// (ErrExists, ErrNotFound, *ConflictError, no alert ID) is skipped and the
// others go on. Once an item fails, every later item of the batch on the
// same alert fails too, with a *ConflictError carrying the alert as stored
// (ErrNotFound when there is none): its expected version was read from what
// the failed item would have written. Stored items get increasing seqs in
// item order, are all durable before AppendBatch returns and before any
// subscriber sees one of them, and reach subscribers in seq order.
//
// It returns one Change and one error per item; changes[i] is meaningful
// only when errs[i] is nil. An item with an error was not stored. A backend
// failure fails every item with that error.
type BatchAppender interface {
	AppendBatch(ctx context.Context, items []BatchItem) (changes []Change, errs []error)
}

// Subscription is a live feed of changes.
type Subscription struct {
	C   <-chan Change
	err func() error
}

// NewSubscription is for Journal implementations: c is the feed, err reports
// why it closed (nil for a cancelled context).
func NewSubscription(c <-chan Change, err func() error) *Subscription {
	return &Subscription{C: c, err: err}
}

// Err says why C was closed: nil after the context ended, ErrSlowSubscriber
// or a backend error otherwise.
func (s *Subscription) Err() error { return s.err() }

// AuditRecord is one entry of the audit log: who did what to which alert or
// footage.
type AuditRecord struct {
	Seq    uint64            `json:"seq"`
	At     time.Time         `json:"at"`
	By     string            `json:"by"`
	Action string            `json:"action"` // acknowledged, dispatched, resolved, downloaded, exported, …
	Object string            `json:"object"` // alert ID, camera/segment, camera range
	Detail map[string]string `json:"detail,omitempty"`
}

// AuditIDKey is the Detail key of an audit record's own ID, set by the
// component that audits (a footage download, an export) so that a record
// handed over again after a crash or an outage is stored once: a journal
// that replays records (the Redis journal's spool) appends a record with an
// ID it already holds not again.
const AuditIDKey = "audit_id"

// AuditLog records and lists audit entries. Both journals implement it.
type AuditLog interface {
	Audit(ctx context.Context, r AuditRecord) error
	AuditSince(ctx context.Context, seq uint64, limit int) ([]AuditRecord, error)
}

// Trimmer is implemented by journals that drop old changes to bound their
// size. Both journals implement it; after TrimBefore(seq), Since(s) for any
// s+1 < seq returns ErrTooOld. Alert state is never trimmed.
type Trimmer interface {
	TrimBefore(ctx context.Context, seq uint64) error
}
