package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"vigil/alerts"
	"vigil/internal/httpx"
	"vigil/live"
	"vigil/recorder"
)

// Alert snapshots: every new alert gets the picture of its moment — the
// first keyframe at or after its raised_at (within snapshotWithin, else the
// last one before) — stored as evidence beside the recordings, under
// <storage.dir>/.snapshots/<camera>/<day>/<time>Z.jpg (a name no camera ID
// can take), with its SHA-256 in the alert. The alert is delivered first;
// the snapshot follows as an updated change (reason snapshot). Alerts of one
// camera raised within snapshotShare of each other share one picture.
// Snapshot work runs on its own goroutines and never holds up ingest,
// recording or alert delivery: a full queue drops the job (counted).

const (
	snapshotWithin = 3 * time.Second
	snapshotShare  = 2 * time.Second
	snapshotQueue  = 256
	snapshotsDir   = ".snapshots"
)

type alertSnapshots struct {
	snaps  *live.Snapshots
	dir    string // <storage.dir>/.snapshots
	attach func(ctx context.Context, id string, s alerts.Snapshot) error
	now    func() time.Time
	log    *slog.Logger

	jobs    chan alerts.Alert
	taken   *prometheus.CounterVec
	latency prometheus.Histogram

	mu   sync.Mutex
	last map[string]*pendingSnapshot // by camera: the last picture taken or under way
}

func newAlertSnapshots(snaps *live.Snapshots, storageDir string, reg prometheus.Registerer, log *slog.Logger) *alertSnapshots {
	f := promauto.With(reg)
	s := &alertSnapshots{
		snaps: snaps, dir: filepath.Join(storageDir, snapshotsDir), now: time.Now, log: log,
		jobs: make(chan alerts.Alert, snapshotQueue), last: map[string]*pendingSnapshot{},
		taken: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_alert_snapshots_total", Help: "Alert snapshots, by result: stored, shared (with an alert raised just before), failed, dropped (queue full).",
		}, []string{"result"}),
		latency: f.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_alert_snapshot_seconds", Help: "From an alert's raise to its snapshot stored.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10},
		}),
	}
	for _, r := range []string{"stored", "shared", "failed", "dropped"} {
		s.taken.WithLabelValues(r)
	}
	return s
}

// raised is the engine's OnRaised hook: it queues the alert without
// waiting.
func (s *alertSnapshots) raised(a alerts.Alert) {
	if !s.snaps.Available() || a.Camera == "" {
		return
	}
	select {
	case s.jobs <- a:
	default:
		s.taken.WithLabelValues("dropped").Inc()
	}
}

// Run takes snapshots until ctx ends. Each alert's keyframe is taken at
// once, on a goroutine of its own (at most snapshotQueue at a time), so
// that a burst of alerts waiting for ffmpeg still gets the pictures of their
// moments: only the decoding waits its turn (live.Snapshots runs at most
// two ffmpeg at once).
func (s *alertSnapshots) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, snapshotQueue)
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-s.jobs:
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			p, owner := s.claim(a)
			wg.Go(func() {
				defer func() { <-slots }()
				if owner {
					p.snap, p.err = s.picture(ctx, a)
					close(p.done)
				}
				s.take(ctx, a, p, !owner)
			})
		}
	}
}

// pendingSnapshot is the picture of an alert, shared by the alerts of its
// camera raised within snapshotShare of it; done closes when snap or err
// is set.
type pendingSnapshot struct {
	raised time.Time // raised_at of the alert it is taken for
	done   chan struct{}
	snap   alerts.Snapshot
	err    error
}

// claim returns the picture a's camera already has under way or taken for
// an alert raised within snapshotShare of a, or a new one that a's
// goroutine takes (owner).
func (s *alertSnapshots) claim(a alerts.Alert) (p *pendingSnapshot, owner bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.last[a.Camera]; ok && a.RaisedAt.Sub(prev.raised).Abs() < snapshotShare {
		return prev, false
	}
	p = &pendingSnapshot{raised: a.RaisedAt, done: make(chan struct{})}
	s.last[a.Camera] = p
	return p, true
}

// take attaches p's picture to a once it is there.
func (s *alertSnapshots) take(ctx context.Context, a alerts.Alert, p *pendingSnapshot, shared bool) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return
	}
	if p.err != nil {
		s.taken.WithLabelValues("failed").Inc()
		if ctx.Err() == nil && !shared {
			s.log.Warn("alert snapshot not taken", "alert", a.ID, "camera", a.Camera, "err", p.err)
		}
		return
	}
	snap := p.snap
	snap.URL = "/api/v1/alerts/" + a.ID + "/snapshot"
	if err := s.attach(ctx, a.ID, snap); err != nil {
		s.taken.WithLabelValues("failed").Inc()
		s.log.Error("alert snapshot not recorded", "alert", a.ID, "camera", a.Camera, "err", err)
		return
	}
	if shared {
		s.taken.WithLabelValues("shared").Inc()
	} else {
		s.taken.WithLabelValues("stored").Inc()
	}
	s.latency.Observe(s.now().Sub(a.RaisedAt).Seconds())
}

