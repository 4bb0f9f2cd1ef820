package testutil

import (
	"testing"
	"time"
)

// Slack multiplies every WaitFor bound. The bounds in tests are liveness
// bounds ("this happens, eventually"), not latency checks: on a loaded
// 2-core CI machine running -race, a step that takes 200 ms here can take
// seconds. A test that passes only ever waits as long as its condition
// needs.
const Slack = 5

// WaitFor polls cond every 10 ms until it holds, failing the test when it
// still does not after Slack × within.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	limit := Slack * within
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
