package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"vigil/internal/media"
)

// Camera statuses reported by Status.
const (
	StatusConnecting = "connecting"
	StatusOnline     = "online"
	StatusOffline    = "offline"
	StatusDisabled   = "disabled"
)

// CameraStatus is the state of one registered camera, as GET /cameras shows it.
type CameraStatus struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Site        string     `json:"site"`
	Grid        string     `json:"grid"`
	Status      string     `json:"status"`
	Since       time.Time  `json:"since"`
	LastFrameAt *time.Time `json:"last_frame_at"`
	Codec       string     `json:"codec"`
	Width       int        `json:"width"`
	Height      int        `json:"height"`
	BitrateBps  int64      `json:"bitrate_bps"`
	FPS         float64    `json:"fps"`
	// Recording is true while the recorder was handed frames of the camera
	// in the last RecordingWindow; false for a camera that does not
	// record, never connected or is in an outage.
	Recording bool `json:"recording"`
	// Reconnects counts sessions that came online after an earlier one;
	// Attempts counts every connection attempt, the first included.
	Reconnects int `json:"reconnects"`
	Attempts   int `json:"attempts"`
	// LastError is why the last session or attempt failed; null until one
	// did. It stays after the camera is back, with its time.
	LastError *LastError `json:"last_error"`
}

// RecordingWindow is how recently frames must have been written for a
// camera to show recording.
const RecordingWindow = 10 * time.Second

// ApplyResult lists the camera IDs a reload touched. Changed holds every
// camera whose registration changed; Restarted is the part of Changed whose
// stream changed (URL, credentials, transport, ONVIF metadata or enabled):
// those end their session and start a new one. The rest of Changed only got
// a new name, site or grid and keep streaming.
type ApplyResult struct {
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"`
	Restarted []string `json:"restarted"`
}

// ErrUnknownCamera is returned for a camera ID that is not registered.
var ErrUnknownCamera = errors.New("unknown camera")

// Streams pulls every enabled camera and fans its media out to subscribers.
// Create it with New, register cameras with Apply (before or while Run runs)
// and call Run once.
type Streams struct {
	opts Options
	log  *slog.Logger
	m    *metrics
	wake chan struct{}

	mu        sync.Mutex
	order     []string          // registered IDs in registration order
	desired   map[string]Camera // registered cameras
	cams      map[string]*camera
	feeds     map[string]*feed
	subs      []*subscriber
	meta      []*metaSub
	recording map[string]bool
	wrote     map[string]time.Time // when frames last went to the recorder
	since     map[string]time.Time // for disabled and not yet started cameras
}

// New returns Streams configured by opts.
func New(opts Options) (*Streams, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Streams{
		opts:      opts,
		log:       opts.Logger.With("component", "ingest"),
		m:         newMetrics(opts.Registerer),
		wake:      make(chan struct{}, 1),
		desired:   map[string]Camera{},
		cams:      map[string]*camera{},
		feeds:     map[string]*feed{},
		recording: map[string]bool{},
		wrote:     map[string]time.Time{},
		since:     map[string]time.Time{},
	}, nil
}

func (s *Streams) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Apply replaces the registered cameras: added ones start, removed ones stop,
// ones whose stream changed restart, and the others keep streaming, taking
// over a new name, site or grid in place (Status shows it at once, metrics
// and OnState once Run has seen the change). An invalid list changes nothing
// and returns every problem found.
func (s *Streams) Apply(cameras []Camera) (ApplyResult, error) {
	var errs []error
	next := make(map[string]Camera, len(cameras))
	order := make([]string, 0, len(cameras))
	for _, c := range cameras {
		if c.Transport == "" {
			c.Transport = TransportAuto
		}
		if err := c.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := next[c.ID]; dup {
			errs = append(errs, fmt.Errorf("camera %s: duplicate id", c.ID))
			continue
		}
		next[c.ID] = c
		order = append(order, c.ID)
	}
	if err := errors.Join(errs...); err != nil {
		return ApplyResult{}, err
	}
	var res ApplyResult
	s.mu.Lock()
	now := s.opts.Now()
	for _, id := range order {
		old, ok := s.desired[id]
		switch {
		case !ok:
			res.Added = append(res.Added, id)
			s.since[id] = now
		case old != next[id]:
			res.Changed = append(res.Changed, id)
			if !old.sameStream(next[id]) {
				res.Restarted = append(res.Restarted, id)
				s.since[id] = now
			}
		}
	}
	for _, id := range s.order {
		if _, ok := next[id]; !ok {
			res.Removed = append(res.Removed, id)
			delete(s.since, id)
			delete(s.recording, id)
			delete(s.wrote, id)
		}
	}
	s.desired, s.order = next, order
	s.mu.Unlock()
	s.poke()
	return res, nil
}

