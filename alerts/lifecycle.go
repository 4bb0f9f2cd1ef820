package alerts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Ack acknowledges a new alert (受理). version is the version the caller saw:
// a stale one returns a *ConflictError with the current alert.
func (e *Engine) Ack(ctx context.Context, id, by, note string, version int64) (Alert, error) {
	if err := checkNote("note", note); err != nil {
		return Alert{}, err
	}
	return e.act(ctx, id, by, version, true, KindAcknowledged, func(a *Alert, now time.Time) error {
		if a.Status != StatusNew {
			return transitionError(a, "acknowledge")
		}
		e.acknowledge(a, OriginPerson, by, note, now)
		return nil
	})
}

// Dispatch hands an alert to a unit (分流交办). From new it acknowledges
// first; both steps are recorded in the history.
func (e *Engine) Dispatch(ctx context.Context, id, by, unit, note string, version int64) (Alert, error) {
	if _, ok := e.units[unit]; !ok {
		return Alert{}, errorf(CodeBadRequest, fmt.Sprintf("unknown unit %q", unit), nil)
	}
	if err := checkNote("note", note); err != nil {
		return Alert{}, err
	}
	return e.act(ctx, id, by, version, true, KindDispatched, func(a *Alert, now time.Time) error {
		return e.applyDispatch(a, OriginPerson, by, unit, note, now)
	})
}

// Resolve closes an open alert with feedback (办结反馈), which is required,
// for false alarms too. resolved is final: the alert's signal, count and
// clip never change again, so a signal still active ends with the
// resolution, and a later activation raises a new alert.
func (e *Engine) Resolve(ctx context.Context, id, by, feedback string, falseAlarm bool, version int64) (Alert, error) {
	feedback = strings.TrimSpace(feedback)
	if feedback == "" {
		return Alert{}, errorf(CodeFeedbackRequired, "feedback is required to resolve an alert (办结反馈)", nil)
	}
	if err := checkNote("feedback", feedback); err != nil {
		return Alert{}, err
	}
	return e.act(ctx, id, by, version, true, KindResolved, func(a *Alert, now time.Time) error {
		if !a.Status.Open() {
			return transitionError(a, "resolve")
		}
		a.Status, a.ResolvedAt, a.ResolvedBy = StatusResolved, &now, by
		a.Feedback, a.FalseAlarm = feedback, falseAlarm
		if a.Signal == SignalActive {
			a.Signal, a.EndedAt = SignalEnded, &now
			e.setClip(a)
		}
		a.addHistory(HistoryEntry{At: now, By: by, Action: "resolved", Note: feedback})
		return nil
	})
}

// Supervise flags an open alert as supervised (挂牌督办) until due, or,
// with clear, takes the flag off (a resolved alert's too). Both are
// changes of kind supervised and lines in the history.
func (e *Engine) Supervise(ctx context.Context, id, by string, due time.Time, note string, clear bool, version int64) (Alert, error) {
	if err := checkNote("note", note); err != nil {
		return Alert{}, err
	}
	if !clear && due.IsZero() {
		return Alert{}, errorf(CodeBadRequest, "due is required to supervise an alert (挂牌督办)", nil)
	}
	return e.act(ctx, id, by, version, true, KindSupervised, func(a *Alert, now time.Time) error {
		if clear {
			if a.Supervision == nil {
				return errorf(CodeInvalidTransition, fmt.Sprintf("alert %s is not supervised", a.ID), nil)
			}
			a.Supervision = nil
			a.addHistory(HistoryEntry{At: now, By: by, Action: "supervision_cleared", Note: note})
			return nil
		}
		if !a.Status.Open() {
			return transitionError(a, "supervise")
		}
		if !due.After(now) {
			return errorf(CodeBadRequest, "due must be in the future", nil)
		}
		a.Supervision = &Supervision{At: now, By: by, Due: due.UTC(), Note: note}
		a.addHistory(HistoryEntry{At: now, By: by, Action: "supervised", Note: "限期 " + due.UTC().Format(time.RFC3339) + noteSuffix(note)})
		return nil
	})
}

func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return ": " + note
}

// checkNote bounds a note, feedback or follow-up text to MaxNoteBytes.
func checkNote(what, s string) error {
	if len(s) > MaxNoteBytes {
		return errorf(CodeTooLarge, fmt.Sprintf("%s longer than %d bytes", what, MaxNoteBytes), nil)
	}
	return nil
}

// FollowUp records the visit after resolution (回访); only resolved alerts
// take one. follow_up is the latest; follow_ups keeps the last
// MaxFollowUps, and the history a line for each with its verdict (the note
// is kept once, in follow_ups). It carries no version: it never races with
// handling.
func (e *Engine) FollowUp(ctx context.Context, id, by string, satisfied bool, note string) (Alert, error) {
	if err := checkNote("note", note); err != nil {
		return Alert{}, err
	}
	return e.act(ctx, id, by, 0, false, KindUpdated, func(a *Alert, now time.Time) error {
		if a.Status != StatusResolved {
			return transitionError(a, "follow up")
		}
		f := FollowUp{At: now, By: by, Satisfied: satisfied, Note: note}
		a.FollowUp = &f
		fs := append(slices.Clip(a.FollowUps), f)
		if len(fs) > MaxFollowUps {
			fs = fs[len(fs)-MaxFollowUps:]
		}
		a.FollowUps = fs
		verdict := "unsatisfied"
		if satisfied {
			verdict = "satisfied"
		}
		a.addHistory(HistoryEntry{At: now, By: by, Action: "follow_up", Note: verdict})
		return nil
	})
}

