package footageapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"vigil/internal/httpx"
	"vigil/recorder"
)

// Audit actions of manual holds.
const (
	AuditHoldPlaced   = "hold_placed"
	AuditHoldReleased = "hold_released"
)

// Route patterns served by HoldServer.
const (
	PatternHolds       = "GET /api/v1/holds"
	PatternPlaceHold   = "POST /api/v1/holds"
	PatternReleaseHold = "DELETE /api/v1/holds/{id}"
)

// maxHoldBody bounds a POST /holds body: a case number and a reason.
const maxHoldBody = 16 << 10

// HoldOptions configures the evidence holds API.
type HoldOptions struct {
	Recorder *recorder.Recorder // required: the hold store
	// KnownCamera reports whether a camera may be held: the app's registry
	// and the cameras with recordings on disk. Required.
	KnownCamera func(id string) bool
	// MaxRange bounds one manual hold; default recorder.DefaultMaxHoldRange.
	MaxRange time.Duration
	// Audit records every hold placed and released; nil records nothing.
	Audit recorder.Auditor
	// Actor names who makes a request (the token's name); default "".
	Actor  func(*http.Request) string
	Now    func() time.Time // stamps audit entries; default time.Now
	Logger *slog.Logger
}

// HoldServer serves evidence holds: investigators place and release manual
// holds and list every hold in force, alerts' included. Authentication
// and roles are the app's, applied by Register's wrap.
type HoldServer struct {
	opts HoldOptions
	log  *slog.Logger
}

// NewHoldServer returns the holds API over opts.Recorder.
func NewHoldServer(opts HoldOptions) (*HoldServer, error) {
	if opts.Recorder == nil || opts.KnownCamera == nil {
		return nil, errors.New("hold api: recorder and known camera: required")
	}
	if opts.MaxRange <= 0 {
		opts.MaxRange = recorder.DefaultMaxHoldRange
	}
	if opts.Audit == nil {
		opts.Audit = recorder.AuditFunc(func(context.Context, recorder.AuditEntry) error { return nil })
	}
	if opts.Actor == nil {
		opts.Actor = func(*http.Request) string { return "" }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &HoldServer{opts: opts, log: opts.Logger.With("component", "holds-api")}, nil
}

// Register adds the routes to mux, each passed through wrap.
func (a *HoldServer) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	if wrap == nil {
		wrap = func(h http.Handler) http.Handler { return h }
	}
	mux.Handle(PatternHolds, wrap(http.HandlerFunc(a.list)))
	mux.Handle(PatternPlaceHold, wrap(http.HandlerFunc(a.place)))
	mux.Handle(PatternReleaseHold, wrap(http.HandlerFunc(a.release)))
}

// holdJSON is a hold as the API shows it.
type holdJSON struct {
	ID        string  `json:"id"`
	Kind      string  `json:"kind"` // "manual" or "alert"
	Alert     string  `json:"alert,omitempty"`
	Camera    string  `json:"camera"` // "" holds every camera
	Start     string  `json:"start"`
	End       *string `json:"end"` // null: open, the alert is still active
	Case      string  `json:"case,omitempty"`
	Reason    string  `json:"reason"`
	By        string  `json:"by,omitempty"`
	CreatedAt *string `json:"created_at,omitempty"`
	Until     *string `json:"until,omitempty"`
}

func toHoldJSON(h recorder.Hold) holdJSON {
	j := holdJSON{ID: h.ID, Kind: "manual", Camera: h.Camera, Start: recorder.FormatTime(h.Start), Case: h.Case, Reason: h.Reason, By: h.By}
	if !recorder.IsManualHoldID(h.ID) {
		j.Kind, j.Alert = "alert", h.ID
	}
	opt := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		s := recorder.FormatTime(t)
		return &s
	}
	j.End, j.CreatedAt, j.Until = opt(h.End), opt(h.CreatedAt), opt(h.Until)
	return j
}

type placeHoldRequest struct {
	Camera string `json:"camera"`
	Start  string `json:"start"`
	End    string `json:"end"`
	Case   string `json:"case"`
	Reason string `json:"reason"`
}

