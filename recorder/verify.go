package recorder

import (
	"context"
	"errors"
	"path/filepath"
	"time"
)

// Verifier defaults (storage.verify_every, storage.verify_rate).
const (
	DefaultVerifyEvery = 24 * time.Hour
	DefaultVerifyRate  = 20_000_000 // bytes per second
)

// VerifyResult is what one verify pass did.
type VerifyResult struct {
	Segments int   // closed segments hashed whole
	Bytes    int64 // bytes hashed
	// Damaged lists "camera/segment" of the segments this pass found
	// damaged for the first time.
	Damaged []string
}

// VerifyPass re-hashes every closed, indexed segment of every camera,
// oldest day first, at no more than VerifyRate, and reports each one whose
// SHA-256 or size no longer matches its index line: it is listed damaged,
// counted in vigil_recording_integrity_failures_total and raises the
// recording_tampered health signal. Segments already known damaged are
// not read again. It returns early with ctx's error.
func (r *Recorder) VerifyPass(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	cams, err := r.cameraDirs()
	if err != nil {
		return res, err
	}
	p := pacer{rate: r.opts.VerifyRate}
	buf := make([]byte, 1<<20) // also the pacing step: 50 ms at 20 MB/s
	count := func(n int) {
		res.Bytes += int64(n)
		r.m.verified.Add(float64(n))
	}
	for _, cam := range cams {
		days, err := listDays(filepath.Join(r.opts.Dir, cam))
		if err != nil {
			r.log.Warn("verify: cannot list days", "camera", cam, "error", err)
			continue
		}
		for _, day := range days {
			segs, err := readDayIndex(r.opts.Dir, cam, day, nil)
			if err != nil {
				r.log.Warn("verify: cannot read index", "camera", cam, "day", day, "error", err)
				continue
			}
			for _, s := range segs {
				if err := ctx.Err(); err != nil {
					return res, err
				}
				if r.catalog.damage.reason(cam, s.ID) != "" {
					continue // found damaged already
				}
				if s.Damage != "" { // a file no valid index line names
					if r.catalog.damage.found(cam, s.ID, s.Damage) {
						res.Damaged = append(res.Damaged, cam+"/"+s.ID)
						r.log.Error("recording without a valid index line", "camera", cam, "segment", s.ID, "damage", s.Damage)
					}
					continue
				}
				err := hashSegment(s, buf, func(n int) error { return p.wait(ctx, n) }, count)
				switch {
				case err == nil:
					res.Segments++
				case errors.Is(err, ErrIntegrity):
					if r.catalog.damage.found(cam, s.ID, integrityReason(err)) {
						res.Damaged = append(res.Damaged, cam+"/"+s.ID)
						r.log.Error("recording failed its integrity check", "camera", cam, "segment", s.ID, "error", err)
					}
				case errors.Is(err, ErrSourceChanged):
					// retention deleted it after the index was read
				case ctx.Err() != nil:
					return res, ctx.Err()
				default:
					r.log.Warn("verify: cannot read segment", "camera", cam, "segment", s.ID, "error", err)
				}
			}
		}
	}
	return res, nil
}

func integrityReason(err error) string {
	var ie *IntegrityError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return err.Error()
}

// runVerifier starts a verify pass every VerifyEvery (the first at once)
// until ctx ends.
func (r *Recorder) runVerifier(ctx context.Context) {
	for {
		start := time.Now()
		res, err := r.VerifyPass(ctx)
		if ctx.Err() != nil {
			return
		}
		took := time.Since(start)
		if err != nil {
			r.log.Error("verify pass", "error", err)
		} else {
			r.log.Info("verify pass done", "segments", res.Segments, "bytes", res.Bytes, "damaged", len(res.Damaged), "took", took.Round(time.Millisecond))
		}
		if took > r.opts.VerifyEvery {
			r.log.Warn("a verify pass took longer than verify_every: raise storage.verify_rate or verify_every", "took", took.Round(time.Second), "verify_every", r.opts.VerifyEvery)
		}
		t := time.NewTimer(max(r.opts.VerifyEvery-took, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// pacer spreads reading over time so that it stays at or below rate bytes
// a second on average since the first byte.
type pacer struct {
	rate  int64
	start time.Time
	n     int64
}

func (p *pacer) wait(ctx context.Context, n int) error {
	if p.rate <= 0 {
		return nil
	}
	if p.start.IsZero() {
		p.start = time.Now()
	}
	p.n += int64(n)
	due := p.start.Add(time.Duration(float64(p.n) / float64(p.rate) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
