// Package recorder owns Vigil's recordings on disk: it writes each camera's
// media as crash-safe fMP4 segments with a per-day JSON-lines index, lists
// segments and gaps (Catalog), repairs the segment a crash cut short, deletes
// old recordings by age and space while honouring evidence holds, and raises
// health signals when storage fails. It does not pull streams (ingest does)
// nor serve HTTP (recorder/footageapi does).
package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/errgroup"
)

// Fsync policies.
const (
	FsyncPart    = "part"    // fsync after every part: at most one part lost in a crash
	FsyncSegment = "segment" // fsync when a segment closes
	FsyncNever   = "never"   // leave it to the kernel
)

// Health kinds passed to Options.OnHealth.
const (
	HealthStorageFull      = "storage_full"
	HealthRecordingFailure = "recording_failure"
)

// Options configures a Recorder. Zero values take the documented defaults.
type Options struct {
	Dir     string        // required: the storage root
	Node    string        // this node's ID in a cluster, written into index lines; "" for a single node
	Segment time.Duration // target segment length; default 60s
	Part    time.Duration // part length, flushed as one moof+mdat; default 1s
	Fsync   string        // FsyncPart (default), FsyncSegment or FsyncNever
	// Retain is how long a camera's recordings are kept when the camera
	// sets no retention of its own; 0 keeps them until space runs out
	// (MaxBytes, MinFreeBytes). The configuration's default is 30 days.
	Retain time.Duration
	// MaxBytes caps the recordings' total size; 0 means no cap.
	MaxBytes int64
	// MinFreeBytes is the free space retention keeps on Dir's file system;
	// 0 means no floor.
	MinFreeBytes int64
	// Registerer receives the recorder's metrics; nil means a private registry.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock for retention, holds and retries; default time.Now.
	Now func() time.Time
	// OnHealth is told when a health signal starts or ends. camera is ""
	// for storage-wide signals. It is called from recording goroutines and
	// must not block.
	OnHealth func(camera, kind string, active bool, detail string)
	// SweepInterval is how often Run applies retention; default 10s.
	SweepInterval time.Duration
	// RetryInterval is how long a camera waits after a write error before
	// it tries a new segment; default 5s.
	RetryInterval time.Duration
	// FS is the file layer of the segment writer; default the OS. For tests.
	FS FS
	// Statfs reports the free and total bytes of Dir's file system; default
	// statfs(2). For tests.
	Statfs func(dir string) (free, total int64, err error)
	// VerifyEvery is how often Run's verifier starts a pass that re-hashes
	// every closed segment against its index line; default 24h.
	VerifyEvery time.Duration
	// VerifyRate caps the verifier's reading in bytes per second; default
	// 20 MB/s. Negative means no cap (tests, drills).
	VerifyRate int64
}

func (o *Options) validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("dir: required"))
	}
	if o.Segment == 0 {
		o.Segment = 60 * time.Second
	}
	if o.Part == 0 {
		o.Part = time.Second
	}
	if o.Segment < 0 || o.Part < 0 || o.Retain < 0 {
		errs = append(errs, errors.New("segment, part and retain must not be negative"))
	}
	if o.Part > o.Segment {
		errs = append(errs, fmt.Errorf("part %v: longer than segment %v", o.Part, o.Segment))
	}
	switch o.Fsync {
	case "":
		o.Fsync = FsyncPart
	case FsyncPart, FsyncSegment, FsyncNever:
	default:
		errs = append(errs, fmt.Errorf("fsync %q: must be part, segment or never", o.Fsync))
	}
	if o.MaxBytes < 0 || o.MinFreeBytes < 0 {
		errs = append(errs, errors.New("max_bytes and min_free_bytes must not be negative"))
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OnHealth == nil {
		o.OnHealth = func(string, string, bool, string) {}
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = 10 * time.Second
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 5 * time.Second
	}
	if o.FS == nil {
		o.FS = osFS{}
	}
	if o.Statfs == nil {
		o.Statfs = statfs
	}
	if o.VerifyEvery < 0 {
		errs = append(errs, errors.New("verify_every must not be negative"))
	}
	if o.VerifyEvery == 0 {
		o.VerifyEvery = DefaultVerifyEvery
	}
	if o.VerifyRate == 0 {
		o.VerifyRate = DefaultVerifyRate
	}
	return errors.Join(errs...)
}

