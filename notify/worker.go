package notify

import (
	"context"
	"fmt"
	"time"

	"vigil/internal/backoff"
)

// pendingBatch bounds the entries one delivery step reads.
const pendingBatch = 1000

// sendTimeout bounds one attempt.
const sendTimeout = 15 * time.Second

// worker delivers one receiver's queue; only its own goroutine (or a test
// calling Deliver) touches its fields.
type worker struct {
	n       *Notifier
	r       Receiver
	bo      *backoff.Backoff
	wake    chan struct{} // capacity 1
	sent    []time.Time   // attempts within the rate window, oldest first
	retryAt time.Time
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run(ctx context.Context) error {
	clock := w.n.o.Clock
	for {
		next, err := w.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			w.n.log.Error("notification delivery", "receiver", w.r.ID(), "err", err)
		}
		var timer <-chan time.Time
		stop := func() bool { return false }
		if !next.IsZero() {
			timer, stop = clock.NewTimer(max(next.Sub(clock.Now()), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-w.wake:
		case <-timer:
		}
		stop()
	}
}

// Deliver runs one delivery step of a receiver: drops expired entries,
// then sends what its rate limit allows now — one message per entry while
// the window has room for more than one message, and everything left
// merged into one summary when only one is left. It returns when to try
// again (zero: when woken by new entries). Run drives it; tests call it
// with a fake clock.
func (n *Notifier) Deliver(ctx context.Context, receiver string) (next time.Time, err error) {
	w, ok := n.workers[receiver]
	if !ok {
		return time.Time{}, fmt.Errorf("notify: unknown receiver %q", receiver)
	}
	return w.step(ctx)
}

func (w *worker) step(ctx context.Context) (time.Time, error) {
	o := &w.n.o
	now := o.Clock.Now()
	if now.Before(w.retryAt) {
		return w.retryAt, nil
	}
	id := w.r.ID()
	es, err := o.Outbox.Pending(ctx, id, pendingBatch)
	if err != nil {
		return now.Add(w.bo.Pause()), fmt.Errorf("outbox: %w", err)
	}
	live := es[:0:0]
	var expired []uint64
	for _, e := range es {
		if now.Sub(e.Queued) > o.MaxAge {
			expired = append(expired, e.ID)
		} else {
			live = append(live, e)
		}
	}
	if len(expired) > 0 {
		if err := o.Outbox.Remove(ctx, expired...); err != nil {
			return now.Add(w.bo.Pause()), fmt.Errorf("outbox: drop expired: %w", err)
		}
		w.n.total.WithLabelValues(id, ResultExpired).Add(float64(len(expired)))
		w.n.log.Warn("notifications given up after notify.max_age", "receiver", id, "count", len(expired), "max_age", o.MaxAge)
	}
	for len(live) > 0 {
		cut := now.Add(-o.RateWindow)
		k := 0
		for k < len(w.sent) && !w.sent[k].After(cut) {
			k++
		}
		w.sent = w.sent[k:]
		slots := o.RateLimit - len(w.sent)
		if slots <= 0 {
			return w.sent[0].Add(o.RateWindow), nil
		}
		batch := live[:1]
		msg := live[0].Message
		if slots == 1 && len(live) > 1 {
			batch = live
			ms := make([]Message, len(live))
			for i, e := range live {
				ms[i] = e.Message
			}
			msg = summary(ms, o.BaseURL)
		}
		w.sent = append(w.sent, now)
		sctx, cancel := context.WithTimeout(ctx, sendTimeout)
		err := w.r.Send(sctx, msg, batch[0].ID)
		cancel()
		if err != nil {
			w.n.total.WithLabelValues(id, ResultFailed).Inc()
			w.retryAt = now.Add(w.bo.Pause())
			return w.retryAt, err // names the receiver, never its URL or secret
		}
		w.bo.Reset()
		ids := make([]uint64, len(batch))
		for i, e := range batch {
			ids[i] = e.ID
		}
		result := ResultSent
		if len(batch) > 1 {
			result = ResultMerged
		}
		w.n.total.WithLabelValues(id, result).Add(float64(len(batch)))
		if err := o.Outbox.Remove(ctx, ids...); err != nil {
			// Sent but still queued: it will be sent again (at least once).
			return now.Add(w.bo.Pause()), fmt.Errorf("outbox: remove delivered: %w", err)
		}
		live = live[len(batch):]
	}
	if len(es) == pendingBatch {
		return now, nil // more queued than one step reads
	}
	return time.Time{}, nil
}
