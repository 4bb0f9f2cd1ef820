package recorder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// integrityFixture is a camera's closed segments, with the recorder's
// health signals and metrics at hand.
type integrityFixture struct {
	r      *Recorder
	reg    *prometheus.Registry
	health *healthLog
	segs   []Segment
}

// recordIntegrityFixture records without serving (no sockets: it runs in a
// synctest bubble).
func recordIntegrityFixture(t *testing.T, opts Options) integrityFixture {
	t.Helper()
	c := fixture(t)
	h := &healthLog{}
	opts.Segment, opts.Part, opts.OnHealth = 4*time.Second, time.Second, h.on
	r, reg := newTestRecorder(t, opts)
	w, err := r.Camera(exportCamera, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.OnStream(stream(c, exportCamera, 1, t0))
	(&feeder{c: c, wall: t0}).feed(w, 300) // 12 s: three segments
	if err := r.CloseCamera(exportCamera); err != nil {
		t.Fatal(err)
	}
	segs, _, err := r.Catalog().List(exportCamera, t0, t0.Add(time.Minute))
	if err != nil || len(segs) < 3 {
		t.Fatalf("recorded %d segments: %v", len(segs), err)
	}
	return integrityFixture{r: r, reg: reg, health: h, segs: segs}
}

// tamper flips 100 bytes in the middle of the segment, size unchanged.
func tamper(t *testing.T, s Segment) {
	t.Helper()
	f, err := os.OpenFile(s.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 100)
	off := s.Bytes / 2
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func (f integrityFixture) tamperedAlerts() int {
	n := 0
	for _, e := range f.health.get() {
		if e == exportCamera+"/"+HealthRecordingTampered+"=true" {
			n++
		}
	}
	return n
}

func TestVerifyPassFindsTamperOnce(t *testing.T) {
	f := recordIntegrityFixture(t, Options{VerifyRate: -1})
	names := map[string]bool{}
	mfs, _ := f.reg.Gather()
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"vigil_recording_verified_bytes_total", "vigil_recording_integrity_failures_total"} {
		if !names[n] {
			t.Errorf("metric %s missing before its first event", n)
		}
	}
	var total int64
	for _, s := range f.segs {
		total += s.Bytes
	}
	res, err := f.r.VerifyPass(t.Context())
	if err != nil || len(res.Damaged) != 0 || res.Segments != len(f.segs) || res.Bytes != total {
		t.Fatalf("clean pass: %+v %v (want %d segments, %d bytes)", res, err, len(f.segs), total)
	}
	victim := f.segs[2]
	tamper(t, victim)
	res, err = f.r.VerifyPass(t.Context())
	if err != nil || !slices.Equal(res.Damaged, []string{exportCamera + "/" + victim.ID}) {
		t.Fatalf("pass after tampering: %+v %v", res, err)
	}
	if n := f.tamperedAlerts(); n != 1 {
		t.Errorf("recording_tampered raised %d times", n)
	}
	if got := testutil.ToFloat64(f.r.m.verified); got != float64(2*total) {
		t.Errorf("verified bytes %v, want %d", got, 2*total)
	}
	if got := testutil.ToFloat64(f.r.m.integrityFailures); got != 1 {
		t.Errorf("integrity failures %v", got)
	}
	res, _ = f.r.VerifyPass(t.Context())
	if len(res.Damaged) != 0 || f.tamperedAlerts() != 1 {
		t.Errorf("a known damaged segment alerted again: %+v", res)
	}
	// the damage is remembered across a restart
	r2, _ := newTestRecorder(t, Options{Dir: f.r.opts.Dir})
	s, err := r2.Catalog().Segment(exportCamera, victim.ID)
	if err != nil || s.Damage != "sha256 mismatch" {
		t.Errorf("after restart: %+v %v", s, err)
	}
}

// The verifier reads no faster than verify_rate, and starts a pass every
// verify_every: a segment tampered after one pass is reported by the next.
func TestVerifierPaceAndSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 1 << 20
		f := recordIntegrityFixture(t, Options{VerifyRate: rate, VerifyEvery: time.Hour, SweepInterval: time.Hour})
		var total int64
		for _, s := range f.segs {
			total += s.Bytes
		}
		start := time.Now()
		if _, err := f.r.VerifyPass(t.Context()); err != nil {
			t.Fatal(err)
		}
		minimum := time.Duration(float64(total-1<<20) / rate * float64(time.Second)) // the last step is not waited for
		if took := time.Since(start); took < minimum {
			t.Errorf("hashed %d bytes in %v at %d B/s, want ≥ %v", total, took, rate, minimum)
		}

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- f.r.Run(ctx) }()
		time.Sleep(time.Minute) // the first pass, in the bubble's time
		synctest.Wait()
		tamper(t, f.segs[0])
		if f.tamperedAlerts() != 0 {
			t.Fatal("alert before tampering")
		}
		time.Sleep(time.Hour + time.Minute)
		synctest.Wait()
		if n := f.tamperedAlerts(); n != 1 {
			t.Errorf("one verify_every after tampering: %d alerts", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestIntegrityErrorIsNotSourceChanged(t *testing.T) {
	err := error(&IntegrityError{Camera: "c", Segment: "s", Reason: "sha256 mismatch"})
	if !errors.Is(err, ErrIntegrity) || errors.Is(err, ErrSourceChanged) {
		t.Error(err)
	}
}

// A damaged index line leaves its file listed as a damaged segment, not a
// gap; retention keeps it until the camera's age limit and deletes it then.
func TestDamagedIndexLineListedAndRetained(t *testing.T) {
	clock := &fakeClock{t: t0}
	f := recordIntegrityFixture(t, Options{Now: clock.Now, Retain: 48 * time.Hour})
	victim := f.segs[1]
	idx := filepath.Join(f.r.opts.Dir, exportCamera, t0.Format(dayLayout), indexFile)
	b, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	for i, l := range lines {
		if strings.Contains(l, segmentFileName(victim.ID)) {
			lines[i] = l[:30] + "\x00garbage\n"
		}
	}
	if err := os.WriteFile(idx, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &healthLog{}
	r, _ := newTestRecorder(t, Options{Dir: f.r.opts.Dir, Now: clock.Now, Retain: 48 * time.Hour, OnHealth: h.on})
	segs, gaps, err := r.Catalog().List(exportCamera, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(segs, func(s Segment) bool { return s.ID == victim.ID })
	if i < 0 || len(segs) != len(f.segs) || len(gaps) != 0 {
		t.Fatalf("listed %d segments (want %d), gaps %v", len(segs), len(f.segs), gaps)
	}
	if got := segs[i]; !strings.HasPrefix(got.Damage, "not indexed") || got.Bytes != victim.Bytes || !got.End.Equal(victim.End) {
		t.Errorf("orphaned segment listed as %+v", got)
	}
	// an export over it names it
	_, err = PlanExport(r.Catalog(), ExportRequest{Camera: exportCamera, Start: t0, End: t0.Add(10 * time.Second)})
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Segment != victim.ID {
		t.Errorf("export over the orphan: %v", err)
	}
	// the verifier raises the alert for it, once
	for range 2 {
		if _, err := r.VerifyPass(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.get(); !slices.Equal(got, []string{exportCamera + "/" + HealthRecordingTampered + "=true"}) {
		t.Errorf("health %v", got)
	}

	clock.Set(t0.Add(47 * time.Hour))
	if err := r.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(victim.Path); err != nil {
		t.Fatalf("orphan deleted before its age limit: %v", err)
	}
	clock.Set(t0.Add(49 * time.Hour))
	if err := r.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(victim.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan kept past its age limit: %v", err)
	}
}

// A file whose index line is missing altogether (not damaged) and that is
// older than an indexed one is an orphan, listed as damaged; the newest
// unindexed file may be the one being written and is left out.
func TestOrphanedFileListed(t *testing.T) {
	f := recordIntegrityFixture(t, Options{})
	victim := f.segs[1]
	idx := filepath.Join(f.r.opts.Dir, exportCamera, t0.Format(dayLayout), indexFile)
	b, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if !strings.Contains(l, segmentFileName(victim.ID)) {
			keep = append(keep, l)
		}
	}
	if err := os.WriteFile(idx, []byte(strings.Join(keep, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ := newTestRecorder(t, Options{Dir: f.r.opts.Dir})
	// after the restart, a file newer than every indexed one: the segment
	// being written
	open := filepath.Join(filepath.Dir(idx), "23-59-59.000Z.mp4")
	if err := os.WriteFile(open, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	segs, gaps, err := r.Catalog().List(exportCamera, t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != len(f.segs) || len(gaps) != 0 {
		t.Fatalf("listed %d segments (want %d), gaps %v", len(segs), len(f.segs), gaps)
	}
	if got := segs[1]; got.ID != victim.ID || got.Damage != "not indexed" {
		t.Errorf("orphan listed as %+v", got)
	}
}
