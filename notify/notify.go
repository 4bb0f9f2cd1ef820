// Package notify sends the alerts that must reach people away from the
// desk — raised, reopened, overdue and escalated (督办) — to WeCom and
// DingTalk group robots and signed webhooks.
//
// It follows the journal: each change of a notified kind is routed (first
// matching route wins), turned into a short Chinese message with a link to
// the desk, and queued in a durable Outbox in the journal's store together
// with the journal cursor, before anything is sent. One worker per
// receiver delivers its queue at least once, retrying with backoff until
// MaxAge, within the receiver's rate limit: what does not fit is merged
// into one summary. Nothing here runs inside the alert engine, so a
// receiver that is down never slows alert handling.
//
// It owns no storage (the Outbox is implemented by alerts/boltjournal and
// alerts/redisjournal, checked by notify/notifytest) and decides nothing
// about alerts: escalation is the engine's change; notify only tells.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/errgroup"

	"vigil/alerts"
	"vigil/internal/backoff"
)

// Defaults of Options.
const (
	DefaultMaxAge     = time.Hour
	DefaultRateLimit  = 20 // messages per RateWindow: the robots' documented limit
	DefaultRateWindow = time.Minute
)

// Results counted in vigil_notifications_total{receiver,result}.
const (
	ResultSent    = "sent"    // delivered as its own message
	ResultMerged  = "merged"  // delivered inside a summary
	ResultFailed  = "failed"  // an attempt failed; it will be retried
	ResultExpired = "expired" // given up after MaxAge
)

