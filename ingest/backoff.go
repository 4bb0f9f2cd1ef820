package ingest

import (
	"math/rand/v2"
	"time"
)

// backoff computes reconnect pauses: exponential from Min to Max, with
// jitter, reset after a healthy session.
type backoff struct {
	cfg  Backoff
	next time.Duration
	rand func() float64 // [0,1)
}

func newBackoff(cfg Backoff) *backoff {
	return &backoff{cfg: cfg, next: cfg.Min, rand: rand.Float64}
}

// Pause returns the next pause and doubles the one after it.
func (b *backoff) Pause() time.Duration {
	d := b.next
	b.next = min(b.next*2, b.cfg.Max)
	j := 1 + b.cfg.Jitter*(2*b.rand()-1)
	return time.Duration(float64(d) * j)
}

// Reset starts over from Min.
func (b *backoff) Reset() { b.next = b.cfg.Min }