// Recorder records cameras into Dir. Create it with New; call Camera for
// each camera to record and Run for retention.
type Recorder struct {
	opts    Options
	fs      FS
	log     *slog.Logger
	catalog *Catalog
	holds   *holdStore
	m       metrics

	mu      sync.Mutex
	writers map[string]*Writer
	retain  map[string]time.Duration

	indexMu sync.Mutex // serializes index appends with retention's rewrites
	// torn holds index paths whose last append failed and may have left a
	// partial line; the next append starts on a new line.
	torn map[string]bool
	// tailChecked holds index paths whose last byte was read from disk
	// since start: a tail torn before a restart is repaired by the first
	// append, not only one torn while this process ran.
	tailChecked map[string]bool

	usageMu sync.Mutex
	usage   map[dayKey]int64 // indexed bytes per camera-day, once known

	holdMu       sync.Mutex      // serializes placing holds with retrying pending ones
	pendingHolds map[string]Hold // holds that could not be written yet, by ID
	holdKick     chan struct{}   // a hold became pending

	healthMu  sync.Mutex
	fullCams  map[string]bool // cameras whose last write failed with ENOSPC
	sweepFull bool            // retention could not reach MinFreeBytes
}

type metrics struct {
	segments, bytes, writeErrors *prometheus.CounterVec
	deleted                      *prometheus.CounterVec
	used, free                   prometheus.Gauge
	verified, integrityFailures  prometheus.Counter
}

// New opens the recordings in opts.Dir, repairs segments a crash left
// unindexed and loads the evidence holds. It reads no day index in full, so
// it returns quickly however large the catalog is.
func New(opts Options) (*Recorder, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	f := promauto.With(opts.Registerer)
	r := &Recorder{
		opts:         opts,
		fs:           opts.FS,
		log:          opts.Logger.With("component", "recorder"),
		writers:      make(map[string]*Writer),
		retain:       make(map[string]time.Duration),
		fullCams:     make(map[string]bool),
		usage:        make(map[dayKey]int64),
		torn:         make(map[string]bool),
		tailChecked:  make(map[string]bool),
		pendingHolds: make(map[string]Hold),
		holdKick:     make(chan struct{}, 1),
		m: metrics{
			segments:    f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_recorder_segments_total", Help: "Segments closed and indexed."}, []string{"camera"}),
			bytes:       f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_recorder_bytes_total", Help: "Bytes written to segments."}, []string{"camera"}),
			writeErrors: f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_recorder_write_errors_total", Help: "Failed segment or index writes."}, []string{"camera"}),
			deleted:     f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_retention_deleted_segments_total", Help: "Segments deleted by retention."}, []string{"reason"}),
			used:        f.NewGauge(prometheus.GaugeOpts{Name: "vigil_storage_used_bytes", Help: "Bytes of indexed recordings."}),
			free:        f.NewGauge(prometheus.GaugeOpts{Name: "vigil_storage_free_bytes", Help: "Free bytes on the recordings' file system."}),
			verified:    f.NewCounter(prometheus.CounterOpts{Name: "vigil_recording_verified_bytes_total", Help: "Bytes of closed segments the background verifier re-hashed."}),
			integrityFailures: f.NewCounter(prometheus.CounterOpts{Name: "vigil_recording_integrity_failures_total",
				Help: "Integrity checks of closed segments that failed (SHA-256 or size differs from the index), by the verifier, downloads and exports."}),
		},
	}
	r.catalog = newCatalog(opts.Dir, r.log)
	r.catalog.damage.now = opts.Now
	r.catalog.now = opts.Now
	r.catalog.open = r.openSegment
	r.catalog.started = r.segmentStarted
	r.catalog.damage.onCheck = r.m.integrityFailures.Inc
	r.catalog.damage.onFound = func(camera, segment, reason string) {
		r.health(camera, HealthRecordingTampered, true, fmt.Sprintf("segment %s: %s", segment, reason))
	}
	holds, err := openHolds(filepath.Join(opts.Dir, holdsFile), opts.Now, opts.FS)
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	r.holds = holds
	if err := r.recoverAll(); err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	return r, nil
}

// openSegment returns the segment camera's writer is writing, as far as
// its parts are on disk.
func (r *Recorder) openSegment(camera string) (Segment, bool) {
	r.mu.Lock()
	w := r.writers[camera]
	r.mu.Unlock()
	if w == nil {
		return Segment{}, false
	}
	if s := w.open.Load(); s != nil {
		return *s, true
	}
	return Segment{}, false
}

// segmentStarted returns the start of the segment camera's writer is
// writing, its first part on disk or not yet.
func (r *Recorder) segmentStarted(camera string) (time.Time, bool) {
	r.mu.Lock()
	w := r.writers[camera]
	r.mu.Unlock()
	if w == nil {
		return time.Time{}, false
	}
	if s := w.started.Load(); s != nil {
		return *s, true
	}
	return time.Time{}, false
}

