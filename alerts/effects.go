package alerts

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"vigil/internal/backoff"
)

// The side effects of stored changes — evidence holds and audit records —
// are carried out by one goroutine after the changes are durable, outside
// the engine's lock, and retried with backoff until done: a slow disk or
// Redis does not stall event intake, and a hold that failed once is placed
// later instead of letting retention delete the footage of an alert.

// effectsDrain bounds how long a stopping engine keeps trying its pending
// side effects after its last change.
const effectsDrain = 3 * time.Second

// effectsRetry is the pause between attempts of a failing side effect.
var effectsRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2}

// effects queues side effects for run. Holds are keyed by alert: a newer
// request for an alert replaces a pending one (PlaceHold replaces by ID).
type effects struct {
	evidence Evidence // nil: no holds
	audit    AuditLog // nil: no audit
	m        *metrics
	log      *slog.Logger

	mu     sync.Mutex
	holds  map[string]HoldRequest
	order  []string // alert IDs of holds, oldest request first
	audits []AuditRecord
	wake   chan struct{} // capacity 1
}

func newEffects(ev Evidence, al AuditLog, m *metrics, log *slog.Logger) *effects {
	return &effects{evidence: ev, audit: al, m: m, log: log, holds: map[string]HoldRequest{}, wake: make(chan struct{}, 1)}
}

func (f *effects) hold(h HoldRequest) {
	if f.evidence == nil {
		return
	}
	f.mu.Lock()
	if _, ok := f.holds[h.ID]; !ok {
		f.order = append(f.order, h.ID)
	}
	f.holds[h.ID] = h
	f.pendingLocked()
	f.mu.Unlock()
	f.poke()
}

func (f *effects) record(r AuditRecord) {
	if f.audit == nil {
		return
	}
	f.mu.Lock()
	f.audits = append(f.audits, r)
	f.pendingLocked()
	f.mu.Unlock()
	f.poke()
}

func (f *effects) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *effects) pendingLocked() {
	f.m.effectsPending.Set(float64(len(f.holds) + len(f.audits)))
}

// next takes the oldest pending effect: a hold first, then an audit
// record. ok is false when nothing is pending.
func (f *effects) next() (h *HoldRequest, r *AuditRecord, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.order) > 0 {
		id := f.order[0]
		f.order = f.order[1:]
		x := f.holds[id]
		delete(f.holds, id)
		return &x, nil, true
	}
	if len(f.audits) > 0 {
		x := f.audits[0]
		f.audits = f.audits[1:]
		return nil, &x, true
	}
	return nil, nil, false
}

// retry puts back an effect that failed, unless a newer hold of the same
// alert arrived meanwhile.
func (f *effects) retry(h *HoldRequest, r *AuditRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h != nil {
		if _, newer := f.holds[h.ID]; !newer {
			f.holds[h.ID] = *h
			f.order = append([]string{h.ID}, f.order...)
		}
	}
	if r != nil {
		f.audits = append([]AuditRecord{*r}, f.audits...)
	}
	f.pendingLocked()
}

func (f *effects) done() {
	f.mu.Lock()
	f.pendingLocked()
	f.mu.Unlock()
}

// run carries out side effects until loopDone is closed (the engine's event
// loop ended, after its flush), then drains what is pending for at most
// effectsDrain. It always returns nil.
func (f *effects) run(ctx context.Context, loopDone <-chan struct{}) error {
	bo := backoff.New(effectsRetry)
	work := context.WithoutCancel(ctx)
	var drainEnd <-chan time.Time
	stopping := func() {
		loopDone = nil // seen: a closed channel would be ready forever
		drainEnd = time.After(effectsDrain)
	}
	for {
		h, r, ok := f.next()
		if !ok {
			if drainEnd != nil {
				return nil
			}
			select {
			case <-f.wake:
				continue
			case <-loopDone:
				stopping()
				continue
			}
		}
		err := f.apply(work, h, r)
		if err == nil {
			f.done()
			bo.Reset()
			continue
		}
		f.retry(h, r)
		which := "audit"
		if h != nil {
			which = "hold"
		}
		f.m.effectFailures.WithLabelValues(which).Inc()
		f.log.Error("alert side effect failed; retrying", "effect", which, "err", err)
		pause := time.After(bo.Pause())
		select {
		case <-pause:
		case <-drainEnd:
			f.log.Error("engine stopped with side effects pending; open alerts' holds are placed again at the next start")
			return nil
		case <-loopDone:
			stopping()
		}
	}
}

func (f *effects) apply(ctx context.Context, h *HoldRequest, r *AuditRecord) error {
	if h != nil {
		return f.evidence.PlaceHold(ctx, *h)
	}
	return f.audit.Audit(ctx, *r)
}
