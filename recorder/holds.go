package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

const holdsFile = "holds.json"

// Hold keeps a camera's recordings in [Start, End] from retention: an
// alert's clip range, kept as evidence. A zero End is open-ended (the alert
// is still active); a zero Until keeps the hold until it is released or
// updated; once Until has passed the hold drops.
type Hold struct {
	ID     string    `json:"id"`
	Camera string    `json:"camera"` // "" holds every camera
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"`
	Reason string    `json:"reason,omitempty"`
	Until  time.Time `json:"until,omitzero"`
}

func (h Hold) covers(s Segment) bool {
	if h.Camera != "" && h.Camera != s.Camera {
		return false
	}
	return s.End.After(h.Start) && (h.End.IsZero() || s.Start.Before(h.End))
}

var errBadHold = errors.New("invalid hold")

// holdStore keeps holds in memory and in a JSON file replaced atomically
// (write, fsync, rename) on every change.
type holdStore struct {
	path string
	now  func() time.Time

	mu    sync.Mutex
	holds map[string]Hold
}

func openHolds(path string, now func() time.Time) (*holdStore, error) {
	s := &holdStore{path: path, now: now, holds: make(map[string]Hold)}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("holds: %w", err)
	}
	var list []Hold
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("holds %s: %w", path, err)
	}
	for _, h := range list {
		s.holds[h.ID] = h
	}
	return s, nil
}

// active returns the holds whose Until has not passed, dropping the others.
func (s *holdStore) active() ([]Hold, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	changed := false
	out := make([]Hold, 0, len(s.holds))
	for id, h := range s.holds {
		if !h.Until.IsZero() && !now.Before(h.Until) {
			delete(s.holds, id)
			changed = true
			continue
		}
		out = append(out, h)
	}
	if changed {
		if err := s.saveLocked(); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (s *holdStore) put(h Hold) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.holds[h.ID]
	s.holds[h.ID] = h
	if err := s.saveLocked(); err != nil {
		if had {
			s.holds[h.ID] = old
		} else {
			delete(s.holds, h.ID)
		}
		return err
	}
	return nil
}

func (s *holdStore) remove(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.holds[id]
	if !had {
		return nil
	}
	delete(s.holds, id)
	if err := s.saveLocked(); err != nil {
		s.holds[id] = old
		return err
	}
	return nil
}

func (s *holdStore) saveLocked() error {
	list := make([]Hold, 0, len(s.holds))
	for _, h := range s.holds {
		list = append(list, h)
	}
	slices.SortFunc(list, func(a, b Hold) int { return a.Start.Compare(b.Start) })
	b, err := json.MarshalIndent(list, "", " ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".holds-*.tmp")
	if err != nil {
		return fmt.Errorf("save holds: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save holds: %w", err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// PlaceHold adds or replaces (by ID) an evidence hold; it is on disk when
// PlaceHold returns. To end a hold at a time, place it again with Until.
func (r *Recorder) PlaceHold(ctx context.Context, h Hold) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.ID == "" || len(h.ID) > 200 {
		return fmt.Errorf("%w: id", errBadHold)
	}
	if h.Camera != "" && !ValidCameraID(h.Camera) {
		return fmt.Errorf("%w: camera %q", errBadHold, h.Camera)
	}
	if !h.End.IsZero() && h.End.Before(h.Start) {
		return fmt.Errorf("%w %s: end before start", errBadHold, h.ID)
	}
	h.Start, h.End, h.Until = h.Start.UTC(), h.End.UTC(), h.Until.UTC()
	if err := r.holds.put(h); err != nil {
		return fmt.Errorf("hold %s: %w", h.ID, err)
	}
	return nil
}

// ReleaseHold removes a hold at once; releasing an unknown ID is not an error.
func (r *Recorder) ReleaseHold(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.holds.remove(id); err != nil {
		return fmt.Errorf("hold %s: %w", id, err)
	}
	return nil
}

// Holds returns the holds in force.
func (r *Recorder) Holds() ([]Hold, error) { return r.holds.active() }
