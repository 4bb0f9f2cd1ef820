package redisjournal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"vigil/alerts"
	"vigil/internal/backoff"
)

// streamReader reads the change stream with XREAD BLOCK from the last seen ID and
// fans each change out to this node's subscribers, so a subscriber sees the
// appends of every node, in seq order, once each.
type streamReader struct {
	j *Journal

	mu      sync.Mutex
	started bool   // pos is known
	pos     uint64 // seq of the last change read (or the seq the reader started at)
	subs    map[*subscriber]struct{}
	closed  bool
}

type subscriber struct {
	ch   chan alerts.Change
	from uint64 // deliver seq > from
	err  error
	stop func() bool
}

func newStreamReader(j *Journal) *streamReader {
	return &streamReader{j: j, subs: map[*subscriber]struct{}{}}
}

// start sets the reader's position unless it is already known.
func (h *streamReader) start(pos uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started {
		h.started, h.pos = true, pos
	}
}

// readBlock bounds one XREAD BLOCK, so the loop notices a dead connection.
const readBlock = 2 * time.Second

func (h *streamReader) run(ctx context.Context) {
	bo := backoff.New(backoff.Policy{Min: 20 * time.Millisecond, Max: time.Second, Jitter: 0.5})
	for ctx.Err() == nil {
		h.mu.Lock()
		started, pos := h.started, h.pos
		h.mu.Unlock()
		if !started {
			last, err := h.j.LastSeq(ctx)
			if err != nil {
				_ = bo.Wait(ctx)
				continue
			}
			h.start(last)
			continue
		}
		res, err := h.j.reader.XRead(ctx, &redis.XReadArgs{
			Streams: []string{h.j.keys.events, streamID(pos)},
			Count:   1000,
			Block:   readBlock,
		}).Result()
		if ctx.Err() != nil {
			return
		}
		if err = h.j.observe(err); err == redis.Nil {
			// Idle: make sure Redis did not lose the journal (a restart
			// without persistence) under this reader.
			bo.Reset()
			if last, err := h.j.LastSeq(ctx); err == nil && last < pos {
				h.j.log.Error("redis journal restarted from an older seq: ending subscriptions", "seen", pos, "redis", last)
				h.reset(last)
			}
			continue
		} else if err != nil {
			if !errors.Is(err, ErrUnavailable) {
				h.j.log.Error("read change stream", "err", err)
			}
			_ = bo.Wait(ctx)
			continue
		}
		bo.Reset()
		for _, s := range res {
			if len(s.Messages) > 0 {
				if first, err := parseSeq(s.Messages[0].ID); err == nil && first > pos+1 {
					// Changes pos+1..first-1 were trimmed before this
					// node read them: its subscribers cannot see them
					// and must resume with Since (which reports
					// ErrTooOld).
					h.j.log.Error("change stream trimmed past this node's reader: ending subscriptions", "seen", pos, "next", first)
					h.reset(pos)
				}
			}
			for _, m := range s.Messages {
				c, err := decodeChange(m)
				if err != nil {
					h.j.log.Error("read change stream: skip undecodable entry", "err", err)
					continue
				}
				h.deliver(c)
			}
		}
	}
}

func (h *streamReader) deliver(c alerts.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.Seq <= h.pos {
		return
	}
	h.pos = c.Seq
	for s := range h.subs {
		if c.Seq <= s.from {
			continue
		}
		select {
		case s.ch <- c:
		default:
			h.end(s, alerts.ErrSlowSubscriber)
		}
	}
}

// end closes s with err; h.mu is held.
func (h *streamReader) end(s *subscriber, err error) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.stop()
	s.err = err
	close(s.ch)
}

// reset ends every subscription with ErrSlowSubscriber (they resume with
// Since) and moves the reader to pos.
func (h *streamReader) reset(pos uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.end(s, alerts.ErrSlowSubscriber)
	}
	h.pos = pos
}

func (h *streamReader) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.end(s, nil)
	}
}

// Subscribe implements alerts.Journal. It asks Redis for the newest seq, so
// that changes committed before the call are not delivered and every
// change committed after it returns is; with Redis down it starts from the
// newest change this node has read. The subscription ends when ctx ends
// (Err nil), when it falls buffer changes behind (ErrSlowSubscriber), or
// when the journal closes (Err nil).
func (j *Journal) Subscribe(ctx context.Context, buffer int) (*alerts.Subscription, error) {
	if buffer < 1 {
		buffer = 1
	}
	last, err := j.LastSeq(ctx)
	h := j.feed
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || j.closed.Load() {
		return nil, fmt.Errorf("redisjournal: subscribe: %w", ErrClosed)
	}
	if err != nil && !h.started {
		return nil, fmt.Errorf("redisjournal: subscribe: %w", err)
	}
	if err == nil && !h.started {
		h.started, h.pos = true, last
	}
	s := &subscriber{ch: make(chan alerts.Change, buffer), from: max(last, h.pos)}
	s.stop = context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.end(s, nil)
	})
	h.subs[s] = struct{}{}
	return alerts.NewSubscription(s.ch, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		return s.err
	}), nil
}
