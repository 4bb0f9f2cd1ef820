package live

import (
	"sync"
	"time"

	"vigil/internal/media"
)

// GOP limits: a camera whose GOP grows past them (a very long keyframe
// interval) keeps no cache until its next keyframe; viewers joining then
// wait for that keyframe instead.
// They bound a node's memory for live starts to 8 MiB a camera: a stream of
// garbage, with no keyframe, must not hold more.
const (
	maxGOPUnits = 750     // 30 s of 25 fps video
	maxGOPBytes = 8 << 20 // 8 MiB: 16 s of a 4 Mbit/s camera, above the longest usual GOP
)

// Feeds holds the Feed of every camera. It is safe for concurrent use.
type Feeds struct {
	now func() time.Time

	mu    sync.Mutex
	feeds map[string]*Feed
}

// NewFeeds returns an empty set of feeds; now is the clock (nil: time.Now).
func NewFeeds(now func() time.Time) *Feeds {
	if now == nil {
		now = time.Now
	}
	return &Feeds{now: now, feeds: map[string]*Feed{}}
}

// Feed returns the feed of camera, creating it on first use.
func (fs *Feeds) Feed(camera string) *Feed {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.feeds[camera]
	if f == nil {
		f = &Feed{camera: camera, now: fs.now, viewers: map[*viewer]struct{}{}, keyWait: make(chan struct{})}
		fs.feeds[camera] = f
	}
	return f
}

// lookup returns the feed of camera, or nil.
func (fs *Feeds) lookup(camera string) *Feed {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.feeds[camera]
}

// Feed is the live state of one camera: its current stream and GOP and the
// viewers that follow it. It is the media.Sink ingest delivers the camera
// to; ingest calls it from one goroutine, viewers and snapshots read it
// from others.
type Feed struct {
	camera string
	now    func() time.Time

	mu       sync.Mutex
	stream   *media.Stream // nil while the camera is offline
	gop      []*unit       // from the last keyframe; nil when none or too long
	gopBytes int
	viewers  map[*viewer]struct{}
	keyWait  chan struct{} // closed and replaced at every keyframe
}

var _ media.Sink = (*Feed)(nil)

// OnStream starts a new session: the old GOP no longer decodes with it.
func (f *Feed) OnStream(s media.Stream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stream = &s
	f.gop, f.gopBytes = nil, 0
	f.deliver(item{stream: f.stream})
}

// OnAccessUnit keeps the unit in the GOP and hands it to every viewer.
// While the feed has viewers, a video unit is cut into RTP payloads here,
// once for all of them. Payloads are shared, never modified.
func (f *Feed) OnAccessUnit(au media.AccessUnit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stream == nil {
		return
	}
	u := &unit{au: au}
	if au.Kind == media.Video && len(f.viewers) > 0 {
		u.rtp = videoPayloads(f.stream, &u.au)
	}
	size := 0
	for _, p := range au.Payload {
		size += len(p)
	}
	switch {
	case au.Kind == media.Video && au.Key:
		f.gop = append(f.gop[:0:0], u)
		f.gopBytes = size
		close(f.keyWait)
		f.keyWait = make(chan struct{})
	case f.gop != nil:
		if len(f.gop) >= maxGOPUnits || f.gopBytes+size > maxGOPBytes {
			f.gop, f.gopBytes = nil, 0
		} else {
			f.gop = append(f.gop, u)
			f.gopBytes += size
		}
	}
	if len(f.viewers) == 0 {
		return
	}
	f.deliver(item{u: u, in: f.now()})
}

// deliver queues it for the viewers still catching up and writes it to
// the direct ones, all within one hold of their shared socket; f.mu held,
// so a viewer that leaves is not written to after leave returns.
func (f *Feed) deliver(it item) {
	var out *sendBatch
	for v := range f.viewers {
		if !v.direct {
			v.offer(it)
			continue
		}
		if out == nil {
			out = v.out
			out.hold()
		}
		v.handle(it)
	}
	if out != nil {
		out.release()
	}
}

// goDirect turns v direct if nothing waits in its queue: the feed writes
// to it from now on. Called by v's own goroutine.
func (f *Feed) goDirect(v *viewer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(v.queue) > 0 {
		return false
	}
	if _, ok := f.viewers[v]; !ok {
		return false // it left: run waits for stop either way
	}
	v.direct = true
	return true
}

// unit is an access unit as the feed hands it to viewers; immutable.
type unit struct {
	au media.AccessUnit
	// rtp holds a video unit's RTP payloads, cut once for every viewer;
	// nil for audio and for units that arrived while nobody watched.
	rtp [][]byte
}

// OnBreak drops the GOP: after a disconnect the camera is offline, after
// dropped units the GOP no longer decodes.
func (f *Feed) OnBreak(reason string, dropped int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gop, f.gopBytes = nil, 0
	if reason != "dropped" {
		f.stream = nil
	}
	f.deliver(item{brk: true})
}

// Keyframe is a keyframe with what decoding it needs.
type Keyframe struct {
	Camera string
	Video  media.VideoTrack
	Unit   media.AccessUnit
}

// Online reports whether the camera is streaming, and its current stream.
func (f *Feed) Online() (media.Stream, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stream == nil {
		return media.Stream{}, false
	}
	return *f.stream, true
}

// Keyframe returns the camera's latest keyframe and a channel closed when
// the next one arrives. ok is false when the camera is offline or no
// keyframe arrived since its stream started.
func (f *Feed) Keyframe() (k Keyframe, next <-chan struct{}, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stream == nil || len(f.gop) == 0 || f.stream.Video == nil {
		return Keyframe{}, f.keyWait, false
	}
	return Keyframe{Camera: f.camera, Video: *f.stream.Video, Unit: f.gop[0].au}, f.keyWait, true
}

// join adds v and returns what it starts with: the stream and the GOP so
// far. From then on v is offered every unit.
func (f *Feed) join(v *viewer) (*media.Stream, []*unit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.viewers[v] = struct{}{}
	return f.stream, f.gop
}

func (f *Feed) leave(v *viewer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.viewers, v)
}
