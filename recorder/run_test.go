package recorder

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRunSweepsPeriodically(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := newTestRecorder(t, Options{Now: time.Now, Retain: time.Hour})
		start := time.Now().UTC()
		addSegment(t, r, "gate", start, time.Minute, 100)
		addSegment(t, r, "gate", start.Add(30*time.Minute), time.Minute, 100)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(61*time.Minute + 5*time.Second) // first segment ages out; a tick follows within 10 s
		synctest.Wait()
		if got := testutil.ToFloat64(r.m.deleted.WithLabelValues(ReasonAge)); got != 1 {
			t.Errorf("deleted{age} = %v after 61 min", got)
		}
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		if got := testutil.ToFloat64(r.m.deleted.WithLabelValues(ReasonAge)); got != 2 {
			t.Errorf("deleted{age} = %v after 91 min", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
