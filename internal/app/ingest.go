package app

import (
	"errors"
	"time"

	"vigil/alerts"
	"vigil/alerts/vendor"
	"vigil/configs"
	"vigil/ingest"
	"vigil/internal/media"
)

// recorderQueue is how many access units may wait for the recorder per
// camera before ingest drops and the recorder starts a clean segment: about
// 20 s of 25 fps video with audio.
const recorderQueue = 1024

// buildIngest creates the camera pullers, connected to the recorder and
// the alert engine.
func (a *App) buildIngest(cfg *configs.Config) error {
	var err error
	a.streams, err = ingest.New(ingest.Options{
		Registerer:   a.metrics,
		Logger:       a.log, // ingest names its own component
		OfflineAfter: cfg.Ingest.OfflineAfter,
		OnState:      a.cameraState,
	})
	if err != nil {
		return err
	}
	a.streams.SubscribeMetadata(ingest.MetadataSinkFunc(a.onMetadata))
	a.recSubs = map[string]func(){}
	a.liveSubs = map[string]func(){}
	return a.applyCameras(cfg)
}

// ingestCameras maps the registry onto ingest's camera specs; a camera is
// pulled when it is enabled and holds says this node has it.
func ingestCameras(cfg *configs.Config, holds func(string) bool) []ingest.Camera {
	out := make([]ingest.Camera, 0, len(cfg.Cameras))
	for _, c := range cfg.Cameras {
		user, pass := c.Credentials()
		out = append(out, ingest.Camera{
			ID: c.ID, Name: c.Name, Site: c.Site, Grid: c.Grid,
			URL: c.StreamURL(), Username: user, Password: pass,
			Transport: string(c.Transport), ONVIFMetadata: c.Events.ONVIFMetadata, Enabled: c.Enabled && holds(c.ID),
			AuthRetry: c.AuthRetry,
		})
	}
	return out
}

