// Package boltjournal is the embedded alerts.Journal on bbolt, Vigil's
// default. It owns the journal file: alert state, the change log, the list
// indexes and the audit log. Each Append, and each AppendBatch however many
// changes it holds, is one bbolt transaction (fsynced at commit), so a crash
// never leaves half an event or half a batch; subscribers hear of a change
// only after its commit.
package boltjournal

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"vigil/alerts"
)

var (
	_ alerts.Journal  = (*Journal)(nil)
	_ alerts.AuditLog = (*Journal)(nil)
	_ alerts.Trimmer  = (*Journal)(nil)

	_ alerts.BatchAppender = (*Journal)(nil)
	_ alerts.StatsSource   = (*Journal)(nil)
)

var (
	bucketAlerts  = []byte("alerts")  // id → alert JSON
	bucketChanges = []byte("changes") // big-endian seq → change JSON
	bucketRaised  = []byte("raised")  // raised_at (ns, BE) + id → the alert's alerts.StatsRecord, every alert
	bucketOpen    = []byte("open")    // raised_at (ns, BE) + id → nil, unresolved alerts
	bucketActive  = []byte("active")  // raised_at (ns, BE) + id → nil, alerts whose signal is active
	bucketAudit   = []byte("audit")   // big-endian seq → audit record JSON
	bucketMeta    = []byte("meta")
	keyFirst      = []byte("first_seq") // lowest seq not trimmed
	// keyStatsRecords is set once the raised index holds stats records
	// (files written before had nil values there).
	keyStatsRecords = []byte("stats_records")
)

// Options configure a Journal.
type Options struct {
	// Path of the journal file; created when missing.
	Path string
	// KeepChanges bounds the change log to the newest N changes; 0 keeps
	// everything. Older changes are dropped as new ones arrive; Since below
	// them reports alerts.ErrTooOld. Alert state is always kept.
	KeepChanges uint64
	// OpenTimeout bounds the wait for the file lock held by another process.
	// Default 5s.
	OpenTimeout time.Duration
	// Registerer receives the journal's metrics; nil registers nothing.
	// The embedded journal has no spool, but it registers
	// vigil_journal_spool_events (always 0) so that the documented metric
	// exists whichever backend runs. Close unregisters it.
	Registerer prometheus.Registerer
}

func (o *Options) validate() error {
	if o.Path == "" {
		return errors.New("boltjournal: path is required")
	}
	if o.OpenTimeout == 0 {
		o.OpenTimeout = 5 * time.Second
	}
	return nil
}

// Journal is the bbolt journal. Its methods are safe for concurrent use.
type Journal struct {
	db   *bolt.DB
	keep uint64
	reg  prometheus.Registerer
	// spoolEvents is vigil_journal_spool_events, always 0 here.
	spoolEvents prometheus.Gauge

	// mu orders commit and announcement: a change is announced to
	// subscribers before the next append commits, so subscribers see seq
	// order.
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch    chan alerts.Change
	err   error
	stop  func() bool
	ended bool
}

