package notify

import (
	"context"
	"time"
)

// Entry is one notification waiting for delivery to one receiver.
type Entry struct {
	// ID is assigned by the outbox on Enqueue: unique and increasing in
	// enqueue order.
	ID       uint64    `json:"id"`
	Receiver string    `json:"receiver"`
	Queued   time.Time `json:"queued"`
	Message  Message   `json:"message"`
}

// Outbox is the durable queue of notifications between the journal's
// changes and the receivers. It lives in the journal's store (a bbolt
// bucket beside the embedded journal, Redis keys beside the Redis
// journal); both pass notify/notifytest. Delivery is at least once: an
// entry stays until Remove, so one sent just before a crash may be sent
// again, never lost.
type Outbox interface {
	// Cursor is the journal seq up to which changes have been turned into
	// entries; ok is false when Enqueue was never called on this store.
	Cursor(ctx context.Context) (seq uint64, ok bool, err error)
	// Enqueue stores entries and moves the cursor to seq, atomically and
	// durably before it returns: after a crash either both are stored or
	// neither. It assigns IDs (increasing, never reused) and returns the
	// entries with them. entries may be empty (the cursor still moves).
	Enqueue(ctx context.Context, seq uint64, entries []Entry) ([]Entry, error)
	// Pending returns up to limit entries of one receiver, lowest ID first.
	Pending(ctx context.Context, receiver string, limit int) ([]Entry, error)
	// Remove deletes entries (delivered, merged into a delivered summary,
	// or expired); unknown IDs are ignored.
	Remove(ctx context.Context, ids ...uint64) error
}
