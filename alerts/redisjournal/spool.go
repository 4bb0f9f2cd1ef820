package redisjournal

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"vigil/alerts"
	"vigil/internal/backoff"
)

var bucketSpool = []byte("spool")

// spool is the local, fsynced queue of changes and audit records made while
// Redis was unreachable. Entries are keyed by a local sequence, so replay
// keeps the order in which Append and Audit accepted them.
type spool struct {
	db  *bolt.DB
	max int

	mu       sync.Mutex
	n        int
	perAlert map[string]int // spooled changes per alert ID
	full     bool           // in a spool-full episode: OnSpoolFull already called
	kick     chan struct{}  // wakes the replayer
	inflight uint64         // key the replayer is appending now (0: none)
	// inflightDropped: put dropped the in-flight entry as the oldest. It
	// is counted as lost only if the replayer's attempt fails (release);
	// if Redis took it (remove), nothing was lost.
	inflightDropped bool
}

type spooled struct {
	Change alerts.Change `json:"change"`
	Expect int64         `json:"expect"`
	// Audit, when set, makes the entry an audit record instead of a
	// change (Change is then empty). Audit records are never dropped.
	Audit *alerts.AuditRecord `json:"audit,omitempty"`
	// Batch is the token of the AppendBatch script call that failed for
	// want of Redis before this change was spooled; the call may have run.
	Batch string `json:"batch,omitempty"`
}

type spoolEntry struct {
	key uint64
	bad error // undecodable: dropped, never retried
	spooled
}

func openSpool(path string, max int) (*spool, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("redisjournal: open spool %s: %w", path, err)
	}
	s := &spool{db: db, max: max, perAlert: map[string]int{}, kick: make(chan struct{}, 1)}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSpool)
		if err != nil {
			return err
		}
		return b.ForEach(func(_, v []byte) error {
			s.n++
			var e spooled
			if json.Unmarshal(v, &e) == nil && e.Audit == nil {
				s.perAlert[e.Change.Alert.ID]++
			} // else the replayer drops it

			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("redisjournal: read spool %s: %w", path, err)
	}
	return s, nil
}

func (s *spool) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// pending returns how many changes are spooled in all and for alert id.
func (s *spool) pending(id string) (all, alert int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.perAlert[id]
}

// put appends es in order in one transaction (fsynced at commit). While
// the spool is full it first drops the oldest change for each (audit
// records are kept: the spool may then hold more than max entries), so
// that the spool always holds the newest changes; dropped counts those known lost,
// and firstFull reports the first drop since the spool was last empty. An
// oldest entry the replayer is appending right now is dropped from the
// spool too, but counted only when that append fails (see release).
func (s *spool) put(es ...spooled) (dropped int, firstFull bool, err error) {
	raws := make([][]byte, len(es))
	for i, e := range es {
		if raws[i], err = json.Marshal(e); err != nil {
			return 0, false, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var droppedIDs []string
	inflightGone := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		droppedIDs, inflightGone = droppedIDs[:0], false
		b := tx.Bucket(bucketSpool)
		n := s.n
		for _, raw := range raws {
			if n >= s.max {
				if k, old := oldestChange(b); k != nil {
					droppedIDs = append(droppedIDs, old.Change.Alert.ID)
					if binary.BigEndian.Uint64(k) == s.inflight {
						inflightGone = true
					}
					if err := b.Delete(k); err != nil {
						return err
					}
					n--
				}
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), raw); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	for _, id := range droppedIDs {
		s.n--
		s.forget(id)
	}
	dropped = len(droppedIDs)
	if inflightGone {
		s.inflightDropped = true
		dropped--
	}
	if len(droppedIDs) > 0 && !s.full {
		s.full, firstFull = true, true
	}
	for _, e := range es {
		s.n++
		if e.Audit == nil {
			s.perAlert[e.Change.Alert.ID]++
		}
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return dropped, firstFull, nil
}

// oldestChange is the oldest entry of b that is not an audit record, or a
// nil key when b holds none. An unreadable entry counts as a change.
func oldestChange(b *bolt.Bucket) ([]byte, spooled) {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var e spooled
		if json.Unmarshal(v, &e) != nil || e.Audit == nil {
			return k, e
		}
	}
	return nil, spooled{}
}

func (s *spool) forget(id string) {
	if s.perAlert[id]--; s.perAlert[id] <= 0 {
		delete(s.perAlert, id)
	}
}

// first returns the oldest entry, if any, and marks it in flight until
// remove.
func (s *spool) first() (spoolEntry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e spoolEntry
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketSpool).Cursor().First()
		if k == nil {
			return nil
		}
		found = true
		e.key = binary.BigEndian.Uint64(k)
		if err := json.Unmarshal(v, &e.spooled); err != nil {
			e.bad = fmt.Errorf("spool entry %d: %w", e.key, err)
		}
		return nil
	})
	if found && err == nil {
		s.inflight = e.key
	}
	return e, found, err
}

// remove deletes a replayed (or abandoned) entry. It reports whether the
// spool is now empty.
func (s *spool) remove(e spoolEntry) (empty bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	deleted := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSpool)
		k := binary.BigEndian.AppendUint64(nil, e.key)
		if b.Get(k) == nil {
			return nil // dropped as the oldest while it was replayed
		}
		deleted = true
		return b.Delete(k)
	})
	if err != nil {
		return false, err
	}
	s.inflight, s.inflightDropped = 0, false
	if deleted {
		s.n--
		if e.Audit == nil {
			s.forget(e.Change.Alert.ID)
		}
	}
	if s.n == 0 {
		s.full = false
	}
	return s.n == 0, nil
}