// Open opens (or creates) the journal file.
func Open(o Options) (*Journal, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	db, err := bolt.Open(o.Path, 0o600, &bolt.Options{Timeout: o.OpenTimeout})
	if err != nil {
		return nil, fmt.Errorf("boltjournal: open %s: %w", o.Path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		fill := tx.Bucket(bucketActive) == nil && tx.Bucket(bucketAlerts) != nil
		for _, b := range [][]byte{bucketAlerts, bucketChanges, bucketRaised, bucketOpen, bucketActive, bucketAudit, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if fill {
			if err := fillActive(tx); err != nil {
				return err
			}
		}
		if tx.Bucket(bucketMeta).Get(keyStatsRecords) == nil {
			if err := fillStatsRecords(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltjournal: init %s: %w", o.Path, err)
	}
	j := &Journal{db: db, keep: o.KeepChanges, reg: o.Registerer, subs: map[*subscriber]struct{}{}}
	if j.reg != nil {
		j.spoolEvents = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_journal_spool_events",
			Help: "Changes waiting in the local spool for the journal backend; always 0 on the embedded journal, which has no spool.",
		})
		if err := j.reg.Register(j.spoolEvents); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("boltjournal: register metrics: %w", err)
		}
	}
	return j, nil
}

// fillStatsRecords puts each alert's stats record into the raised index of
// a journal file written before it held them.
func fillStatsRecords(tx *bolt.Tx) error {
	rb := tx.Bucket(bucketRaised)
	err := tx.Bucket(bucketAlerts).ForEach(func(k, v []byte) error {
		var a alerts.Alert
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("decode alert %s: %w", k, err)
		}
		r := alerts.StatsRecordOf(&a)
		rec, err := r.AppendBinary(nil)
		if err != nil {
			return err
		}
		return rb.Put(indexKey(a.RaisedAt, a.ID), rec)
	})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyStatsRecords, []byte{1})
}

// StatsRecords implements alerts.StatsSource from the raised index, in
// one read transaction.
func (j *Journal) StatsRecords(ctx context.Context, from, to time.Time, fn func(*alerts.StatsRecord) error) error {
	lo := indexKey(from, "")
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRaised).Cursor()
		var r alerts.StatsRecord
		n := 0
		for k, v := c.Seek(lo); k != nil; k, v = c.Next() {
			if int64(binary.BigEndian.Uint64(k)) >= to.UnixNano() {
				break
			}
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if err := r.UnmarshalBinary(v); err != nil {
				return fmt.Errorf("alert %s: %w", k[8:], err)
			}
			if err := fn(&r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltjournal: stats records: %w", err)
	}
	return nil
}

// fillActive builds the active index of a journal file written before the
// index existed.
func fillActive(tx *bolt.Tx) error {
	sb := tx.Bucket(bucketActive)
	return tx.Bucket(bucketAlerts).ForEach(func(k, v []byte) error {
		var a alerts.Alert
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("decode alert %s: %w", k, err)
		}
		if a.Signal != alerts.SignalActive {
			return nil
		}
		return sb.Put(indexKey(a.RaisedAt, a.ID), nil)
	})
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// indexKey sorts by raised_at then ID; times before 1970 are not expected.
func indexKey(at time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	return append(k, id...)
}

func firstSeq(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keyFirst); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 1
}

// Append implements alerts.Journal: a batch of one.
func (j *Journal) Append(ctx context.Context, c alerts.Change, expectVersion int64) (alerts.Change, error) {
	cs, errs := j.AppendBatch(ctx, []alerts.BatchItem{{Change: c, ExpectVersion: expectVersion}})
	return cs[0], errs[0]
}