// Run pulls the registered cameras until ctx ends, then stops them all and
// returns once every goroutine it started has returned. It returns nil after
// a clean shutdown.
func (s *Streams) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	type running struct {
		cam    *camera
		cancel context.CancelFunc
		done   chan struct{}
	}
	live := map[string]*running{}
	for {
		s.mu.Lock()
		desired := s.desired
		for _, sub := range s.subs {
			if !sub.started {
				sub.started = true
				done := make(chan struct{})
				sub.done = done
				g.Go(func() error { return sub.run(gctx, done) })
			}
		}
		for _, m := range s.meta {
			if !m.started {
				m.started = true
				g.Go(func() error { return m.run(gctx) })
			}
		}
		s.mu.Unlock()

		// Stop removed, disabled and changed cameras first, all at once;
		// cameras that only got a new name, site or grid keep their session.
		var stopping []string
		for id, r := range live {
			if c, ok := desired[id]; !ok || !c.Enabled || !c.sameStream(r.cam.spec) {
				r.cancel()
				stopping = append(stopping, id)
			} else {
				r.cam.relabel(c)
			}
		}
		for _, id := range stopping {
			<-live[id].done
			delete(live, id)
			s.mu.Lock()
			delete(s.cams, id)
			s.mu.Unlock()
			s.m.forget(id) // a changed camera restarts below with fresh series
		}
		for id, c := range desired {
			if !c.Enabled || live[id] != nil {
				continue
			}
			cam := s.newCamera(c)
			cctx, cancel := context.WithCancel(gctx)
			r := &running{cam: cam, cancel: cancel, done: make(chan struct{})}
			live[id] = r
			s.mu.Lock()
			s.cams[id] = cam
			s.mu.Unlock()
			g.Go(func() error {
				defer close(r.done)
				return cam.run(cctx)
			})
		}
		select {
		case <-gctx.Done():
			for id, r := range live {
				r.cancel()
				delete(live, id)
			}
			err := g.Wait()
			s.mu.Lock()
			for _, sub := range s.subs {
				sub.started = false
			}
			for _, m := range s.meta {
				m.started = false
			}
			s.mu.Unlock()
			return err
		case <-s.wake:
		}
	}
}

func (s *Streams) feedLocked(id string) *feed {
	f := s.feeds[id]
	if f == nil {
		f = &feed{camera: id}
		s.feeds[id] = f
	}
	return f
}

func (s *Streams) newCamera(c Camera) *camera {
	s.mu.Lock()
	defer s.mu.Unlock()
	label := Camera{Name: c.Name, Site: c.Site, Grid: c.Grid}
	c.Name, c.Site, c.Grid = "", "", ""
	return &camera{
		spec:  c,
		label: label,
		s:     s,
		feed:  s.feedLocked(c.ID),
		log:   s.log.With("camera", c.ID),

		mBytes:  s.m.bytes.WithLabelValues(c.ID),
		mFrames: s.m.frames.WithLabelValues(c.ID),
	}
}

// unsubscribeWait bounds how long ending a subscription waits for its sink
// to take the units still queued for it.
const unsubscribeWait = 5 * time.Second

