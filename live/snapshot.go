package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/internal/httpx"
	"vigil/internal/media"
)

// Errors of the snapshot API; ServeHTTP maps them to statuses.
var (
	// ErrSnapshotsUnavailable means ffmpeg was not found at start.
	ErrSnapshotsUnavailable = errors.New("snapshots unavailable: ffmpeg not found")
	// ErrNoKeyframe means the camera is offline or has sent no keyframe
	// since it came online.
	ErrNoKeyframe = errors.New("camera offline: no live keyframe")
	// ErrNoFootage means no recording holds a keyframe at or before the
	// asked time (Recordings returns it, wrapped or not).
	ErrNoFootage = errors.New("no recorded keyframe at or before that time")
	// ErrBusy means the decoders stayed busy for the whole timeout.
	ErrBusy = errors.New("snapshot decoders busy")
)

// Recordings reads recorded footage for snapshots of the past.
type Recordings interface {
	// KeyframeAt returns a fragmented MP4 stream that starts at the
	// camera's recorded keyframe at or before at, and that keyframe's
	// time; ErrNoFootage when there is none. The caller closes the reader.
	KeyframeAt(ctx context.Context, camera string, at time.Time) (io.ReadCloser, time.Time, error)
}

// SnapshotsOptions configure Snapshots. Zero values take the documented
// defaults.
type SnapshotsOptions struct {
	// Feeds are the cameras' live feeds; required.
	Feeds *Feeds
	// Known reports whether a camera is registered; required.
	Known func(camera string) bool
	// Recordings serves ?at=T and After's fallback; nil answers those
	// with ErrNoFootage.
	Recordings Recordings
	// FFmpeg is the ffmpeg binary, a path or a name looked up on PATH.
	// Default "ffmpeg".
	FFmpeg string
	// Width of the JPEG in pixels; the height keeps the aspect ratio.
	// Default 640.
	Width int
	// Concurrency is how many ffmpeg processes may be alive at once,
	// spares included; default 2.
	Concurrency int
	// Timeout bounds one ffmpeg process from the moment its input starts
	// to flow, and separately the wait for a free decoder; default 5s.
	Timeout time.Duration
	// CacheFor is how long a camera's latest snapshot is served again
	// without decoding; default 2s.
	CacheFor time.Duration
	// OnRecorded, if set, is called after a snapshot from the recordings
	// (?at) was served, for the audit log.
	OnRecorded func(r *http.Request, s Snapshot, at time.Time)
	Now        func() time.Time
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

func (o *SnapshotsOptions) validate() error {
	var errs []error
	if o.Feeds == nil {
		errs = append(errs, errors.New("snapshots: no feeds"))
	}
	if o.Known == nil {
		errs = append(errs, errors.New("snapshots: no camera registry"))
	}
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if o.Width <= 0 {
		o.Width = 640
	}
	if o.Width%2 == 1 {
		o.Width++ // 4:2:0 JPEG wants even dimensions
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.CacheFor <= 0 {
		o.CacheFor = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Snapshot is one decoded picture.
type Snapshot struct {
	Camera string
	// At is the wall-clock time of the keyframe it shows.
	At   time.Time
	JPEG []byte
}

// Snapshots turns keyframes into JPEG pictures with ffmpeg: one process per
// picture over pipes, at most Concurrency alive at once (spares included,
// see Run). Decoding happens on the caller's goroutine, never on ingest's.
// It is safe for concurrent use.
type Snapshots struct {
	opts   SnapshotsOptions
	log    *slog.Logger
	m      *snapshotMetrics
	ffmpeg string    // resolved path; "" when unavailable
	dec    *decoders // nil when unavailable

	mu       sync.Mutex
	cache    map[string]cached
	inflight map[string]*decodeCall
}

type cached struct {
	snap Snapshot
	made time.Time
}

// decodeCall is a decode of a camera's latest keyframe that later callers
// wait for instead of starting their own.
type decodeCall struct {
	done chan struct{}
	snap Snapshot
	err  error
}

// NewSnapshots looks ffmpeg up. Without it, it logs one warning and every
// snapshot fails with ErrSnapshotsUnavailable; that is not an error here,
// so the rest of the service runs.
func NewSnapshots(opts SnapshotsOptions) (*Snapshots, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Snapshots{opts: opts, log: opts.Logger, m: newSnapshotMetrics(opts.Registerer),
		cache: map[string]cached{}, inflight: map[string]*decodeCall{}}
	path, err := exec.LookPath(opts.FFmpeg)
	if err != nil {
		s.log.Warn("ffmpeg not found: snapshots are unavailable (the snapshot endpoints answer 503); install Debian's ffmpeg or set snapshots.ffmpeg",
			"ffmpeg", opts.FFmpeg, "err", err)
	} else {
		s.ffmpeg = path
		s.dec = newDecoders(path, opts.Width, opts.Concurrency)
	}
	return s, nil
}

// Available reports whether ffmpeg was found.
func (s *Snapshots) Available() bool { return s.ffmpeg != "" }

// Latest returns a picture of the camera's latest keyframe, decoded at
// most CacheFor ago or of the keyframe still current.
func (s *Snapshots) Latest(ctx context.Context, camera string) (Snapshot, error) {
	if !s.Available() {
		return Snapshot{}, ErrSnapshotsUnavailable
	}
	f := s.opts.Feeds.lookup(camera)
	if f == nil {
		return Snapshot{}, fmt.Errorf("camera %s: %w", camera, ErrNoKeyframe)
	}
	k, _, ok := f.Keyframe()
	if !ok {
		return Snapshot{}, fmt.Errorf("camera %s: %w", camera, ErrNoKeyframe)
	}
	now := s.opts.Now()
	s.mu.Lock()
	if c, ok := s.cache[camera]; ok && (c.snap.At.Equal(k.Unit.Wall) || now.Sub(c.made) < s.opts.CacheFor) {
		s.mu.Unlock()
		return c.snap, nil
	}
	if call, ok := s.inflight[camera]; ok {
		s.mu.Unlock()
		select {
		case <-call.done:
			return call.snap, call.err
		case <-ctx.Done():
			return Snapshot{}, ctx.Err()
		}
	}
	call := &decodeCall{done: make(chan struct{})}
	s.inflight[camera] = call
	s.mu.Unlock()

	call.snap, call.err = s.Keyframe(ctx, k)
	s.mu.Lock()
	delete(s.inflight, camera)
	if call.err == nil {
		s.cache[camera] = cached{snap: call.snap, made: s.opts.Now()}
	}
	s.mu.Unlock()
	close(call.done)
	return call.snap, call.err
}

// After returns a picture of camera's first live keyframe at or after t,
// waiting up to within past t for it; else of the last one before t; else
// of the recorded keyframe at or before t.
func (s *Snapshots) After(ctx context.Context, camera string, t time.Time, within time.Duration) (Snapshot, error) {
	if !s.Available() {
		return Snapshot{}, ErrSnapshotsUnavailable
	}
	k, ok, err := s.KeyframeAfter(ctx, camera, t, within)
	if err != nil {
		return Snapshot{}, err
	}
	if ok {
		return s.Keyframe(ctx, k)
	}
	return s.At(ctx, camera, t)
}

// KeyframeAfter is the waiting half of After, without decoding: camera's
// first live keyframe at or after t (waiting up to within past t), else the
// last one before t; ok is false when the camera has no live keyframe. It
// costs no more than holding the unit, so a caller that must not miss the
// moment (an alert's picture) takes it at once and decodes it later.
func (s *Snapshots) KeyframeAfter(ctx context.Context, camera string, t time.Time, within time.Duration) (k Keyframe, ok bool, err error) {
	f := s.opts.Feeds.lookup(camera)
	deadline := t.Add(within)
	var before *Keyframe
	for f != nil {
		k, next, ok := f.Keyframe()
		if ok && !k.Unit.Wall.Before(t) {
			return k, true, nil
		}
		if ok {
			before = &k
		}
		wait := deadline.Sub(s.opts.Now())
		if wait <= 0 {
			break
		}
		timer := time.NewTimer(wait)
		select {
		case <-next:
			timer.Stop()
			continue
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return Keyframe{}, false, ctx.Err()
		}
		break
	}
	if before != nil {
		return *before, true, nil
	}
	return Keyframe{}, false, nil
}

// At returns a picture of the recorded keyframe at or before t.
func (s *Snapshots) At(ctx context.Context, camera string, t time.Time) (Snapshot, error) {
	if !s.Available() {
		return Snapshot{}, ErrSnapshotsUnavailable
	}
	if s.opts.Recordings == nil {
		return Snapshot{}, fmt.Errorf("camera %s: %w", camera, ErrNoFootage)
	}
	rc, at, err := s.opts.Recordings.KeyframeAt(ctx, camera, t)
	if err != nil {
		return Snapshot{}, err
	}
	defer rc.Close()
	jpeg, err := s.decode(ctx, "mp4", rc)
	if err != nil {
		return Snapshot{}, fmt.Errorf("camera %s: snapshot at %s: %w", camera, t.Format(time.RFC3339), err)
	}
	return Snapshot{Camera: camera, At: at, JPEG: jpeg}, nil
}

// Keyframe decodes one keyframe.
func (s *Snapshots) Keyframe(ctx context.Context, k Keyframe) (Snapshot, error) {
	if !s.Available() {
		return Snapshot{}, ErrSnapshotsUnavailable
	}
	format := "h264"
	if k.Video.Codec == media.H265 {
		format = "hevc"
	}
	jpeg, err := s.decode(ctx, format, bytes.NewReader(annexB(k)))
	if err != nil {
		return Snapshot{}, fmt.Errorf("camera %s: snapshot: %w", k.Camera, err)
	}
	return Snapshot{Camera: k.Camera, At: k.Unit.Wall, JPEG: jpeg}, nil
}

// annexB writes the keyframe as an elementary stream ffmpeg can decode on
// its own: parameter sets first, then the unit's NAL units.
func annexB(k Keyframe) []byte {
	var b bytes.Buffer
	startCode := []byte{0, 0, 0, 1}
	for _, ps := range [][]byte{k.Video.VPS, k.Video.SPS, k.Video.PPS} {
		if len(ps) > 0 {
			b.Write(startCode)
			b.Write(ps)
		}
	}
	for _, n := range k.Unit.Payload {
		b.Write(startCode)
		b.Write(n)
	}
	return b.Bytes()
}

// maxJPEG bounds what ffmpeg may write: a 640-pixel JPEG is tens of KiB.
const maxJPEG = 16 << 20

// decode runs one ffmpeg over pipes: in on stdin, one JPEG frame on stdout.
func (s *Snapshots) decode(ctx context.Context, format string, in io.Reader) ([]byte, error) {
	d, err := s.dec.take(ctx, format, s.opts.Timeout)
	if err != nil {
		if errors.Is(err, ErrBusy) {
			s.m.snapshots.WithLabelValues("error").Inc()
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, err
		}
		s.m.snapshots.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	if d.spare {
		s.m.processes.WithLabelValues("spare").Inc()
	} else {
		s.m.processes.WithLabelValues("started").Inc()
	}
	started := time.Now()
	jpeg, err := d.run(ctx, in, s.opts.Timeout)
	if err != nil {
		s.m.snapshots.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	s.dec.worked()
	s.m.snapshots.WithLabelValues("ok").Inc()
	s.m.snapTime.Observe(time.Since(started).Seconds())
	return jpeg, nil
}

// Run keeps spare ffmpeg processes started, waiting for the next
// snapshot's keyframe, in the slots not in use, until ctx ends; then it
// ends them and returns once they have exited. Without Run every snapshot
// starts its own process. Without ffmpeg Run only waits for ctx.
func (s *Snapshots) Run(ctx context.Context) error {
	if !s.Available() {
		<-ctx.Done()
		return nil
	}
	poke := make(chan struct{}, 1)
	s.dec.keepSpares(func() {
		select {
		case poke <- struct{}{}:
		default:
		}
	})
	defer s.dec.closeSpares()
	for {
		if err := s.dec.refill(); err != nil {
			s.log.Warn("no spare ffmpeg started; snapshots start their own until one succeeds", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poke:
		}
	}
}

// limitedBuffer keeps the first max bytes written and fails after them.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, fmt.Errorf("output larger than %d bytes", b.max)
	}
	return b.Buffer.Write(p)
}

// ServeHTTP answers GET /api/v1/cameras/{id}/snapshot[?at=T] with a JPEG.
// Who may ask for ?at is the router's business.
func (s *Snapshots) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("id")
	if !cameraIDPattern.MatchString(camera) || !s.opts.Known(camera) {
		httpx.Error(w, http.StatusNotFound, "not_found", "no camera "+camera)
		return
	}
	if !s.Available() {
		httpx.Error(w, http.StatusServiceUnavailable, "snapshots_unavailable", "snapshots are unavailable on this node: ffmpeg was not found at start")
		return
	}
	var snap Snapshot
	var err error
	var at time.Time
	if q := r.URL.Query().Get("at"); q != "" {
		t, perr := time.Parse(time.RFC3339Nano, q)
		if perr != nil {
			httpx.Error(w, http.StatusBadRequest, "bad_time", "at: want an RFC 3339 time, got "+strconv.Quote(q))
			return
		}
		at = t
		snap, err = s.At(r.Context(), camera, t)
	} else {
		snap, err = s.Latest(r.Context(), camera)
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrNoKeyframe):
		httpx.Error(w, http.StatusConflict, "camera_offline", "camera "+camera+" is not streaming")
		return
	case errors.Is(err, ErrNoFootage):
		httpx.Error(w, http.StatusNotFound, "no_footage", err.Error())
		return
	case errors.Is(err, ErrBusy):
		w.Header().Set("Retry-After", "1")
		httpx.Error(w, http.StatusServiceUnavailable, "busy", "snapshot decoders are busy; try again")
		return
	case r.Context().Err() != nil:
		return // the client went away
	default:
		s.log.Error("snapshot failed", "camera", camera, "err", err)
		httpx.Error(w, http.StatusInternalServerError, "snapshot_failed", "could not decode a snapshot")
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(snap.JPEG)))
	w.Header().Set("Cache-Control", "private, max-age=1")
	w.Header().Set("Last-Modified", snap.At.UTC().Format(http.TimeFormat))
	w.Header().Set("X-Snapshot-At", snap.At.UTC().Format(time.RFC3339Nano))
	_, _ = w.Write(snap.JPEG)
	if !at.IsZero() && s.opts.OnRecorded != nil {
		s.opts.OnRecorded(r, snap, at)
	}
}
