package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// Errors of the submit path.
var (
	// ErrQueueFull: Submit found the event queue full; the event was dropped
	// and counted so that ingest never waits.
	ErrQueueFull = errors.New("alert event queue full")
	// ErrNotDurable (CodeUnavailable): SubmitAllWait stopped waiting before
	// its events were appended; they stay queued and may still be applied.
	ErrNotDurable error = &Error{Code: CodeUnavailable, Message: "events queued but not yet durable in the journal"}
)

// System is the actor (By) of the changes the engine makes by itself, whose
// Origin is OriginSystem. The name is reserved: the engine refuses a
// person's action under it, and configs refuses a token named so.
const System = "system"

// Evidence keeps the footage of an alert from retention. The recorder
// implements it; the engine calls it again for the same ID whenever the
// range or the expiry changes, so PlaceHold replaces a hold by ID.
type Evidence interface {
	PlaceHold(ctx context.Context, h HoldRequest) error
}

// HoldRequest asks to keep a camera's footage in [Start, End].
type HoldRequest struct {
	ID     string // the alert ID; one hold per alert
	Camera string
	Start  time.Time
	End    time.Time // zero: open, the signal is still active
	Until  time.Time // zero: no expiry yet (the alert is not resolved)
	Reason string
}

// Clock is the engine's source of time; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a
	// stop function.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// CameraLookup gives a camera's name, site and grid; ok is false for an
// unknown camera.
type CameraLookup func(id string) (name, site, grid string, ok bool)

// Options configure an Engine.
type Options struct {
	Journal Journal // required
	Rules   []Rule  // first match wins; DefaultRule when none matches
	Units   []Unit
	Cameras CameraLookup // nil: camera names are their IDs, no site or grid

	PreRoll          time.Duration // footage kept before raised_at
	PostRoll         time.Duration // footage kept after the signal ended
	HoldAfterResolve time.Duration // evidence hold kept after resolution
	StaleAfter       time.Duration // an active signal without events ends after this; 0: never
	// MaxEventAge: an event's own time becomes the alert's raised_at when it
	// lies within [received-MaxEventAge, received+MaxClockAhead]; default 5m.
	MaxEventAge time.Duration

	Evidence Evidence // nil: no holds
	// OnRaised, when set, is told of every alert raised, once it is
	// durable (to take its snapshot). It runs on the engine's goroutine
	// and must not block.
	OnRaised   func(Alert)
	Clock      Clock // nil: the real clock
	Registerer prometheus.Registerer
	Logger     *slog.Logger

	// QueueSize bounds Submit's queue; default 4096.
	QueueSize int
	// MaxBatch bounds the events handled in one group commit (one journal
	// transaction); default DefaultMaxBatch.
	MaxBatch int
	// TickEvery is how often Run checks deadlines and stale signals;
	// default 1s.
	TickEvery time.Duration
}

