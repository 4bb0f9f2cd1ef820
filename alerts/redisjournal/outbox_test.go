package redisjournal

import (
	"path/filepath"
	"testing"

	"vigil/alerts"
	"vigil/alerts/journaltest"
	"vigil/internal/testutil"
	"vigil/notify"
	"vigil/notify/notifytest"
)

func TestOutboxConformance(t *testing.T) {
	r := testutil.StartRedis(t)
	notifytest.Run(t, func(t *testing.T) func() (notify.Outbox, func()) {
		o := Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")}
		return func() (notify.Outbox, func()) {
			j, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			return j.Outbox(), func() { _ = j.Close() }
		}
	})
}

func TestSupervision(t *testing.T) {
	r := testutil.StartRedis(t)
	journaltest.RunSupervision(t, func(t *testing.T) alerts.Journal {
		j, err := New(Options{Addr: r.Addr(), KeyPrefix: newPrefix(), SpoolPath: filepath.Join(t.TempDir(), "spool.db")})
		if err != nil {
			t.Fatal(err)
		}
		return j
	})
}
