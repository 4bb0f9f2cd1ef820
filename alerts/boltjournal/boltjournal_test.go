package boltjournal

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"vigil/alerts"
	"vigil/alerts/journaltest"
)

func opener(t *testing.T) func() alerts.Journal {
	path := filepath.Join(t.TempDir(), "journal.db")
	return func() alerts.Journal {
		j, err := Open(Options{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
}

func TestConformance(t *testing.T) {
	journaltest.RunOpener(t, opener)
}

func TestKeepChanges(t *testing.T) {
	j, err := Open(Options{Path: filepath.Join(t.TempDir(), "j.db"), KeepChanges: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := t.Context()
	for i := range 12 {
		a := journaltest.NewAlert(fmt.Sprintf("01K%02d", i), time.Unix(1e9, 0))
		if _, err := j.Append(ctx, alerts.Change{Kind: alerts.KindRaised, Alert: a}, 0); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := j.Since(ctx, 7, 100)
	if err != nil || len(cs) != 5 || cs[0].Seq != 8 {
		t.Fatalf("Since(7) keeping 5 of 12 = %d, %v", len(cs), err)
	}
	if _, err := j.Since(ctx, 6, 100); !errors.Is(err, alerts.ErrTooOld) {
		t.Fatalf("Since(6) keeping 5 of 12: err = %v, want ErrTooOld", err)
	}
}

const childEnv = "VIGIL_BOLTJOURNAL_KILL_CHILD"

// TestMain runs the child half of TestKill9 when the parent asks for it,
// instead of the tests, so that no test of a normal run is a stub that
// skips.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		killChild(path)
	}
	os.Exit(m.Run())
}

// killChild is the child of TestKill9: it appends to the journal at path
// until it is killed, and says "ready" after 30 appends. It never returns.
func killChild(path string) {
	j, err := Open(Options{Path: path})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	cur := map[int]alerts.Alert{}
	for i := 0; ; i++ {
		n := i % 7
		a, ok := cur[n]
		if !ok {
			a = journaltest.NewAlert(fmt.Sprintf("01KILL%d-%03d", os.Getpid(), i), time.Unix(1e9+int64(i), 0).UTC())
		}
		a.Count++
		a.Detail = map[string]string{"i": fmt.Sprint(i)}
		c, err := j.Append(ctx, alerts.Change{Kind: alerts.KindUpdated, Alert: a}, a.Version)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		cur[n] = c.Alert
		if i == 30 {
			fmt.Println("ready")
		}
	}
}

func TestKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	for round := range 3 {
		cmd := exec.Command(os.Args[0]) // TestMain runs killChild
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "ready") {
					ready <- true
					return
				}
			}
			ready <- false
		}()
		select {
		case ok := <-ready:
			if !ok {
				t.Fatal("child ended before it was ready")
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("child not ready in 30s")
		}
		time.Sleep(time.Duration(20+round*15) * time.Millisecond) // let it be mid-append
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		checkConsistent(t, path)
	}
}

// checkConsistent reopens the journal: seqs are 1..last without gaps, every
// alert's version chain is complete, and each alert's state is its last change.
func checkConsistent(t *testing.T, path string) {
	t.Helper()
	j, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := t.Context()
	last, err := j.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := j.Since(ctx, 0, int(last)+10)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(cs)) != last {
		t.Fatalf("%d changes for last seq %d", len(cs), last)
	}
	latest := map[string]alerts.Alert{}
	for i, c := range cs {
		if c.Seq != uint64(i+1) {
			t.Fatalf("gap: position %d holds seq %d", i, c.Seq)
		}
		if prev := latest[c.Alert.ID]; c.Alert.Version != prev.Version+1 {
			t.Fatalf("seq %d: alert %s version %d after %d", c.Seq, c.Alert.ID, c.Alert.Version, prev.Version)
		}
		latest[c.Alert.ID] = c.Alert
	}
	for id, want := range latest {
		got, err := j.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(alerts.Change{Alert: got}.Logged().Alert)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("alert %s state differs from its last change:\n%s\n%s", id, g, w)
		}
	}
	all, _, err := j.List(ctx, alerts.Filter{Limit: alerts.MaxListLimit})
	if err != nil || len(all) != len(latest) {
		t.Fatalf("List has %d alerts, the log %d (%v)", len(all), len(latest), err)
	}
	t.Logf("consistent after kill: %d changes, %d alerts", last, len(latest))
}