// Subscribe delivers the media of camera to sink through a queue of queue
// units (64 when queue <= 0) drained by a goroutine of its own; name labels
// the subscriber in metrics. The camera need not be registered yet. A full
// queue drops units (counted in vigil_ingest_dropped_total) and the sink
// learns of it through OnBreak("dropped", n) before the next unit it gets.
// Payloads are copied out of the RTP buffers once and shared by all sinks of
// the camera: a sink may keep them but must not modify them.
//
// The returned function ends the subscription: nothing is queued after it is
// called, what is already queued is delivered, and it returns once the sink
// has taken the last of it, so the caller may close what the sink writes
// to. If the sink takes longer than 5 s it logs that and returns anyway; the
// rest is still delivered, later. Sink methods are never called
// concurrently, and not after the function returned in time.
//
// Ending the Run that drains the queue (its context ending) also delivers
// what is queued before Run returns.
func (s *Streams) Subscribe(camera, name string, sink media.Sink, queue int) (unsubscribe func()) {
	if queue <= 0 {
		queue = 64
	}
	sub := &subscriber{
		name:    name,
		sink:    sink,
		queue:   make(chan delivery, queue),
		quit:    make(chan struct{}),
		dropped: func() { s.m.dropped.WithLabelValues(camera, name).Inc() },
	}
	s.mu.Lock()
	f := s.feedLocked(camera)
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	f.add(sub)
	s.poke()
	return func() {
		f.remove(sub) // nothing is queued from here on
		s.mu.Lock()
		if i := slices.Index(s.subs, sub); i >= 0 {
			s.subs = slices.Delete(s.subs, i, i+1)
		}
		// Out of s.subs, the subscriber is not started again: either its
		// goroutine runs (or ran) and closes done, or nobody drains it.
		running, done := sub.started, sub.done
		s.mu.Unlock()
		sub.stop()
		if running {
			t := time.NewTimer(unsubscribeWait)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				s.log.Warn("subscriber still taking its queued units; ending its subscription without waiting",
					"camera", camera, "subscriber", name, "waited", unsubscribeWait)
				return
			}
		}
		// What the goroutine left behind (units queued after a Run ended),
		// or everything when no Run drained this subscription.
		sub.drain()
	}
}

// SubscribeMetadata delivers the ONVIF metadata documents of every camera
// registered with ONVIFMetadata to sink, through a queue of 256 documents
// drained by a goroutine of its own, so a slow consumer never stalls a
// camera's reader; documents that find the queue full are dropped and
// counted in vigil_ingest_metadata_dropped_total. The returned function
// ends the subscription.
func (s *Streams) SubscribeMetadata(sink MetadataSink) (unsubscribe func()) {
	sub := &metaSub{sink: sink, queue: make(chan metaDoc, 256), quit: make(chan struct{})}
	s.mu.Lock()
	s.meta = append(s.meta, sub)
	s.mu.Unlock()
	s.poke()
	return func() {
		sub.once.Do(func() { close(sub.quit) })
		s.mu.Lock()
		defer s.mu.Unlock()
		if i := slices.Index(s.meta, sub); i >= 0 {
			s.meta = slices.Delete(s.meta, i, i+1)
		}
	}
}

type metaDoc struct {
	camera string
	doc    []byte
	at     time.Time
}

// metaSub is one metadata subscription with its queue.
type metaSub struct {
	sink    MetadataSink
	queue   chan metaDoc
	quit    chan struct{}
	once    sync.Once
	started bool // guarded by Streams.mu
}

func (m *metaSub) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.quit:
			return nil
		case d := <-m.queue:
			m.sink.OnMetadata(d.camera, d.doc, d.at)
		}
	}
}

// publishMetadata offers a document to every metadata subscriber without
// blocking and returns how many subscribers dropped it.
func (s *Streams) publishMetadata(camera string, doc []byte, at time.Time) (dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.meta {
		select {
		case m.queue <- metaDoc{camera, doc, at}:
		default:
			dropped++
		}
	}
	return dropped
}

// SetRecording records whether camera is configured to be recorded, for
// Status; it shows recording only while Wrote is called as well.
func (s *Streams) SetRecording(camera string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.desired[camera]; ok {
		s.recording[camera] = on
		if !on {
			delete(s.wrote, camera)
		}
	}
}

// Wrote records that the recorder was just handed a video frame of camera.
func (s *Streams) Wrote(camera string) {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recording[camera] {
		s.wrote[camera] = now
	}
}

// Status returns the status of one registered camera, or ErrUnknownCamera.
func (s *Streams) Status(id string) (CameraStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.desired[id]
	if !ok {
		return CameraStatus{}, fmt.Errorf("camera %s: %w", id, ErrUnknownCamera)
	}
	return s.statusLocked(c), nil
}

// Statuses returns the status of every registered camera in registration order.
func (s *Streams) Statuses() []CameraStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CameraStatus, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.statusLocked(s.desired[id]))
	}
	return out
}

func (s *Streams) statusLocked(c Camera) CameraStatus {
	now := s.opts.Now()
	wrote, ok := s.wrote[c.ID]
	st := CameraStatus{ID: c.ID, Name: c.Name, Site: c.Site, Grid: c.Grid,
		Status: StatusConnecting, Since: s.since[c.ID],
		Recording: s.recording[c.ID] && ok && now.Sub(wrote) < RecordingWindow}
	if !c.Enabled {
		st.Status = StatusDisabled
		return st
	}
	if cam := s.cams[c.ID]; cam != nil && cam.spec.sameStream(c) {
		cam.fill(&st, now)
	}
	return st
}