// picture takes, decodes and stores the picture of a's moment: the live
// keyframe is held first, the decoding (which may wait for ffmpeg) after.
func (s *alertSnapshots) picture(ctx context.Context, a alerts.Alert) (alerts.Snapshot, error) {
	k, fromLive, err := s.snaps.KeyframeAfter(ctx, a.Camera, a.RaisedAt, snapshotWithin)
	if err != nil {
		return alerts.Snapshot{}, err
	}
	var pic live.Snapshot
	if fromLive {
		pic, err = s.snaps.Keyframe(ctx, k)
	} else {
		pic, err = s.snaps.At(ctx, a.Camera, a.RaisedAt)
	}
	if err != nil {
		return alerts.Snapshot{}, err
	}
	sum := sha256.Sum256(pic.JPEG)
	snap := alerts.Snapshot{At: pic.At.UTC(), SHA256: hex.EncodeToString(sum[:])}
	path := s.path(a.Camera, snap.At)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return alerts.Snapshot{}, err
	}
	if err := recorder.WriteFileAtomic(path, pic.JPEG); err != nil {
		return alerts.Snapshot{}, err
	}
	return snap, nil
}

// path is where the picture of camera at a keyframe's time is stored.
func (s *alertSnapshots) path(camera string, at time.Time) string {
	at = at.UTC()
	return filepath.Join(s.dir, camera, at.Format(time.DateOnly), at.Format("15-04-05.000")+"Z.jpg")
}

// serve is GET /api/v1/alerts/{id}/snapshot: the alert's stored picture,
// its bytes checked against the hash in the alert (evidence: a picture that
// no longer matches is refused, not served).
//
// A snapshot stored on another node of a cluster is fetched by elsewhere
// (nil: none) and checked here against the alert's hash like a local one;
// a node that reports its copy no longer matches is a 409 too.
func (s *alertSnapshots) serve(j alerts.Journal, elsewhere func(r *http.Request, id string) ([]byte, string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !alerts.ValidAlertID(id) {
			httpx.Error(w, http.StatusBadRequest, "bad_request", "not an alert ID")
			return
		}
		a, err := j.Get(r.Context(), id)
		switch {
		case errors.Is(err, alerts.ErrNotFound):
			httpx.Error(w, http.StatusNotFound, "not_found", "no alert "+id)
			return
		case err != nil:
			httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "the alert journal is unavailable; retry later")
			return
		case a.Snapshot == nil && !s.snaps.Available():
			httpx.Error(w, http.StatusServiceUnavailable, "snapshots_unavailable", "snapshots are unavailable on this node (no ffmpeg)")
			return
		case a.Snapshot == nil:
			httpx.Error(w, http.StatusNotFound, "no_snapshot", "alert "+id+" has no snapshot (yet)")
			return
		case !recorder.ValidCameraID(a.Camera):
			httpx.Error(w, http.StatusNotFound, "no_snapshot", "alert "+id+" has no snapshot")
			return
		}
		b, err := os.ReadFile(s.path(a.Camera, a.Snapshot.At))
		node := "" // this one
		if err != nil && elsewhere != nil {
			// stored by another node of the cluster: checked here too
			rb, from, perr := elsewhere(r, id)
			switch {
			case errors.Is(perr, errSnapshotMismatch):
				b, err, node = nil, nil, from
			case rb != nil:
				b, err, node = rb, nil, from
			}
		}
		if err != nil {
			httpx.Error(w, http.StatusNotFound, "no_snapshot", "the snapshot of alert "+id+" is not on this node")
			return
		}
		if sum := sha256.Sum256(b); b == nil || hex.EncodeToString(sum[:]) != a.Snapshot.SHA256 {
			s.log.Error("alert snapshot does not match its hash", "alert", id, "camera", a.Camera, "node", node)
			httpx.Error(w, http.StatusConflict, "integrity", fmt.Sprintf("the snapshot of alert %s no longer matches its SHA-256", id))
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("X-Vigil-SHA256", a.Snapshot.SHA256)
		w.Header().Set("Cache-Control", "private, max-age=86400, immutable")
		_, _ = w.Write(b)
	}
}
