package boltjournal

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"vigil/notify"
)

var _ notify.Outbox = (*Outbox)(nil)

var (
	bucketOutbox    = []byte("notify_outbox") // receiver + 0 + BE id → entry JSON
	bucketOutboxIDs = []byte("notify_ids")    // BE id → its outbox key
	keyNotifyCursor = []byte("notify_cursor") // in meta: BE seq
)

// Outbox is the notification outbox in the journal's file: an entry and
// the cursor move in one bbolt transaction, so a crash never loses a
// change's notifications nor queues them twice.
type Outbox struct{ db *bolt.DB }

// Outbox returns the journal's notification outbox; it is valid until the
// journal is closed.
func (j *Journal) Outbox() (*Outbox, error) {
	err := j.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketOutbox, bucketOutboxIDs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltjournal: outbox: %w", err)
	}
	return &Outbox{db: j.db}, nil
}

func outboxKey(receiver string, id uint64) []byte {
	k := make([]byte, 0, len(receiver)+9)
	k = append(k, receiver...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, id)
}

// Cursor implements notify.Outbox.
func (o *Outbox) Cursor(ctx context.Context) (seq uint64, ok bool, err error) {
	err = o.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyNotifyCursor)
		if len(v) == 8 {
			seq, ok = binary.BigEndian.Uint64(v), true
		}
		return nil
	})
	return seq, ok, err
}

// Enqueue implements notify.Outbox: one transaction, fsynced at commit.
func (o *Outbox) Enqueue(ctx context.Context, seq uint64, entries []notify.Entry) ([]notify.Entry, error) {
	out := make([]notify.Entry, len(entries))
	err := o.db.Update(func(tx *bolt.Tx) error {
		b, ids := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxIDs)
		for i, e := range entries {
			id, err := ids.NextSequence()
			if err != nil {
				return err
			}
			e.ID = id
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			k := outboxKey(e.Receiver, id)
			if err := b.Put(k, v); err != nil {
				return err
			}
			if err := ids.Put(binary.BigEndian.AppendUint64(nil, id), k); err != nil {
				return err
			}
			out[i] = e
		}
		return tx.Bucket(bucketMeta).Put(keyNotifyCursor, binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil {
		return nil, fmt.Errorf("boltjournal: outbox enqueue: %w", err)
	}
	return out, nil
}

// Pending implements notify.Outbox.
func (o *Outbox) Pending(ctx context.Context, receiver string, limit int) ([]notify.Entry, error) {
	var out []notify.Entry
	prefix := append([]byte(receiver), 0)
	err := o.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Next() {
			var e notify.Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %x: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltjournal: outbox pending: %w", err)
	}
	return out, nil
}

// Remove implements notify.Outbox.
func (o *Outbox) Remove(ctx context.Context, ids ...uint64) error {
	if len(ids) == 0 {
		return nil
	}
	err := o.db.Update(func(tx *bolt.Tx) error {
		b, idx := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxIDs)
		for _, id := range ids {
			ik := binary.BigEndian.AppendUint64(nil, id)
			k := idx.Get(ik)
			if k == nil {
				continue
			}
			if err := b.Delete(bytes.Clone(k)); err != nil {
				return err
			}
			if err := idx.Delete(ik); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltjournal: outbox remove: %w", err)
	}
	return nil
}
