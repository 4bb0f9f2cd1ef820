package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/prometheus/client_golang/prometheus"
)

// errStall ends a session that delivered no video frame for StallAfter.
var errStall = errors.New("stream stalled")

// camera supervises the pull of one enabled camera: one session at a time,
// reconnecting with backoff for as long as its context lives.
type camera struct {
	spec Camera // the stream; its Name, Site and Grid are cleared, see label
	s    *Streams
	feed *feed
	log  *slog.Logger

	mBytes, mFrames prometheus.Counter // hot-path series, looked up once

	mu              sync.Mutex
	label           Camera  // Name, Site and Grid, which Apply changes in place
	up              float64 // vigil_camera_up, kept to move it to a new site
	status          string
	since           time.Time
	lastFrame       time.Time
	lastPacket      time.Time
	playing         time.Time // PLAY answered in the current session; zero otherwise
	onlineAt        time.Time // first frame of the current session
	cancelSession   context.CancelCauseFunc
	reconnects      int
	codec           string
	width, height   int
	rate            rateWindow
	offlineSince    time.Time
	offlineReason   string
	offlineReported bool
	lostPending     uint64
	lostLoggedAt    time.Time
	decodePending   uint64
	lastDecodeErr   string
}

func (c *camera) run(ctx context.Context) error {
	now := c.s.opts.Now()
	c.mu.Lock()
	c.status, c.since, c.offlineSince, c.offlineReason = StatusConnecting, now, now, "connecting"
	c.rate.span = 5 * time.Second
	c.setUpLocked(0)
	c.mu.Unlock()
	c.log.Info("camera starting", "url", c.spec.URL, "transport", c.spec.Transport)

	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		c.watch(watchCtx)
	}()
	defer func() {
		stopWatch()
		<-watchDone
	}()

	b := newBackoff(c.s.opts.Backoff)
	for {
		err := c.pull(ctx)
		c.feed.end("disconnect")
		if ctx.Err() != nil {
			c.log.Info("camera stopped")
			return nil
		}
		if c.healthyFor() >= c.s.opts.Backoff.ResetAfter {
			b.Reset()
		}
		c.failed(err)
		pause := b.Pause()
		c.log.Debug("reconnecting", "in", pause)
		select {
		case <-ctx.Done():
			c.log.Info("camera stopped")
			return nil
		case <-c.s.opts.After(pause):
		}
		c.mu.Lock()
		c.reconnects++
		c.mu.Unlock()
		c.s.m.reconnects.WithLabelValues(c.spec.ID).Inc()
	}
}

// reason names the cause of a failed session for logs and health events.
func reason(err error) string {
	var bad liberrors.ErrClientBadStatusCode
	var op *net.OpError
	switch {
	case errors.Is(err, errStall):
		return "stall"
	case errors.As(err, &bad) && bad.Code == 401:
		return "unauthorized"
	case errors.As(err, &bad):
		return "rejected"
	case errors.As(err, &op) && op.Op == "dial":
		return "connect"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "disconnect"
	}
}

func (c *camera) healthyFor() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.onlineAt.IsZero() {
		return 0
	}
	return c.lastPacket.Sub(c.onlineAt)
}

// failed records the end of a session; it logs only a change of state.
func (c *camera) failed(err error) {
	now := c.s.opts.Now()
	why := reason(err)
	c.mu.Lock()
	prev := c.status
	c.playing, c.onlineAt, c.cancelSession = time.Time{}, time.Time{}, nil
	if prev != StatusOffline {
		c.status, c.since = StatusOffline, now
		if prev == StatusOnline {
			c.offlineSince = now
		}
	}
	c.offlineReason = why
	c.setUpLocked(0)
	c.mu.Unlock()
	if prev != StatusOffline {
		c.log.Warn("camera offline", "reason", why, "err", err)
	} else {
		c.log.Debug("reconnect failed", "reason", why, "err", err)
	}
}

// frame records a decoded video frame of bytes bytes.
func (c *camera) frame(now time.Time, bytes int) {
	c.mu.Lock()
	c.lastFrame = now
	c.rate.add(now, bytes, true)
	c.mu.Unlock()
}

// alive records a video packet; the first one of a session brings the
// camera online. Frames can be decoded only from the first keyframe on, so
// liveness and stalls go by packets.
func (c *camera) alive(now time.Time) {
	c.mu.Lock()
	c.lastPacket = now
	first := c.onlineAt.IsZero()
	var back *CameraState
	if first {
		c.onlineAt = now
		c.rate.reset(now)
		c.status, c.since = StatusOnline, now
		c.offlineSince = time.Time{}
		if c.offlineReported {
			c.offlineReported = false
			st := c.state(true, now, "")
			back = &st
		}
		c.setUpLocked(1)
	}
	c.mu.Unlock()
	if first {
		c.log.Info("camera online")
		if back != nil && c.s.opts.OnState != nil {
			c.s.opts.OnState(*back)
		}
	}
}

