package alerts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Group commit. The engine plans the changes of many events (or of one
// Tick) against its in-memory state, appends them with one AppendBatch (one
// journal transaction, one fsync), and only then applies the stored changes
// to its state, in seq order. Planning sees the changes planned before it in
// the batch, so two events of one signal in a batch chain exactly as if they
// were handled one after the other. A change that lost a version race with
// another writer is made again on the current alert, as mutate does.

// DefaultMaxBatch bounds the events of one group commit when
// Options.MaxBatch is 0.
const DefaultMaxBatch = 256

// op is one change planned in a batch.
type op struct {
	cause int // index of the event (or, in Tick, the alert) the change comes from
	id    string
	kind  ChangeKind
	// fn makes the change on a copy of the alert; after a version conflict
	// it runs again on the current alert. nil for a raise.
	fn   func(*Alert) error
	rule Rule // of a raise, tracked for its cooldown
	// done runs once the change is stored, with the stored alert.
	done func(ctx context.Context, a *Alert)
	item BatchItem
}

// plan collects the changes of one batch; e.mu is held while it lives.
type plan struct {
	e       *Engine
	now     time.Time
	ops     []op
	pending map[string]*Alert    // the planned state of each alert the batch changes
	signals map[SignalKey]string // signals whose alert the batch raises
}

func (e *Engine) newPlan(now time.Time) *plan {
	return &plan{e: e, now: now, pending: map[string]*Alert{}, signals: map[SignalKey]string{}}
}

// current is the alert as the batch has left it so far.
func (p *plan) current(id string) *Alert {
	if a, ok := p.pending[id]; ok {
		return a
	}
	return p.e.tracked[id]
}

// prev is the alert dedupe compares an event of key with: the one the batch
// raised or changed, else the tracked one unless it can be retired.
func (p *plan) prev(key SignalKey) *Alert {
	if id, ok := p.signals[key]; ok {
		return p.pending[id]
	}
	id, ok := p.e.signals[key]
	if !ok {
		return nil
	}
	if a, ok := p.pending[id]; ok {
		return a
	}
	a := p.e.tracked[id]
	if p.e.retire(a) {
		return nil
	}
	return a
}

func (p *plan) raise(cause int, a *Alert, rule Rule, done func(context.Context, *Alert)) {
	p.ops = append(p.ops, op{
		cause: cause, id: a.ID, kind: KindRaised, rule: rule, done: done,
		item: BatchItem{Change: Change{Kind: KindRaised, At: p.now, By: System, Origin: OriginSystem, Alert: *a}},
	})
	next := *a
	next.Version = 1
	p.pending[a.ID] = &next
	p.signals[SignalKey{a.Camera, a.Type, a.Key}] = a.ID
}

// mutate plans fn on the alert as the batch has left it; fn returning
// errNoChange plans nothing. A plan holds only the changes the engine makes
// by itself (signals, ticks, auto-dispatch): they are the system's.
func (p *plan) mutate(cause int, id string, kind ChangeKind, reason Reason, fn func(*Alert) error, done func(context.Context, *Alert)) error {
	cur := p.current(id)
	next := *cur
	if err := fn(&next); err != nil {
		if errors.Is(err, errNoChange) {
			return nil
		}
		return err
	}
	p.ops = append(p.ops, op{
		cause: cause, id: id, kind: kind, fn: fn, done: done,
		item: BatchItem{Change: Change{Kind: kind, At: p.now, By: System, Origin: OriginSystem, Reason: reason, Alert: next}, ExpectVersion: cur.Version},
	})
	next.Version = cur.Version + 1
	p.pending[id] = &next
	return nil
}

// commit appends the planned changes and applies the stored ones to the
// engine in seq order. It returns one error per cause (causes of them).
func (p *plan) commit(ctx context.Context, causes int) []error {
	errs := make([]error, causes)
	if len(p.ops) == 0 {
		return errs
	}
	e := p.e
	items := make([]BatchItem, len(p.ops))
	for k, o := range p.ops {
		items[k] = o.item
	}
	cs, aerrs := appendBatch(ctx, e.o.Journal, items)
	for k, o := range p.ops {
		var a *Alert
		err := aerrs[k]
		switch {
		case err == nil && o.fn == nil:
			stored := cs[k].Alert
			a = &stored
			e.track(a, o.rule)
		case err == nil:
			a = &cs[k].Alert
			e.refresh(a)
		case errs[o.cause] != nil:
			continue // an earlier change of this cause failed; this one was not stored either
		case o.fn != nil && retryable(err) && e.tracked[o.id] != nil:
			var ce *ConflictError
			if errors.As(err, &ce) {
				e.refresh(&ce.Current)
			}
			a, err = e.mutate(ctx, e.tracked[o.id], o.item.Change, o.fn)
			if errors.Is(err, errNoChange) {
				continue
			}
		}
		if err != nil {
			if errs[o.cause] == nil {
				errs[o.cause] = opError(o, err)
			}
			continue
		}
		if o.done != nil {
			o.done(ctx, a)
		}
	}
	return errs
}

func opError(o op, err error) error {
	if o.fn == nil {
		a := o.item.Change.Alert
		return fmt.Errorf("camera %s: raise %s: %w", a.Camera, a.Type, err)
	}
	if errors.Is(err, errSkipped) || errors.As(err, new(*ConflictError)) || errors.Is(err, ErrNotFound) {
		return fmt.Errorf("alert %s: %s: %w", o.id, o.kind, err)
	}
	return err // mutate already said which alert
}

// errSkipped: appendBatch without a BatchAppender did not try a change
// because an earlier change of the same alert in the batch failed.
var errSkipped = errors.New("an earlier change of the alert in the batch failed")

func retryable(err error) bool {
	var ce *ConflictError
	return errors.As(err, &ce) || errors.Is(err, errSkipped)
}

// appendBatch appends items with one AppendBatch when the journal offers it,
// else one Append at a time with the same rule for the changes after a
// failed one.
func appendBatch(ctx context.Context, j Journal, items []BatchItem) ([]Change, []error) {
	if b, ok := j.(BatchAppender); ok {
		return b.AppendBatch(ctx, items)
	}
	cs := make([]Change, len(items))
	errs := make([]error, len(items))
	failed := map[string]bool{}
	for i, it := range items {
		id := it.Change.Alert.ID
		if failed[id] {
			errs[i] = errSkipped
			continue
		}
		cs[i], errs[i] = j.Append(ctx, it.Change, it.ExpectVersion)
		failed[id] = errs[i] != nil
	}
	return cs, errs
}

// handleBatch runs events through rules and dedupe and appends their changes
// as one batch; e.mu is held. It returns one error per event.
func (e *Engine) handleBatch(ctx context.Context, evs []Event) []error {
	errs := make([]error, len(evs))
	if err := e.ready(ctx); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	e.adopt(ctx, evs)
	p := e.newPlan(e.Now())
	for i, ev := range evs {
		errs[i] = e.planEvent(p, i, ev)
	}
	for i, err := range p.commit(ctx, len(evs)) {
		if errs[i] == nil {
			errs[i] = err
		}
	}
	return errs
}

// planEvent plans what one event does: raise (and auto-dispatch), bump,
// reopen, confirm or end.
func (e *Engine) planEvent(p *plan, i int, ev Event) error {
	if err := validEvent(ev); err != nil {
		return err
	}
	name, site, grid, known := e.o.Cameras(ev.Camera)
	if !known {
		name = ev.Camera
	}
	rule := RuleFor(e.o.Rules, ev.Type, ev.Camera, site, grid)
	now := p.now
	prev := p.prev(SignalKey{ev.Camera, ev.Type, ev.Key})
	d := Dedupe(prev, ev, rule, now)
	e.log.Debug("event", "camera", ev.Camera, "type", ev.Type, "key", ev.Key, "state", ev.State, "action", d.Action, "reason", d.Reason)
	switch d.Action {
	case ActionRaise:
		a := e.newAlert(ev, rule, name, site, grid, now)
		k := SignalKey{ev.Camera, ev.Type, ev.Key}
		// The raises of this batch are not in e.raises yet: they chain
		// through the plan.
		if id, ok := p.signals[k]; ok {
			prevRaised := p.pending[id]
			a.PreviousID, a.Occurrences24h = id, prevRaised.Occurrences24h+1
		} else {
			a.PreviousID, a.Occurrences24h = e.raises.previous(k, a.RaisedAt)
			a.Occurrences24h++
		}
		if a.PreviousID == "" && prev != nil {
			a.PreviousID = prev.ID // an open alert raised longer ago than the window
		}
		p.raise(i, a, rule, func(ctx context.Context, a *Alert) {
			if e.o.OnRaised != nil {
				e.o.OnRaised(*a)
			}
			e.raises.add(a)
			e.m.raised.WithLabelValues(string(a.Type), string(a.Severity), a.Site).Inc()
			e.m.open.WithLabelValues(string(StatusNew)).Inc()
			e.hold(a, "alert raised")
		})
		if rule.DispatchTo == "" {
			return nil
		}
		// Not observed in alert_ack_seconds: the desk did not acknowledge it.
		return p.mutate(i, a.ID, KindDispatched, "", func(a *Alert) error {
			return e.applyDispatch(a, OriginSystem, System, rule.DispatchTo, NoteAutoDispatch, now)
		}, nil)
	case ActionBump:
		return p.mutate(i, prev.ID, KindUpdated, ReasonRepeat, func(a *Alert) error {
			if !a.Status.Open() || a.Signal != SignalActive {
				return errNoChange // resolved meanwhile (another node): it never changes again
			}
			a.Count++
			a.LastSeenAt = now
			if ev.State == Pulse {
				end := e.endTime(a, ev, now)
				a.Signal, a.EndedAt = SignalEnded, &end
				e.setClip(a)
			}
			return nil
		}, func(ctx context.Context, a *Alert) {
			if ev.State == Pulse {
				e.hold(a, "signal repeated")
			}
		})
	case ActionReopen:
		return p.mutate(i, prev.ID, KindReopened, "", func(a *Alert) error {
			if !a.Status.Open() || a.Signal != SignalEnded {
				return errNoChange
			}
			a.Count++
			a.LastSeenAt = now
			if ev.State == Pulse {
				end := e.endTime(a, ev, now)
				a.Signal, a.EndedAt = SignalEnded, &end
			} else {
				a.Signal, a.EndedAt = SignalActive, nil
			}
			e.setClip(a)
			a.addHistory(HistoryEntry{At: now, By: System, Action: string(KindReopened)})
			return nil
		}, func(ctx context.Context, a *Alert) { e.hold(a, "signal reopened") })
	case ActionConfirm:
		return p.mutate(i, prev.ID, KindUpdated, ReasonSync, func(a *Alert) error {
			if !a.Status.Open() || a.Signal != SignalActive || !a.LastSeenAt.Before(now) {
				return errNoChange
			}
			a.LastSeenAt = now
			return nil
		}, nil)
	case ActionEnd:
		return p.mutate(i, prev.ID, KindEnded, ReasonEnded, func(a *Alert) error {
			return e.end(e.endTime(a, ev, now), d.Reason)(a)
		}, e.holdEnded)
	}
	return nil
}

// NoteAutoDispatch is the history note of a dispatch the rule made.
const NoteAutoDispatch = "auto-dispatch by rule"

// end is the change that ends an open alert's active signal at now.
func (e *Engine) end(now time.Time, reason string) func(*Alert) error {
	return func(a *Alert) error {
		if a.Signal != SignalActive || !a.Status.Open() {
			return errNoChange
		}
		a.Signal, a.EndedAt = SignalEnded, &now
		e.setClip(a)
		a.addHistory(HistoryEntry{At: now, By: System, Action: "ended", Note: reason})
		return nil
	}
}

func (e *Engine) holdEnded(ctx context.Context, a *Alert) { e.hold(a, "signal ended") }

// MaxEscalations bounds the escalations of one alert: the first when it
// becomes overdue (督办) and one more after the rule's escalate_after
// (再次督办).
const MaxEscalations = 2

// EscalateAfter is the pause between a rule's escalations: its
// EscalateAfter, else the resolve time limit again, else the
// acknowledgement time limit.
func (r Rule) escalateAfter() time.Duration {
	switch {
	case r.EscalateAfter > 0:
		return r.EscalateAfter
	case r.ResolveWithin > 0:
		return r.ResolveWithin
	}
	return r.AckWithin
}

// escalate is the change that escalates an open overdue alert to the
// rule's escalate_to receivers: once when it is overdue, and once more
// escalateAfter later if it still is.
func escalate(r Rule, now time.Time) func(*Alert) error {
	return func(a *Alert) error {
		n := len(a.Escalations)
		if !a.Status.Open() || !a.Overdue || n >= MaxEscalations {
			return errNoChange
		}
		if n > 0 && now.Before(a.Escalations[n-1].At.Add(r.escalateAfter())) {
			return errNoChange
		}
		to := slices.Clone(r.EscalateTo)
		a.Escalations = append(slices.Clip(a.Escalations), Escalation{At: now, To: to})
		note := "督办 → " + strings.Join(to, ", ")
		if n > 0 {
			note = "再次督办 → " + strings.Join(to, ", ")
		}
		a.addHistory(HistoryEntry{At: now, By: System, Action: string(KindEscalated), Note: note})
		return nil
	}
}

// overdue is the change that records a passed deadline (督办).
func overdue(which string, now time.Time) func(*Alert) error {
	return func(a *Alert) error {
		if !due(a, which, now) {
			return errNoChange
		}
		a.Overdue = true
		if which == "ack" {
			a.OverdueAck = true
		} else {
			a.OverdueResolve = true
		}
		a.addHistory(HistoryEntry{At: now, By: System, Action: "overdue", Note: which})
		return nil
	}
}

// adopt brings the alerts of the signals of evs that ask for it (Adopt,
// on health events) in line with the journal: another engine may have
// raised them (the camera's previous holder), or changed the ones this
// engine tracks since (ended them when the camera came back there). Open
// alerts it does not track are tracked; tracked ones take the stored
// state. One read serves the whole batch: a node taking many cameras at
// once reads the journal a few times, not once per camera. A journal that
// cannot be read leaves the events to be handled with what the engine
// tracks. e.mu is held.
func (e *Engine) adopt(ctx context.Context, evs []Event) {
	want := map[SignalKey]bool{}
	var camera string
	for _, ev := range evs {
		if ev.Adopt && ev.Source == SourceHealth {
			want[SignalKey{ev.Camera, ev.Type, ev.Key}] = true
			camera = ev.Camera
		}
	}
	if len(want) == 0 {
		return
	}
	if d, ok := e.o.Journal.(interface{ Degraded() bool }); ok && d.Degraded() {
		return // Redis away: a read would only wait for its timeout
	}
	// The batch's context outlives Run's (its events were accepted): each
	// read is bounded on its own.
	read := func(fn func(context.Context) error) error {
		rctx, cancel := context.WithTimeout(ctx, adoptTimeout)
		defer cancel()
		return fn(rctx)
	}
	seen := map[string]bool{}
	f := Filter{Open: true, Limit: MaxListLimit}
	if len(want) == 1 {
		f.Camera = camera
	}
	for {
		var as []Alert
		var next string
		err := read(func(ctx context.Context) (err error) {
			as, next, err = e.o.Journal.List(ctx, f)
			return err
		})
		if err != nil {
			e.log.Warn("looking for health alerts raised or changed by another node", "err", err)
			return
		}
		for i := range as {
			a := &as[i]
			if !want[SignalKey{a.Camera, a.Type, a.Key}] {
				continue
			}
			seen[a.ID] = true
			if _, tracked := e.tracked[a.ID]; tracked {
				e.refresh(a)
				continue
			}
			e.log.Info("alert raised by another node adopted", "camera", a.Camera, "type", a.Type, "alert", a.ID)
			e.restore(a)
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	// A tracked alert that is no longer open was resolved elsewhere:
	// take that in, so that the next activation raises a new alert.
	for k := range want {
		id, ok := e.signals[k]
		if !ok || seen[id] {
			continue
		}
		var a Alert
		err := read(func(ctx context.Context) (err error) {
			a, err = e.o.Journal.Get(ctx, id)
			return err
		})
		if err == nil {
			e.refresh(&a)
		}
	}
}

// adoptTimeout bounds each journal read of adopt.
const adoptTimeout = 2 * time.Second
