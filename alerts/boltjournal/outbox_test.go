package boltjournal

import (
	"path/filepath"
	"testing"

	"vigil/alerts"
	"vigil/alerts/journaltest"
	"vigil/notify"
	"vigil/notify/notifytest"
)

func TestOutboxConformance(t *testing.T) {
	notifytest.Run(t, func(t *testing.T) func() (notify.Outbox, func()) {
		path := filepath.Join(t.TempDir(), "journal.db")
		return func() (notify.Outbox, func()) {
			j, err := Open(Options{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			ob, err := j.Outbox()
			if err != nil {
				t.Fatal(err)
			}
			return ob, func() { _ = j.Close() }
		}
	})
}

func TestSupervision(t *testing.T) {
	journaltest.RunSupervision(t, func(t *testing.T) alerts.Journal { return opener(t)() })
}
