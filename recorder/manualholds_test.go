package recorder

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A manual hold keeps its footage through retention and a restart, with
// its case, author and creation time; released, the footage goes at the
// next sweep.
func TestManualHoldSurvivesRetentionAndRestart(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: t0}
	r, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now, Retain: time.Hour})
	for i := range 6 { // 21:05 .. 21:55, 10 minutes each
		addSegment(t, r, "gate", t0.Add(time.Duration(i)*10*time.Minute), 10*time.Minute, 100)
	}
	ctx := context.Background()
	h, err := r.PlaceManualHold(ctx, ManualHold{Camera: "gate", Start: t0.Add(21 * time.Minute), End: t0.Add(29 * time.Minute),
		Case: "2026-刑-0042", Reason: "theft at the counter", By: "inv-1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !IsManualHoldID(h.ID) || h.By != "inv-1" || !h.CreatedAt.Equal(t0) || h.Case != "2026-刑-0042" {
		t.Fatalf("placed %+v", h)
	}
	clock.Set(t0.Add(5 * time.Hour))
	if err := r.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, r, "gate"), "21:25"; got != want {
		t.Fatalf("kept %q, want %q", got, want)
	}

	r2, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now, Retain: time.Hour})
	clock.Set(t0.Add(30 * 24 * time.Hour)) // no expiry: held until released
	if err := r2.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, r2, "gate"), "21:25"; got != want {
		t.Fatalf("after restart kept %q, want %q", got, want)
	}
	got := r2.HoldsIn("gate", time.Time{}, time.Time{})
	if len(got) != 1 || got[0] != h {
		t.Fatalf("holds after restart %+v, want %+v", got, h)
	}
	rel, err := r2.ReleaseManualHold(ctx, h.ID)
	if err != nil || rel != h {
		t.Fatalf("release: %+v %v", rel, err)
	}
	if _, err := r2.ReleaseManualHold(ctx, h.ID); !errors.Is(err, ErrHoldNotFound) {
		t.Fatalf("second release: %v", err)
	}
	if err := r2.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, r2, "gate"); got != "" {
		t.Fatalf("kept %q after the release", got)
	}
	r3, _ := newTestRecorder(t, Options{Dir: dir, Now: clock.Now})
	if hs := r3.HoldsIn("", time.Time{}, time.Time{}); len(hs) != 0 {
		t.Fatalf("released hold back after restart: %+v", hs)
	}
}

// Manual and alert holds share the store but not their IDs: an alert's
// hold cannot be released as a manual one, nor an alert place an "m-" ID.
func TestManualHoldIDSpace(t *testing.T) {
	r, _ := newTestRecorder(t, Options{})
	ctx := context.Background()
	alert := Hold{ID: "01JD0000000000000000000000", Camera: "gate", Start: t0, Reason: "intrusion"}
	if err := r.PlaceHold(ctx, alert); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReleaseManualHold(ctx, alert.ID); !errors.Is(err, ErrAlertHold) {
		t.Fatalf("releasing an alert's hold: %v", err)
	}
	if hs := r.HoldsIn("gate", time.Time{}, time.Time{}); len(hs) != 1 || hs[0].ID != alert.ID {
		t.Fatalf("alert hold gone: %+v", hs)
	}
	m, err := r.PlaceManualHold(ctx, ManualHold{Camera: "gate", Start: t0, End: t0.Add(time.Minute), Case: "c", Reason: "r"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PlaceHold(ctx, Hold{ID: m.ID, Camera: "gate", Start: t0}); err == nil {
		t.Fatal("PlaceHold took a manual hold's ID")
	}
	if _, err := r.ReleaseManualHold(ctx, "m-nope"); !errors.Is(err, ErrHoldNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestHoldsInFilters(t *testing.T) {
	r, _ := newTestRecorder(t, Options{})
	ctx := context.Background()
	place := func(cam string, from, to time.Duration) string {
		h, err := r.PlaceManualHold(ctx, ManualHold{Camera: cam, Start: t0.Add(from), End: t0.Add(to), Case: "c", Reason: "r"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return h.ID
	}
	a := place("gate", 0, time.Hour)
	b := place("gate", 2*time.Hour, 3*time.Hour)
	c := place("hall", time.Minute, time.Hour)
	if err := r.PlaceHold(ctx, Hold{ID: "01JD0000000000000000000000", Camera: "gate", Start: t0.Add(150 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	all := func(hs []Hold) string {
		var s []string
		for _, h := range hs {
			switch h.ID {
			case a:
				s = append(s, "a")
			case b:
				s = append(s, "b")
			case c:
				s = append(s, "c")
			default:
				s = append(s, "alert")
			}
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		name       string
		camera     string
		start, end time.Time
		want       string
	}{
		{"everything", "", time.Time{}, time.Time{}, "a c b alert"},
		{"one camera", "gate", time.Time{}, time.Time{}, "a b alert"},
		{"range before b", "gate", t0, t0.Add(2 * time.Hour), "a"},
		{"open alert hold runs on", "gate", t0.Add(5 * time.Hour), t0.Add(6 * time.Hour), "alert"},
		{"touching end excluded", "hall", t0.Add(time.Hour), time.Time{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := all(r.HoldsIn(tc.camera, tc.start, tc.end)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
