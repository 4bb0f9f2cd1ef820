package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"vigil/configs"
	"vigil/internal/auth"
	"vigil/internal/httpx"
	"vigil/live"
	"vigil/recorder"
)

// liveQueue is how many access units may wait for a camera's live feed
// before ingest drops and the feed's viewers resume at the next keyframe:
// about 5 s of 25 fps video with audio.
const liveQueue = 256

// buildLive creates the live feeds, the WHEP viewers (binding the UDP
// port) and the snapshot decoder. Without ffmpeg the node runs, with
// snapshots answering 503.
func (a *App) buildLive(cfg *configs.Config) error {
	a.feeds = live.NewFeeds(nil)
	known := func(id string) bool {
		c, ok := a.config().Camera(id)
		return ok && c.Enabled
	}
	var ice []live.ICEServer
	for _, s := range cfg.Live.ICEServers {
		ice = append(ice, live.ICEServer{URL: s.URL, Username: s.Username, Credential: s.Credential.Reveal()})
	}
	var err error
	a.viewers, err = live.NewViewers(live.ViewersOptions{
		Feeds:      a.feeds,
		Known:      known,
		UDPAddr:    a.opts.LiveUDP,
		MaxViewers: cfg.Live.MaxViewers,
		ICEServers: ice,
		NATIPs:     cfg.Live.NATIPs,
		Registerer: a.metrics,
		Logger:     a.log.With("component", "live"),
	})
	if err != nil {
		return err
	}
	a.snapshots, err = live.NewSnapshots(live.SnapshotsOptions{
		Feeds:      a.feeds,
		Known:      known,
		Recordings: recordedKeyframes{a},
		FFmpeg:     cfg.Snapshots.FFmpeg,
		Width:      cfg.Snapshots.Width,
		OnRecorded: a.auditSnapshot,
		Registerer: a.metrics,
		Logger:     a.log.With("component", "snapshots"),
	})
	if err != nil {
		a.viewers.Close()
		return err
	}
	a.alertSnaps = newAlertSnapshots(a.snapshots, cfg.Storage.Dir, a.metrics, a.log.With("component", "alert-snapshots"))
	a.alertSnaps.attach = a.engine.AttachSnapshot
	return nil
}

// liveUDP is the live view's UDP address for opts: the host of the API's
// listen address with live.udp_port, or a free port when the API asks for
// one (tests, bench, demo), so that nodes side by side do not collide.
func liveUDP(listen string, port int) string {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return net.JoinHostPort("", strconv.Itoa(port))
	}
	if p == "0" {
		port = 0
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// startLiveLocked subscribes camera id's live feed to ingest.
func (a *App) startLiveLocked(id string) {
	a.liveSubs[id] = a.streams.Subscribe(id, "live", a.feeds.Feed(id), liveQueue)
}

// stopLiveLocked ends the live subscription of a removed or disabled
// camera and its viewers' sessions.
func (a *App) stopLiveLocked(id string) {
	unsub, ok := a.liveSubs[id]
	if !ok {
		return
	}
	unsub()
	delete(a.liveSubs, id)
	a.feeds.Feed(id).OnBreak("removed", 0) // no sink call runs any more
	a.viewers.EndCamera(id)
}

// serveSnapshot answers GET /api/v1/cameras/{id}/snapshot: the live
// picture for desk and investigator; ?at (footage) for investigators only.
func (a *App) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("at") {
		if p, ok := auth.FromContext(r.Context()); !ok || !p.Allows(auth.Investigator) {
			httpx.Error(w, http.StatusForbidden, "forbidden", "a snapshot from the recordings (?at) is for investigators")
			return
		}
	}
	a.snapshots.ServeHTTP(w, r)
}

// auditSnapshot writes a snapshot taken from the recordings to the audit
// log, as an export of one picture with the hash of the bytes sent.
func (a *App) auditSnapshot(r *http.Request, s live.Snapshot, at time.Time) {
	sum := sha256.Sum256(s.JPEG)
	e := recorder.AuditEntry{At: time.Now().UTC(), By: auth.Actor(r), Action: recorder.AuditExported,
		Object: "camera/" + s.Camera + "/snapshot",
		Detail: map[string]string{"camera": s.Camera, "at": at.UTC().Format(time.RFC3339Nano),
			"from": s.At.UTC().Format(time.RFC3339Nano), "format": "jpeg",
			"bytes": strconv.Itoa(len(s.JPEG)), "sha256": hex.EncodeToString(sum[:]), "complete": "true"}}
	if err := a.auditSpool.Audit(context.WithoutCancel(r.Context()), e); err != nil {
		a.log.Error("auditing a recorded snapshot", "component", "snapshots", "camera", s.Camera, "err", err)
	}
}

// recordedKeyframes reads recorded keyframes through the recorder's export.
type recordedKeyframes struct{ a *App }

// keyframeLookBack is how far before a time in a gap the last recorded
// keyframe is still taken as the picture "at or before" it: the scene as
// the camera last showed it before an outage (a camera_offline alert's
// picture), stamped with its own time; older footage is no picture of it.
const keyframeLookBack = 5 * time.Minute

func (k recordedKeyframes) KeyframeAt(ctx context.Context, camera string, at time.Time) (io.ReadCloser, time.Time, error) {
	c := k.a.recorder.Catalog()
	x, err := recorder.PlanExport(c, recorder.ExportRequest{
		Camera: camera, Start: at, End: at.Add(time.Millisecond), Format: recorder.FormatFMP4})
	if errors.Is(err, recorder.ErrNoFootage) {
		// at lies in a gap: the last keyframe of the segment before it.
		segs, _, lerr := c.List(camera, at.Add(-keyframeLookBack), at)
		if lerr == nil && len(segs) > 0 {
			last := segs[len(segs)-1]
			end := last.End
			if at.Before(end) {
				end = at
			}
			if end.After(last.Start) {
				x, err = recorder.PlanExport(c, recorder.ExportRequest{
					Camera: camera, Start: end.Add(-time.Millisecond), End: end, Format: recorder.FormatFMP4})
			}
		}
	}
	if errors.Is(err, recorder.ErrNoFootage) {
		return nil, time.Time{}, fmt.Errorf("camera %s: %w", camera, live.ErrNoFootage)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	return x.Reader(), x.From, nil
}

// Snapshots is the node's snapshot decoder, for callers such as the alert
// snapshot wiring: Snapshots().After(ctx, camera, raisedAt, 3*time.Second).
func (a *App) Snapshots() *live.Snapshots { return a.snapshots }

// LiveUDPAddr is the UDP address of the live view's media.
func (a *App) LiveUDPAddr() net.Addr { return a.viewers.UDPAddr() }
