package boltjournal

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"vigil/alerts"
	"vigil/alerts/journaltest"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }
func (c fixedClock) NewTimer(time.Duration) (<-chan time.Time, func() bool) {
	return nil, func() bool { return false }
}

// Stats from the stats records kept in the raised index equal Stats
// computed from the whole alerts, also for a file written before the
// records existed (filled in at Open).
func TestStatsRecords(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)
	as := journaltest.StatsFixture(t0)
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		c, err := j.Append(t.Context(), alerts.Change{Kind: alerts.KindRaised, At: a.RaisedAt, Alert: a}, 0)
		if err != nil {
			t.Fatal(err)
		}
		// A later change of the alert replaces its record.
		c.Alert.Feedback += " "
		if _, err := j.Append(t.Context(), alerts.Change{Kind: alerts.KindUpdated, At: a.RaisedAt, Alert: c.Alert}, 1); err != nil {
			t.Fatal(err)
		}
	}
	now := journaltest.StatsNow(t0)
	from, to := t0.Add(5*time.Minute), t0.Add(25*time.Minute) // a part of the fixture
	check := func(what string) {
		t.Helper()
		e, err := alerts.New(alerts.Options{Journal: j, Clock: fixedClock{now}})
		if err != nil {
			t.Fatal(err)
		}
		for _, by := range []alerts.GroupBy{"", alerts.BySite, alerts.ByUnit} {
			got, err := e.Stats(t.Context(), from, to, by)
			if err != nil {
				t.Fatal(err)
			}
			stored, _, err := j.List(t.Context(), alerts.Filter{Since: from, Until: to, Limit: alerts.MaxListLimit})
			if err != nil {
				t.Fatal(err)
			}
			want := alerts.ComputeStats(stored, from, to, now, by)
			if got.Total != 20 || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s, by %q:\n got %+v\nwant %+v", what, by, got, want)
			}
		}
	}
	check("records written with the alerts")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// Make it a file from before the records: nil values, no meta key.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRaised)
		var keys [][]byte
		rb.ForEach(func(k, _ []byte) error { keys = append(keys, append([]byte(nil), k...)); return nil })
		for _, k := range keys {
			if err := rb.Put(k, nil); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Delete(keyStatsRecords)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	j, err = Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	check("records filled in at Open")
}