func (o *Options) validate() (map[string]Unit, error) {
	var errs []error
	if o.Journal == nil {
		errs = append(errs, errors.New("journal is required"))
	}
	units := map[string]Unit{}
	for i, u := range o.Units {
		if u.ID == "" {
			errs = append(errs, fmt.Errorf("units[%d]: id is required", i))
		}
		if _, dup := units[u.ID]; dup {
			errs = append(errs, fmt.Errorf("units[%d]: duplicate id %q", i, u.ID))
		}
		units[u.ID] = u
	}
	if err := validateRules(o.Rules, units); err != nil {
		errs = append(errs, err)
	}
	if o.PreRoll < 0 || o.PostRoll < 0 || o.HoldAfterResolve < 0 || o.StaleAfter < 0 || o.MaxEventAge < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if o.MaxEventAge == 0 {
		o.MaxEventAge = DefaultMaxEventAge
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
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.TickEvery <= 0 {
		o.TickEvery = time.Second
	}
	if o.Cameras == nil {
		o.Cameras = func(id string) (string, string, string, bool) { return id, "", "", true }
	}
	return units, errors.Join(errs...)
}

// Engine turns events into alerts and carries alerts through their handling:
// rules → dedupe → lifecycle → journal. Event handling and desk actions are
// serialized by one lock; events are handled in batches, one journal append
// (one fsync) per batch: whatever queued while the previous batch was being
// written (group commit). The journal is the source of truth; the engine
// keeps only the alerts whose signal or handling is still live.
type Engine struct {
	o     Options
	units map[string]Unit
	queue chan queued
	m     *metrics
	log   *slog.Logger

	// submitMu makes SubmitAll's capacity check and sends one step: only
	// Run takes from the queue, so room seen under the lock stays.
	submitMu sync.Mutex

	// fx carries out the side effects of stored changes (holds, audit)
	// after them, retrying until done.
	fx *effects

	mu     sync.Mutex
	loaded bool
	// unloaded: the journal could not be read at start (Redis down); events
	// are handled with what the engine tracks and the load is tried again
	// at most every reloadEvery, at lastLoad + reloadEvery.
	unloaded bool
	lastLoad time.Time
	tracked  map[string]*Alert // by ID: the open alerts
	signals  map[SignalKey]string
	rules    map[string]Rule // rule of each tracked alert, for cooldown
	// raises remembers the alerts each signal raised in the last
	// occurrenceWindow, for previous_id and occurrences_24h.
	raises    occurrences
	lastSweep time.Time // of raises, at most once a minute from Tick
}

// New validates o and returns an engine; Run starts it.
func New(o Options) (*Engine, error) {
	units, err := o.validate()
	if err != nil {
		return nil, fmt.Errorf("alerts engine: %w", err)
	}
	m := newMetrics(o.Registerer)
	log := o.Logger.With("component", "alerts")
	var audit AuditLog
	if al, ok := o.Journal.(AuditLog); ok {
		audit = al
	}
	return &Engine{
		o: o, units: units,
		queue:   make(chan queued, o.QueueSize),
		m:       m,
		log:     log,
		tracked: map[string]*Alert{},
		signals: map[SignalKey]string{},
		rules:   map[string]Rule{},
		raises:  occurrences{},
		fx:      newEffects(o.Evidence, audit, m, log),
	}, nil
}

// Journal is the engine's journal.
func (e *Engine) Journal() Journal { return e.o.Journal }

// Run restores the live alerts from the journal, then handles submitted
// events and checks deadlines and stale signals until ctx ends. It returns
// nil when ctx ends, an error when the journal cannot be read at startup
// for another reason than being unreachable (see ready).
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	err := e.ready(ctx)
	e.mu.Unlock()
	if err != nil {
		return err
	}
	// The side effects of the changes outlive the event loop by a bounded
	// drain: the loop's last changes (its flush) still get their holds.
	var g errgroup.Group
	loopDone := make(chan struct{})
	g.Go(func() error { return e.fx.run(ctx, loopDone) })
	g.Go(func() error {
		defer close(loopDone)
		return e.loop(ctx)
	})
	return g.Wait()
}

// loop handles submitted events and checks deadlines and stale signals
// until ctx ends, then flushes the queue.
func (e *Engine) loop(ctx context.Context) error {
	timer, stop := e.o.Clock.NewTimer(e.o.TickEvery)
	defer func() { stop() }()
	for {
		select {
		case <-ctx.Done():
			e.flush(ctx)
			return nil
		case q := <-e.queue:
			// A batch taken off the queue is finished even when Run is
			// being stopped meanwhile: its events were already accepted.
			e.commitQueued(context.WithoutCancel(ctx), q, "handle event")
		case <-timer:
			if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("check deadlines", "err", err)
			}
			timer, stop = e.o.Clock.NewTimer(e.o.TickEvery)
		}
	}
}

// flushTimeout bounds how long a stopping engine spends on the events
// still queued.
const flushTimeout = 3 * time.Second

// flush handles the events still queued when Run is stopped: health and
// ONVIF signals were reported and webhook requests are waiting for them, so
// they are not dropped at shutdown; flushing completes those waiters.
func (e *Engine) flush(stopped context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(stopped), flushTimeout)
	defer cancel()
	for ctx.Err() == nil {
		select {
		case q := <-e.queue:
			e.commitQueued(ctx, q, "handle event at shutdown")
		default:
			return
		}
	}
}

// drain returns first and whatever else is queued, up to MaxBatch events.
func (e *Engine) drain(first queued) []queued {
	qs := []queued{first}
	for len(qs) < e.o.MaxBatch {
		select {
		case q := <-e.queue:
			qs = append(qs, q)
		default:
			return qs
		}
	}
	return qs
}

