package recorder

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// manualHoldPrefix starts the ID of every manual hold. Alert holds are
// named after their alert (a bare ULID), so the two ID spaces never meet.
const manualHoldPrefix = "m-"

// Limits of a manual hold.
const (
	// DefaultMaxHoldRange is the longest range one manual hold may keep.
	DefaultMaxHoldRange = 31 * 24 * time.Hour
	maxHoldCase         = 64
	maxHoldReason       = 1000
)

// Errors of manual holds. A *RequestError carries bad input.
var (
	// ErrHoldNotFound: no hold in force has the ID.
	ErrHoldNotFound = errHoldNotFound
	// ErrAlertHold: the hold belongs to an alert; it ends with the alert
	// (hold_after_resolve after its resolution), never by hand.
	ErrAlertHold = errors.New("the hold belongs to an alert")
)

var errHoldNotFound = errors.New("no such hold")

// IsManualHoldID reports whether id names a manual hold.
func IsManualHoldID(id string) bool {
	if !strings.HasPrefix(id, manualHoldPrefix) {
		return false
	}
	_, err := ulid.ParseStrict(id[len(manualHoldPrefix):])
	return err == nil
}

// ManualHold is what an investigator asks to keep: a camera's footage in
// [Start, End], for a case.
type ManualHold struct {
	Camera string
	Start  time.Time
	End    time.Time
	Case   string
	Reason string
	By     string // who places it
}

// check validates m against the limits; maxRange 0 is DefaultMaxHoldRange.
func (m *ManualHold) check(maxRange time.Duration) error {
	if maxRange <= 0 {
		maxRange = DefaultMaxHoldRange
	}
	m.Case, m.Reason = strings.TrimSpace(m.Case), strings.TrimSpace(m.Reason)
	switch {
	case !ValidCameraID(m.Camera):
		return badRequest("bad_camera_id", "camera %q: not a camera id", truncate(m.Camera))
	case m.Start.IsZero() || m.End.IsZero():
		return badRequest("bad_range", "start and end are required (RFC 3339)")
	case m.Start.Before(minRangeTime) || m.End.After(maxRangeTime):
		return badRequest("bad_time", "the range must lie within 1970-01-01 – 9999-12-31")
	case !m.End.After(m.Start):
		return badRequest("bad_range", "end %s is not after start %s", formatTime(m.End), formatTime(m.Start))
	case m.End.Sub(m.Start) > maxRange:
		return badRequest("range_too_long", "range of %v exceeds the limit of %v for one hold", m.End.Sub(m.Start), maxRange)
	case m.Case == "":
		return badRequest("missing_case", "case is required: the case number the footage is kept for")
	case m.Reason == "":
		return badRequest("missing_reason", "reason is required: why the footage is kept")
	case !plainText(m.Case, maxHoldCase, false):
		return badRequest("bad_case", "case must be at most %d characters of text on one line", maxHoldCase)
	case !plainText(m.Reason, maxHoldReason, true):
		return badRequest("bad_reason", "reason must be at most %d characters of text", maxHoldReason)
	}
	return nil
}

// plainText reports whether s is valid UTF-8 of at most max characters
// without control characters (newlines and tabs too when multiline).
func plainText(s string, max int, multiline bool) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return false
		}
	}
	return true
}

// PlaceManualHold validates m, gives it a new manual hold ID and places
// it until it is released (ReleaseManualHold). maxRange bounds its range
// (0: DefaultMaxHoldRange); bad input is a *RequestError. Unlike an
// alert's hold, a manual hold that cannot be written (a full disk) is not
// kept pending: the error is returned and nothing is held, so the caller
// can say so and the investigator retry.
func (r *Recorder) PlaceManualHold(ctx context.Context, m ManualHold, maxRange time.Duration) (Hold, error) {
	if err := ctx.Err(); err != nil {
		return Hold{}, err
	}
	if err := m.check(maxRange); err != nil {
		return Hold{}, err
	}
	now := r.now()
	id, err := ulid.New(ulid.Timestamp(now), rand.Reader)
	if err != nil {
		return Hold{}, fmt.Errorf("manual hold: %w", err)
	}
	h := Hold{
		ID: manualHoldPrefix + id.String(), Camera: m.Camera,
		Start: m.Start.UTC(), End: m.End.UTC(),
		Case: m.Case, Reason: m.Reason, By: m.By, CreatedAt: now.UTC(),
	}
	r.holdMu.Lock()
	defer r.holdMu.Unlock()
	if err := r.holds.put(h); err != nil {
		return Hold{}, fmt.Errorf("manual hold %s: %w", h.ID, err)
	}
	return h, nil
}

// ReleaseManualHold removes the manual hold id and returns it. It fails
// with ErrHoldNotFound when no hold in force has the ID, and with
// ErrAlertHold, removing nothing, when the hold is an alert's.
func (r *Recorder) ReleaseManualHold(ctx context.Context, id string) (Hold, error) {
	if err := ctx.Err(); err != nil {
		return Hold{}, err
	}
	h, err := r.holds.removeIf(id, func(h Hold) error {
		if !IsManualHoldID(h.ID) {
			return ErrAlertHold
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrHoldNotFound) && !errors.Is(err, ErrAlertHold) {
		return h, fmt.Errorf("manual hold %s: %w", id, err)
	}
	return h, err
}

// HoldsIn returns the holds in force, written or pending, that keep some
// of camera's footage in [start, end) (camera "": any camera; zero times:
// unbounded), by start then ID.
func (r *Recorder) HoldsIn(camera string, start, end time.Time) []Hold {
	written, _ := r.holds.active() // never fails
	now := r.now()
	byID := make(map[string]Hold, len(written))
	for _, h := range written {
		byID[h.ID] = h
	}
	for _, h := range r.pending() { // newer than its written version
		if !h.expired(now) {
			byID[h.ID] = h
		}
	}
	out := make([]Hold, 0, len(byID))
	for _, h := range byID {
		if camera != "" && h.Camera != "" && h.Camera != camera {
			continue
		}
		if !end.IsZero() && !h.Start.Before(end) {
			continue
		}
		if !start.IsZero() && !h.End.IsZero() && !h.End.After(start) {
			continue
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Hold) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// HasRecordings reports whether camera has a folder of recordings: the
// footage of a camera removed from the registry may still be held.
func (r *Recorder) HasRecordings(camera string) bool {
	if !ValidCameraID(camera) {
		return false
	}
	st, err := os.Stat(filepath.Join(r.opts.Dir, camera))
	return err == nil && st.IsDir()
}
