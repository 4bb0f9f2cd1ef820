package redisjournal

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"vigil/alerts"
	"vigil/alerts/journaltest"
	"vigil/internal/testutil"
)

var prefixes atomic.Int64

// newPrefix gives each test its own keys on a shared server.
func newPrefix() string { return fmt.Sprintf("t%d:", prefixes.Add(1)) }

func open(t testing.TB, o Options) *Journal {
	t.Helper()
	j, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func TestConformance(t *testing.T) {
	r := testutil.StartRedis(t)
	journaltest.RunOpener(t, func(t *testing.T) func() alerts.Journal {
		o := Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")}
		return func() alerts.Journal {
			j, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			return j
		}
	})
}