// Catalog lists the recordings.
func (r *Recorder) Catalog() *Catalog { return r.catalog }

// Camera returns the writer recording camera id, creating it on first use.
// retain overrides Options.Retain for the camera when positive.
func (r *Recorder) Camera(id string, retain time.Duration) (*Writer, error) {
	if !ValidCameraID(id) {
		return nil, fmt.Errorf("camera %q: %w", id, errBadCameraID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if retain > 0 {
		r.retain[id] = retain
	} else {
		delete(r.retain, id)
	}
	if w, ok := r.writers[id]; ok {
		w.mu.Lock()
		closed := w.closed
		w.mu.Unlock()
		if !closed {
			return w, nil
		}
	}
	w := &Writer{
		r:           r,
		camera:      id,
		log:         r.log.With("camera", id),
		segments:    r.m.segments.WithLabelValues(id),
		bytes:       r.m.bytes.WithLabelValues(id),
		writeErrors: r.m.writeErrors.WithLabelValues(id),
	}
	r.writers[id] = w
	return w, nil
}

// CloseCamera closes camera id's segment, indexes it and forgets the writer.
func (r *Recorder) CloseCamera(id string) error {
	r.mu.Lock()
	w, ok := r.writers[id]
	delete(r.writers, id)
	r.mu.Unlock()
	if !ok {
		return nil
	}
	return w.Close()
}

// Close closes every camera's segment.
func (r *Recorder) Close() error {
	r.mu.Lock()
	ws := r.writers
	r.writers = make(map[string]*Writer)
	r.mu.Unlock()
	var errs []error
	for _, w := range ws {
		errs = append(errs, w.Close())
	}
	return errors.Join(errs...)
}

// Run applies retention every SweepInterval, verifies the closed segments
// every VerifyEvery and retries evidence holds that could not be written,
// until ctx ends, then closes every camera's
// segment. It returns nil on cancellation.
func (r *Recorder) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { r.runVerifier(ctx); return nil })
	g.Go(func() error { r.retryHolds(ctx); return nil })
	g.Go(func() error {
		t := time.NewTicker(r.opts.SweepInterval)
		defer t.Stop()
		for {
			if err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("retention sweep", "error", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	g.Wait() // every stage returns nil
	return r.Close()
}

func (r *Recorder) now() time.Time { return r.opts.Now() }

func (r *Recorder) retainFor(camera string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.retain[camera]; ok {
		return d
	}
	return r.opts.Retain
}

// health forwards a signal; storage_full is storage-wide (camera "") and
// stays active while any camera or retention reports a full disk.
func (r *Recorder) health(camera, kind string, active bool, detail string) {
	if kind != HealthStorageFull {
		r.opts.OnHealth(camera, kind, active, detail)
		return
	}
	r.healthMu.Lock()
	before := len(r.fullCams) > 0 || r.sweepFull
	if camera == "" {
		r.sweepFull = active
	} else if active {
		r.fullCams[camera] = true
	} else {
		delete(r.fullCams, camera)
	}
	after := len(r.fullCams) > 0 || r.sweepFull
	r.healthMu.Unlock()
	if before != after {
		r.opts.OnHealth("", kind, after, detail)
	}
}

// appendIndex appends s's line to its day index and fsyncs it.
func (r *Recorder) appendIndex(s Segment) error {
	day, file, _, err := ParseSegmentID(s.ID)
	if err != nil {
		return err
	}
	line := marshalIndexLine(s, file)
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	path := filepath.Join(r.opts.Dir, s.Camera, day, indexFile)
	if !r.tailChecked[path] {
		torn, err := tornTail(path)
		if err != nil {
			return err
		}
		r.torn[path] = r.torn[path] || torn
		r.tailChecked[path] = true
	}
	f, err := r.fs.Append(path)
	if err != nil {
		return err
	}
	if r.torn[path] {
		line = append([]byte{'\n'}, line...)
	}
	_, err = f.Write(line)
	r.torn[path] = err != nil
	if err == nil && r.opts.Fsync != FsyncNever {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	r.catalog.appended(s.Camera, day, s)
	r.addUsage(s.Camera, day, s.Bytes)
	return nil
}

// tornTail reports whether the index at path ends inside a line (a write
// cut by a crash or a full disk): the next line must start on a new one,
// or it is glued to the fragment and both are unreadable.
func tornTail(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return false, err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, st.Size()-1); err != nil {
		return false, err
	}
	return last[0] != '\n', nil
}