// AppendBatch implements alerts.BatchAppender: every item in one bbolt
// transaction, so a batch costs one commit (one pair of fsyncs) however long
// it is, and a crash keeps all of it or none.
func (j *Journal) AppendBatch(ctx context.Context, items []alerts.BatchItem) ([]alerts.Change, []error) {
	out := make([]alerts.Change, len(items))
	errs := make([]error, len(items))
	failAll := func(err error) ([]alerts.Change, []error) {
		for i := range errs {
			errs[i] = err
		}
		return make([]alerts.Change, len(items)), errs
	}
	if len(items) == 0 {
		return out, errs
	}
	if err := ctx.Err(); err != nil {
		return failAll(err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return failAll(bolt.ErrDatabaseNotOpen)
	}
	err := j.db.Update(func(tx *bolt.Tx) error {
		clear(errs)
		failed := map[string]bool{} // alerts with a failed item in this batch
		var last uint64
		for i, it := range items {
			id := it.Change.Alert.ID
			var err error
			if failed[id] {
				err = skipped(tx, id)
			} else {
				out[i], err = appendTx(tx, it.Change, it.ExpectVersion)
			}
			var ce *alerts.ConflictError
			switch {
			case err == nil:
				last = out[i].Seq
			case errors.Is(err, alerts.ErrExists), errors.Is(err, alerts.ErrNotFound), errors.As(err, &ce), errors.Is(err, errNoID):
				errs[i], failed[id] = err, true
			default:
				return fmt.Errorf("append alert %s: %w", id, err)
			}
		}
		if j.keep > 0 && last > j.keep {
			return trim(tx, last-j.keep+1)
		}
		return nil
	})
	if err != nil {
		return failAll(fmt.Errorf("boltjournal: %w", err))
	}
	for i := range items {
		if errs[i] == nil {
			j.announce(out[i].Logged())
		}
	}
	return out, errs
}

var errNoID = errors.New("boltjournal: append: alert without ID")

// skipped is the error of an item whose alert had an earlier item of the
// same batch fail.
func skipped(tx *bolt.Tx, id string) error {
	prev, err := storedAlert(tx, id)
	if err != nil {
		return err
	}
	if prev == nil {
		return fmt.Errorf("alert %s: an earlier item of the batch failed: %w", id, alerts.ErrNotFound)
	}
	return &alerts.ConflictError{Current: *prev}
}

func storedAlert(tx *bolt.Tx, id string) (*alerts.Alert, error) {
	raw := tx.Bucket(bucketAlerts).Get([]byte(id))
	if raw == nil {
		return nil, nil
	}
	a := new(alerts.Alert)
	if err := json.Unmarshal(raw, a); err != nil {
		return nil, fmt.Errorf("decode stored alert %s: %w", id, err)
	}
	return a, nil
}

// appendTx checks and stores one change inside tx; see alerts.Journal.Append.
func appendTx(tx *bolt.Tx, c alerts.Change, expectVersion int64) (alerts.Change, error) {
	if c.Alert.ID == "" {
		return alerts.Change{}, errNoID
	}
	prev, err := storedAlert(tx, c.Alert.ID)
	if err != nil {
		return alerts.Change{}, err
	}
	switch {
	case expectVersion == 0 && prev != nil:
		return alerts.Change{}, alerts.ErrExists
	case expectVersion != 0 && prev == nil:
		return alerts.Change{}, alerts.ErrNotFound
	case prev != nil && prev.Version != expectVersion:
		return alerts.Change{}, &alerts.ConflictError{Current: *prev}
	}
	c.Alert.Version = expectVersion + 1
	cb := tx.Bucket(bucketChanges)
	seq, err := cb.NextSequence()
	if err != nil {
		return alerts.Change{}, err
	}
	c.Seq = seq
	state, err := json.Marshal(c.Alert)
	if err != nil {
		return alerts.Change{}, err
	}
	change, err := json.Marshal(c.Logged())
	if err != nil {
		return alerts.Change{}, err
	}
	if err := tx.Bucket(bucketAlerts).Put([]byte(c.Alert.ID), state); err != nil {
		return alerts.Change{}, err
	}
	if err := cb.Put(u64(seq), change); err != nil {
		return alerts.Change{}, err
	}
	if err := reindex(tx, prev, &c.Alert); err != nil {
		return alerts.Change{}, err
	}
	return c, nil
}

// reindex keeps the raised, open and active indexes in step with a's new
// state; prev is its stored state or nil.
func reindex(tx *bolt.Tx, prev, a *alerts.Alert) error {
	rb, ob, sb := tx.Bucket(bucketRaised), tx.Bucket(bucketOpen), tx.Bucket(bucketActive)
	if prev != nil && !prev.RaisedAt.Equal(a.RaisedAt) {
		old := indexKey(prev.RaisedAt, prev.ID)
		for _, b := range []*bolt.Bucket{rb, ob, sb} {
			if err := b.Delete(old); err != nil {
				return err
			}
		}
	}
	key := indexKey(a.RaisedAt, a.ID)
	sr := alerts.StatsRecordOf(a)
	rec, err := sr.AppendBinary(nil)
	if err != nil {
		return err
	}
	if err := rb.Put(key, rec); err != nil {
		return err
	}
	for _, x := range []struct {
		b  *bolt.Bucket
		in bool
	}{{ob, a.Status.Open()}, {sb, a.Signal == alerts.SignalActive}} {
		var err error
		if x.in {
			err = x.b.Put(key, nil)
		} else {
			err = x.b.Delete(key)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// announce hands c to every subscriber; j.mu is held.
func (j *Journal) announce(c alerts.Change) {
	for s := range j.subs {
		select {
		case s.ch <- c:
		default:
			j.end(s, alerts.ErrSlowSubscriber)
		}
	}
}

// end closes a subscription; j.mu is held.
func (j *Journal) end(s *subscriber, err error) {
	if s.ended {
		return
	}
	s.ended, s.err = true, err
	s.stop()
	delete(j.subs, s)
	close(s.ch)
}

// trim drops changes below first; it only moves forward.
func trim(tx *bolt.Tx, first uint64) error {
	if first <= firstSeq(tx) {
		return nil
	}
	cur := tx.Bucket(bucketChanges).Cursor()
	limit := u64(first)
	for k, _ := cur.First(); k != nil && bytes.Compare(k, limit) < 0; k, _ = cur.Next() {
		if err := cur.Delete(); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keyFirst, u64(first))
}

// TrimBefore implements alerts.Trimmer: changes with seq < seq are dropped.
func (j *Journal) TrimBefore(ctx context.Context, seq uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := j.db.Update(func(tx *bolt.Tx) error { return trim(tx, seq) }); err != nil {
		return fmt.Errorf("boltjournal: trim before %d: %w", seq, err)
	}
	return nil
}

// Get implements alerts.Journal.
func (j *Journal) Get(ctx context.Context, id string) (alerts.Alert, error) {
	var a alerts.Alert
	err := j.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketAlerts).Get([]byte(id))
		if raw == nil {
			return alerts.ErrNotFound
		}
		return json.Unmarshal(raw, &a)
	})
	if err != nil {
		if errors.Is(err, alerts.ErrNotFound) {
			return alerts.Alert{}, fmt.Errorf("alert %s: %w", id, err)
		}
		return alerts.Alert{}, fmt.Errorf("boltjournal: get alert %s: %w", id, err)
	}
	return a, nil
}

// List implements alerts.Journal. It walks the raised_at index newest first
// (the open index when only unresolved alerts can match) and filters.
func (j *Journal) List(ctx context.Context, f alerts.Filter) ([]alerts.Alert, string, error) {
	limit := f.PageLimit()
	var from []byte
	if f.Cursor != "" {
		p, err := alerts.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		from = indexKey(p.RaisedAt, p.ID)
	} else if !f.Until.IsZero() {
		from = indexKey(f.Until, "")
	}
	var sinceKey []byte
	if !f.Since.IsZero() {
		sinceKey = indexKey(f.Since, "")
	}
	index := bucketRaised
	switch {
	case f.Signal == alerts.SignalActive:
		index = bucketActive
	case f.Open || (f.Status != "" && f.Status.Open()):
		index = bucketOpen
	}
	var out []alerts.Alert
	next := ""
	err := j.db.View(func(tx *bolt.Tx) error {
		ab := tx.Bucket(bucketAlerts)
		cur := tx.Bucket(index).Cursor()
		var k []byte
		if from == nil {
			k, _ = cur.Last()
		} else {
			// Seek lands on the first key >= from; step back to the first
			// key strictly below it.
			k, _ = cur.Seek(from)
			if k == nil {
				k, _ = cur.Last()
			}
			for k != nil && bytes.Compare(k, from) >= 0 {
				k, _ = cur.Prev()
			}
		}
		for ; k != nil; k, _ = cur.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if sinceKey != nil && bytes.Compare(k, sinceKey) < 0 {
				break
			}
			var a alerts.Alert
			if err := json.Unmarshal(ab.Get(k[8:]), &a); err != nil {
				return fmt.Errorf("decode alert %s: %w", k[8:], err)
			}
			if !f.Match(a) {
				continue
			}
			if len(out) == limit {
				last := out[len(out)-1]
				next = alerts.EncodeCursor(alerts.ListPosition{RaisedAt: last.RaisedAt, ID: last.ID})
				break
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("boltjournal: list: %w", err)
	}
	if out == nil {
		out = []alerts.Alert{}
	}
	return out, next, nil
}

// Since implements alerts.Journal. A limit of 0 or less means 1000.
func (j *Journal) Since(ctx context.Context, seq uint64, limit int) ([]alerts.Change, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []alerts.Change
	err := j.db.View(func(tx *bolt.Tx) error {
		if seq+1 < firstSeq(tx) {
			return alerts.ErrTooOld
		}
		cur := tx.Bucket(bucketChanges).Cursor()
		for k, v := cur.Seek(u64(seq + 1)); k != nil && len(out) < limit; k, v = cur.Next() {
			var c alerts.Change
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode change %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, alerts.ErrTooOld) {
			return nil, fmt.Errorf("since %d: %w", seq, err)
		}
		return nil, fmt.Errorf("boltjournal: since %d: %w", seq, err)
	}
	return out, nil
}

// Size is the bytes of the journal's pages, in use or free for reuse: the
// high-water mark of its data, without the file's preallocation.
func (j *Journal) Size() (int64, error) {
	var n int64
	err := j.db.View(func(tx *bolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n, err
}

// LastSeq implements alerts.Journal.
func (j *Journal) LastSeq(ctx context.Context) (uint64, error) {
	var s uint64
	err := j.db.View(func(tx *bolt.Tx) error {
		s = tx.Bucket(bucketChanges).Sequence()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("boltjournal: last seq: %w", err)
	}
	return s, nil
}

// Subscribe implements alerts.Journal. The subscription ends when ctx ends,
// when it falls buffer changes behind, or when the journal closes.
func (j *Journal) Subscribe(ctx context.Context, buffer int) (*alerts.Subscription, error) {
	if buffer < 1 {
		buffer = 1
	}
	s := &subscriber{ch: make(chan alerts.Change, buffer)}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, bolt.ErrDatabaseNotOpen
	}
	s.stop = context.AfterFunc(ctx, func() {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.end(s, nil)
	})
	j.subs[s] = struct{}{}
	return alerts.NewSubscription(s.ch, func() error {
		j.mu.Lock()
		defer j.mu.Unlock()
		return s.err
	}), nil
}

// Audit implements alerts.AuditLog; r.Seq is assigned.
func (j *Journal) Audit(ctx context.Context, r alerts.AuditRecord) error {
	err := j.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		r.Seq = seq
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return b.Put(u64(seq), raw)
	})
	if err != nil {
		return fmt.Errorf("boltjournal: audit %s %s: %w", r.Action, r.Object, err)
	}
	return nil
}

// AuditSince implements alerts.AuditLog. A limit of 0 or less means 1000.
func (j *Journal) AuditSince(ctx context.Context, seq uint64, limit int) ([]alerts.AuditRecord, error) {
	if limit <= 0 {
		limit = 1000
	}
	if seq == math.MaxUint64 { // nothing follows it, and seq+1 would wrap to the start
		return nil, nil
	}
	var out []alerts.AuditRecord
	err := j.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketAudit).Cursor()
		for k, v := cur.Seek(u64(seq + 1)); k != nil && len(out) < limit; k, v = cur.Next() {
			var r alerts.AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltjournal: audit since %d: %w", seq, err)
	}
	return out, nil
}

// Close ends every subscription (with a nil Err) and closes the file.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	for s := range j.subs {
		j.end(s, nil)
	}
	j.mu.Unlock()
	if j.reg != nil {
		j.reg.Unregister(j.spoolEvents)
	}
	return j.db.Close()
}