// commitQueued handles first and whatever else is queued as one batch (one
// journal append), then completes the groups of the events in it. An error
// is logged here unless a SubmitAllWait caller is still waiting to be told.
func (e *Engine) commitQueued(ctx context.Context, first queued, what string) {
	qs := e.drain(first)
	evs := make([]Event, len(qs))
	for i, q := range qs {
		evs[i] = q.ev
	}
	e.mu.Lock()
	errs := e.handleBatch(ctx, evs)
	e.mu.Unlock()
	for i, q := range qs {
		if q.group != nil && !q.group.handled(q.index, errs[i]) {
			continue // the waiter gets the error
		}
		if errs[i] != nil {
			e.log.Error(what, "camera", evs[i].Camera, "type", evs[i].Type, "err", errs[i])
		}
	}
}

// queued is one event in Run's queue.
type queued struct {
	ev    Event
	group *group // the SubmitAllWait call it belongs to; nil for Submit, SubmitAll
	index int    // of the event in its group
}

// group is the events of one SubmitAllWait call. They are queued next to
// each other but MaxBatch may split them over two batches; the group is
// done when the last of them is handled.
type group struct {
	done chan struct{} // closed once every event is handled

	mu     sync.Mutex
	errs   []error // one per event, final once done is closed
	left   int     // events not handled yet
	gaveUp bool    // the waiter stopped waiting: Run logs the errors
}

// handled records the outcome of the group's event i and closes done after
// the last one. It reports whether the waiter has given up, so that the
// caller logs err itself.
func (g *group) handled(i int, err error) (gaveUp bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.errs[i] = err
	if g.left--; g.left == 0 {
		close(g.done)
	}
	return g.gaveUp
}

// wait returns the joined errors of the group once it is done, or an error
// wrapping ErrNotDurable and ctx's error when ctx ends first.
func (g *group) wait(ctx context.Context) error {
	select {
	case <-g.done:
		return errors.Join(g.errs...) // done closed after the last write
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.done: // finished as ctx ended: the outcome is known
		return errors.Join(g.errs...)
	default:
	}
	g.gaveUp = true
	return fmt.Errorf("%w: %w", ErrNotDurable, context.Cause(ctx))
}

// Submit queues ev for Run without waiting; when the queue is full it drops
// the event, counts it and returns ErrQueueFull.
func (e *Engine) Submit(ev Event) error {
	return e.enqueue([]Event{ev}, nil)
}

// SubmitAll queues evs for Run without waiting, all or none: when the queue
// has no room for all of them it queues none, counts them all as dropped
// and returns ErrQueueFull, so that a caller (a camera's webhook) can retry
// the whole request without duplicating the part that got in. The events
// are queued next to each other, in order.
func (e *Engine) SubmitAll(evs []Event) error {
	return e.enqueue(evs, nil)
}

