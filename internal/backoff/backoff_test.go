package backoff

import (
	"context"
	"testing"
	"time"
)

func TestPausesGrowToMaxWithJitter(t *testing.T) {
	b := New(Policy{Min: time.Second, Max: 8 * time.Second, Jitter: 0.5})
	b.Rand = func() float64 { return 0.5 } // no jitter
	var got []time.Duration
	for range 6 {
		got = append(got, b.Pause())
	}
	want := []time.Duration{1, 2, 4, 8, 8, 8}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("pauses %v, want %v seconds", got, want)
		}
	}
	b.Reset()
	b.Rand = func() float64 { return 0 } // the shortest: Min × (1 - Jitter)
	if d := b.Pause(); d != 500*time.Millisecond {
		t.Fatalf("after Reset with full negative jitter: %v, want 500ms", d)
	}
	b.Rand = func() float64 { return 0.999999 }
	if d := b.Pause(); d < 2*time.Second || d > 3*time.Second {
		t.Fatalf("second pause with positive jitter: %v, want about 3s", d)
	}
}

func TestWaitEndsWithTheContext(t *testing.T) {
	b := New(Policy{Min: time.Hour, Max: time.Hour})
	fired := make(chan time.Time)
	b.After = func(time.Duration) <-chan time.Time { return fired }
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Wait(ctx); err == nil {
		t.Fatal("Wait returned nil after the context ended")
	}
	go func() { fired <- time.Time{} }()
	if err := b.Wait(t.Context()); err != nil {
		t.Fatalf("Wait after the timer: %v", err)
	}
}
