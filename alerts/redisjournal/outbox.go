package redisjournal

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"vigil/notify"
)

var _ notify.Outbox = (*Outbox)(nil)

// Outbox is the notification outbox in Redis, beside the journal: a hash of
// entries (id → receiver "\n" entry JSON), one sorted set of IDs per
// receiver, an ID counter and the cursor. Enqueue is one Lua script, so
// entries and cursor move together.
type Outbox struct {
	j                            *Journal
	entries, next, cursor, queue string
}

// Outbox returns the journal's notification outbox; it is valid until the
// journal is closed.
func (j *Journal) Outbox() *Outbox {
	p := j.opts.KeyPrefix + "notify:"
	return &Outbox{j: j, entries: p + "entries", next: p + "next_id", cursor: p + "cursor", queue: p + "q:"}
}

// enqueueScript: KEYS 1 id counter, 2 entries hash, 3 cursor; ARGV 1 seq,
// 2 queue key prefix, then receiver and entry JSON per entry. Returns the
// IDs.
var enqueueScript = redis.NewScript(`
local ids = {}
for i = 3, #ARGV, 2 do
  local id = redis.call('INCR', KEYS[1])
  redis.call('HSET', KEYS[2], id, ARGV[i] .. '\n' .. ARGV[i+1])
  redis.call('ZADD', ARGV[2] .. ARGV[i], id, id)
  ids[#ids+1] = id
end
redis.call('SET', KEYS[3], ARGV[1])
return ids
`)

// removeScript: KEYS 1 entries hash; ARGV 1 queue key prefix, then IDs.
var removeScript = redis.NewScript(`
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    local nl = string.find(v, '\n', 1, true)
    redis.call('ZREM', ARGV[1] .. string.sub(v, 1, nl - 1), ARGV[i])
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 0
`)

// Cursor implements notify.Outbox.
func (o *Outbox) Cursor(ctx context.Context) (uint64, bool, error) {
	s, err := o.j.rdb.Get(ctx, o.cursor).Result()
	if err == redis.Nil {
		return 0, false, o.j.observe(nil)
	}
	if err != nil {
		return 0, false, fmt.Errorf("redisjournal: outbox cursor: %w", o.j.observe(err))
	}
	o.j.observe(nil)
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("redisjournal: outbox cursor %q: %w", s, err)
	}
	return seq, true, nil
}

// Enqueue implements notify.Outbox.
func (o *Outbox) Enqueue(ctx context.Context, seq uint64, entries []notify.Entry) ([]notify.Entry, error) {
	args := []any{strconv.FormatUint(seq, 10), o.queue}
	for _, e := range entries {
		e.ID = 0
		v, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("redisjournal: outbox enqueue: %w", err)
		}
		args = append(args, e.Receiver, v)
	}
	res, err := enqueueScript.Run(ctx, o.j.rdb, []string{o.next, o.entries, o.cursor}, args...).Int64Slice()
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("redisjournal: outbox enqueue: %w", o.j.observe(err))
	}
	o.j.observe(nil)
	if len(res) != len(entries) {
		return nil, fmt.Errorf("redisjournal: outbox enqueue: %d IDs for %d entries", len(res), len(entries))
	}
	out := make([]notify.Entry, len(entries))
	for i, e := range entries {
		e.ID = uint64(res[i])
		out[i] = e
	}
	return out, nil
}

// Pending implements notify.Outbox.
func (o *Outbox) Pending(ctx context.Context, receiver string, limit int) ([]notify.Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	ids, err := o.j.rdb.ZRange(ctx, o.queue+receiver, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisjournal: outbox pending: %w", o.j.observe(err))
	}
	if len(ids) == 0 {
		return nil, o.j.observe(nil)
	}
	vals, err := o.j.rdb.HMGet(ctx, o.entries, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("redisjournal: outbox pending: %w", o.j.observe(err))
	}
	o.j.observe(nil)
	out := make([]notify.Entry, 0, len(ids))
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // removed between the two reads
		}
		_, js, _ := strings.Cut(s, "\n")
		var e notify.Entry
		if err := json.Unmarshal([]byte(js), &e); err != nil {
			return nil, fmt.Errorf("redisjournal: outbox entry %s: %w", ids[i], err)
		}
		if e.ID, err = strconv.ParseUint(ids[i], 10, 64); err != nil {
			return nil, fmt.Errorf("redisjournal: outbox entry %s: %w", ids[i], err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Remove implements notify.Outbox.
func (o *Outbox) Remove(ctx context.Context, ids ...uint64) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{o.queue}
	for _, id := range ids {
		args = append(args, strconv.FormatUint(id, 10))
	}
	if err := removeScript.Run(ctx, o.j.rdb, []string{o.entries}, args...).Err(); err != nil && err != redis.Nil {
		return fmt.Errorf("redisjournal: outbox remove: %w", o.j.observe(err))
	}
	o.j.observe(nil)
	return nil
}