// SubmitAllWait queues evs like SubmitAll, all or none, and then waits
// until Run has appended them to the journal (durable), in the same queue
// and batches as every other submitted event. It returns
//
//   - nil once every event is handled and its changes are durable;
//   - an error with CodeBadRequest, nothing queued, when an event is invalid;
//   - ErrQueueFull, nothing queued, when the queue has no room for all;
//   - an error wrapping ErrNotDurable and ctx's error when ctx ends first:
//     the events stay queued and Run will still handle them;
//   - the events' handling errors (journal errors), joined, each naming its
//     camera; the other events of evs were applied.
//
// Run, when stopped, flushes the queue (bounded in time) and so completes
// the waiters of the events it flushes.
func (e *Engine) SubmitAllWait(ctx context.Context, evs []Event) error {
	for i, ev := range evs {
		if err := validEvent(ev); err != nil {
			return fmt.Errorf("event %d of camera %s: %w", i, ev.Camera, err)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	g := &group{done: make(chan struct{}), errs: make([]error, len(evs)), left: len(evs)}
	if err := e.enqueue(evs, g); err != nil {
		return err
	}
	return g.wait(ctx)
}

// enqueue is the one way into Run's queue: all of evs or none, next to each
// other, in order, each carrying g (nil: nobody waits).
func (e *Engine) enqueue(evs []Event, g *group) error {
	e.submitMu.Lock()
	defer e.submitMu.Unlock()
	if cap(e.queue)-len(e.queue) < len(evs) {
		e.m.dropped.Add(float64(len(evs)))
		return ErrQueueFull
	}
	for i, ev := range evs {
		e.queue <- queued{ev: ev, group: g, index: i} // cannot block: room was checked and only Run takes
	}
	return nil
}

// reloadEvery is how often an engine that could not reach its journal's
// live alerts tries to load them again.
const reloadEvery = 2 * time.Second

// ready loads the journal's live alerts unless done; e.mu is held. A
// journal that cannot be reached right now (Redis down when the node
// starts) does not hold events back: they are handled with what the engine
// tracks, and the journal spools the changes until it is back, as it does
// in an outage later on. The load is tried again every reloadEvery; when
// it succeeds, the stored alerts join the tracked ones (restore). Until
// then a signal with an alert already open in the journal raises a second
// alert rather than none.
func (e *Engine) ready(ctx context.Context) error {
	if e.loaded {
		return nil
	}
	now := e.Now()
	if e.unloaded {
		if now.Sub(e.lastLoad) < reloadEvery {
			return nil
		}
		// A journal that knows it cannot reach its backend (the Redis
		// journal while Redis is down or its spool not yet replayed) is not
		// asked: a read would only wait for a timeout with e.mu held.
		if d, ok := e.o.Journal.(interface{ Degraded() bool }); ok && d.Degraded() {
			return nil
		}
	}
	e.lastLoad = now
	err := e.load(ctx)
	if err != nil && ErrorCode(err) == CodeUnavailable {
		if !e.unloaded {
			e.unloaded = true
			e.log.Warn("journal unreachable: handling events without its live alerts until it is back", "err", err)
		}
		return nil
	}
	return err
}

// load restores the tracked alerts from the journal once; e.mu is held:
// the open alerts (a resolved alert never changes again), and the alerts
// raised in the last occurrenceWindow, for previous_id and occurrences_24h.
func (e *Engine) load(ctx context.Context) error {
	if e.loaded {
		return nil
	}
	for _, f := range []Filter{{Open: true}, {Since: e.Now().Add(-occurrenceWindow)}} {
		f.Limit = MaxListLimit
		for {
			as, next, err := e.o.Journal.List(ctx, f)
			if err != nil {
				return fmt.Errorf("alerts engine: restore live alerts: %w", err)
			}
			for i := range as {
				if f.Open {
					e.restore(&as[i])
				} else {
					e.raises.add(&as[i])
				}
			}
			if next == "" {
				break
			}
			f.Cursor = next
		}
	}
	e.loaded = true
	if e.unloaded {
		e.unloaded = false
		e.log.Info("journal reachable: live alerts restored", "tracked", len(e.tracked))
	}
	return nil
}

// restore tracks a stored open alert unless it is tracked already; of two
// alerts of one signal, the newer keeps the signal.
func (e *Engine) restore(a *Alert) {
	if _, ok := e.tracked[a.ID]; ok || !a.Status.Open() {
		return
	}
	_, site, grid, _ := e.o.Cameras(a.Camera)
	rule := RuleFor(e.o.Rules, a.Type, a.Camera, site, grid)
	k := SignalKey{a.Camera, a.Type, a.Key}
	other, taken := e.tracked[e.signals[k]]
	e.tracked[a.ID], e.rules[a.ID] = a, rule
	if !taken || other.RaisedAt.Before(a.RaisedAt) || (other.RaisedAt.Equal(a.RaisedAt) && other.ID < a.ID) {
		e.signals[k] = a.ID
	}
	e.raises.add(a)
	e.m.open.WithLabelValues(string(a.Status)).Inc()
	// Placing a hold is idempotent: one that failed before a restart is
	// placed now.
	e.hold(a, "alert restored")
}

func (e *Engine) track(a *Alert, r Rule) {
	e.tracked[a.ID] = a
	e.rules[a.ID] = r
	e.signals[SignalKey{a.Camera, a.Type, a.Key}] = a.ID
}

func (e *Engine) untrack(a *Alert) {
	delete(e.tracked, a.ID)
	delete(e.rules, a.ID)
	k := SignalKey{a.Camera, a.Type, a.Key}
	if e.signals[k] == a.ID {
		delete(e.signals, k)
	}
}

// retire drops a tracked alert that is resolved: it never changes again
// (docs/api.md "Occurrences", rule 2).
func (e *Engine) retire(a *Alert) bool {
	if a.Status.Open() {
		return false
	}
	e.untrack(a)
	return true
}

// Now is the engine's clock in UTC: the time its deadlines, cooldowns and
// stats are judged by.
func (e *Engine) Now() time.Time { return e.o.Clock.Now().UTC() }

func validEvent(ev Event) error {
	switch {
	case ev.Camera == "" && ev.Source != SourceHealth:
		return errorf(CodeBadRequest, "event without camera", nil)
	case ev.Type == "":
		return errorf(CodeBadRequest, "event without type", nil)
	case ev.State != Active && ev.State != Inactive && ev.State != Pulse:
		return errorf(CodeBadRequest, fmt.Sprintf("event state %q is not active, inactive or pulse", ev.State), nil)
	}
	return nil
}

// Handle runs one event through Run's queue and returns once its change is
// appended (durable): SubmitAllWait of one event. It is the same path every
// submitted event takes; Run must be running.
func (e *Engine) Handle(ctx context.Context, ev Event) error {
	return e.SubmitAllWait(ctx, []Event{ev})
}

// newAlert is the alert an activation raises, received at now. Its
// raised_at is the event's own time when that is plausible (eventTime); its
// deadlines run from now, when the desk could first know of it.
func (e *Engine) newAlert(ev Event, rule Rule, name, site, grid string, now time.Time) *Alert {
	at, detail := e.eventTime(ev, now)
	a := &Alert{
		ID:     ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String(),
		Camera: ev.Camera, CameraName: name, Site: site, Grid: grid,
		Type: ev.Type, Key: ev.Key, Severity: rule.Severity, Source: ev.Source,
		Signal: SignalActive, Status: StatusNew,
		RaisedAt: at, LastSeenAt: now, Count: 1,
		Detail:  detail,
		History: []HistoryEntry{{At: now, By: System, Action: "raised", Version: 1}},
	}
	if ev.State == Pulse {
		a.Signal, a.EndedAt = SignalEnded, &at
	}
	if !ev.FootageFrom.IsZero() && ev.FootageFrom.Before(at) && at.Sub(ev.FootageFrom) <= e.o.MaxEventAge {
		// A health condition that began before it was raised (a camera's
		// last frame, 30 s before camera_offline): its clip shows that.
		a.Clip = &Clip{Start: ev.FootageFrom.Add(-e.o.PreRoll)}
	}
	if rule.AckWithin > 0 {
		t := now.Add(rule.AckWithin)
		a.AckDeadline = &t
	}
	if rule.ResolveWithin > 0 {
		t := now.Add(rule.ResolveWithin)
		a.ResolveDeadline = &t
	}
	e.setClip(a)
	return a
}

var errNoChange = errors.New("no change")

// mutate applies fn to a copy of a and appends it as tmpl's kind, time,
// actor and reason. A version conflict with another writer (a desk action
// through another node) is retried on the current alert; fn decides again
// on it. e.mu is held.
func (e *Engine) mutate(ctx context.Context, a *Alert, tmpl Change, fn func(*Alert) error) (*Alert, error) {
	cur := *a
	for range 3 {
		next := cur
		if err := fn(&next); err != nil {
			return nil, err
		}
		c := tmpl
		c.Alert = next
		c, err := e.o.Journal.Append(ctx, c, cur.Version)
		var ce *ConflictError
		if errors.As(err, &ce) {
			e.refresh(&ce.Current)
			cur = ce.Current
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("alert %s: %s: %w", a.ID, tmpl.Kind, err)
		}
		e.refresh(&c.Alert)
		return &c.Alert, nil
	}
	return nil, fmt.Errorf("alert %s: %s: %w", a.ID, tmpl.Kind, ErrConflict)
}

// refresh stores the newest state of a tracked alert and keeps the open
// gauge in step.
func (e *Engine) refresh(a *Alert) {
	old, ok := e.tracked[a.ID]
	if ok && old.Version >= a.Version {
		return
	}
	if ok && old.Status != a.Status {
		e.m.open.WithLabelValues(string(old.Status)).Dec()
		if a.Status.Open() {
			e.m.open.WithLabelValues(string(a.Status)).Inc()
		}
	}
	if ok {
		fresh := *a
		e.tracked[a.ID] = &fresh
	}
}

// addHistory appends entries to a copy of a's history, each stamped with
// the version the change being made gives the alert (a.Version+1: a
// change is made on a copy of the stored alert), and keeps the history
// within MaxHistory entries and MaxHistoryNotes bytes of notes: the oldest
// entries collapse into one "earlier" entry at the front that counts them.
func (a *Alert) addHistory(entries ...HistoryEntry) {
	h := slices.Clip(a.History)
	for _, x := range entries {
		x.Version = a.Version + 1
		h = append(h, x)
	}
	a.History = boundHistory(h)
}

func boundHistory(h []HistoryEntry) []HistoryEntry {
	notes := 0
	for _, x := range h {
		notes += len(x.Note)
	}
	if len(h) <= MaxHistory && notes <= MaxHistoryNotes {
		return h
	}
	var earlier HistoryEntry
	rest := h
	if rest[0].Action == HistoryEarlier {
		earlier, rest = rest[0], rest[1:]
	} else {
		earlier = HistoryEntry{At: rest[0].At, By: System, Action: HistoryEarlier}
	}
	notes -= len(earlier.Note)
	for len(rest) > 0 && (len(rest)+1 > MaxHistory || notes > MaxHistoryNotes) {
		notes -= len(rest[0].Note)
		earlier.Count++
		rest = rest[1:]
	}
	earlier.Note, earlier.Version = "", 0
	return append([]HistoryEntry{earlier}, rest...)
}

// setClip sets the clip from the alert's times; a clip start set earlier (a
// health alert's footage from before it was raised) is kept.
func (e *Engine) setClip(a *Alert) {
	c := &Clip{Start: a.RaisedAt.Add(-e.o.PreRoll), URL: "/api/v1/alerts/" + a.ID + "/clip"}
	if a.Clip != nil && !a.Clip.Start.IsZero() && a.Clip.Start.Before(c.Start) {
		c.Start = a.Clip.Start
	}
	if a.EndedAt != nil {
		end := a.EndedAt.Add(e.o.PostRoll)
		c.End = &end
	}
	a.Clip = c
}

// hold asks the effects stage to place or update the alert's evidence
// hold; it retries until the hold is placed.
func (e *Engine) hold(a *Alert, reason string) {
	if e.o.Evidence == nil {
		return
	}
	h := HoldRequest{ID: a.ID, Camera: a.Camera, Start: a.RaisedAt.Add(-e.o.PreRoll), Reason: reason}
	if a.Clip != nil && a.Clip.Start.Before(h.Start) {
		h.Start = a.Clip.Start
	}
	if a.EndedAt != nil && a.Signal == SignalEnded {
		h.End = a.EndedAt.Add(e.o.PostRoll)
	}
	if a.ResolvedAt != nil {
		h.Until = a.ResolvedAt.Add(e.o.HoldAfterResolve)
	}
	e.fx.hold(h)
}

// Tick ends stale signals, emits overdue changes for passed deadlines and
// forgets alerts that can no longer change. Run calls it every TickEvery.
// All its changes go to the journal as one batch.
func (e *Engine) Tick(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.ready(ctx); err != nil {
		return err
	}
	now := e.Now()
	ids := make([]string, 0, len(e.tracked))
	for id := range e.tracked {
		ids = append(ids, id)
	}
	slices.Sort(ids) // ULIDs: oldest first, so changes come in a stable order
	p := e.newPlan(now)
	var errs []error
	for i, id := range ids {
		if Stale(e.tracked[id], now, e.o.StaleAfter) {
			if err := p.mutate(i, id, KindEnded, ReasonStale, e.end(now, "stale: no event for "+e.o.StaleAfter.String()), e.holdEnded); err != nil {
				errs = append(errs, err)
			}
		}
		for _, which := range [...]string{"ack", "resolve"} {
			err := p.mutate(i, id, KindOverdue, "", overdue(which, now), func(context.Context, *Alert) {
				e.m.overdue.WithLabelValues(which).Inc()
			})
			if err != nil {
				errs = append(errs, err)
			}
		}
		if r := e.rules[id]; len(r.EscalateTo) > 0 {
			err := p.mutate(i, id, KindEscalated, "", escalate(r, now), func(context.Context, *Alert) {
				e.m.escalated.Inc()
			})
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, p.commit(ctx, len(ids))...)
	if now.Sub(e.lastSweep) >= time.Minute {
		e.raises.sweep(now)
		e.lastSweep = now
	}
	for _, id := range ids {
		if a, ok := e.tracked[id]; ok {
			e.retire(a)
		}
	}
	return errors.Join(errs...)
}

// due reports whether a's deadline has passed without its step done and
// without an overdue change yet.
func due(a *Alert, which string, now time.Time) bool {
	if which == "ack" {
		return a.Status == StatusNew && !a.OverdueAck && a.AckDeadline != nil && !now.Before(*a.AckDeadline)
	}
	return a.Status.Open() && !a.OverdueResolve && a.ResolveDeadline != nil && !now.Before(*a.ResolveDeadline)
}
