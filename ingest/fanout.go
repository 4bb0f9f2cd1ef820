package ingest

import (
	"context"
	"sync"

	"vigil/internal/media"
)

// feed is the fan-out point of one camera ID. It outlives camera restarts so
// that subscriptions and session numbers carry over.
type feed struct {
	camera string

	mu      sync.Mutex
	subs    []*subscriber
	stream  *media.Stream // current stream, nil between sessions
	session uint64
}

// delivery is one queued item. Fields are applied in order: a dropped-units
// break, a stream announcement, a break, an access unit.
type delivery struct {
	dropped int
	stream  *media.Stream
	brk     string
	au      *media.AccessUnit
}

// subscriber is one sink of one camera with its own bounded queue, drained by
// its own goroutine.
type subscriber struct {
	name    string
	sink    media.Sink
	queue   chan delivery
	quit    chan struct{}
	once    sync.Once
	dropped func() // counts one drop; looked up per drop so it survives camera restarts

	// Guarded by Streams.mu.
	started bool
	done    chan struct{} // closed when the goroutine last started returns

	// Guarded by feed.mu.
	pendingDrops  int
	pendingStream *media.Stream
}

func (s *subscriber) stop() { s.once.Do(func() { close(s.quit) }) }

// run delivers the queue to the sink until ctx ends or the subscription is
// cancelled; either way it first delivers what is already queued, so that a
// recorder closing its segment afterwards has every unit ingest accepted for
// it. It closes done when it returns.
func (s *subscriber) run(ctx context.Context, done chan struct{}) error {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			s.drain()
			return nil
		case <-s.quit:
			s.drain()
			return nil
		case d := <-s.queue:
			s.deliver(d)
		}
	}
}

// drain delivers what is queued now and returns when the queue is empty.
func (s *subscriber) drain() {
	for {
		select {
		case d := <-s.queue:
			s.deliver(d)
		default:
			return
		}
	}
}

func (s *subscriber) deliver(d delivery) {
	if d.dropped > 0 {
		s.sink.OnBreak("dropped", d.dropped)
	}
	if d.stream != nil {
		s.sink.OnStream(*d.stream)
	}
	if d.brk != "" {
		s.sink.OnBreak(d.brk, 0)
	}
	if d.au != nil {
		s.sink.OnAccessUnit(*d.au)
	}
}

// offer enqueues d without blocking; on a full queue it counts the drop and
// remembers a lost stream announcement for the next delivery. Called with
// feed.mu held.
func (s *subscriber) offer(d delivery) {
	if s.pendingStream != nil && d.stream == nil {
		d.stream = s.pendingStream
	}
	d.dropped = s.pendingDrops
	select {
	case s.queue <- d:
		s.pendingDrops = 0
		s.pendingStream = nil
	default:
		if d.au != nil {
			s.pendingDrops++
			s.dropped()
		}
		if d.stream != nil {
			s.pendingStream = d.stream
		}
	}
}

// announce starts a new stream for every subscriber.
func (f *feed) announce(s media.Stream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.session++
	s.Session = f.session
	f.stream = &s
	for _, sub := range f.subs {
		sub.offer(delivery{stream: f.stream})
	}
}

func (f *feed) publish(au *media.AccessUnit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stream == nil {
		return
	}
	for _, sub := range f.subs {
		sub.offer(delivery{au: au})
	}
}

// end closes the current stream with a break, if there is one.
func (f *feed) end(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stream == nil {
		return
	}
	f.stream = nil
	for _, sub := range f.subs {
		if sub.pendingStream != nil {
			// The sink never saw that stream; nothing to end.
			sub.pendingStream = nil
			continue
		}
		sub.offer(delivery{brk: reason})
	}
}

func (f *feed) add(s *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.pendingStream = f.stream // a late subscriber first learns the current stream
	f.subs = append(f.subs, s)
}

func (f *feed) remove(s *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.subs {
		if x == s {
			f.subs = append(f.subs[:i:i], f.subs[i+1:]...)
			break
		}
	}
}
