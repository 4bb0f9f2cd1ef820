package app

import (
	"context"
	"slices"
	"sync"

	"vigil/cluster"
	"vigil/configs"
	"vigil/ingest"
)

// heldCameras is what a cluster node records: the cameras whose leases it
// holds, with their epochs. On the embedded single node it is unused and
// every enabled camera is recorded.
type heldCameras struct {
	mu     sync.Mutex
	epochs map[string]int64
	// keyed marks held cameras whose recorder was handed a keyframe since
	// it subscribed: their footage is being written (Node.Recording), so a
	// node handing them over may stop.
	keyed map[string]bool
}

func (h *heldCameras) epoch(camera string) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.epochs[camera]
	return e, ok
}

func (h *heldCameras) set(camera string, epoch int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.epochs == nil {
		h.epochs, h.keyed = map[string]int64{}, map[string]bool{}
	}
	h.epochs[camera] = epoch
}

func (h *heldCameras) remove(camera string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.epochs, camera)
	delete(h.keyed, camera)
}

// subscribed forgets camera's keyframe: a new recorder subscription waits
// for its own.
func (h *heldCameras) subscribed(camera string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.keyed, camera)
}

func (h *heldCameras) keyframe(camera string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.epochs[camera]; ok && !h.keyed[camera] {
		h.keyed[camera] = true
	}
}

func (h *heldCameras) isKeyed(camera string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.keyed[camera]
}

// clustered reports whether this node shares its cameras with others
// (the Redis journal; read at start only).
func (a *App) clustered() bool { return a.opts.Config.Journal.Backend == configs.BackendRedis }

// holds reports whether this node pulls and records camera: every camera
// on a single node, the cameras it holds the lease of in a cluster.
func (a *App) holds(camera string) bool {
	if !a.clustered() {
		return true
	}
	_, ok := a.held.epoch(camera)
	return ok
}

// buildLeases creates the camera leases on the registry's Redis client.
func (a *App) buildLeases() error {
	var err error
	a.leases, err = cluster.NewLeases(cluster.LeaseOptions{
		Client: a.clusterRedis, Node: a.nodeID, Zone: a.opts.Config.Node.Zone,
		Cameras:  a.leasedCameras,
		Nodes:    a.nodes.List,
		Acquired: a.leaseAcquired,
		Lost:     a.leaseLost,
		Changed:  a.applyHeld,
		Logger:   a.log.With("component", "cluster"),
	})
	return err
}

// runLeases takes and keeps this node's share of the cameras until ctx
// ends, then releases them. It runs with ingest, so the leases are free
// for the next node while this one still writes its last segments.
func (a *App) runLeases(ctx context.Context) error {
	if a.leases == nil {
		return nil
	}
	return a.leases.Run(ctx)
}

// leasedCameras are the cameras the cluster shares out: every enabled one
// of the registry, recorded or not (its holder also pulls its events and
// serves its live view).
func (a *App) leasedCameras() []cluster.Camera {
	cfg := a.config()
	out := make([]cluster.Camera, 0, len(cfg.Cameras))
	for _, c := range cfg.Cameras {
		if c.Enabled {
			out = append(out, cluster.Camera{ID: c.ID, Zone: c.Zone})
		}
	}
	return out
}

// leaseAcquired marks camera held, to be pulled and recorded once the
// leases' tick is over (applyHeld), or, for a camera it already records,
// puts the new epoch on the segments that follow.
func (a *App) leaseAcquired(camera string, epoch int64) {
	_, had := a.held.epoch(camera)
	a.held.set(camera, epoch)
	if had {
		a.camMu.Lock()
		if _, ok := a.recSubs[camera]; ok {
			cfg := a.config()
			if c, ok := cfg.Camera(camera); ok {
				if w, err := a.recorder.Camera(camera, cfg.Retention(c)); err == nil {
					w.SetEpoch(epoch)
				}
			}
		}
		a.camMu.Unlock()
	}
}

// leaseLost marks camera no longer held: applyHeld stops it, its segment
// closed cleanly, and no camera_offline is raised (the camera is fine;
// another node has it).
func (a *App) leaseLost(camera string) {
	a.held.remove(camera)
}

// applyHeld starts and stops the cameras whose leases were taken or lost,
// once per leases' tick: taking 200 cameras at start applies the
// registry once, not once per camera.
func (a *App) applyHeld() {
	cfg := a.config()
	if err := a.applyCameras(cfg); err != nil {
		a.log.Error("applying the cameras held", "component", "cluster", "err", err)
	}
	a.events.apply(cfg)
}

// heldAndRecording lists the cameras this node holds and, of those, the
// ones whose footage is being written now (for a camera with record off:
// that is online here).
func (a *App) heldAndRecording() (held, recording []string) {
	if a.leases == nil {
		return nil, nil
	}
	held = a.leases.Held()
	cfg := a.config()
	for _, c := range held {
		st, err := a.streams.Status(c)
		if err != nil {
			continue
		}
		// A camera that is not recorded counts once it streams: its live
		// view and events are served.
		if cam, ok := cfg.Camera(c); ok && !cam.Record {
			if st.Status == ingest.StatusOnline {
				recording = append(recording, c)
			}
			continue
		}
		if a.held.isKeyed(c) && st.Recording {
			recording = append(recording, c)
		}
	}
	slices.Sort(recording)
	return held, recording
}
