// Package alertsapi is the REST API of the alerts under /api/v1/alerts:
// listing and reading alerts, the desk's actions (acknowledge, dispatch,
// resolve, follow-up, 挂牌督办), the period's stats, and the one table that
// maps the alerts domain's error codes to HTTP statuses. It owns request
// parsing and answers only; the rules, the lifecycle and the journal stay
// in package alerts, and authentication and roles are the app's middleware.
package alertsapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"vigil/alerts"
	"vigil/internal/httpx"
)

// MaxBodyBytes bounds the bodies of the alert actions.
const MaxBodyBytes = 64 << 10

// Options configure the alert REST handler.
type Options struct {
	Engine *alerts.Engine // required
	// Journal serves reads; default Engine.Journal().
	Journal alerts.Journal
	// Actor names the authenticated caller (the token name); the app's
	// auth middleware runs before the handler. Required.
	Actor func(*http.Request) string
	// Location is the centre's time zone: `day=YYYY-MM-DD` in the stats
	// query is that calendar day there. Default UTC.
	Location *time.Location
	Logger   *slog.Logger
}

func (o *Options) validate() error {
	var errs []error
	if o.Engine == nil {
		errs = append(errs, errors.New("engine is required"))
	}
	if o.Actor == nil {
		errs = append(errs, errors.New("actor func is required"))
	}
	if o.Journal == nil && o.Engine != nil {
		o.Journal = o.Engine.Journal()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Server serves the alert endpoints of DESIGN.md under /api/v1/alerts, except
// /api/v1/alerts/{id}/clip, which needs the recorder's exporter and belongs
// to the app. Authentication and roles are the app's middleware.
type Server struct {
	o   Options
	mux *http.ServeMux
	log *slog.Logger
}

// New returns the handler with its routes registered.
func New(o Options) (*Server, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("alerts api: %w", err)
	}
	a := &Server{o: o, mux: http.NewServeMux(), log: o.Logger.With("component", "alerts-api")}
	a.mux.HandleFunc("GET /api/v1/alerts", a.list)
	a.mux.HandleFunc("GET /api/v1/alerts/stats", a.stats)
	a.mux.HandleFunc("GET /api/v1/alerts/{id}", a.get)
	a.mux.HandleFunc("POST /api/v1/alerts/{id}/ack", a.ack)
	a.mux.HandleFunc("POST /api/v1/alerts/{id}/dispatch", a.dispatch)
	a.mux.HandleFunc("POST /api/v1/alerts/{id}/resolve", a.resolve)
	a.mux.HandleFunc("POST /api/v1/alerts/{id}/follow-up", a.followUp)
	a.mux.HandleFunc("POST /api/v1/alerts/{id}/supervise", a.supervise)
	return a, nil
}

func (a *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func pathID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !alerts.ValidAlertID(id) {
		return "", codeError(alerts.CodeBadRequest, "invalid alert id")
	}
	return id, nil
}

type listResponse struct {
	Alerts     []alerts.Alert `json:"alerts"`
	NextCursor string         `json:"next_cursor"`
}

func (a *Server) list(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	as, next, err := a.o.Journal.List(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, listResponse{Alerts: as, NextCursor: next})
}

func parseFilter(r *http.Request) (alerts.Filter, error) {
	q := r.URL.Query()
	var f alerts.Filter
	var errs []string
	if s := q.Get("status"); s != "" {
		switch st := alerts.Status(s); st {
		case alerts.StatusNew, alerts.StatusAcknowledged, alerts.StatusDispatched, alerts.StatusResolved:
			f.Status = st
		default:
			if s == "open" {
				f.Open = true
			} else {
				errs = append(errs, fmt.Sprintf("status %q: want new, acknowledged, dispatched, resolved or open", s))
			}
		}
	}
	if s := q.Get("open"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("open %q: want true or false", s))
		}
		f.Open = f.Open || b
	}
	if s := q.Get("severity"); s != "" {
		if alerts.Severity(s).Rank() > 2 {
			errs = append(errs, fmt.Sprintf("severity %q: want critical, major or minor", s))
		}
		f.Severity = alerts.Severity(s)
	}
	f.Camera, f.Site, f.Cursor = q.Get("camera"), q.Get("site"), q.Get("cursor")
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s %q: want RFC 3339", p.name, s))
			}
			*p.to = t
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > alerts.MaxListLimit {
			errs = append(errs, fmt.Sprintf("limit %q: want 1 to %d", s, alerts.MaxListLimit))
		}
		f.Limit = n
	}
	if f.Cursor != "" {
		if _, err := alerts.DecodeCursor(f.Cursor); err != nil {
			errs = append(errs, "cursor: invalid")
		}
	}
	if len(errs) > 0 {
		return alerts.Filter{}, codeError(alerts.CodeBadRequest, joinMessages(errs))
	}
	return f, nil
}

func joinMessages(m []string) string {
	s := m[0]
	for _, x := range m[1:] {
		s += "; " + x
	}
	return s
}

func (a *Server) get(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	al, err := a.o.Journal.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, al)
}

func (a *Server) location() *time.Location {
	if a.o.Location != nil {
		return a.o.Location
	}
	return time.UTC
}