func (a *HoldServer) place(w http.ResponseWriter, r *http.Request) {
	var req placeHoldRequest
	if err := httpx.DecodeJSON(w, r, maxHoldBody, &req); err != nil {
		httpx.DecodeError(w, err)
		return
	}
	m := recorder.ManualHold{Camera: req.Camera, Case: req.Case, Reason: req.Reason, By: a.opts.Actor(r)}
	for _, f := range [...]struct {
		name, v string
		t       *time.Time
	}{{"start", req.Start, &m.Start}, {"end", req.End, &m.End}} {
		if f.v == "" {
			continue // check says what is missing
		}
		t, err := time.Parse(time.RFC3339Nano, f.v)
		if err != nil {
			httpx.Error(w, http.StatusBadRequest, "bad_time", f.name+" "+quote(f.v)+": not an RFC 3339 time")
			return
		}
		*f.t = t
	}
	if recorder.ValidCameraID(m.Camera) && !a.opts.KnownCamera(m.Camera) {
		httpx.Error(w, http.StatusBadRequest, "unknown_camera", "unknown camera "+quote(m.Camera))
		return
	}
	h, err := a.opts.Recorder.PlaceManualHold(r.Context(), m, a.opts.MaxRange)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.audit(r, AuditHoldPlaced, h)
	w.Header().Set("Location", "/api/v1/holds/"+h.ID)
	httpx.WriteJSON(w, http.StatusCreated, toHoldJSON(h))
}

func (a *HoldServer) release(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) > 200 {
		httpx.Error(w, http.StatusNotFound, "not_found", "no such hold")
		return
	}
	h, err := a.opts.Recorder.ReleaseManualHold(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.audit(r, AuditHoldReleased, h)
	w.WriteHeader(http.StatusNoContent)
}

func (a *HoldServer) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	camera := q.Get("camera")
	if camera != "" && !recorder.ValidCameraID(camera) {
		httpx.Error(w, http.StatusBadRequest, "bad_camera_id", "invalid camera id")
		return
	}
	var start, end time.Time
	for _, f := range [...]struct {
		name string
		t    *time.Time
	}{{"start", &start}, {"end", &end}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			httpx.Error(w, http.StatusBadRequest, "bad_time", f.name+" "+quote(v)+": not an RFC 3339 time")
			return
		}
		*f.t = t
	}
	if !start.IsZero() && !end.IsZero() && end.Before(start) {
		httpx.Error(w, http.StatusBadRequest, "bad_range", "end "+recorder.FormatTime(end)+" is before start "+recorder.FormatTime(start))
		return
	}
	holds := a.opts.Recorder.HoldsIn(camera, start, end)
	out := make([]holdJSON, 0, len(holds))
	for _, h := range holds {
		out = append(out, toHoldJSON(h))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string][]holdJSON{"holds": out})
}

// audit records a placed or released hold. The hold is in force (or
// gone) already; an audit that fails is logged with everything it held.
func (a *HoldServer) audit(r *http.Request, action string, h recorder.Hold) {
	detail := map[string]string{
		"hold": h.ID, "camera": h.Camera, "start": recorder.FormatTime(h.Start), "end": recorder.FormatTime(h.End),
		"case": h.Case, "reason": h.Reason, "placed_by": h.By, "created_at": recorder.FormatTime(h.CreatedAt),
	}
	e := recorder.AuditEntry{At: a.opts.Now().UTC(), By: a.opts.Actor(r), Action: action, Object: "hold/" + h.ID, Detail: detail}
	if err := a.opts.Audit.Audit(context.WithoutCancel(r.Context()), e); err != nil {
		a.log.Error("audit failed", "action", action, "hold", h.ID, "camera", h.Camera, "case", h.Case, "by", e.By, "error", err)
	}
}

func (a *HoldServer) fail(w http.ResponseWriter, r *http.Request, err error) {
	var re *recorder.RequestError
	switch {
	case errors.As(err, &re):
		httpx.Error(w, http.StatusBadRequest, re.Code, re.Msg)
	case errors.Is(err, recorder.ErrHoldNotFound):
		httpx.Error(w, http.StatusNotFound, "not_found", "no such hold")
	case errors.Is(err, recorder.ErrAlertHold):
		httpx.Error(w, http.StatusConflict, "alert_hold",
			"this hold belongs to an alert: it ends with the alert (alerts.hold_after_resolve after it is resolved) and cannot be released by hand")
	case r.Context().Err() != nil:
		return // the client went away
	default:
		a.log.Error("hold request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		httpx.Error(w, http.StatusServiceUnavailable, "storage", "the hold could not be written to storage; nothing changed; retry")
	}
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}
