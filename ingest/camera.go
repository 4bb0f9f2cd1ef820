package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/internal/backoff"
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
	first           *firstBytes // what the current session's server sent first
	attempts        int         // connection attempts, the first included
	reconnects      int         // sessions that came online after an earlier one
	everOnline      bool
	lastErr         *LastError
	authFails       int // 401s in a row
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

// starting puts the camera in connecting at now; it is offline when no
// session came online within offline_after.
func (c *camera) starting(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.since, c.offlineSince, c.offlineReason = StatusConnecting, now, now, "connecting"
	c.rate.span = 5 * time.Second
	c.setUpLocked(0)
}

func (c *camera) run(ctx context.Context) error {
	c.starting(c.s.opts.Now())
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

	b := backoff.New(backoff.Policy{Min: c.s.opts.Backoff.Min, Max: c.s.opts.Backoff.Max, Jitter: c.s.opts.Backoff.Jitter})
	for {
		c.mu.Lock()
		c.attempts++
		c.mu.Unlock()
		err := c.pull(ctx)
		c.feed.end("disconnect")
		if ctx.Err() != nil {
			c.log.Info("camera stopped")
			return nil
		}
		if c.healthyFor() >= c.s.opts.Backoff.ResetAfter {
			b.Reset()
		}
		authFails := c.failed(err)
		pause := b.Pause()
		if authFails >= authFailLimit {
			// Cameras lock the account after a few refused logins: try
			// again only every auth_retry until the password is fixed.
			pause = max(pause, c.authRetry())
			if authFails == authFailLimit {
				c.log.Warn("camera refuses the credentials; trying again only every auth_retry so the account is not locked",
					"refused", authFails, "auth_retry", pause)
			}
		}
		c.log.Debug("reconnecting", "in", pause)
		select {
		case <-ctx.Done():
			c.log.Info("camera stopped")
			return nil
		case <-c.s.opts.After(pause):
		}
	}
}

// authFailLimit is how many 401s in a row switch retries to auth_retry.
const authFailLimit = 3

func (c *camera) authRetry() time.Duration {
	if c.spec.AuthRetry > 0 {
		return c.spec.AuthRetry
	}
	return c.s.opts.AuthRetry
}

// newFirstBytes starts keeping what the next session's server sends first.
func (c *camera) newFirstBytes() *firstBytes {
	f := &firstBytes{}
	c.mu.Lock()
	c.first = f
	c.mu.Unlock()
	return f
}

func (c *camera) healthyFor() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.onlineAt.IsZero() {
		return 0
	}
	return c.lastPacket.Sub(c.onlineAt)
}

// failed records the end of a session or a failed attempt and returns how
// many 401s the camera answered in a row. A camera that was online goes
// back to connecting; it is offline once that lasted offline_after (see
// offlineLocked). It logs a lost camera and the first failure of a camera that never
// came online; later failures go to debug.
func (c *camera) failed(err error) (authFails int) {
	now := c.s.opts.Now()
	c.mu.Lock()
	var first []byte
	if c.first != nil {
		first = c.first.bytes()
	}
	why, msg := classify(err, first)
	msg = redact(msg, c.spec)
	prev := c.status
	c.playing, c.onlineAt, c.cancelSession, c.first = time.Time{}, time.Time{}, nil, nil
	if prev == StatusOnline {
		c.status, c.since, c.offlineSince = StatusConnecting, now, now
	}
	c.offlineReason = why
	c.lastErr = &LastError{At: now, Reason: why, Message: msg}
	if why == ReasonUnauthorized {
		c.authFails++
	} else {
		c.authFails = 0
	}
	authFails = c.authFails
	firstFailure := !c.everOnline && c.attempts == 1
	c.setUpLocked(0)
	c.mu.Unlock()
	if prev == StatusOnline || firstFailure {
		c.log.Warn("camera offline", "reason", why, "err", msg)
	} else {
		c.log.Debug("reconnect failed", "reason", why, "err", msg)
	}
	return authFails
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
		c.authFails = 0
		if c.everOnline {
			c.reconnects++
			c.s.m.reconnects.WithLabelValues(c.spec.ID).Inc()
		}
		if c.offlineReported || !c.everOnline {
			st := c.state(true, now, "")
			st.First = !c.everOnline
			back = &st
		}
		c.offlineReported = false
		c.everOnline = true
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
		report = c.offlineLocked(now)
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

// offlineLocked turns a camera that has been connecting for offline_after
// (since it started or since its last session ended) offline, and returns
// the health transition to report then, once per outage.
func (c *camera) offlineLocked(now time.Time) *CameraState {
	if c.offlineSince.IsZero() || c.offlineReported || now.Sub(c.offlineSince) < c.s.opts.OfflineAfter {
		return nil
	}
	c.offlineReported = true
	if c.status == StatusConnecting {
		c.status, c.since = StatusOffline, now
	}
	st := c.state(false, c.offlineSince, c.offlineReason)
	if c.lastErr != nil {
		st.Message = c.lastErr.Message
	}
	return &st
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
	st.Reconnects, st.Attempts = c.reconnects, c.attempts
	if c.lastErr != nil {
		e := *c.lastErr
		st.LastError = &e
	}
	if c.status == StatusOnline {
		st.BitrateBps, st.FPS = c.rate.rates(now)
	}
}