// applyCameras brings ingest and the recorder subscriptions in line with
// cfg. Ingest decides which cameras restart (a new stream: URL,
// credentials, transport, ONVIF metadata, enabled); their recording
// restarts with them, the old segment closed after its last queued unit.
// Cameras with a new name, site, grid, retention or webhook secret keep
// their session and their recording; record switched on or off starts or
// stops it. In a cluster, only the cameras whose leases this node holds
// are pulled and recorded; the others are registered as disabled here.
func (a *App) applyCameras(cfg *configs.Config) error {
	a.camMu.Lock()
	defer a.camMu.Unlock()
	want := map[string]configs.Camera{}
	for _, c := range cfg.Cameras {
		if c.Enabled && c.Record && a.holds(c.ID) {
			want[c.ID] = c
		}
	}
	var errs []error
	// New recordings subscribe before ingest starts their cameras, so that
	// the recorder gets the first stream from its start.
	fresh := map[string]bool{}
	for id, c := range want {
		if _, ok := a.recSubs[id]; ok {
			continue
		}
		if err := a.startRecordingLocked(cfg, c); err != nil {
			errs = append(errs, err)
			continue
		}
		fresh[id] = true
	}
	// Live feeds follow every enabled camera, recorded or not; a feed
	// outlives its camera's restarts, so only added and removed cameras
	// change subscriptions.
	enabled := map[string]bool{}
	for _, c := range cfg.Cameras {
		if c.Enabled {
			enabled[c.ID] = true
			if _, ok := a.liveSubs[c.ID]; !ok {
				a.startLiveLocked(c.ID)
			}
		}
	}
	res, err := a.streams.Apply(ingestCameras(cfg, a.holds))
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range res.Restarted {
		if _, ok := a.recSubs[id]; !ok || fresh[id] {
			continue
		}
		a.stopRecordingLocked(id)
		if c, ok := want[id]; ok {
			if err := a.startRecordingLocked(cfg, c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for id := range a.recSubs {
		if _, ok := want[id]; !ok {
			a.stopRecordingLocked(id)
		}
	}
	for id := range a.liveSubs {
		if !enabled[id] {
			a.stopLiveLocked(id)
		}
	}
	for _, c := range cfg.Cameras {
		_, rec := want[c.ID]
		a.streams.SetRecording(c.ID, rec)
	}
	if len(res.Added)+len(res.Removed)+len(res.Changed) > 0 {
		a.log.Info("cameras applied", "component", "ingest", "added", res.Added, "removed", res.Removed,
			"changed", res.Changed, "restarted", res.Restarted)
	}
	return errors.Join(errs...)
}

// startRecordingLocked subscribes the recorder to camera c. In a cluster
// its segments carry the lease's epoch from the first one on.
func (a *App) startRecordingLocked(cfg *configs.Config, c configs.Camera) error {
	sink, err := a.recorder.Camera(c.ID, cfg.Retention(c))
	if err != nil {
		return err
	}
	if epoch, ok := a.held.epoch(c.ID); ok {
		sink.SetEpoch(epoch)
	}
	a.held.subscribed(c.ID)
	a.recSubs[c.ID] = a.streams.Subscribe(c.ID, "recorder", recordedSink{sink, c.ID, a.streams, &a.held}, recorderQueue)
	return nil
}

// recordedSink tells ingest when the recorder was handed a video frame,
// so that a camera shows recording only while frames are being written,
// and the cluster when it was handed the first keyframe, from which its
// segments start.
type recordedSink struct {
	media.Sink
	camera  string
	streams *ingest.Streams
	held    *heldCameras
}

func (r recordedSink) OnAccessUnit(au media.AccessUnit) {
	r.Sink.OnAccessUnit(au)
	if au.Kind == media.Video {
		r.streams.Wrote(r.camera)
		if au.Key {
			r.held.keyframe(r.camera)
		}
	}
}

// stopRecordingLocked ends a camera's recorder subscription and closes its
// segment. Unsubscribing returns once the units queued for the recorder
// reached it, so the segment closes after the last of them.
func (a *App) stopRecordingLocked(id string) {
	unsub, ok := a.recSubs[id]
	if !ok {
		return
	}
	unsub()
	delete(a.recSubs, id)
	if err := a.recorder.CloseCamera(id); err != nil {
		a.log.Error("closing the camera's segment", "component", "recorder", "camera", id, "err", err)
	}
}

// onMetadata turns a camera's ONVIF metadata document into alert events.
func (a *App) onMetadata(camera string, doc []byte, at time.Time) {
	events, err := vendor.ParseONVIF(camera, doc, at)
	if err != nil {
		a.metadataErrors.WithLabelValues(camera).Inc()
		a.log.Debug("ONVIF metadata document rejected", "component", "alerts", "camera", camera, "err", err)
		return
	}
	for _, ev := range a.events.route(camera, events) {
		if err := a.engine.Submit(ev); err != nil {
			a.log.Warn("camera event dropped", "component", "alerts", "camera", camera, "err", err)
		}
	}
}

// cameraState raises camera_offline when a camera has been offline longer
// than ingest.offline_after and ends it when it is back.
//
// The alert's clip starts before the camera's last frame, so that it shows
// the last seconds before the camera dropped rather than the 30 s after.
// In a cluster only the camera's holder raises it: a report racing the
// loss of the lease is dropped. The alert may have been raised by the
// node that held the camera before: the holder adopts it, so that the
// outage goes on as one alert and ends when the camera is back here (the
// camera's first session here ends it like a return after an outage).
func (a *App) cameraState(st ingest.CameraState) {
	if !st.Online && !a.holds(st.Camera) {
		return
	}
	s, err := a.streams.Status(st.Camera)
	ev := alerts.Event{Camera: st.Camera, Type: alerts.CameraOffline, State: alerts.Inactive, At: time.Now(),
		Source: alerts.SourceHealth, Detail: map[string]string{"detail": st.Reason}, Adopt: a.clustered()}
	if !st.Online {
		// The desk sees why: "unauthorized" asks for the password, not a
		// technician on a ladder.
		ev.State = alerts.Active
		ev.Detail["reason"], ev.Detail["message"] = st.Reason, st.Message
		if err == nil && s.LastFrameAt != nil {
			ev.FootageFrom = *s.LastFrameAt
		}
	}
	if err := a.engine.Submit(ev); err != nil {
		a.log.Error("health signal lost", "component", "alerts", "camera", st.Camera, "type", ev.Type, "err", err)
	}
	// A first session is no news to the desk (the camera was connecting,
	// not offline, here); a return after an outage is.
	if err == nil && !st.First {
		_ = a.hub.PublishCamera(s) // best effort: the desk also polls /cameras
	}
}
