package ingest

import "time"

// rateWindow measures frame rate and bit rate over a sliding window.
type rateWindow struct {
	span    time.Duration
	samples []rateSample // oldest first
	bytes   int
	frames  int
	since   time.Time // start of measurement (session start)
}

type rateSample struct {
	at    time.Time
	bytes int
	video bool
}

func (w *rateWindow) reset(now time.Time) {
	w.samples = w.samples[:0]
	w.bytes, w.frames = 0, 0
	w.since = now
}

func (w *rateWindow) add(now time.Time, bytes int, video bool) {
	w.samples = append(w.samples, rateSample{now, bytes, video})
	w.bytes += bytes
	if video {
		w.frames++
	}
	w.prune(now)
}

func (w *rateWindow) prune(now time.Time) {
	i := 0
	for i < len(w.samples) && now.Sub(w.samples[i].at) > w.span {
		w.bytes -= w.samples[i].bytes
		if w.samples[i].video {
			w.frames--
		}
		i++
	}
	if i > 0 {
		w.samples = append(w.samples[:0], w.samples[i:]...)
	}
}

// rates returns bits per second and frames per second over the window.
func (w *rateWindow) rates(now time.Time) (bps int64, fps float64) {
	w.prune(now)
	d := min(w.span, now.Sub(w.since))
	if d < 500*time.Millisecond || len(w.samples) == 0 {
		return 0, 0
	}
	s := d.Seconds()
	return int64(float64(w.bytes*8) / s), float64(w.frames) / s
}