func (c *camera) audio(now time.Time, bytes int) {
	c.mu.Lock()
	c.rate.add(now, bytes, false)
	c.mu.Unlock()
}

// state builds a health transition. Called with c.mu held.
func (c *camera) state(online bool, since time.Time, why string) CameraState {
	return CameraState{Camera: c.spec.ID, Name: c.label.Name, Site: c.label.Site, Grid: c.label.Grid,
		Online: online, Since: since, Reason: why}
}

// setUpLocked sets vigil_camera_up under the current site. The gauge is set
// with c.mu held so that relabel cannot leave a series of the old site
// behind.
func (c *camera) setUpLocked(v float64) {
	c.up = v
	c.s.m.up.WithLabelValues(c.spec.ID, c.label.Site).Set(v)
}

// relabel takes over the name, site and grid of spec, a registration with
// the same stream, without interrupting the session; vigil_camera_up moves
// to the new site's series.
func (c *camera) relabel(spec Camera) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.label
	c.label = Camera{Name: spec.Name, Site: spec.Site, Grid: spec.Grid}
	if old.Site != spec.Site {
		c.s.m.up.DeleteLabelValues(c.spec.ID, old.Site)
		c.setUpLocked(c.up)
	}
}

// watch detects stalls, reports long outages and logs lost packets in
// aggregate, on a short tick, until ctx ends.
func (c *camera) watch(ctx context.Context) {
	o := c.s.opts
	tick := min(o.StallAfter, o.OfflineAfter) / 4
	tick = max(10*time.Millisecond, min(tick, 500*time.Millisecond))
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := o.Now()
		var report *CameraState
		var lost, decode uint64
		var decodeErr string
		c.mu.Lock()
		if !c.playing.IsZero() && c.cancelSession != nil {
			last := c.lastPacket
			if last.Before(c.playing) {
				last = c.playing
			}
			if now.Sub(last) > o.StallAfter {
				c.cancelSession(errStall)
				c.cancelSession = nil
			}
		}
		if !c.offlineSince.IsZero() && !c.offlineReported && now.Sub(c.offlineSince) >= o.OfflineAfter {
			c.offlineReported = true
			st := c.state(false, c.offlineSince, c.offlineReason)
			report = &st
		}
		lost, decode, decodeErr = c.takeDamageLocked(now)
		c.mu.Unlock()
		if report != nil {
			c.log.Warn("camera offline too long", "since", report.Since, "reason", report.Reason)
			if o.OnState != nil {
				o.OnState(*report)
			}
		}
		if lost > 0 || decode > 0 {
			c.log.Warn("stream damaged", "packets_lost", lost, "decode_errors", decode, "last_error", decodeErr)
		}
	}
}

// takeDamageLocked returns the lost packets and decode errors to log now:
// everything pending, at most once per LostLogInterval.
func (c *camera) takeDamageLocked(now time.Time) (lost, decode uint64, lastErr string) {
	if now.Sub(c.lostLoggedAt) < c.s.opts.LostLogInterval || (c.lostPending == 0 && c.decodePending == 0) {
		return 0, 0, ""
	}
	lost, decode, lastErr = c.lostPending, c.decodePending, c.lastDecodeErr
	c.lostPending, c.decodePending, c.lostLoggedAt = 0, 0, now
	return lost, decode, lastErr
}

func (c *camera) onLost(n uint64) {
	c.s.m.lost.WithLabelValues(c.spec.ID).Add(float64(n))
	c.mu.Lock()
	c.lostPending += n
	c.mu.Unlock()
}

func (c *camera) onDecodeError(err error) {
	c.s.m.decodeErrors.WithLabelValues(c.spec.ID).Inc()
	c.mu.Lock()
	c.decodePending++
	c.lastDecodeErr = redact(err.Error(), c.spec)
	c.mu.Unlock()
}

func (c *camera) fill(st *CameraStatus, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status != "" {
		st.Status, st.Since = c.status, c.since
	}
	if !c.lastFrame.IsZero() {
		t := c.lastFrame
		st.LastFrameAt = &t
	}
	st.Codec, st.Width, st.Height = c.codec, c.width, c.height
	st.Reconnects = c.reconnects
	if c.status == StatusOnline {
		st.BitrateBps, st.FPS = c.rate.rates(now)
	}
}