func transitionError(a *Alert, what string) error {
	return errorf(CodeInvalidTransition, fmt.Sprintf("alert %s is %s: cannot %s", a.ID, a.Status, what), nil)
}

// acknowledge acknowledges a by a change of origin o, made by by.
func (e *Engine) acknowledge(a *Alert, o Origin, by, note string, now time.Time) {
	a.Status, a.AcknowledgedAt, a.AcknowledgedBy, a.AckOrigin = StatusAcknowledged, &now, by, o
	a.addHistory(HistoryEntry{At: now, By: by, Action: "acknowledged", Note: note})
}

// observeAck records the acknowledgement time once a desk action that
// acknowledged the alert is appended. Only desk actions (act) call it:
// acknowledgements by the system (a rule's auto-dispatch) are not the
// desk's work and are left out, as in Stats.
func (e *Engine) observeAck(before, after *Alert) {
	if before.AcknowledgedAt == nil && after.AcknowledgedAt != nil {
		e.m.ackSeconds.Observe(after.AcknowledgedAt.Sub(after.RaisedAt).Seconds())
	}
}

// applyDispatch dispatches a to unit by a change of origin o, made by by;
// a new alert is acknowledged by the same change.
func (e *Engine) applyDispatch(a *Alert, o Origin, by, unit, note string, now time.Time) error {
	switch a.Status {
	case StatusNew:
		e.acknowledge(a, o, by, "", now)
	case StatusAcknowledged:
	default:
		return transitionError(a, "dispatch")
	}
	a.Status, a.Unit, a.DispatchedAt = StatusDispatched, unit, &now
	a.addHistory(HistoryEntry{At: now, By: by, Action: "dispatched", Note: unitNote(e.units[unit], note)})
	return nil
}

func unitNote(u Unit, note string) string {
	s := "→ " + u.ID
	if u.Name != "" {
		s += " (" + u.Name + ")"
	}
	if note != "" {
		s += ": " + note
	}
	return s
}

// act is one desk action: read the current alert, check the caller's
// version, apply fn and append. The journal's version check orders it
// against the event loop's changes, so the engine's lock is held only to
// load and to take the stored result in, never across the journal's I/O.
// Errors are *Error or *ConflictError.
func (e *Engine) act(ctx context.Context, id, by string, version int64, checkVersion bool, kind ChangeKind, fn func(*Alert, time.Time) error) (Alert, error) {
	if by == "" {
		return Alert{}, errorf(CodeBadRequest, "actor is required", nil)
	}
	if strings.EqualFold(strings.TrimSpace(by), System) {
		// A person acting under the system's name would read as the
		// service in the history, the stats and the desk.
		return Alert{}, errorf(CodeBadRequest, fmt.Sprintf("actor name %q is reserved for the changes the service makes itself", by), nil)
	}
	if checkVersion && version <= 0 {
		return Alert{}, errorf(CodeBadRequest, "version is required", nil)
	}
	e.mu.Lock()
	err := e.load(ctx)
	e.mu.Unlock()
	if err != nil {
		return Alert{}, err
	}
	a, err := e.o.Journal.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Alert{}, errorf(CodeNotFound, fmt.Sprintf("alert %s not found", id), err)
	}
	if err != nil {
		return Alert{}, fmt.Errorf("alert %s: %w", id, err)
	}
	if checkVersion && a.Version != version {
		return Alert{}, &ConflictError{Current: a}
	}
	now := e.Now()
	next := a
	if err := fn(&next, now); err != nil {
		return Alert{}, err
	}
	ch := Change{Kind: kind, At: now, By: by, Origin: OriginPerson, Alert: next}
	if kind == KindUpdated {
		ch.Reason = ReasonFollowUp
	}
	c, err := e.o.Journal.Append(ctx, ch, a.Version)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) {
			e.refresh(&ce.Current)
			return Alert{}, err
		}
		return Alert{}, fmt.Errorf("alert %s: %s: %w", id, kind, err)
	}
	e.refresh(&c.Alert)
	e.observeAck(&a, &c.Alert)
	if kind == KindResolved {
		e.hold(&c.Alert, "alert resolved")
		if t, ok := e.tracked[id]; ok {
			e.retire(t)
		}
	}
	e.audit(c)
	return c.Alert, nil
}

// audit records a desk action in the journal's audit log when it keeps one,
// through the effects stage (retried until done); the action stands.
func (e *Engine) audit(c Change) {
	action := string(c.Kind)
	if c.Kind == KindUpdated {
		action = "follow_up"
	}
	r := AuditRecord{At: c.At, By: c.By, Action: action, Object: c.Alert.ID}
	if c.Alert.Unit != "" {
		r.Detail = map[string]string{"unit": c.Alert.Unit}
	}
	e.fx.record(r)
}

// AttachSnapshot records the stored picture of an alert: an updated change
// with reason snapshot, by the system. A resolved alert is left as it is
// (resolved is final); so is an alert that has its snapshot already.
func (e *Engine) AttachSnapshot(ctx context.Context, id string, s Snapshot) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.load(ctx); err != nil {
		return err
	}
	a, ok := e.tracked[id]
	if !ok {
		stored, err := e.o.Journal.Get(ctx, id)
		if err != nil {
			return fmt.Errorf("alert %s: snapshot: %w", id, err)
		}
		a = &stored
	}
	_, err := e.mutate(ctx, a, Change{Kind: KindUpdated, At: e.Now(), By: System, Origin: OriginSystem, Reason: ReasonSnapshot}, func(a *Alert) error {
		if !a.Status.Open() || a.Snapshot != nil {
			return errNoChange
		}
		a.Snapshot = &s
		return nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}
