package app

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"vigil/alerts"
	"vigil/alerts/alertsapi"
	"vigil/configs"
	"vigil/internal/auth"
	"vigil/internal/httpx"
	"vigil/recorder"
	"vigil/recorder/footageapi"
)

// buildFootage creates the investigators' recordings and export API. Its
// audit entries go to the journal's audit log, which keeps them in its own
// spool while Redis is down; the local audit file only holds what older
// versions wrote there, moved into the journal at start (auditSpool).
func (a *App) buildFootage(cfg *configs.Config) error {
	fallback, err := recorder.NewFileAuditor(filepath.Join(cfg.Storage.Dir, "export-audit.jsonl"))
	if err != nil {
		return fmt.Errorf("audit file: %w", err)
	}
	a.fileAudit = fallback
	a.auditSpool, err = newAuditSpool(fallback, func() (alerts.AuditLog, bool) {
		log, ok := a.journal.(alerts.AuditLog)
		return log, ok
	}, a.log.With("component", "audit"))
	if err != nil {
		return err
	}
	opts := footageapi.Options{
		Catalog:  a.recorder.Catalog(),
		MaxRange: cfg.Export.MaxRange,
		Audit:    a.auditSpool,
		Actor:    auth.Actor,
		Logger:   a.log, // the API adds component=footage-api
		// vigil_cluster_footage_mismatches_total
		Registerer: a.metrics,
	}
	if a.peers != nil { // a cluster node: footage of every node (forward.go)
		opts.Peers, opts.Local = a.peers, a.fromPeer
	}
	a.footage, err = footageapi.New(opts)
	if err != nil {
		return err
	}
	a.holdAPI, err = footageapi.NewHoldServer(footageapi.HoldOptions{
		Recorder: a.recorder,
		KnownCamera: func(id string) bool {
			_, ok := a.config().Camera(id)
			return ok || a.recorder.HasRecordings(id)
		},
		Audit:  a.auditSpool,
		Actor:  auth.Actor,
		Logger: a.log,
	})
	return err
}

// serveClip serves GET /api/v1/alerts/{id}/clip: the export of the alert's
// clip range. While the signal is active the clip ends now; a clip longer
// than export.max_range is cut to its first max_range, which keeps the
// moment the alert was raised.
func (a *App) serveClip(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !alerts.ValidAlertID(id) {
		httpx.Error(w, http.StatusBadRequest, "bad_request", "invalid alert id")
		return
	}
	al, err := a.journal.Get(r.Context(), id)
	if err != nil {
		if errors.Is(err, alerts.ErrNotFound) {
			httpx.Error(w, http.StatusNotFound, "not_found", "no alert "+id)
			return
		}
		a.log.Error("clip: reading the alert", "component", "footage", "alert", id, "err", err)
		code := alerts.ErrorCode(err)
		httpx.Error(w, alertsapi.HTTPStatus(code), string(code), alerts.ErrorMessage(err))
		return
	}
	if al.Clip == nil {
		httpx.Error(w, http.StatusNotFound, "no_footage", "this alert has no clip")
		return
	}
	start, end := al.Clip.Start, time.Now()
	if al.Clip.End != nil && al.Clip.End.Before(end) {
		end = *al.Clip.End
	}
	if max := a.footage.MaxRange(); end.Sub(start) > max {
		end = start.Add(max)
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "mp4"
	}
	a.footage.ServeExport(w, r, al.Camera, start, end, format)
}
