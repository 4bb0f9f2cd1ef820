package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"vigil/alerts"
	"vigil/configs"
	"vigil/recorder"
)

// buildRecorder opens the recordings directory (repairing what a crash
// left) and starts nothing yet.
func (a *App) buildRecorder(cfg *configs.Config) error {
	node := "" // a single node's index lines name no node
	if cfg.Journal.Backend == configs.BackendRedis {
		node = a.nodeID
	}
	rec, err := recorder.New(recorder.Options{
		Dir:          cfg.Storage.Dir,
		Node:         node,
		Segment:      cfg.Storage.Segment,
		Part:         cfg.Storage.Part,
		Fsync:        string(cfg.Storage.Fsync),
		Retain:       cfg.Storage.Retain,
		MaxBytes:     cfg.Storage.MaxBytes,
		MinFreeBytes: cfg.Storage.MinFreeBytes,
		VerifyEvery:  cfg.Storage.VerifyEvery,
		VerifyRate:   verifyRate(cfg.Storage.VerifyRate),
		Registerer:   a.metrics,
		Logger:       a.log, // the recorder adds component=recorder
		OnHealth:     a.recorderHealth,
	})
	if err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	a.recorder = rec
	return nil
}

// verifyRate maps storage.verify_rate (0: no cap) to the recorder's
// (0: the default, negative: no cap).
func verifyRate(r int64) int64 {
	if r == 0 {
		return -1
	}
	return r
}

// recorderHealth turns the recorder's health signals into alert events.
// Storage-wide signals (camera "") are raised on the node itself. A
// tampered recording is a finding, not a condition that ends: it is a
// pulse, so the alert's clip and hold stay bounded and each further
// damaged segment of the camera counts on the open alert.
func (a *App) recorderHealth(camera, kind string, active bool, detail string) {
	if camera == "" {
		camera = a.nodeID
	}
	if kind == recorder.HealthRecordingTampered {
		ev := alerts.Event{Camera: camera, Type: alerts.RecordingTampered, State: alerts.Pulse, At: time.Now(),
			Source: alerts.SourceHealth, Detail: map[string]string{"detail": detail}}
		if err := a.engine.Submit(ev); err != nil {
			a.log.Error("health signal lost", "component", "alerts", "camera", camera, "type", ev.Type, "err", err)
		}
		return
	}
	a.submitHealth(camera, alerts.Type(kind), active, detail)
}

// recorderEvidence places the engine's evidence holds in the recorder.
// Alerts of the node itself (storage full, a full journal spool) have no
// footage to hold.
type recorderEvidence struct{ a *App }

func (e recorderEvidence) PlaceHold(ctx context.Context, h alerts.HoldRequest) error {
	if _, ok := e.a.config().Camera(h.Camera); !ok {
		return nil
	}
	return e.a.recorder.PlaceHold(ctx, recorder.Hold{ID: h.ID, Camera: h.Camera, Start: h.Start, End: h.End, Until: h.Until, Reason: h.Reason})
}

// nodeName is the node ID of the configuration, or, for a configuration
// not loaded from a file, one made from the host name as loading does.
func nodeName(cfg *configs.Config) string {
	if cfg.NodeID != "" {
		return cfg.NodeID
	}
	if h, err := os.Hostname(); err == nil {
		if id := configs.NodeIDFromHost(h); id != "" {
			return id
		}
	}
	return "vigil"
}