// A journal file written before the active index existed gets it on open.
func TestActiveIndexBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i, signal := range []alerts.Signal{alerts.SignalActive, alerts.SignalEnded, alerts.SignalActive} {
		a := journaltest.NewAlert(fmt.Sprintf("01F%d", i), time.Unix(1e9+int64(i), 0).UTC())
		a.Signal = signal
		if _, err := j.Append(ctx, alerts.Change{Kind: alerts.KindRaised, Alert: a}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketActive) }); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
	j, err = Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	as, _, err := j.List(ctx, alerts.Filter{Signal: alerts.SignalActive})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].ID != "01F2" || as[1].ID != "01F0" {
		t.Fatalf("active after backfill: %+v", as)
	}
}

func TestSpoolMetric(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	reg := prometheus.NewRegistry()
	j, err := Open(Options{Path: path, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(t.Context(), alerts.Change{Kind: alerts.KindRaised, Alert: journaltest.NewAlert("01M", time.Unix(1e9, 0))}, 0); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "vigil_journal_spool_events" || mfs[0].GetMetric()[0].GetGauge().GetValue() != 0 {
		t.Fatalf("gathered %v, want vigil_journal_spool_events 0", mfs)
	}
	if _, err := Open(Options{Path: filepath.Join(t.TempDir(), "other.db"), Registerer: reg, OpenTimeout: time.Second}); err == nil {
		t.Fatal("a second journal registered on the same registry")
	}
	// Close unregisters, so a journal reopened on the registry registers again.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = Open(Options{Path: path, Registerer: reg})
	if err != nil {
		t.Fatalf("reopen on the same registry: %v", err)
	}
	_ = j.Close()
	// Without a Registerer nothing is registered.
	j, err = Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
}

// A journal written before occurrences (change records with the whole
// alert, history entries without versions, no reason) loads unchanged: its
// changes replay as they were written and the next change goes on from its
// state.
func TestJournalBeforeOccurrencesLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	a := journaltest.NewAlert("01OLD", time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	if _, err := j.Append(t.Context(), alerts.Change{Kind: alerts.KindRaised, At: a.RaisedAt, By: "system", Alert: a}, 0); err != nil {
		t.Fatal(err)
	}
	// Rewrite the stored records as the previous version wrote them.
	a.Version = 2
	a.Count = 4
	a.History = append(a.History, alerts.HistoryEntry{At: a.RaisedAt.Add(time.Minute), By: "desk-1", Action: "acknowledged", Note: "老记录"})
	old := fmt.Sprintf(`{"seq":2,"kind":"updated","at":"2026-11-20T09:01:00Z","by":"system","alert":%s}`, mustJSON(t, a))
	err = j.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketAlerts).Put([]byte(a.ID), mustJSON(t, a)); err != nil {
			return err
		}
		seq, err := tx.Bucket(bucketChanges).NextSequence()
		if err != nil {
			return err
		}
		return tx.Bucket(bucketChanges).Put(u64(seq), []byte(old))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j, err = Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	cs, err := j.Since(t.Context(), 1, 10)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Since: %v %v", cs, err)
	}
	if got := mustJSON(t, cs[0].Alert); string(got) != string(mustJSON(t, a)) {
		t.Fatalf("old change replayed as\n%s\nwant\n%s", got, mustJSON(t, a))
	}
	next := a
	next.Count = 5
	c, err := j.Append(t.Context(), alerts.Change{Kind: alerts.KindUpdated, At: a.RaisedAt.Add(2 * time.Minute), By: "system", Reason: alerts.ReasonRepeat, Alert: next}, 2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.Get(t.Context(), a.ID)
	if err != nil || got.Count != 5 || len(got.History) != 2 || got.History[1].Note != "老记录" || c.Alert.Version != 3 {
		t.Fatalf("after an append on the old state: %+v %v", got, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