func (a *Server) stats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	to := a.o.Engine.Now() // the engine's clock, as deadlines and rates use
	from := to.Add(-24 * time.Hour)
	var errs []string
	if d := q.Get("day"); d != "" {
		// One calendar day in the centre's time zone (按日统计).
		day, err := time.ParseInLocation(time.DateOnly, d, a.location())
		if err != nil {
			errs = append(errs, fmt.Sprintf("day %q: want YYYY-MM-DD", d))
		}
		from, to = day, day.AddDate(0, 0, 1)
		if q.Get("from") != "" || q.Get("to") != "" {
			errs = append(errs, "day cannot be combined with from or to")
		}
	}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"from", &from}, {"to", &to}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s %q: want RFC 3339", p.name, s))
			}
			*p.to = t
		}
	}
	if len(errs) > 0 {
		a.fail(w, r, codeError(alerts.CodeBadRequest, joinMessages(errs)))
		return
	}
	s, err := a.o.Engine.Stats(r.Context(), from, to, alerts.GroupBy(q.Get("group_by")))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, s)
}

type ackRequest struct {
	Note    string `json:"note"`
	Version int64  `json:"version"`
}

type dispatchRequest struct {
	Unit    string `json:"unit"`
	Note    string `json:"note"`
	Version int64  `json:"version"`
}

type resolveRequest struct {
	Feedback   string `json:"feedback"`
	FalseAlarm bool   `json:"false_alarm"`
	Version    int64  `json:"version"`
}

type superviseRequest struct {
	Due     time.Time `json:"due"`
	Note    string    `json:"note"`
	Clear   bool      `json:"clear"`
	Version int64     `json:"version"`
}

type followUpRequest struct {
	Satisfied *bool  `json:"satisfied"`
	Note      string `json:"note"`
}

// action decodes the body into req and runs do with the alert ID and actor.
func action[T any](a *Server, w http.ResponseWriter, r *http.Request, do func(id, by string, req T) (alerts.Alert, error)) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req T
	if err := decodeBody(w, r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	by := a.o.Actor(r)
	if by == "" {
		a.fail(w, r, codeError(alerts.CodeBadRequest, "no actor for this request"))
		return
	}
	al, err := do(id, by, req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, al)
}

func (a *Server) ack(w http.ResponseWriter, r *http.Request) {
	action(a, w, r, func(id, by string, q ackRequest) (alerts.Alert, error) {
		return a.o.Engine.Ack(r.Context(), id, by, q.Note, q.Version)
	})
}

func (a *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	action(a, w, r, func(id, by string, q dispatchRequest) (alerts.Alert, error) {
		if q.Unit == "" {
			return alerts.Alert{}, codeError(alerts.CodeBadRequest, "unit is required")
		}
		return a.o.Engine.Dispatch(r.Context(), id, by, q.Unit, q.Note, q.Version)
	})
}

func (a *Server) resolve(w http.ResponseWriter, r *http.Request) {
	action(a, w, r, func(id, by string, q resolveRequest) (alerts.Alert, error) {
		return a.o.Engine.Resolve(r.Context(), id, by, q.Feedback, q.FalseAlarm, q.Version)
	})
}

func (a *Server) supervise(w http.ResponseWriter, r *http.Request) {
	action(a, w, r, func(id, by string, q superviseRequest) (alerts.Alert, error) {
		return a.o.Engine.Supervise(r.Context(), id, by, q.Due, q.Note, q.Clear, q.Version)
	})
}

func (a *Server) followUp(w http.ResponseWriter, r *http.Request) {
	action(a, w, r, func(id, by string, q followUpRequest) (alerts.Alert, error) {
		if q.Satisfied == nil {
			return alerts.Alert{}, codeError(alerts.CodeBadRequest, "satisfied is required")
		}
		return a.o.Engine.FollowUp(r.Context(), id, by, *q.Satisfied, q.Note)
	})
}

// decodeBody reads the JSON body of an action with httpx.DecodeJSON: an
// oversized body is CodeTooLarge (413), any other problem CodeBadRequest.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	err := httpx.DecodeJSON(w, r, MaxBodyBytes, v)
	if err == nil {
		return nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return codeError(alerts.CodeTooLarge, fmt.Sprintf("body larger than %d bytes", MaxBodyBytes))
	}
	return codeError(alerts.CodeBadRequest, err.Error())
}

type errorResponse struct {
	Error string        `json:"error"`
	Code  alerts.Code   `json:"code"`
	Alert *alerts.Alert `json:"alert,omitempty"` // the current alert on a version conflict
	// By and Action name the change that won a version conflict (the
	// latest history entry), so the desk can tell a person (已被他人处理)
	// from the camera or the system (摄像机状态已更新).
	By     string `json:"by,omitempty"`
	Action string `json:"action,omitempty"`
}

// fail writes err as JSON with the status of its code; internal errors are
// logged here and shown as "internal error".
func (a *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := alerts.ErrorCode(err)
	resp := errorResponse{Error: alerts.ErrorMessage(err), Code: code}
	var ce *alerts.ConflictError
	if errors.As(err, &ce) {
		resp.Alert = &ce.Current
		resp.Error = "the alert changed since you saw it; retry on the current alert"
		if h := ce.Current.History; len(h) > 0 {
			resp.By, resp.Action = h[len(h)-1].By, h[len(h)-1].Action
		}
	}
	if code == alerts.CodeInternal || code == alerts.CodeUnavailable {
		a.log.Error("alerts request", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	httpx.WriteJSON(w, HTTPStatus(code), resp)
}
