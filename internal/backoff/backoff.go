// Package backoff is Vigil's one retry pause: exponential growth from Min to
// Max with jitter, waiting on a context. Reconnecting cameras, journal
// subscriptions and the alert engine's side effects all use it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy says how pauses grow. Jitter is the fraction (0…1) by which a pause
// may be shorter or longer than its nominal value.
type Policy struct {
	Min, Max time.Duration
	Jitter   float64
}

// Backoff hands out the pauses of one retry sequence. It is not safe for
// concurrent use; each retrying goroutine keeps its own.
type Backoff struct {
	p    Policy
	next time.Duration
	// Rand returns a number in [0,1); tests replace it. Default
	// math/rand/v2.Float64.
	Rand func() float64
	// After is the timer Wait uses; tests replace it. Default time.After.
	After func(time.Duration) <-chan time.Time
}

// New starts a sequence at p.Min.
func New(p Policy) *Backoff {
	if p.Max < p.Min {
		p.Max = p.Min
	}
	return &Backoff{p: p, next: p.Min, Rand: rand.Float64, After: time.After}
}

// Pause returns the next pause and doubles the one after it, up to Max.
func (b *Backoff) Pause() time.Duration {
	d := b.next
	b.next = min(b.next*2, b.p.Max)
	j := 1 + b.p.Jitter*(2*b.Rand()-1)
	return time.Duration(float64(d) * j)
}

// Reset starts over from Min, after a success.
func (b *Backoff) Reset() { b.next = b.p.Min }

// Wait sleeps for the next pause; it returns ctx's error when ctx ends
// first, else nil.
func (b *Backoff) Wait(ctx context.Context) error {
	select {
	case <-b.After(b.Pause()):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
