package testutil

import "testing"

// FreePort is a loopback TCP port that was free when it returned, for a
// server whose address must be known before it starts (a cluster node's
// advertise_url, a node started again at the same URL). Another process
// may take it meanwhile; on loopback in a test that is rare.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
