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
	"regexp"
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

var alertIDPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

const (
	snapshotWithin  = 3 * time.Second
	snapshotShare   = 2 * time.Second
	snapshotWorkers = 2
	snapshotQueue   = 256
	snapshotsDir    = ".snapshots"
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
	last map[string]sharedSnapshot // by camera
}

type sharedSnapshot struct {
	raised time.Time // raised_at of the alert it was taken for
	snap   alerts.Snapshot
}

func newAlertSnapshots(snaps *live.Snapshots, storageDir string, reg prometheus.Registerer, log *slog.Logger) *alertSnapshots {
	f := promauto.With(reg)
	s := &alertSnapshots{
		snaps: snaps, dir: filepath.Join(storageDir, snapshotsDir), now: time.Now, log: log,
		jobs: make(chan alerts.Alert, snapshotQueue), last: map[string]sharedSnapshot{},
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

// Run takes snapshots until ctx ends.
func (s *alertSnapshots) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range snapshotWorkers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case a := <-s.jobs:
					s.take(ctx, a)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func (s *alertSnapshots) take(ctx context.Context, a alerts.Alert) {
	snap, shared, err := s.picture(ctx, a)
	if err != nil {
		s.taken.WithLabelValues("failed").Inc()
		if ctx.Err() == nil {
			s.log.Warn("alert snapshot not taken", "alert", a.ID, "camera", a.Camera, "err", err)
		}
		return
	}
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

// picture returns the stored picture for a, taking it unless an alert of the
// same camera raised within snapshotShare has one.
func (s *alertSnapshots) picture(ctx context.Context, a alerts.Alert) (alerts.Snapshot, bool, error) {
	s.mu.Lock()
	prev, ok := s.last[a.Camera]
	s.mu.Unlock()
	if ok && a.RaisedAt.Sub(prev.raised).Abs() < snapshotShare {
		return prev.snap, true, nil
	}
	pic, err := s.snaps.After(ctx, a.Camera, a.RaisedAt, snapshotWithin)
	if err != nil {
		return alerts.Snapshot{}, false, err
	}
	sum := sha256.Sum256(pic.JPEG)
	snap := alerts.Snapshot{At: pic.At.UTC(), SHA256: hex.EncodeToString(sum[:])}
	path := s.path(a.Camera, snap.At)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return alerts.Snapshot{}, false, err
	}
	if err := recorder.WriteFileAtomic(path, pic.JPEG); err != nil {
		return alerts.Snapshot{}, false, err
	}
	s.mu.Lock()
	s.last[a.Camera] = sharedSnapshot{raised: a.RaisedAt, snap: snap}
	s.mu.Unlock()
	return snap, false, nil
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
// A snapshot stored on another node of a cluster is served by elsewhere
// (nil: none), which reports whether it found it.
func (s *alertSnapshots) serve(j alerts.Journal, elsewhere func(w http.ResponseWriter, r *http.Request, id string) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !alertIDPattern.MatchString(id) {
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
		if err != nil && elsewhere != nil && elsewhere(w, r, id) {
			return
		}
		if err != nil {
			httpx.Error(w, http.StatusNotFound, "no_snapshot", "the snapshot of alert "+id+" is not on this node")
			return
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != a.Snapshot.SHA256 {
			s.log.Error("alert snapshot does not match its hash", "alert", id, "camera", a.Camera)
			httpx.Error(w, http.StatusConflict, "integrity", fmt.Sprintf("the snapshot of alert %s no longer matches its SHA-256", id))
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("X-Vigil-SHA256", a.Snapshot.SHA256)
		w.Header().Set("Cache-Control", "private, max-age=86400, immutable")
		_, _ = w.Write(b)
	}
}