// release ends the in-flight mark of an entry whose append failed. It
// reports whether the entry was lost: put dropped it from the spool
// meanwhile, so it will not be retried.
func (s *spool) release() (lost bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lost = s.inflightDropped
	s.inflight, s.inflightDropped = 0, false
	return lost
}

func (s *spool) close() error { return s.db.Close() }

// toSpool stores c durably in the spool and returns it with Seq 0.
func (j *Journal) toSpool(c alerts.Change, expectVersion int64) (alerts.Change, error) {
	c.Seq = 0
	if err := j.spoolEntries([]spooled{{Change: c, Expect: expectVersion}}); err != nil {
		return alerts.Change{}, fmt.Errorf("redisjournal: append %s: spool: %w", c.Alert.ID, err)
	}
	return c, nil
}

// spoolEntries stores es durably in the spool, in order, in one
// transaction.
func (j *Journal) spoolEntries(es []spooled) error {
	dropped, firstFull, err := j.spool.put(es...)
	if err != nil {
		return err
	}
	j.metrics.spoolEvents.Set(float64(j.spool.len()))
	j.updateDegraded()
	if dropped > 0 {
		j.metrics.spoolDropped.Add(float64(dropped))
	}
	if firstFull {
		j.log.Error("spool full: dropping the oldest spooled changes", "max", j.opts.SpoolMax)
		if j.opts.OnSpoolFull != nil {
			j.opts.OnSpoolFull()
		}
	}
	return nil
}

// replay appends spooled changes to Redis in spool order while it is
// reachable. Each change keeps the expected version it was spooled with, so
// a chain raised(0) → updated(1) → ended(2) of one alert replays as it was
// built; Redis assigns the seqs at replay time. A spooled signal change
// whose alert moved on meanwhile (a desk on another node acknowledged it)
// is merged: its signal fields are laid over the current state and
// appended with the current version. A spooled handling step (rule
// auto-dispatch) that conflicts is dropped, counted and logged: the desk
// already acted.
func (j *Journal) replay(ctx context.Context) {
	bo := backoff.New(backoff.Policy{Min: 20 * time.Millisecond, Max: 2 * time.Second, Jitter: 0.5})
	replayed := 0
	for ctx.Err() == nil {
		e, ok, err := j.spool.first()
		if err != nil {
			j.log.Error("read spool", "err", err)
			_ = bo.Wait(ctx)
			continue
		}
		if !ok {
			if replayed > 0 {
				j.log.Info("spool replayed", "changes", replayed)
				replayed = 0
			}
			j.updateDegraded()
			select {
			case <-ctx.Done():
				return
			case <-j.spool.kick:
			}
			continue
		}
		err = e.bad
		if err == nil {
			err = j.replayOne(ctx, e.spooled)
		}
		if err != nil && (errors.Is(err, ErrUnavailable) || ctx.Err() != nil) {
			j.releaseInflight()
			_ = bo.Wait(ctx)
			continue
		}
		bo.Reset()
		switch {
		case err != nil && e.Audit != nil:
			j.metrics.spoolDropped.Inc()
			j.log.Error("spooled audit record not replayable; dropped", "action", e.Audit.Action, "object", e.Audit.Object, "err", err)
		case err != nil:
			j.metrics.spoolDropped.Inc()
			j.log.Error("spooled change not replayable; dropped", "alert", e.Change.Alert.ID, "kind", e.Change.Kind, "err", err)
		default:
			replayed++
		}
		if _, err := j.spool.remove(e); err != nil {
			j.releaseInflight()
			j.log.Error("remove replayed change from spool", "err", err)
			_ = bo.Wait(ctx)
		}
		j.metrics.spoolEvents.Set(float64(j.spool.len()))
	}
}

// releaseInflight ends the replayer's in-flight mark and counts the entry
// as dropped when the spool let go of it meanwhile.
func (j *Journal) releaseInflight() {
	if j.spool.release() {
		j.metrics.spoolDropped.Inc()
	}
}

func (j *Journal) replayOne(ctx context.Context, e spooled) error {
	if e.Audit != nil {
		return j.auditRedis(ctx, *e.Audit)
	}
	c := e.Change
	if e.Batch != "" {
		// The batch call this change was spooled from may have run with its
		// reply lost; then the script left the call's token on the alert.
		b, err := j.rdb.HGet(ctx, j.keys.alert(c.Alert.ID), "b").Result()
		if err = j.observe(err); err != nil && err != redis.Nil {
			return err
		}
		if b == e.Batch {
			return nil
		}
	}
	c.Alert.Version = e.Expect + 1
	_, err := j.appendRedis(ctx, c, e.Expect, true)
	var ce *alerts.ConflictError
	for tries := 0; errors.As(err, &ce) && !lifecycle(c.Kind) && tries < 10; tries++ {
		merged := alerts.MergeSystemChange(ce.Current, c.Alert)
		if sameJSON(merged, ce.Current) {
			return nil // already there (a merge whose reply was lost)
		}
		mc := c
		mc.Alert = merged
		mc.Alert.Version = ce.Current.Version + 1
		_, err = j.appendRedis(ctx, mc, ce.Current.Version, true)
	}
	return err
}

func sameJSON(a, b alerts.Alert) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