// Options configure a Notifier.
type Options struct {
	Journal   alerts.Journal // required: the changes to follow
	Outbox    Outbox         // required
	Receivers []Receiver
	Routes    []Route
	// BaseURL is the desk's address; messages link to BaseURL?alert=ID.
	BaseURL string
	// SiteName gives a site's display name; nil shows site IDs.
	SiteName func(site string) string
	// Location shows times in messages; default UTC.
	Location *time.Location
	// MaxAge: an entry not delivered this long after it was queued is
	// dropped and counted as expired. Default DefaultMaxAge.
	MaxAge time.Duration
	// RateLimit messages per RateWindow per receiver; defaults 20 a minute.
	RateLimit  int
	RateWindow time.Duration
	// Retry is the pause between failed attempts of one receiver.
	Retry      backoff.Policy
	Clock      alerts.Clock // nil: the real clock
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

func (o *Options) validate() error {
	var errs []error
	if o.Journal == nil {
		errs = append(errs, errors.New("journal is required"))
	}
	if o.Outbox == nil {
		errs = append(errs, errors.New("outbox is required"))
	}
	ids := map[string]bool{}
	for _, r := range o.Receivers {
		if ids[r.ID()] {
			errs = append(errs, fmt.Errorf("duplicate receiver %q", r.ID()))
		}
		ids[r.ID()] = true
	}
	for i, r := range o.Routes {
		for _, id := range r.To {
			if !ids[id] {
				errs = append(errs, fmt.Errorf("routes[%d].to: unknown receiver %q", i, id))
			}
		}
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.RateLimit <= 0 {
		o.RateLimit = DefaultRateLimit
	}
	if o.RateWindow <= 0 {
		o.RateWindow = DefaultRateWindow
	}
	if o.Retry.Min <= 0 {
		o.Retry = backoff.Policy{Min: time.Second, Max: 5 * time.Minute, Jitter: 0.2}
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Notifier follows the journal and delivers notifications.
type Notifier struct {
	o       Options
	log     *slog.Logger
	total   *prometheus.CounterVec
	workers map[string]*worker
	order   []string // receiver IDs as configured

	mu      sync.Mutex // guards cursor
	cursor  uint64
	loaded  bool
	unsaved int // changes read since the cursor was last stored
	// started is when New ran; history the newest seq when a store without
	// a cursor was first read: changes up to it made before started are
	// not notified.
	started time.Time
	history uint64
}

// saveEvery bounds the changes read again after a restart when none of
// them made a notification.
const saveEvery = 4096

// New validates o and returns a Notifier; Run starts it.
func New(o Options) (*Notifier, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	n := &Notifier{o: o, log: o.Logger.With("component", "notify"), workers: map[string]*worker{}, started: o.Clock.Now()}
	n.total = promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_notifications_total",
		Help: "Notifications to WeCom, DingTalk and webhook receivers by result: sent, merged (inside a summary), failed (an attempt; retried), expired (given up after notify.max_age).",
	}, []string{"receiver", "result"})
	for _, r := range o.Receivers {
		for _, res := range []string{ResultSent, ResultMerged, ResultFailed, ResultExpired} {
			n.total.WithLabelValues(r.ID(), res)
		}
		n.workers[r.ID()] = &worker{n: n, r: r, bo: backoff.New(o.Retry), wake: make(chan struct{}, 1)}
		n.order = append(n.order, r.ID())
	}
	return n, nil
}

// Run follows the journal and delivers until ctx ends. It returns nil when
// ctx ends; failures are retried, never returned.
func (n *Notifier) Run(ctx context.Context) error {
	if len(n.order) == 0 {
		<-ctx.Done() // no receivers: nothing to follow
		return nil
	}
	var g errgroup.Group
	g.Go(func() error { return n.follow(ctx) })
	for _, id := range n.order {
		w := n.workers[id]
		g.Go(func() error { return w.run(ctx) })
	}
	return g.Wait()
}

// pumpBatch bounds the changes one Pump reads.
const pumpBatch = 256

// follow pumps the journal's changes into the outbox whenever the journal
// announces one, retrying with backoff after failures.
func (n *Notifier) follow(ctx context.Context) error {
	bo := backoff.New(n.o.Retry)
	for {
		err := n.followOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		n.log.Error("following the journal; retrying", "err", err)
		if bo.Wait(ctx) != nil {
			return nil
		}
	}
}

func (n *Notifier) followOnce(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribed before reading, so no announcement falls in between.
	sub, err := n.o.Journal.Subscribe(sctx, 1024)
	if err != nil {
		return err
	}
	for {
		k, err := n.Pump(ctx)
		if err != nil {
			return err
		}
		if k == pumpBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-sub.C:
			if !ok {
				if err := sub.Err(); err != nil {
					return err
				}
				return errors.New("journal subscription ended")
			}
		}
	}
}

// Pump turns the journal's changes after the outbox cursor into entries,
// at most pumpBatch changes, and wakes the receivers that got some. It
// returns how many changes it read. A store that never had a cursor starts
// near the journal's newest change and notifies only the changes made
// since New: history is not notified. Run calls it; tests drive it
// directly.
func (n *Notifier) Pump(ctx context.Context) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.loaded {
		seq, ok, err := n.o.Outbox.Cursor(ctx)
		if err != nil {
			return 0, fmt.Errorf("notify: outbox cursor: %w", err)
		}
		if !ok {
			// A store that never had a cursor: history is not notified,
			// but the changes made since New are, though the engine may
			// have made some before this first read.
			last, err := n.o.Journal.LastSeq(ctx)
			if err != nil {
				return 0, fmt.Errorf("notify: journal: %w", err)
			}
			seq = last - min(last, pumpBatch)
			n.history = last
		}
		n.cursor, n.loaded = seq, true
	}
	cs, err := n.o.Journal.Since(ctx, n.cursor, pumpBatch)
	if errors.Is(err, alerts.ErrTooOld) {
		last, lerr := n.o.Journal.LastSeq(ctx)
		if lerr != nil {
			return 0, fmt.Errorf("notify: journal: %w", lerr)
		}
		n.log.Warn("changes after the notification cursor were trimmed from the journal; they are not notified", "cursor", n.cursor, "newest", last)
		if _, err := n.o.Outbox.Enqueue(ctx, last, nil); err != nil {
			return 0, fmt.Errorf("notify: outbox: %w", err)
		}
		n.cursor = last
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("notify: journal since %d: %w", n.cursor, err)
	}
	if len(cs) == 0 {
		return 0, nil
	}
	now := n.o.Clock.Now().UTC()
	var entries []Entry
	for i := range cs {
		if cs[i].Seq <= n.history && cs[i].At.Before(n.started) {
			continue // history, before this notifier was made
		}
		to := Receivers(n.o.Routes, &cs[i])
		if len(to) == 0 {
			continue
		}
		m := n.compose(cs[i])
		for _, id := range to {
			if _, ok := n.workers[id]; !ok {
				continue // routes are checked in New; escalate_to by the config
			}
			entries = append(entries, Entry{Receiver: id, Queued: now, Message: m})
		}
	}
	last := cs[len(cs)-1].Seq
	n.unsaved += len(cs)
	if len(entries) == 0 && n.unsaved < saveEvery {
		// Nothing to send: the cursor moves in memory only, sparing the
		// store a write (an fsync) per change; after a restart these
		// changes are read again and again make no entries.
		n.cursor = last
		return len(cs), nil
	}
	if _, err := n.o.Outbox.Enqueue(ctx, last, entries); err != nil {
		return 0, fmt.Errorf("notify: outbox: %w", err)
	}
	n.cursor, n.unsaved = last, 0
	for _, e := range entries {
		n.workers[e.Receiver].poke()
	}
	return len(cs), nil
}
